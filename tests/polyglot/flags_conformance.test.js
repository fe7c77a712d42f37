'use strict';
// Conformance of the gateway's local flag evaluation with the official
// posthog-node SDK's: a generated corpus (tests/polyglot/lib/flag_corpus.js:
// every operator, cohorts, groups, dependencies, variants, payloads; inputs
// with missing, null and wrong-typed properties) is served by the emulator;
// the gateway (EvaluateFlags, only_local) and posthog-node
// (getAllFlagsAndPayloads, onlyEvaluateLocally, polling the emulator's
// /flags/definitions with the personal key) evaluate every (flag, input)
// pair. Both must agree on "decided locally or not", and when both decided,
// on the value (false / true / variant) and the payload.
//
// The same pairs are then evaluated through OpenFeature: the official Node
// server SDK with the flagd provider (RPC resolver, unmodified from npm)
// against the gateway's flagd.evaluation.v2.Service must give, for every
// pair, what EvaluateFlags gives (docs/openfeature.md's mapping): the
// boolean, the variant key of multivariate flags, the object payload, and an
// error where EvaluateFlags has one. Every pair the gateway decides locally
// is compared; of the pairs PostHog decides (the remote fallback, one
// `POST /flags` to the emulator per flagd call, ~35 ms each on a loaded
// machine), those of the first REMOTE_INPUTS inputs, so that the suite stays
// within minutes.
//
// A difference fails the test unless an entry of ALLOWED explains it: each
// is a deliberate choice of the gateway (docs/flags.md, "Deliberate differences
// from posthog-node"), names the rule and its source, and matches only the
// (flag, input) pairs the rule is about.
//
// Run (binaries built first):
//   node --test tests/polyglot/flags_conformance.test.js
// CONFORMANCE_VERBOSE=1 also prints every allowed difference.

const { after, before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { repoRoot, startStack, stopStack } = require('./lib/stack');
const { makeCorpus, emulatorSeed } = require('./lib/flag_corpus');
const { serviceClient, unaryCall, toStruct, fromValue } = require('./lib/grpc');
const { PostHog } = require(path.join(repoRoot, 'tools/node_modules/posthog-node'));
const { OpenFeature, ErrorCode } = require(path.join(repoRoot,
  'tools/node_modules/@openfeature/server-sdk'));
const { FlagdProvider } = require(path.join(repoRoot,
  'tools/node_modules/@openfeature/flagd-provider'));

// CONFORMANCE_SEED=N explores another corpus of the same shape.
const CORPUS_SEED = Number(process.env.CONFORMANCE_SEED || 20261127);
const CALL_TIMEOUT_MS = 20000;
// Inputs whose remotely decided pairs are compared through flagd too.
const REMOTE_INPUTS = 6;
const POLL_INTERVAL_MS = 50;
const DEFINITIONS_TIMEOUT_MS = 60000;

// ---------------------------------------------------------------------------
// JSON with sorted keys, for comparing payloads.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const fields = Object.keys(value).sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value);
}

// ---------------------------------------------------------------------------
// The allow-list. Each entry: `rule` (what the gateway does and why), `source`
// (where the rule comes from), `kinds` (which differences it explains:
// 'decided' = one side decided and the other did not; 'value'; 'payload'),
// and `applies(flag, input, definitions)`: whether this (flag, input) pair
// exercises the rule. Flags reach the rule through their own properties, the
// cohorts they use and the flags they depend on (see `filtersOf`).

