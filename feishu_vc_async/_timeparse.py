"""Time as text, read and written in one place: what a user types and what the platform sends.

A point in time given by a user (a meetings file's time columns, ``--since``/``--until``)
is unix seconds or ISO 8601 with an offset, so that every place reads times alike.
Unix seconds are ASCII digits only: no sign (a time cannot be before 1970), no
underscores, exponents or decimals. ``str.isdigit``/``int``/``float`` are not used to
decide, because they accept superscript and full-width digits, ``"1_000"`` and
``"1e9"``, which a meeting number in the same file may not contain. An ISO 8601 time
must say its offset (``+08:00`` or ``Z``): a bare local time means a different instant
on every machine.

The platform's own strings (``"2022.12.23 11:16:59 (GMT+08:00)"``, durations
``"00:01:52"``) are read by the typed views of every row of an export, so they have a
table-driven fast path; a malformed string gives ``None``, never an exception.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "INSTANT_RULE",
    "MAX_UNIX_SECONDS",
    "TIME_RULE",
    "check_unix_seconds",
    "feishu_time_micros",
    "feishu_time_reader",
    "format_duration",
    "format_feishu_time",
    "local_zone",
    "parse_duration",
    "parse_feishu_time",
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


def parse_span(text: str) -> int | None:
    """``"7d"``, ``"24h"``, ``"30m"``, ``"90s"``, ``"2w"`` → seconds; ``None`` if not one."""
    span = _SPAN.fullmatch(text.strip().lower())
    return None if span is None else int(span[1]) * _SPAN_SECONDS[span[2]]


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
    span = parse_span(stripped)
    if span is not None:
        return check_unix_seconds(int(now) - span)
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


# --- the platform's time strings and durations -----------------------------------------

# "2022.12.23 11:16:59 (GMT+08:00)": wall time plus the offset it was shown in.
_FEISHU_TIME = re.compile(
    r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})"
    r" \(GMT(?:([+-])(\d{1,2})(?::?([0-5]\d))?)?\)",
    re.ASCII,
)
_TZ_CACHE: dict[str, timezone] = {}


def _offset(sign: str | None, hours: str | None, minutes: str | None) -> timezone:
    key = f"{sign}{hours}:{minutes}"
    tz = _TZ_CACHE.get(key)
    if tz is None:
        if sign is None:
            tz = UTC
        else:
            delta = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
            tz = timezone(-delta if sign == "-" else delta)  # raises for |offset| >= 24h
        _TZ_CACHE[key] = tz
    return tz


# The platform sends one fixed shape, and an export reads these views for every row, so
# that shape is read with two dict lookups and one timedelta addition: building the
# datetime from parsed ints or through fromisoformat costs twice as much. Whatever the
# tables do not know goes the general way (the regex), which also decides what is
# malformed. Both tables are filled on first use: building them at import would cost
# every process milliseconds, most of them for entries it never reads.
#
# The start of an hour in an offset, keyed by "YYYY.MM.DD hh:" + " (GMT±hh:mm)". An
# export spans few hours and offsets, so a small table almost always hits; it is emptied
# when full so that it stays small whatever it is fed.
_HOUR_STARTS: dict[str, datetime] = {}
# A month of hours in 22 offsets (a range export over many time zones): past this the
# table starts again, and every miss costs ten hits.
_HOUR_STARTS_MAX: Final = 16_384
_HOUR_KEY = re.compile(
    r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}): \(GMT([+-])(\d{2}):([0-5]\d)\)", re.ASCII
)
# "mm:ss" → timedelta: only valid keys are stored, so never more than 3,600.
_MINUTES_SECONDS: dict[str, timedelta] = {}
_MINUTES_SECONDS_SHAPE = re.compile(r"([0-5]\d):([0-5]\d)", re.ASCII)
# "hh:" of a duration (hours may pass 24; more than two digits go the general way).
_DURATION_HOURS: Final[dict[str, timedelta]] = {f"{h:02d}:": timedelta(hours=h) for h in range(100)}


def _hour_start(key: str) -> datetime | None:
    m = _HOUR_KEY.fullmatch(key)
    if m is None:
        return None
    year, month, day, hour, sign, hours, minutes = m.groups()
    try:
        start = datetime(
            int(year), int(month), int(day), int(hour), tzinfo=_offset(sign, hours, minutes)
        )
    except ValueError:
        return None
    if len(_HOUR_STARTS) >= _HOUR_STARTS_MAX:
        _HOUR_STARTS.clear()
    _HOUR_STARTS[key] = start
    return start


def _minutes_seconds(text: str) -> timedelta | None:
    m = _MINUTES_SECONDS_SHAPE.fullmatch(text)
    if m is None:
        return None
    value = timedelta(minutes=int(m[1]), seconds=int(m[2]))
    _MINUTES_SECONDS[text] = value
    return value


def parse_feishu_time(value: str | None) -> datetime | None:
    """``"2022.12.23 11:16:59 (GMT+08:00)"`` → an aware ``datetime``; ``None`` if malformed."""
    # No length check first: only a 31-character string can hit both tables (None raises
    # TypeError), and checking would cost a fifth of the lookups.
    try:
        start: datetime = _HOUR_STARTS[value[:14] + value[19:]]  # type: ignore[index]
        rest: timedelta = _MINUTES_SECONDS[value[14:19]]  # type: ignore[index]
        return start + rest
    except (KeyError, TypeError):
        return _parse_feishu_time(value)


def _parse_feishu_time(value: str | None) -> datetime | None:
    if not value:
        return None
    if len(value) == 31:  # the platform's shape, first seen: fill the tables
        start = _hour_start(value[:14] + value[19:])
        rest = _minutes_seconds(value[14:19])
        if start is not None and rest is not None:
            return start + rest
    m = _FEISHU_TIME.fullmatch(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, sign, oh, om = m.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=_offset(sign, oh, om),
        )
    except ValueError:
        return None


# The same tables as unix microseconds, for a store that sends instants as integers
# (PostgreSQL's binary COPY: a datetime costs its driver twice the rest of the row).
_HOUR_MICROS: dict[str, int] = {}
_MINUTES_SECONDS_MICROS: dict[str, int] = {}
_MICROSECOND = timedelta(microseconds=1)


def feishu_time_micros(value: str | None) -> int | None:
    """``"2022.12.23 11:16:59 (GMT+08:00)"`` → unix microseconds; ``None`` if malformed
    (the instant :func:`parse_feishu_time` gives)."""
    try:
        return (
            _HOUR_MICROS[value[:14] + value[19:]]  # type: ignore[index]
            + _MINUTES_SECONDS_MICROS[value[14:19]]  # type: ignore[index]
        )
    except (KeyError, TypeError):
        shown = parse_feishu_time(value)
        if shown is None:
            return None
        assert value is not None  # parsed
        hour, rest = _HOUR_STARTS.get(value[:14] + value[19:]), _MINUTES_SECONDS.get(value[14:19])
        if hour is not None and rest is not None:  # the platform's shape: keep it
            if len(_HOUR_MICROS) >= _HOUR_STARTS_MAX:
                _HOUR_MICROS.clear()
            _HOUR_MICROS[value[:14] + value[19:]] = (hour - _EPOCH) // _MICROSECOND
            _MINUTES_SECONDS_MICROS[value[14:19]] = rest // _MICROSECOND
        return (shown - _EPOCH) // _MICROSECOND


def feishu_time_reader(since: datetime) -> Callable[[str | None], tuple[int] | None]:
    """Platform time strings → ``(microseconds since ``since``,)`` (``None`` if
    malformed): the 1-tuples asyncpg's "tuple" timestamp codecs take, read from the
    tables in one call."""
    offset = (since - _EPOCH) // _MICROSECOND
    hours, rest = _HOUR_MICROS, _MINUTES_SECONDS_MICROS

    def read(value: str | None) -> tuple[int] | None:
        try:
            return (hours[value[:14] + value[19:]] + rest[value[14:19]] - offset,)  # type: ignore[index]
        except (KeyError, TypeError):
            micros = feishu_time_micros(value)
            return None if micros is None else (micros - offset,)

    return read


def format_feishu_time(value: datetime) -> str:
    """An aware ``datetime`` → the platform's ``"YYYY.MM.DD hh:mm:ss (GMT±hh:mm)"``."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("format_feishu_time needs an aware datetime")
    total = int(offset.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    # Fields formatted directly: strftime is slower and does not pad years before 1000.
    return (
        f"{value.year:04d}.{value.month:02d}.{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} "
        f"(GMT{sign}{hours:02d}:{minutes:02d})"
    )


def parse_duration(value: str | None) -> timedelta | None:
    """``"00:01:52"`` (hours may pass 24) → ``timedelta``; ``None`` if malformed."""
    try:  # as in parse_feishu_time: only "hh:mm:ss" can hit both tables
        whole_hours: timedelta = _DURATION_HOURS[value[:3]]  # type: ignore[index]
        rest: timedelta = _MINUTES_SECONDS[value[3:]]  # type: ignore[index]
        return whole_hours + rest
    except (KeyError, TypeError):
        return _parse_duration(value)


def _parse_duration(value: str | None) -> timedelta | None:
    if value and len(value) == 8:  # the platform's shape, first seen: fill the table
        whole_hours = _DURATION_HOURS.get(value[:3])
        rest = _minutes_seconds(value[3:])
        if whole_hours is not None and rest is not None:
            return whole_hours + rest
    if not value or len(value) < 7 or value[-3] != ":" or value[-6] != ":" or not value.isascii():
        return None
    hours, minutes, seconds = value[:-6], value[-5:-3], value[-2:]
    if not (hours.isdigit() and minutes.isdigit() and seconds.isdigit()):
        return None
    if minutes >= "60" or seconds >= "60":
        return None
    try:
        return timedelta(seconds=int(hours) * 3600 + int(minutes) * 60 + int(seconds))
    except (OverflowError, ValueError):  # past timedelta's range, or int()'s digit limit
        return None


def format_duration(value: timedelta) -> str:
    total = int(value.total_seconds())
    if total < 0:
        raise ValueError("a duration cannot be negative")
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"
