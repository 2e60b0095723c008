"""The export job's settings, resolved from arguments and the environment.

Anything wrong here is a configuration error (exit code 2) raised before any request.
Secrets are kept out of ``repr`` and out of every message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from .._constants import FEISHU_BASE_URL, MAX_RETRIES, PAGE_SIZE_ITER_DEFAULT
from .._validate import base_url as check_base_url
from .._validate import non_negative_int, positive_int, positive_seconds
from ..auth import TokenProvider
from ..errors import ConfigError, InvalidQueryError
from ..models import UserIdType, validate_page_size
from ..ratelimit import RateLimit
from ._input import InputFormat
from ._range import MeetingRange
from ._rows import ALL_COLUMNS
from ._writers import OutputFormat

__all__ = ["ConfigError", "ExportConfig", "ProgressMode"]

ProgressMode = Literal["auto", "bar", "log", "none"]

ENV_REDIS_URL = "FEISHU_VC_REDIS_URL"
DEFAULT_RATE_LIMIT = "100/60s"


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """Everything an export run needs, checked when it is made (``ConfigError`` naming
    the option and the rule); ``config_from_args`` builds it from the command line, the
    demo and library code build it directly."""

    # The meetings: a file of them, or a date range to find them in (exactly one).
    meetings: Path | None
    out: Path
    fmt: OutputFormat
    meeting_range: MeetingRange | None = None
    meetings_format: InputFormat | None = None
    columns: tuple[str, ...] = ()
    redact_pii: bool = False
    csv_raw: bool = False  # CSV cells as sent, without the formula-injection guard
    resume: bool = False
    overwrite: bool = False
    retry_failed: bool = False  # also ask again for meetings given up for good (implies resume)
    app_id: str | None = None
    app_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    # A ready token source instead (a user session, a store app's tenant: --auth user,
    # --app-type store); its own credentials live in it.
    token_provider: TokenProvider | None = None
    base_url: str = FEISHU_BASE_URL
    rate_limit: RateLimit = field(default_factory=RateLimit)
    meeting_list_rate_limit: RateLimit = field(default_factory=RateLimit)
    concurrency: int | None = None
    page_size: int = PAGE_SIZE_ITER_DEFAULT
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "feishu_vc"
    redis_fallback: bool = False  # Redis unreachable: pace this process alone for a while
    user_id_type: UserIdType = UserIdType.OPEN_ID
    max_retries: int = MAX_RETRIES
    progress: ProgressMode = "auto"
    log_interval: float = 5.0
    quiet: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "base_url", check_base_url(self.base_url, "--base-url"))
            validate_page_size(self.page_size)
            if self.concurrency is not None:
                positive_int("--concurrency", self.concurrency)
            non_negative_int("--max-retries", self.max_retries)
            positive_seconds("--log-interval", self.log_interval)
        except InvalidQueryError as exc:
            raise ConfigError(f"--page-size {self.page_size}: {exc.rule}") from None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if (self.meetings is None) == (self.meeting_range is None):
            raise ConfigError(
                "give the meetings either as a file (--meetings FILE) or as a date range "
                "(--since A --until B), one of the two"
            )
        if self.meeting_range is None:
            unknown = [c for c in self.columns if c not in ALL_COLUMNS]
            if unknown:
                raise ConfigError(
                    f"--fields: {', '.join(unknown)}: meeting columns need a range export "
                    "(--since/--until), where the meetings are known"
                )
        if self.retry_failed:
            object.__setattr__(self, "resume", True)
        if self.resume and self.overwrite:
            flag = "--retry-failed" if self.retry_failed else "--resume"
            raise ConfigError(f"give either {flag} or --overwrite, not both")
        if self.redis_fallback and self.redis_url is None:
            raise ConfigError("--redis-fallback needs --redis-url (or FEISHU_VC_REDIS_URL)")
        if self.access_token and (self.app_id or self.app_secret):
            raise ConfigError("give either an access token or app credentials, not both")
        if self.token_provider is not None and (
            self.access_token or self.app_id or self.app_secret
        ):
            raise ConfigError("give either a token provider or other credentials, not both")
        if self.token_provider is None and not self.access_token and not (
            self.app_id and self.app_secret
        ):
            raise ConfigError(
                "no credentials: set FEISHU_APP_ID and FEISHU_APP_SECRET (or --app-id and "
                "--app-secret) for a tenant token, or FEISHU_ACCESS_TOKEN (--access-token) "
                "for a token you already hold"
            )

    @property
    def identity(self) -> list[str] | None:
        """What identifies a range export's meetings for its checkpoint: the options as
        typed (so a resume of ``--since 7d`` continues the week it began with); ``None``
        for a meetings file (its queries identify it)."""
        found = self.meeting_range
        if found is None:
            return None
        return [
            "range",
            f"since={found.since_text}",
            f"until={found.until_text}",
            f"tz={found.zone}",
            *(f"{k}={v}" for k, v in sorted(found.query.to_params().items())
              if k not in ("start_time", "end_time")),
        ]

    @property
    def credential_kind(self) -> str:
        if self.token_provider is not None:
            return repr(self.token_provider)
        return "access token" if self.access_token else f"app {self.app_id}"


def redact_url(url: str) -> str:
    """A URL with any password replaced, fit for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()














