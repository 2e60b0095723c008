"""What stops an export before (or instead of) its first request, typed.

Each names the output (``where``: a path, or a database without its password) and says
what is wrong in the library's words; a program with switches of its own (the CLI)
adds its advice by type, so these never speak of flags::

    ExportError
    ├── OutputExistsError        the output holds something no saved export claims
    ├── OutputInUseError         another run is writing the output now
    ├── DatabaseOutputError      the database cannot be used (unreachable, refused,
    │                            tables of another shape or a newer version) or was lost
    └── CheckpointError          the saved progress cannot be used for this run
        ├── UnfinishedExportError    a fresh start would discard an unfinished export
        ├── CheckpointMismatchError  it belongs to other meetings or other options
        └── OutputChangedError       the output no longer matches it (edited, cut, gone)
"""

from __future__ import annotations

from ..errors import FeishuError

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "DatabaseOutputError",
    "ExportError",
    "OutputChangedError",
    "OutputExistsError",
    "OutputInUseError",
    "UnfinishedExportError",
]


class ExportError(FeishuError):
    """An export cannot use its output as asked; nothing was requested or written."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem  # worded to follow ``where``: "out.csv holds ..."
        super().__init__(f"{where} {problem}")


class OutputExistsError(ExportError, ValueError):
    """The output exists and no saved progress says it is this export's: replacing it
    takes an explicit ``mode="overwrite"``."""


class OutputInUseError(ExportError):
    """Another run holds the output's lock (the message names it)."""


class DatabaseOutputError(ExportError):
    """The database of an output cannot be used: unreachable, the login or a permission
    refused, tables of another shape or of a newer version of this library; or it went
    away during the run (what was committed stays, a rerun continues from it)."""


class CheckpointError(ExportError, ValueError):
    """The saved progress (a checkpoint file, a progress table) cannot be used for this
    run: damaged, or written by another version."""


class UnfinishedExportError(CheckpointError):
    """A fresh start (``mode="new"``) would throw away an unfinished export: continue it
    (``"resume"``) or discard it (``"overwrite"``)."""


class CheckpointMismatchError(CheckpointError):
    """The saved progress is of another export (other meetings, format, columns,
    redaction or page size)."""


class OutputChangedError(CheckpointError):
    """The output no longer holds what its saved progress vouches for (written to by
    another program, edited, cut short or gone): continuing would lose or repeat rows."""
