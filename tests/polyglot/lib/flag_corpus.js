'use strict';
// A deterministic corpus of feature-flag definitions and evaluation inputs for
// the conformance test (tests/polyglot/flags_conformance.test.js), which
// evaluates every (flag, input) pair with the gateway and with posthog-node's
// local evaluation and compares them.
//
// makeCorpus({ seed, now }) returns:
//   flags      the flags, as an emulator seed stores them (ids from 5000;
//              flag dependencies reference ids, the emulator rewrites them to
//              keys with a dependency_chain as PostHog does);
//   cohorts    the cohorts (dynamic ones with nested AND/OR groups and
//              negation, one static);
//   groupTypes the project's group types (index = position);
//   inputs     [{ distinct_id, person_properties, groups, group_properties,
//                device_id }], with missing, null and wrong-typed values.
// The same seed gives the same corpus; `now` only anchors the person dates
// that relative date filters (-7d, -1m, ...) compare against, half a day away
// from any boundary so the two evaluators' clocks never straddle one.
//
// Coverage (docs/posthog-api.md §3): every property operator of §3.4 (exact and
// is_not with scalars and lists, icontains, regex incl. invalid ones, numeric
// comparisons on numbers and numeric strings, is_set / is_not_set, absolute
// and relative dates, every semver operator), unknown operators, multiple
// conditions, rollouts, multivariate flags with condition overrides,
// payloads, cohorts (§3.5), group and mixed flags (§3.3), flag dependencies
// (§3.7), holdouts, early exit, device bucketing, disabled flags and
// experience continuity (§3.6).
//
// As a command, writes the emulator seed and the inputs:
//   node tests/polyglot/lib/flag_corpus.js OUT_DIR [SEED]

const fs = require('node:fs');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEMO_SEED = path.join(REPO_ROOT, 'emulator', 'seed', 'demo.json');
const FIRST_FLAG_ID = 5000;
const DAY_MS = 24 * 3600 * 1000;

// mulberry32: a small seeded generator, so the corpus never depends on
// Math.random.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
}

function person(key, operator, value, extra = {}) {
  const property = { key, type: 'person', value, ...extra };
  if (operator !== undefined) property.operator = operator;
  return property;
}

function group(index, key, operator, value) {
  return { key, type: 'group', group_type_index: index, operator, value };
}

// ISO date `days` before `now` (fractional days allowed).
function daysAgo(now, days) {
  return new Date(now - days * DAY_MS).toISOString();
}

// The values person properties take: right types, wrong types, null.
function personValues(now) {
  return {
    email: ['ada@example.com', 'Bob@Example.COM', 'carol@test.org', 'dave@example.co', '',
      null, 42],
    plan: ['pro', 'PRO', 'enterprise', 'free', '', null, true, 3],
    country: ['US', 'us', 'GB', 'FR', 'DE'],
    age: [30, 17, 18, 65, '30', '17', 'thirty', 18.5, null, true, '1e2'],
    score: ['42', '9', '10', '100', 7, 'abc', '12abc', '-3', 0],
    signup: [daysAgo(now, 3.5), daysAgo(now, 10.5), daysAgo(now, 40.5), daysAgo(now, 400.5),
      daysAgo(now, 0.25), '2026-03-01T00:00:00Z', '2025-01-15', '2020-06-30T12:00:00+02:00',
      'not a date', 1700000000, null],
    app_version: ['1.2.3', 'v1.2.3', '1.2', '2.0.0', '2.0.0-beta.1', '0.2.5', '0.0.3', '1.10.0',
      '01.2.3', '1.2.3.4', 'banana', 2, '1.3.0', '3.0.0'],
    beta: [true, false, 'true', 'TRUE', 'false', 'yes', 1, 0, null],
    nickname: [null, 'Al', ''],
    tags: [['a', 'b'], [], 'a'],
    name: ['Zoë', 'ZOË', 'zoe', 'Ada'],
    meta: [{ a: 1 }, { b: 'a' }, 'a'],
  };
}

