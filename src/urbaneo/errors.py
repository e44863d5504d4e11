"""The one error type users see for bad input: a single line naming the file (or config key) and the problem."""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """Bad input: ``str(err)`` is ``"<where>: <problem>"`` on one line."""

    def __init__(self, where: str | PathLike, problem: str):
        self.where = str(where)
        self.problem = " ".join(str(problem).split())  # keep it on one line
        super().__init__(f"{self.where}: {self.problem}")
