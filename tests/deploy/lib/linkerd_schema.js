'use strict';
// Structural checks of the Linkerd policy resources the overlay uses. Linkerd
// publishes no npm models, so these are written from the CRDs'
// openAPIV3Schema (linkerd2 charts/linkerd-crds/templates/policy/): required
// fields, enums and types, and, unlike the generated models, a refusal of
// unknown keys, which is how a misspelt field would otherwise slip through.

const net = require('node:net');

class SchemaError extends Error {}

function fail(where, message) {
  throw new SchemaError(`${where}: ${message}`);
}

function checkObject(value, where, { required = [], optional = [] }) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(where, 'must be an object');
  for (const key of required) if (!(key in value)) fail(where, `missing ${key}`);
  const known = new Set([...required, ...optional]);
  for (const key of Object.keys(value)) if (!known.has(key)) fail(where, `unknown field ${key}`);
}

function checkString(value, where, pattern) {
  if (typeof value !== 'string' || value.length === 0) fail(where, 'must be a non-empty string');
  if (pattern && !pattern.test(value)) fail(where, `"${value}" does not match ${pattern}`);
}

function checkArray(value, where, minItems = 1) {
  if (!Array.isArray(value) || value.length < minItems) fail(where, `must be an array of at least ${minItems}`);
}

const kGroup = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const kKind = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

function checkRef(ref, where, { nameRequired = true, namespace = false } = {}) {
  checkObject(ref, where, {
    required: nameRequired ? ['kind', 'name'] : ['kind'],
    optional: ['group', ...(nameRequired ? [] : ['name']), ...(namespace ? ['namespace'] : [])],
  });
  if (ref.group !== undefined && !kGroup.test(ref.group)) fail(`${where}.group`, 'invalid group');
  checkString(ref.kind, `${where}.kind`, kKind);
  if (ref.name !== undefined) checkString(ref.name, `${where}.name`);
}

function checkLabelSelector(selector, where) {
  checkObject(selector, where, { optional: ['matchLabels', 'matchExpressions'] });
  for (const [k, v] of Object.entries(selector.matchLabels || {})) {
    if (typeof v !== 'string') fail(`${where}.matchLabels.${k}`, 'must be a string');
  }
}

function checkMetadata(object) {
  checkObject(object, object.kind, { required: ['apiVersion', 'kind', 'metadata', 'spec'] });
  checkObject(object.metadata, 'metadata', { required: ['name'], optional: ['namespace', 'labels', 'annotations'] });
}

