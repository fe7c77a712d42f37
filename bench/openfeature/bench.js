'use strict';
// One caller's latency through OpenFeature, next to the gateway's own API and
// posthog-node's in-process evaluation, in one run (bench/openfeature/run.sh
// starts the stack and passes its addresses). Per round, interleaved so that
// a slow spell of the shared machine falls on every column:
// - flagd provider: getBooleanValue of one flag (ResolveBoolean) through
//   @openfeature/server-sdk + @openfeature/flagd-provider;
// - ResolveAll: the 50 flags, flagd's RPC called with @grpc/grpc-js;
// - EvaluateFlag (one flag) and EvaluateFlags (the 50 flags), posthog.v1;
// - posthog-node 5.70 in-process: getFeatureFlag (one flag) and getAllFlags
//   (the 50), onlyEvaluateLocally.
// Calls are sequential (one caller). Prints p50/p99 in µs; asserts nothing.
// Environment: GATEWAY_TARGET, EMULATOR_URL, PHC, PHS, BENCH_FLAGS_DIR,
// CALLS (per measure and round, default 2000), ROUNDS (default 3).

const path = require('node:path');
const fs = require('node:fs');

const repoRoot = path.resolve(__dirname, '..', '..');
const tools = path.join(repoRoot, 'tools/node_modules');
const grpc = require(path.join(tools, '@grpc/grpc-js'));
const protoLoader = require(path.join(tools, '@grpc/proto-loader'));
const { PostHog } = require(path.join(tools, 'posthog-node'));
const { OpenFeature } = require(path.join(tools, '@openfeature/server-sdk'));
const { FlagdProvider } = require(path.join(tools, '@openfeature/flagd-provider'));

const calls = Number(process.env.CALLS || 2000);
const rounds = Number(process.env.ROUNDS || 3);
const inputs = JSON.parse(fs.readFileSync(path.join(process.env.BENCH_FLAGS_DIR, 'inputs.json'),
  'utf8'));
const person = inputs.person_properties;
const oneFlag = inputs.flag_keys[0];

function load(file, pkg) {
  const definition = protoLoader.loadSync(file, {
    includeDirs: [path.join(repoRoot, 'proto'), '/usr/include'],
    keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
  });
  return pkg.split('.').reduce((o, k) => o[k], grpc.loadPackageDefinition(definition));
}

function toStruct(object) {
  const fields = {};
  for (const [key, value] of Object.entries(object)) {
    fields[key] = typeof value === 'number' ? { numberValue: value } : { stringValue: String(value) };
  }
  return { fields };
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => client[method](request,
    (error, response) => (error ? reject(error) : resolve(response))));
}

function percentiles(times) {
  times.sort((a, b) => a - b);
  const at = (p) => times[Math.min(times.length - 1, Math.floor(times.length * p))];
  return { p50: at(0.5), p99: at(0.99) };
}

async function time(work) {
  for (let i = 0; i < Math.min(200, calls); i++) await work(i);
  const times = [];
  for (let i = 0; i < calls; i++) {
    const start = process.hrtime.bigint();
    await work(i);
    times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return times;
}

async function main() {
  const target = process.env.GATEWAY_TARGET;
  const [host, port] = target.split(':');
  const FlagService = load('posthog/v1/flag.proto', 'posthog.v1.FlagService');
  const flags = new FlagService(target, grpc.credentials.createInsecure());
  const FlagdService = load('flagd/evaluation/v2/evaluation.proto', 'flagd.evaluation.v2.Service');
  const flagd = new FlagdService(target, grpc.credentials.createInsecure());
  await OpenFeature.setProviderAndWait(new FlagdProvider({ resolverType: 'rpc', host,
    port: Number(port), tls: false, deadlineMs: 5000 }));
  const of = OpenFeature.getClient();
  const posthog = new PostHog(process.env.PHC, { host: process.env.EMULATOR_URL,
    personalApiKey: process.env.PHS, featureFlagsPollingInterval: 600000, flushAt: 1000000,
    flushInterval: 0, fetchRetryCount: 0, disableGeoip: true });
  await posthog.waitForLocalEvaluationReady(30000);

  const id = (i) => `distinct_id_${i % 1000}`;
  const personStruct = toStruct(person);
  const measures = {
    'flagd provider getBooleanValue (ResolveBoolean), 1 flag': (i) =>
      of.getBooleanValue(oneFlag, false, { targetingKey: id(i), ...person }),
    'EvaluateFlag, 1 flag': (i) => unary(flags, 'EvaluateFlag', { key: oneFlag,
      context: { distinct_id: id(i), person_properties: personStruct } }),
    'posthog-node getFeatureFlag in-process, 1 flag': (i) => posthog.getFeatureFlag(oneFlag, id(i),
      { personProperties: person, onlyEvaluateLocally: true, sendFeatureFlagEvents: false }),
    'flagd ResolveAll (grpc-js), 50 flags': (i) => unary(flagd, 'ResolveAll',
      { context: toStruct({ targetingKey: id(i), ...person }) }),
    'EvaluateFlags, 50 flags': (i) => unary(flags, 'EvaluateFlags',
      { keys: [], context: { distinct_id: id(i), person_properties: personStruct } }),
    'posthog-node getAllFlags in-process, 50 flags': (i) => posthog.getAllFlags(id(i),
      { personProperties: person, onlyEvaluateLocally: true }),
  };
  const all = Object.fromEntries(Object.keys(measures).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, work] of Object.entries(measures)) all[name].push(...await time(work));
  }
  console.log(`one caller, ${rounds} rounds x ${calls} calls per measure (after 200 warm-up calls)`);
  console.log('| measure | p50 µs | p99 µs |');
  console.log('|---|---:|---:|');
  for (const [name, times] of Object.entries(all)) {
    const { p50, p99 } = percentiles(times);
    console.log(`| ${name} | ${p50.toFixed(0)} | ${p99.toFixed(0)} |`);
  }
  await OpenFeature.close();
  await posthog.shutdown();
  flags.close();
  flagd.close();
}

main().catch((error) => { console.error(error); process.exit(1); });
