'use strict';
// posthog-node's side of the flag benchmarks, against the emulator serving
// the flags of bench/flags/make_seed.py:
// - local evaluation: µs per getFeatureFlag for the four benchmark flags,
//   timed in-process (onlyEvaluateLocally, no events);
// - getAllFlags for the 50 flags: p50/p99 locally and asking PostHog (the
//   emulator's /flags) remotely;
// - the values it computes for 200 distinct ids, for bench/flags/run.sh to
//   compare with the gateway's.
// Prints one JSON object. Environment: EMULATOR_URL, PHC, PHS,
// BENCH_FLAGS_DIR; with ALL_LOCAL_SECONDS=N it only times getAllFlags
// locally, for N seconds after its warm-up (bench/flags/run.sh alternates
// that with the gateway's one-caller runs).

const path = require('node:path');
const fs = require('node:fs');

const repoRoot = path.resolve(__dirname, '..', '..');
const { PostHog } = require(path.join(repoRoot, 'tools/node_modules/posthog-node'));

const dir = process.env.BENCH_FLAGS_DIR || '/tmp/flagbench';
const inputs = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json'), 'utf8'));
const personProperties = inputs.person_properties;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// getAllFlags for the 50 flags, in-process: 500 warm-up calls, then 2,500
// calls or `seconds` of them. Returns p50/p99 in µs.
async function timeAllFlagsLocally(client, options, seconds) {
  for (let i = 0; i < 500; i++) await client.getAllFlags(`distinct_id_${i % 1000}`, options);
  const times = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (let i = 0; seconds > 0 ? process.hrtime.bigint() < end : i < 2500; i++) {
    const start = process.hrtime.bigint();
    await client.getAllFlags(`distinct_id_${i % 1000}`, options);
    times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), calls: times.length };
}

async function main() {
  const local = new PostHog(process.env.PHC, {
    host: process.env.EMULATOR_URL, personalApiKey: process.env.PHS,
    featureFlagsPollingInterval: 600000, flushAt: 1000000, flushInterval: 0,
    fetchRetryCount: 0, disableGeoip: true,
  });
  await local.waitForLocalEvaluationReady(10000);
  const options = { personProperties, onlyEvaluateLocally: true, sendFeatureFlagEvents: false };
  const seconds = Number(process.env.ALL_LOCAL_SECONDS || 0);
  if (seconds > 0) {
    const timed = await timeAllFlagsLocally(local, options, seconds);
    await local.shutdown();
    process.stdout.write(JSON.stringify({ all_flags_local_us: timed }) + '\n');
    return;
  }
  const result = { local_ns_per_eval: {}, values: {} };

  for (const key of ['bench-rollout', 'bench-multivariate', 'bench-ten-properties',
    'bench-nested-cohort']) {
    for (let i = 0; i < 2000; i++) await local.getFeatureFlag(key, `distinct_id_${i % 1000}`, options);
    const iterations = 20000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      await local.getFeatureFlag(key, `distinct_id_${i % 1000}`, options);
    }
    result.local_ns_per_eval[key] = Number(process.hrtime.bigint() - start) / iterations;
  }

  result.all_flags_local_us = await timeAllFlagsLocally(local, options, 0);

  // Values for the conformance comparison.
  for (let i = 0; i < 200; i++) {
    result.values[`distinct_id_${i}`] = await local.getAllFlags(`distinct_id_${i}`, options);
  }
  await local.shutdown();

  // getAllFlags asking PostHog (the emulator) remotely.
  const remote = new PostHog(process.env.PHC, {
    host: process.env.EMULATOR_URL, flushAt: 1000000, flushInterval: 0, fetchRetryCount: 0,
    disableGeoip: true,
  });
  const allRemote = [];
  for (let i = 0; i < 600; i++) {
    const start = process.hrtime.bigint();
    await remote.getAllFlags(`distinct_id_${i % 1000}`,
      { personProperties, sendFeatureFlagEvents: false });
    if (i >= 100) allRemote.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  allRemote.sort((a, b) => a - b);
  result.all_flags_remote_us = { p50: percentile(allRemote, 0.5), p99: percentile(allRemote, 0.99) };
  await remote.shutdown();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
