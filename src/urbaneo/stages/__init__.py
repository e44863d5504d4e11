"""The product stages, one package each: ``stages/<stage>/<step>.py`` is the code of the command
``urbaneo <stage> <step>`` and of the workflow rule ``<stage>_<step>``.

A stage package's ``__init__`` is light (no numerics imported): its docstring's first line is the
stage's help and ``STEPS`` maps each step (a module beside it) to its one-line help, so the command
line can list every step without importing any of them. A step module defines
``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import importlib

STAGES = ("urban", "npp", "lcz", "vegplan")


def stage(name: str):
    """The stage's package (its docstring and ``STEPS``)."""
    return importlib.import_module(f"urbaneo.stages.{name}")


def step(stage_name: str, step_name: str):
    """The module of one step (imports its numerics)."""
    return importlib.import_module(f"urbaneo.stages.{stage_name}.{step_name}")
