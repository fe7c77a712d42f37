'use strict';
// components/monitoring: the Prometheus Operator's PodMonitor and
// PrometheusRule, on every overlay that can be scraped directly. The rule
// expressions are checked and each alert is run against sample series with
// promtool (Debian's `prometheus`); that every metric they name is one the
// gateway exposes is checked against a running gateway by
// tests/polyglot/test_metrics_python.py.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, test } = require('node:test');
const YAML = require('yaml');
const { flagValue, one, rendered, selectorMatches, validateSchema } = require('./lib/k8s');
const { allows, container, containerPort, deployment, podLabels } = require('./lib/policy');

// The alerts issue 17 asks for, by what they watch.
const kAlerts = [
  'PostHogGatewaySpoolNearCapacity',
  'PostHogGatewayFlagDefinitionsStale',
  'PostHogGatewayUpstreamRateLimited',
  'PostHogGatewayUpstreamErrors',
  'PostHogGatewayDeadLetters',
  'PostHogGatewayDrainTooLong',
];

function promtool(args, cwd) {
  try {
    return execFileSync('promtool', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    throw new Error(`promtool ${args.join(' ')} failed:\n${error.stdout}${error.stderr}`);
  }
}

// Istio's overlay is scraped through the agent's merged metrics instead
// (see the component's comment).
for (const overlay of ['no-mesh', 'linkerd']) {
  describe(`overlay ${overlay} with components/monitoring`, () => rendered(overlay, ['monitoring'], (objects) => {
    test('the PodMonitor and PrometheusRule match their schemas', () => {
      validateSchema(one(objects, 'PodMonitor'));
      validateSchema(one(objects, 'PrometheusRule'));
    });

    test('the PodMonitor selects the gateway\'s pods and scrapes the admin port\'s /metrics', () => {
      const monitor = one(objects, 'PodMonitor');
      assert.ok(selectorMatches(monitor.spec.selector, podLabels(objects)));
      assert.deepEqual(monitor.spec.podMetricsEndpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']]);
      assert.equal(String(containerPort(objects, 'metrics')), flagValue(container(objects).args, 'admin_port'));
      // The scrape arrives from the monitoring namespace, which the
      // NetworkPolicy admits on that port.
      assert.ok(allows(objects, podLabels(objects), 'Ingress', containerPort(objects, 'metrics')));
    });

    test('the scrape interval sees a drain before SIGKILL', () => {
      const [endpoint] = one(objects, 'PodMonitor').spec.podMetricsEndpoints;
      const seconds = Number(/^(\d+)s$/.exec(endpoint.interval)[1]);
      const grace = deployment(objects).spec.template.spec.terminationGracePeriodSeconds;
      assert.ok(seconds * 2 <= grace, `interval ${endpoint.interval} vs grace ${grace} s`);
    });

    test('the PrometheusRule has each alert the issue asks for, with a severity and a summary', () => {
      const rules = one(objects, 'PrometheusRule').spec.groups.flatMap((g) => g.rules);
      assert.deepEqual(rules.map((r) => r.alert), kAlerts);
      for (const rule of rules) {
        assert.match(rule.labels.severity, /^(warning|critical)$/, rule.alert);
        assert.ok(rule.annotations.summary && rule.annotations.description, rule.alert);
      }
    });

    test('promtool accepts the rules, and each alert fires on its sample series and only there', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-rules-'));
      try {
        const { groups } = one(objects, 'PrometheusRule').spec;
        fs.writeFileSync(path.join(dir, 'rules.yaml'), YAML.stringify({ groups }));
        fs.copyFileSync(path.join(__dirname, 'prometheus', 'rules_test.yaml'), path.join(dir, 'rules_test.yaml'));
        assert.match(promtool(['check', 'rules', 'rules.yaml'], dir), /SUCCESS: 6 rules found/);
        assert.match(promtool(['test', 'rules', 'rules_test.yaml'], dir), /SUCCESS/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    test('every alert has a unit test', () => {
      const tests = YAML.parse(fs.readFileSync(path.join(__dirname, 'prometheus', 'rules_test.yaml'), 'utf8'));
      const tested = new Set(tests.tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
      assert.deepEqual([...tested].sort(), [...kAlerts].sort());
    });
  }));
}