// Every plain property filter `flag` evaluates for `input`, with the
// properties it reads: its conditions' properties (person, or the group's for
// group filters and group conditions), the cohorts it uses (recursively), and
// the flags it depends on (recursively). Yields { property, properties,
// topLevel } where `topLevel` is a condition's own property (not inside a
// cohort).
function* filtersOf(flag, input, corpus, seen = new Set()) {
  if (seen.has(flag.key)) return;
  seen.add(flag.key);
  const personProperties = { distinct_id: input.distinct_id, ...input.person_properties };
  const groupProperties = (index) => {
    const type = corpus.groupTypes[index];
    if (type === undefined || !(type in input.groups)) return null;
    return { $group_key: input.groups[type], ...(input.group_properties[type] || {}) };
  };
  function* walk(property, properties, topLevel) {
    if (property.type === 'cohort') {
      const cohort = corpus.cohorts.find((c) => c.id === Number(property.value));
      if (cohort && cohort.filters) yield* walkGroup(cohort.filters.properties, personProperties);
      if (topLevel) yield { property, properties, topLevel };
    } else if (property.type === 'flag') {
      const target = corpus.flags.find((f) => String(f.id) === String(property.key));
      if (target) yield* filtersOf(target, input, corpus, seen);
      yield { property, properties, topLevel };
    } else {
      yield { property, properties, topLevel };
    }
  }
  function* walkGroup(group, properties) {
    for (const value of (group && group.values) || []) {
      if ('values' in value) yield* walkGroup(value, properties);
      else yield* walk(value, properties, false);
    }
  }
  const flagIndex = flag.filters.aggregation_group_type_index;
  for (const condition of flag.filters.groups || []) {
    const index = condition.aggregation_group_type_index ?? flagIndex;
    const properties = index === undefined || index === null ? personProperties
      : groupProperties(index);
    if (properties === null) continue;
    for (const property of condition.properties || []) yield* walk(property, properties, true);
  }
}

// Whether any filter `flag` evaluates for `input` satisfies `predicate`
// (property, present, value, topLevel).
function anyFilter(flag, input, corpus, predicate) {
  for (const { property, properties, topLevel } of filtersOf(flag, input, corpus)) {
    const present = Object.prototype.hasOwnProperty.call(properties, property.key);
    if (predicate(property, present, present ? properties[property.key] : undefined, topLevel)) {
      return true;
    }
  }
  return false;
}

// Whether `v` is, or holds anywhere inside it, an integral number.
const isIntegral = (v) => (typeof v === 'number' && Number.isInteger(v)) ||
  (v !== null && typeof v === 'object' && Object.values(v).some(isIntegral));
const isObjectOrArray = (v) => v !== null && typeof v === 'object';
// Whether `flag` (or a flag it depends on) uses a group the input gives with
// an empty key.
function usesEmptyGroupKey(flag, input, corpus, seen = new Set()) {
  if (seen.has(flag.key)) return false;
  seen.add(flag.key);
  const empty = (index) => index !== undefined && index !== null &&
    input.groups[corpus.groupTypes[index]] === '';
  if (empty(flag.filters.aggregation_group_type_index)) return true;
  for (const condition of flag.filters.groups || []) {
    if (empty(condition.aggregation_group_type_index)) return true;
    for (const property of condition.properties || []) {
      if (property.type !== 'flag') continue;
      const target = corpus.flags.find((f) => String(f.id) === String(property.key));
      if (target && usesEmptyGroupKey(target, input, corpus, seen)) return true;
    }
  }
  return false;
}
const truthyOrFalsy = (v) => typeof v === 'boolean' ||
  (typeof v === 'string' && ['true', 'false'].includes(v.toLowerCase())) ||
  (Array.isArray(v) && v.every(truthyOrFalsy));
const isDateOperator = (op) => op === 'is_date_before' || op === 'is_date_after';

