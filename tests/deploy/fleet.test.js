'use strict';
// Issue 14's Kubernetes shape: the StatefulSet variant for capture (a claim
// per replica, kept on scale-down, parallel pods), the components that point
// the fleet at an existing or a trial Redis, the resume token secret in
// every replica, and the example Job that drains a claim left behind.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, test } = require('node:test');
const {
  byKind, flagValue, one, overlays, parseQuantity, render, rendered, repoRoot, selectorMatches, validateSchema,
} = require('./lib/k8s');
const { allows, container, deployment, gatewayConfig, keySources, podLabels } = require('./lib/policy');

const kSpoolDir = '/var/lib/posthog-gateway/spool';
const kRedisPort = 6379;

// A full spool's size (as manifests.test.js computes it for the emptyDir).
function fullSpoolBytes(objects) {
  const capture = { max_spool_bytes: 2 ** 30, dead_letter_max_bytes: 64 * 2 ** 20, segment_bytes: 16 * 2 ** 20,
    ...(gatewayConfig(objects).json.capture || {}) };
  return capture.max_spool_bytes + 2 * capture.dead_letter_max_bytes + 3 * capture.segment_bytes;
}

// The pod template without what the StatefulSet changes on purpose.
function comparablePod(template) {
  const copy = JSON.parse(JSON.stringify(template));
  copy.spec.volumes = copy.spec.volumes.filter((v) => v.name !== 'spool');
  for (const c of copy.spec.topologySpreadConstraints || []) delete c.matchLabelKeys;
  return copy;
}

for (const overlay of overlays) {
  describe(`overlay ${overlay} with components/capture-statefulset`, () =>
    rendered(overlay, ['capture-statefulset'], (objects) => {
      const set = () => one(objects, 'StatefulSet', 'posthog-gateway');

      test('a StatefulSet replaces the Deployment, and matches its schema', () => {
        assert.deepEqual(byKind(objects, 'Deployment'), []);
        validateSchema(set());
        for (const object of objects) validateSchema(object);
      });

      test('its pod is the overlay\'s pod: same containers, arguments, mesh settings and volumes', () => {
        const before = deployment(render(overlay));
        assert.deepEqual(comparablePod(set().spec.template), comparablePod(before.spec.template));
        assert.deepEqual(set().spec.selector, before.spec.selector);
        assert.equal(set().spec.replicas, undefined, 'the HPA owns the count');
      });

      test('the spool is a claim per replica from volumeClaimTemplates, large enough for a full spool', () => {
        const claims = set().spec.volumeClaimTemplates;
        assert.deepEqual(claims.map((c) => c.metadata.name), ['spool']);
        assert.deepEqual(claims[0].spec.accessModes, ['ReadWriteOnce']);
        const mount = container(objects).volumeMounts.find((m) => m.mountPath === kSpoolDir);
        assert.equal(mount.name, 'spool');
        assert.notEqual(mount.readOnly, true);
        assert.equal(set().spec.template.spec.volumes.find((v) => v.name === 'spool'), undefined,
          'a pod volume named spool would shadow the claim');
        assert.ok(fullSpoolBytes(objects) <= parseQuantity(claims[0].spec.resources.requests.storage));
      });

      test('claims are kept on scale-down and deletion; pods are managed in parallel', () => {
        assert.deepEqual(set().spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: 'Retain', whenScaled: 'Retain' });
        assert.equal(set().spec.podManagementPolicy, 'Parallel');
      });

      test('the governing Service is the headless one, selecting the pods', () => {
        const service = one(objects, 'Service', set().spec.serviceName);
        assert.equal(service.spec.clusterIP, 'None');
        assert.ok(selectorMatches({ matchLabels: service.spec.selector }, set().spec.template.metadata.labels));
      });

      test('the HPA scales the StatefulSet, and the PDB covers its pods', () => {
        const hpa = one(objects, 'HorizontalPodAutoscaler');
        assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'posthog-gateway' });
        assert.deepEqual(one(objects, 'PodDisruptionBudget').spec.selector, set().spec.selector);
      });

      test('spreading counts the pods of one revision (StatefulSet pods have no pod-template-hash)', () => {
        for (const c of set().spec.template.spec.topologySpreadConstraints) {
          assert.deepEqual(c.matchLabelKeys, ['controller-revision-hash'], c.topologyKey);
        }
      });

      test('on SIGTERM the gateway sends its spool for a share of the pod\'s real grace period', () => {
        const grace = flagValue(container(objects).args, 'termination_grace') ?? '40s';
        assert.equal(grace, `${set().spec.template.spec.terminationGracePeriodSeconds}s`);
      });
    }));
}

