"""What a database's refusals and losses say: one typed error, worded for a person."""

from __future__ import annotations

import re
import sqlite3

from ._errors import DatabaseOutputError

__all__ = ["check_identifier", "database_problem"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_identifier(what: str, name: str) -> str:
    """``name`` if it is a plain SQL identifier (letters, digits, ``_``; at most 63
    characters: PostgreSQL's limit), else ``ValueError`` naming ``what``."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"{what} {name!r}: must be letters, digits and _ (not first), at most 63 characters"
        )
    return name


def _what_went_wrong(exc: BaseException) -> str:
    kind = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
    if kind in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return f"refused the login: {text}"
    if kind == "InvalidCatalogNameError":
        return f"has no such database: {text}"
    if kind == "InsufficientPrivilegeError":
        return f"refused a permission: {text}"
    lost = kind == "InterfaceError" and "closed" in text
    if lost or kind in ("ConnectionDoesNotExistError", "AdminShutdownError"):
        return f"closed the connection: {text}"
    if isinstance(exc, TimeoutError):
        return "did not answer in time"
    if isinstance(exc, ConnectionError | OSError):
        return f"cannot be reached: {text}"
    if isinstance(exc, sqlite3.Error):
        return f"refused: {text}"
    return f"failed: {kind}: {text}"


def database_problem(where: str, doing: str, exc: BaseException) -> DatabaseOutputError:
    """The error for ``exc``, raised by the database at ``where`` while ``doing``. What
    was committed before stays: a rerun continues from it."""
    return DatabaseOutputError(where, f"{_what_went_wrong(exc)} (while {doing})")
