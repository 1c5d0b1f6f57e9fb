"""The Python package against the emulator, in process: every API, threads, asyncio, fork and
multiprocessing, the GIL and the event loop left free while the network is slow, requests and
httpx healing a 401 and sending the token to the API origin only, pickled errors, the token
store from the environment, timeouts, logged warnings, the stubs, and no secret anywhere."""

import ast
import asyncio
import functools
import importlib.resources
import inspect
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import threading
import time
import traceback

import pytest

import genesys_auth as ga

ID = "py-client-0001"
SECRET = "py-secret-Wq5-never-shown"


@pytest.fixture
def emu():
    with ga.Emulator(clients={ID: SECRET}) as e:
        yield e


@pytest.fixture
def provider(emu):
    return ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)


@pytest.fixture
def blackhole():
    """A loopback port that listens and never answers: the kernel completes the handshake, the
    request is sent, and nothing comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def stalled_provider(port):
    return ga.TokenProvider(
        client_id=ID, client_secret=SECRET, region=f"http://127.0.0.1:{port}", timeout=1
    )


def run_bounded(coro, timeout):
    """Runs `coro` on a new event loop, failing after `timeout` seconds; the loop is closed
    without waiting for executor threads, so that a stuck one cannot hang the test."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        loop.close()


def test_token_info_async_revoke_and_base_url(emu, provider):
    t = provider.token()
    assert len(t) == 43
    assert provider.token() is t, "the same Python string while the token is unchanged"
    info = provider.token_info()
    assert info.token == t and info.region == "custom"
    assert info.api_base_url == provider.api_base_url == emu.base_url
    assert info.expires_at > time.time() + 80_000
    assert t not in repr(info) and SECRET not in repr(provider)
    with pytest.raises(dataclasses_frozen_error()):
        info.token = "x"
    assert asyncio.run(provider.token_async()) == t
    provider.revoke()
    assert provider.token() != t
    assert emu.token_requests == 2


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_errors_form_a_hierarchy_with_the_cli_kinds(emu):
    with pytest.raises(ga.AuthError) as e:
        ga.TokenProvider(client_id=ID, client_secret="wrong-Zz9", region=emu.base_url).token()
    assert isinstance(e.value, ga.Error)
    assert "wrong-Zz9" not in str(e.value) and "wrong-Zz9" not in repr(e.value)
    with pytest.raises(ga.ConfigError):
        ga.TokenProvider(client_id=ID, client_secret=SECRET, region="za")
    with pytest.raises(ga.ConfigError):
        ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url, store="memcached://x")
    closed = ga.TokenProvider(client_id=ID, client_secret=SECRET, region="http://127.0.0.1:9", timeout=2)
    with pytest.raises(ga.NetworkError):
        closed.token()
    for cls in (ga.ConfigError, ga.AuthError, ga.ForbiddenError, ga.RateLimitedError, ga.NetworkError, ga.ApiError):
        assert issubclass(cls, ga.Error)


