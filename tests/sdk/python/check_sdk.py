"""Genesys' official Python SDK (PureCloudPlatformClientV2), unmodified, against the emulator.

Usage: check_sdk.py BASE_URL CLIENT_ID CLIENT_SECRET
Prints one line per check and exits non-zero on the first failure.
"""

import json
import sys
import time
import urllib.request

import PureCloudPlatformClientV2 as gc
from PureCloudPlatformClientV2.rest import ApiException

base, client_id, client_secret = sys.argv[1:4]


def admin(path, body):
    req = urllib.request.Request(
        base + "/__emulator" + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req).read()


def expect_error(call, status):
    try:
        call()
    except ApiException as e:
        assert e.status == status, (e.status, status)
        return e
    raise AssertionError(f"expected HTTP {status}")


api = gc.api_client.ApiClient(host=base).get_client_credentials_token(client_id, client_secret)
assert api.access_token, "no token"
print("ok login")

me = gc.TokensApi(api).get_tokens_me()
assert me.organization.name == "Emulated Organization", me.organization
assert me.o_auth_client.id == client_id, me.o_auth_client
print("ok tokens/me")

org = gc.OrganizationApi(api).get_organizations_me()
assert org.name == "Emulated Organization" and org.id
print("ok organizations/me")

e = expect_error(lambda: gc.UsersApi(api).get_users_me(), 400)
assert "user context" in e.body, e.body
print("ok users/me refused")

page = gc.UsersApi(api).get_users(page_size=25, page_number=2)
assert page.page_number == 2 and len(page.entities) == 25 and page.page_count >= 2, page
roles = gc.AuthorizationApi(api).get_authorization_roles(page_size=10, page_number=3)
assert len(roles.entities) == 10, roles
print("ok paged lists")

# The SDK's HTTP layer (urllib3) honours Retry-After on a 429: one wait, then the answer.
def org_me_requests():
    with urllib.request.urlopen(base + "/__emulator/counters") as r:
        return json.load(r)["api_requests"].get("/api/v2/organizations/me", 0)


before = org_me_requests()
admin("/faults", {"target": "api", "kind": "status", "status": 429, "retry_after": 1, "count": 1})
started = time.monotonic()
org = gc.OrganizationApi(api).get_organizations_me()
assert org.name == "Emulated Organization"
assert org_me_requests() - before == 2, "the 429 was answered, then the retry"
assert time.monotonic() - started >= 0.9, "Retry-After was waited"
print("ok 429 with Retry-After")

gc.TokensApi(api).delete_tokens_me()
expect_error(lambda: gc.TokensApi(api).get_tokens_me(), 401)
print("ok revoke")
