'use strict';
// deploy/kubernetes/client-service-config.json, the gRPC service config
// offered to callers (KUBERNETES.md point 17): what it retries, checked
// against the API, and what a real gRPC client does with it, against a local
// grpc-js server scripted to fail.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { afterEach, before, describe, test } = require('node:test');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
// Not part of grpc-js's public API; the version is pinned in package.json.
const { validateServiceConfig } = require('@grpc/grpc-js/build/src/service-config');
const { apiMethods, deployDir, protoDir } = require('./lib/k8s');

const config = JSON.parse(fs.readFileSync(path.join(deployDir, 'client-service-config.json'), 'utf8'));

// The methods that only read, or that give the same result when repeated:
// the only ones a client may retry without the caller's say-so.
const kIdempotent = [
  'posthog.v1.UserService/GetCurrentUser',
  'posthog.v1.PersonService/GetPerson',
  'posthog.v1.PersonService/ListPersons',
  'posthog.v1.FlagService/EvaluateFlag',
  'posthog.v1.FlagService/EvaluateFlags',
  'posthog.v1.FlagService/GetFlag',
  'posthog.v1.FlagService/ListFlags',
];

// The methodConfig entry that applies to service/method (exact name first,
// then the service-wide one, as gRFC A2 says).
function methodConfigFor(service, method) {
  const entries = config.methodConfig || [];
  return entries.find((e) => e.name.some((n) => n.service === service && n.method === method)) ||
    entries.find((e) => e.name.some((n) => n.service === service && n.method === undefined));
}

describe('client-service-config.json', () => {
  test('is a service config grpc-js accepts', () => {
    assert.doesNotThrow(() => validateServiceConfig(config));
  });

  test('balances with round_robin and throttles retries', () => {
    assert.deepEqual(config.loadBalancingConfig, [{ round_robin: {} }]);
    assert.ok(config.retryThrottling.maxTokens > 0);
    assert.ok(config.retryThrottling.tokenRatio > 0);
    assert.deepEqual(config.healthCheckConfig, { serviceName: 'readiness' });
  });

  test('names only methods the API has', () => {
    const known = new Set(apiMethods().map((m) => `${m.service}/${m.method}`));
    for (const entry of config.methodConfig) {
      for (const name of entry.name) {
        assert.ok(known.has(`${name.service}/${name.method}`), `${name.service}/${name.method}`);
      }
    }
  });

  test('retries UNAVAILABLE on exactly the idempotent methods, and nothing else', () => {
    const retried = [];
    for (const m of apiMethods()) {
      const entry = methodConfigFor(m.service, m.method);
      if (entry?.retryPolicy) {
        retried.push(`${m.service}/${m.method}`);
        assert.deepEqual(entry.retryPolicy.retryableStatusCodes, ['UNAVAILABLE'], m.path);
        assert.ok(entry.retryPolicy.maxAttempts >= 2 && entry.retryPolicy.maxAttempts <= 5, m.path);
      }
    }
    assert.deepEqual(retried.sort(), [...kIdempotent].sort());
  });

  test('puts no deadline on streaming methods (a list may outlast any fixed one)', () => {
    for (const m of apiMethods().filter((x) => x.serverStreaming)) {
      assert.equal(methodConfigFor(m.service, m.method)?.timeout, undefined, m.path);
    }
  });
});

describe('client-service-config.json in a grpc-js client', { timeout: 60000 }, () => {
  let api;
  let fixture;

  before(() => {
    const definition = protoLoader.loadSync(['posthog/v1/user.proto', 'posthog/v1/capture.proto'], {
      includeDirs: [protoDir],
    });
    api = grpc.loadPackageDefinition(definition).posthog.v1;
  });

  // start serves GetCurrentUser and CaptureEvent on a new port, each answering
  // the status codes of its script attempt after attempt (the last one
  // repeats), and connects a client with the service config. A new port per
  // test: grpc-js keeps retry throttling tokens per target.
  async function start(scripts) {
    const attempts = { GetCurrentUser: 0, CaptureEvent: 0 };
    const answer = (method) => (_call, callback) => {
      const plan = scripts[method] || [grpc.status.OK];
      const code = plan[Math.min(attempts[method], plan.length - 1)];
      attempts[method] += 1;
      if (code === grpc.status.OK) callback(null, {});
      else callback({ code, details: `scripted ${code}` });
    };
    const server = new grpc.Server();
    server.addService(api.UserService.service, { GetCurrentUser: answer('GetCurrentUser') });
    server.addService(api.CaptureService.service, { CaptureEvent: answer('CaptureEvent') });
    const port = await new Promise((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)));
    });
    fixture = { stop: () => server.forceShutdown() };
    const options = { 'grpc.service_config': JSON.stringify(config) };
    const target = `127.0.0.1:${port}`;
    const stubs = {
      GetCurrentUser: new api.UserService(target, grpc.credentials.createInsecure(), options),
      CaptureEvent: new api.CaptureService(target, grpc.credentials.createInsecure(), options),
    };
    const call = (method) => new Promise((resolve) => {
      stubs[method][method]({}, { deadline: Date.now() + 10000 }, (error) => resolve(error ? error.code : grpc.status.OK));
    });
    const stop = () => {
      Object.values(stubs).forEach((stub) => stub.close());
      server.forceShutdown();
    };
    fixture = { attempts, call, stop };
    return fixture;
  }

  afterEach(() => {
    fixture?.stop();
    fixture = undefined;
  });

  test('an idempotent call is retried through UNAVAILABLE and succeeds', async () => {
    const { attempts, call } = await start({
      GetCurrentUser: [grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE, grpc.status.OK],
    });
    assert.equal(await call('GetCurrentUser'), grpc.status.OK);
    assert.equal(attempts.GetCurrentUser, 3);
  });

  test('an idempotent call stops at maxAttempts', async () => {
    const { attempts, call } = await start({ GetCurrentUser: [grpc.status.UNAVAILABLE] });
    assert.equal(await call('GetCurrentUser'), grpc.status.UNAVAILABLE);
    const { maxAttempts } = methodConfigFor('posthog.v1.UserService', 'GetCurrentUser').retryPolicy;
    assert.equal(attempts.GetCurrentUser, maxAttempts);
  });

  test('other codes are not retried', async () => {
    const { attempts, call } = await start({ GetCurrentUser: [grpc.status.RESOURCE_EXHAUSTED, grpc.status.OK] });
    assert.equal(await call('GetCurrentUser'), grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(attempts.GetCurrentUser, 1);
  });

  test('a non-idempotent call is not retried', async () => {
    const { attempts, call } = await start({ CaptureEvent: [grpc.status.UNAVAILABLE, grpc.status.OK] });
    assert.equal(await call('CaptureEvent'), grpc.status.UNAVAILABLE);
    assert.equal(attempts.CaptureEvent, 1);
  });

  test('retry throttling stops retries once most attempts fail', async () => {
    // maxTokens 10: each failed attempt takes a token, and retries stop at
    // half (gRFC A6), so an always-failing method gets 3, then 2, then 1.
    assert.deepEqual(config.retryThrottling, { maxTokens: 10, tokenRatio: 0.1 });
    const { attempts, call } = await start({ GetCurrentUser: [grpc.status.UNAVAILABLE] });
    const perCall = [];
    for (let i = 0; i < 3; i += 1) {
      const before = attempts.GetCurrentUser;
      assert.equal(await call('GetCurrentUser'), grpc.status.UNAVAILABLE);
      perCall.push(attempts.GetCurrentUser - before);
    }
    assert.deepEqual(perCall, [3, 2, 1]);
  });
});