// The Redis components, with each overlay, as a Deployment and as a StatefulSet.
for (const overlay of overlays) {
  for (const workload of [[], ['capture-statefulset']]) {
    describe(`overlay ${overlay} with components/fleet-redis ${workload.join(' ')}`, () =>
      rendered(overlay, [...workload, 'fleet-redis'], (objects) => {
        test('every object matches its schema', () => {
          for (const object of objects) validateSchema(object);
        });

        test('the gateway is pointed at Redis, with the password from a Secret directory', () => {
          const args = container(objects).args;
          assert.match(flagValue(args, 'redis_address'), /^[a-z0-9.-]+:\d+$/);
          const file = flagValue(args, 'redis_password_file');
          const mount = container(objects).volumeMounts.find((m) => m.mountPath === path.posix.dirname(file));
          assert.ok(mount, `nothing mounted at ${path.posix.dirname(file)}`);
          assert.equal(mount.readOnly, true);
          assert.equal(mount.subPath, undefined);
          const volume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === mount.name);
          assert.equal(volume.secret.secretName, 'posthog-gateway-redis');
          assert.deepEqual(byKind(objects, 'Secret'), [], 'the password Secret is the operator\'s');
        });

        test('the NetworkPolicy lets the gateway reach Redis', () => {
          assert.ok(allows(objects, podLabels(objects), 'Egress', kRedisPort));
        });
      }));

    describe(`overlay ${overlay} with components/fleet-redis-trial ${workload.join(' ')}`, () =>
      rendered(overlay, [...workload, 'fleet-redis-trial'], (objects) => {
        const redis = () => one(objects, 'Deployment', 'posthog-gateway-redis');
        const redisLabels = () => redis().spec.template.metadata.labels;

        test('every object matches its schema', () => {
          for (const object of objects) validateSchema(object);
        });

        test('a single redis-server with a Service, which the gateway is pointed at', () => {
          assert.equal(redis().spec.replicas, 1);
          const [c] = redis().spec.template.spec.containers;
          assert.match(c.image, /redis:7\.\d+\.\d+$/, 'a pinned Redis 7');
          const service = one(objects, 'Service', 'posthog-gateway-redis');
          assert.ok(selectorMatches({ matchLabels: service.spec.selector }, redisLabels()));
          assert.deepEqual(service.spec.ports.map((p) => p.port), [kRedisPort]);
          assert.equal(flagValue(container(objects).args, 'redis_address'), `${service.metadata.name}:${kRedisPort}`);
          // Not one of the gateway's pods: its Services, PDB and HPA leave it alone.
          for (const s of byKind(objects, 'Service').filter((x) => x !== service)) {
            assert.ok(!selectorMatches({ matchLabels: s.spec.selector }, redisLabels()), s.metadata.name);
          }
          assert.ok(!selectorMatches(one(objects, 'PodDisruptionBudget').spec.selector, redisLabels()));
        });

        test('Redis is restricted, keeps nothing on disk and takes connections from the gateway\'s pods only', () => {
          const spec = redis().spec.template.spec;
          const [c] = spec.containers;
          assert.equal(spec.securityContext.runAsNonRoot, true);
          assert.equal(c.securityContext.readOnlyRootFilesystem, true);
          assert.equal(c.securityContext.allowPrivilegeEscalation, false);
          assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
          assert.equal(spec.automountServiceAccountToken, false);
          assert.deepEqual(c.args.slice(c.args.indexOf('--save'), c.args.indexOf('--save') + 2), ['--save', '']);
          const policies = byKind(objects, 'NetworkPolicy').filter((p) => selectorMatches(p.spec.podSelector, redisLabels()));
          assert.equal(policies.length, 1);
          const [policy] = policies;
          assert.deepEqual([...policy.spec.policyTypes].sort(), ['Egress', 'Ingress']);
          assert.equal(policy.spec.egress, undefined, 'Redis calls nowhere');
          for (const rule of policy.spec.ingress) {
            assert.deepEqual(rule.ports, [{ protocol: 'TCP', port: kRedisPort }]);
            for (const peer of rule.from) {
              assert.equal(peer.namespaceSelector, undefined);
              assert.ok(selectorMatches(peer.podSelector, podLabels(objects)));
            }
          }
          assert.ok(allows(objects, podLabels(objects), 'Egress', kRedisPort));
        });
      }));
  }
}

