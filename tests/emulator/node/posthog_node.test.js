// Conformance: the official posthog-node SDK against the emulator.
// Run: node --test tests/emulator/node/  (after bazel build //emulator/...)
'use strict';

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { startEmulator, pollUntil, TOKEN, PERSONAL_KEY, ROOT } = require('./helpers');
const { PostHog } = require(path.join(ROOT, 'tools/node_modules/posthog-node'));

let emu;
before(async () => { emu = await startEmulator(); });
after(async () => { await emu.stop(); });
beforeEach(async () => { await emu.admin('/_emulator/reset', {}); });

function client(options = {}) {
  return new PostHog(TOKEN, {
    host: emu.host, flushAt: 100, flushInterval: 0, fetchRetryCount: 0, ...options,
  });
}

test('capture batches gzip bodies to /batch/ and each uuid is stored once', async () => {
  const ph = client({ flushAt: 3 });
  for (let i = 0; i < 3; i++) {
    ph.capture({ distinctId: 'node-user', event: 'order completed', properties: { i, amount: 9.5 } });
  }
  await ph.flush();
  await ph.shutdown();
  const { count, duplicates, events } = await emu.admin('/_emulator/events');
  assert.equal(count, 3);
  assert.equal(duplicates, 0);
  assert.deepEqual(events.map((e) => e.properties.i), [0, 1, 2]);
  for (const e of events) {
    assert.equal(e.event, 'order completed');
    assert.equal(e.distinct_id, 'node-user');
    assert.equal(e.team_id, 1);
    assert.equal(e.properties.$lib, 'posthog-node');
    assert.match(e.uuid, /^[0-9a-f-]{36}$/);
  }
  const requests = await emu.admin('/_emulator/requests?route=batch');
  assert.equal(requests.routes.batch.count, 1);
  assert.deepEqual(requests.routes.batch.auth, { token: 1 });
  assert.deepEqual(requests.routes.batch.status, { 200: 1 });
  // The person exists, derived from the events.
  const persons = await emu.api('/api/projects/1/persons/?distinct_id=node-user');
  assert.equal(persons.body.results.length, 1);
});

test('identify merges the anonymous person and alias adds a distinct id', async () => {
  const ph = client();
  ph.capture({ distinctId: 'anon-42', event: 'pageview', properties: { $set_once: { source: 'ad' } } });
  ph.identify({
    distinctId: 'user-42',
    properties: { $set: { email: 'u42@example.com' }, $anon_distinct_id: 'anon-42' },
  });
  ph.alias({ distinctId: 'user-42', alias: 'crm-42' });
  await ph.shutdown();
  const { body } = await emu.api('/api/projects/1/persons/?distinct_id=crm-42');
  assert.equal(body.results.length, 1);
  const person = body.results[0];
  assert.deepEqual([...person.distinct_ids].sort(), ['anon-42', 'crm-42', 'user-42']);
  assert.deepEqual(person.properties, { source: 'ad', email: 'u42@example.com' });
  assert.equal(person.is_identified, true);
  const identify = (await emu.admin('/_emulator/events?event=$identify')).events;
  assert.equal(identify.length, 1);
  assert.equal(identify[0].properties.$anon_distinct_id, 'anon-42');
});

test('groupIdentify records the group type and its properties', async () => {
  const ph = client();
  ph.groupIdentify({ groupType: 'workspace', groupKey: 'ws-1', properties: { seats: 12 } });
  await ph.shutdown();
  const [event] = (await emu.admin('/_emulator/events?event=$groupidentify')).events;
  assert.equal(event.distinct_id, '$workspace_ws-1');
  assert.deepEqual(event.properties.$group_set, { seats: 12 });
  const res = await fetch(`${emu.host}/flags/definitions?token=${TOKEN}&send_cohorts`, {
    headers: { Authorization: `Bearer ${PERSONAL_KEY}` },
  });
  const defs = await res.json();
  assert.deepEqual(defs.group_type_mapping, { 0: 'company', 1: 'project', 2: 'workspace' });
});

test('remote evaluation answers getFeatureFlag and payloads like /flags', async () => {
  const ph = client();
  assert.equal(await ph.getFeatureFlag('pro-users', 'user-alice', { sendFeatureFlagEvents: false }), true);
  assert.equal(await ph.getFeatureFlag('pro-users', 'user-bob', { sendFeatureFlagEvents: false }), false);
  const raw = await fetch(`${emu.host}/flags/?v=2`, {
    method: 'POST', body: JSON.stringify({ token: TOKEN, distinct_id: 'user-carol' }),
  }).then((r) => r.json());
  const variant = await ph.getFeatureFlag('checkout-experiment', 'user-carol', { sendFeatureFlagEvents: false });
  assert.equal(variant, raw.flags['checkout-experiment'].variant);
  // $feature_flag_called is captured when events are on.
  await ph.getFeatureFlag('beta-feature', 'user-carol');
  await ph.shutdown();
  const called = (await emu.admin('/_emulator/events?event=$feature_flag_called')).events;
  assert.equal(called.length, 1);
  assert.equal(called[0].properties.$feature_flag, 'beta-feature');
  assert.equal(called[0].properties.$feature_flag_response, raw.flags['beta-feature'].enabled);
  const flagsRequests = await emu.admin('/_emulator/requests?route=flags');
  assert.ok(flagsRequests.routes.flags.count >= 3);
});

test('local evaluation polls /flags/definitions with the personal key and matches the server', async () => {
  const ph = client({ personalApiKey: PERSONAL_KEY, featureFlagsPollingInterval: 60000 });
  assert.equal(await ph.waitForLocalEvaluationReady(5000), true);
  for (let i = 0; i < 50; i++) {
    const id = `distinct_id_${i}`;
    const local = await ph.getFeatureFlag('beta-feature', id, { onlyEvaluateLocally: true, sendFeatureFlagEvents: false });
    const server = await fetch(`${emu.host}/flags/?v=2`, {
      method: 'POST', body: JSON.stringify({ token: TOKEN, distinct_id: id }),
    }).then((r) => r.json());
    assert.equal(local, server.flags['beta-feature'].enabled, id);
    const localVariant = await ph.getFeatureFlag('checkout-experiment', id, { onlyEvaluateLocally: true, sendFeatureFlagEvents: false });
    assert.equal(localVariant, server.flags['checkout-experiment'].variant, id);
  }
  // A property-based flag evaluated locally with supplied properties.
  assert.equal(await ph.getFeatureFlag('pro-users', 'x', {
    onlyEvaluateLocally: true, personProperties: { plan: 'enterprise' }, sendFeatureFlagEvents: false,
  }), true);
  await ph.shutdown();
  const defs = await emu.admin('/_emulator/requests?route=flag_definitions');
  assert.ok(defs.routes.flag_definitions.count >= 1);
  assert.deepEqual(Object.keys(defs.routes.flag_definitions.auth), ['bearer']);
  assert.deepEqual(Object.keys(defs.routes.flag_definitions.status), ['200']);
});