const ALLOWED = [
  {
    rule: 'is_not_set on a property the caller did not give matches: the gateway treats the ' +
      "caller's properties as complete; posthog-node 5.70 leaves it undecided",
    source: 'docs/flags.md "Deliberate differences from posthog-node"; docs/posthog-api.md §3.4 ' +
      '(is_not_set) and §7 ("pick one and document it")',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus,
      (p, present) => p.operator === 'is_not_set' && !present),
  },
  {
    rule: 'exact / is_not with an integral number (filter value or person value) is decided as ' +
      "PostHog's flags service does (30 is \"30\"); posthog-node cannot tell 30 from 30.0 in " +
      'JavaScript and leaves it undecided. The gateway receives integral numbers as JSON ' +
      'integers (and sends them so to PostHog), so it has no such ambiguity',
    source: 'docs/posthog-api.md §3.4 (exact compares str() of both sides; "watch floats"); ' +
      'PostHog rust/feature-flags property_matching.rs to_string_representation',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present, value) => {
      if (![undefined, 'exact', 'is_not'].includes(p.operator) || truthyOrFalsy(p.value)) {
        return false;
      }
      const values = Array.isArray(p.value) ? p.value : [p.value];
      return present && (values.some(isIntegral) || isIntegral(value));
    }),
  },
  {
    rule: 'objects and arrays match the string operators as their JSON (`{"a":1}`), as the ' +
      "server's to_string does; posthog-node uses JavaScript's String() (\"[object Object]\", " +
      '"a,b")',
    source: 'PostHog rust/feature-flags property_matching.rs to_string_representation; ' +
      'docs/posthog-api.md §3.4 (string operators on str() of both sides)',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present, value) =>
      present && isObjectOrArray(value) && !['exact', 'is_not', undefined].includes(p.operator)),
  },
  {
    rule: 'a group given with an empty key counts as absent: a group flag is false ' +
      '(no_group_type), a group condition is skipped, as the server does; posthog-node ' +
      'evaluates it with the empty key',
    source: 'docs/posthog-api.md §3.6 (server order: "group flag with an empty group key means ' +
      'false (no_group_type)")',
    kinds: ['decided', 'value', 'payload'],
    applies: (flag, input, corpus) => usesEmptyGroupKey(flag, input, corpus),
  },
  {
    rule: 'a regular expression on a value with non-ASCII characters is decided locally (RE2 ' +
      'matches UTF-8 code points as the server\'s engine does); posthog-node leaves it to the ' +
      'server',
    source: 'docs/posthog-api.md §3.4 (regex); ' +
      'docs/flags.md "Deliberate differences from posthog-node"',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present, value) =>
      ['regex', 'not_regex'].includes(p.operator) && present && /[^\x00-\x7f]/.test(String(value))),
  },
  {
    rule: 'a regular expression with (? syntax other than (?: (inline flags such as (?i)) is ' +
      "run locally with RE2, which reads it as PostHog's engine does; posthog-node leaves every " +
      'such pattern to the server',
    source: 'docs/posthog-api.md §3.4 (regex); ' +
      'docs/flags.md "Deliberate differences from posthog-node"',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present) =>
      ['regex', 'not_regex'].includes(p.operator) && present &&
      /\(\?[^:]/.test(String(p.value))),
  },
  {
    rule: 'gt / gte / lt / lte read a number only from a string that is entirely a number ' +
      '("12abc" is not 12), as the server (Rust parse::<f64>) and posthog-python (float()) do; ' +
      "posthog-node's parseFloat reads a leading number",
    source: 'docs/posthog-api.md §3.4 ("try float(flag value)"); PostHog rust/feature-flags ' +
      'property_matching.rs to_f64_representation',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present, value) =>
      ['gt', 'gte', 'lt', 'lte'].includes(p.operator) && present && typeof value === 'string' &&
      Number.isFinite(parseFloat(value)) && !Number.isFinite(Number(value))),
  },
  {
    rule: 'a date filter of four digits ("2025") means that year on today\'s month and day ' +
      '(posthog-python); posthog-node reads it as 1 January',
    source: 'docs/posthog-api.md §3.4 (is_date_before / is_date_after: "a 4-digit value means that ' +
      'year with today\'s month and day")',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present) =>
      isDateOperator(p.operator) && present && /^\d{4}$/.test(String(p.value))),
  },
  {
    rule: 'a person date given as a number goes to PostHog: the server reads seconds since the ' +
      'epoch, posthog-node milliseconds, posthog-python refuses it',
    source: 'docs/posthog-api.md §3.4 ("Override may be a datetime, a date, or an ISO string. ' +
      'Anything else is inconclusive")',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present, value) =>
      isDateOperator(p.operator) && present && typeof value === 'number'),
  },
  {
    rule: 'an operator the gateway does not evaluate locally (between, is_date_exact, ' +
      'icontains_multi) goes to PostHog even when the value is null; posthog-node answers false ' +
      'for a null value before it looks at the operator',
    source: 'docs/posthog-api.md §3.4 (last bullet: an unknown operator is inconclusive)',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus, (p, present, value) =>
      ['between', 'is_date_exact', 'icontains_multi'].includes(p.operator) && present &&
      value === null),
  },
  {
    rule: 'a flag dependency whose operator is not flag_evaluates_to is false; posthog-node ' +
      'ignores the operator',
    source: 'docs/posthog-api.md §3.7 ("operator != flag_evaluates_to ... definite False")',
    kinds: ['decided', 'value'],
    applies: (flag, input, corpus) => anyFilter(flag, input, corpus,
      (p) => p.type === 'flag' && p.operator !== 'flag_evaluates_to'),
  },
  {
    rule: 'holdouts stored the older way (filters.holdout_groups) are evaluated as the server ' +
      'does; posthog-node reads only filters.holdout',
    source: 'docs/posthog-api.md §3.6 (holdout: "older storage is filters.holdout_groups[0]")',
    kinds: ['decided', 'value', 'payload'],
    applies: (flag) => Array.isArray(flag.filters.holdout_groups),
  },
  {
    rule: 'feature enrollment ($feature_enrollment/<key>) decides before the conditions, in the ' +
      "server's order; posthog-node ignores it",
    source: 'docs/posthog-api.md §3.6 (server order: disabled, group, feature enrollment, holdout, ' +
      'conditions)',
    kinds: ['decided', 'value', 'payload'],
    applies: (flag, input) => flag.filters.feature_enrollment === true &&
      `$feature_enrollment/${flag.key}` in input.person_properties,
  },
];

