'use strict';
// FlagService from Node.js: @grpc/grpc-js with @grpc/proto-loader reading the
// .proto files directly, against the real gateway and emulator started by the
// harness (tests/harness/stack.py in its command mode).
//
// Run from anywhere (binaries built first):
//   node --test tests/polyglot/flags.test.js

const { after, before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startStack, stopStack } = require('./lib/stack');
const {
  grpc, CALL_TIMEOUT_MS, serviceClient, unaryCall, serverStream, emulatorAdmin,
} = require('./lib/grpc');

const POLL_INTERVAL_MS = 50;
const DEFINITIONS_TIMEOUT_MS = 60000;

function listFlags(request) {
  return serverStream(client, 'ListFlags', request);
}

function unary(method, request) {
  return unaryCall(client, method, request);
}

let tempDir;
let stack;
let env;
let client;

before(async () => {
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-node-flags-'));
  stack = startStack(path.join(tempDir, 'stack.env'));
  env = await stack.ready;
  client = serviceClient('posthog/v1/flag.proto', 'FlagService', env.GATEWAY_TARGET);
  // The definitions load right after start-up; wait for them.
  const deadline = Date.now() + DEFINITIONS_TIMEOUT_MS;
  for (;;) {
    const response = await unary('EvaluateFlag', {
      key: 'beta-feature', context: { distinct_id: 'probe' }, options: { only_local: true },
    });
    if (response.result.error_code === 'FLAG_ERROR_CODE_UNSPECIFIED') break;
    if (Date.now() > deadline) throw new Error('definitions never loaded');
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
});

after(async () => {
  if (client) client.close();
  if (stack) await stopStack(stack.child);
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
});

test('EvaluateFlags decides the seed flags locally, with reasons and payloads', async () => {
  const response = await unary('EvaluateFlags', {
    keys: ['checkout-experiment', 'disabled-flag'],
    context: { distinct_id: 'node-user' },
  });
  const experiment = response.results['checkout-experiment'];
  assert.equal(experiment.source, 'FLAG_DECISION_SOURCE_LOCAL');
  assert.equal(experiment.enabled, true);
  assert.ok(['control', 'test'].includes(experiment.variant));
  assert.equal(experiment.reason.code, 'FLAG_REASON_CODE_CONDITION_MATCH');
  assert.equal(experiment.flag_id, '2');
  assert.equal(response.results['disabled-flag'].reason.code, 'FLAG_REASON_CODE_FLAG_DISABLED');
  assert.notEqual(response.request_id, '');
});

test('a flag that needs a property the caller did not give is asked of PostHog', async () => {
  const response = await unary('EvaluateFlag', {
    key: 'pro-users', context: { distinct_id: 'node-unknown' },
  });
  assert.equal(response.result.source, 'FLAG_DECISION_SOURCE_REMOTE');
  assert.equal(response.result.error_code, 'FLAG_ERROR_CODE_UNSPECIFIED');
});

test('GetFlag returns the seed flag with typed filters', async () => {
  const response = await unary('GetFlag', { id: 1 });
  assert.equal(response.flag.key, 'beta-feature');
  assert.equal(response.flag.filters.groups[0].rollout_percentage, 50);
});

test('WatchFlagDefinitions starts with the current definitions', async () => {
  const call = client.WatchFlagDefinitions({}, { deadline: Date.now() + CALL_TIMEOUT_MS });
  const first = await new Promise((resolve, reject) => {
    call.on('data', resolve);
    call.on('error', reject);
  });
  call.cancel();
  const keys = first.definitions.fields.flags.listValue.values
    .map((v) => v.structValue.fields.key.stringValue);
  assert.ok(keys.includes('beta-feature'));
});

test('ListFlags streams more flags than one page, newest first, and resumes', async () => {
  // 120 more flags: with the seed's six, 126 live flags over two default
  // pages of 100. Created after the seed, they come first.
  await emulatorAdmin(env.EMULATOR_URL, '/_emulator/seed', { generate_flags: 120, project_id: 1 });
  const all = await listFlags({});
  const keysOf = (messages) => messages.flatMap((r) => r.flags.map((f) => f.key));
  const keys = keysOf(all);
  const generated = keys.filter((k) => k.startsWith('generated-flag-'));
  assert.equal(generated.length, 120);
  assert.deepEqual(keys.slice(0, 120), generated);
  assert.equal(keys[0], 'generated-flag-119');
  assert.equal(keys[keys.length - 1], 'beta-feature');
  assert.ok(keys.length >= 126, `${keys.length} flags listed`);
  assert.equal(new Set(keys).size, keys.length);
  // One message per PostHog page of 100.
  assert.deepEqual(all.map((r) => r.flags.length), [100, keys.length - 100]);
  assert.deepEqual(all.map((r) => r.progress.items_streamed), ['100', String(keys.length)]);
  assert.deepEqual(all.map((r) => r.progress.page), [1, 2]);
  assert.ok(all.every((r) => r.resume_token.length > 0));

  // A new call with the first message's token continues with the 101st flag.
  const resumed = await listFlags({ page_size: 7, resume_token: all[0].resume_token });
  assert.deepEqual(keysOf(resumed), keys.slice(100));
  assert.equal(resumed[0].progress.items_streamed, '107');

  // The limit counts the flags of the calls a token continues.
  const limited = await listFlags({ limit: 105, resume_token: all[0].resume_token });
  assert.deepEqual(keysOf(limited), keys.slice(100, 105));
});

test('ListFlags refuses a forged resume token with INVALID_ARGUMENT', async () => {
  await assert.rejects(listFlags({ resume_token: 'forged.token' }), (error) => {
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.match(error.details, /resume_token/);
    return true;
  });
});
