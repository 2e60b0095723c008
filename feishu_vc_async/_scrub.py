"""Keep credentials out of every text the library shows: errors, logs, failure files.

A server may echo what it was sent (an error page quoting the ``Authorization`` header,
a cut-short token answer), so any text taken from an answer is scrubbed before it is
kept: the secrets the caller named, and anything shaped like a platform token (``t-``
tenant, ``u-`` user, ``ur-`` user refresh, ``a-`` app tokens), known or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

__all__ = ["MASK", "redact_url", "scrub"]

MASK: Final = "***"

# A token prefix, then a run of token characters long enough not to be a word ("t-shirt").
_TOKEN_SHAPED: Final = re.compile(r"(?<![A-Za-z0-9])(?:t|u|ur|a)-[A-Za-z0-9_.~+/=-]{12,}")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret and every token-shaped run replaced by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return _TOKEN_SHAPED.sub(MASK, text)


def redact_url(url: str) -> str:
    """A URL with any password replaced, fit for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@")
    return parts._replace(netloc=netloc).geturl()
