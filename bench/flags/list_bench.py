#!/usr/bin/python3
"""ListFlags benchmark, side by side in one run. Prints figures; asserts nothing.

  tools/bazel.sh build --config=opt //server:posthog_gateway //emulator:posthog_emulator
  /usr/bin/python3 bench/flags/list_bench.py --bazel_bin=bazel-out/k8-opt/bin

--flags generated flags (default 5,000) plus the seed's, 20 ms injected latency
per page, the gateway's flag-list pacing off: a sequential urllib loop following
`next` (100 per page, as a user would write it) vs ListFlags through the gateway
(100 per page) read by Python, and again read as raw bytes (no Python protobuf
parsing, so the gateway's own pace shows). Also the time to the first flag and
the requests the gateway sent (PostHog's `count` stops the look-ahead at the
end: ceil(n / 100)). Each round alternates the three.
"""

import argparse
import importlib
import json
import os
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
NO_LIMITS = {"paging": {"flags_per_minute": 0, "flags_per_hour": 0}}


def admin(url, path, body=None):
    return stack.emulator_admin(url, path, body)


def flag_requests(url):
    return admin(url, "/_emulator/requests?route=feature_flags")["routes"]["feature_flags"]["count"]


def sequential_loop(url, key):
    """What a user writes: GET, follow `next` until null."""
    next_url = f"{url}/api/projects/1/feature_flags/?limit=100"
    count = 0
    while next_url:
        request = urllib.request.Request(next_url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.loads(response.read())
        count += len(page["results"])
        next_url = page["next"]
    return count


def list_flags(pb, pb_grpc, target):
    with grpc.insecure_channel(target) as channel:
        flags = pb_grpc.FlagServiceStub(channel)
        start = time.monotonic()
        first = None
        count = 0
        for message in flags.ListFlags(pb.ListFlagsRequest(page_size=100), timeout=600):
            if first is None:
                first = time.monotonic() - start
            count += len(message.flags)
        return count, time.monotonic() - start, first


def list_flags_raw(pb, target):
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_stream("/posthog.v1.FlagService/ListFlags",
                                    request_serializer=pb.ListFlagsRequest.SerializeToString,
                                    response_deserializer=lambda raw: raw)
        start = time.monotonic()
        count = 0
        size = 0
        for message in call(pb.ListFlagsRequest(page_size=100), timeout=600):
            count += 1
            size += len(message)
        return count, time.monotonic() - start, size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bazel_bin", default=None)
    parser.add_argument("--flags", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    stubs = tempfile.mkdtemp(prefix="bench-list-flags-stubs-")
    test_user_python.generate_stubs(stubs)
    pb = importlib.import_module("posthog.v1.flag_pb2")
    pb_grpc = importlib.import_module("posthog.v1.flag_pb2_grpc")
    keys = stack.keys_from_seed(stack.DEFAULT_SEED)

    with stack.Stack(keys, bazel_bin=args.bazel_bin, extra_config=NO_LIMITS,
                     emulator_args=["--rate_limits=off"]) as s:
        admin(s.emulator_url, "/_emulator/seed", {"generate_flags": args.flags, "project_id": 1})
        admin(s.emulator_url, "/_emulator/faults", [{"route": "feature_flags", "latency_ms": LATENCY_MS}])
        print(f"{args.flags} flags (+ the seed's), {LATENCY_MS} ms per page, 100 per page, pacing off")
        for round_index in range(args.rounds):
            t0 = time.monotonic()
            loop_count = sequential_loop(s.emulator_url, keys["personal_api_key"])
            loop_time = time.monotonic() - t0
            before = flag_requests(s.emulator_url)
            count, stream_time, first = list_flags(pb, pb_grpc, s.gateway_target)
            requests = flag_requests(s.emulator_url) - before
            raw_count, raw_time, raw_size = list_flags_raw(pb, s.gateway_target)
            print(f"round {round_index + 1}: loop {loop_count} flags in {loop_time:.2f} s; "
                  f"ListFlags {count} in {stream_time:.2f} s = {stream_time / loop_time:.2f}x "
                  f"(first flag {first * 1000:.0f} ms, {requests} requests); "
                  f"undecoded: {raw_count} messages ({raw_size / raw_count:.0f} B each) in {raw_time:.2f} s "
                  f"= {raw_time / loop_time:.2f}x")


if __name__ == "__main__":
    main()
