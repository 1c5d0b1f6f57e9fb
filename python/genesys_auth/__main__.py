"""``python -m genesys_auth``: the token, or a check of it, from the same settings as the
package (environment, ``.env``, profiles), with the CLI's exit codes.

    python -m genesys_auth token            # prints the access token
    python -m genesys_auth token --json     # the token with its expiry, scopes and region
    python -m genesys_auth verify           # checks it against the API: organization, client
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

import genesys_auth as ga

# The CLI's exit codes, by exception class (most specific first).
_EXIT = [
    (ga.ConfigError, 3),
    (ga.AuthError, 4),
    (ga.ForbiddenError, 5),
    (ga.RateLimitedError, 6),
    (ga.NetworkError, 7),
    (ga.ApiError, 8),
]


def _provider(args: argparse.Namespace) -> ga.TokenProvider:
    return ga.TokenProvider(
        region=args.region, profile=args.profile, scopes=args.scopes, store=args.store
    )


def _token(args: argparse.Namespace) -> None:
    provider = _provider(args)
    if args.json:
        info = provider.token_info()
        print(
            json.dumps(
                {
                    "access_token": info.token,
                    "expires_at": info.expires_at,
                    "scopes": list(info.scopes),
                    "region": info.region,
                    "api_base_url": info.api_base_url,
                }
            )
        )
    else:
        print(provider.token())


def _verify(args: argparse.Namespace) -> None:
    provider = _provider(args)
    info = provider.token_info()
    me = json.loads(provider._api_get("/api/v2/tokens/me"))
    org = json.loads(provider._api_get("/api/v2/organizations/me"))
    report = {
        "valid": True,
        "region": info.region,
        "organization": {"id": org.get("id"), "name": org.get("name")},
        "oauth_client": {
            "id": (me.get("OAuthClient") or {}).get("id"),
            "name": (me.get("OAuthClient") or {}).get("name"),
        },
        "scopes": list(info.scopes),
        "expires_at": info.expires_at,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"region:        {report['region']}")
    print(f"organization:  {report['organization']['name']} ({report['organization']['id']})")
    print(f"OAuth client:  {report['oauth_client']['name']} ({report['oauth_client']['id']})")
    print(f"scopes:        {' '.join(report['scopes']) or '(none)'}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genesys_auth",
        description="Genesys Cloud client-credentials tokens, from the package's settings.",
    )
    parser.add_argument("--version", action="version", version=ga.__version__)
    parser.add_argument("--region", help="region name or base URL (else GENESYS_REGION)")
    parser.add_argument("--profile", help="profile to read (else GENESYS_PROFILE)")
    parser.add_argument("--scopes", help="space-separated scopes to ask for")
    parser.add_argument("--store", help='"memory", "file" or a redis:// URL')
    sub = parser.add_subparsers(dest="command", required=True)
    for name, run, text in (
        ("token", _token, "print the access token"),
        ("verify", _verify, "check the token against the API"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="one JSON object")
        p.set_defaults(run=run)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except ga.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return next((code for cls, code in _EXIT if isinstance(e, cls)), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