// Operator cases: [operator, property key, values to try].
function operatorCases() {
  return [
    ['exact', 'plan', ['pro', ['pro', 'enterprise'], 'PRO', '', 'null']],
    ['exact', 'age', [30, '30', 18.5, ['17', '18']]],
    ['exact', 'beta', [true, 'true', 'false', false, ['true'], ['true', 'false']]],
    ['exact', 'country', [[], ['us', 'GB']]],
    ['exact', 'nickname', ['Al', 'null']],
    ['is_not', 'plan', ['pro', ['pro', 'enterprise'], 'free']],
    ['is_not', 'age', [30, '17']],
    ['is_not', 'beta', ['true', false]],
    ['is_not', 'nickname', ['Al']],
    [undefined, 'country', ['US']],
    ['icontains', 'email', ['EXAMPLE', '@', 'ada']],
    ['icontains', 'age', ['3']],
    ['icontains', 'plan', ['r', 'ul']],
    ['not_icontains', 'email', ['example.com', 'test']],
    ['not_icontains', 'nickname', ['a']],
    ['starts_with', 'email', ['ada']],
    ['not_ends_with', 'email', ['.com']],
    ['regex', 'email', ['^[a-z]+@example\\.com$', '@example\\.(com|org)', '[', '(a', '\\d+',
      '(?i)ADA', 'a(?=d)', '(\\w)\\1', '']],
    ['regex', 'age', ['^1', '^\\d+$']],
    ['regex', 'plan', ['^pro$', 'ul']],
    ['not_regex', 'email', ['example', '[', '^carol']],
    ['not_regex', 'nickname', ['^A']],
    ['gt', 'age', [18, '18', 'abc', '2.5e1']],
    ['gte', 'age', [18, '30']],
    ['lt', 'age', [18, '100']],
    ['lte', 'age', [30, '17.0']],
    ['gt', 'score', [9, '9', '10', 'abc']],
    ['lt', 'score', [50, '50']],
    ['gte', 'plan', ['m']],
    ['is_set', 'nickname', ['']],
    ['is_set', 'plan', ['']],
    ['is_not_set', 'nickname', ['']],
    ['is_not_set', 'plan', ['']],
    ['is_date_before', 'signup', ['-7d', '-30d', '-1m', '-1y', '-2w', '-24h', '2026-01-01',
      '2026-01-01T12:00:00Z', 'not a date', '-10000d', '7d']],
    ['is_date_after', 'signup', ['-7d', '-30d', '-1m', '-1y', '-12h', '2025-06-01',
      '2025-06-01 00:00:00', '2025']],
    ['semver_eq', 'app_version', ['1.2.3', 'v1.2.3', '1.2', '01.2.3']],
    ['semver_neq', 'app_version', ['1.2.3']],
    ['semver_gt', 'app_version', ['1.2.3', '1.9.9']],
    ['semver_gte', 'app_version', ['2.0.0', '1.2']],
    ['semver_lt', 'app_version', ['2.0.0', '1.10.0']],
    ['semver_lte', 'app_version', ['1.2.3']],
    ['semver_tilde', 'app_version', ['1.2.3', '~1.2.0', '0.2.0']],
    ['semver_caret', 'app_version', ['1.2.3', '^0.2.3', '0.0.3']],
    ['semver_wildcard', 'app_version', ['1.*', '1.2.*', '2.*', '1.2.3.*', '*']],
    ['between', 'age', [[10, 40]]],
    ['is_date_exact', 'signup', ['2025-01-15']],
    ['icontains_multi', 'email', [['ada', 'bob']]],
  ];
}

const VARIANTS = [
  { key: 'control', name: 'Control', rollout_percentage: 34 },
  { key: 'test', name: 'Test', rollout_percentage: 33 },
  { key: 'test-b', name: 'Test B', rollout_percentage: 33 },
];

const SHORT_VARIANTS = [
  { key: 'alpha', rollout_percentage: 50 },
  { key: 'beta', rollout_percentage: 30 },
];

// A random property filter from the pool the combination flags draw on.
function randomPersonFilter(r) {
  const cases = operatorCases().filter(([op]) => !['between', 'is_date_exact',
    'icontains_multi'].includes(op));
  const [operator, key, values] = r.pick(cases);
  const filter = person(key, operator, r.pick(values));
  if (r.chance(0.1)) filter.negation = true;
  return filter;
}

