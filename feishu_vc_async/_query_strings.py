"""participant_list's query strings: built from a query once it is validated, and kept
for the next pages of the same query."""

from __future__ import annotations

from typing import Final

from .models import MeetingQuery, validate_page_size

__all__ = ["QueryStrings", "page_token_param", "query_params"]

# Validated query strings a client keeps (a fan-out's meetings in flight, and then some).
_KEPT_MAX: Final = 1024


def query_params(query: MeetingQuery, page_size: int) -> dict[str, str]:
    """The request's query string; raises InvalidQueryError before any request."""
    if not isinstance(query, MeetingQuery):
        raise TypeError(f"query: must be a MeetingQuery, got {type(query).__name__}")
    query.validate()
    params = query.to_params()
    params["page_size"] = str(validate_page_size(page_size))
    return params


def page_token_param(page_token: object) -> str | None:
    """A page token to send, or ``None`` for the first page (``""`` included)."""
    if page_token is None or page_token == "":
        return None
    if not isinstance(page_token, str):
        raise TypeError(f"page_token: must be a string or None, got {type(page_token)}")
    return page_token


class QueryStrings:
    """:func:`query_params` of a query, validated once and then kept: a fan-out asks for
    every page of a meeting with the same query, and the checks cannot start to fail
    later (the one that reads the clock refuses a start later than now). Callers must
    not change the dict they get. A small bounded map (cleared when full)."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[tuple[int, int], tuple[MeetingQuery, dict[str, str]]] = {}

    def checked(self, query: MeetingQuery, page_size: int) -> dict[str, str]:
        if type(query) is not MeetingQuery or type(page_size) is not int:
            # A subclass may change what validate does; a page size of another type
            # (50.0, True) would equal a valid one as a key and skip its check.
            return query_params(query, page_size)
        # By identity, not equality: a float time equals its int, and must still be
        # refused. The query is kept with its entry, so its id cannot be reused.
        key = (id(query), page_size)
        entry = self._kept.get(key)
        if entry is not None and entry[0] is query:
            return entry[1]
        params = query_params(query, page_size)
        if len(self._kept) >= _KEPT_MAX:
            self._kept.clear()
        self._kept[key] = (query, params)
        return params
