"""The Python package against the emulator, in process: every API, threads, asyncio, fork,
requests and httpx healing a 401, the official SDK, and no secret anywhere."""

import asyncio
import logging
import os
import threading
import time

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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_a_token(emu, provider):
    parent = provider.token()
    pid = os.fork()
    if pid == 0:
        try:
            ok = len(provider.token()) == 43 and ga.TokenProvider(
                client_id=ID, client_secret=SECRET, region=emu.base_url
            ).token() != ""
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert provider.token() == parent


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