function cohorts() {
  return [
    // OR[ AND[email icontains example, in 9002], AND[plan exact enterprise] ]
    { id: 9001, name: 'nested or', filters: { properties: { type: 'OR', values: [
      { type: 'AND', values: [person('email', 'icontains', 'example'),
        { key: 'id', type: 'cohort', value: 9002 }] },
      { type: 'AND', values: [person('plan', 'exact', ['enterprise'])] },
    ] } } },
    // AND[ country in US/GB, age >= 21, NOT country FR ]
    { id: 9002, name: 'and with negation', filters: { properties: { type: 'AND', values: [
      { type: 'AND', values: [
        person('country', 'exact', ['US', 'GB']),
        person('age', 'gte', 21),
        person('country', 'exact', ['FR'], { negation: true }),
      ] },
    ] } } },
    // OR of two negated properties.
    { id: 9003, name: 'or negated', filters: { properties: { type: 'OR', values: [
      { type: 'OR', values: [
        person('plan', 'exact', ['free'], { negation: true }),
        person('beta', 'exact', ['true'], { negation: true }),
      ] },
    ] } } },
    // Regex and semver inside a cohort.
    { id: 9004, name: 'regex and semver', filters: { properties: { type: 'AND', values: [
      { type: 'OR', values: [
        person('email', 'regex', '@example\\.com$'),
        person('app_version', 'semver_gte', '2.0.0'),
      ] },
      { type: 'OR', values: [person('signup', 'is_date_after', '-30d')] },
    ] } } },
    { id: 9005, name: 'static', is_static: true, distinct_ids: ['user-1', 'user-2'] },
    // Refers to the static cohort: needs the server.
    { id: 9006, name: 'uses static', filters: { properties: { type: 'AND', values: [
      { type: 'AND', values: [{ key: 'id', type: 'cohort', value: 9005 },
        person('plan', 'is_set', '')] },
    ] } } },
    // An empty group matches everyone.
    { id: 9007, name: 'empty', filters: { properties: {} } },
    // Unknown operator inside a cohort.
    { id: 9008, name: 'unknown operator', filters: { properties: { type: 'OR', values: [
      { type: 'OR', values: [person('age', 'between', [10, 40]), person('plan', 'exact', 'pro')] },
    ] } } },
  ];
}

