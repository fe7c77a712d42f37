'use strict';
// The overlays' authorization, run: the real gateway binary started with
// each overlay's configuration, grants file and authorization flags (the
// mounted files written to a temporary directory), called the way the
// overlay's identity source names callers. The example callers get exactly
// their grants; a caller with no identity is UNAUTHENTICATED. Reads the
// binary `bazel build //server:posthog_gateway` made (POSTHOG_GATEWAY_BAZEL_BIN
// or bazel-bin), on loopback only; no call reaches PostHog (the keys are
// dummies and a granted call may fail upstream: only the authorization codes
// are asserted).

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { flagValue, one, protoDir, render, repoRoot } = require('./lib/k8s');
const { container, deployment, gatewayConfig } = require('./lib/policy');

const binary = path.join(process.env.POSTHOG_GATEWAY_BAZEL_BIN || path.join(repoRoot, 'bazel-bin'),
  'server', 'posthog_gateway');
const kDeadlineMs = 3000;

const definition = protoLoader.loadSync(['posthog/v1/user.proto', 'posthog/v1/flag.proto', 'posthog/v1/person.proto'],
  { includeDirs: [protoDir] });
const posthog = grpc.loadPackageDefinition(definition).posthog.v1;

// How a caller named `name` in the grants file presents itself through the
// overlay's identity source: the metadata its sidecar (or the caller) adds.
const kPresent = {
  istio: (name) => ({ 'x-forwarded-client-cert':
    `By=spiffe://cluster.local/ns/gateway/sa/posthog-gateway;Hash=00;URI=${name}` }),
  linkerd: (name) => ({ 'l5d-client-id': name }),
  'no-mesh': (name, tokens) => ({ authorization: `Bearer ${tokens[name]}` }),
};

// Starts the gateway as the overlay's pod would, with its files under `dir`.
async function startGateway(overlay, dir) {
  const objects = render(overlay);
  const args = container(objects).args;
  const { json } = gatewayConfig(objects);
  // Keys: dummy files in place of the Secret's.
  const dummies = { project_api_key: 'phc_dummy', personal_api_key: 'phx_dummy', feature_flags_secure_key: 'phs_dummy' };
  for (const project of json.projects) {
    for (const [kind, dummy] of Object.entries(dummies)) {
      if (!project[kind]) continue;
      const file = path.join(dir, `${project.alias}-${kind}`);
      fs.writeFileSync(file, dummy, { mode: 0o600 });
      project[kind] = { file };
    }
  }
  json.capture = { ...(json.capture || {}), spool_dir: path.join(dir, 'spool'), max_spool_bytes: 64 << 20 };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(json));
  // The grants file, from the ConfigMap the overlay mounts.
  const grantsPath = flagValue(args, 'grants_file');
  const mount = container(objects).volumeMounts.find((m) => m.mountPath === path.posix.dirname(grantsPath));
  const volume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === mount.name);
  const grants = one(objects, 'ConfigMap', volume.configMap.name).data[path.posix.basename(grantsPath)];
  fs.writeFileSync(path.join(dir, 'grants.json'), grants);
  const callers = JSON.parse(grants).callers;
  const flags = [`--config=${path.join(dir, 'config.json')}`, '--host=127.0.0.1', '--port=0',
    `--port_file=${path.join(dir, 'port')}`, `--grants_file=${path.join(dir, 'grants.json')}`];
  const identity = flagValue(args, 'caller_identity');
  if (identity) flags.push(`--caller_identity=${identity}`);
  // Bearer tokens: one per caller, the file holding only their hashes.
  const tokens = {};
  if (flagValue(args, 'bearer_tokens_file')) {
    const lines = callers.map(({ caller }) => {
      tokens[caller] = crypto.randomBytes(24).toString('hex');
      return `${caller} ${crypto.createHash('sha256').update(tokens[caller]).digest('hex')}`;
    });
    fs.writeFileSync(path.join(dir, 'tokens'), `${lines.join('\n')}\n`, { mode: 0o600 });
    flags.push(`--bearer_tokens_file=${path.join(dir, 'tokens')}`);
  }
  const log = fs.openSync(path.join(dir, 'gateway.log'), 'w');
  const child = spawn(binary, flags, { stdio: ['ignore', log, log] });
  const deadline = Date.now() + 30000;
  while (!fs.existsSync(path.join(dir, 'port'))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the gateway did not start:\n${fs.readFileSync(path.join(dir, 'gateway.log'), 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const port = Number(fs.readFileSync(path.join(dir, 'port'), 'utf8').trim());
  return { child, port, callers, tokens };
}

// The status code of one call (OK or the error's).
function call(client, method, request, metadata) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    client[method](request, md, { deadline: Date.now() + kDeadlineMs }, (error) => {
      resolve(error ? error.code : grpc.status.OK);
    });
  });
}

// One RPC per grant the example callers may hold, and what each needs.
const kProbes = [
  { grant: 'user', service: 'UserService', method: 'getCurrentUser', request: {} },
  { grant: 'flag_evaluation', service: 'FlagService', method: 'evaluateFlags', request: { context: { distinctId: 'u1' } } },
  { grant: 'flag_management', service: 'FlagService', method: 'getFlag', request: { id: 1 } },
  { grant: 'persons_read', service: 'PersonService', method: 'getPerson', request: { person: { distinctId: 'u1' } } },
];
const kAuthzCodes = [grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED];

for (const overlay of ['istio', 'linkerd', 'no-mesh']) {
  describe(`overlay ${overlay}: the gateway enforces the example grants`, () => {
    let dir;
    let gateway;
    const clients = {};
    before(async () => {
      assert.ok(fs.existsSync(binary), `${binary} is missing: bazel build //server:posthog_gateway first`);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `deploy-authz-${overlay}-`));
      gateway = await startGateway(overlay, dir);
      for (const service of ['UserService', 'FlagService', 'PersonService']) {
        clients[service] = new posthog[service](`127.0.0.1:${gateway.port}`, grpc.credentials.createInsecure());
      }
    });
    after(() => {
      for (const client of Object.values(clients)) client.close();
      if (gateway) gateway.child.kill('SIGKILL');
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test('a call with no identity is UNAUTHENTICATED', async () => {
      for (const probe of kProbes) {
        assert.equal(await call(clients[probe.service], probe.method, probe.request, {}),
          grpc.status.UNAUTHENTICATED, probe.method);
      }
    });

    test('each example caller is allowed exactly its grants', async () => {
      for (const { caller, grants } of gateway.callers) {
        const metadata = kPresent[overlay](caller, gateway.tokens);
        for (const probe of kProbes) {
          const code = await call(clients[probe.service], probe.method, probe.request, metadata);
          if (grants.includes(probe.grant)) {
            assert.ok(!kAuthzCodes.includes(code), `${caller} ${probe.method}: ${code}`);
          } else {
            assert.equal(code, grpc.status.PERMISSION_DENIED, `${caller} ${probe.method}`);
          }
        }
      }
    });
  });
}
