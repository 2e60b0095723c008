"""Bulk export of participants, resumable after any crash: ``await export(client, job)``.

::

    from feishu_vc_async.export import ExportJob, MeetingRange, export, file_output

    async with VCClient(AppCredentials(app_id, secret)) as client:
        job = ExportJob(MeetingRange(MeetingListQuery(start_time=a, end_time=b)),
                        file_output("november.parquet"), mode="resume")
        run = await export(client.for_tenant(key) if store_app else client, job)

The parts, each a module:

* ``_job``          :class:`ExportJob`: which meetings, which output, which mode
* ``_run``          :func:`export` and the :class:`ExportRun` it returns
* ``_ledger``       the checkpoint rules, the same for every output
* ``_output``       the :class:`Output` protocol and its crash contract
* ``_file_output``  the file output (data file + checkpoint + failures + lock)
* ``_database``     a database output from its URL: ``_db_output`` keeps the protocol
                    with a transaction over a store (``_postgres``, ``_sqlite``); the
                    tables and why a participant row is keyed as it is: ``_db_tables``
* ``_formats``      JSONL, CSV and Parquet, one writer each (also ``feishu-vc meetings``')
* ``_state``        the export's saved progress, whatever the output
* ``_errors``       what stops an export before its first request, typed
* ``_rows``         participant → row; the columns; redaction
* ``_input``        a meetings file (CSV / JSONL) → validated ``MeetingQuery`` list
"""

from ._database import database_output, is_database_url
from ._db_output import DatabaseOutput
from ._errors import (
    CheckpointError,
    CheckpointMismatchError,
    DatabaseOutputError,
    ExportError,
    OutputChangedError,
    OutputExistsError,
    OutputInUseError,
    UnfinishedExportError,
)
from ._failures import FailureRecord
from ._file_output import FileOutput, file_output
from ._formats import OUTPUT_FORMATS, OutputFormat, RowFormat
from ._input import BadRow, MeetingList, MeetingsFileError, load_meetings, parse_meetings
from ._job import ExportJob
from ._ledger import OpenMode
from ._output import Output
from ._range import MeetingRange
from ._rows import ALL_COLUMNS, JOINABLE_COLUMNS, PII_FIELDS, RowBuilder, check_columns
from ._run import ExportRun, export, stops_the_run
from ._state import ExportState

__all__ = [
    "ALL_COLUMNS",
    "JOINABLE_COLUMNS",
    "OUTPUT_FORMATS",
    "PII_FIELDS",
    "BadRow",
    "CheckpointError",
    "CheckpointMismatchError",
    "DatabaseOutput",
    "DatabaseOutputError",
    "ExportError",
    "ExportJob",
    "ExportRun",
    "ExportState",
    "FailureRecord",
    "FileOutput",
    "MeetingList",
    "MeetingRange",
    "MeetingsFileError",
    "OpenMode",
    "Output",
    "OutputChangedError",
    "OutputExistsError",
    "OutputFormat",
    "OutputInUseError",
    "RowBuilder",
    "RowFormat",
    "UnfinishedExportError",
    "check_columns",
    "database_output",
    "export",
    "file_output",
    "is_database_url",
    "load_meetings",
    "parse_meetings",
    "stops_the_run",
]
