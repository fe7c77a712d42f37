'use strict';
// Policy tests run on every overlay: what schema validation cannot see
// (KUBERNETES.md points 2, 3, 8-11), on the objects `kubectl kustomize`
// renders.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test } = require('node:test');
const {
  byKind, deployDir, flagValue, one, overlays, parseQuantity, rendered, selectorMatches, validateSchema,
} = require('./lib/k8s');
const {
  allows, container, containerPort, deployment, gatewayConfig, ingressSources, keySources, knownConfigFields,
  kName, podAnnotations, podLabels, shutdownTimings,
} = require('./lib/policy');

const kGrpcPort = 50051;
// The admin HTTP server (--admin_port): GET /metrics and GET /healthz.
const kMetricsPort = 9090;
// Who may scrape it: the monitoring namespace, by the label the API server
// sets on every namespace.
const kMonitoringPeer = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };
const kSecretRoot = '/var/run/secrets/posthog';
// UIDs the sidecars run as: Istio's proxy (whose traffic bypasses the
// redirect) and Linkerd's.
const kProxyUids = [1337, 2102];

// The effective value of a securityContext field: the container's, else the
// pod's.
function effective(objects, field) {
  const c = container(objects).securityContext || {};
  const pod = deployment(objects).spec.template.spec.securityContext || {};
  return c[field] !== undefined ? c[field] : pod[field];
}

test('every overlay in deploy/kubernetes/overlays is tested', () => {
  const found = fs.readdirSync(path.join(deployDir, 'overlays')).sort();
  assert.deepEqual(found, [...overlays].sort());
});

