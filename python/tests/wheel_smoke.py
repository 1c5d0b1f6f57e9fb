"""The installed wheel, in a virtualenv that holds it and nothing else: it imports, knows its
version, gets a token from the bundled emulator (blocking and asyncio), and `python -m
genesys_auth verify` checks it against the emulator's API. Plain Python, no pytest: run by
scripts/python-wheel-smoke with each supported interpreter. Prints one line; no secret."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile

import genesys_auth as ga

ID = "smoke-client"
SECRET = "smoke-secret-Kd7-never-shown"


def main() -> None:
    assert ga.__version__ and ga.__version__[0].isdigit(), ga.__version__
    native = os.path.basename(ga._native.__file__)
    assert "site-packages" in ga.__file__, f"not the installed package: {ga.__file__}"
    with ga.Emulator(clients={ID: SECRET}) as emu:
        p = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)
        token = p.token()
        assert len(token) == 43 and p.token() is token
        fresh = ga.TokenProvider(client_id=ID, client_secret=SECRET, region=emu.base_url)

        async def herd():
            return await asyncio.gather(*(fresh.token_async() for _ in range(10)))

        tokens = set(asyncio.run(herd()))
        assert len(tokens) == 1 and token not in tokens
        assert emu.token_requests == 2, emu.token_requests
        with tempfile.TemporaryDirectory() as home:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": home,
                "GENESYS_CLIENT_ID": ID,
                "GENESYS_CLIENT_SECRET": SECRET,
                "GENESYS_REGION": emu.base_url,
            }
            out = subprocess.run(
                [sys.executable, "-m", "genesys_auth", "verify", "--json"],
                env=env, cwd=home, capture_output=True, text=True, timeout=60,
            )
        shown = out.stdout + out.stderr
        assert SECRET not in shown, "the client secret was printed"
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["oauth_client"]["id"] == ID, report
    print(
        f"Python {sys.version.split()[0]}: genesys_auth {ga.__version__} ({native}): "
        "import, token, token_async, verify: ok"
    )


if __name__ == "__main__":
    main()
