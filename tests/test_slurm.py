"""The tiny city on a real single-node SLURM cluster, through the project's SLURM profile.

The cluster is Debian's SLURM 22.05 with munge, slurmdbd and MariaDB (so sacct works) and two fake
GPUs on the loopback interface, started and stopped by the project's harness, tools/slurm-cluster.
The test does not start it: .ci/run runs `tools/slurm-cluster up` before `make test`, exports
URBANEO_SLURM (the cluster's state folder) and stops the cluster afterwards. Without URBANEO_SLURM
the test is skipped with the reason (and .ci/run fails when it was skipped).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from snakemake_runs import REPRODUCED, copy_workflow, digests, start_snakemake
from urbaneo.presets import URBAN_DEEP

HARNESS = REPO / "tools" / "slurm-cluster"
RUN_LIMIT_S = 1200  # the whole cluster run, under `timeout -s INT` (SIGTERM can leave the plugin hanging)
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/(\S+)/\d+\.log\)")


NO_CLUSTER = ("no SLURM cluster: as root, run `eval \"$(tools/slurm-cluster up)\"` (exports URBANEO_SLURM), "
              "then this test, then `tools/slurm-cluster down --purge`; .ci/run does all three")


# session scope: set up (and checked) before the session's tiny_run, which takes minutes
@pytest.fixture(scope="session")
def slurm_cluster():
    """The running cluster named by URBANEO_SLURM: its state folder (tools/slurm-cluster up)."""
    lab = os.environ.get("URBANEO_SLURM")
    if not lab:
        pytest.skip(NO_CLUSTER)
    lab = Path(lab)
    settings = {}
    if (lab / "cluster.env").is_file():
        for line in (lab / "cluster.env").read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                key, value = line[len("export "):].split("=", 1)
                settings[key] = value.strip("'")
    # a cluster that was announced but is not there is an error, not a reason to skip
    status = subprocess.run(["bash", str(HARNESS), "status"], env={**os.environ, "SLURMLAB": str(lab)},
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and settings, (
        f"URBANEO_SLURM={lab}, but no cluster runs there (tools/slurm-cluster up writes {lab}/cluster.env):\n"
        f"{status.stdout}{status.stderr}")
    assert settings.get("WITH_DBD") == "1" and int(settings.get("FAKE_GPUS", "0")) >= 1, (
        f"the test needs accounting (WITH_DBD=1) and a fake GPU (FAKE_GPUS>=1): {settings}")
    return lab


def ci_profile(wf: Path) -> Path:
    """The project's SLURM profile plus the CI overlay: partition `main`, a short first status check."""
    profile = yaml.safe_load((wf / "workflow/profiles/slurm/config.yaml").read_text())
    profile["slurm-init-seconds-before-status-checks"] = 5
    profile["default-resources"] = {**profile["default-resources"], "slurm_partition": "main"}
    folder = wf / "workflow/profiles/slurm-ci"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def squeue_state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()


class KillOnce(threading.Thread):
    """Kill the IFCN training job with scancel once it runs and has written a checkpoint: Snakemake
    must resubmit it and training must resume to the same bytes.

    `scancel --signal=TERM --full` ends the job as FAILED. A plain `scancel` ends it as
    "CANCELLED by <uid>", which snakemake-executor-plugin-slurm 2.8.0 does not match against its
    failure states: it waits for that job forever (README, Cluster runs).
    """

    def __init__(self, log: Path, checkpoints: Path, proc: subprocess.Popen):
        super().__init__(daemon=True)
        self.log, self.checkpoints, self.proc, self.killed = log, checkpoints, proc, None

    def run(self):
        while self.proc.poll() is None and self.killed is None:
            jobs = [m[0] for m in SUBMITTED.findall(self.log.read_text())
                    if m[1] == "urban_train" and "ifcn" in m[2].split("_")]
            if (jobs and squeue_state(jobs[0]) == "RUNNING"
                    and any(self.checkpoints.glob(".model.pt.*.partial"))):
                subprocess.run(["scancel", "--signal=TERM", "--full", jobs[0]], check=True)
                self.killed = jobs[0]
            time.sleep(0.5)


def sacct(jobs: list[str]) -> dict[str, tuple[str, str]]:
    """{job id: (state, AllocTRES)}, waiting for slurmdbd to record every job's final state."""
    final = ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")
    for _ in range(60):
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(jobs), "-o", "JobID,State,AllocTRES"],
                             capture_output=True, text=True).stdout
        rows = {job: (state.split()[0], tres) for job, state, tres in (line.split("|") for line in out.splitlines())}
        if set(rows) == set(jobs) and all(state in final for state, _ in rows.values()):
            return rows
        time.sleep(1)
    return rows


# every job of these rules
GPU_RULES = {"urban_predict", "npp_train", "npp_predict", "npp_longterm", "lcz_train", "lcz_predict", "vegplan_train",
             "vegplan_agent", "vegplan_plan"}


@pytest.mark.integration
@pytest.mark.skipif(not os.environ.get("URBANEO_SLURM"), reason=NO_CLUSTER)  # before any fixture runs
def test_tiny_city_on_slurm_equals_the_local_run(slurm_cluster, tiny_run, tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    log = tmp_path / "snakemake.log"
    proc = start_snakemake(wf, "--workflow-profile", str(ci_profile(wf)), "all", "--config", "cities=[tiny]",
                           prefix=("timeout", "-s", "INT", "-k", "60", str(RUN_LIMIT_S)), log=log)
    killer = KillOnce(log, wf / "resources/demo/urban/tiny/ifcn", proc)
    killer.start()
    try:
        rc = proc.wait(timeout=RUN_LIMIT_S + 120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
    text = log.read_text()
    assert rc == 0, text[-6000:]

    # every job but the `all` target went through sbatch, and SLURM ran each to completion
    # (the log of a failed SLURM job, echoed into this log, shows its rule as a `localrule`: so the
    # check is that every finished job but `all` was submitted)
    submitted = SUBMITTED.findall(text)
    finished_ids = {j for j, rule in re.findall(r"Finished jobid: (\d+) \(Rule: (\w+)\)", text) if rule != "all"}
    assert finished_ids <= set(re.findall(r"^Job (\d+) has been submitted with SLURM jobid", text, re.M))
    finished = [rule for rule in re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", text) if rule != "all"]
    states = sacct([job for job, _, _ in submitted])
    completed = [job for job, _, _ in submitted if states[job][0] == "COMPLETED"]
    assert len(completed) == len(finished) and len(submitted) == len(finished) + 1, states

    # the killed training job was resubmitted (a new SLURM job) and the run went on
    assert killer.killed, "the IFCN training job was never seen running with a checkpoint"
    assert states[killer.killed][0] == "FAILED"
    ifcn = [job for job, rule, wildcards in submitted if rule == "urban_train" and "ifcn" in wildcards.split("_")]
    assert len(ifcn) == 2 and ifcn[0] == killer.killed and states[ifcn[1]][0] == "COMPLETED"

    # GPU-tagged jobs (training and prediction of the networks) were given one GPU, the others none
    for job, rule, wildcards in submitted:
        wants_gpu = rule in GPU_RULES or (rule == "urban_train" and set(wildcards.split("_")) & set(URBAN_DEEP))
        assert ("gres/gpu=1" in states[job][1]) == bool(wants_gpu), (rule, wildcards, states[job])

    # the same bytes as the local run of the same city
    for folder in REPRODUCED:
        local, cluster = digests(tiny_run / folder), digests(wf / folder)
        assert local and cluster == local, folder
