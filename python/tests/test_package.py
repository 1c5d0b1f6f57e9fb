"""The package as a user meets it: a fork pool that keeps the parent's token, scopes written as
the tutorial writes them, exceptions with attributes, the version and ``python -m genesys_auth``,
an import that pays for asyncio only when used, a clear message from a source checkout, DEBUG
logs, async methods that hold no thread, the pytest plugin's fixtures and emulator options, a forked
child that refreshes only when due, and the wheel's tag and index metadata."""

import asyncio
import json
import logging
import multiprocessing
import os
import pathlib
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

import pytest

import genesys_auth as ga

ID = "pkg-client-0001"
SECRET = "pkg-secret-Vb3-never-shown"
PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def emu():
    with ga.Emulator(clients={ID: SECRET}) as e:
        yield e


@pytest.fixture
def provider(emu):
    return ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)


# The provider the pool's workers inherit through fork.
_INHERITED = None


def _inherited_token(_i):
    return _INHERITED.token()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_fork_pool_keeps_the_parents_valid_token(emu, provider):
    global _INHERITED
    _INHERITED = provider
    parent = provider.token()
    assert emu.token_requests == 1
    with multiprocessing.get_context("fork").Pool(8) as pool:
        tokens = pool.map_async(_inherited_token, range(16)).get(timeout=60)
    assert set(tokens) == {parent}
    assert emu.token_requests == 1, "the children asked for tokens of their own"


