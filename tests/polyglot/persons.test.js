'use strict';
// PersonService from Node.js: @grpc/grpc-js with @grpc/proto-loader reading the
// .proto files directly, against the real gateway and emulator started by the
// harness (tests/harness/stack.py in its command mode). The stack helpers are
// those of user.test.js.
//
// Run from anywhere (binaries built first):
//   node --test tests/polyglot/persons.test.js

const { after, before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { repoRoot, startStack, stopStack } = require('./lib/stack');
const { grpc, serviceClient, unaryCall: unary, serverStream } = require('./lib/grpc');

const SEED_PATH = path.join(repoRoot, 'emulator/seed/demo.json');

function listPersons(client, request) {
  return serverStream(client, 'ListPersons', request);
}

// The persons of a stream, in order, across its messages.
function personsOf(messages) {
  return messages.flatMap((r) => r.persons);
}

let tempDir;
let stack;
let client;

before(async () => {
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyglot-node-persons-'));
  stack = startStack(path.join(tempDir, 'stack.env'));
  const env = await stack.ready;
  client = serviceClient('posthog/v1/person.proto', 'PersonService', env.GATEWAY_TARGET);
});

after(async () => {
  if (client) client.close();
  if (stack) await stopStack(stack.child);
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
});

test('ListPersons streams every person with progress and resume tokens', async () => {
  const all = await listPersons(client, { page_size: 2 });
  const persons = personsOf(all);

  assert.ok(persons.length >= 3, `the seed has ${persons.length} persons`);
  // One message per PostHog page of 2.
  assert.ok(all.every((r) => r.persons.length >= 1 && r.persons.length <= 2));
  assert.deepEqual(all.map((r) => r.progress.items_streamed),
    all.map((_, i) => String(Math.min(2 * (i + 1), persons.length))));
  assert.ok(all.every((r) => r.resume_token.length > 0));
  assert.ok(persons.every((p) => p.uuid.length > 0));
});

test('ListPersons resumes right after the message whose token it gets', async () => {
  const all = await listPersons(client, { page_size: 2 });

  const resumed = await listPersons(client, { page_size: 2, resume_token: all[0].resume_token });

  assert.deepEqual(personsOf(resumed).map((p) => p.uuid), personsOf(all.slice(1)).map((p) => p.uuid));
});

test('ListPersons with a forged token fails with INVALID_ARGUMENT', async () => {
  await assert.rejects(listPersons(client, { resume_token: 'forged.token' }), (error) => {
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    return true;
  });
});

test('GetPerson by distinct id and by uuid return the listed person', async () => {
  const [first] = personsOf(await listPersons(client, { limit: 1 }));
  const distinctId = first.distinct_ids[0];

  const byDistinctId = await unary(client, 'GetPerson', { person: { distinct_id: distinctId } });
  const byUuid = await unary(client, 'GetPerson', { person: { uuid: first.uuid } });

  assert.equal(byDistinctId.person.uuid, first.uuid);
  assert.equal(byUuid.person.uuid, first.uuid);
});

test('UpdatePersonProperties sets a property GetPerson then shows', async () => {
  const [first] = personsOf(await listPersons(client, { limit: 1 }));
  const person = { uuid: first.uuid };

  await unary(client, 'UpdatePersonProperties', {
    person,
    // google.protobuf types come from protobuf.js's own descriptors: camelCase.
    set: { fields: { from_node: { stringValue: 'yes' } } },
  });

  const got = await unary(client, 'GetPerson', { person });
  assert.equal(got.person.properties.fields.from_node.stringValue, 'yes');
});

test('DeletePerson of an unknown person fails with NOT_FOUND', async () => {
  await assert.rejects(unary(client, 'DeletePerson', { person: { distinct_id: 'nobody-at-all' } }),
    (error) => {
      assert.equal(error.code, grpc.status.NOT_FOUND);
      return true;
    });
});