// ---------------------------------------------------------------------------

let tempDir;
let stack;
let emulatorUrl;
let client;
let posthog;
let corpus;
let gatewayTarget;

function unary(method, request) {
  return unaryCall(client, method, request, CALL_TIMEOUT_MS);
}

before(async () => {
  corpus = makeCorpus({ seed: CORPUS_SEED });
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flags-conformance-'));
  const seed = emulatorSeed(corpus);
  const seedPath = path.join(tempDir, 'seed.json');
  fs.writeFileSync(seedPath, JSON.stringify(seed));
  stack = startStack(path.join(tempDir, 'stack.env'), [`--seed=${seedPath}`]);
  const env = await stack.ready;
  emulatorUrl = env.EMULATOR_URL;
  gatewayTarget = env.GATEWAY_TARGET;
  client = serviceClient('posthog/v1/flag.proto', 'FlagService', env.GATEWAY_TARGET);
  const deadline = Date.now() + DEFINITIONS_TIMEOUT_MS;
  for (;;) {
    const response = await unary('EvaluateFlag', {
      key: 'rollout-100', context: { distinct_id: 'probe' }, options: { only_local: true },
    });
    if (response.result.error_code === 'FLAG_ERROR_CODE_UNSPECIFIED') break;
    if (Date.now() > deadline) throw new Error('the gateway never loaded the definitions');
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }

  const project = seed.projects.find((p) => p.id === 1);
  const users = new Map(seed.users.map((u) => [u.id, u]));
  const personal = seed.personal_api_keys.find((k) => k.scopes.includes('*') &&
    users.get(k.user_id).organization_ids.includes(project.organization_id));
  posthog = new PostHog(project.api_token, {
    host: env.EMULATOR_URL, personalApiKey: personal.value,
    featureFlagsPollingInterval: 600000, flushAt: 1000000, flushInterval: 0,
    fetchRetryCount: 0, disableGeoip: true,
  });
  if (!(await posthog.waitForLocalEvaluationReady(DEFINITIONS_TIMEOUT_MS))) {
    throw new Error('posthog-node never loaded the definitions');
  }
});

after(async () => {
  await OpenFeature.close();
  if (posthog) await posthog.shutdown();
  if (client) client.close();
  if (stack) await stopStack(stack.child);
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
});

async function gatewayResults(input) {
  const response = await unary('EvaluateFlags', {
    keys: [],
    context: {
      distinct_id: input.distinct_id,
      groups: input.groups,
      person_properties: toStruct(input.person_properties),
      group_properties: Object.fromEntries(Object.entries(input.group_properties)
        .map(([type, properties]) => [type, toStruct(properties)])),
      device_id: input.device_id,
    },
    options: { only_local: true },
  });
  const results = new Map();
  for (const [key, result] of Object.entries(response.results)) {
    const decided = result.error_code === 'FLAG_ERROR_CODE_UNSPECIFIED' &&
      result.source === 'FLAG_DECISION_SOURCE_LOCAL';
    results.set(key, decided
      ? { decided, value: result.variant !== '' ? result.variant : result.enabled,
        payload: result.payload ? fromValue(result.payload) : null }
      : { decided, why: result.error_message });
  }
  return results;
}

