"""Type stubs for genesys_auth: Genesys Cloud client-credentials tokens, in process."""

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Union

__version__: str

class Error(Exception):
    """Any genesys-auth error; its message never holds a secret. Every class of this family
    belongs to module genesys_auth and survives pickling, attributes included."""

    status: Optional[int]
    """The HTTP status the server answered, when one did."""
    error: Optional[str]
    """The server's error code (OAuth's `error`, the API's `code`), when it sent one."""
    correlation_id: Optional[str]
    """The ININ-Correlation-Id of the answer, to quote to Genesys support."""
    retry_after: Optional[float]
    """Seconds the server asked to wait (a rate limit), when it said."""

class ConfigError(Error):
    """Missing or invalid settings (the CLI's exit 3)."""

class AuthError(Error):
    """The client or the token was rejected (exit 4)."""

class ForbiddenError(Error):
    """Forbidden: a missing scope or permission (exit 5)."""

class RateLimitedError(Error):
    """Rate limited, after retries (exit 6)."""

class NetworkError(Error):
    """Network, timeout, server error or unreadable response (exit 7)."""

class ApiError(Error):
    """The API answered another error status (exit 8)."""

@dataclass(frozen=True)
class TokenInfo:
    """A token and what is known of it; its repr never shows the token."""

    token: str
    expires_at: Optional[float]
    scopes: tuple[str, ...]
    region: str
    api_base_url: str

class TokenProvider:
    """Gets and keeps a valid access token, shared by every thread; reads the CLI's sources
    (environment, .env, profiles) for what is not given. `scopes` is a space-separated string
    or a list. `store` is "memory", "file" or a redis:// URL, by default GENESYS_TOKEN_STORE,
    else "memory"; `timeout` bounds each request and the whole call, retries included;
    `clock=emulator` makes the provider's clock move with that emulator's (tests). Settings
    warnings are logged once per process on the "genesys_auth" logger."""

    def __init__(
        self,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        region: Optional[str] = None,
        scopes: Union[str, Sequence[str], None] = None,
        profile: Optional[str] = None,
        store: Optional[str] = None,
        timeout: Optional[float] = None,
        clock: Optional["Emulator"] = None,
    ) -> None: ...
    def token(self) -> str:
        """The access token: cached when fresh, else refreshed once for every caller."""
    def token_info(self) -> TokenInfo:
        """The token with its expiry, scopes, region and API base URL."""
    async def token_async(self) -> str:
        """The token, without blocking the event loop or holding a thread; the tasks that ask
        during a fetch share it."""
    async def token_info_async(self) -> TokenInfo:
        """As token_info, without blocking the event loop."""
    async def revoke_async(self) -> None:
        """As revoke, without blocking the event loop."""
    def invalidate(self, token: str) -> None:
        """Drops `token` if it is still the current one (after a 401)."""
    def revoke(self) -> None:
        """Revokes the current token (DELETE /api/v2/tokens/me) and forgets it."""
    @property
    def api_base_url(self) -> str:
        """The API origin, e.g. https://api.mypurecloud.ie."""

class Emulator:
    """The offline Genesys Cloud emulator: `with Emulator(clients={"id": "secret"}) as emu`."""

    def __init__(
        self,
        clients: Optional[Mapping[str, Union[str, Mapping[str, Any]]]] = None,
        token_ttl: Optional[int] = None,
        *,
        token_rate_limit: Optional[int] = None,
        api_rate_limit: Optional[int] = None,
        enforce_scopes: bool = False,
        users: Optional[int] = None,
    ) -> None:
        """`clients` maps each id to its secret, or to a dict with "secret" and options
        (ttl, scopes, grant, state, ips, name)."""
    @property
    def base_url(self) -> str:
        """Its base URL, serving both the login and the API paths."""
    @property
    def token_requests(self) -> int:
        """Token requests answered so far."""
    def counters(self) -> Dict[str, Any]:
        """Token requests, tokens issued, API requests per path and 401 answers so far."""
    def advance_clock(self, seconds: float) -> None:
        """Moves its clock forward, so that tokens expire without waiting; providers made
        with clock= this emulator move with it."""
    def inject(self, target: str, kind: str, count: int = 1, **fields: Any) -> None:
        """Queues a fault ("status", "delay", "malformed_json", "missing_access_token",
        "drop_connection", "large_body", "redirect") for the next `count` responses of
        target "token" or "api"."""
    def clear_faults(self) -> None:
        """Drops every queued fault."""
    def revoke_tokens_of(self, client_id: str) -> int:
        """Revokes every token of a client."""
    def stop(self) -> None:
        """Stops it."""
    def __enter__(self) -> "Emulator": ...
    def __exit__(self, *exc: Any) -> None: ...

def get_access_token() -> str:
    """A valid token from one process-wide provider (the tutorial's function's job, settings
    read from the environment, ``.env`` or a profile)."""

def requests_auth(provider: TokenProvider) -> Any:
    """An auth object for requests that adds the token to requests for the provider's API
    origin only (scheme, host and port) and heals one 401 from it."""

def httpx_auth(provider: TokenProvider) -> Any:
    """An auth object for httpx (sync and async) that adds the token to requests for the
    provider's API origin only (scheme, host and port) and heals one 401 from it."""

def configure_sdk(api_client: Any, provider: TokenProvider) -> Any:
    """Keeps an official-SDK ApiClient authenticated with fresh tokens."""
