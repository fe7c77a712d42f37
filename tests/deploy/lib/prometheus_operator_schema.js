'use strict';
// Structural checks of the Prometheus Operator resources components/monitoring
// uses (monitoring.coreos.com/v1 PodMonitor and PrometheusRule). The operator
// publishes no npm models, so these follow the CRDs' openAPIV3Schema
// (prometheus-operator example/prometheus-operator-crd): required fields,
// types and, unlike generated models, a refusal of keys this project does not
// use, which is how a misspelt field (`podMetricEndpoints`) would slip
// through. The rule expressions themselves are checked by promtool.

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

function checkStringMap(value, where) {
  checkObject(value, where, { optional: Object.keys(value || {}) });
  for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') fail(`${where}.${k}`, 'must be a string');
}

// Prometheus durations ("30s", "1m", "1h30m").
const kDuration = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;

const kinds = {
  PodMonitor(spec) {
    checkObject(spec, 'spec', {
      required: ['selector'],
      optional: ['podMetricsEndpoints', 'namespaceSelector', 'jobLabel', 'podTargetLabels'],
    });
    checkObject(spec.selector, 'spec.selector', { optional: ['matchLabels', 'matchExpressions'] });
    checkStringMap(spec.selector.matchLabels || {}, 'spec.selector.matchLabels');
    checkArray(spec.podMetricsEndpoints, 'spec.podMetricsEndpoints');
    spec.podMetricsEndpoints.forEach((endpoint, i) => {
      const where = `spec.podMetricsEndpoints[${i}]`;
      checkObject(endpoint, where, {
        optional: ['port', 'path', 'scheme', 'interval', 'scrapeTimeout', 'honorLabels', 'relabelings',
          'metricRelabelings'],
      });
      checkString(endpoint.port, `${where}.port`, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (endpoint.path !== undefined) checkString(endpoint.path, `${where}.path`, /^\//);
      if (endpoint.scheme !== undefined && !['http', 'https'].includes(endpoint.scheme)) {
        fail(`${where}.scheme`, 'must be http or https');
      }
      for (const field of ['interval', 'scrapeTimeout']) {
        if (endpoint[field] !== undefined) checkString(endpoint[field], `${where}.${field}`, kDuration);
      }
    });
  },
  PrometheusRule(spec) {
    checkObject(spec, 'spec', { required: ['groups'] });
    checkArray(spec.groups, 'spec.groups');
    const names = new Set();
    spec.groups.forEach((group, g) => {
      const where = `spec.groups[${g}]`;
      checkObject(group, where, { required: ['name', 'rules'], optional: ['interval', 'limit'] });
      checkString(group.name, `${where}.name`);
      if (names.has(group.name)) fail(`${where}.name`, 'group names must be unique');
      names.add(group.name);
      checkArray(group.rules, `${where}.rules`);
      group.rules.forEach((rule, r) => {
        const at = `${where}.rules[${r}]`;
        checkObject(rule, at, { required: ['expr'], optional: ['alert', 'record', 'for', 'labels', 'annotations'] });
        if ((rule.alert === undefined) === (rule.record === undefined)) fail(at, 'exactly one of alert and record');
        checkString(rule.expr, `${at}.expr`);
        if (rule.for !== undefined) checkString(rule.for, `${at}.for`, kDuration);
        if (rule.labels !== undefined) checkStringMap(rule.labels, `${at}.labels`);
        if (rule.annotations !== undefined) checkStringMap(rule.annotations, `${at}.annotations`);
      });
    });
  },
};

function validate(object) {
  const { apiVersion, kind } = object;
  if (apiVersion !== 'monitoring.coreos.com/v1' || !kinds[kind]) {
    throw new SchemaError(`no schema for ${apiVersion} ${kind}`);
  }
  checkObject(object, kind, { required: ['apiVersion', 'kind', 'metadata', 'spec'] });
  checkObject(object.metadata, 'metadata', { required: ['name'], optional: ['namespace', 'labels', 'annotations'] });
  kinds[kind](object.spec);
}

module.exports = { SchemaError, validate };
