'use strict';
// Rendering, schema validation and small readers shared by the deploy tests.
//
// Everything here is offline: `kubectl kustomize` renders without an API
// server, and the schemas come from the pinned npm models (Kubernetes, Istio)
// or, for Linkerd's policy CRDs and the Prometheus Operator's that have no
// published models, from the hand-written structural checks in
// linkerd_schema.js and prometheus_operator_schema.js.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const YAML = require('yaml');

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const deployDir = path.join(repoRoot, 'deploy', 'kubernetes');
const protoDir = path.join(repoRoot, 'proto');

// Every overlay the tests render, by name.
const overlays = ['no-mesh', 'istio', 'linkerd'];

const renderCache = new Map();

// kustomize renders `dir` (a kustomization directory) and returns its
// multi-document YAML as text.
function kustomize(dir) {
  return execFileSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 16 * 1024 * 1024,
  });
}

// parseObjects parses multi-document YAML into plain objects, failing on any
// YAML error or warning rather than guessing.
function parseObjects(text) {
  const docs = YAML.parseAllDocuments(text);
  const objects = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors[0].message}`);
    if (doc.warnings.length > 0) throw new Error(`YAML warning: ${doc.warnings[0].message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value);
  }
  return objects;
}

// render returns the objects of overlay `name` (a folder of
// deploy/kubernetes/overlays), optionally with Kustomize components from
// deploy/kubernetes/components added by a throwaway kustomization (the way a
// user's own overlay would add them).
function render(name, components = []) {
  const key = [name, ...components].join('+');
  if (renderCache.has(key)) return renderCache.get(key);
  const overlayDir = path.join(deployDir, 'overlays', name);
  let objects;
  if (components.length === 0) {
    objects = parseObjects(kustomize(overlayDir));
  } else {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-test-'));
    try {
      // Kustomize accepts only relative paths to other kustomizations.
      const rel = (p) => path.relative(tmp, p);
      const kustomization = {
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        resources: [rel(overlayDir)],
        components: components.map((c) => rel(path.join(deployDir, 'components', c))),
      };
      fs.writeFileSync(path.join(tmp, 'kustomization.yaml'), YAML.stringify(kustomization));
      objects = parseObjects(kustomize(tmp));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  renderCache.set(key, objects);
  return objects;
}

// modelFor returns the kubernetes-models class validating apiVersion/kind, or
// null when there is none (Linkerd).
function modelFor(apiVersion, kind) {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  let modulePath;
  if (group.endsWith('.istio.io')) {
    modulePath = `@kubernetes-models/istio/${group}/${version}/${kind}`;
  } else if (group === '') {
    modulePath = `kubernetes-models/${version}/${kind}`;
  } else if (!group.includes('.') || group.endsWith('.k8s.io')) {
    modulePath = `kubernetes-models/${group}/${version}/${kind}`;
  } else {
    return null;
  }
  try {
    return require(modulePath)[kind];
  } catch (error) {
    if (error.code === 'MODULE_NOT_FOUND') {
      throw new Error(`no schema for ${apiVersion} ${kind} (${modulePath})`);
    }
    throw error;
  }
}

// validateSchema throws when `object` does not match its schema. Objects of
// a group with neither a model nor a hand-written check are refused.
function validateSchema(object) {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    throw new Error('object without apiVersion or kind');
  }
  const Model = modelFor(apiVersion, kind);
  if (Model !== null) {
    new Model(object).validate();
    return;
  }
  if (apiVersion.startsWith('policy.linkerd.io/')) {
    require('./linkerd_schema').validate(object);
    return;
  }
  if (apiVersion.startsWith('monitoring.coreos.com/')) {
    require('./prometheus_operator_schema').validate(object);
    return;
  }
  throw new Error(`no schema for ${apiVersion} ${kind}`);
}

function byKind(objects, kind) {
  return objects.filter((o) => o.kind === kind);
}

function one(objects, kind, name) {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  }
  return found[0];
}

// parseDuration reads a Go/Abseil duration ("5s", "1m30s", "250ms") in ms.
function parseDuration(text) {
  const units = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, ns: 1e-6 };
  const re = /(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  let match;
  while ((match = re.exec(text)) !== null) {
    total += parseFloat(match[1]) * units[match[2]];
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) throw new Error(`not a duration: ${text}`);
  return total;
}

// parseQuantity reads a Kubernetes resource quantity ("250m", "1", "512Mi").
function parseQuantity(value) {
  const text = String(value);
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(text);
  if (!match) throw new Error(`not a quantity: ${text}`);
  const factors = {
    undefined: 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
  };
  return parseFloat(match[1]) * factors[match[2]];
}

// flagValue returns the value of `--name=value` in args, or undefined.
function flagValue(args, name) {
  const prefix = `--${name}=`;
  const found = (args || []).filter((a) => a.startsWith(prefix));
  if (found.length > 1) throw new Error(`--${name} given ${found.length} times`);
  return found.length === 1 ? found[0].slice(prefix.length) : undefined;
}

// selectorMatches is whether a LabelSelector's matchLabels all hold in
// `labels` (matchExpressions are not used by these manifests and refused).
function selectorMatches(selector, labels) {
  if (!selector) return false;
  if (selector.matchExpressions && selector.matchExpressions.length > 0) {
    throw new Error('matchExpressions are not supported by these tests');
  }
  return Object.entries(selector.matchLabels || {}).every(([k, v]) => labels[k] === v);
}

// The gRPC methods of the posthog.v1 API, from the .proto files:
// [{path: '/posthog.v1.FlagService/ListFlags', service, method, serverStreaming}].
function apiMethods() {
  const protoLoader = require('@grpc/proto-loader');
  const files = fs.readdirSync(path.join(protoDir, 'posthog', 'v1'))
    .filter((f) => f.endsWith('.proto'))
    .map((f) => `posthog/v1/${f}`);
  const definition = protoLoader.loadSync(files, { includeDirs: [protoDir] });
  const methods = [];
  for (const [name, value] of Object.entries(definition)) {
    if (!name.startsWith('posthog.v1.') || typeof value !== 'object' || value.format) continue;
    for (const method of Object.values(value)) {
      if (!method || typeof method.path !== 'string') continue;
      const [, service, rpc] = method.path.split('/');
      methods.push({ path: method.path, service, method: rpc, serverStreaming: method.responseStream });
    }
  }
  return methods;
}

// rendered registers a test that the overlay renders, and runs `body` with
// its objects when it does; a kustomize error then shows as one failed test
// instead of a suite that never started.
function rendered(name, components, body) {
  const { test } = require('node:test');
  let objects;
  let error;
  try {
    objects = render(name, components);
  } catch (e) {
    error = e;
  }
  test('renders with kubectl kustomize', () => {
    if (error) throw error;
  });
  if (objects) body(objects);
}

module.exports = {
  apiMethods,
  byKind,
  deployDir,
  flagValue,
  one,
  overlays,
  parseDuration,
  parseObjects,
  parseQuantity,
  protoDir,
  render,
  rendered,
  repoRoot,
  selectorMatches,
  validateSchema,
};