def test_get_access_token_reads_the_environment_once(emu, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GENESYS_CLIENT_ID", ID)
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("GENESYS_REGION", emu.base_url)
    monkeypatch.setattr(ga, "_default", None)
    a = ga.get_access_token()
    assert ga.get_access_token() == a
    assert emu.token_requests == 1


def test_a_thousand_threads_on_a_cold_provider_make_one_request(emu, provider):
    barrier = threading.Barrier(1000)
    tokens, lock = set(), threading.Lock()

    def call():
        barrier.wait()
        t = provider.token()
        with lock:
            tokens.add(t)

    threads = [threading.Thread(target=call) for _ in range(1000)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(tokens) == 1
    assert emu.token_requests == 1


def test_a_hundred_tasks_make_one_request_and_the_loop_stays_responsive(emu, provider):
    async def main():
        ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        tokens = await asyncio.gather(*(provider.token_async() for _ in range(100)))
        done.set()
        await t
        return set(tokens), ticks

    tokens, ticks = asyncio.run(main())
    assert len(tokens) == 1
    assert emu.token_requests == 1
    assert ticks > 1, "the loop kept running while tokens were fetched"


class ThreadRelay:
    """A TCP relay between the provider and the emulator, run by Python threads: it moves the
    request and the answer only while other Python threads get the GIL. A token call that held
    the GIL through its wait would starve it, and time out instead of getting a token."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.server.close()


def emulator_port(emu):
    return int(emu.base_url.rsplit(":", 1)[1].split("/")[0])


def test_a_blocking_token_call_leaves_the_gil_to_other_threads(emu):
    relay = ThreadRelay(emulator_port(emu))
    try:
        p = ga.TokenProvider(
            client_id=ID, client_secret=SECRET, region=f"http://127.0.0.1:{relay.port}", timeout=10
        )
        # The relay's threads need the GIL to pass the request on: this call gets a token only
        # if it left the GIL while it waited.
        token = p.token()
    finally:
        relay.close()
    assert len(token) == 43
    assert relay.connections == 1 and emu.token_requests == 1


def test_the_event_loop_keeps_running_while_token_async_waits(emu):
    target = ("127.0.0.1", emulator_port(emu))
    connections = 0

    async def pump(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    pumps = []

    async def relay(reader, writer):
        nonlocal connections
        connections += 1
        up_reader, up_writer = await asyncio.open_connection(*target)
        pumps.append(asyncio.gather(pump(reader, up_writer), pump(up_reader, writer)))
        await pumps[-1]

    async def main():
        # The relay runs on this same loop: the token arrives only if the loop kept running
        # while token_async waited for it.
        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        p = ga.TokenProvider(
            client_id=ID, client_secret=SECRET, region=f"http://127.0.0.1:{port}", timeout=10
        )
        async with server:
            token = await p.token_async()
            info = await p.token_info_async()
            # The provider keeps its connection alive: end the relay's pumps before the loop.
            for pair in pumps:
                pair.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        return token, info

    token, info = run_bounded(main(), timeout=60)
    assert len(token) == 43 and info.token == token
    assert connections >= 1 and emu.token_requests == 1


def test_a_failing_token_async_leaves_the_loop_free(blackhole):
    p = stalled_provider(blackhole)

    async def main():
        # The other task sets the event only if the loop runs while the fetch is failing.
        ran = asyncio.Event()

        async def other():
            ran.set()

        fetch = asyncio.ensure_future(p.token_async())
        asyncio.ensure_future(other())
        await ran.wait()
        assert not fetch.done(), "the fetch was over before the other task ran"
        with pytest.raises(ga.NetworkError):
            await fetch

    run_bounded(main(), timeout=30)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_a_token(emu, provider):
    parent = provider.token()
    pid = os.fork()
    if pid == 0:
        # A child that hangs is killed by the alarm (SIGALRM's default action), so that the
        # parent's waitpid returns and the test fails instead of hanging.
        signal.alarm(20)
        try:
            ok = len(provider.token()) == 43 and ga.TokenProvider(
                client_id=ID, client_secret=SECRET, region=emu.base_url
            ).token() != ""
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed, or hung and was killed"
    assert provider.token() == parent


def token_in_worker(base_url, _i):
    """Run in a pool worker: a fresh provider's token."""
    return ga.TokenProvider(client_id=ID, client_secret=SECRET, region=base_url).token()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_multiprocessing_pool_gets_tokens(emu, provider):
    # The parent's runtime is busy (the emulator, a fetched token) when the workers fork.
    parent = provider.token()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        tokens = pool.map_async(functools.partial(token_in_worker, emu.base_url), range(4)).get(
            timeout=60
        )
    assert len(tokens) == 4 and all(len(t) == 43 for t in tokens)
    assert len(set(tokens) | {parent}) == 5, "each worker's provider fetched its own token"
    assert emu.token_requests == 5


def test_requests_heals_a_401(emu, provider):
    requests = pytest.importorskip("requests")
    s = requests.Session()
    s.auth = ga.requests_auth(provider)
    assert s.get(emu.base_url + "/api/v2/organizations/me").status_code == 200
    emu.revoke_tokens_of(ID)
    r = s.get(emu.base_url + "/api/v2/organizations/me")
    assert r.status_code == 200
    assert emu.token_requests == 2


def test_httpx_heals_a_401_sync_and_async(emu, provider):
    httpx = pytest.importorskip("httpx")
    with httpx.Client(auth=ga.httpx_auth(provider)) as c:
        assert c.get(emu.base_url + "/api/v2/organizations/me").status_code == 200
        emu.revoke_tokens_of(ID)
        assert c.get(emu.base_url + "/api/v2/organizations/me").status_code == 200
    assert emu.token_requests == 2

    async def main():
        async with httpx.AsyncClient(auth=ga.httpx_auth(provider)) as c:
            emu.revoke_tokens_of(ID)
            return (await c.get(emu.base_url + "/api/v2/organizations/me")).status_code

    assert asyncio.run(main()) == 200
    assert emu.token_requests == 3


def test_the_token_goes_to_the_api_origin_only(emu, provider):
    requests = pytest.importorskip("requests")
    httpx = pytest.importorskip("httpx")
    with ga.Emulator() as foreign:
        # Same host, another port: another origin.
        url = foreign.base_url + "/api/v2/organizations/me"
        s = requests.Session()
        s.auth = ga.requests_auth(provider)
        r = s.get(url, timeout=10)
        assert r.status_code == 401
        assert "Authorization" not in r.request.headers
        with httpx.Client(auth=ga.httpx_auth(provider), timeout=10) as c:
            r = c.get(url)
            assert r.status_code == 401
            assert "Authorization" not in r.request.headers

        async def main():
            async with httpx.AsyncClient(auth=ga.httpx_auth(provider), timeout=10) as c:
                return await c.get(url)

        r = run_bounded(main(), timeout=30)
        assert r.status_code == 401
        assert "Authorization" not in r.request.headers
    assert emu.token_requests == 0, "no token was fetched, nor refreshed on the foreign 401"
    r = s.get(emu.base_url + "/api/v2/organizations/me", timeout=10)
    assert r.status_code == 200 and r.request.headers["Authorization"].startswith("Bearer ")
    assert emu.token_requests == 1


@pytest.mark.parametrize(
    "url, same",
    [
        ("https://api.mypurecloud.ie/api/v2/users", True),
        ("https://API.MyPureCloud.ie:443/api/v2/users?x=1", True),
        ("http://api.mypurecloud.ie/api/v2/users", False),
        ("https://api.mypurecloud.ie:8443/api/v2/users", False),
        ("https://api.mypurecloud.ie.evil.example/api/v2/users", False),
        ("https://evil.example/?https://api.mypurecloud.ie", False),
        ("https://api.mypurecloud.ie:notaport/", False),
    ],
)
def test_same_origin_compares_scheme_host_and_port(url, same):
    assert ga._same_origin(url, "https://api.mypurecloud.ie") is same


def test_errors_belong_to_the_package_and_pickle(emu):
    bad = ga.TokenProvider(client_id=ID, client_secret="wrong-Pk4", region=emu.base_url)
    with pytest.raises(ga.AuthError) as e:
        bad.token()
    err = e.value
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ga.AuthError and str(back) == str(err) and str(err)
    assert traceback.format_exception_only(type(err), err)[0].startswith("genesys_auth.AuthError: ")
    classes = (ga.ConfigError, ga.AuthError, ga.ForbiddenError, ga.RateLimitedError, ga.NetworkError)
    for cls in (ga.Error, *classes, ga.ApiError):
        assert cls.__module__ == "genesys_auth" and getattr(ga, cls.__name__) is cls
        again = pickle.loads(pickle.dumps(cls("a message")))
        assert type(again) is cls and str(again) == "a message"


def test_the_store_defaults_to_genesys_token_store(emu, monkeypatch, tmp_path):
    monkeypatch.setenv("GENESYS_TOKEN_STORE", "file")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url).token()
    second = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url).token()
    assert first == second
    assert emu.token_requests == 1, "the second provider read the first one's file"
    assert any(p.is_file() for p in tmp_path.rglob("*"))
    # store= wins over the variable.
    mem = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url, store="memory")
    mem.token()
    assert emu.token_requests == 2
    monkeypatch.setenv("GENESYS_TOKEN_STORE", "memcached://user:pw-Qx8@host")
    with pytest.raises(ga.ConfigError) as e:
        ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
    assert "GENESYS_TOKEN_STORE" in str(e.value) and "pw-Qx8" not in str(e.value)


