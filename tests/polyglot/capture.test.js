'use strict';
// CaptureService from Node.js (@grpc/grpc-js + @grpc/proto-loader) against the
// real gateway and emulator started by the harness: the events PostHog
// receives, checked byte for byte in the emulator's /_emulator/events.
//
// Run from anywhere (binaries built first):
//   node --test tests/polyglot/capture.test.js

const { after, before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startStack, stopStack } = require('./lib/stack');
const {
  grpc, CALL_TIMEOUT_MS, serviceClient, unaryCall, toStruct: struct,
} = require('./lib/grpc');

const POLL_INTERVAL_MS = 50;
const EVENTS_DEADLINE_MS = 30000;
// What the gateway adds to every event by default: its library, the server
// mark and GeoIP off, as PostHog's server SDKs do.
const LIB = {
  $lib: 'posthog-grpc-gateway', $lib_version: '0.1.0', $is_server: true, $geoip_disable: true,
};

function call(method, request) {
  return unaryCall(client, method, request);
}

// Polls the emulator until the event with `uuid` is stored; resolves with it
// without the team_id the emulator adds.
async function storedEvent(uuid) {
  const deadline = Date.now() + EVENTS_DEADLINE_MS;
  for (;;) {
    const response = await fetch(`${env.EMULATOR_URL}/_emulator/events?uuid=${uuid}`);
    const body = await response.json();
    if (body.events.length > 0) {
      const { team_id: _teamId, ...event } = body.events[0];
      return event;
    }
    if (Date.now() > deadline) throw new Error(`event ${uuid} never reached the emulator`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

let tempDir;
let stack;
let env;
let client;

before(async () => {
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-node-capture-'));
  stack = startStack(path.join(tempDir, 'stack.env'));
  env = await stack.ready;
  client = serviceClient('posthog/v1/capture.proto', 'CaptureService', env.GATEWAY_TARGET);
});

after(async () => {
  if (client) client.close();
  if (stack) await stopStack(stack.child);
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
});

test('CaptureEvent delivers the exact SDK body', async () => {
  const uuid = '0191e8a0-0000-7000-8000-0000000000aa';
  const response = await call('CaptureEvent', {
    event: {
      event: 'signed up', distinct_id: 'node-user', uuid,
      properties: struct({ plan: 'pro', seats: 3 }),
      timestamp: { seconds: '1767225600', nanos: 0 },
      groups: { company: 'acme' },
    },
  });

  assert.equal(response.uuid, uuid);
  assert.deepEqual(await storedEvent(uuid), {
    event: 'signed up',
    distinct_id: 'node-user',
    properties: { plan: 'pro', seats: 3, $groups: { company: 'acme' }, ...LIB },
    timestamp: '2026-01-01T00:00:00.000Z',
    uuid,
  });
});

test('Identify sends $identify with $set and $anon_distinct_id', async () => {
  const response = await call('Identify', {
    distinct_id: 'node-42', anonymous_distinct_id: 'anon-node', set: struct({ email: 'n@example.com' }),
  });

  const event = await storedEvent(response.uuid);
  assert.equal(event.event, '$identify');
  assert.equal(event.distinct_id, 'node-42');
  assert.deepEqual(event.properties, {
    $set: { email: 'n@example.com' }, $anon_distinct_id: 'anon-node', ...LIB,
  });
});

test('StreamCaptureEvents acknowledges each message', async () => {
  const stream = client.StreamCaptureEvents({ deadline: Date.now() + CALL_TIMEOUT_MS });
  const acks = [];
  const done = new Promise((resolve, reject) => {
    stream.on('data', (response) => acks.push(Number(response.acknowledged_count)));
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  for (let m = 0; m < 3; m++) {
    stream.write({ events: [0, 1].map((i) => ({ event: 'node stream', distinct_id: `ns-${m}-${i}` })) });
  }
  stream.end();
  await done;

  assert.deepEqual(acks, [2, 4, 6]);
});

test('a bad event is INVALID_ARGUMENT', async () => {
  await assert.rejects(call('CaptureEvent', { event: { event: '', distinct_id: 'x' } }), (error) => {
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    return true;
  });
});