const kinds = {
  'v1beta3/Server'(spec) {
    checkObject(spec, 'spec', {
      required: ['port'],
      optional: ['podSelector', 'externalWorkloadSelector', 'proxyProtocol', 'accessPolicy'],
    });
    if (('podSelector' in spec) === ('externalWorkloadSelector' in spec)) {
      fail('spec', 'needs exactly one of podSelector and externalWorkloadSelector');
    }
    if (spec.podSelector) checkLabelSelector(spec.podSelector, 'spec.podSelector');
    if (!(Number.isInteger(spec.port) && spec.port > 0 && spec.port < 65536) && typeof spec.port !== 'string') {
      fail('spec.port', 'must be a port number or name');
    }
    const protocols = ['unknown', 'HTTP/1', 'HTTP/2', 'gRPC', 'opaque', 'TLS'];
    if (spec.proxyProtocol !== undefined && !protocols.includes(spec.proxyProtocol)) {
      fail('spec.proxyProtocol', `must be one of ${protocols.join(', ')}`);
    }
    const policies = ['deny', 'audit', 'all-unauthenticated', 'all-authenticated',
      'cluster-unauthenticated', 'cluster-authenticated'];
    if (spec.accessPolicy !== undefined && !policies.includes(spec.accessPolicy)) {
      fail('spec.accessPolicy', `must be one of ${policies.join(', ')}`);
    }
  },
  'v1beta3/HTTPRoute'(spec) {
    checkObject(spec, 'spec', { required: ['parentRefs'], optional: ['hostnames', 'rules'] });
    checkArray(spec.parentRefs, 'spec.parentRefs');
    spec.parentRefs.forEach((ref, i) => {
      checkObject(ref, `spec.parentRefs[${i}]`, {
        required: ['name'], optional: ['group', 'kind', 'namespace', 'port', 'sectionName'],
      });
    });
    (spec.rules || []).forEach((rule, i) => {
      checkObject(rule, `spec.rules[${i}]`, { optional: ['matches', 'filters', 'backendRefs', 'timeouts'] });
      (rule.matches || []).forEach((m, j) => {
        const where = `spec.rules[${i}].matches[${j}]`;
        checkObject(m, where, { optional: ['path', 'headers', 'queryParams', 'method'] });
        if (m.path) {
          checkObject(m.path, `${where}.path`, { optional: ['type', 'value'] });
          const types = ['Exact', 'PathPrefix', 'RegularExpression'];
          if (m.path.type !== undefined && !types.includes(m.path.type)) fail(`${where}.path.type`, 'invalid');
          checkString(m.path.value, `${where}.path.value`, /^\//);
        }
        const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
        if (m.method !== undefined && !methods.includes(m.method)) fail(`${where}.method`, 'invalid');
      });
    });
  },
  'v1alpha1/AuthorizationPolicy'(spec) {
    checkObject(spec, 'spec', { required: ['targetRef', 'requiredAuthenticationRefs'] });
    checkRef(spec.targetRef, 'spec.targetRef');
    if (!Array.isArray(spec.requiredAuthenticationRefs)) fail('spec.requiredAuthenticationRefs', 'must be an array');
    spec.requiredAuthenticationRefs.forEach((ref, i) => {
      checkRef(ref, `spec.requiredAuthenticationRefs[${i}]`, { namespace: true });
    });
  },
  'v1alpha1/MeshTLSAuthentication'(spec) {
    checkObject(spec, 'spec', { optional: ['identities', 'identityRefs'] });
    if (('identities' in spec) === ('identityRefs' in spec)) {
      fail('spec', 'needs exactly one of identities and identityRefs');
    }
    if (spec.identities) {
      checkArray(spec.identities, 'spec.identities');
      spec.identities.forEach((id, i) => checkString(id, `spec.identities[${i}]`));
    } else {
      checkArray(spec.identityRefs, 'spec.identityRefs');
      spec.identityRefs.forEach((ref, i) => {
        checkRef(ref, `spec.identityRefs[${i}]`, { nameRequired: false, namespace: true });
      });
    }
  },
  'v1alpha1/NetworkAuthentication'(spec) {
    checkObject(spec, 'spec', { required: ['networks'] });
    checkArray(spec.networks, 'spec.networks');
    spec.networks.forEach((network, i) => {
      const where = `spec.networks[${i}]`;
      checkObject(network, where, { required: ['cidr'], optional: ['except'] });
      for (const cidr of [network.cidr, ...(network.except || [])]) {
        const [address, bits, extra] = String(cidr).split('/');
        const family = net.isIP(address);
        const max = family === 4 ? 32 : 128;
        if (family === 0 || extra !== undefined || bits === undefined ||
            !/^\d+$/.test(bits) || Number(bits) > max) {
          fail(where, `"${cidr}" is not a CIDR`);
        }
      }
    });
  },
};

// validate throws a SchemaError when `object` (a policy.linkerd.io resource)
// does not match the CRD version the overlay uses.
function validate(object) {
  const version = object.apiVersion.split('/')[1];
  const check = kinds[`${version}/${object.kind}`];
  if (!check) throw new SchemaError(`no schema for ${object.apiVersion} ${object.kind}`);
  checkMetadata(object);
  check(object.spec);
}

module.exports = { validate, SchemaError };
