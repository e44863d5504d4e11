"""Running the real workflow from tests: a private copy, snakemake as a subprocess, output digests."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = BIN / "snakemake"


def copy_workflow(root: Path) -> Path:
    """A private copy of the workflow (with the rules' conda env file), so runs touch nothing here."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", root)
    for folder in ("workflow", "config", "envs"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder)
    return root


def start_snakemake(root: Path, *args: str, prefix: tuple[str, ...] = (), log: Path | None = None,
                    env: dict | None = None) -> subprocess.Popen:
    """snakemake on the copy at ``root`` (``prefix``: a wrapper such as timeout; ``env``: variables
    added to this process's); output piped, or both streams into ``log``."""
    # The rules call `urbaneo`, installed beside this interpreter's snakemake (jobs inherit PATH,
    # on SLURM too: sbatch exports the environment).
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    out = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 - closed with the process
    try:
        return subprocess.Popen([*prefix, str(SNAKEMAKE), "-s", str(root / "Snakefile"), "-d", str(root), *args],
                                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE,
                                text=True)
    finally:
        if log:
            out.close()


def finish(proc: subprocess.Popen, timeout: int = 120) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def snakemake(root: Path, *args: str, timeout: int = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake on a copy; targets go before --config (which takes every word after it)."""
    return finish(start_snakemake(root, *args, env=env), timeout)


def run_all_on_tiny(root: Path) -> Path:
    """`snakemake all` on the tiny generated city in a fresh copy at ``root``, locally."""
    copy_workflow(root)
    proc = snakemake(root, "--cores", "2", "--show-failed-logs", "all", "--config", "cities=[tiny]", timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


# Measured wall times (the NPP and vegetation-plan stages' Table 4), by nature different on every run:
# timings.json and <model>_timings.json.
NOT_REPRODUCIBLE = "timings.json"


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden files, such as resumable checkpoints, and measured
    timings aside)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(NOT_REPRODUCIBLE)}


# What a tiny run must reproduce byte for byte: inputs, tiles, trained models and their
# predictions, everything published.
REPRODUCED = ("resources/raw/tiny", "resources/tiles/tiny", "resources/demo/urban/tiny", "resources/demo/npp/tiny",
              "resources/demo/lcz/tiny", "resources/demo/vegplan/tiny", "results/demo")
