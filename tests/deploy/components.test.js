'use strict';
// The optional Kustomize components, added to each overlay the way a user's
// own overlay would add them.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test } = require('node:test');
const { deployDir, one, overlays, rendered, validateSchema } = require('./lib/k8s');
const { container, deployment, gatewayConfig, keySources } = require('./lib/policy');

test('every component in deploy/kubernetes/components is tested', () => {
  const found = fs.readdirSync(path.join(deployDir, 'components')).sort();
  assert.deepEqual(found, ['example-secret', 'spool-ephemeral-volume']);
});

for (const overlay of overlays) {
  describe(`overlay ${overlay} with components/example-secret`, () => rendered(overlay, ['example-secret'], (objects) => {
    test('the Secret matches its schema', () => {
      validateSchema(one(objects, 'Secret'));
    });

    test('holds placeholders only, never a real key', () => {
      const secret = one(objects, 'Secret');
      assert.equal(secret.data, undefined, 'base64 data could hide a real key');
      for (const [name, value] of Object.entries(secret.stringData)) {
        assert.match(value, /^ph[cxs]_REPLACE_ME$/, name);
      }
    });

    test('provides exactly the key files the config reads, in the volume that mounts them', () => {
      const secret = one(objects, 'Secret');
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