async function nodeResults(input) {
  const { featureFlags, featureFlagPayloads } = await posthog.getAllFlagsAndPayloads(
    input.distinct_id, {
      groups: input.groups,
      personProperties: input.person_properties,
      groupProperties: input.group_properties,
      onlyEvaluateLocally: true,
    });
  const results = new Map();
  for (const flag of corpus.flags) {
    results.set(flag.key, flag.key in featureFlags
      ? { decided: true, value: featureFlags[flag.key],
        payload: featureFlagPayloads[flag.key] ?? null }
      : { decided: false });
  }
  return results;
}

function describe(result) {
  if (!result) return 'missing';
  if (!result.decided) return `undecided${result.why ? ` (${result.why})` : ''}`;
  const payload = result.payload !== null ? ` payload ${canonical(result.payload)}` : '';
  return `${JSON.stringify(result.value)}${payload}`;
}

test('the gateway and posthog-node agree on every (flag, input) of the corpus', async (t) => {
  const differences = [];
  let comparisons = 0;
  // Pairs both decided, and of those how many are on: a corpus both sides
  // leave undecided would agree without proving anything.
  let bothDecided = 0;
  let bothOn = 0;
  const allowedCounts = new Map(ALLOWED.map((entry) => [entry.rule, 0]));
  for (const input of corpus.inputs) {
    const [gateway, node] = await Promise.all([gatewayResults(input), nodeResults(input)]);
    for (const flag of corpus.flags) {
      comparisons++;
      const g = gateway.get(flag.key);
      const n = node.get(flag.key);
      let kind = null;
      if (!g || g.decided !== n.decided) kind = 'decided';
      else if (g.decided && canonical(g.value) !== canonical(n.value)) kind = 'value';
      else if (g.decided && canonical(g.payload) !== canonical(n.payload)) kind = 'payload';
      if (kind === null) {
        if (g.decided) bothDecided++;
        if (g.decided && g.value !== false) bothOn++;
        continue;
      }
      const allowed = ALLOWED.find((entry) => entry.kinds.includes(kind) &&
        entry.applies(flag, input, corpus));
      if (allowed) {
        allowedCounts.set(allowed.rule, allowedCounts.get(allowed.rule) + 1);
        if (process.env.CONFORMANCE_VERBOSE) {
          t.diagnostic(`allowed (${allowed.rule}): ${flag.key} for ${input.distinct_id}`);
        }
        continue;
      }
      differences.push({ flag, input, kind, gateway: describe(g), node: describe(n) });
    }
  }
  t.diagnostic(`${corpus.flags.length} flags x ${corpus.inputs.length} inputs = ` +
    `${comparisons} comparisons; ${differences.length} unexplained differences; ` +
    `${bothDecided} agreed and decided by both (${bothOn} on)`);
  for (const [rule, count] of allowedCounts) {
    if (count > 0) t.diagnostic(`allowed ${count}: ${rule}`);
  }
  const byFlag = new Map();
  for (const d of differences) {
    if (!byFlag.has(d.flag.key)) byFlag.set(d.flag.key, []);
    byFlag.get(d.flag.key).push(d);
  }
  const report = [];
  for (const [key, list] of byFlag) {
    report.push(`${key} (${list.length} inputs): ${JSON.stringify(list[0].flag.filters)}`);
    for (const d of list.slice(0, 3)) {
      report.push(`  ${d.kind}: gateway ${d.gateway} vs node ${d.node} for ` +
        JSON.stringify({ id: d.input.distinct_id, p: d.input.person_properties,
          g: d.input.groups, gp: d.input.group_properties }));
    }
  }
  assert.equal(differences.length, 0, `unexplained differences:\n${report.join('\n')}`);
  assert.ok(bothDecided >= comparisons / 2, `only ${bothDecided} pairs decided by both`);
  assert.ok(bothOn >= comparisons / 10, `only ${bothOn} pairs on for both`);
});

// What EvaluateFlags (with PostHog's fallback) says of every flag for `input`.
async function evaluateAll(input) {
  const response = await unary('EvaluateFlags', {
    keys: [],
    context: {
      distinct_id: input.distinct_id,
      groups: input.groups,
      person_properties: toStruct(input.person_properties),
      group_properties: Object.fromEntries(Object.entries(input.group_properties)
        .map(([type, properties]) => [type, toStruct(properties)])),
      device_id: input.device_id,
    },
  });
  return response.results;
}

