"""The tiny city on a real single-node SLURM cluster, through the project's SLURM profile.

The cluster is Debian's SLURM 22.05 with munge, slurmdbd and MariaDB (so sacct works) and two fake
GPUs, started on the loopback interface by ../shared/tools/slurm-local.sh and stopped by PID even
when the test fails. It needs root (CI runs as root); elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from snakemake_runs import REPRODUCED, copy_workflow, digests, start_snakemake
from urbaneo.presets import URBAN_DEEP

SLURM_LOCAL = REPO.parent / "shared" / "tools" / "slurm-local.sh"
RUN_LIMIT_S = 1200  # the whole cluster run, under `timeout -s INT` (SIGTERM can leave the plugin hanging)
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/(\S+)/\d+\.log\)")


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster (slurm-local.sh) installs packages and starts daemons as root")
    if not SLURM_LOCAL.is_file():
        pytest.skip(f"{SLURM_LOCAL} not found (CI has ../shared beside the clone)")
    # MariaDB runs as user mysql: the state folder must be reachable, so not under pytest's 0700 tmp
    lab = Path(tempfile.mkdtemp(prefix="urbaneo-slurm-"))
    lab.chmod(0o755)
    env = {**os.environ, "SLURMLAB": str(lab), "WITH_DBD": "1", "FAKE_GPUS": "2"}
    try:
        up = subprocess.run(["bash", str(SLURM_LOCAL), "up"], env=env, capture_output=True, text=True, timeout=900)
        assert up.returncode == 0, f"slurm-local.sh up failed:\n{up.stderr[-3000:]}"
        yield lab
    finally:
        subprocess.run(["bash", str(SLURM_LOCAL), "down", "--purge"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(lab, ignore_errors=True)


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
                    if m[1] == "train_urban" and "ifcn" in m[2].split("_")]
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
GPU_RULES = {"predict_urban", "train_npp_mae", "predict_npp", "longterm_npp", "train_lcz", "predict_lcz", "train_vegplan",
             "train_vegplan_agent", "plan_vegplan"}


@pytest.mark.integration
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
    submitted = SUBMITTED.findall(text)
    assert re.findall(r"^localrule (\w+):", text, re.M) == ["all"]
    finished = [rule for rule in re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", text) if rule != "all"]
    states = sacct([job for job, _, _ in submitted])
    completed = [job for job, _, _ in submitted if states[job][0] == "COMPLETED"]
    assert len(completed) == len(finished) and len(submitted) == len(finished) + 1, states

    # the killed training job was resubmitted (a new SLURM job) and the run went on
    assert killer.killed, "the IFCN training job was never seen running with a checkpoint"
    assert states[killer.killed][0] == "FAILED"
    ifcn = [job for job, rule, wildcards in submitted if rule == "train_urban" and "ifcn" in wildcards.split("_")]
    assert len(ifcn) == 2 and ifcn[0] == killer.killed and states[ifcn[1]][0] == "COMPLETED"

    # GPU-tagged jobs (training and prediction of the networks) were given one GPU, the others none
    for job, rule, wildcards in submitted:
        wants_gpu = rule in GPU_RULES or (rule == "train_urban" and set(wildcards.split("_")) & set(URBAN_DEEP))
        assert ("gres/gpu=1" in states[job][1]) == bool(wants_gpu), (rule, wildcards, states[job])

    # the same bytes as the local run of the same city
    for folder in REPRODUCED:
        local, cluster = digests(tiny_run / folder), digests(wf / folder)
        assert local and cluster == local, folder
