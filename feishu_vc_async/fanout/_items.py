"""What a fan-out yields, and the resume state a consumer keeps from it."""

from __future__ import annotations

import msgspec

from ..errors import FeishuError
from ..models import MeetingQuery, Participant

__all__ = ["FanOutItem", "MeetingFailure", "PageItem", "Resume"]


# gc=False: a page item never takes part in a reference cycle (query, list of structs,
# strings), so the collector need not track the many of them a bulk run allocates.
class PageItem(msgspec.Struct, frozen=True, gc=False):
    """One page of one meeting.

    ``page_token`` is the token that fetched this page (``None`` for the first page);
    ``next_page_token`` the one that fetches the next (``None`` when ``is_last``).
    ``page_index`` counts the pages of this meeting fetched by this run, from 0 (a
    resumed meeting starts again at 0, with a non-``None`` ``page_token``). A meeting
    without participants still gives one empty page with ``is_last`` set.
    """

    query: MeetingQuery
    participants: list[Participant]
    page_token: str | None
    next_page_token: str | None
    is_last: bool
    page_index: int

    @property
    def key(self) -> str:
        return self.query.key


class MeetingFailure(msgspec.Struct, frozen=True):
    """A meeting that could not be read to its end; the run goes on without it.

    ``error`` is the typed error (``code`` and ``log_id`` on :class:`~.errors.APIError`),
    raised after the client's own retries; an :class:`~.errors.InvalidQueryError` when
    the query was rejected before any request. ``pages_fetched`` pages were already
    yielded; ``next_page_token`` is the token of the page that failed (``None``: the
    first page), i.e. where a later run resumes. If the input yielded something that is
    not a ``MeetingQuery`` at all, ``query`` holds that object as given.
    """

    query: MeetingQuery
    error: FeishuError
    pages_fetched: int
    next_page_token: str | None

    @property
    def key(self) -> str | None:
        query: object = self.query
        return query.key if isinstance(query, MeetingQuery) else None


FanOutItem = PageItem | MeetingFailure


class Resume(msgspec.Struct):
    """Where an interrupted run stopped: meetings finished, the next token of others, and
    meetings given up for good.

    Keys are :attr:`MeetingQuery.key`. ``failed`` maps a meeting whose error is
    ``permanent`` (no such meeting, data gone, no permission, a refused parameter: see
    :mod:`~feishu_vc_async.errors`) to the platform code (0 when the error had none); a
    fan-out started from this state skips those meetings unless ``retry_failed``. A
    meeting that failed on a transient error is not in it: the next run asks again. The
    struct encodes with ``msgspec.json`` as is, so it can be the body of a checkpoint
    file; :meth:`record` keeps it current.
    """

    completed: set[str] = msgspec.field(default_factory=set)
    next_tokens: dict[str, str] = msgspec.field(default_factory=dict)
    failed: dict[str, int] = msgspec.field(default_factory=dict)

    def record(self, item: PageItem | MeetingFailure) -> None:
        """Advance the state past ``item`` (a page delivered, or a meeting given up)."""
        if isinstance(item, PageItem):
            key = item.query.key
            self.failed.pop(key, None)  # a page of a meeting retried after a failure
            if item.is_last or item.next_page_token is None:
                self.completed.add(key)
                self.next_tokens.pop(key, None)
            else:
                self.next_tokens[key] = item.next_page_token
            return
        key_or_none = item.key
        if key_or_none is None:
            return
        if item.next_page_token is not None:
            # A failed meeting is retried by the next run from the page that failed.
            self.next_tokens[key_or_none] = item.next_page_token
        if item.error.permanent:
            self.failed[key_or_none] = item.error.code or 0
        else:
            self.failed.pop(key_or_none, None)
