// Genesys' official JavaScript SDK (purecloud-platform-client-v2), unmodified, against the
// emulator, reached through the SDK's own gateway setting.
// Usage: node check_sdk.js BASE_URL CLIENT_ID CLIENT_SECRET
// Prints one line per check and exits non-zero on the first failure.
'use strict';

const assert = require('node:assert/strict');
const platformClient = require('purecloud-platform-client-v2');

const [base, clientId, clientSecret] = process.argv.slice(2);
const url = new URL(base);

async function admin(path, body) {
  const r = await fetch(`${base}/__emulator${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.ok(r.ok, `admin ${path}: ${r.status}`);
}

async function expectError(promise, status) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, JSON.stringify(e));
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

async function main() {
  const client = platformClient.ApiClient.instance;
  // Errors then carry the status, headers and body of the response.
  client.setReturnExtendedResponses(true);
  client.setGateway({ protocol: url.protocol.replace(':', ''), host: url.hostname, port: Number(url.port) });
  const auth = await client.loginClientCredentialsGrant(clientId, clientSecret);
  assert.ok(auth.accessToken);
  console.log('ok login');

  const tokens = new platformClient.TokensApi();
  const me = (await tokens.getTokensMe()).body;
  assert.equal(me.organization.name, 'Emulated Organization');
  assert.equal(me.OAuthClient.id, clientId);
  console.log('ok tokens/me');

  const org = (await new platformClient.OrganizationApi().getOrganizationsMe()).body;
  assert.equal(org.name, 'Emulated Organization');
  console.log('ok organizations/me');

  const users = new platformClient.UsersApi();
  const refused = await expectError(users.getUsersMe(), 400);
  assert.match(JSON.stringify(refused.body), /user context/);
  console.log('ok users/me refused');

  const page = (await users.getUsers({ pageSize: 25, pageNumber: 2 })).body;
  assert.equal(page.pageNumber, 2);
  assert.equal(page.entities.length, 25);
  const roles = (
    await new platformClient.AuthorizationApi().getAuthorizationRoles({ pageSize: 10, pageNumber: 3 })
  ).body;
  assert.equal(roles.entities.length, 10);
  console.log('ok paged lists');

  await admin('/faults', { target: 'api', kind: 'status', status: 429, retry_after: 7, count: 1 });
  const limited = await expectError(new platformClient.OrganizationApi().getOrganizationsMe(), 429);
  assert.equal(String(limited.headers['retry-after']), '7');
  assert.ok(limited.headers['inin-correlation-id']);
  console.log('ok 429 with Retry-After');

  await tokens.deleteTokensMe();
  await expectError(tokens.getTokensMe(), 401);
  console.log('ok revoke');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