for (const overlay of overlays) {
  describe(`overlay ${overlay} with capture-statefulset and components/drain-spool-job`, () =>
    rendered(overlay, ['capture-statefulset', 'drain-spool-job'], (objects) => {
      const job = () => one(objects, 'Job', 'posthog-gateway-drain-spool');
      const jobContainer = () => job().spec.template.spec.containers[0];
      const volume = (name) => job().spec.template.spec.volumes.find((v) => v.name === name);

      test('every object matches its schema', () => {
        for (const object of objects) validateSchema(object);
      });

      test('runs the fleet\'s image with its configuration, draining the claim of a removed ordinal', () => {
        const set = one(objects, 'StatefulSet', 'posthog-gateway');
        assert.equal(jobContainer().image, container(objects).image);
        assert.equal(flagValue(jobContainer().args, 'config'), flagValue(container(objects).args, 'config'));
        assert.equal(volume('config').configMap.name, gatewayConfig(objects).configMap.metadata.name);
        const dir = flagValue(jobContainer().args, 'drain_spool');
        assert.equal(dir, '/spool');
        const mount = jobContainer().volumeMounts.find((m) => m.mountPath === dir);
        const claim = volume(mount.name).persistentVolumeClaim.claimName;
        // A StatefulSet names its claims <template>-<set>-<ordinal>.
        const template = set.spec.volumeClaimTemplates[0].metadata.name;
        assert.match(claim, new RegExp(`^${template}-${set.metadata.name}-\\d+$`));
      });

      test('has every key file the configuration reads, from the same Secrets as the fleet', () => {
        const { json } = gatewayConfig(objects);
        for (const { source } of keySources(json)) {
          const dir = path.posix.dirname(source.file);
          const mount = jobContainer().volumeMounts.find((m) => m.mountPath === dir);
          assert.ok(mount, `the Job has nothing at ${dir}`);
          const fleetMount = container(objects).volumeMounts.find((m) => m.mountPath === dir);
          const fleetVolume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === fleetMount.name);
          assert.equal(volume(mount.name).secret.secretName, fleetVolume.secret.secretName);
        }
      });

      test('completes: no mesh sidecar, runs once per attempt, restricted, and not one of the gateway\'s pods', () => {
        const pod = job().spec.template;
        assert.equal(pod.metadata.labels['sidecar.istio.io/inject'], 'false');
        assert.equal(pod.metadata.annotations['linkerd.io/inject'], 'disabled');
        assert.equal(pod.spec.restartPolicy, 'Never');
        assert.ok(job().spec.backoffLimit > 0);
        assert.equal(jobContainer().securityContext.readOnlyRootFilesystem, true);
        assert.equal(pod.spec.securityContext.runAsNonRoot, true);
        assert.ok(!selectorMatches(one(objects, 'StatefulSet').spec.selector, pod.metadata.labels));
        // It calls PostHog (443) and DNS, even under a default deny.
        assert.ok(allows(objects, pod.metadata.labels, 'Egress', 443));
        assert.ok(allows(objects, pod.metadata.labels, 'Egress', 53, 'UDP'));
      });
    }));
}

// The flags the manifests pass, against the real binary: it starts with an
// unreachable Redis (acting alone), the password and the resume secret from
// files, and refuses a malformed address.
describe('the gateway takes the fleet flags the manifests pass', () => {
  const binary = path.join(process.env.POSTHOG_GATEWAY_BAZEL_BIN || path.join(repoRoot, 'bazel-bin'),
    'server', 'posthog_gateway');

  function start(dir, extra) {
    const config = JSON.parse(JSON.stringify(gatewayConfig(render('no-mesh')).json));
    for (const project of config.projects) {
      for (const kind of ['project_api_key', 'personal_api_key', 'feature_flags_secure_key']) {
        if (!project[kind]) continue;
        const file = path.join(dir, `${kind}`);
        fs.writeFileSync(file, 'ph_dummy', { mode: 0o600 });
        project[kind] = { file };
      }
    }
    config.capture = { ...(config.capture || {}), spool_dir: path.join(dir, 'spool'), max_spool_bytes: 64 << 20 };
    config.authorization = { development_mode: true };
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const log = fs.openSync(path.join(dir, 'log'), 'w');
    return spawn(binary, [`--config=${path.join(dir, 'config.json')}`, '--host=127.0.0.1', '--port=0',
      `--port_file=${path.join(dir, 'port')}`, ...extra], { stdio: ['ignore', log, log] });
  }

  async function outcome(child, dir) {
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      if (fs.existsSync(path.join(dir, 'port'))) return 'serving';
      if (child.exitCode !== null) return `exit ${child.exitCode}`;
      await new Promise((r) => setTimeout(r, 50));
    }
    return 'timeout';
  }

  for (const [name, extra, expected, logged] of [
    ['Redis address, password and resume secret files', ['--redis_address=127.0.0.1:1',
      '--redis_password_file=DIR/redis-password', '--resume_token_secret_file=DIR/resume'], 'serving',
    /fleet: coordinating through Redis/],
    ['a malformed Redis address', ['--redis_address=no-port'], 'exit 2', /--redis_address/],
    ['a resume secret shorter than 16 bytes', ['--resume_token_secret_file=DIR/short'], 'exit 2', /resume_token_secret/],
  ]) {
    test(name, async () => {
      assert.ok(fs.existsSync(binary), `${binary} is missing: bazel build //server:posthog_gateway first`);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-fleet-'));
      fs.writeFileSync(path.join(dir, 'redis-password'), 'not-a-real-password\n', { mode: 0o600 });
      fs.writeFileSync(path.join(dir, 'resume'), 'a'.repeat(64), { mode: 0o600 });
      fs.writeFileSync(path.join(dir, 'short'), 'short', { mode: 0o600 });
      const child = start(dir, extra.map((a) => a.replace('DIR', dir)));
      try {
        const result = await outcome(child, dir);
        const log = fs.readFileSync(path.join(dir, 'log'), 'utf8');
        assert.equal(result, expected, log);
        assert.match(log, logged);
        assert.ok(!log.includes('not-a-real-password'), 'the Redis password was logged');
      } finally {
        child.kill('SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
