'use strict';
// UserService from Node.js: @grpc/grpc-js with @grpc/proto-loader reading the
// .proto files directly, against the real gateway and emulator started by the
// harness (tests/harness/stack.py in its command mode).
//
// Run from anywhere (binaries built first):
//   node --test tests/polyglot/user.test.js
// POSTHOG_BAZEL_BIN selects the bazel-bin directory, as for the harness.

const { after, before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { repoRoot, startStack, stopStack } = require('./lib/stack');
const { grpc, CALL_TIMEOUT_MS, serviceClient } = require('./lib/grpc');

const SEED_PATH = path.join(repoRoot, 'emulator/seed/demo.json');

// What the seed says the gateway's user is: the owner of the first
// all-access personal key, as the harness configures it.
function expectedUser(seed) {
  const key = seed.personal_api_keys.find((k) => (k.scopes || []).includes('*'));
  const user = seed.users.find((u) => u.id === key.user_id);
  const team = seed.projects.find((p) => p.id === user.current_project_id);
  const organization = seed.organizations.find((o) => o.id === user.organization_ids[0]);
  return { user, team, organization };
}

// Every secret in the seed; none may show up in a log.
function seedSecrets(seed) {
  const secrets = seed.personal_api_keys.map((k) => k.value);
  for (const project of seed.projects) {
    if (project.api_token) secrets.push(project.api_token);
    if (project.secret_api_token) secrets.push(project.secret_api_token);
  }
  return secrets;
}

function getCurrentUser(client, project) {
  const metadata = new grpc.Metadata();
  metadata.set('x-request-id', 'polyglot-node');
  return new Promise((resolve, reject) => {
    client.GetCurrentUser({ project }, metadata, { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error, response) => (error ? reject(error) : resolve(response)));
  });
}

const seed = JSON.parse(fs.readFileSync(SEED_PATH, 'utf8'));
let tempDir;
let stack;
let env;
let client;

before(async () => {
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-node-'));
  stack = startStack(path.join(tempDir, 'stack.env'));
  env = await stack.ready;
  client = serviceClient('posthog/v1/user.proto', 'UserService', env.GATEWAY_TARGET);
});

after(async () => {
  if (client) client.close();
  if (stack) await stopStack(stack.child);
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
});

test('GetCurrentUser with the default project returns the seed user', async () => {
  const { user, team, organization } = expectedUser(seed);

  const response = await getCurrentUser(client, '');

  assert.equal(response.user.uuid, user.uuid);
  assert.equal(response.user.distinct_id, user.distinct_id);
  assert.equal(response.user.first_name, user.first_name);
  assert.equal(response.user.last_name, user.last_name);
  assert.equal(response.user.email, user.email);
  assert.equal(response.user.team.id, String(team.id)); // int64 as a string (longs: String)
  assert.equal(response.user.team.uuid, team.uuid);
  assert.equal(response.user.team.name, team.name);
  assert.equal(response.user.organization.id, organization.id);
  assert.equal(response.user.organization.name, organization.name);
  assert.deepEqual(response.user.organizations.map((o) => o.id), user.organization_ids);
});

test('GetCurrentUser by alias returns the same user', async () => {
  const { user } = expectedUser(seed);

  const response = await getCurrentUser(client, 'demo');

  assert.equal(response.user.email, user.email);
  assert.equal(response.user.uuid, user.uuid);
});

test('GetCurrentUser with an unknown project fails with INVALID_ARGUMENT (3)', async () => {
  await assert.rejects(getCurrentUser(client, 'no-such-project'), (error) => {
    assert.equal(error.code, 3);
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    return true;
  });
});

test('no key appears in the gateway or emulator log', async () => {
  await getCurrentUser(client, '');

  for (const name of ['gateway.log', 'emulator.log']) {
    const log = fs.readFileSync(path.join(env.STACK_DIR, name), 'utf8');
    assert.notEqual(log, '', `${name} is empty`);
    for (const secret of seedSecrets(seed)) {
      assert.ok(!log.includes(secret), `a seed key appears in ${name}`);
    }
  }
});
