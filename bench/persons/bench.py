#!/usr/bin/python3
"""ListPersons benchmark (issue 6), side by side in one run. Prints figures;
asserts nothing.

  tools/bazel.sh build --config=opt //server:posthog_gateway //emulator:posthog_emulator
  /usr/bin/python3 bench/persons/bench.py --bazel_bin=bazel-out/k8-opt/bin

(a) 50,000 persons, 20 ms injected latency per page, PostHog rate limits off
    (emulator and gateway): a sequential urllib loop following `next` (100 per
    page, as a user would write it) vs ListPersons through the gateway (100
    per page). Also the time to the first person.
(b) PostHog's rate limits on in the emulator (240/min, 1200/hour) and the
    gateway's defaults (the same): --rate_persons persons (default 30,000 =
    300 pages of 100, so the minute budget binds: 240 pages at once, the rest
    one minute later). Reports 429s seen by the emulator and the stream time
    against the time the budget allows.
(c) Gateway peak RSS (VmHWM) after streaming 5,000 and 50,000 persons, each
    with a fresh gateway.
"""

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "polyglot"))

import grpc  # noqa: E402

import stack  # noqa: E402
import test_user_python  # noqa: E402

LATENCY_MS = 20
NO_LIMITS = {"paging": {"persons_per_minute": 0, "persons_per_hour": 0}}


def admin(url, path, body=None):
    return stack.emulator_admin(url, path, body)


def sequential_loop(url, key):
    """What a user writes: GET, follow `next` until null."""
    next_url = f"{url}/api/projects/1/persons/?limit=100"
    count = 0
    while next_url:
        request = urllib.request.Request(next_url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.loads(response.read())
        count += len(page["results"])
        next_url = page["next"]
    return count


def stream(pb, pb_grpc, target, timeout=600):
    with grpc.insecure_channel(target) as channel:
        persons = pb_grpc.PersonServiceStub(channel)
        start = time.monotonic()
        first = None
        count = 0
        for message in persons.ListPersons(pb.ListPersonsRequest(page_size=100), timeout=timeout):
            if first is None:
                first = time.monotonic() - start
            for person in message.persons:  # What a caller does: touch each person.
                count += 1 if person.uuid else 0
        return count, time.monotonic() - start, first


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def start(keys, bazel_bin, persons, config_extra):
    s = stack.Stack(keys, bazel_bin=bazel_bin, extra_config=config_extra,
                    emulator_args=["--rate_limits=off"])
    s.__enter__()
    admin(s.emulator_url, "/_emulator/seed", {"generate_persons": persons, "project_id": 1})
    return s


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bazel_bin", default=None)
    parser.add_argument("--persons", type=int, default=50000)
    parser.add_argument("--small_persons", type=int, default=5000)
    parser.add_argument("--rate_persons", type=int, default=30000)
    parser.add_argument("--skip_rate", action="store_true")
    parser.add_argument("--look_ahead", type=int, default=3, help="the gateway's paging.look_ahead")
    args = parser.parse_args()
    NO_LIMITS["paging"]["look_ahead"] = args.look_ahead

    stubs = tempfile.mkdtemp(prefix="bench-persons-stubs-")
    test_user_python.generate_stubs(stubs)
    pb = importlib.import_module("posthog.v1.person_pb2")
    pb_grpc = importlib.import_module("posthog.v1.person_pb2_grpc")
    keys = stack.keys_from_seed(stack.DEFAULT_SEED)
    latency = [{"route": "persons", "latency_ms": LATENCY_MS}]

    # (c) first: the small list on a fresh gateway.
    s = start(keys, args.bazel_bin, args.small_persons, NO_LIMITS)
    try:
        admin(s.emulator_url, "/_emulator/faults", latency)
        small_count, small_time, _ = stream(pb, pb_grpc, s.gateway_target)
        small_rss = peak_rss_kib(s._gateway.popen.pid)
    finally:
        s.stop()

    # (a) and (c): the large list.
    s = start(keys, args.bazel_bin, args.persons, NO_LIMITS)
    try:
        admin(s.emulator_url, "/_emulator/faults", latency)
        t0 = time.monotonic()
        loop_count = sequential_loop(s.emulator_url, keys["personal_api_key"])
        loop_time = time.monotonic() - t0
        count, stream_time, first = stream(pb, pb_grpc, s.gateway_target)
        large_rss = peak_rss_kib(s._gateway.popen.pid)
    finally:
        s.stop()

    print(f"(a) {args.persons} persons (+ the seed's), {LATENCY_MS} ms per page, 100 per page, limits off")
    print(f"    sequential urllib loop following next: {loop_count} persons in {loop_time:.2f} s")
    print(f"    ListPersons through the gateway (look-ahead {args.look_ahead}): {count} persons in {stream_time:.2f} s "
          f"= {stream_time / loop_time:.2f}x the loop")
    print(f"(d) time to first person through the gateway: {first * 1000:.0f} ms")
    print(f"(c) gateway peak RSS: {small_rss / 1024:.1f} MiB after {small_count} persons, "
          f"{large_rss / 1024:.1f} MiB after {count} persons")

    if args.skip_rate:
        return
    # (b) PostHog's rate limits on, the gateway's default pacing.
    s = start(keys, args.bazel_bin, args.rate_persons, None)
    try:
        admin(s.emulator_url, "/_emulator/faults", latency)
        admin(s.emulator_url, "/_emulator/rate_limits", {"enabled": True})
        limits = admin(s.emulator_url, "/_emulator/rate_limits")
        count, stream_time, _ = stream(pb, pb_grpc, s.gateway_target)
        routes = admin(s.emulator_url, "/_emulator/requests?route=persons")["routes"]["persons"]
    finally:
        s.stop()
    pages = routes["count"]
    per_minute = limits.get("persons_per_minute", 240)
    budget = ((pages - 1) // per_minute) * 60.0
    throttled = routes["status"].get("429", 0)
    print(f"(b) rate limits on ({per_minute}/min): {count} persons, {pages} requests, "
          f"{throttled} answered 429, in {stream_time:.2f} s; the budget allows "
          f"{budget:.0f} s (+ latency) = {stream_time / max(budget, 1e-9):.3f}x")
    shutil.rmtree(stubs, ignore_errors=True)


if __name__ == "__main__":
    main()
