'use strict';
// The optional Kustomize components, added to each overlay the way a user's
// own overlay would add them.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test } = require('node:test');
const { deployDir, flagValue, one, overlays, render, rendered, validateSchema } = require('./lib/k8s');
const { container, deployment, gatewayConfig, keySources } = require('./lib/policy');

// capture-statefulset, fleet-redis, fleet-redis-trial and drain-spool-job
// are tested in fleet.test.js.
test('every component in deploy/kubernetes/components is tested', () => {
  const found = fs.readdirSync(path.join(deployDir, 'components')).sort();
  assert.deepEqual(found, ['capture-statefulset', 'default-deny', 'drain-spool-job', 'example-secret', 'fleet-redis',
    'fleet-redis-trial', 'monitoring', 'spool-ephemeral-volume', 'tls']);
});

for (const overlay of overlays) {
  describe(`overlay ${overlay} with components/example-secret`, () => rendered(overlay, ['example-secret'], (objects) => {
    const keys = () => one(objects, 'Secret', 'posthog-gateway-keys-default');
    const resume = () => one(objects, 'Secret', 'posthog-gateway-resume-token');

    test('the Secrets match their schema, and there are only these two', () => {
      validateSchema(keys());
      validateSchema(resume());
      assert.equal(objects.filter((o) => o.kind === 'Secret').length, 2);
    });

    test('holds placeholders only, never a real key', () => {
      for (const secret of [keys(), resume()]) {
        assert.equal(secret.data, undefined, 'base64 data could hide a real key');
      }
      for (const [name, value] of Object.entries(keys().stringData)) {
        assert.match(value, /^ph[cxs]_REPLACE_ME$/, name);
      }
      assert.deepEqual(Object.keys(resume().stringData), ['secret']);
      assert.match(resume().stringData.secret, /^REPLACE_ME/);
    });

    test('provides exactly the key files the config reads, in the volume that mounts them', () => {
      const secret = keys();
      const volumes = deployment(objects).spec.template.spec.volumes;
      const { json } = gatewayConfig(objects);
      const expected = new Set();
      for (const { source } of keySources(json)) {
        const dir = path.posix.dirname(source.file);
        const mount = container(objects).volumeMounts.find((m) => m.mountPath === dir);
        const volume = volumes.find((v) => v.name === mount.name);
        assert.equal(volume.secret.secretName, secret.metadata.name);
        expected.add(path.posix.basename(source.file));
      }
      assert.deepEqual(Object.keys(secret.stringData).sort(), [...expected].sort());
    });

    test('provides the resume token secret file, at least 16 bytes, where the flag reads it', () => {
      const file = flagValue(container(objects).args, 'resume_token_secret_file');
      const mount = container(objects).volumeMounts.find((m) => m.mountPath === path.posix.dirname(file));
      const volume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === mount.name);
      assert.equal(volume.secret.secretName, resume().metadata.name);
      assert.ok(resume().stringData[path.posix.basename(file)].length >= 16);
    });
  }));

  describe(`overlay ${overlay} with components/spool-ephemeral-volume`, () => rendered(overlay, ['spool-ephemeral-volume'], (objects) => {
    test('the Deployment still matches its schema', () => {
      validateSchema(deployment(objects));
    });

    test('the spool is a per-pod PersistentVolumeClaim and no longer an emptyDir', () => {
      const spool = deployment(objects).spec.template.spec.volumes.find((v) => v.name === 'spool');
      assert.equal(spool.emptyDir, undefined);
      const claim = spool.ephemeral.volumeClaimTemplate.spec;
      assert.deepEqual(claim.accessModes, ['ReadWriteOnce']);
      assert.ok(claim.resources.requests.storage);
      const mount = container(objects).volumeMounts.find((m) => m.name === 'spool');
      assert.equal(mount.mountPath, '/var/lib/posthog-gateway/spool');
    });
  }));
}

// components/default-deny: the namespace-wide default deny, optional since
// the base governs only the gateway's own pods.
for (const overlay of overlays) {
  describe(`overlay ${overlay} with components/default-deny`, () => rendered(overlay, ['default-deny'], (objects) => {
    test('adds one policy selecting every pod of the namespace, allowing nothing', () => {
      const deny = one(objects, 'NetworkPolicy', 'default-deny-all');
      validateSchema(deny);
      assert.deepEqual(deny.spec.podSelector, {});
      assert.deepEqual([...deny.spec.policyTypes].sort(), ['Egress', 'Ingress']);
      assert.equal(deny.spec.ingress, undefined);
      assert.equal(deny.spec.egress, undefined);
    });

    test('leaves the gateway\'s own policies as they were', () => {
      const others = (list) => JSON.stringify(list.filter((o) => o.kind === 'NetworkPolicy' &&
        o.metadata.name !== 'default-deny-all'));
      assert.equal(others(objects), others(render(overlay)));
    });
  }));
}

// components/tls is for deployments without a mesh.
describe('overlay no-mesh with components/tls', () => rendered('no-mesh', ['tls'], (objects) => {
  const args = () => container(objects).args;

  test('the Deployment still matches its schema', () => {
    validateSchema(deployment(objects));
  });

  test('the gateway gets its certificate, key and client CA from the TLS Secret, mounted as a directory', () => {
    const volumes = deployment(objects).spec.template.spec.volumes;
    for (const flag of ['tls_cert_file', 'tls_key_file', 'tls_client_ca_file']) {
      const file = flagValue(args(), flag);
      assert.ok(file, `no --${flag}`);
      const mount = container(objects).volumeMounts.find((m) => m.mountPath === path.posix.dirname(file));
      assert.ok(mount, `nothing mounted above ${file}`);
      assert.equal(mount.subPath, undefined, 'a subPath mount never sees a renewal');
      assert.equal(mount.readOnly, true);
      const volume = volumes.find((v) => v.name === mount.name);
      assert.equal(volume.secret.secretName, 'posthog-gateway-tls');
    }
    assert.deepEqual(['tls.crt', 'tls.key', 'ca.crt'],
      ['tls_cert_file', 'tls_key_file', 'tls_client_ca_file'].map((f) => path.posix.basename(flagValue(args(), f))));
  });

  test('every probe uses the plaintext health port, which the container declares', () => {
    const healthPort = Number(flagValue(args(), 'tls_plaintext_health_port'));
    assert.ok(healthPort > 0);
    assert.ok(container(objects).ports.some((p) => p.containerPort === healthPort));
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      assert.equal(container(objects)[probe].grpc.port, healthPort, probe);
    }
  });

  test('no Service port claims h2c any more', () => {
    for (const service of objects.filter((o) => o.kind === 'Service')) {
      for (const port of service.spec.ports) {
        assert.notEqual(port.appProtocol, 'kubernetes.io/h2c', service.metadata.name);
      }
    }
  });
}));
