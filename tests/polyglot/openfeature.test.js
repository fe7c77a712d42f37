'use strict';
// OpenFeature through the gateway: the official Node server SDK
// (@openfeature/server-sdk) with the flagd provider (@openfeature/flagd-provider,
// RPC resolver) and the OFREP provider (@openfeature/ofrep-provider over the
// gateway's OFREP port), unmodified from npm (tools/package.json), against the real
// gateway and emulator (tests/harness/stack.py). Every value is checked
// against what the gateway's own API (FlagService.EvaluateFlag) says for the
// same person, so the mapping of docs/openfeature.md is what is tested.
//
// Run (binaries built first):
//   node --test tests/polyglot/openfeature.test.js

const { after, before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { repoRoot, startStack, stopStack } = require('./lib/stack');
const tools = path.join(repoRoot, 'tools/node_modules');
const { serviceClient, unaryCall, toStruct } = require('./lib/grpc');
const { OpenFeature, ProviderEvents, ErrorCode } = require(path.join(tools, '@openfeature/server-sdk'));
const { FlagdProvider } = require(path.join(tools, '@openfeature/flagd-provider'));
const { OFREPProvider } = require(path.join(tools, '@openfeature/ofrep-provider'));

const POLL_INTERVAL_MS = 50;
const WAIT_TIMEOUT_MS = 60000;

let tempDir;
let stack;
let flagService;
let provider;
let client;
let ofrep;
let ofrepUrl;
// Every PROVIDER_CONFIGURATION_CHANGED event's changed keys, in order.
const configurationChanges = [];
let readyEvents = 0;

function unary(method, request) {
  return unaryCall(flagService, method, request);
}

// What the gateway's own API says of `key` for `distinctId`.
async function evaluate(key, distinctId, personProperties = {}) {
  const asStrings = Object.fromEntries(Object.entries(personProperties)
    .map(([name, value]) => [name, String(value)]));
  const response = await unary('EvaluateFlag', {
    key, context: { distinct_id: distinctId, person_properties: toStruct(asStrings) },
  });
  return response.result;
}

async function waitFor(what, predicate) {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

before(async () => {
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-openfeature-'));
  // Definitions polled often, so that a change reaches EventStream soon.
  // OFREP on a free port, read from the gateway's log.
  stack = startStack(path.join(tempDir, 'stack.env'),
    ['--extra_config={"flags": {"poll_interval_ms": 100}, "openfeature": {"ofrep_port": 0}}']);
  const env = await stack.ready;
  const log = fs.readFileSync(path.join(env.STACK_DIR, 'gateway.log'), 'utf8');
  const listening = log.split('\n').filter((line) => line.includes('"OFREP listening"'))
    .map((line) => JSON.parse(line));
  assert.equal(listening.length, 1, log);
  ofrepUrl = `http://127.0.0.1:${listening[0].port}`;
  flagService = serviceClient('posthog/v1/flag.proto', 'FlagService', env.GATEWAY_TARGET);
  await waitFor('the definitions', async () => (await unary('EvaluateFlag', {
    key: 'beta-feature', context: { distinct_id: 'probe' }, options: { only_local: true },
  })).result.error_code === 'FLAG_ERROR_CODE_UNSPECIFIED');

  const [host, port] = env.GATEWAY_TARGET.split(':');
  OpenFeature.addHandler(ProviderEvents.Ready, (details) => {
    if (details.providerName === 'flagd') readyEvents++;
  });
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged,
    (details) => configurationChanges.push(details.flagsChanged ?? []));
  provider = new FlagdProvider({ resolverType: 'rpc', host, port: Number(port), tls: false,
    deadlineMs: 5000 });
  await OpenFeature.setProviderAndWait(provider);
  client = OpenFeature.getClient();
  await OpenFeature.setProviderAndWait('ofrep', new OFREPProvider({
    baseUrl: ofrepUrl, headers: { 'x-posthog-project': 'demo' } }));
  ofrep = OpenFeature.getClient('ofrep');
});

after(async () => {
  await OpenFeature.close();
  if (flagService) flagService.close();
  if (stack) await stopStack(stack.child);
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
});

test('the provider is ready once EventStream says provider_ready', () => {
  assert.equal(client.providerStatus, 'READY');
  assert.equal(readyEvents, 1);
});

test('a boolean flag: the value, variant, reason and PostHog metadata', async () => {
  // beta-feature rolls out to half of everyone: find one person of each half.
  const seen = new Map();
  for (let i = 0; seen.size < 2 && i < 200; i++) {
    const id = `of-user-${i}`;
    const expected = await evaluate('beta-feature', id);
    if (seen.has(expected.enabled)) continue;
    seen.set(expected.enabled, id);
    const details = await client.getBooleanDetails('beta-feature', !expected.enabled,
      { targetingKey: id });
    assert.equal(details.value, expected.enabled);
    assert.equal(details.variant, String(expected.enabled));
    assert.equal(details.reason, expected.enabled ? 'TARGETING_MATCH' : 'SPLIT');
    assert.equal(details.errorCode, undefined);
    assert.equal(details.flagMetadata.flagId, 1);
    assert.equal(details.flagMetadata.decidedBy, 'gateway');
  }
  assert.equal(seen.size, 2);

  const disabled = await client.getBooleanDetails('disabled-flag', true, { targetingKey: 'u' });
  assert.equal(disabled.value, false);
  assert.equal(disabled.reason, 'DISABLED');
});

test('person properties come from the context; PostHog decides what the gateway cannot', async () => {
  const pro = await client.getBooleanDetails('pro-users', false,
    { targetingKey: 'of-pro', plan: 'enterprise' });
  assert.equal(pro.value, true);
  assert.equal(pro.flagMetadata.decidedBy, 'gateway');
  const unknown = await client.getBooleanDetails('pro-users', true, { targetingKey: 'of-anyone' });
  const expected = await evaluate('pro-users', 'of-anyone');
  assert.equal(expected.source, 'FLAG_DECISION_SOURCE_REMOTE');
  assert.equal(unknown.value, expected.enabled);
  assert.equal(unknown.flagMetadata.decidedBy, 'posthog');
});

test('a multivariate flag: the variant key as the string value and the variant', async () => {
  for (const id of ['of-a', 'of-b', 'of-c', 'of-d']) {
    const expected = await evaluate('checkout-experiment', id);
    const details = await client.getStringDetails('checkout-experiment', 'none',
      { targetingKey: id });
    assert.equal(details.value, expected.variant);
    assert.equal(details.variant, expected.variant);
    assert.equal(details.reason, 'SPLIT');
    assert.equal(details.flagMetadata.flagId, 2);
  }
});

test('object and number evaluations read the payload of the value the person gets', async () => {
  let on = null;
  for (let i = 0; on === null; i++) {
    if ((await evaluate('beta-feature', `of-payload-${i}`)).enabled) on = `of-payload-${i}`;
  }
  const object = await client.getObjectDetails('beta-feature', {}, { targetingKey: on });
  assert.deepEqual(object.value, { color: 'blue' });
  assert.equal(object.variant, 'true');

  const created = await unary('CreateFlag', { flag: {
    key: 'of-limit', name: 'OpenFeature number', active: true,
    filters: { groups: [{ properties: [], rollout_percentage: 100 }],
      payloads: { true: { stringValue: '42' } } },
  } });
  await waitFor('of-limit in the definitions', async () => (await unary('EvaluateFlag', {
    key: 'of-limit', context: { distinct_id: 'probe' }, options: { only_local: true },
  })).result.error_code === 'FLAG_ERROR_CODE_UNSPECIFIED');
  const number = await client.getNumberDetails('of-limit', 0, { targetingKey: 'of-n' });
  assert.equal(number.value, 42);
  assert.equal(number.reason, 'TARGETING_MATCH');
  assert.equal(number.flagMetadata.flagId, Number(created.flag.id));

  // A change through UpdateFlag: PROVIDER_CONFIGURATION_CHANGED names the flag.
  // The creation's own event names of-limit too and may reach the provider
  // after the evaluations above: count from once it has, so that only the
  // update's event can end the wait below (else the value may still be 42).
  await waitFor('PROVIDER_CONFIGURATION_CHANGED naming the created of-limit', () =>
    configurationChanges.some((keys) => keys.includes('of-limit')));
  const before = configurationChanges.length;
  await unary('UpdateFlag', { flag: { id: created.flag.id,
    filters: { groups: [{ properties: [], rollout_percentage: 100 }],
      payloads: { true: { stringValue: '43' } } } }, update_mask: { paths: ['filters'] } });
  await waitFor('PROVIDER_CONFIGURATION_CHANGED naming of-limit', () =>
    configurationChanges.slice(before).some((keys) => keys.includes('of-limit')));
  assert.equal(await client.getNumberValue('of-limit', 0, { targetingKey: 'of-n' }), 43);

  // No payload for `false`: the caller's default.
  const none = await client.getNumberDetails('disabled-flag', 7, { targetingKey: 'of-n' });
  assert.equal(none.value, 7);
  assert.equal(none.reason, 'DISABLED');
  assert.equal(none.errorCode, undefined);
});

test('errors: FLAG_NOT_FOUND, TYPE_MISMATCH, and a context without targetingKey', async () => {
  const missing = await client.getBooleanDetails('of-no-such-flag', true, { targetingKey: 'u' });
  assert.equal(missing.value, true);
  assert.equal(missing.reason, 'ERROR');
  assert.equal(missing.errorCode, ErrorCode.FLAG_NOT_FOUND);

  const string = await client.getStringDetails('disabled-flag', 'x', { targetingKey: 'u' });
  assert.equal(string.value, 'x');  // Off: the caller's default, no error.
  let on = null;
  for (let i = 0; on === null; i++) {
    if ((await evaluate('beta-feature', `of-mismatch-${i}`)).enabled) on = `of-mismatch-${i}`;
  }
  const mismatch = await client.getStringDetails('beta-feature', 'x', { targetingKey: on });
  assert.equal(mismatch.value, 'x');
  assert.equal(mismatch.errorCode, ErrorCode.TYPE_MISMATCH);

  // The provider turns INVALID_ARGUMENT into TYPE_MISMATCH; the message says why.
  const anonymous = await client.getBooleanDetails('beta-feature', true, { plan: 'pro' });
  assert.equal(anonymous.value, true);
  assert.equal(anonymous.errorCode, ErrorCode.TYPE_MISMATCH);
  assert.match(anonymous.errorMessage, /targetingKey/);
});

test('OFREP: booleans and variants with the same details as flagd', async () => {
  for (const id of ['ofrep-a', 'ofrep-b', 'ofrep-c', 'ofrep-d', 'ofrep-e']) {
    const expected = await evaluate('beta-feature', id);
    const details = await ofrep.getBooleanDetails('beta-feature', !expected.enabled,
      { targetingKey: id });
    assert.equal(details.value, expected.enabled);
    assert.equal(details.variant, String(expected.enabled));
    assert.equal(details.reason, expected.enabled ? 'TARGETING_MATCH' : 'SPLIT');
    assert.equal(details.flagMetadata.flagId, 1);
    if (expected.enabled) assert.equal(details.flagMetadata.payload, '{"color":"blue"}');

    const variant = await evaluate('checkout-experiment', id);
    const string = await ofrep.getStringDetails('checkout-experiment', 'none', { targetingKey: id });
    assert.equal(string.value, variant.variant);
    assert.equal(string.variant, variant.variant);
    assert.equal(string.reason, 'SPLIT');
  }
  const disabled = await ofrep.getBooleanDetails('disabled-flag', true, { targetingKey: 'u' });
  assert.equal(disabled.value, false);
  assert.equal(disabled.reason, 'DISABLED');
});

test('OFREP: FLAG_NOT_FOUND and TARGETING_KEY_MISSING from the error answers', async () => {
  const missing = await ofrep.getBooleanDetails('of-no-such-flag', true, { targetingKey: 'u' });
  assert.equal(missing.value, true);
  assert.equal(missing.errorCode, ErrorCode.FLAG_NOT_FOUND);
  const anonymous = await ofrep.getBooleanDetails('beta-feature', true, { plan: 'pro' });
  assert.equal(anonymous.value, true);
  assert.equal(anonymous.errorCode, ErrorCode.TARGETING_KEY_MISSING);
});

test('OFREP bulk: every flag, and 304 for an unchanged answer', async () => {
  const request = () => ({ method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ context: { targetingKey: 'ofrep-bulk' } }) });
  const first = await fetch(`${ofrepUrl}/ofrep/v1/evaluate/flags`, request());
  assert.equal(first.status, 200);
  const etag = first.headers.get('etag');
  assert.ok(etag);
  const { flags } = await first.json();
  const byKey = Object.fromEntries(flags.map((flag) => [flag.key, flag]));
  const expected = await evaluate('checkout-experiment', 'ofrep-bulk');
  assert.equal(byKey['checkout-experiment'].value, expected.variant);
  assert.equal(byKey['disabled-flag'].reason, 'DISABLED');
  const again = await fetch(`${ofrepUrl}/ofrep/v1/evaluate/flags`,
    { ...request(), headers: { ...request().headers, 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), '');
});
