"""gevent: a token fetch from a greenlet runs on the hub's thread pool, so that the other
greenlets keep running while it waits; with monkey-patching (gunicorn's gevent worker) and
without. Each case runs in its own interpreter, so that patching does not reach other tests."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SECRET = "gevent-secret-Hr4-never-shown"

# The emulator is reached through a relay of greenlets in the same thread: the request and its
# answer move only while the hub runs other greenlets, so a fetch that blocked the thread would
# starve the relay and time out instead of getting a token.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    if sys.argv[1] == "patched":
        from gevent import monkey
        monkey.patch_all()
    import gevent
    from gevent import socket
    from gevent.server import StreamServer
    import genesys_auth as ga

    ID, SECRET = "gevent-client", sys.argv[2]
    connections = [0]

    def pump(src, dst):
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

    with ga.Emulator(clients={ID: SECRET}) as emu:
        target = ("127.0.0.1", int(emu.base_url.rsplit(":", 1)[1].split("/")[0]))

        def relay(client, _address):
            connections[0] += 1
            upstream = socket.create_connection(target)
            gevent.joinall([gevent.spawn(pump, client, upstream),
                            gevent.spawn(pump, upstream, client)])

        server = StreamServer(("127.0.0.1", 0), relay)
        server.start()
        p = ga.TokenProvider(client_id=ID, client_secret=SECRET, timeout=10,
                             region=f"http://127.0.0.1:{server.server_port}")
        token = p.token()
        info = p.token_info()
        # A cached token is handed out at once, from any greenlet.
        cached = gevent.spawn(p.token).get()
        server.stop(timeout=1)
        print(json.dumps({"same": cached == token == info.token, "length": len(token),
                          "connections": connections[0], "requests": emu.token_requests}))
    """
)


def gevent_available():
    try:
        import gevent  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("gevent is missing: install the package's test extra (scripts/python-setup)")
        pytest.skip("gevent is not installed (the package's test extra has it)")


@pytest.mark.parametrize("mode", ["patched", "unpatched"])
def test_other_greenlets_run_while_a_token_is_fetched(mode, tmp_path):
    gevent_available()
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, SECRET],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["length"] == 43 and r["same"]
    assert r["connections"] >= 1 and r["requests"] == 1