def in_child(fn):
    """Runs ``fn()`` in a forked child and returns its JSON-able result; a child that fails or
    hangs (killed by the alarm) fails the test."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        signal.alarm(30)
        try:
            out, code = json.dumps({"ok": fn()}), 0
        except BaseException:
            out, code = json.dumps({"error": traceback.format_exc()}), 1
        with os.fdopen(w, "w") as f:
            f.write(out)
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text or "the child hung and was killed"
    return json.loads(text)["ok"]


# 600 s tokens: the refresh point is 60 s before expiry, spread up to 15 s earlier (so between
# 525 s and 540 s), and a token counts as expired 5 s before its end (595 s).
SHORT_TTL = 600


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_refreshes_on_its_own_only_when_due():
    with ga.Emulator(clients={ID: {"secret": SECRET, "ttl": SHORT_TTL}}) as emu:
        p = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url, clock=emu)
        parent = p.token()
        assert emu.token_requests == 1

        # In a child, advance_clock moves that child's clocks only (the provider's, and its own
        # copy of the emulator's); the emulator serving the requests runs in this process and
        # counts every child's token requests.
        def not_due():
            emu.advance_clock(400)
            return [p.token() for _ in range(3)]

        def due():
            emu.advance_clock(SHORT_TTL - 40)  # past the refresh point, before expiry
            # The parent's token is still valid here: the child may hand it out while its one
            # refresh is in flight, or wait for that refresh; either way it refreshes once.
            while (t := p.token()) == parent:  # bounded by the alarm
                time.sleep(0.01)
            return [t] + [p.token() for _ in range(3)]

        def expired():
            emu.advance_clock(SHORT_TTL * 2)
            return [p.token() for _ in range(3)]

        assert in_child(not_due) == [parent] * 3
        assert emu.token_requests == 1, "a child asked for a token before it was due"

        got = in_child(due)
        assert len(set(got)) == 1 and got[0] != parent
        assert emu.token_requests == 2, "the due child made other than exactly one request"

        got = in_child(expired)
        assert len(set(got)) == 1 and got[0] != parent
        assert emu.token_requests == 3, "the expired child made other than exactly one request"

        # A sibling forked after them still starts from the parent's token, and the parent's
        # own token is untouched.
        assert in_child(lambda: p.token()) == parent
        assert p.token() == parent
        assert emu.token_requests == 3


def test_scopes_as_the_tutorial_writes_them(emu):
    for scopes in ("user:read organization:readonly", ["user:read", "organization:readonly"]):
        p = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url, scopes=scopes)
        assert p.token_info().scopes == ("user:read", "organization:readonly")
    with pytest.raises(TypeError) as e:
        ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url, scopes=5)
    assert "space-separated" in str(e.value) and "Vec" not in str(e.value)


def test_exceptions_carry_status_error_correlation_id_and_retry_after(emu):
    bad = ga.TokenProvider(client_id=ID, client_secret="wrong-Aa1", region=emu.base_url)
    with pytest.raises(ga.AuthError) as e:
        bad.token()
    err = e.value
    assert err.status == 401 and err.error == "invalid_client"
    assert err.correlation_id and len(err.correlation_id) == 36
    assert err.retry_after is None
    back = pickle.loads(pickle.dumps(err))
    assert (back.status, back.error, back.correlation_id) == (401, "invalid_client", err.correlation_id)
    # A rate limit says how long to wait.
    emu.inject("token", "status", count=20, status=429, retry_after=7)
    limited = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url, timeout=2)
    with pytest.raises(ga.RateLimitedError) as e:
        limited.token()
    assert e.value.retry_after == 7.0
    # Every class has the attributes, None by default.
    assert ga.ConfigError("x").status is None and ga.Error("x").retry_after is None


def test_version_and_python_m(emu, tmp_path):
    assert ga.__version__ and ga.__version__[0].isdigit()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "GENESYS_CLIENT_ID": ID,
        "GENESYS_CLIENT_SECRET": SECRET,
        "GENESYS_REGION": emu.base_url,
    }
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "genesys_auth", *a], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == ga.__version__
    out = run("token")
    assert out.returncode == 0 and len(out.stdout.strip()) == 43, out.stderr
    out = run("verify", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["organization"]["name"] == "Emulated Organization"
    assert report["oauth_client"]["id"] == ID
    env["GENESYS_CLIENT_SECRET"] = "wrong-Mm2"
    out = run("token")
    assert out.returncode == 4 and "wrong-Mm2" not in out.stderr + out.stdout
    assert SECRET not in out.stderr


def test_importing_pays_for_asyncio_only_when_used():
    code = "import sys, genesys_auth; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_importing_from_a_source_checkout_says_what_to_do():
    if any((PYTHON_DIR / "genesys_auth").glob("_native*")):
        pytest.skip("the source folder holds a built _native (maturin develop)")
    out = subprocess.run(
        [sys.executable, "-c", "import genesys_auth"],
        cwd=PYTHON_DIR, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0
    assert "source folder" in out.stderr and "pip install ./python" in out.stderr, out.stderr
    assert "circular import" not in out.stderr.splitlines()[-1]


def test_tokens_and_healed_401s_are_logged_at_debug_and_warnings_once(
    emu, provider, caplog, monkeypatch, tmp_path
):
    requests = pytest.importorskip("requests")
    caplog.set_level(logging.DEBUG, logger="genesys_auth")
    t = provider.token()
    s = requests.Session()
    s.auth = ga.requests_auth(provider)
    emu.revoke_tokens_of(ID)
    assert s.get(emu.base_url + "/api/v2/organizations/me", timeout=10).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "genesys_auth"]
    assert any(m.startswith("token obtained") for m in lines), lines
    assert any(m.startswith("token refreshed") for m in lines), lines
    assert any(m.startswith("401 from the API origin") for m in lines), lines
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "genesys_auth")
    assert t not in caplog.text and SECRET not in caplog.text
    # A settings warning, once per process however many providers are made.
    caplog.clear()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENESYS_REGOIN", "x")
    for _ in range(3):
        ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
    once = [r for r in caplog.records if "GENESYS_REGOIN" in r.getMessage()]
    assert len(once) == 1


@pytest.fixture
def blackhole():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def test_token_async_holds_no_thread_and_waiters_share_one_fetch(blackhole):
    p = ga.TokenProvider(
        client_id=ID, client_secret=SECRET, region=f"http://127.0.0.1:{blackhole}", timeout=1
    )

    async def main():
        before = threading.active_count()
        tasks = [asyncio.ensure_future(p.token_async()) for _ in range(50)]
        # Every task has asked once it has had a turn; an executor would have its thread now.
        for _ in range(3):
            await asyncio.sleep(0)
        during = threading.active_count()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return before, during, results, asyncio.get_running_loop()

    loop = asyncio.new_event_loop()
    try:
        before, during, results, _ = loop.run_until_complete(asyncio.wait_for(main(), 30))
        assert loop._default_executor is None, "an executor thread was used"
    finally:
        loop.close()
    assert during == before, "threads were started to wait"
    assert all(isinstance(r, ga.NetworkError) for r in results)
    assert len({id(r) for r in results}) == 1, "the 50 tasks shared one fetch's outcome"


def test_token_info_async_and_revoke_async(emu, provider):
    async def main():
        tokens = await asyncio.gather(*(provider.token_async() for _ in range(100)))
        info = await provider.token_info_async()
        await provider.revoke_async()
        return set(tokens), info

    tokens, info = asyncio.run(main())
    assert tokens == {info.token} and emu.token_requests == 1
    assert provider.token() != info.token and emu.token_requests == 2


def test_the_pytest_plugins_fixtures(genesys_emulator, genesys_provider):
    t = genesys_provider.token()
    assert genesys_emulator.token_requests == 1
    # The provider's clock moves with the emulator's: the token is due, and refreshed.
    genesys_emulator.advance_clock(90_000)
    assert genesys_provider.token() != t
    assert genesys_emulator.token_requests == 2
    assert "pytest-client" in repr(genesys_emulator) and genesys_emulator.base_url in repr(
        genesys_emulator
    )


def test_emulator_clients_with_options_and_faults():
    clients = {
        "short": {"secret": "s1", "ttl": 600, "scopes": ["users:readonly"]},
        "off": {"secret": "s2", "grant": "none"},
    }
    with ga.Emulator(clients=clients) as emu:
        short = ga.TokenProvider(client_id="short", client_secret="s1", region=emu.base_url)
        info = short.token_info()
        assert info.scopes == ("users:readonly",)
        assert info.expires_at is not None
        with pytest.raises(ga.AuthError):
            ga.TokenProvider(client_id="off", client_secret="s2", region=emu.base_url).token()
        emu.inject("token", "status", status=503, count=50)
        p = ga.TokenProvider(client_id="short", client_secret="s1", region=emu.base_url, timeout=1)
        with pytest.raises(ga.NetworkError) as e:
            p.token()
        assert e.value.status == 503
        emu.clear_faults()
        # (That provider now backs off; another one is not held back.)
        again = ga.TokenProvider(client_id="short", client_secret="s1", region=emu.base_url)
        assert again.token()
        assert emu.counters()["tokens_issued"] == 2
        with pytest.raises(ValueError):
            emu.inject("token", "large_body", bytes=10**11)
        with pytest.raises(ValueError):
            ga.Emulator(clients={"x": {"secret": "y", "colour": "red"}})
    assert "stopped" in repr(emu)


def test_installed_from_a_manylinux_abi3_wheel_with_its_index_metadata():
    from importlib import metadata

    dist = metadata.distribution("genesys-auth")
    # The wheel scripts/python-setup builds: one file for CPython 3.9 and later, a platform tag
    # PyPI accepts (a plain linux_x86_64 wheel, as `pip install ./python` makes, is refused).
    tags = [line.split(":", 1)[1].strip() for line in dist.read_text("WHEEL").splitlines()
            if line.startswith("Tag:")]
    assert tags and all(t.startswith("cp39-abi3-manylinux") for t in tags), tags
    meta = dist.metadata
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Source", "Documentation", "Issues"} <= set(urls), urls
    classifiers = set(meta.get_all("Classifier"))
    for c in (
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "License :: OSI Approved :: MIT License",
        "License :: OSI Approved :: Apache Software License",
        "Framework :: Pytest",
    ):
        assert c in classifiers, c
    assert "genesys" in meta["Keywords"] and meta["Requires-Python"] == ">=3.9"
    # The index page is the README, and it stands alone: its sections, and no link that only
    # resolves inside the repository.
    readme = meta.get_payload() if hasattr(meta, "get_payload") else meta["Description"]
    for heading in ("## Install", "## Quick start", "## asyncio", "## Threads, fork and prefork",
                    "## gevent", "## Tests of your own code", "## Errors", "## What it does not do"):
        assert heading in readme, heading
    assert "](../" not in readme and "](./" not in readme
