#!/usr/bin/python3
"""Writes the benchmark's flags: an emulator seed (the demo seed with project
1's flags and cohorts replaced) and the same flags as a /flags/definitions
body, plus the person properties every benchmark evaluates with.

Usage: bench/flags/make_seed.py OUT_DIR
  OUT_DIR/seed.json          for the emulator (--seed)
  OUT_DIR/definitions.json   for the evaluator benchmark
  OUT_DIR/inputs.json        {"person_properties": {...}, "flag_keys": [...]}
"""

import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PERSON = {
    "email": "ada@example.com",
    "app_version": "2.1.7",
    "signup_date": "2026-03-01T00:00:00Z",
    "plan": "pro",
    "country": "US",
    "age": 30,
    "name": "Ada",
    "browser": "Chrome",
}

VARIANTS = [
    {"key": "first-variant", "name": "First", "rollout_percentage": 50},
    {"key": "second-variant", "name": "Second", "rollout_percentage": 20},
    {"key": "third-variant", "name": "Third", "rollout_percentage": 20},
    {"key": "fourth-variant", "name": "Fourth", "rollout_percentage": 5},
    {"key": "fifth-variant", "name": "Fifth", "rollout_percentage": 5},
]


def person(key, operator, value):
    return {"key": key, "type": "person", "operator": operator, "value": value}


TEN_PROPERTIES = [
    person("email", "regex", r"^[a-z0-9.]+@example\.com$"),
    person("app_version", "semver_gte", "1.2.0"),
    person("app_version", "semver_lt", "3.0.0"),
    person("signup_date", "is_date_after", "-365d"),
    person("signup_date", "is_date_before", "2030-01-01"),
    person("plan", "exact", ["pro", "enterprise"]),
    person("country", "is_not", "FR"),
    person("age", "gt", 18),
    person("name", "icontains", "a"),
    person("browser", "regex", "Chrome|Firefox"),
]

COHORTS = {
    # OR[ AND[email icontains @example.com, in cohort 102], AND[plan exact enterprise] ]
    101: {"type": "OR", "values": [
        {"type": "AND", "values": [person("email", "icontains", "@example.com"),
                                   {"key": "id", "type": "cohort", "value": 102}]},
        {"type": "AND", "values": [person("plan", "exact", ["enterprise"])]},
    ]},
    # AND[ country in (US, GB), age >= 21, NOT country exact FR ]
    102: {"type": "AND", "values": [
        person("country", "exact", ["US", "GB"]),
        person("age", "gte", 21),
        dict(person("country", "exact", ["FR"]), negation=True),
    ]},
}


def flags():
    result = [
        {"key": "bench-rollout", "filters": {"groups": [{"properties": [], "rollout_percentage": 45}]}},
        {"key": "bench-multivariate", "filters": {
            "groups": [{"properties": [], "rollout_percentage": 55}],
            "multivariate": {"variants": VARIANTS}}},
        {"key": "bench-ten-properties", "filters": {
            "groups": [{"properties": TEN_PROPERTIES, "rollout_percentage": 100}]}},
        {"key": "bench-nested-cohort", "filters": {
            "groups": [{"properties": [{"key": "id", "type": "cohort", "value": 101}],
                        "rollout_percentage": 100}]}},
    ]
    # Fillers up to 50: a mix of the shapes above.
    for i in range(46):
        shape = i % 4
        if shape == 0:
            filters = {"groups": [{"properties": [], "rollout_percentage": (i * 7) % 100}]}
        elif shape == 1:
            filters = {"groups": [{"properties": [], "rollout_percentage": 80}],
                       "multivariate": {"variants": VARIANTS},
                       "payloads": {"first-variant": json.dumps({"i": i})}}
        elif shape == 2:
            filters = {"groups": [{"properties": TEN_PROPERTIES[i % 10: i % 10 + 3],
                                   "rollout_percentage": 90}]}
        else:
            filters = {"groups": [{"properties": [person("plan", "exact", ["pro"])],
                                   "rollout_percentage": 60},
                                  {"properties": [], "rollout_percentage": 10}]}
        result.append({"key": f"bench-filler-{i}", "filters": filters})
    for index, flag in enumerate(result):
        flag.update({"id": 1000 + index, "name": flag["key"], "active": True, "version": 1})
    return result


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    all_flags = flags()
    with open(os.path.join(REPO_ROOT, "emulator", "seed", "demo.json"), encoding="utf-8") as f:
        seed = json.load(f)
    project = next(p for p in seed["projects"] if p["id"] == 1)
    project["feature_flags"] = all_flags
    project["cohorts"] = [{"id": cid, "name": f"bench cohort {cid}", "is_static": False,
                           "filters": {"properties": body}} for cid, body in COHORTS.items()]
    with open(os.path.join(out_dir, "seed.json"), "w", encoding="utf-8") as f:
        json.dump(seed, f)
    definitions = {"flags": all_flags, "group_type_mapping": {"0": "company", "1": "project"},
                   "cohorts": {str(cid): body for cid, body in COHORTS.items()}}
    with open(os.path.join(out_dir, "definitions.json"), "w", encoding="utf-8") as f:
        json.dump(definitions, f)
    with open(os.path.join(out_dir, "inputs.json"), "w", encoding="utf-8") as f:
        json.dump({"person_properties": PERSON, "flag_keys": [fl["key"] for fl in all_flags]}, f)


if __name__ == "__main__":
    main()
