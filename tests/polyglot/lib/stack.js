'use strict';
// Starting and stopping the real gateway + emulator from Node tests, through
// the harness's command mode (tests/harness/stack.py --env_file=...). Shared
// by every Node polyglot suite.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const HARNESS = path.join(repoRoot, 'tests/harness/stack.py');
const START_TIMEOUT_MS = 60000;
const STOP_TIMEOUT_MS = 30000;
const POLL_INTERVAL_MS = 50;

function parseEnv(text) {
  const env = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) env[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return env;
}

// Starts the harness and resolves with its environment file's variables once
// both processes serve; rejects if it exits first or the deadline passes.
// `extraArgs` go to the harness (e.g. `--seed=PATH`). The gateway runs in
// development mode (no authorization) unless they pass
// `--extra_config={"authorization": {...}}` with real callers and grants.
function startStack(envFile, extraArgs = []) {
  const child = spawn('/usr/bin/python3', [HARNESS, `--env_file=${envFile}`, ...extraArgs], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const ready = new Promise((resolve, reject) => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let timer = null;
    const onExit = (code, signal) => {
      clearInterval(timer);
      reject(new Error(`harness exited (${code ?? signal}) before serving:\n${stderr}`));
    };
    child.once('exit', onExit);
    timer = setInterval(() => {
      if (fs.existsSync(envFile)) {
        clearInterval(timer);
        child.off('exit', onExit);
        resolve(parseEnv(fs.readFileSync(envFile, 'utf8')));
      } else if (Date.now() > deadline) {
        clearInterval(timer);
        child.off('exit', onExit);
        child.kill('SIGTERM');
        reject(new Error(`harness did not serve within ${START_TIMEOUT_MS} ms:\n${stderr}`));
      }
    }, POLL_INTERVAL_MS);
  });
  return { child, ready, stderr: () => stderr };
}

// SIGTERM, then SIGKILL if the harness has not exited within the bound.
function stopStack(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

module.exports = { repoRoot, parseEnv, startStack, stopStack };
