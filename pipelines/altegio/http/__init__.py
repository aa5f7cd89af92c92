"""HTTP layer of the Altegio extract, one responsibility per module:

errors       the error tree (AltegioError and its branches)
credentials  Credentials (masked repr) and the names of the variables an operator sets
urls         which base URLs are allowed; how query strings are encoded
budget       RateBudget: the request budget every thread and process of a run shares, and
             its stores (memory, file; redis_budget: Redis, imported only when configured)
stats        RequestStats / EndpointStats: what a client did over HTTP
policy       RetryPolicy and Timeouts: frozen, named defaults, passed whole
envelope     an answer's status and body -> (data, meta) or a typed error
auth         UserTokens: the user token, a re-login after a 401
session      ApiSession: call -> auth refresh -> retry loop -> budget -> transport -> parse

Callers import from `pipelines.altegio.http`.
"""

from pipelines.altegio.http.auth import UserTokens
from pipelines.altegio.http.budget import (
    DEFAULT_RATE_LIMIT,
    MIN_RATE_FACTOR,
    RATE_CUT_COOLDOWN_S,
    RATE_RECOVERY_PER_S,
    BudgetStore,
    FileStore,
    MemoryStore,
    RateBudget,
    budget_key,
)
from pipelines.altegio.http.credentials import (
    LOGIN_ENV,
    PARTNER_TOKEN_ENV,
    PASSWORD_ENV,
    USER_TOKEN_ENV,
    Credentials,
)
from pipelines.altegio.http.envelope import expected_shape, parse_error_body, read_answer, unwrap
from pipelines.altegio.http.errors import (
    AccessDenied,
    AltegioError,
    ApiError,
    AuthError,
    BadResponse,
    BodyTooLarge,
    ConfigurationError,
    ConnectionFailed,
    InsecureURLError,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    RequestRefused,
    ServerError,
    UnreadableBody,
    safe_url,
)
from pipelines.altegio.http.policy import (
    BACKOFF_BASE_S,
    BACKOFF_MAX_S,
    CONNECT_TIMEOUT_S,
    MAX_ATTEMPTS,
    MAX_BODY_BYTES,
    MAX_ELAPSED_S,
    POOL_TIMEOUT_S,
    READ_TIMEOUT_S,
    RETRY_AFTER_MAX_S,
    RETRY_AFTER_SPREAD_S,
    RETRYABLE_STATUSES,
    WRITE_TIMEOUT_S,
    RetryPolicy,
    Timeouts,
    never_applied,
    parse_retry_after,
)
from pipelines.altegio.http.session import ApiSession, RetryLoop
from pipelines.altegio.http.stats import EndpointStats, RequestStats
from pipelines.altegio.http.urls import QueryValue, check_base_url, encode_params

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_MAX_S",
    "CONNECT_TIMEOUT_S",
    "DEFAULT_RATE_LIMIT",
    "LOGIN_ENV",
    "MAX_ATTEMPTS",
    "MAX_BODY_BYTES",
    "MAX_ELAPSED_S",
    "MIN_RATE_FACTOR",
    "PARTNER_TOKEN_ENV",
    "PASSWORD_ENV",
    "POOL_TIMEOUT_S",
    "RATE_CUT_COOLDOWN_S",
    "RATE_RECOVERY_PER_S",
    "READ_TIMEOUT_S",
    "RETRYABLE_STATUSES",
    "RETRY_AFTER_MAX_S",
    "RETRY_AFTER_SPREAD_S",
    "USER_TOKEN_ENV",
    "WRITE_TIMEOUT_S",
    "AccessDenied",
    "AltegioError",
    "ApiError",
    "ApiSession",
    "AuthError",
    "BadResponse",
    "BodyTooLarge",
    "BudgetStore",
    "ConfigurationError",
    "ConnectionFailed",
    "Credentials",
    "EndpointStats",
    "FileStore",
    "InsecureURLError",
    "MemoryStore",
    "NotFound",
    "OutcomeUnknown",
    "QueryValue",
    "RateBudget",
    "RateLimited",
    "RequestRefused",
    "RequestStats",
    "RetryLoop",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
    "UnreadableBody",
    "UserTokens",
    "budget_key",
    "check_base_url",
    "encode_params",
    "expected_shape",
    "never_applied",
    "parse_error_body",
    "parse_retry_after",
    "read_answer",
    "safe_url",
    "unwrap",
]
