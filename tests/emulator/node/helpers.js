// Starts bazel-bin/emulator/posthog_emulator on port 0 and talks to its
// admin endpoints. Used by the *.test.js conformance tests.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BINARY = process.env.POSTHOG_EMULATOR || path.join(ROOT, 'bazel-bin/emulator/posthog_emulator');
const SEED = path.join(ROOT, 'emulator/seed/demo.json');
const seed = JSON.parse(fs.readFileSync(SEED, 'utf8'));

const TOKEN = seed.projects[0].api_token;
const PERSONAL_KEY = seed.personal_api_keys[0].value;

// pollUntil calls fn until it returns a truthy value or the deadline passes.
async function pollUntil(fn, { timeoutMs = 5000, intervalMs = 10 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('pollUntil: deadline exceeded');
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function startEmulator(extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emulator-'));
  const portFile = path.join(dir, 'port');
  const child = spawn(BINARY, [`--seed=${SEED}`, '--port=0', `--port_file=${portFile}`, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const port = await pollUntil(() => {
    if (child.exitCode !== null) throw new Error(`emulator exited: ${stderr}`);
    try {
      return Number(fs.readFileSync(portFile, 'utf8').trim()) || null;
    } catch {
      return null;
    }
  });
  const host = `http://127.0.0.1:${port}`;
  return {
    host,
    async admin(pathname, body) {
      const res = await fetch(host + pathname, body === undefined ? {} : {
        method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' },
      });
      return res.json();
    },
    async api(pathname, key = PERSONAL_KEY) {
      const res = await fetch(host + pathname, { headers: { Authorization: `Bearer ${key}` } });
      return { status: res.status, body: await res.json() };
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startEmulator, pollUntil, TOKEN, PERSONAL_KEY, ROOT };
