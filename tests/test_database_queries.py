"""The database example and its SQL: ``examples/attendance_database.py`` runs standalone
into SQLite and PostgreSQL; the README's queries are the files in ``examples/sql/``; and
they answer alike in both databases, as the emulator's data says they should."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from feishu_vc_async.emulator import Emulator
from feishu_vc_async.export import ExportJob, export
from tests._databases import TestDatabase
from tests._fanout import make_client

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "examples" / "sql"


def _sql(name: str) -> str:
    return (SQL / name).read_text()


def test_the_readme_shows_the_example_queries_as_they_are() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("attendance_per_week.postgres.sql", "most_external.sql"):
        assert f"```sql\n{_sql(name)}```" in readme, name


async def _answers(database: TestDatabase, name: str) -> list[tuple[Any, ...]]:
    sql = _sql(name).replace("feishu_vc_", f"{database.table('feishu_vc_')}")
    return await database.fetch(sql)


async def test_the_queries_answer_as_the_data_says_in_both_databases(
    database: TestDatabase,
) -> None:
    async with Emulator(meetings=40, seed=71, rate_limit=None) as emu, make_client(emu) as client:
        run = await export(client, ExportJob(emu.meetings, database.output()))
        assert run.complete
        people: Counter[str] = Counter()
        external: Counter[str] = Counter()
        for query in emu.meetings:
            rows = emu.participants(query)
            people.update({p.user_id for p in rows if p.user_id})
            external[query.meeting_no + f"@{query.meeting_start_time}"] += sum(
                bool(p.is_external) for p in rows
            )
    dialect = "postgres" if database.kind == "postgres" else "sqlite"
    weeks = await _answers(database, f"attendance_per_week.{dialect}.sql")
    # Each person's meetings, summed over the weeks, are the meetings they attended.
    per_person: Counter[str] = Counter()
    for user_id, _name, _week, meetings, _hours in weeks:
        per_person[user_id] += meetings
    assert per_person == people
    most = await _answers(database, "most_external.sql")
    top = sorted((n for n in external.values() if n), reverse=True)[:10]
    assert [row[3] for row in most] == top


def _example(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FEISHU_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "attendance_database.py"), *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_attendance_example_runs_standalone(
    database: TestDatabase, tmp_path: Path
) -> None:
    schema = ["--db-schema", database.schema] if database.schema else []
    done = _example(tmp_path, "--db", database.url, *schema)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tables match the emulator's data" in done.stdout
    assert "meetings with the most external participants: 10 rows" in done.stdout
