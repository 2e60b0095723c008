"""What is wrong with a meetings file, one broken rule at a time, whatever its format.

Every reader (CSV, JSONL, Parquet) reports in these terms, so a bad file reads the same
way in each: where (a line, a row, or the whole file), the field, the value and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._input_columns import REQUIRED_COLUMNS, Columns

__all__ = ["BadRow", "Unit", "header_problems"]

# What a position in the file counts: a text file's lines (where an editor goes), or a
# Parquet file's rows (it has no lines).
Unit = Literal["line", "row"]


@dataclass(frozen=True, slots=True)
class BadRow:
    """One broken rule in the meetings file. ``line`` is 1-based (a line of a text file,
    a row of a Parquet file); 0 means the whole file."""

    line: int
    field: str | None
    value: object
    rule: str

    def describe(self, source: str = "", unit: Unit = "line") -> str:
        if not self.line:
            where = source or "input"
        elif unit == "line":
            where = f"{source}:{self.line}"
        else:
            where = f"{source}: row {self.line}"
        if self.field is None:
            return f"{where}: {self.rule}"
        return f"{where}: {self.field}={self.value!r}: {self.rule}"


def header_problems(header: list[str], columns: Columns, line: int) -> list[BadRow]:
    """The problems of a file's column names (a CSV header, a Parquet schema)."""
    problems: list[BadRow] = []
    if columns.missing:
        problems.append(
            BadRow(
                line,
                None,
                None,
                f"missing required column(s) {', '.join(columns.missing)} "
                f"(the header must name {', '.join(REQUIRED_COLUMNS)})",
            )
        )
    problems.extend(BadRow(line, None, None, rule) for rule in columns.typos)
    # Only the columns read must be unique; a list from elsewhere may repeat the others.
    duplicated = sorted({c for c in header if c in columns.used and header.count(c) > 1})
    if duplicated:
        problems.append(BadRow(line, None, None, f"column(s) named twice: {', '.join(duplicated)}"))
    return problems
