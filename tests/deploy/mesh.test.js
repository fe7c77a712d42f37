'use strict';
// The mesh overlays (KUBERNETES.md points 10, 12-14): injection, mTLS, who may
// call, the sidecar's ports, and a sidecar that outlives the gateway's drain.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test } = require('node:test');
const { apiMethods, byKind, one, parseDuration, rendered, repoRoot, selectorMatches } = require('./lib/k8s');
const {
  allows, container, containerPort, deployment, gatewayConfig, podAnnotations, podLabels, shutdownTimings,
} = require('./lib/policy');

const kGrpcPort = 50051;
const kMetricsPort = 9090;
// istio-agent's port: rewritten probes and merged Prometheus metrics.
const kIstioAgentPort = 15020;
const kHealthPaths = ['/grpc.health.v1.Health/Check', '/grpc.health.v1.Health/Watch'];
const kMeshGroups = [/\.istio\.io\//, /^policy\.linkerd\.io\//];

// The drain window the sidecar must outlast, and the pod's hard limit, in ms.
function drainWindow(objects) {
  const { drainMs, graceMs } = shutdownTimings(objects);
  return {
    neededMs: drainMs + graceMs,
    limitMs: deployment(objects).spec.template.spec.terminationGracePeriodSeconds * 1000,
  };
}

// The PostHog hosts a config calls: each project's ingestion and app hosts,
// from its region as server/config/config.cc maps it, or set explicitly.
function posthogHosts(config) {
  const source = fs.readFileSync(path.join(repoRoot, 'server', 'config', 'config.cc'), 'utf8');
  const regions = {};
  for (const m of source.matchAll(/region == "(\w+)"\) \{\s*return RegionHosts\{"([^"]+)", "([^"]+)"\}/g)) {
    regions[m[1]] = [m[2], m[3]];
  }
  assert.ok(Object.keys(regions).length > 0, 'no region hosts found in config.cc');
  const hosts = new Set();
  for (const project of config.projects) {
    const [ingestion, app] = regions[project.region || 'us'];
    hosts.add(new URL(project.ingestion_host || ingestion).hostname);
    hosts.add(new URL(project.app_host || app).hostname);
  }
  return [...hosts];
}

// Istio's string match: exact, `prefix*`, `*suffix` or `*`.
function istioMatches(pattern, value) {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

// A Gateway API PathPrefix, under the three readings met in implementations:
// whole path segments with a trailing slash ignored (the spec), a plain
// string prefix, and segments with the trailing slash kept. A route must
// match under all three to be safe.
function pathPrefixMatches(prefix, path) {
  const trimmed = prefix.replace(/\/+$/, '');
  const spec = path === trimmed || path.startsWith(`${trimmed}/`);
  const stringWise = path.startsWith(prefix);
  const strict = path === prefix || (path.startsWith(prefix) && path[prefix.length] === '/');
  return spec && stringWise && strict;
}

function linkerdRouteMatches(route, path) {
  return (route.spec.rules || []).some((rule) => (rule.matches || []).some((m) =>
    (m.method === undefined || m.method === 'POST') &&
    (m.path.type || 'PathPrefix') === 'PathPrefix' &&
    pathPrefixMatches(m.path.value, path)));
}

describe('overlay no-mesh', () => rendered('no-mesh', [], (objects) => {

  test('opts out of sidecar injection explicitly', () => {
    assert.equal(podLabels(objects)['sidecar.istio.io/inject'], 'false');
    assert.equal(podAnnotations(objects)['linkerd.io/inject'], 'disabled');
  });

  test('has no mesh resources and opens no mesh port', () => {
    for (const object of objects) {
      assert.ok(!kMeshGroups.some((g) => g.test(object.apiVersion)), `${object.kind} ${object.metadata.name}`);
    }
    for (const port of [4143, 4191, 15008, 15020, 15021, 15090]) {
      assert.ok(!allows(objects, podLabels(objects), 'Ingress', port), `ingress ${port} is open`);
    }
  });
}));

describe('overlay istio', () => rendered('istio', [], (objects) => {
  const labels = podLabels(objects);

  test('the pod is injected', () => {
    assert.equal(labels['sidecar.istio.io/inject'], 'true');
  });

  test('PeerAuthentication STRICT for the gateway\'s pods', () => {
    const peer = one(objects, 'PeerAuthentication');
    assert.ok(selectorMatches(peer.spec.selector, labels));
    assert.equal(peer.spec.mtls.mode, 'STRICT');
    assert.equal(peer.spec.portLevelMtls, undefined);
  });

  test('the AuthorizationPolicy allows callers by SPIFFE principal, to API methods and their health checks', () => {
    const policies = byKind(objects, 'AuthorizationPolicy');
    assert.equal(policies.length, 1);
    const [policy] = policies;
    assert.ok(selectorMatches(policy.spec.selector, labels));
    assert.equal(policy.spec.action || 'ALLOW', 'ALLOW');
    assert.ok(policy.spec.rules.length > 0);
    for (const rule of policy.spec.rules) {
      const sources = rule.from.map((f) => f.source);
      assert.ok(sources.length > 0);
      for (const source of sources) {
        assert.deepEqual(Object.keys(source), ['principals'], 'callers are named by principal only');
        for (const principal of source.principals) {
          // Istio principals are the SPIFFE ID without its scheme.
          assert.match(principal, /^[a-z0-9.-]+\/ns\/[a-z0-9-]+\/sa\/[a-z0-9-]+$/);
        }
      }
    }
    // Which principal may call which method is authorization.test.js's
    // business (against the grants); here: some caller reaches the API, and
    // every path allowed is a real method or a health check.
    const api = apiMethods().map((m) => m.path);
    const known = [...api, ...kHealthPaths];
    const allowedPaths = policy.spec.rules.flatMap((rule) => rule.to.flatMap((t) => t.operation.paths));
    assert.ok(api.some((p) => allowedPaths.some((q) => istioMatches(q, p))), 'no API method is allowed');
    for (const path of kHealthPaths) {
      assert.ok(allowedPaths.some((q) => istioMatches(q, path)), `${path} is not allowed to the callers`);
    }
    for (const pattern of allowedPaths) {
      assert.ok(known.some((p) => istioMatches(pattern, p)) || /^\/(grpc\.reflection\.|flagd\.evaluation\.v2\.)/.test(pattern),
        `${pattern} matches no method`);
    }
  });

  test('Prometheus can scrape under STRICT mTLS: metrics merging on 15020, no plaintext exception on 9090', () => {
    const annotations = podAnnotations(objects);
    // The injector rewrites the prometheus.io annotations to the agent's
    // 15020 and hands the originals to the agent, which fetches the
    // gateway's /metrics inside the pod: they must name the admin port.
    assert.equal(annotations['prometheus.istio.io/merge-metrics'], 'true');
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/port'], String(containerPort(objects, 'metrics')));
    assert.equal(containerPort(objects, 'metrics'), kMetricsPort);
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    assert.ok(allows(objects, labels, 'Ingress', kIstioAgentPort), `ingress ${kIstioAgentPort}`);
    for (const peer of byKind(objects, 'PeerAuthentication')) {
      assert.equal(peer.spec.mtls.mode, 'STRICT', peer.metadata.name);
      assert.equal(peer.spec.portLevelMtls, undefined, `${peer.metadata.name} relaxes mTLS on some port`);
    }
  });

  test('the AuthorizationPolicy does not block the merged scrape, nor open 9090 through the sidecar', () => {
    for (const policy of byKind(objects, 'AuthorizationPolicy')) {
      // The agent's port is not intercepted, so only an ALLOW policy is
      // harmless by construction; DENY/CUSTOM (ext authz) are refused here so
      // that adding one makes someone think about the scrape.
      assert.equal(policy.spec.action || 'ALLOW', 'ALLOW', policy.metadata.name);
      for (const rule of policy.spec.rules || []) {
        for (const to of rule.to || []) {
          const op = to.operation || {};
          assert.ok(!(op.ports || []).includes(String(kMetricsPort)), `${policy.metadata.name} opens ${kMetricsPort}`);
          assert.ok(!(op.methods || ['POST']).includes('GET'), `${policy.metadata.name} allows GET`);
          assert.ok(!(op.paths || []).some((p) => istioMatches(p, '/metrics')), `${policy.metadata.name} allows /metrics`);
        }
      }
    }
  });

  test('NetworkPolicy opens the sidecar\'s ports and istiod', () => {
    for (const port of [15008, 15020, 15021, 15090]) {
      assert.ok(allows(objects, labels, 'Ingress', port), `ingress ${port}`);
    }
    assert.ok(allows(objects, labels, 'Egress', 15012), 'egress to istiod 15012');
  });

  test('the sidecar keeps proxying while the gateway drains, and stops before SIGKILL', () => {
    const config = podAnnotations(objects)['proxy.istio.io/config'];
    assert.ok(config, 'no proxy.istio.io/config annotation');
    const match = /^terminationDrainDuration:\s*(\S+)\s*$/m.exec(config);
    assert.ok(match, 'no terminationDrainDuration');
    const drainMs = parseDuration(match[1]);
    const { neededMs, limitMs } = drainWindow(objects);
    assert.ok(drainMs >= neededMs, `${drainMs} ms < ${neededMs} ms`);
    assert.ok(drainMs < limitMs, `${drainMs} ms >= terminationGracePeriodSeconds`);
    assert.match(config, /^holdApplicationUntilProxyStarts:\s*true\s*$/m);
  });

  test('a ServiceEntry names every PostHog host the config calls, for REGISTRY_ONLY meshes', () => {
    const entry = one(objects, 'ServiceEntry');
    assert.deepEqual(entry.spec.exportTo, ['.']);
    assert.equal(entry.spec.location, 'MESH_EXTERNAL');
    assert.deepEqual(entry.spec.ports.map((p) => [p.number, p.protocol]), [[443, 'TLS']]);
    for (const host of posthogHosts(gatewayConfig(objects).json)) {
      assert.ok(entry.spec.hosts.includes(host), `${host} is missing`);
    }
  });

  test('the gateway does not run as the Istio proxy\'s UID 1337', () => {
    const pod = deployment(objects).spec.template.spec.securityContext;
    assert.notEqual(container(objects).securityContext.runAsUser ?? pod.runAsUser, 1337);
  });
}));

describe('overlay linkerd', () => rendered('linkerd', [], (objects) => {
  const labels = podLabels(objects);
  const find = (kind, name) => one(objects, kind, name);

  test('the pod is injected, and its proxy outlives the gateway\'s drain', () => {
    const annotations = podAnnotations(objects);
    assert.equal(annotations['linkerd.io/inject'], 'enabled');
    const wait = annotations['config.alpha.linkerd.io/proxy-wait-before-exit-seconds'];
    assert.match(wait ?? '', /^\d+$/);
    const { neededMs, limitMs } = drainWindow(objects);
    assert.ok(Number(wait) * 1000 >= neededMs, `proxy waits ${wait}s, the gateway drains ${neededMs / 1000}s`);
    assert.ok(Number(wait) * 1000 < limitMs, 'the wait must end before terminationGracePeriodSeconds');
  });

  test('the gRPC port is neither opaque nor marked grpc', () => {
    const annotations = podAnnotations(objects);
    assert.equal(annotations['config.linkerd.io/opaque-ports'], undefined);
    for (const service of byKind(objects, 'Service')) {
      for (const port of service.spec.ports) {
        assert.ok(!['grpc', 'linkerd.io/opaque'].includes(port.appProtocol), service.metadata.name);
      }
    }
  });

  test('a Server covers the gateway\'s gRPC port, deny by default', () => {
    const server = find('Server', 'posthog-gateway-grpc');
    assert.ok(selectorMatches(server.spec.podSelector, labels));
    assert.equal(server.spec.port, kGrpcPort);
    assert.equal(server.spec.proxyProtocol, 'gRPC');
    assert.equal(server.spec.accessPolicy, 'deny');
  });

  test('every reference between the policy resources resolves', () => {
    const kinds = new Set(['Server', 'HTTPRoute', 'MeshTLSAuthentication', 'NetworkAuthentication']);
    for (const route of byKind(objects, 'HTTPRoute')) {
      for (const ref of route.spec.parentRefs) {
        assert.equal(ref.kind, 'Server');
        assert.equal(ref.group, 'policy.linkerd.io');
        find('Server', ref.name);
      }
    }
    for (const policy of byKind(objects, 'AuthorizationPolicy')) {
      const refs = [policy.spec.targetRef, ...policy.spec.requiredAuthenticationRefs];
      assert.ok(policy.spec.requiredAuthenticationRefs.length > 0, `${policy.metadata.name} requires nothing`);
      for (const ref of refs) {
        assert.ok(kinds.has(ref.kind), `${policy.metadata.name} refers to a ${ref.kind}`);
        assert.equal(ref.group, 'policy.linkerd.io');
        find(ref.kind, ref.name);
      }
    }
  });

  // The authorization that applies to `path`: the one on the route that
  // matches it (Linkerd denies paths no route matches once a Server has
  // routes).
  function authenticationFor(path) {
    const routes = byKind(objects, 'HTTPRoute').filter((r) => linkerdRouteMatches(r, path));
    assert.equal(routes.length, 1, `${path} matches ${routes.length} routes`);
    const policies = byKind(objects, 'AuthorizationPolicy')
      .filter((p) => p.spec.targetRef.kind === 'HTTPRoute' && p.spec.targetRef.name === routes[0].metadata.name);
    assert.equal(policies.length, 1, `${routes[0].metadata.name} has ${policies.length} policies`);
    return policies[0].spec.requiredAuthenticationRefs.map((r) => r.kind);
  }

  test('the kubelet\'s gRPC probes are authorized (Linkerd only does so by itself for httpGet)', () => {
    for (const path of kHealthPaths) {
      assert.deepEqual(authenticationFor(path), ['NetworkAuthentication'], path);
    }
  });

  test('every API method is authorized for meshed callers only', () => {
    for (const method of apiMethods()) {
      assert.deepEqual(authenticationFor(method.path), ['MeshTLSAuthentication'], method.path);
    }
    const callers = find('MeshTLSAuthentication');
    assert.ok(!(callers.spec.identities || []).includes('*'), 'every meshed identity is allowed');
  });

  test('every container port has exactly one Server, and every Server a container port', () => {
    const servers = byKind(objects, 'Server');
    for (const server of servers) assert.ok(selectorMatches(server.spec.podSelector, labels), server.metadata.name);
    const ports = container(objects).ports.map((p) => p.containerPort).sort();
    assert.deepEqual(servers.map((s) => s.spec.port).sort(), ports);
  });

  test('Prometheus may scrape the admin port: an HTTP/1 Server on 9090 authorized for the scrapers\' network', () => {
    const servers = byKind(objects, 'Server').filter((s) => s.spec.port === kMetricsPort);
    assert.equal(servers.length, 1, `${servers.length} Servers on ${kMetricsPort}`);
    const [server] = servers;
    assert.equal(containerPort(objects, 'metrics'), kMetricsPort);
    assert.equal(server.spec.proxyProtocol, 'HTTP/1');
    assert.equal(server.spec.accessPolicy, 'deny');
    // Deny by default, so some policy must admit the scrape: with no routes
    // on this Server, a policy targeting the Server itself.
    assert.deepEqual(byKind(objects, 'HTTPRoute')
      .filter((r) => r.spec.parentRefs.some((ref) => ref.name === server.metadata.name))
      .map((r) => r.metadata.name), []);
    const policies = byKind(objects, 'AuthorizationPolicy').filter((p) =>
      p.spec.targetRef.kind === 'Server' && p.spec.targetRef.name === server.metadata.name);
    assert.equal(policies.length, 1, `${policies.length} policies on ${server.metadata.name}`);
    // An unmeshed Prometheus has no mesh identity: only a network can name it.
    const refs = policies[0].spec.requiredAuthenticationRefs;
    assert.deepEqual(refs.map((r) => r.kind), ['NetworkAuthentication']);
    const networks = find('NetworkAuthentication', refs[0].name).spec.networks;
    assert.ok(networks.length > 0);
    // Nothing else may sit on the gRPC Server: its API stays meshed-only.
    for (const policy of byKind(objects, 'AuthorizationPolicy')) {
      assert.ok(!(policy.spec.targetRef.kind === 'Server' && policy.spec.targetRef.name === 'posthog-gateway-grpc'),
        `${policy.metadata.name} authorizes the whole gRPC Server`);
    }
  });

  test('NetworkPolicy opens the proxy\'s ports and the control plane', () => {
    for (const port of [4143, 4191]) assert.ok(allows(objects, labels, 'Ingress', port), `ingress ${port}`);
    for (const port of [8080, 8086, 8090]) assert.ok(allows(objects, labels, 'Egress', port), `egress ${port}`);
  });

  test('the gateway does not run as the Linkerd proxy\'s UID 2102', () => {
    const pod = deployment(objects).spec.template.spec.securityContext;
    assert.notEqual(container(objects).securityContext.runAsUser ?? pod.runAsUser, 2102);
  });
}));

describe('path matchers used above', () => {
  test('PathPrefix is safe only when it matches under every reading', () => {
    assert.ok(pathPrefixMatches('/posthog.v1.UserService', '/posthog.v1.UserService/GetCurrentUser'));
    assert.ok(!pathPrefixMatches('/posthog.v1.UserService/', '/posthog.v1.UserService/GetCurrentUser'));
    assert.ok(!pathPrefixMatches('/posthog.v1.', '/posthog.v1.UserService/GetCurrentUser'));
    assert.ok(!pathPrefixMatches('/posthog.v1.User', '/posthog.v1.UserService/GetCurrentUser'));
  });

  test('Istio patterns', () => {
    assert.ok(istioMatches('/posthog.v1.*', '/posthog.v1.UserService/GetCurrentUser'));
    assert.ok(!istioMatches('/posthog.v1.UserService', '/posthog.v1.UserService/GetCurrentUser'));
  });
});