function makeFlags(r) {
  const flags = [];
  const add = (key, filters, extra = {}) => {
    const flag = { key, name: key, active: true, filters, ...extra };
    flag.id = FIRST_FLAG_ID + flags.length;
    flags.push(flag);
    return flag;
  };
  const rollout = () => r.pick([100, 100, 100, 50, 0, 75, 25, null]);

  // 1. One flag per (operator, key, value), at 100% and, for a third of them,
  //    at a partial rollout.
  let n = 0;
  for (const [operator, key, values] of operatorCases()) {
    for (const value of values) {
      const filter = person(key, operator, value);
      add(`op-${n++}-${operator || 'default'}-${key}`, {
        groups: [{ properties: [filter], rollout_percentage: n % 3 === 0 ? 60 : 100 }],
      });
    }
  }

  // 2. Negation of single properties (honoured by the server).
  add('negated-plan', { groups: [{ properties: [person('plan', 'exact', 'pro',
    { negation: true })], rollout_percentage: 100 }] });
  add('negated-age', { groups: [{ properties: [person('age', 'gt', 20,
    { negation: true })], rollout_percentage: 100 }] });

  // 3. Rollouts alone.
  for (const percentage of [0, 1, 33.3, 50, 99, 100, null]) {
    add(`rollout-${String(percentage).replace('.', '_')}`,
      { groups: [{ properties: [], rollout_percentage: percentage }] });
  }

  // 4. Random combinations: several conditions of several properties,
  //    multivariate with overrides, payloads.
  for (let i = 0; i < 110; i++) {
    const conditions = [];
    const conditionCount = 1 + r.int(3);
    const multivariate = r.chance(0.4);
    const variants = r.chance(0.8) ? VARIANTS : SHORT_VARIANTS;
    for (let c = 0; c < conditionCount; c++) {
      const properties = [];
      const propertyCount = r.int(4);
      for (let p = 0; p < propertyCount; p++) properties.push(randomPersonFilter(r));
      const condition = { properties, rollout_percentage: rollout() };
      if (multivariate && r.chance(0.3)) {
        condition.variant = r.chance(0.8) ? r.pick(variants).key : 'no-such-variant';
      }
      conditions.push(condition);
    }
    const filters = { groups: conditions };
    if (multivariate) filters.multivariate = { variants };
    if (r.chance(0.5)) {
      filters.payloads = {};
      if (multivariate) {
        for (const variant of variants) {
          if (r.chance(0.7)) {
            filters.payloads[variant.key] = JSON.stringify({ variant: variant.key, i });
          }
        }
      } else {
        filters.payloads.true = r.pick([JSON.stringify({ i }), JSON.stringify([1, 2]), '"text"',
          'not json', '42', 'true']);
      }
      if (r.chance(0.2)) filters.payloads.false = JSON.stringify({ off: i });
    }
    if (r.chance(0.1)) filters.early_exit = true;
    add(`combo-${i}`, filters);
  }

  // 5. Multivariate: overrides, no match in the variants, payloads.
  add('mv-plain', { groups: [{ properties: [], rollout_percentage: 100 }],
    multivariate: { variants: VARIANTS },
    payloads: { control: '{"c":1}', test: '{"t":1}', 'test-b': '"b"' } });
  add('mv-override', { groups: [
    { properties: [person('plan', 'exact', 'pro')], rollout_percentage: 100, variant: 'test-b' },
    { properties: [], rollout_percentage: 50 },
  ], multivariate: { variants: VARIANTS } });
  add('mv-short', { groups: [{ properties: [], rollout_percentage: 100 }],
    multivariate: { variants: SHORT_VARIANTS }, payloads: { alpha: '[1]', beta: '[2]' } });
  add('mv-bad-override', { groups: [{ properties: [], rollout_percentage: 100,
    variant: 'missing' }], multivariate: { variants: VARIANTS } });
  add('bool-payloads', { groups: [{ properties: [person('plan', 'exact', 'pro')],
    rollout_percentage: 100 }], payloads: { true: '{"on":true}', false: '{"on":false}' } });

  // 6. Early exit: an out-of-rollout condition stops the evaluation.
  add('early-exit', { groups: [
    { properties: [person('country', 'exact', 'US')], rollout_percentage: 30 },
    { properties: [], rollout_percentage: 100 },
  ], early_exit: true });
  add('early-exit-after-unknown', { groups: [
    { properties: [person('nickname', 'exact', 'Al')], rollout_percentage: 100 },
    { properties: [], rollout_percentage: 30 },
    { properties: [], rollout_percentage: 100 },
  ], early_exit: true });

  // 7. Cohorts.
  for (const [id, operator] of [[9001, 'in'], [9002, 'in'], [9003, 'in'], [9004, 'in'],
    [9005, 'in'], [9006, 'in'], [9007, 'in'], [9008, 'in'], [9001, 'not_in'], [9999, 'in']]) {
    add(`cohort-${id}-${operator}`, { groups: [{ properties: [
      { key: 'id', type: 'cohort', operator, value: id }], rollout_percentage: 100 }] });
  }
  add('cohort-and-plan', { groups: [{ properties: [
    { key: 'id', type: 'cohort', value: 9002 }, person('plan', 'exact', ['pro', 'enterprise'])],
  rollout_percentage: 80 }] });
  add('static-cohort-then-plan', { groups: [
    { properties: [{ key: 'id', type: 'cohort', value: 9005 }, person('plan', 'exact', 'pro')],
      rollout_percentage: 100 },
    { properties: [person('country', 'exact', 'US')], rollout_percentage: 100 },
  ] });
  add('plan-then-static-cohort', { groups: [
    { properties: [person('plan', 'exact', 'pro'), { key: 'id', type: 'cohort', value: 9005 }],
      rollout_percentage: 100 },
  ] });
  add('cohort-negated', { groups: [{ properties: [
    { key: 'id', type: 'cohort', value: 9003, negation: true }], rollout_percentage: 100 }] });

  // 8. Group flags (company = 0, project = 1, 7 is unknown) and mixed ones.
  add('group-company', { aggregation_group_type_index: 0, groups: [
    { properties: [group(0, 'employees', 'gt', 20)], rollout_percentage: 100 },
  ] });
  add('group-company-rollout', { aggregation_group_type_index: 0, groups: [
    { properties: [], rollout_percentage: 50 }], payloads: { true: '{"g":1}' } });
  add('group-company-industry', { aggregation_group_type_index: 0, groups: [
    { properties: [group(0, 'industry', 'exact', ['tech'])], rollout_percentage: 100 },
    { properties: [group(0, '$group_key', 'exact', 'globex')], rollout_percentage: 100 },
  ], multivariate: { variants: VARIANTS } });
  add('group-project', { aggregation_group_type_index: 1, groups: [
    { properties: [group(1, 'tier', 'exact', 'gold')], rollout_percentage: 100 }] });
  add('group-unknown-type', { aggregation_group_type_index: 7, groups: [
    { properties: [], rollout_percentage: 100 }] });
  add('mixed-person-then-company', { groups: [
    { properties: [person('plan', 'exact', 'enterprise')], rollout_percentage: 100 },
    { properties: [group(0, 'employees', 'gte', 100)], rollout_percentage: 100,
      aggregation_group_type_index: 0 },
  ] });
  add('mixed-company-then-person', { groups: [
    { properties: [group(0, 'industry', 'exact', 'retail')], rollout_percentage: 50,
      aggregation_group_type_index: 0 },
    { properties: [person('country', 'exact', 'GB')], rollout_percentage: 100 },
  ] });
  add('mixed-unknown-type', { groups: [
    { properties: [], rollout_percentage: 100, aggregation_group_type_index: 7 },
    { properties: [person('country', 'exact', 'DE')], rollout_percentage: 100 },
  ] });

  // 9. Special flags: disabled, experience continuity, holdouts, device
  //    bucketing, feature enrollment.
  add('disabled', { groups: [{ properties: [], rollout_percentage: 100 }],
    payloads: { true: '1' } }, { active: false });
  add('continuity', { groups: [{ properties: [], rollout_percentage: 100 }] },
    { ensure_experience_continuity: true });
  add('holdout-20', { groups: [{ properties: [], rollout_percentage: 100 }],
    multivariate: { variants: VARIANTS }, holdout: { id: 42, exclusion_percentage: 20 },
    payloads: { 'holdout-42': '{"held":true}', control: '{"c":1}' } });
  add('holdout-group-flag', { aggregation_group_type_index: 0,
    groups: [{ properties: [], rollout_percentage: 100 }],
    holdout: { id: 43, exclusion_percentage: 50 } });
  add('legacy-holdout-groups', { groups: [{ properties: [], rollout_percentage: 100 }],
    holdout_groups: [{ properties: [], rollout_percentage: 30, variant: 'holdout-44' }] });
  add('device-bucketed', { groups: [{ properties: [], rollout_percentage: 50 }] },
    { bucketing_identifier: 'device_id' });
  add('enrollment', { groups: [{ properties: [], rollout_percentage: 0 }],
    feature_enrollment: true });

  // 10. Flag dependencies, by id (the emulator rewrites them to keys).
  const byKey = (key) => flags.find((f) => f.key === key).id;
  const dependency = (id, value, extra = {}) => ({ key: String(id), type: 'flag',
    operator: 'flag_evaluates_to', value, ...extra });
  add('dep-on-rollout-50', { groups: [{ properties: [dependency(byKey('rollout-50'), true)],
    rollout_percentage: 100 }] });
  add('dep-on-rollout-50-false', { groups: [{ properties: [
    dependency(byKey('rollout-50'), false)], rollout_percentage: 100 }] });
  add('dep-on-variant', { groups: [{ properties: [dependency(byKey('mv-plain'), 'test')],
    rollout_percentage: 100 }], payloads: { true: '{"dep":1}' } });
  add('dep-on-variant-true', { groups: [{ properties: [dependency(byKey('mv-plain'), true)],
    rollout_percentage: 100 }] });
  add('dep-on-plan', { groups: [{ properties: [dependency(byKey('bool-payloads'), true)],
    rollout_percentage: 100 }] });
  add('dep-on-disabled', { groups: [{ properties: [dependency(byKey('disabled'), false)],
    rollout_percentage: 100 }] });
  add('dep-on-continuity', { groups: [{ properties: [dependency(byKey('continuity'), true)],
    rollout_percentage: 100 }] });
  add('dep-chain-2', { groups: [{ properties: [dependency(byKey('dep-on-rollout-50'), true)],
    rollout_percentage: 100 }] });
  add('dep-on-group-flag', { groups: [{ properties: [
    dependency(byKey('group-company-rollout'), true)], rollout_percentage: 100 }] });
  add('dep-missing', { groups: [{ properties: [dependency(99999, true)],
    rollout_percentage: 100 }] });
  add('dep-bad-operator', { groups: [{ properties: [{ key: String(byKey('rollout-100')),
    type: 'flag', operator: 'exact', value: true }], rollout_percentage: 100 }] });
  add('dep-or-plan', { groups: [
    { properties: [dependency(byKey('rollout-33_3'), true)], rollout_percentage: 100 },
    { properties: [person('plan', 'exact', 'free')], rollout_percentage: 100 },
  ] });
  // A cycle: each depends on the other (empty chains).
  const cycleA = add('dep-cycle-a', { groups: [] });
  const cycleB = add('dep-cycle-b', { groups: [{ properties: [dependency(cycleA.id, true)],
    rollout_percentage: 100 }] });
  cycleA.filters.groups = [{ properties: [dependency(cycleB.id, true)], rollout_percentage: 100 }];
  // 11. Odd definitions: no conditions, a string rollout, Unicode case,
  //     an object value, a dependency on a flag that needs the server.
  add('no-conditions', {});
  add('empty-conditions', { groups: [] });
  add('string-rollout', { groups: [{ properties: [], rollout_percentage: '50' }] });
  add('unicode-exact', { groups: [{ properties: [person('name', 'exact', 'ZOË')],
    rollout_percentage: 100 }] });
  add('unicode-icontains', { groups: [{ properties: [person('name', 'icontains', 'Ë')],
    rollout_percentage: 100 }] });
  add('unicode-regex', { groups: [{ properties: [person('name', 'regex', '^Zo')],
    rollout_percentage: 100 }] });
  add('object-exact', { groups: [{ properties: [person('meta', 'exact', '{"a":1}')],
    rollout_percentage: 100 }] });
  add('object-icontains', { groups: [{ properties: [person('meta', 'icontains', 'a')],
    rollout_percentage: 100 }] });
  add('dep-on-static-cohort-flag', { groups: [
    { properties: [dependency(byKey('cohort-9005-in'), true)], rollout_percentage: 100 },
    { properties: [], rollout_percentage: 100 },
  ] });
  add('group-device-bucketed', { aggregation_group_type_index: 0,
    groups: [{ properties: [], rollout_percentage: 50 }] }, { bucketing_identifier: 'device_id' });
  return flags;
}