for (const overlay of overlays) {
  describe(`overlay ${overlay}`, () => rendered(overlay, [], (objects) => {
    test('every object matches its schema', () => {
      assert.ok(objects.length > 0);
      for (const object of objects) {
        assert.doesNotThrow(() => validateSchema(object), `${object.kind} ${object.metadata?.name}`);
      }
    });

    test('is namespace-agnostic: no Namespace, no metadata.namespace', () => {
      assert.deepEqual(byKind(objects, 'Namespace'), []);
      for (const object of objects) {
        assert.equal(object.metadata.namespace, undefined, `${object.kind} ${object.metadata.name}`);
      }
    });

    test('ships no Secret: the operator or a secret manager creates it', () => {
      assert.deepEqual(byKind(objects, 'Secret').map((s) => s.metadata.name), []);
    });

    test('probes are native gRPC probes on the numeric port, readiness and liveness', () => {
      const c = container(objects);
      const expected = { startupProbe: 'liveness', readinessProbe: 'readiness', livenessProbe: 'liveness' };
      for (const [probe, service] of Object.entries(expected)) {
        assert.ok(c[probe], `${probe} is missing`);
        assert.deepEqual(c[probe].grpc, { port: kGrpcPort, service }, probe);
        for (const other of ['httpGet', 'tcpSocket', 'exec']) assert.equal(c[probe][other], undefined, probe);
      }
    });

    test('the gateway listens on all interfaces, on the port its config, container and probes name', () => {
      const c = container(objects);
      const host = flagValue(c.args, 'host');
      assert.ok(host === undefined || host === '0.0.0.0' || host === '[::]', `--host=${host} is not reachable from the kubelet`);
      assert.equal(flagValue(c.args, 'port'), undefined, '--port would override server.port');
      assert.equal(containerPort(objects, 'grpc'), kGrpcPort);
      assert.equal(gatewayConfig(objects).json.server.port, kGrpcPort);
    });

    test('the container exposes exactly grpc 50051 and metrics 9090, and the admin server listens on 9090', () => {
      const containers = deployment(objects).spec.template.spec.containers;
      assert.deepEqual(containers.map((c) => c.name), [kName], 'one container, the gateway');
      assert.deepEqual(container(objects).ports, [
        { name: 'grpc', containerPort: kGrpcPort, protocol: 'TCP' },
        { name: 'metrics', containerPort: kMetricsPort, protocol: 'TCP' },
      ]);
      assert.equal(flagValue(container(objects).args, 'admin_port'), String(kMetricsPort));
    });

    test('gRPC Services expose only 50051: the admin port is behind no Service', () => {
      for (const service of byKind(objects, 'Service')) {
        assert.deepEqual(service.spec.ports.map((p) => p.port), [kGrpcPort], service.metadata.name);
        for (const port of service.spec.ports) {
          assert.ok(![kMetricsPort, 'metrics'].includes(port.targetPort), `${service.metadata.name} targets ${port.targetPort}`);
        }
      }
    });

    test('Prometheus scrape annotations name the metrics port and /metrics', () => {
      const annotations = podAnnotations(objects);
      assert.equal(annotations['prometheus.io/scrape'], 'true');
      assert.equal(annotations['prometheus.io/port'], String(containerPort(objects, 'metrics')));
      assert.equal(annotations['prometheus.io/port'], flagValue(container(objects).args, 'admin_port'));
      assert.equal(annotations['prometheus.io/path'], '/metrics');
    });

    test('NetworkPolicy admits the metrics port only from the monitoring namespace', () => {
      const sources = ingressSources(objects, podLabels(objects), kMetricsPort);
      assert.ok(sources.length > 0, `nothing admits ${kMetricsPort}`);
      for (const from of sources) {
        assert.ok(from !== null, `a rule admits ${kMetricsPort} from anywhere`);
        assert.deepEqual(from, [kMonitoringPeer]);
      }
    });

    test('securityContext is restricted', () => {
      assert.equal(effective(objects, 'runAsNonRoot'), true);
      for (const field of ['runAsUser', 'runAsGroup']) {
        const id = effective(objects, field);
        assert.ok(Number.isInteger(id) && id > 0, `${field} must be a numeric non-root id, is ${id}`);
        assert.ok(!kProxyUids.includes(id), `${field} ${id} is a mesh proxy's id`);
      }
      const c = container(objects).securityContext;
      assert.equal(c.allowPrivilegeEscalation, false);
      assert.notEqual(c.privileged, true);
      assert.equal(c.readOnlyRootFilesystem, true);
      assert.deepEqual(c.capabilities, { drop: ['ALL'] });
      assert.deepEqual(effective(objects, 'seccompProfile'), { type: 'RuntimeDefault' });
    });

    test('writable scratch: emptyDirs at /tmp and the spool directory', () => {
      const c = container(objects);
      const volumes = deployment(objects).spec.template.spec.volumes;
      for (const mountPath of ['/tmp', '/var/lib/posthog-gateway/spool']) {
        const mount = c.volumeMounts.find((m) => m.mountPath === mountPath);
        assert.ok(mount, `nothing mounted at ${mountPath}`);
        assert.notEqual(mount.readOnly, true, mountPath);
        const volume = volumes.find((v) => v.name === mount.name);
        assert.ok(volume.emptyDir || volume.ephemeral, `${mountPath} is not an emptyDir or ephemeral volume`);
      }
    });

    test('the spool volume holds a full spool: max_spool_bytes, dead letters, preallocated segments', () => {
      // server/config/config.h's defaults for what the config leaves out.
      const capture = { max_spool_bytes: 2 ** 30, dead_letter_max_bytes: 64 * 2 ** 20, segment_bytes: 16 * 2 ** 20,
        ...(gatewayConfig(objects).json.capture || {}) };
      const spoolDir = capture.spool_dir || '/var/lib/posthog-gateway/spool';
      const mount = container(objects).volumeMounts.find((m) => m.mountPath === spoolDir);
      const volume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === mount.name);
      const capacity = volume.emptyDir
        ? parseQuantity(volume.emptyDir.sizeLimit)
        : parseQuantity(volume.ephemeral.volumeClaimTemplate.spec.resources.requests.storage);
      // The dead-letter file and its one rotation; the current segment, the
      // spare and one round past a segment's end.
      const needed = capture.max_spool_bytes + 2 * capture.dead_letter_max_bytes + 3 * capture.segment_bytes;
      assert.ok(needed <= capacity, `a full spool needs ${needed} bytes, the volume holds ${capacity}`);
    });

    test('resources: requests and limits for cpu and memory, requests within limits', () => {
      const { requests, limits } = container(objects).resources;
      for (const resource of ['cpu', 'memory', 'ephemeral-storage']) {
        assert.ok(requests?.[resource] !== undefined, `no ${resource} request`);
        assert.ok(limits?.[resource] !== undefined, `no ${resource} limit`);
        assert.ok(parseQuantity(requests[resource]) <= parseQuantity(limits[resource]), resource);
      }
    });

    test('the ephemeral-storage limit covers the emptyDirs\' size limits', () => {
      const volumes = deployment(objects).spec.template.spec.volumes.filter((v) => v.emptyDir);
      let total = 0;
      for (const v of volumes) {
        assert.ok(v.emptyDir.sizeLimit, `emptyDir ${v.name} has no sizeLimit`);
        total += parseQuantity(v.emptyDir.sizeLimit);
      }
      assert.ok(total < parseQuantity(container(objects).resources.limits['ephemeral-storage']));
    });

    test('pods spread across zones and nodes', () => {
      const constraints = deployment(objects).spec.template.spec.topologySpreadConstraints;
      const keys = constraints.map((c) => c.topologyKey).sort();
      assert.deepEqual(keys, ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
      for (const c of constraints) {
        assert.ok(selectorMatches(c.labelSelector, podLabels(objects)), c.topologyKey);
        assert.equal(c.maxSkew, 1);
      }
    });

    test('terminationGracePeriodSeconds outlasts the drain delay plus the shutdown grace', () => {
      const { drainMs, graceMs } = shutdownTimings(objects);
      assert.equal(drainMs, 5000);
      assert.equal(graceMs, 20000);
      const period = deployment(objects).spec.template.spec.terminationGracePeriodSeconds;
      assert.ok(period * 1000 > drainMs + graceMs, `${period}s <= ${(drainMs + graceMs) / 1000}s`);
    });

    test('keys come from Secret volumes mounted as directories, never subPath or env', () => {
      const c = container(objects);
      const volumes = deployment(objects).spec.template.spec.volumes;
      const { json } = gatewayConfig(objects);
      const sources = keySources(json);
      assert.ok(sources.length > 0);
      for (const { alias, kind, source } of sources) {
        assert.deepEqual(Object.keys(source), ['file'], `${alias}.${kind} must be a file`);
        assert.equal(path.posix.dirname(source.file), `${kSecretRoot}/${alias}`, `${alias}.${kind}`);
        const mount = c.volumeMounts.find((m) => m.mountPath === path.posix.dirname(source.file));
        assert.ok(mount, `no mount at ${path.posix.dirname(source.file)}`);
        assert.equal(mount.subPath, undefined);
        assert.equal(mount.subPathExpr, undefined);
        assert.equal(mount.readOnly, true);
        const volume = volumes.find((v) => v.name === mount.name);
        assert.ok(volume.secret, `${mount.mountPath} is not a Secret volume`);
        assert.equal(volume.secret.items, undefined, 'items would pin the key names and fail on a missing one');
      }
      for (const m of c.volumeMounts) {
        assert.equal(m.subPath, undefined, `${m.mountPath} uses subPath`);
        assert.equal(m.subPathExpr, undefined, `${m.mountPath} uses subPathExpr`);
      }
      for (const e of c.env || []) assert.equal(e.valueFrom?.secretKeyRef, undefined, `env ${e.name}`);
      assert.equal((c.envFrom || []).some((e) => e.secretRef), false);
    });

    test('every replica reads the resume token secret from a Secret directory', () => {
      const file = flagValue(container(objects).args, 'resume_token_secret_file');
      assert.ok(file, 'no --resume_token_secret_file: a resume token would resume on its own replica only');
      const mount = container(objects).volumeMounts.find((m) => m.mountPath === path.posix.dirname(file));
      assert.ok(mount, `nothing mounted at ${path.posix.dirname(file)}`);
      assert.equal(mount.readOnly, true);
      const volume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === mount.name);
      assert.equal(volume.secret?.secretName, 'posthog-gateway-resume-token');
      assert.equal(volume.secret.items, undefined);
    });

    test('the config JSON parses, and uses only fields the gateway knows', () => {
      const { json, mount } = gatewayConfig(objects);
      assert.equal(mount.readOnly, true);
      const known = knownConfigFields();
      const walk = (value, where) => {
        if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${where}[${i}]`));
        else if (value && typeof value === 'object') {
          for (const [k, v] of Object.entries(value)) {
            assert.ok(known.has(k), `${where}.${k} is not a field the gateway knows`);
            walk(v, `${where}.${k}`);
          }
        }
      };
      walk(json, 'config');
      assert.ok(json.projects.some((p) => p.alias === json.default_project), 'default_project names no project');
      assert.equal(json.server.min_client_ping_interval_ms, 10000);
      assert.equal(typeof json.server.max_receive_message_bytes, 'number');
    });

    test('the ConfigMap is generated with a content hash, so a config change rolls the pods', () => {
      const { configMap } = gatewayConfig(objects);
      assert.match(configMap.metadata.name, /^posthog-gateway-config-[a-z0-9]{10}$/);
    });

    test('Services: gRPC port named grpc-*, appProtocol h2c, selecting the pods', () => {
      const services = byKind(objects, 'Service');
      assert.equal(services.filter((s) => s.spec.clusterIP === 'None').length, 1, 'one headless Service');
      assert.equal(services.filter((s) => s.spec.clusterIP !== 'None').length, 1, 'one cluster-IP Service');
      const selector = deployment(objects).spec.selector.matchLabels;
      for (const service of services) {
        assert.deepEqual(service.spec.selector, selector, service.metadata.name);
        for (const port of service.spec.ports) {
          assert.match(port.name, /^grpc-/);
          assert.equal(port.appProtocol, 'kubernetes.io/h2c');
          const target = typeof port.targetPort === 'string'
            ? container(objects).ports.find((p) => p.name === port.targetPort)?.containerPort
            : port.targetPort;
          assert.equal(target, kGrpcPort, `${service.metadata.name} targets ${port.targetPort}`);
        }
      }
    });

    test('the PodDisruptionBudget selects exactly the Deployment\'s pods', () => {
      const pdb = one(objects, 'PodDisruptionBudget');
      assert.equal(pdb.apiVersion, 'policy/v1');
      assert.deepEqual(pdb.spec.selector, deployment(objects).spec.selector);
      assert.ok(pdb.spec.maxUnavailable !== undefined || pdb.spec.minAvailable !== undefined);
    });

    test('the HPA scales the Deployment on CPU, never below 2 replicas', () => {
      const hpa = one(objects, 'HorizontalPodAutoscaler');
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: kName });
      assert.ok(hpa.spec.minReplicas >= 2);
      assert.ok(hpa.spec.maxReplicas >= hpa.spec.minReplicas);
      assert.ok(hpa.spec.metrics.some((m) => m.type === 'Resource' && m.resource.name === 'cpu'));
      const replicas = deployment(objects).spec.replicas;
      assert.ok(replicas === undefined || replicas >= 2, 'replicas below 2');
    });

    test('NetworkPolicy: only the gateway\'s pods, everything else denied; gRPC in, DNS and HTTPS out', () => {
      const labels = podLabels(objects);
      const policies = byKind(objects, 'NetworkPolicy');
      assert.ok(policies.length > 0);
      for (const policy of policies) {
        // No namespace-wide policy in an overlay: that is components/default-deny.
        assert.ok(Object.keys(policy.spec.podSelector?.matchLabels || {}).length > 0, policy.metadata.name);
        assert.ok(selectorMatches(policy.spec.podSelector, labels), policy.metadata.name);
      }
      // Selected with both policy types: whatever no rule allows is denied.
      const own = one(objects, 'NetworkPolicy', kName);
      assert.deepEqual([...own.spec.policyTypes].sort(), ['Egress', 'Ingress']);
      assert.ok(allows(objects, labels, 'Ingress', kGrpcPort));
      assert.ok(allows(objects, labels, 'Egress', 53, 'UDP'));
      assert.ok(allows(objects, labels, 'Egress', 53, 'TCP'));
      assert.ok(allows(objects, labels, 'Egress', 443));
      assert.ok(!allows(objects, labels, 'Ingress', 22), 'ingress is not open to every port');
      assert.ok(!allows(objects, labels, 'Egress', 80), 'egress is not open to every port');
    });

    test('no Kubernetes API token: automount off on the ServiceAccount and the pod', () => {
      const spec = deployment(objects).spec.template.spec;
      const account = one(objects, 'ServiceAccount', spec.serviceAccountName);
      assert.equal(account.automountServiceAccountToken, false);
      assert.equal(spec.automountServiceAccountToken, false);
    });

    test('the image is pinned: a tag other than latest, or a digest', () => {
      const image = container(objects).image;
      assert.match(image, /(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$/);
      assert.doesNotMatch(image, /:latest$/);
    });

    test('the Deployment selector matches its own pod labels', () => {
      assert.ok(selectorMatches(deployment(objects).spec.selector, podLabels(objects)));
    });
  }));
}
