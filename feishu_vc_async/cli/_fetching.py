"""``--concurrency`` and ``--page-size``: how the fan-out fetches (``export``, ``sync``)."""

from __future__ import annotations

import argparse
from typing import Final

from .._constants import PAGE_SIZE_ITER_DEFAULT
from .._validate import int_between
from ..errors import ConfigError, InvalidQueryError
from ..models import validate_page_size

__all__ = ["MAX_CONCURRENCY", "add_fetching_arguments", "check_fetching"]

# More meetings in flight than this only queue for the same budget (and a worker each).
MAX_CONCURRENCY: Final = 1000


def add_fetching_arguments(parser: argparse.ArgumentParser) -> None:
    fetching = parser.add_argument_group("fetching")
    fetching.add_argument(
        "--concurrency", type=int, help="meetings fetched at once (default: the fan-out's)"
    )
    fetching.add_argument(
        "--page-size",
        type=int,
        default=PAGE_SIZE_ITER_DEFAULT,
        help=f"participants per request, 20..100 (default {PAGE_SIZE_ITER_DEFAULT})",
    )


def check_fetching(args: argparse.Namespace) -> None:
    """``ConfigError`` naming the option for a page size or concurrency out of range."""
    try:
        validate_page_size(args.page_size)
        if args.concurrency is not None:
            int_between("--concurrency", args.concurrency, 1, MAX_CONCURRENCY)
    except InvalidQueryError as exc:
        raise ConfigError(f"--page-size {args.page_size}: {exc.rule}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