function makeInputs(r, now) {
  const values = personValues(now);
  const inputs = [];
  const companies = [
    { key: 'acme', properties: { employees: 500, industry: 'tech', name: 'Acme' } },
    { key: '', properties: { employees: 50 } },
    { key: 'globex', properties: { employees: 12, industry: 'retail' } },
    { key: 'initech', properties: { employees: '150', industry: null } },
    { key: 'umbrella', properties: { employees: 'many' } },
  ];
  const projects = [
    { key: 'p-1', properties: { tier: 'gold' } },
    { key: 'p-2', properties: { tier: 'silver' } },
  ];
  for (let i = 0; i < 90; i++) {
    const properties = {};
    for (const [key, options] of Object.entries(values)) {
      if (r.chance(0.75)) properties[key] = r.pick(options);
    }
    const input = {
      distinct_id: i < 3 ? `user-${i}` : `conformance-${i}-${r.int(1e6)}`,
      person_properties: i % 15 === 0 ? {} : properties,
      groups: {},
      group_properties: {},
      device_id: '',
    };
    if (r.chance(0.3)) {
      input.device_id = `device-${r.int(1000)}`;
      input.person_properties.$device_id = input.device_id;
    }
    if (r.chance(0.6)) {
      const company = r.pick(companies);
      input.groups.company = company.key;
      if (r.chance(0.8)) input.group_properties.company = { ...company.properties };
    }
    if (r.chance(0.4)) {
      const project = r.pick(projects);
      input.groups.project = project.key;
      if (r.chance(0.8)) input.group_properties.project = { ...project.properties };
    }
    if (r.chance(0.1)) {
      input.person_properties['$feature_enrollment/enrollment'] = r.pick([true, 'false']);
    }
    inputs.push(input);
  }
  return inputs;
}

