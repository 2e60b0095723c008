"""The one rule for following a meeting's page tokens, shared by every iterator."""

from __future__ import annotations

import logging

from ._constants import LOGGER_NAME
from .models import ParticipantPage

__all__ = ["PageCursor"]

logger = logging.getLogger(LOGGER_NAME)


class PageCursor:
    """Follows one meeting's page tokens and says when to stop.

    The server's word is not trusted to end the pages: besides ``has_more == false``,
    a missing or empty token and a token seen before (a server loop; the official Go
    SDK spins forever on ``""``) end the meeting, with a warning.
    """

    __slots__ = ("_meeting_no", "_pages", "_seen", "token")

    def __init__(self, meeting_no: str, token: str | None = None) -> None:
        self._meeting_no = meeting_no
        self._pages = 0
        # Built on the second page: most meetings have one page and never need it.
        self._seen: set[str] | None = None
        self.token = token  # the token that fetches the next page; None: the first

    def follow(self, page: ParticipantPage) -> str | None:
        """Record ``page`` (fetched with :attr:`token`); return the next page's token, or
        ``None`` when ``page`` was the last. :attr:`token` moves on to the result."""
        self._pages += 1
        following = page.page_token if page.has_more else None
        if page.has_more and not following:
            logger.warning(
                "meeting %s: has_more is true but the page token is missing after page %d; "
                "stopping",
                self._meeting_no,
                self._pages,
            )
        elif following is not None:
            seen = self._seen
            if seen is None:
                seen = self._seen = {self.token} if self.token else set()
            if following in seen:
                logger.warning(
                    "meeting %s: the server repeated page token %r after page %d; "
                    "stopping to avoid a loop",
                    self._meeting_no,
                    following[:32],
                    self._pages,
                )
                following = None
            else:
                seen.add(following)
        self.token = following or None
        return self.token
