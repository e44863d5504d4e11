"""One name per step: rule ``<stage>_<step>`` runs ``urbaneo <stage> <step>``, whose code is
``urbaneo/stages/<stage>/<step>.py``; a shared rule ``X`` runs ``urbaneo X`` (``_`` as ``-``), code
``urbaneo/X.py``. The workflow is parsed in-process (no job runs)."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from conftest import REPO
from urbaneo import stages
from urbaneo.cli import SHARED_STEPS, build_parser

COMMAND = re.compile(r"^(?:urbaneo|\{params\.launcher\})\s+(\S+)(?:\s+(\S+))?")


@pytest.fixture(scope="module")
def workflow_rules():
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        wf = api.workflow(resource_settings=ResourceSettings(), config_settings=ConfigSettings(config={"cities": ["tiny"]}),
                          snakefile=REPO / "Snakefile", workdir=REPO)
        yield list(wf._workflow.rules)


def expected(rule_name: str) -> tuple[str, str]:
    """(the command words, the module) a rule's name stands for."""
    stage, _, step = rule_name.partition("_")
    if stage in stages.STAGES:
        return f"{stage} {step}", f"urbaneo.stages.{stage}.{step}"
    return rule_name.replace("_", "-"), f"urbaneo.{rule_name}"


def test_every_rule_runs_its_own_command_and_module(workflow_rules):
    jobs = [r for r in workflow_rules if r.shellcmd]
    assert len(jobs) >= 25
    for rule in jobs:
        words, module_name = expected(rule.name)
        found = COMMAND.match(rule.shellcmd.strip())
        assert found, f"rule {rule.name}: shell does not start with urbaneo: {rule.shellcmd[:80]}"
        command = " ".join(found.groups()) if " " in words else found.group(1)
        assert command == words, f"rule {rule.name} runs 'urbaneo {command}', expected 'urbaneo {words}'"
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.main), module_name
        assert rule.name in str(rule.log[0]), f"rule {rule.name} logs to {rule.log[0]}"


def test_every_command_step_has_its_rule(workflow_rules):
    names = {r.name for r in workflow_rules if r.shellcmd}
    steps = {f"{s}_{step}" for s in stages.STAGES for step in stages.stage(s).STEPS} | set(SHARED_STEPS)
    assert steps == names


def test_stage_packages_are_light_and_list_their_modules():
    for name in stages.STAGES:
        package = stages.stage(name)
        folder = Path(package.__file__).parent
        for step in package.STEPS:
            assert (folder / f"{step}.py").is_file(), f"{name}.{step}"
        source = (folder / "__init__.py").read_text()
        assert not re.search(r"^\s*(import|from)\s+(numpy|torch|xarray|rasterio)", source, re.M), name


def test_every_help_formats():
    """``urbaneo --help`` and every command's help (a bare % in a help text crashes argparse)."""
    parser = build_parser()
    seen = 0
    stack = [parser]
    while stack:
        p = stack.pop()
        assert p.format_help()
        seen += 1
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    assert seen > 40


def test_the_registry_names_what_the_steps_do():
    from urbaneo import align, preview, registry

    assert set(registry.ALIGNED) == set(align.ALIGNERS)
    assert set(registry.BLOCKWISE) == set(align.BLOCKWISE)
    assert set(registry.PREVIEWED) == set(preview.PREVIEWS)


def test_parsing_the_workflow_imports_no_numerics():
    """What common.smk imports at parse time (so `snakemake -n` starts fast)."""
    import subprocess
    import sys

    imports = [line.split()[1] for line in (REPO / "workflow/rules/common.smk").read_text().splitlines()
               if line.startswith(("from urbaneo", "import urbaneo"))]
    assert imports
    code = ("import sys\n" + "".join(f"import {m}\n" for m in imports)
            + "print(sorted(m for m in ('numpy', 'xarray', 'rasterio', 'matplotlib', 'torch', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
