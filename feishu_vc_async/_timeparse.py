"""The one rule for a point in time given as text: unix seconds or ISO 8601 with an offset.

Used by the meetings file's time columns and meant for any later option that takes a
time (such as ``--since``/``--until``), so that every place reads times alike.

Unix seconds are ASCII digits only: no sign (a time cannot be before 1970), no
underscores, exponents or decimals. ``str.isdigit``/``int``/``float`` are not used to
decide, because they accept superscript and full-width digits, ``"1_000"`` and
``"1e9"``, which a meeting number in the same file may not contain. An ISO 8601 time
must say its offset (``+08:00`` or ``Z``): a bare local time means a different instant
on every machine.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "INSTANT_RULE",
    "MAX_UNIX_SECONDS",
    "TIME_RULE",
    "check_unix_seconds",
    "local_zone",
    "parse_instant",
    "parse_unix_or_iso",
    "unix_from_datetime",
    "zone_named",
]

TIME_RULE = (
    "must be unix seconds (ASCII digits 0-9, no sign) or ISO 8601 with an offset "
    "(e.g. 2024-05-01T09:00:00+08:00 or 2024-05-01T01:00:00Z)"
)
# datetime's range ends in year 9999; a later time cannot be shown or typed anywhere.
MAX_UNIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

_UNIX = re.compile(r"[0-9]+", re.ASCII)
# Shapes that are close to unix seconds but break the rule, named so the message helps.
_SIGNED = re.compile(r"[+-]+[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[0-9]*\.[0-9]+|[0-9]+\.", re.ASCII)


def parse_unix_or_iso(text: str) -> int:
    """``"1714525200"`` or ``"2024-05-01T09:00:00+08:00"`` → unix seconds.

    Surrounding whitespace is ignored. Raises ``ValueError`` whose message names the
    rule that ``text`` breaks (and never any other exception, whatever ``text`` is).
    """
    stripped = text.strip()
    if not stripped.isascii():
        raise ValueError(TIME_RULE)
    if _UNIX.fullmatch(stripped):
        return _unix_from_digits(stripped)
    if _SIGNED.fullmatch(stripped):
        raise ValueError(f"unix seconds take no sign (a time cannot be before 1970); {TIME_RULE}")
    if _DECIMAL.fullmatch(stripped):
        raise ValueError("must be whole unix seconds (no decimals)")
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(TIME_RULE) from None
    if parsed.tzinfo is None:
        raise ValueError("an ISO 8601 time needs an offset such as +08:00 or Z")
    return unix_from_datetime(parsed)


def unix_from_datetime(value: datetime) -> int:
    """An aware ``datetime`` → unix seconds; ``ValueError`` unless whole and 1970..9999.

    Exact (``timedelta`` arithmetic, not the float of ``timestamp()``), so a fraction of a
    second is refused rather than silently cut off.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("an ISO 8601 time needs an offset such as +08:00 or Z")
    seconds, rest = divmod(value - _EPOCH, _SECOND)
    if rest:
        raise ValueError("must be whole seconds (no fraction of a second)")
    return check_unix_seconds(seconds)


def check_unix_seconds(seconds: int) -> int:
    """``seconds`` if it is a time from 1970 to 9999, else ``ValueError``."""
    if seconds < 0:
        raise ValueError("cannot be before 1970-01-01T00:00:00Z (unix seconds are not negative)")
    if seconds > MAX_UNIX_SECONDS:
        raise ValueError(f"cannot be after 9999-12-31T23:59:59Z ({MAX_UNIX_SECONDS})")
    return seconds


def _unix_from_digits(digits: str) -> int:
    # Checked by length first: int() refuses more than 4300 digits with its own error.
    significant = digits.lstrip("0")
    if len(significant) > len(str(MAX_UNIX_SECONDS)):
        raise ValueError(f"cannot be after 9999-12-31T23:59:59Z ({MAX_UNIX_SECONDS})")
    return check_unix_seconds(int(significant or "0"))


# --- a point in time as a user types it on the command line (--since, --until) ---------

INSTANT_RULE = (
    "must be a date (2026-11-01), an ISO 8601 time (2026-11-01T09:00, with or without an "
    "offset), unix seconds, a span back from now (7d, 24h, 30m, 2w) or 'now'"
)
_SPAN = re.compile(r"([0-9]{1,6})([smhdw])", re.ASCII)
_SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def parse_instant(text: str, *, tz: tzinfo, now: float, end_of_day: bool = False) -> int:
    """A point in time as typed on the command line → unix seconds.

    Unix seconds and ISO 8601 with an offset mean what they say. A date, or an ISO time
    without an offset, is read in ``tz``; a date is its first second, or with
    ``end_of_day`` its last (``--until 2026-11-30`` includes the 30th). ``7d``, ``24h``,
    ``30m``, ``2w`` are that long before ``now``; ``now`` is ``now``. ``ValueError``
    names the rule for anything else (and nothing else is ever raised).
    """
    stripped = text.strip().lower()
    if not stripped.isascii() or not stripped:
        raise ValueError(INSTANT_RULE)
    if stripped == "now":
        return check_unix_seconds(int(now))
    span = _SPAN.fullmatch(stripped)
    if span is not None:
        return check_unix_seconds(int(now) - int(span[1]) * _SPAN_SECONDS[span[2]])
    if _DATE.fullmatch(stripped):
        try:
            day = date.fromisoformat(stripped)
        except ValueError:
            raise ValueError(f"not a calendar date; {INSTANT_RULE}") from None
        if end_of_day:
            return unix_from_datetime(datetime.combine(day + timedelta(days=1), time(), tz)) - 1
        return unix_from_datetime(datetime.combine(day, time(), tz))
    if _UNIX.fullmatch(stripped):
        return _unix_from_digits(stripped)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(INSTANT_RULE) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return unix_from_datetime(parsed)


def zone_named(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``Asia/Shanghai``), or ``UTC``; ``ValueError`` if
    the machine does not know it."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai or UTC"
        ) from None


def local_zone() -> tzinfo:
    """The machine's zone, by IANA name where it can be told (``TZ``, or where
    ``/etc/localtime`` points), else today's fixed offset."""
    names = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        target = os.path.realpath("/etc/localtime")
        names.append(target.partition("/zoneinfo/")[2])
    for name in names:
        if name:
            with contextlib.suppress(ValueError):
                return zone_named(name)
    found = datetime.now().astimezone().tzinfo
    assert found is not None  # astimezone() always gives an aware time
    return found
