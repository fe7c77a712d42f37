#!/usr/bin/python3
"""Fleet figures, printed (never asserted): 1 replica, 3 replicas without
Redis and 3 replicas with Redis, against the same emulator settings:

- three (or one) ListPersons streams at once, PERSONS persons each, under
  PostHog's persons limit lowered to PER_MINUTE/minute (emulator and
  gateways): time against the time the budget allows, and 429s;
- flag definitions requests per hour, counted at the emulator over a window
  (poll interval 500 ms; scaled to the default 30 s interval too);
- the latency a turn of the shared budget adds to a paced request (p50, p99),
  from bench/fleet:redis_turn_latency against the same redis-server.

Bounded: about four minutes. Run from the repository root after
    tools/bazel.sh build //server:posthog_gateway //emulator:posthog_emulator
    tools/bazel.sh build -c opt //bench/fleet:redis_turn_latency
    POSTHOG_BAZEL_BIN=bazel-out/k8-fastbuild/bin /usr/bin/python3 bench/fleet/bench.py

`--full_scale` runs issue 14's persons case instead, at PostHog's own limits
(240/minute and 1,200/hour, emulator and gateways): three replicas with
Redis, 30,000 persons, three ListPersons streams at once (one per replica),
each over all 30,000 persons in pages of 100 (900 requests); it prints the
time against the time the shared budget allows (goal: at most 1.1x) and the
429s, after the same streams with no limit at all (the machine's own floor).
About five minutes.
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "fleet"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "polyglot"))

import grpc  # noqa: E402

import fleet  # noqa: E402
from test_user_python import generate_stubs  # noqa: E402

PER_MINUTE = 30
PERSONS = 2000
POLL_INTERVAL_MS = 500
WINDOW_SECONDS = 10


def persons_streams(f, pb, pb_grpc, persons=PERSONS, durations=None):
    counts, errors = {}, []

    def stream(i):
        started = time.monotonic()
        try:
            with grpc.insecure_channel(f.gateway_target(i)) as channel:
                stub = pb_grpc.PersonServiceStub(channel)
                counts[i] = sum(len(page.persons) for page in stub.ListPersons(
                    pb.ListPersonsRequest(limit=persons), timeout=900))
        except grpc.RpcError as error:
            errors.append(error.code().name)
        if durations is not None:
            durations[i] = time.monotonic() - started

    started = time.monotonic()
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(f.replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, counts, errors


def run(replicas, redis, pb, pb_grpc):
    with fleet.Fleet(replicas, redis=redis, emulator_args=("--rate_limits=on",), extra_config={
            "paging": {"persons_per_minute": PER_MINUTE},
            "flags": {"poll_interval_ms": POLL_INTERVAL_MS}}) as f:
        f.emulator_admin("/_emulator/rate_limits", {
            "enabled": True, "persons_per_minute": PER_MINUTE, "persons_per_hour": 1200})
        f.emulator_admin("/_emulator/seed", {"generate_persons": 30000, "project_id": 1})
        before = f.route_count("flag_definitions")
        started = time.monotonic()
        time.sleep(WINDOW_SECONDS)  # The definitions measurement window.
        per_hour = (f.route_count("flag_definitions") - before) / (time.monotonic() - started) * 3600
        elapsed, counts, errors = persons_streams(f, pb, pb_grpc)
        statuses = f.route_statuses("persons")
        requests = sum(statuses.values())
        budget = max(0, requests - PER_MINUTE) / PER_MINUTE * 60
        label = f"{replicas} replica{'s' if replicas > 1 else ''}, {'Redis' if redis else 'no Redis'}"
        print(f"{label:<22} persons: {replicas} x {PERSONS} in {elapsed:5.1f} s, budget allows "
              f"{budget:5.1f} s ({elapsed / max(budget, 1):.2f}x); 429s {statuses.get('429', 0)}; "
              f"failed streams {len(errors)}; definitions {per_hour:6.0f}/h at 500 ms "
              f"({per_hour * POLL_INTERVAL_MS / 30000:4.0f}/h at 30 s)", flush=True)
        port = f.redis_port
        if redis:
            binary = os.path.join(REPO_ROOT, "bazel-out", "k8-opt", "bin", "bench", "fleet",
                                  "redis_turn_latency")
            if os.access(binary, os.X_OK):
                out = subprocess.run([binary, f"--redis=127.0.0.1:{port}", "--turns=5000"],
                                     capture_output=True, text=True, timeout=120, check=False)
                print(f"{'':<22} {out.stdout.strip() or out.stderr.strip()}", flush=True)


def budget_seconds(requests, per_minute, per_hour):
    """How long PostHog's throttle allows `requests` to take at the least:
    each window is a sliding log (DRF's), full at the start, so request k
    (from 0) may go at floor(k / limit) windows; the last one decides."""
    if requests == 0:
        return 0.0
    return max((requests - 1) // per_minute * 60, (requests - 1) // per_hour * 3600)


def smooth_seconds(requests, per_minute):
    """The same at a smooth rate after the first window's burst (what the
    figures before --full_scale used): an underestimate for a sliding log."""
    return max(0, requests - per_minute) / per_minute * 60


def full_scale(pb, pb_grpc, persons=30000, per_minute=240, per_hour=1200):
    # The floor first: the same streams with no limit anywhere (what the
    # machine itself takes to move 90,000 persons through three gateways).
    with fleet.Fleet(3, redis=True, extra_config={
            "paging": {"persons_per_minute": 0, "persons_per_hour": 0}}) as f:
        f.emulator_admin("/_emulator/seed", {"generate_persons": persons, "project_id": 1})
        durations = {}
        elapsed, counts, errors = persons_streams(f, pb, pb_grpc, persons, durations)
        print(f"3 replicas, no limit: 3 streams x {persons} persons = {sum(counts.values())} "
              f"persons in {elapsed:.1f} s; failed streams {errors}", flush=True)
    with fleet.Fleet(3, redis=True, emulator_args=("--rate_limits=on",), extra_config={
            "paging": {"persons_per_minute": per_minute, "persons_per_hour": per_hour}}) as f:
        f.emulator_admin("/_emulator/rate_limits", {
            "enabled": True, "persons_per_minute": per_minute, "persons_per_hour": per_hour})
        f.emulator_admin("/_emulator/seed", {"generate_persons": persons, "project_id": 1})
        before = sum(f.route_statuses("persons").values())
        durations = {}
        elapsed, counts, errors = persons_streams(f, pb, pb_grpc, persons, durations)
        statuses = f.route_statuses("persons")
        requests = sum(statuses.values()) - before
        budget = budget_seconds(requests, per_minute, per_hour)
        smooth = smooth_seconds(requests, per_minute)
        print(f"3 replicas, Redis, PostHog's limits ({per_minute}/min, {per_hour}/h): 3 streams x "
              f"{persons} persons (pages of 100) = {sum(counts.values())} persons, {requests} "
              f"requests in {elapsed:.1f} s; the shared budget (sliding windows) allows them in "
              f"{budget:.1f} s ({elapsed / max(budget, 1):.3f}x; {elapsed / max(smooth, 1):.3f}x "
              f"the smooth-rate {smooth:.1f} s); 429s {statuses.get('429', 0)}; failed streams "
              f"{errors}; per stream {', '.join(f'{durations[i]:.1f} s' for i in sorted(durations))}",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full_scale", action="store_true",
                        help="only the 30,000-person, 240/min case of issue 14")
    args = parser.parse_args()
    stubs = tempfile.mkdtemp(prefix="fleet-bench-stubs-")
    try:
        generate_stubs(stubs)
        pb = importlib.import_module("posthog.v1.person_pb2")
        pb_grpc = importlib.import_module("posthog.v1.person_pb2_grpc")
        if args.full_scale:
            full_scale(pb, pb_grpc)
            return
        print(f"persons limit {PER_MINUTE}/min (emulator and gateways); each stream "
              f"{PERSONS} persons = {PERSONS // 100} pages", flush=True)
        run(1, False, pb, pb_grpc)
        run(3, False, pb, pb_grpc)
        run(3, True, pb, pb_grpc)
    finally:
        shutil.rmtree(stubs, True)


if __name__ == "__main__":
    main()
