'use strict';
// The official posthog-node SDK sending the same events as capture_load to
// the same emulator, for the side-by-side figure in run.sh.
//
//   node bench/capture/posthog_node_load.js EMULATOR_URL TOKEN EVENTS
//
// Prints `sdk_events_per_second=N`: events the emulator stored divided by
// the time from the first capture() until the emulator holds them all.

const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const { PostHog } = require(path.join(root, 'tools/node_modules/posthog-node'));

async function storedCount(url) {
  const response = await fetch(`${url}/_emulator/health`);
  return (await response.json()).events;
}

async function main() {
  const [url, token, eventsText] = process.argv.slice(2);
  const events = Number(eventsText);
  const before = await storedCount(url);
  const client = new PostHog(token, {
    host: url,
    flushAt: 100,
    flushInterval: 1000,
    maxQueueSize: events + 1,
    maxBatchSize: 100,
  });
  const start = process.hrtime.bigint();
  for (let n = 0; n < events; n++) {
    client.capture({
      distinctId: `user-${n % 10000}`,
      event: 'bench event',
      properties: { plan: 'pro', amount: n % 1000, $current_url: 'https://example.com/checkout' },
    });
    // Let the SDK's flushes run, as an application's event loop would.
    if (n % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
  }
  await client.shutdown(120000);
  for (;;) {
    const stored = (await storedCount(url)) - before;
    if (stored >= events) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`sdk_events=${events}`);
  console.log(`sdk_seconds=${seconds.toFixed(3)}`);
  console.log(`sdk_events_per_second=${Math.round(events / seconds)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
