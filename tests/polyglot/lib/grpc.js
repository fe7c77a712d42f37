'use strict';
// The gRPC side of the Node polyglot suites, in one place (stack.js starts the
// gateway and emulator): clients of our services from proto/ through
// @grpc/proto-loader, promises for unary and server-streaming calls,
// google.protobuf.Struct conversion, and the emulator's admin endpoints.
// Every suite uses these, so that a change of loader options or of the call
// conventions is made once.

const assert = require('node:assert/strict');
const path = require('node:path');

const { repoRoot } = require('./stack');
const grpc = require(path.join(repoRoot, 'tools/node_modules/@grpc/grpc-js'));
const protoLoader = require(path.join(repoRoot, 'tools/node_modules/@grpc/proto-loader'));

// The default deadline of one call; suites whose calls page a lot pass their own.
const CALL_TIMEOUT_MS = 10000;

// A plaintext client of `target` for posthog.v1.`service` in `protoFile`
// (relative to proto/), field names as in the proto, enums as their names,
// 64-bit integers as strings.
function serviceClient(protoFile, service, target) {
  const definition = protoLoader.loadSync(protoFile, {
    includeDirs: [path.join(repoRoot, 'proto'), '/usr/include'],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const Service = grpc.loadPackageDefinition(definition).posthog.v1[service];
  return new Service(target, grpc.credentials.createInsecure());
}

// Calls the unary `method` of `client`; resolves with the response.
function unaryCall(client, method, request, timeoutMs = CALL_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + timeoutMs },
      (error, response) => (error ? reject(error) : resolve(response)));
  });
}

// Calls the server-streaming `method` of `client`; resolves with every
// message, in order. On an error, rejects with it and the messages received
// before it as `error.received`.
function serverStream(client, method, request, timeoutMs = CALL_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const received = [];
    const call = client[method](request, { deadline: Date.now() + timeoutMs });
    call.on('data', (response) => received.push(response));
    call.on('error', (error) => {
      error.received = received;
      reject(error);
    });
    call.on('end', () => resolve(received));
  });
}

// google.protobuf.Struct / Value <-> plain JSON. protobufjs's bundled
// well-known types keep camelCase field names even with keepCase.

function toValue(value) {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  return { structValue: toStruct(value) };
}

function toStruct(object) {
  const fields = {};
  for (const [key, value] of Object.entries(object || {})) fields[key] = toValue(value);
  return { fields };
}

function fromValue(value) {
  if (value === null || value === undefined) return null;
  switch (value.kind) {
    case 'numberValue': return value.numberValue;
    case 'stringValue': return value.stringValue;
    case 'boolValue': return value.boolValue;
    case 'listValue': return (value.listValue.values || []).map(fromValue);
    case 'structValue': {
      const out = {};
      for (const [key, v] of Object.entries(value.structValue.fields || {})) {
        out[key] = fromValue(v);
      }
      return out;
    }
    default: return null;
  }
}

// The emulator's admin endpoints (/_emulator/seed, /_emulator/faults, ...):
// POSTs `body` as JSON, or GETs when there is none; asserts HTTP 200 and
// resolves with the response's JSON (null if it has none).
async function emulatorAdmin(emulatorUrl, pathname, body) {
  const response = await fetch(emulatorUrl + pathname, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `${pathname}: HTTP ${response.status}: ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

module.exports = {
  grpc, CALL_TIMEOUT_MS, serviceClient, unaryCall, serverStream,
  toValue, toStruct, fromValue, emulatorAdmin,
};
