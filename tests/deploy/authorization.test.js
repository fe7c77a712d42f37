'use strict';
// Who may call what (issue 13, docs/security.md): every overlay turns the
// gateway's own authorization on, with a caller identity the deployment can
// trust, a grants file mounted from a ConfigMap, and never development mode;
// the example grants are least privilege; and the Istio AuthorizationPolicy
// lets each principal reach only the methods its grants cover.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test } = require('node:test');
const { apiMethods, byKind, flagValue, one, overlays, render, rendered, repoRoot } = require('./lib/k8s');
const { container, deployment, gatewayConfig } = require('./lib/policy');

// What each overlay must trust: the flag --caller_identity names a transport
// source; no-mesh has none and identifies callers by bearer tokens.
const kIdentity = { istio: 'istio', linkerd: 'linkerd', 'no-mesh': undefined };

// The RPC -> grant table of server/authz/grants.cc, and the grant names of
// grants.h: what the gateway enforces.
function methodGrants() {
  const header = fs.readFileSync(path.join(repoRoot, 'server', 'authz', 'grants.h'), 'utf8');
  const names = {};
  for (const m of header.matchAll(/constexpr absl::string_view (kGrant\w+) = "([a-z_]+)"/g)) names[m[1]] = m[2];
  const table = fs.readFileSync(path.join(repoRoot, 'server', 'authz', 'grants.cc'), 'utf8');
  const grants = {};
  for (const m of table.matchAll(/\{"(\/[\w.]+\/\w+)", (kGrant\w+)/g)) {
    assert.ok(names[m[2]], `unknown grant constant ${m[2]}`);
    grants[m[1]] = names[m[2]];
  }
  assert.ok(Object.keys(grants).length > 0, 'no methods found in grants.cc');
  return { grants, names: new Set(Object.values(names)) };
}

// The file --flag names, resolved to its volume: {file, mount, volume}.
function mountedFile(objects, file) {
  const dir = path.posix.dirname(file);
  const mount = container(objects).volumeMounts.find((m) => m.mountPath === dir);
  assert.ok(mount, `nothing is mounted at ${dir}`);
  assert.equal(mount.subPath, undefined, `${dir}: a subPath mount never sees a change`);
  assert.equal(mount.readOnly, true, dir);
  const volume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === mount.name);
  assert.ok(volume, `no volume ${mount.name}`);
  return { file, mount, volume };
}

// The grants file the container reads, parsed.
function grantsFile(objects) {
  const file = flagValue(container(objects).args, 'grants_file');
  assert.ok(file, 'no --grants_file');
  const { volume } = mountedFile(objects, file);
  assert.ok(volume.configMap, `${file} is not in a ConfigMap`);
  const configMap = one(objects, 'ConfigMap', volume.configMap.name);
  const text = (configMap.data || {})[path.posix.basename(file)];
  assert.ok(text !== undefined, `ConfigMap ${configMap.metadata.name} has no ${path.posix.basename(file)}`);
  return { configMap, json: JSON.parse(text) };
}

// Every rendering a user may apply: each overlay alone and with each
// component that keeps it a gateway Deployment.
const kRenderings = [
  ...overlays.map((o) => [o, []]),
  ...overlays.map((o) => [o, ['example-secret']]),
  ['no-mesh', ['tls']],
];

for (const [overlay, components] of kRenderings) {
  describe([overlay, ...components].join(' + '), () => rendered(overlay, components, (objects) => {
    const args = () => container(objects).args;

    test('the caller\'s identity comes from what the deployment trusts', () => {
      const expected = components.includes('tls') ? 'tls' : kIdentity[overlay];
      assert.equal(flagValue(args(), 'caller_identity'), expected);
      assert.equal(gatewayConfig(objects).json.server.caller_identity, undefined,
        'the config must not set another source than the overlay\'s flag');
      if (overlay === 'no-mesh') {
        const tokens = flagValue(args(), 'bearer_tokens_file');
        assert.ok(tokens, 'no-mesh without --bearer_tokens_file identifies nobody');
        const { volume } = mountedFile(objects, tokens);
        assert.ok(volume.secret, `${tokens} is not in a Secret`);
        assert.equal(volume.secret.items, undefined);
      }
      if (expected === 'tls') assert.ok(flagValue(args(), 'tls_client_ca_file'), '"tls" needs client certificates');
    });

    test('a grants file is mounted from a generated ConfigMap, and names known grants and projects', () => {
      const { configMap, json } = grantsFile(objects);
      assert.match(configMap.metadata.name, /^posthog-gateway-grants-[a-z0-9]{10}$/,
        'the gateway reads grants once: a content hash must roll the pods');
      assert.deepEqual(Object.keys(json), ['callers']);
      const { names } = methodGrants();
      const aliases = gatewayConfig(objects).json.projects.map((p) => p.alias);
      assert.ok(json.callers.length > 0);
      for (const caller of json.callers) {
        assert.ok(caller.caller, 'a caller without a name');
        for (const grant of caller.grants) assert.ok(names.has(grant), `${caller.caller}: unknown grant ${grant}`);
        for (const project of caller.projects) {
          assert.ok(aliases.includes(project), `${caller.caller}: unknown project ${project}`);
        }
      }
    });

    test('the example grants are least privilege: capture only, evaluation only, one flag admin; no persons writes', () => {
      const { json } = grantsFile(objects);
      const sets = json.callers.map((c) => [...c.grants].sort().join(','));
      assert.ok(sets.includes('capture'), 'no capture-only caller');
      assert.ok(sets.includes('flag_evaluation'), 'no flag-evaluation-only caller');
      assert.equal(json.callers.filter((c) => c.grants.includes('flag_management')).length, 1, 'one flag admin');
      for (const caller of json.callers) {
        assert.ok(!caller.grants.includes('persons_write'), `${caller.caller} may delete persons`);
        assert.ok(!caller.projects.includes('*'), `${caller.caller} has every project`);
      }
    });

    test('caller names have the form the identity source produces', () => {
      const { json } = grantsFile(objects);
      const source = flagValue(args(), 'caller_identity');
      for (const { caller } of json.callers) {
        if (source === 'istio') assert.match(caller, /^spiffe:\/\/[a-z0-9.-]+\/ns\/[a-z0-9-]+\/sa\/[a-z0-9-]+$/);
        else if (source === 'linkerd') assert.match(caller, /^[a-z0-9-]+\.[a-z0-9-]+\.serviceaccount\.identity\.[a-z0-9-]+\.[a-z0-9.-]+$/);
        else if (source === undefined) assert.match(caller, /^[A-Za-z0-9._-]{1,128}$/, 'a bearer token caller name');
      }
    });

    test('development mode is off', () => {
      const authorization = gatewayConfig(objects).json.authorization || {};
      assert.notEqual(authorization.development_mode, true);
      assert.ok(!args().some((a) => /development/.test(a)), 'a development flag');
    });
  }));
}