// The OpenFeature context of `input` (docs/openfeature.md's convention).
function openFeatureContext(input) {
  const context = { ...input.person_properties, targetingKey: input.distinct_id,
    $groups: input.groups, $group_properties: input.group_properties };
  if (input.device_id) context.$device_id = input.device_id;
  return context;
}

// Runs `work` over `items`, at most `limit` at once.
async function eachLimited(items, limit, work) {
  let next = 0;
  const workers = Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(workers);
}

test('the flagd provider gives EvaluateFlags\' answer for every (flag, input) of the corpus',
  async (t) => {
    const [host, port] = gatewayTarget.split(':');
    await OpenFeature.setProviderAndWait(new FlagdProvider({
      resolverType: 'rpc', host, port: Number(port), tls: false, deadlineMs: CALL_TIMEOUT_MS }));
    const of = OpenFeature.getClient();
    const NO_VARIANT = '<no variant>';
    const differences = [];
    let pairs = 0;
    let remotePairs = 0;
    let calls = 0;
    let on = 0;
    for (const [index, input] of corpus.inputs.entries()) {
      const expected = await evaluateAll(input);
      const context = openFeatureContext(input);
      await eachLimited(corpus.flags, 16, async (flag) => {
        const result = expected[flag.key];
        if (result.source === 'FLAG_DECISION_SOURCE_REMOTE') {
          if (index >= REMOTE_INPUTS) return;
          remotePairs++;
        }
        pairs++;
        const problems = [];
        const boolean = await of.getBooleanDetails(flag.key, false, context);
        calls++;
        if (result.error_code !== 'FLAG_ERROR_CODE_UNSPECIFIED') {
          const code = result.error_code === 'FLAG_ERROR_CODE_FLAG_NOT_FOUND'
            ? ErrorCode.FLAG_NOT_FOUND : ErrorCode.GENERAL;
          if (boolean.errorCode !== code) {
            problems.push(`error ${result.error_code} vs ${boolean.errorCode}`);
          }
        } else {
          const enabled = result.enabled || result.variant !== '';
          if (enabled) on++;
          if (boolean.errorCode !== undefined || boolean.value !== enabled) {
            problems.push(`boolean ${enabled} vs ${boolean.value} (${boolean.errorCode})`);
          }
          if (flag.filters.multivariate) {
            const string = await of.getStringDetails(flag.key, NO_VARIANT, context);
            calls++;
            const variant = result.variant !== '' ? result.variant : NO_VARIANT;
            if (string.value !== variant) problems.push(`string ${variant} vs ${string.value}`);
          }
          const payload = result.payload ? fromValue(result.payload) : null;
          if (payload !== null && typeof payload === 'object' && !Array.isArray(payload)) {
            const object = await of.getObjectDetails(flag.key, {}, context);
            calls++;
            if (canonical(object.value) !== canonical(payload)) {
              problems.push(`object ${canonical(payload)} vs ${canonical(object.value)}`);
            }
          }
        }
        if (problems.length > 0) {
          differences.push(`${flag.key} for ${input.distinct_id}: ${problems.join('; ')}`);
        }
      });
    }
    t.diagnostic(`${pairs} (flag, input) pairs (${remotePairs} decided by PostHog), ` +
      `${calls} OpenFeature evaluations, ${on} on; ${differences.length} differences`);
    assert.equal(differences.length, 0, differences.slice(0, 20).join('\n'));
    assert.ok(pairs >= corpus.flags.length * corpus.inputs.length / 2, `only ${pairs} pairs`);
    assert.ok(remotePairs >= 100, `only ${remotePairs} pairs decided by PostHog`);
    assert.ok(on >= pairs / 10, `only ${on} pairs on`);
  });

test('both poll /flags/definitions, the route posthog-node 5.70 calls, never the older one',
  async () => {
    const response = await fetch(`${emulatorUrl}/_emulator/requests`);
    const { routes } = await response.json();
    // At least the gateway's first load and posthog-node's; later polls may
    // be answered 304 (If-None-Match).
    assert.ok(routes.flag_definitions.count >= 2, JSON.stringify(routes.flag_definitions));
    for (const status of Object.keys(routes.flag_definitions.status)) {
      assert.ok(['200', '304'].includes(status), JSON.stringify(routes.flag_definitions));
    }
    assert.equal(routes.local_evaluation, undefined);
  });
