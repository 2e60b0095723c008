"""Every default of the library in one place: hosts, paths, limits, timeouts, retry bounds."""

from __future__ import annotations

FEISHU_BASE_URL = "https://open.feishu.cn"
LARK_BASE_URL = "https://open.larksuite.com"

API_PREFIX = "/open-apis/"
PARTICIPANT_LIST_PATH = "/open-apis/vc/v1/participant_list"
MEETING_LIST_PATH = "/open-apis/vc/v1/meeting_list"
TENANT_TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"

# Identities (identity.md). The authorize page is on the accounts host, not the API's.
FEISHU_ACCOUNTS_URL = "https://accounts.feishu.cn"
LARK_ACCOUNTS_URL = "https://accounts.larksuite.com"
AUTHORIZE_PATH = "/open-apis/authen/v1/authorize"
USER_TOKEN_PATH = "/open-apis/authen/v2/oauth/token"
APP_TICKET_RESEND_PATH = "/open-apis/auth/v3/app_ticket/resend"
APP_ACCESS_TOKEN_PATH = "/open-apis/auth/v3/app_access_token"
STORE_TENANT_TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token"
# Who a user token belongs to (name, open_id, tenant_key): no scope needed beyond login.
USER_INFO_PATH = "/open-apis/authen/v1/user_info"
# Without it the token endpoint hands out no refresh token.
OFFLINE_ACCESS_SCOPE = "offline_access"
# Either one lets a token read the VC data APIs (the reference's "any one of").
VC_SCOPES = ("vc:room:readonly", "vc:rooms.room.detailinfo:read")
# How long `feishu-vc auth login` waits for the browser's redirect by default.
LOGIN_TIMEOUT = 300.0
# How long a refresh waits for another process's refresh to release the session lock.
SESSION_LOCK_TIMEOUT = 60.0
# A Redis session lock expires after this long unless its holder renews it (a crashed
# holder then blocks the others for at most this long).
SESSION_LOCK_TTL = 30.0
# After a resend request, how long a store app waits for the pushed app_ticket.
APP_TICKET_WAIT = 30.0

# Names of the rate-limit buckets: the platform limits per API, so each API has its own.
# An endpoint's name is its path without API_PREFIX, so these are also endpoint names.
API_PARTICIPANT_LIST = "vc/v1/participant_list"
API_MEETING_LIST = "vc/v1/meeting_list"

LOGID_HEADER = "X-Tt-Logid"
RATELIMIT_LIMIT_HEADER = "x-ogw-ratelimit-limit"
RATELIMIT_RESET_HEADER = "x-ogw-ratelimit-reset"

DEFAULT_RATE_REQUESTS = 100
DEFAULT_RATE_PERIOD = 60.0

PAGE_SIZE_MIN = 20
PAGE_SIZE_MAX = 100
# The server's default when page_size is omitted.
PAGE_SIZE_SERVER_DEFAULT = 20
# What the iterators ask for: the largest page costs the same one request of the quota.
PAGE_SIZE_ITER_DEFAULT = 100
# The most pages one listing may take when nothing says how long it is (100,000 rows at
# 100 a page): a server that hands out new page tokens forever must not page forever.
MAX_PAGES = 1000

MEETING_NO_LENGTH = 9
MAX_MEETING_SPAN_SECONDS = 86_400
# meeting_list's widest start_time..end_time range: "one year", read as 365 days.
MAX_MEETING_LIST_RANGE_SECONDS = 365 * 86_400

# Tenant tokens: the platform hands out the same token until 30 minutes remain.
TOKEN_MAX_LIFETIME = 7200
TOKEN_REISSUE_WINDOW = 1800
# Refresh a cached token this long before the server would stop accepting it.
TOKEN_REFRESH_MARGIN = 300.0

CONNECT_TIMEOUT = 10.0
TOTAL_TIMEOUT = 60.0
# The largest answer body read: a page of 100 participants is about 100 KB, so this is
# far above any real answer, and bounds what a proxy that never ends a body can take.
MAX_ANSWER_BYTES = 8 * 1024 * 1024

MAX_RETRIES = 5
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
# A server's reset hint is trusted only up to this many seconds.
RATELIMIT_RESET_CAP = 120.0
# Waited when a 429 arrives without a usable reset header.
RATELIMIT_RESET_FALLBACK = 1.0

# Length of the body excerpt kept on a decode error (an HTML 502 page, say).
BODY_SNIPPET_CHARS = 200

LOGGER_NAME = "feishu_vc_async"
