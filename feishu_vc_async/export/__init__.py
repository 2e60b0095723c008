"""Bulk export of participants to JSONL, CSV or Parquet, resumable after any crash.

The ``feishu-vc export`` command is built from these parts:

* ``_input``       the meetings file (CSV / JSONL) → validated ``MeetingQuery`` list
* ``_rows``        participant → row; ``--fields``; ``--redact-pii``
* ``_writers``     byte encoders, the append-only data file, JSONL → Parquet
* ``_checkpoint``  the atomic checkpoint file
* ``_sink``        data file + checkpoint kept consistent, page by page
* ``_lock``        one writer per output (``FILE.lock``)
* ``_progress``    live bar or log lines
* ``_config``      options and environment → ``ExportConfig``
* ``_run``         the job itself and its summary
"""

from typing import Any

from .._deprecated import module_getattr
from ._checkpoint import CheckpointError
from ._config import ConfigError, ExportConfig
from ._input import BadRow, MeetingsFileError, load_meetings, parse_meetings
from ._lock import OutputInUseError
from ._rows import ALL_COLUMNS, PII_FIELDS, RowBuilder, parse_fields
from ._run import ExportRun, run_export
from ._sink import ExportSink, SinkPaths

__all__ = [
    "ALL_COLUMNS",
    "PII_FIELDS",
    "BadRow",
    "CheckpointError",
    "ConfigError",
    "ExportConfig",
    "ExportRun",
    "ExportSink",
    "MeetingsFileError",
    "OutputInUseError",
    "RowBuilder",
    "SinkPaths",
    "load_meetings",
    "parse_fields",
    "parse_meetings",
    "run_export",
]

# Old names that keep working, with a DeprecationWarning, for one release.
_DEPRECATED: dict[str, tuple[str, Any]] = {"ExportOutcome": ("ExportRun", ExportRun)}
__getattr__ = module_getattr(__name__, _DEPRECATED)
