'use strict';
// Readers of a rendered overlay: the gateway's Deployment, container, config
// and the NetworkPolicy arithmetic the policy tests assert on.

const fs = require('node:fs');
const path = require('node:path');
const { byKind, flagValue, one, parseDuration, repoRoot, selectorMatches } = require('./k8s');

const kName = 'posthog-gateway';

// The gateway's workload: the Deployment, or the StatefulSet of
// components/capture-statefulset (same pod template).
function deployment(objects) {
  const found = objects.filter((o) => (o.kind === 'Deployment' || o.kind === 'StatefulSet') &&
    o.metadata.name === kName);
  if (found.length !== 1) throw new Error(`expected one Deployment or StatefulSet ${kName}, found ${found.length}`);
  return found[0];
}

function container(objects) {
  const containers = deployment(objects).spec.template.spec.containers;
  const found = containers.filter((c) => c.name === kName);
  if (found.length !== 1) throw new Error(`expected one container ${kName}`);
  return found[0];
}

function podLabels(objects) {
  return deployment(objects).spec.template.metadata.labels || {};
}

function podAnnotations(objects) {
  return deployment(objects).spec.template.metadata.annotations || {};
}

// The timings the container's flags set, in ms.
function shutdownTimings(objects) {
  const args = container(objects).args;
  const drain = flagValue(args, 'drain_delay');
  const grace = flagValue(args, 'shutdown_grace');
  if (drain === undefined || grace === undefined) {
    throw new Error('the container sets no --drain_delay or --shutdown_grace');
  }
  return { drainMs: parseDuration(drain), graceMs: parseDuration(grace) };
}

// The mounted path of --config, the ConfigMap behind it, and its parsed JSON.
function gatewayConfig(objects) {
  const configPath = flagValue(container(objects).args, 'config');
  if (!configPath) throw new Error('the container sets no --config');
  const mount = container(objects).volumeMounts
    .filter((m) => configPath.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) throw new Error(`no volume is mounted above ${configPath}`);
  const volume = deployment(objects).spec.template.spec.volumes.find((v) => v.name === mount.name);
  if (!volume || !volume.configMap) throw new Error(`${configPath} is not in a ConfigMap volume`);
  const key = path.posix.relative(mount.mountPath, configPath);
  const configMap = one(objects, 'ConfigMap', volume.configMap.name);
  const text = (configMap.data || {})[key];
  if (text === undefined) throw new Error(`ConfigMap ${configMap.metadata.name} has no ${key}`);
  return { configPath, mount, volume, configMap, json: JSON.parse(text) };
}

// Every key source of the config: [{alias, kind, source}].
function keySources(config) {
  const kinds = ['project_api_key', 'personal_api_key', 'feature_flags_secure_key'];
  const sources = [];
  for (const project of config.projects || []) {
    for (const kind of kinds) {
      if (project[kind] !== undefined) sources.push({ alias: project.alias, kind, source: project[kind] });
    }
  }
  return sources;
}

// The field names the gateway's config parser accepts: the union of the
// CheckKnownMembers lists in server/config/config.cc, which rejects any other
// field at start-up.
function knownConfigFields() {
  const text = fs.readFileSync(path.join(repoRoot, 'server', 'config', 'config.cc'), 'utf8');
  const fields = new Set();
  for (const match of text.matchAll(/CheckKnownMembers\(\s*\{([^}]*)\}/g)) {
    for (const name of match[1].matchAll(/"([a-z_]+)"/g)) fields.add(name[1]);
  }
  if (fields.size === 0) throw new Error('found no CheckKnownMembers lists in config.cc');
  return fields;
}

// The NetworkPolicies whose podSelector selects pods labelled `labels`.
function policiesFor(objects, labels, type) {
  return byKind(objects, 'NetworkPolicy').filter((p) => {
    const selector = p.spec.podSelector || {};
    const selects = Object.keys(selector.matchLabels || {}).length === 0 &&
      !(selector.matchExpressions || []).length
      ? true
      : selectorMatches(selector, labels);
    return selects && (p.spec.policyTypes || ['Ingress']).includes(type);
  });
}

function rulePortMatches(rule, port, protocol) {
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((p) => {
    if ((p.protocol || 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port !== 'number') throw new Error(`named NetworkPolicy port ${p.port} not supported here`);
    return p.endPort === undefined ? p.port === port : port >= p.port && port <= p.endPort;
  });
}

// Whether some policy selecting the pods admits traffic to or from `port`.
function allows(objects, labels, type, port, protocol = 'TCP') {
  const field = type === 'Ingress' ? 'ingress' : 'egress';
  return policiesFor(objects, labels, type)
    .some((p) => (p.spec[field] || []).some((rule) => rulePortMatches(rule, port, protocol)));
}

// The sources each ingress rule admitting `port` lets in: one entry per
// rule, the rule's `from` peers, or null for a rule with no `from` (any
// source).
function ingressSources(objects, labels, port, protocol = 'TCP') {
  return policiesFor(objects, labels, 'Ingress')
    .flatMap((p) => (p.spec.ingress || []).filter((rule) => rulePortMatches(rule, port, protocol)))
    .map((rule) => (rule.from === undefined || rule.from.length === 0 ? null : rule.from));
}

// The container port named `name`, as a number.
function containerPort(objects, name) {
  const found = (container(objects).ports || []).filter((p) => p.name === name);
  if (found.length !== 1) throw new Error(`expected one container port named ${name}, found ${found.length}`);
  return found[0].containerPort;
}

module.exports = {
  allows,
  containerPort,
  ingressSources,
  container,
  deployment,
  gatewayConfig,
  keySources,
  knownConfigFields,
  kName,
  podAnnotations,
  podLabels,
  shutdownTimings,
};
