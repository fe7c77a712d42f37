'use strict';
// GroupService from Node.js (issue 19): @grpc/grpc-js with @grpc/proto-loader
// reading the .proto files directly, against the real gateway and emulator
// started by the harness (tests/harness/stack.py in its command mode).
//
// Run from anywhere (binaries built first):
//   node --test tests/polyglot/groups.test.js

const { after, before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startStack, stopStack } = require('./lib/stack');
const {
  grpc, serviceClient, unaryCall, serverStream, emulatorAdmin,
} = require('./lib/grpc');

const CALL_TIMEOUT_MS = 20000;
const GENERATED = 250;
// The groups endpoints spend the default private-API budget; these tests
// page more than it allows in a minute (the pacer has its own tests).
const NO_LIMITS = JSON.stringify({ paging: { flags_per_minute: 0, flags_per_hour: 0 } });

function listGroups(request, timeoutMs = CALL_TIMEOUT_MS) {
  return serverStream(client, 'ListGroups', { group_type_index: 0, ...request }, timeoutMs);
}

function keysOf(messages) {
  return messages.flatMap((r) => r.groups.map((g) => g.group_key));
}

function unary(method, request) {
  return unaryCall(client, method, request, CALL_TIMEOUT_MS);
}

function admin(pathname, body) {
  return emulatorAdmin(env.EMULATOR_URL, pathname, body);
}

function rejectsWith(code) {
  return (error) => {
    assert.equal(error.code, code, error.details);
    return true;
  };
}

let tempDir;
let stack;
let env;
let client;
let full;

before(async () => {
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-node-groups-'));
  stack = startStack(path.join(tempDir, 'stack.env'), [`--extra_config=${NO_LIMITS}`]);
  env = await stack.ready;
  await admin('/_emulator/seed', { generate_groups: GENERATED, project_id: 1, group_type_index: 0 });
  client = serviceClient('posthog/v1/group.proto', 'GroupService', env.GATEWAY_TARGET);
  full = keysOf(await listGroups({}));
});

after(async () => {
  if (client) client.close();
  if (stack) await stopStack(stack.child);
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
});

test('ListGroups streams every group to the end, a page per message, with progress', async () => {
  const messages = await listGroups({});
  assert.ok(full.length >= GENERATED);
  assert.equal(new Set(full).size, full.length, 'a group twice');
  assert.deepEqual(keysOf(messages), full);
  assert.ok(messages.slice(0, -1).every((m) => m.groups.length === 100));
  assert.deepEqual(messages.map((m) => m.progress.page), messages.map((_, i) => i + 1));
  assert.equal(messages[messages.length - 1].progress.items_streamed, String(full.length));
});

test('ListGroups resumes right after each message', async () => {
  const messages = await listGroups({});
  for (const message of messages) {
    const resumed = await listGroups({ resume_token: message.resume_token });
    assert.deepEqual(keysOf(resumed), full.slice(Number(message.progress.items_streamed)));
  }
});

test('ListGroups resumes at every position of a page', async () => {
  // A call limited to n groups ends with the token right after the n-th.
  for (let position = 100; position < 200; position += 1) {
    const cut = await listGroups({ limit: position + 1 });
    const resumed = await listGroups({ resume_token: cut[cut.length - 1].resume_token });
    assert.deepEqual(keysOf(resumed), full.slice(position + 1), `position ${position}`);
  }
});

test('ListGroups refuses a forged cursor inside a token, and a token of other filters', async () => {
  const [first] = await listGroups({ limit: 1 });
  const [payload, mac] = first.resume_token.split('.');
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString());
  assert.ok('c' in decoded);
  decoded.c = Buffer.from('o=0&p=2001-01-01').toString('base64');
  const forged = `${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${mac}`;
  await assert.rejects(listGroups({ resume_token: forged }), rejectsWith(grpc.status.INVALID_ARGUMENT));
  await assert.rejects(listGroups({ search: 'x', resume_token: first.resume_token }),
    rejectsWith(grpc.status.INVALID_ARGUMENT));
  await assert.rejects(listGroups({ group_type_index: 5 }), rejectsWith(grpc.status.INVALID_ARGUMENT));
});

test('ListGroups ends with UNAVAILABLE on a truncated page, resumable without a gap', async () => {
  await admin('/_emulator/faults', [{ route: 'groups', latency_ms: 0, count: 1 },
    { route: 'groups', truncate_rate: 1, count: 1 }]);
  const error = await listGroups({}).then(() => null, (e) => e);
  await admin('/_emulator/faults', []);
  assert.ok(error, 'the truncated page did not fail the stream');
  assert.equal(error.code, grpc.status.UNAVAILABLE);
  assert.deepEqual(keysOf(error.received), full.slice(0, 100));
  const resumed = await listGroups({ resume_token: error.received[0].resume_token });
  assert.deepEqual(keysOf(error.received).concat(keysOf(resumed)), full);
});

test('ListGroups refuses a next URL on a foreign host', async () => {
  await admin('/_emulator/faults', [{ route: 'groups', foreign_next_host: 'http://evil.example:1234', count: 1 }]);
  const error = await listGroups({}).then(() => null, (e) => e);
  await admin('/_emulator/faults', []);
  assert.ok(error);
  assert.equal(error.code, grpc.status.UNAVAILABLE);
  assert.equal(error.received.length, 0);
});

test('ListGroups waits out a 429, and one beyond the deadline is RESOURCE_EXHAUSTED', async () => {
  await admin('/_emulator/faults', [{ route: 'groups', status: 429, error_rate: 1, retry_after_s: 1, count: 1 }]);
  assert.deepEqual(keysOf(await listGroups({})), full);
  await admin('/_emulator/faults', [{ route: 'groups', status: 429, error_rate: 1, retry_after_s: 30, count: 1 }]);
  await assert.rejects(listGroups({}, 3000), rejectsWith(grpc.status.RESOURCE_EXHAUSTED));
  await admin('/_emulator/faults', []);
});

test('CreateGroup, GetGroup, UpdateGroupProperties and ListGroupTypes', async () => {
  const created = await unary('CreateGroup', {
    group_type_index: 1, group_key: 'node-acme',
    group_properties: { fields: { plan: { stringValue: 'pro' } } },
  });
  assert.equal(created.group.group_key, 'node-acme');
  await assert.rejects(unary('CreateGroup', { group_type_index: 1, group_key: 'node-acme' }),
    rejectsWith(grpc.status.ALREADY_EXISTS));
  await unary('UpdateGroupProperties', {
    group_type_index: 1, group_key: 'node-acme',
    set: { fields: { seats: { numberValue: 5 } } }, unset: ['plan'],
  });
  const got = await unary('GetGroup', { group_type_index: 1, group_key: 'node-acme' });
  assert.equal(got.group.group_properties.fields.seats.numberValue, 5);
  assert.equal(got.group.group_properties.fields.plan, undefined);
  const types = await unary('ListGroupTypes', {});
  assert.deepEqual(types.group_types.map((t) => t.group_type), ['company', 'project']);
  await assert.rejects(unary('GetGroup', { group_type_index: 0, group_key: 'nobody' }),
    rejectsWith(grpc.status.NOT_FOUND));
});