describe('istio: the AuthorizationPolicy agrees with the grants', () => rendered('istio', [], (objects) => {
  const policy = () => one(objects, 'AuthorizationPolicy', 'posthog-gateway-callers');
  // [{principal, path}] the policy allows (POST), exact paths only.
  const allowed = () => policy().spec.rules.flatMap((rule) =>
    rule.from.flatMap((f) => f.source.principals).flatMap((principal) =>
      rule.to.flatMap((t) => t.operation.paths.map((p) => ({ principal, path: p, methods: t.operation.methods })))));

  test('no blanket rule: every rule names principals and exact paths, no wildcard', () => {
    for (const rule of policy().spec.rules) {
      assert.ok((rule.from || []).length > 0, 'a rule without `from` allows any source');
      for (const { source } of rule.from) {
        assert.deepEqual(Object.keys(source), ['principals']);
        for (const p of source.principals) assert.ok(!p.includes('*'), `principal ${p}`);
      }
      assert.ok((rule.to || []).length > 0, 'a rule without `to` allows every path');
      for (const { operation } of rule.to) {
        assert.deepEqual(operation.methods, ['POST']);
        assert.ok(operation.paths.length > 0);
        for (const p of operation.paths) assert.ok(!p.includes('*'), `path pattern ${p}`);
        assert.equal(operation.notPaths, undefined);
      }
    }
  });

  test('each principal reaches exactly the methods its grants cover (posthog.v1 and flagd)', () => {
    const { grants } = methodGrants();
    const callers = new Map(grantsFile(objects).json.callers.map((c) => [c.caller, new Set(c.grants)]));
    const api = Object.keys(grants);
    for (const { path } of apiMethods()) assert.ok(grants[path], `${path} has no line in grants.cc`);
    const byPrincipal = new Map();
    for (const { principal, path } of allowed()) {
      if (!grants[path]) continue;
      const caller = `spiffe://${principal}`;
      assert.ok(callers.has(caller), `${principal} is allowed by the policy but has no grants`);
      assert.ok(callers.get(caller).has(grants[path]), `${principal} may call ${path} without "${grants[path]}"`);
      if (!byPrincipal.has(caller)) byPrincipal.set(caller, new Set());
      byPrincipal.get(caller).add(path);
    }
    for (const [caller, held] of callers) {
      const expected = api.filter((p) => held.has(grants[p])).sort();
      assert.deepEqual([...(byPrincipal.get(caller) || [])].sort(), expected, caller);
    }
  });

  test('only the flag admin reaches server reflection; every caller its health checks', () => {
    const callers = grantsFile(objects).json.callers;
    for (const { principal, path } of allowed()) {
      if (path.startsWith('/grpc.reflection.')) {
        const grants = callers.find((c) => c.caller === `spiffe://${principal}`).grants;
        assert.ok(grants.includes('flag_management'), `${principal} reaches reflection`);
      } else if (!methodGrants().grants[path]) {
        assert.match(path, /^\/grpc\.health\.v1\.Health\/(Check|Watch)$/);
      }
    }
    for (const { caller } of callers) {
      for (const path of ['/grpc.health.v1.Health/Check', '/grpc.health.v1.Health/Watch']) {
        assert.ok(allowed().some((a) => `spiffe://${a.principal}` === caller && a.path === path), `${caller} ${path}`);
      }
    }
  });
}));

describe('linkerd: the mesh admits the callers the grants name, and no one else', () => rendered('linkerd', [], (objects) => {
  test('MeshTLSAuthentication names exactly the grants file\'s callers', () => {
    const auth = one(objects, 'MeshTLSAuthentication', 'posthog-gateway-callers');
    const fromMesh = (auth.spec.identityRefs || []).map((r) =>
      `${r.name}.${r.namespace}.serviceaccount.identity.linkerd.cluster.local`);
    assert.deepEqual([...fromMesh, ...(auth.spec.identities || [])].sort(),
      grantsFile(objects).json.callers.map((c) => c.caller).sort());
  });
}));

test('base alone refuses every call: no identity, no grants (the overlays turn them on)', () => {
  const objects = render('no-mesh');
  assert.ok(byKind(objects, 'ConfigMap').length >= 2);
  const base = JSON.parse(fs.readFileSync(path.join(repoRoot, 'deploy', 'kubernetes', 'base', 'config.json'), 'utf8'));
  assert.equal(base.authorization, undefined, 'base/config.json would apply to every overlay and user config');
});
