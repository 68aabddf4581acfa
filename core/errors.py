"""User-facing errors: one clear line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input from the user (missing/corrupt file, wrong option). The CLI exits with 2."""


class DataError(UserError):
    """A data file cannot be used. The message always names the file."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ModelFileError(UserError):
    """A model file is truncated, tampered with, from a newer schema, or incompatible."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