function makeCorpus({ seed = 20261127, now = Date.now() } = {}) {
  const r = rng(seed);
  const flags = makeFlags(r);
  return { flags, cohorts: cohorts(), groupTypes: ['company', 'project'],
    inputs: makeInputs(r, now) };
}

// The emulator seed: the demo seed with project 1's flags, cohorts and group
// types replaced by the corpus's.
function emulatorSeed(corpus) {
  const seed = JSON.parse(fs.readFileSync(DEMO_SEED, 'utf8'));
  const project = seed.projects.find((p) => p.id === 1);
  project.feature_flags = corpus.flags;
  project.cohorts = corpus.cohorts;
  project.group_types = corpus.groupTypes;
  return seed;
}

module.exports = { makeCorpus, emulatorSeed };

if (require.main === module) {
  const [outDir, seedArg] = process.argv.slice(2);
  if (!outDir) {
    console.error('usage: node tests/polyglot/lib/flag_corpus.js OUT_DIR [SEED]');
    process.exit(2);
  }
  const corpus = makeCorpus(seedArg ? { seed: Number(seedArg) } : {});
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'seed.json'), JSON.stringify(emulatorSeed(corpus)));
  fs.writeFileSync(path.join(outDir, 'inputs.json'), JSON.stringify(corpus.inputs));
  console.log(`${corpus.flags.length} flags x ${corpus.inputs.length} inputs`);
}
