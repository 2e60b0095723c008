"""``--since``/``--until``/``--tz`` and meeting_list's filters, from the command line to a
:class:`~feishu_vc_async.export.MeetingRange`.

``feishu-vc meetings`` and ``feishu-vc export --since/--until`` take the same options,
read here once: ``--since`` and ``--until`` (dates, ISO times, unix seconds, spans back
from now; see ``_timeparse.parse_instant``) in ``--tz``, the filters and flags of
meeting_list, and ``--status``. Every rule of the server is checked before any request
(``MeetingListQuery.validate``).
"""

from __future__ import annotations

import argparse
import enum
import time

from .._timeparse import local_zone, parse_instant, zone_named
from ..errors import ConfigError, InvalidQueryError
from ..export._range import MeetingRange
from ..meetings import MeetingListQuery, MeetingType
from ..models import MeetingStatus, UserIdType

__all__ = ["add_filter_arguments", "add_range_arguments", "listing_from_args", "range_from_args"]

_STATUSES = {"ended": MeetingStatus.ENDED, "ongoing": MeetingStatus.ONGOING}
_TYPES = {"all": MeetingType.ALL, "video": MeetingType.VIDEO_MEETING,
          "screen-share": MeetingType.LOCAL_SCREEN_SHARE}  # fmt: skip
# The command-line option behind each field of MeetingListQuery, for messages.
_OPTIONS = {
    "start_time": "--since",
    "end_time": "--until",
    "meeting_no": "--meeting-no",
    "user_id": "--user-id",
    "room_id": "--room-id",
    "meeting_type": "--meeting-type",
    "meeting_status": "--status",
}


def add_range_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--since``/``--until``/``--tz``, the filters and flags of meeting_list."""
    group = parser.add_argument_group(
        "meetings by date range (meeting_list: finds the meetings and their exact times)"
    )
    group.add_argument(
        "--since",
        metavar="WHEN",
        required=required,
        help="start of the range: a date (2026-11-01: its first second, in --tz), an ISO "
        "time (2026-11-01T09:00, offset optional), unix seconds, or a span back from now "
        "(7d, 24h, 30m, 2w). A range holds the meetings that start in it, both ends "
        "included, so consecutive ranges hold each meeting once",
    )
    group.add_argument(
        "--until",
        metavar="WHEN",
        required=required,
        help="end of the range, as --since ('now' too); a date means its last second, so "
        "--since 2026-11-01 --until 2026-11-30 is all of November",
    )
    group.add_argument(
        "--tz",
        metavar="ZONE",
        help="time zone of dates and of ISO times without an offset, an IANA name such as "
        "Asia/Shanghai (default: this machine's)",
    )
    group.add_argument(
        "--status",
        choices=tuple(_STATUSES),
        default="ended",
        help="ended meetings (default) or ongoing ones (read up to now)",
    )
    add_filter_arguments(group)


def add_filter_arguments(group: argparse._ArgumentGroup) -> None:
    """meeting_list's filters and flags (``export``, ``meetings`` and ``sync``)."""
    group.add_argument("--meeting-no", metavar="NUMBER", help="only this 9-digit meeting number")
    group.add_argument("--user-id", metavar="ID", help="only meetings this user took part in")
    group.add_argument("--room-id", metavar="ID", help="only meetings of this Rooms room")
    group.add_argument(
        "--meeting-type",
        choices=tuple(_TYPES),
        help="only this kind (at most one of --meeting-no/--user-id/--room-id/--meeting-type)",
    )
    group.add_argument(
        "--include-webinars", action="store_true", help="list webinars too (off by default)"
    )
    group.add_argument(
        "--include-external",
        action="store_true",
        help="list external meetings too (off by default)",
    )


def listing_from_args(
    args: argparse.Namespace,
    *,
    start_time: int,
    end_time: int,
    meeting_status: MeetingStatus = MeetingStatus.ENDED,
    user_id_type: UserIdType,
) -> MeetingListQuery:
    """The meeting_list query of a range with :func:`add_filter_arguments`'s filters
    (not validated yet)."""
    return MeetingListQuery(
        start_time=start_time,
        end_time=end_time,
        meeting_status=meeting_status,
        meeting_no=args.meeting_no or None,
        user_id=args.user_id or None,
        room_id=args.room_id or None,
        meeting_type=None if args.meeting_type is None else _TYPES[args.meeting_type],
        include_external_meetings=args.include_external,
        include_webinar=args.include_webinars,
        user_id_type=user_id_type,
    )


def range_from_args(
    args: argparse.Namespace, *, user_id_type: UserIdType, now: float | None = None
) -> MeetingRange:
    """The validated range and filters of ``args``; ``ConfigError`` naming the option and
    the rule for anything the server would refuse (a range in the future, --until before
    --since, two filters at once, ...)."""
    current = time.time() if now is None else now
    try:
        zone = zone_named(args.tz) if args.tz else local_zone()
    except ValueError as exc:
        raise ConfigError(f"--tz: {exc}") from None
    instants = []
    for option, text, end_of_day in (("--since", args.since, False), ("--until", args.until, True)):
        try:
            instants.append(parse_instant(text, tz=zone, now=current, end_of_day=end_of_day))
        except ValueError as exc:
            raise ConfigError(f"{option} {text!r}: {exc}") from None
    query = listing_from_args(
        args,
        start_time=instants[0],
        end_time=instants[1],
        meeting_status=_STATUSES[args.status],
        user_id_type=user_id_type,
    )
    try:
        query.validate(now=current, whole_range=True)
    except InvalidQueryError as exc:
        options = "/".join(_OPTIONS.get(name, name) for name in exc.field.split("/"))
        given = {"start_time": args.since, "end_time": args.until}.get(exc.field)
        value = f"{given!r} ({exc.value})" if given is not None else _shown(exc.value)
        rule = exc.rule.replace("start_time", "--since").replace("end_time", "--until")
        raise ConfigError(f"{options} {value}: {rule}") from None
    return MeetingRange(query, zone, args.since, args.until)


def _shown(value: object) -> str:
    """A rejected value as typed: an enum by its wire value, not its repr."""
    values = value if isinstance(value, tuple) else (value,)
    shown = [repr(v.value if isinstance(v, enum.Enum) else v) for v in values]
    return shown[0] if len(shown) == 1 else f"({', '.join(shown)})"