def test_timeout_bounds_the_retries_too():
    # A port that completes the handshake and never answers; after the call, the connections
    # still queued on it are the attempts made.
    with socket.create_server(("127.0.0.1", 0), backlog=16) as s:
        p = stalled_provider(s.getsockname()[1])
        with pytest.raises(ga.NetworkError):
            p.token()
        s.setblocking(False)
        attempts = 0
        while True:
            try:
                conn, _ = s.accept()
            except BlockingIOError:
                break
            conn.close()
            attempts += 1
    # One attempt, cut off by timeout=1, and no retry after the deadline.
    assert attempts == 1, f"token() made {attempts} attempts with timeout=1"


def test_settings_warnings_are_logged_once(emu, monkeypatch, tmp_path, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENESYS_CLIENT_SECRT", "typo-value-Hh7")
    caplog.set_level(logging.WARNING, logger="genesys_auth")
    p = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
    p.token()
    p.token()
    typos = [r for r in caplog.records if "GENESYS_CLIENT_SECRT" in r.getMessage()]
    assert len(typos) == 1
    assert typos[0].name == "genesys_auth" and typos[0].levelno == logging.WARNING
    assert "did you mean GENESYS_CLIENT_SECRET" in typos[0].getMessage()
    assert "typo-value-Hh7" not in caplog.text and SECRET not in caplog.text


def stub_tree():
    return ast.parse(importlib.resources.files("genesys_auth").joinpath("__init__.pyi").read_text())


def public_members(cls):
    """The public methods and properties `cls` has beyond `object`'s."""
    return sorted(n for n in dir(cls) if not n.startswith("_") and not hasattr(object, n))


def test_every_public_name_is_stubbed_and_documented():
    tree = stub_tree()
    top = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            top[node.name] = node
    for name in ga.__all__:
        assert name in top, f"{name} is not in __init__.pyi"
        assert ast.get_docstring(top[name]), f"{name} has no docstring in __init__.pyi"
        assert inspect.getdoc(getattr(ga, name)), f"genesys_auth.{name} has no docstring"
    for cls in (ga.TokenProvider, ga.Emulator):
        stubbed = {
            n.name: n
            for n in top[cls.__name__].body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        members = public_members(cls)
        assert members, cls
        for name in members:
            assert name in stubbed, f"{cls.__name__}.{name} is not in __init__.pyi"
            assert ast.get_docstring(stubbed[name]), f"{cls.__name__}.{name} has no stub docstring"
            assert inspect.getdoc(getattr(cls, name)), f"{cls.__name__}.{name} has no docstring"


def test_the_typing_files_are_installed():
    files = importlib.resources.files("genesys_auth")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("__init__.pyi").is_file()


def test_the_official_sdk_stays_authenticated_across_a_forced_expiry(emu, provider):
    sdk = pytest.importorskip("PureCloudPlatformClientV2")
    api = ga.configure_sdk(sdk.api_client.ApiClient(), provider)
    org = sdk.OrganizationApi(api).get_organizations_me()
    assert org.name == "Emulated Organization"
    # The server's clock passes the token's expiry: its next use is a 401, healed once.
    emu.advance_clock(90_000)
    org = sdk.OrganizationApi(api).get_organizations_me()
    assert org.name == "Emulated Organization"
    assert emu.token_requests == 2


def test_no_secret_in_any_exception_repr_or_log(emu, caplog):
    caplog.set_level(logging.DEBUG)
    p = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
    t = p.token()
    bad = ga.TokenProvider(client_id=ID, client_secret=SECRET + "x", region=emu.base_url)
    with pytest.raises(ga.Error) as e:
        bad.token()
    text = " ".join([str(e.value), repr(e.value), repr(p), repr(bad), repr(p.token_info()), caplog.text])
    assert SECRET not in text and t not in text


@pytest.fixture
def foreign():
    """Another origin on loopback that answers 401 to everything and records the
    Authorization header of each request it gets."""
    import http.server

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            body = b'{"message": "not here"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def redirect_next_api_call(emu, location, count=1):
    """Makes the emulator's next API answer(s) a 302 to `location`, over its admin API."""
    import json
    import urllib.request

    req = urllib.request.Request(
        emu.base_url + "/__emulator/faults",
        data=json.dumps(
            {"target": "api", "kind": "redirect", "location": location, "count": count}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def test_a_401_from_a_foreign_redirect_target_neither_heals_nor_drops_the_token(
    emu, provider, foreign
):
    requests = pytest.importorskip("requests")
    httpx = pytest.importorskip("httpx")
    url, seen = foreign
    good = provider.token()
    api = emu.base_url + "/api/v2/organizations/me"

    s = requests.Session()
    s.auth = ga.requests_auth(provider)
    redirect_next_api_call(emu, url + "/elsewhere")
    r = s.get(api, timeout=10)
    assert r.status_code == 401 and r.url.startswith(url)

    with httpx.Client(auth=ga.httpx_auth(provider), follow_redirects=True, timeout=10) as c:
        redirect_next_api_call(emu, url + "/elsewhere")
        r = c.get(api)
        assert r.status_code == 401 and str(r.url).startswith(url)

    async def main():
        async with httpx.AsyncClient(
            auth=ga.httpx_auth(provider), follow_redirects=True, timeout=10
        ) as c:
            redirect_next_api_call(emu, url + "/elsewhere")
            return await c.get(api)

    r = run_bounded(main(), timeout=30)
    assert r.status_code == 401

    assert seen == [None, None, None], "the foreign origin got a token"
    assert emu.token_requests == 1, "a foreign 401 made the provider refresh"
    assert provider.token() == good, "the good token was dropped"
    assert s.get(api, timeout=10).status_code == 200
