"""Errors a user can fix. The CLI prints them on one screen, without a traceback."""

from __future__ import annotations


class HpoError(Exception):
    """A problem with the user's input or environment; `exit_code` is the process exit status."""

    exit_code = 1


class UsageError(HpoError):
    """A command-line value that cannot work (a path that cannot be written, ...): exit 2."""

    exit_code = 2


class StudyFileError(HpoError):
    """A study file that cannot run. Lists every problem found, each with its key path."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {len(self.problems)} problem(s) in the study file"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))
