#!/usr/bin/python3
"""Prints bench/flags/run.sh's figures side by side (a Markdown table), and
how many flag values differ between the gateway and posthog-node.

Usage: summarize.py WORK_DIR   (evaluator.json, node.json, gateway_values.json
                                and, per round R, health.R.json,
                                evaluate.R.json, health_one.R.json,
                                evaluate_one.R.json, node_local.R.json)

Each load file holds two sides measured in turns within one phase (grpc_load
--paired_target): the gateway's, then the transport bound's. Each load
figure is its median over the rounds; each ratio is the median of the
rounds' ratios.
"""

import glob
import json
import os
import statistics
import sys


def load(work, name):
    with open(os.path.join(work, name), encoding="utf-8") as f:
        return json.load(f)


def median_run(runs):
    """The runs' median of every numeric figure."""
    merged = dict(runs[0])
    for field, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[field] = statistics.median(run[field] for run in runs)
    return merged


def main():
    work = sys.argv[1]
    evaluator = {b["name"]: b for b in load(work, "evaluator.json")["benchmarks"]}
    node = load(work, "node.json")
    rounds = len(glob.glob(os.path.join(work, "health.*.json")))
    names = ("health", "evaluate", "health_one", "evaluate_one")
    paired = {name: [load(work, f"{name}.{r}.json") for r in range(1, rounds + 1)]
              for name in names}
    runs = {}
    for name in names:
        runs[name] = [p["sides"][0] for p in paired[name]]
        runs[f"bound_{name}"] = [p["sides"][1] for p in paired[name]]
    health, evaluate, health_one, evaluate_one = (median_run(runs[name]) for name in names)
    bound_health, bound_evaluate, bound_health_one, bound_evaluate_one = (
        median_run(runs[f"bound_{name}"]) for name in names)
    throughput_ratios = [e["rps"] / h["rps"] for e, h in zip(runs["evaluate"], runs["health"])]
    bound_ratios = [e["rps"] / h["rps"]
                    for e, h in zip(runs["bound_evaluate"], runs["bound_health"])]
    # posthog-node's in-process getAllFlags, timed in each round right after
    # the gateway's one-caller run.
    node_rounds = [load(work, f"node_local.{r}.json")["all_flags_local_us"]
                   for r in range(1, rounds + 1)]
    node["all_flags_local_us"] = {
        "p50": statistics.median(n["p50"] for n in node_rounds),
        "p99": statistics.median(n["p99"] for n in node_rounds)}
    gateway_values = load(work, "gateway_values.json")

    rows = [("plain rollout", "BM_PlainRollout", "bench-rollout"),
            ("multivariate", "BM_Multivariate", "bench-multivariate"),
            ("ten property conditions (regex, semver, dates)", "BM_TenProperties",
             "bench-ten-properties"),
            ("nested cohort", "BM_NestedCohort", "bench-nested-cohort")]
    print("| Local evaluation of one flag | gateway evaluator (ns, CPU) | posthog-node getFeatureFlag (ns) | ratio |")
    print("|---|---:|---:|---:|")
    for label, bench, key in rows:
        ours = evaluator[bench]["cpu_time"]
        theirs = node["local_ns_per_eval"][key]
        print(f"| {label} | {ours:,.0f} | {theirs:,.0f} | {theirs / ours:,.0f}x |")
    fifty = evaluator["BM_FiftyFlags"]["cpu_time"] / 1000
    print(f"| all 50 flags, evaluator alone | {fifty:,.1f} µs | "
          f"getAllFlags local p50 {node['all_flags_local_us']['p50']:,.0f} µs | |")
    print()
    def cpu(run):
        server = run.get("server_cpu_us_per_call")
        client = run.get("client_cpu_us_per_call")
        return (f"{server:,.0f}" if server is not None else "?") + " / " + \
            (f"{client:,.0f}" if client is not None else "?")

    print("| 50 flags per call | throughput (calls/s) | p50 (µs) | p99 (µs) | "
          "CPU µs per call, gateway / load generator |")
    print("|---|---:|---:|---:|---:|")
    print(f"| gateway EvaluateFlags over loopback ({evaluate['threads']} callers) | "
          f"{evaluate['rps']:,.0f} | {evaluate['p50_us']:,.0f} | {evaluate['p99_us']:,.0f} | {cpu(evaluate)} |")
    print(f"| no-op ceiling: Health/Check, same binary | {health['rps']:,.0f} | "
          f"{health['p50_us']:,.0f} | {health['p99_us']:,.0f} | {cpu(health)} |")
    print(f"| gateway EvaluateFlags, one caller | {evaluate_one['rps']:,.0f} | "
          f"{evaluate_one['p50_us']:,.0f} | {evaluate_one['p99_us']:,.0f} | {cpu(evaluate_one)} |")
    print(f"| no-op ceiling, one caller | {health_one['rps']:,.0f} | "
          f"{health_one['p50_us']:,.0f} | {health_one['p99_us']:,.0f} | {cpu(health_one)} |")
    print(f"| transport bound: the same reply pre-encoded, no evaluation "
          f"({bound_evaluate['threads']} callers) | {bound_evaluate['rps']:,.0f} | "
          f"{bound_evaluate['p50_us']:,.0f} | {bound_evaluate['p99_us']:,.0f} | {cpu(bound_evaluate)} |")
    print(f"| its no-op, Health/Check | {bound_health['rps']:,.0f} | "
          f"{bound_health['p50_us']:,.0f} | {bound_health['p99_us']:,.0f} | {cpu(bound_health)} |")
    print(f"| transport bound, one caller | {bound_evaluate_one['rps']:,.0f} | "
          f"{bound_evaluate_one['p50_us']:,.0f} | {bound_evaluate_one['p99_us']:,.0f} | "
          f"{cpu(bound_evaluate_one)} |")
    print(f"| its no-op, one caller | {bound_health_one['rps']:,.0f} | "
          f"{bound_health_one['p50_us']:,.0f} | {bound_health_one['p99_us']:,.0f} | "
          f"{cpu(bound_health_one)} |")
    print(f"| posthog-node getAllFlags, local, in-process | | "
          f"{node['all_flags_local_us']['p50']:,.0f} | {node['all_flags_local_us']['p99']:,.0f} | |")
    print(f"| posthog-node getAllFlags, remote (emulator /flags) | | "
          f"{node['all_flags_remote_us']['p50']:,.0f} | {node['all_flags_remote_us']['p99']:,.0f} | |")
    print()
    node_local = node['all_flags_local_us']['p50']
    node_remote = node['all_flags_remote_us']['p50']
    print(f"{rounds} rounds; medians shown. EvaluateFlags throughput / ceiling "
          f"({evaluate['threads']} callers): {statistics.median(throughput_ratios):.0%} "
          f"(rounds: {', '.join(f'{r:.0%}' for r in throughput_ratios)})")
    one_caller = [n["p50"] / e["p50_us"] for n, e in zip(node_rounds, runs["evaluate_one"])]
    # posthog-node answers one call at a time, so one caller is the fair
    # latency comparison; the 8-caller p50 includes queueing on 2 cores.
    print(f"one caller: EvaluateFlags p50 {evaluate_one['p50_us']:,.0f} µs vs "
          f"posthog-node getAllFlags p50 {node_local:,.0f} µs in-process: "
          f"{statistics.median(one_caller):.1f}x lower (median of the rounds: "
          f"{', '.join(f'{r:.1f}x' for r in one_caller)}; goal: at least 10x); "
          f"vs {node_remote:,.0f} µs remote: {node_remote / evaluate_one['p50_us']:.1f}x lower "
          f"(goal: lower); ceiling p50 {health_one['p50_us']:,.0f} µs")

    bound_one_caller = [n["p50"] / e["p50_us"]
                        for n, e in zip(node_rounds, runs["bound_evaluate_one"])]
    # What no evaluator, however fast, could beat on this machine: gRPC's
    # and the kernel's handling of this reply and the caller's parse of it.
    print(f"transport bound (the same reply, pre-encoded, nothing evaluated): "
          f"{statistics.median(bound_ratios):.0%} of its own no-op "
          f"(rounds: {', '.join(f'{r:.0%}' for r in bound_ratios)}); one caller "
          f"p50 {bound_evaluate_one['p50_us']:,.0f} µs = "
          f"{statistics.median(bound_one_caller):.1f}x below posthog-node in-process "
          f"(rounds: {', '.join(f'{r:.1f}x' for r in bound_one_caller)})")

    # Issue 18's goals: the gateway against the transport bound, each ratio
    # the median of the rounds' (both sides measured back to back). CPU per
    # call is the figure that holds when the load generator shares the cores.
    def ratios(ours, theirs, field):
        return [o[field] / t[field] for o, t in zip(runs[ours], runs[theirs])
                if o.get(field) and t.get(field)]

    def median_of(values, fmt):
        if not values:
            return "?"
        return (f"{fmt(statistics.median(values))} "
                f"(rounds: {', '.join(fmt(v) for v in values)})")

    percent = lambda v: f"{v:.0%}"  # noqa: E731
    times = lambda v: f"{v:.2f}x"  # noqa: E731
    print(f"pairing: in each load the gateway and the bound are measured in one phase, in "
          f"{paired['evaluate'][0]['pairing']} (the ceiling ratios above compare consecutive "
          f"phases; posthog-node's rounds run after them). Control, the same no-op on both "
          f"(about 1 if the pairing is fair): Health/Check calls/s "
          f"{median_of(ratios('health', 'bound_health', 'rps'), percent)} of the bound's, "
          f"one caller p50 {median_of(ratios('health_one', 'bound_health_one', 'p50_us'), times)}")
    # The spread from turn to turn: each A-B pair of the 8-caller
    # EvaluateFlags phase (the A B B A order's neighbours).
    def turn_ratios(phase):
        slices = [s for s in phase["slices"] if len(s) == 4]
        pairs = []
        for i in range(0, len(slices) - 1, 2):
            a, b = sorted(slices[i:i + 2], key=lambda s: s[0])
            if a[0] == 0 and b[0] == 1 and a[2] and b[2]:
                pairs.append((a[2] / a[1]) / (b[2] / b[1]))
        return pairs
    turns = [r for p in paired["evaluate"] for r in turn_ratios(p)]
    if turns:
        turns.sort()
        print(f"turn by turn (8 callers, each gateway turn against its neighbouring bound turn, "
              f"{len(turns)} pairs over the rounds): throughput {turns[0]:.0%} to "
              f"{turns[-1]:.0%}, middle half {turns[len(turns) // 4]:.0%} to "
              f"{turns[(3 * len(turns)) // 4]:.0%}")
    print(f"gateway vs transport bound ({evaluate['threads']} callers): EvaluateFlags "
          f"throughput {median_of(ratios('evaluate', 'bound_evaluate', 'rps'), percent)} "
          f"of the bound's (goal: at least 90%); server CPU per call "
          f"{median_of(ratios('evaluate', 'bound_evaluate', 'server_cpu_us_per_call'), times)} "
          f"the bound's (goal: at most 1.25x); one caller p50 "
          f"{median_of(ratios('evaluate_one', 'bound_evaluate_one', 'p50_us'), times)} "
          f"the bound's (goal: at most 1.2x)")

    differences = []
    for distinct_id, theirs in node["values"].items():
        ours = gateway_values.get(distinct_id, {})
        for key, value in theirs.items():
            if ours.get(key) != value:
                differences.append((distinct_id, key, ours.get(key), value))
    compared = sum(len(v) for v in node["values"].values())
    print(f"conformance: {compared} values compared with posthog-node, "
          f"{len(differences)} differ")
    for difference in differences[:10]:
        print("  differs:", difference)


if __name__ == "__main__":
    main()
