'use strict';
// deploy/image/Dockerfile installs exactly the Debian packages whose shared
// libraries the gateway binary links (plus the CA bundle): a missing package
// would make the container exit at start-up, and this catches it without
// building the image (tests/image/run.sh builds and runs it under podman). Reads the binary
// built by `bazel build //server:posthog_gateway` (tests/run.sh builds it
// first; POSTHOG_GATEWAY_BAZEL_BIN points at bazel-bin).

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const root = path.resolve(__dirname, '..', '..');
const dockerfile = fs.readFileSync(path.join(root, 'deploy', 'image', 'Dockerfile'), 'utf8');
const binary = path.join(process.env.POSTHOG_GATEWAY_BAZEL_BIN || path.join(root, 'bazel-bin'),
  'server', 'posthog_gateway');
// Not a library: verifies PostHog's certificate.
const kNonLibraryPackages = ['ca-certificates'];

function run(command, args) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

// The packages `apt-get install` names in the Dockerfile.
function installedPackages() {
  const install = dockerfile.match(/apt-get install([\s\S]*?)&&/);
  assert.ok(install, 'the Dockerfile has no apt-get install');
  return install[1].split(/[\s\\]+/).filter((word) => word && !word.startsWith('-'));
}

// The Debian package of each shared library the binary needs directly.
function neededPackages() {
  assert.ok(fs.existsSync(binary), `${binary} is missing: bazel build //server:posthog_gateway first`);
  const needed = [...run('readelf', ['-d', binary]).matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)]
    .map((m) => m[1]);
  assert.ok(needed.length > 10, `readelf found only ${needed.length} libraries`);
  const paths = new Map();
  for (const line of run('ldconfig', ['-p']).split('\n')) {
    const m = line.match(/^\s*(\S+) \((.*x86-64.*)\) => (\S+)$/);
    if (m && !paths.has(m[1])) paths.set(m[1], m[3]);
  }
  // One dpkg -S for every spelling of every path (Debian 12 merges /lib into
  // /usr/lib; dpkg knows each file by the path its package ships).
  const spellings = new Map();  // path spelling → soname
  for (const soname of needed) {
    const file = paths.get(soname);
    assert.ok(file, `ldconfig does not know ${soname}`);
    for (const spelling of [file, fs.realpathSync(file), file.replace(/^\/usr/, ''), `/usr${file}`]) {
      spellings.set(spelling, soname);
    }
  }
  let owners;
  try {
    owners = run('dpkg', ['-S', ...spellings.keys()]);
  } catch (someNotOwned) {  // Exit status 1 when any spelling is unknown.
    owners = someNotOwned.stdout;
  }
  const packages = new Map();  // package → its libraries the binary needs
  const owned = new Set();
  for (const line of owners.split('\n')) {
    const m = line.match(/^([^:]+)(?::\w+)?: (\S+)$/);
    if (!m || !spellings.has(m[2])) continue;
    const soname = spellings.get(m[2]);
    if (owned.has(soname)) continue;
    owned.add(soname);
    packages.set(m[1], [...(packages.get(m[1]) || []), soname]);
  }
  for (const soname of needed) assert.ok(owned.has(soname), `no Debian package owns ${soname}`);
  return packages;
}

// `packages` and everything they depend on, as apt resolves them.
function dependencyClosure(packages) {
  const out = run('apt-cache', ['depends', '--recurse', '--no-recommends', '--no-suggests',
    '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...packages]);
  return new Set(out.split('\n').filter((line) => line && !line.startsWith(' ')).map((line) => line.trim()));
}

test('the image installs every package the gateway binary links, and nothing else', () => {
  const installed = installedPackages();
  const needed = neededPackages();
  const closure = dependencyClosure(installed);
  for (const [pkg, libraries] of needed) {
    assert.ok(closure.has(pkg), `${libraries.join(', ')} (package ${pkg}) would be missing from the image`);
  }
  for (const pkg of installed) {
    if (kNonLibraryPackages.includes(pkg)) continue;
    assert.ok(needed.has(pkg), `the image installs ${pkg}, which the gateway does not link`);
  }
});

test('the image runs the binary itself, as a non-root user', () => {
  assert.match(dockerfile, /^ENTRYPOINT \["\/usr\/local\/bin\/posthog_gateway"\]$/m);
  const user = dockerfile.match(/^USER (\d+)(?::(\d+))?$/m);
  assert.ok(user, 'the Dockerfile sets no numeric USER');
  assert.notEqual(Number(user[1]), 0);
});
