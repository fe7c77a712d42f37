'use strict';
// Every port a pod listens on is unique, in every overlay with every
// combination of the optional components: the gateway's own listeners (the
// gRPC port of its configuration, --admin_port, --channelz_port,
// --tls_plaintext_health_port), the ports its containers declare, and the
// ports a mesh's sidecar takes in the pod. Two listeners on one port
// crash-loop the pod ("Address already in use"), as components/tls once did
// with channelz on 50052.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test } = require('node:test');
const { deployDir, flagValue, overlays, render, rendered } = require('./lib/k8s');
const { container, deployment, gatewayConfig } = require('./lib/policy');

// Components that may be combined with each other; every one in the folder
// must be listed (or excluded, with the reason).
const kComponents = ['capture-statefulset', 'default-deny', 'example-secret', 'fleet-redis', 'fleet-redis-trial',
  'monitoring', 'spool-ephemeral-volume', 'tls'];
// Components left out, and why: drain-spool-job adds a Job of its own (no
// listener) beside a StatefulSet, and leaves the gateway's pod as it was.
const kNotCombined = ['drain-spool-job'];

// The ports each mesh's proxy listens on inside the pod.
const kSidecarPorts = {
  'no-mesh': [],
  // Envoy's inbound and outbound capture, HBONE, istio-agent, readiness,
  // Envoy's admin and Prometheus statistics.
  istio: [15001, 15006, 15008, 15020, 15021, 15000, 15090],
  // The proxy's inbound, outbound, admin and control ports.
  linkerd: [4143, 4140, 4191, 4190],
};

// Every subset of `items` with at least two members.
function combinations(items) {
  return items.reduce((all, item) => all.concat(all.map((s) => [...s, item])), [[]])
    .filter((s) => s.length >= 2);
}

// components/tls is for deployments without a mesh.
// One Redis at a time; the StatefulSet's claim replaces the ephemeral
// volume.
function compatible(overlay, components) {
  const has = (c) => components.includes(c);
  return !(has('tls') && overlay !== 'no-mesh') &&
    !(has('fleet-redis') && has('fleet-redis-trial')) &&
    !(has('capture-statefulset') && has('spool-ephemeral-volume'));
}

// The listeners of the rendered pod: [{port, what}].
function listeners(objects, overlay) {
  const args = container(objects).args || [];
  const found = [];
  const flag = (name) => {
    const value = flagValue(args, name);
    if (value !== undefined && Number(value) > 0) found.push({ port: Number(value), what: `--${name}` });
  };
  const port = flagValue(args, 'port') ?? gatewayConfig(objects).json.server.port;
  found.push({ port: Number(port), what: 'gRPC (server.port)' });
  flag('admin_port');
  flag('channelz_port');
  flag('tls_plaintext_health_port');
  for (const c of deployment(objects).spec.template.spec.containers) {
    if (c.name === container(objects).name) continue;
    for (const p of c.ports || []) found.push({ port: p.containerPort, what: `container ${c.name}` });
  }
  for (const p of kSidecarPorts[overlay]) found.push({ port: p, what: `${overlay} sidecar` });
  return found;
}

test('every component in deploy/kubernetes/components is combined here', () => {
  assert.deepEqual(fs.readdirSync(path.join(deployDir, 'components')).sort(),
    [...kComponents, ...kNotCombined].sort());
});

// The pod's listeners, checked on one rendering.
function checkPorts(objects, overlay) {
  test('every listener of the pod has a port of its own', () => {
    const byPort = new Map();
    for (const { port, what } of listeners(objects, overlay)) {
      assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `${what}: port ${port}`);
      assert.ok(!byPort.has(port), `${what} and ${byPort.get(port)} both listen on ${port}`);
      byPort.set(port, what);
    }
  });

  test('each container port names one of the gateway\'s listeners, each at most once', () => {
    const ports = (container(objects).ports || []).map((p) => p.containerPort);
    assert.equal(new Set(ports).size, ports.length, `duplicate container ports ${ports}`);
    const names = (container(objects).ports || []).map((p) => p.name);
    assert.equal(new Set(names).size, names.length, `duplicate port names ${names}`);
    const own = new Set(listeners(objects, overlay).filter((l) => !/sidecar|container /.test(l.what))
      .map((l) => l.port));
    for (const port of ports) assert.ok(own.has(port), `container port ${port} has no listener`);
  });
}

// Each overlay alone and with each component; a component that leaves the
// pod template as it was cannot change its ports, so the combinations
// rendered are every subset of the components that do change it (with the
// ones that do not, all added at once).
for (const overlay of overlays) {
  const alone = render(overlay);
  const podOf = (objects) => JSON.stringify(deployment(objects).spec.template);
  describe(overlay, () => rendered(overlay, [], (objects) => checkPorts(objects, overlay)));
  const changing = [];
  const neutral = [];
  for (const component of kComponents.filter((c) => compatible(overlay, [c]))) {
    describe(`${overlay} + ${component}`, () => rendered(overlay, [component], (objects) => {
      (podOf(objects) === podOf(alone) ? neutral : changing).push(component);
      checkPorts(objects, overlay);
    }));
  }
  const combined = combinations(changing).map((c) => [...c, ...neutral]);
  if (neutral.length > 0 && changing.length < 2) combined.push([...changing, ...neutral]);
  for (const components of combined.filter((c) => compatible(overlay, c) && c.length >= 2)) {
    describe([overlay, ...components].join(' + '), () =>
      rendered(overlay, components, (objects) => checkPorts(objects, overlay)));
  }
}
