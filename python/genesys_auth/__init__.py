"""Genesys Cloud client-credentials tokens, in process.

The token provider of the genesys-auth Rust crate: a cached token is handed back at once, one
refresh serves every thread that asks, the token is refreshed ahead of expiry, and a still-valid
token is kept when a refresh fails. It reads the same settings as the ``genesys-auth`` command
(``GENESYS_CLIENT_ID``, ``GENESYS_CLIENT_SECRET``, ``GENESYS_REGION``, a ``.env`` file, profiles).

    >>> import genesys_auth
    >>> provider = genesys_auth.TokenProvider()          # doctest: +SKIP
    >>> headers = {"Authorization": "Bearer " + provider.token()}  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Optional, Tuple
from urllib.parse import urlsplit

# asyncio is imported by the async methods, when first used: it is most of what importing
# asyncio-free code would otherwise pay at start-up.
try:
    from . import _native
except ImportError as e:  # pragma: no cover - exercised from a source checkout
    import os as _os

    _here = _os.path.dirname(_os.path.abspath(__file__))
    raise ImportError(
        f"genesys_auth was imported from its source folder {_here}, which has no compiled "
        "part (_native): install the package (pip install ./python, or maturin develop) and "
        "run Python from another folder than the checkout's python/"
    ) from e
from ._native import (
    ApiError,
    AuthError,
    ConfigError,
    Emulator,
    Error,
    ForbiddenError,
    NetworkError,
    RateLimitedError,
)

__version__: str = _native.__version__

_log = logging.getLogger("genesys_auth")

__all__ = [
    "TokenProvider",
    "TokenInfo",
    "Emulator",
    "get_access_token",
    "requests_auth",
    "httpx_auth",
    "configure_sdk",
    "Error",
    "ConfigError",
    "AuthError",
    "ForbiddenError",
    "RateLimitedError",
    "NetworkError",
    "ApiError",
]


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """A token and what is known of it. Its ``repr`` never shows the token."""

    token: str = dataclasses.field(repr=False)
    expires_at: Optional[float]
    scopes: tuple
    region: str
    api_base_url: str


class TokenProvider(_native.TokenProvider):
    """Gets and keeps a valid access token; cheap to call from any number of threads.

    With no arguments it reads the same sources as the CLI: the environment, ``.env`` and the
    profile files. ``store`` is ``"memory"``, ``"file"`` (the CLI's cache, shared by processes)
    or a ``redis://`` URL (shared by a fleet); when not given, ``GENESYS_TOKEN_STORE`` names it
    (``"none"`` there means memory, as for the CLI), else it is ``"memory"``. ``timeout``
    (seconds) bounds each request and the whole call, retries included. ``scopes`` is a
    space-separated string (``"users:readonly analytics:readonly"``) or a list. ``clock=emu``
    makes the provider's clock move with that ``Emulator``'s ``advance_clock`` (tests). The
    settings' warnings (a mistyped ``GENESYS_*`` variable, a profile file others can read) are
    logged once per process, on the ``genesys_auth`` logger, where new tokens and healed 401s
    are logged at DEBUG. After ``os.fork()`` a child keeps the parent's still-valid token and
    refreshes it on its own when due.
    """

    def token_info(self) -> TokenInfo:
        """The token, its expiry (seconds since the epoch), scopes, region and API base URL."""
        token, expires_at, scopes, region, api = self._token_info()
        return TokenInfo(token, expires_at, tuple(scopes), region, api)

    async def token_async(self) -> str:
        """The token, without blocking the event loop or holding a thread: a cached token at
        once; else every task of the loop awaits the one fetch in flight."""
        token = self._token_nowait()
        if token is not None:
            return token
        import asyncio

        loop = asyncio.get_running_loop()
        # One future per loop and fetch, shared by every task that asks meanwhile; shielded, so
        # that a cancelled task does not cancel it for the others.
        pending = getattr(self, "_pending_token", None)
        if pending is None or pending[0] is not loop or pending[1].done():
            pending = (loop, _bridge(loop, self._token_then))
            self._pending_token = pending
        return await asyncio.shield(pending[1])

    async def token_info_async(self) -> TokenInfo:
        """As ``token_info``, without blocking the event loop or holding a thread."""
        import asyncio

        parts = await _bridge(asyncio.get_running_loop(), self._token_info_then)
        token, expires_at, scopes, region, api = parts
        return TokenInfo(token, expires_at, tuple(scopes), region, api)

    async def revoke_async(self) -> None:
        """As ``revoke``, without blocking the event loop or holding a thread."""
        import asyncio

        await _bridge(asyncio.get_running_loop(), self._revoke_then)


def _bridge(loop: Any, start: Any) -> Any:
    """An asyncio future of ``loop`` that ``start(done)`` settles: the native side calls
    ``done(ok, value)`` from its runtime when the work is over."""
    fut = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def done(ok: bool, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:
            pass  # the loop was closed meanwhile: nobody awaits the result

    start(done)
    return fut


_default: Optional[TokenProvider] = None
_default_lock = threading.Lock()


def get_access_token() -> str:
    """A valid access token from one process-wide provider, cached and shared by every
    thread: the job of the tutorial's ``get_access_token(id, secret, region)["access_token"]``,
    with the settings read from the environment, ``.env`` or a profile."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = TokenProvider()
    return _default.token()


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> Optional[Tuple[str, str, int]]:
    """``(scheme, host, port)`` of ``url``, the port filled in for http and https; None when
    unreadable."""
    try:
        u = urlsplit(str(url))
        scheme = u.scheme.lower()
        port = u.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not u.hostname or port is None:
        return None
    return scheme, u.hostname.lower(), port


def _same_origin(url: str, api_base_url: str) -> bool:
    """Whether ``url`` is on the API origin: the only one a token is sent to, as the Rust
    ``ApiClient`` does. A URL that cannot be read is not."""
    mine = _origin(api_base_url)
    return mine is not None and _origin(url) == mine


def requests_auth(provider: TokenProvider) -> Any:
    """An auth object for ``requests``: adds the bearer token to requests for the provider's
    API origin (``provider.api_base_url``: same scheme, host and port), and to no other; on a
    401 from it, drops that token, refreshes once and sends the request once more."""
    import requests

    api = provider.api_base_url

    class _Auth(requests.auth.AuthBase):
        def __call__(self, r):
            # A session may also call other hosts (a redirect target, a webhook, storage): the
            # token is theirs to read if sent, so it goes to the API origin only.
            if not _same_origin(r.url, api):
                return r
            token = provider.token()
            r.headers["Authorization"] = "Bearer " + token
            r.register_hook("response", self._retry_once(token))
            return r

        @staticmethod
        def _retry_once(sent: str):
            def hook(resp, **kwargs):
                if resp.status_code != 401 or getattr(resp.request, "_genesys_retried", False):
                    return resp
                # The hook also runs for the responses of redirects, which requests follows
                # with this request's hooks: a 401 from another origin says nothing of the
                # token (which was not sent there) and must not send it a fresh one.
                if not _same_origin(resp.request.url, api):
                    return resp
                _log.debug("401 from the API origin: token dropped, sending again with a new one")
                provider.invalidate(sent)
                again = resp.request.copy()
                again.headers["Authorization"] = "Bearer " + provider.token()
                again._genesys_retried = True
                resp.content  # release the connection
                return resp.connection.send(again, **kwargs)

            return hook

    return _Auth()


def httpx_auth(provider: TokenProvider) -> Any:
    """An auth object for ``httpx`` (``Client`` and ``AsyncClient``): adds the bearer token to
    requests for the provider's API origin (``provider.api_base_url``: same scheme, host and
    port), and to no other; on a 401 from it, drops that token, refreshes once and sends the
    request once more."""
    import httpx

    api = provider.api_base_url

    def _heal(response) -> bool:
        # Only a 401 that the API origin itself answered says the token was refused there.
        return response.status_code == 401 and _same_origin(str(response.request.url), api)

    class _Auth(httpx.Auth):
        def sync_auth_flow(self, request):
            if not _same_origin(str(request.url), api):
                yield request
                return
            token = provider.token()
            request.headers["Authorization"] = "Bearer " + token
            response = yield request
            if _heal(response):
                _log.debug("401 from the API origin: token dropped, sending again with a new one")
                provider.invalidate(token)
                request.headers["Authorization"] = "Bearer " + provider.token()
                yield request

        async def async_auth_flow(self, request):
            if not _same_origin(str(request.url), api):
                yield request
                return
            token = await provider.token_async()
            request.headers["Authorization"] = "Bearer " + token
            response = yield request
            if _heal(response):
                _log.debug("401 from the API origin: token dropped, sending again with a new one")
                provider.invalidate(token)
                request.headers["Authorization"] = "Bearer " + await provider.token_async()
                yield request

    return _Auth()


def configure_sdk(api_client: Any, provider: TokenProvider) -> Any:
    """Keeps an official-SDK ``PureCloudPlatformClientV2.ApiClient`` authenticated: every
    request carries a fresh token from ``provider``, and its base URL is the provider's API
    origin. No ``get_client_credentials_token`` call and no expiry bookkeeping is needed."""

    class _FreshToken:
        def __get__(self, obj, objtype=None):
            return provider.token()

        def __set__(self, obj, value):
            # The SDK may assign a token; the provider's stays authoritative.
            pass

    base = api_client.__class__

    def call_api(self, *args, **kwargs):
        # A token the server ended early (revoked, expired by its clock) is a 401: drop that
        # token, refresh once and send the request once more.
        from PureCloudPlatformClientV2.rest import ApiException

        sent = provider.token()
        try:
            return base.call_api(self, *args, **kwargs)
        except ApiException as e:
            if e.status != 401:
                raise
            _log.debug("401 from the API origin: token dropped, sending again with a new one")
            provider.invalidate(sent)
            return base.call_api(self, *args, **kwargs)

    # A subclass per client, so that other ApiClient instances keep their own behaviour.
    api_client.__class__ = type(
        base.__name__,
        (base,),
        {"access_token": _FreshToken(), "call_api": call_api},
    )
    api_client.host = provider.api_base_url
    return api_client
