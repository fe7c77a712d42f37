#!/usr/bin/python3
"""ListGroups benchmark (issue 19): PostHog's cursor-paginated groups list
through the gateway. Prints figures; asserts nothing.

  tools/bazel.sh build //server:posthog_gateway //emulator:posthog_emulator
  /usr/bin/python3 bench/groups/bench.py [--bazel_bin=DIR] [--groups=20000] [--runs=3]

(a) --groups groups, 20 ms injected latency per page at the emulator, PostHog
    rate limits off (emulator and gateway): a sequential urllib loop following
    `next` (what a user writes) vs ListGroups through the gateway. A cursor
    page cannot be fetched before the one naming it, so the bound is
    pages x page latency; printed with each run's ratio to it and to the loop.
    The gateway asks for gzip, as PostHog's SDKs (and `requests`) do, and the
    emulator then spends time compressing each page that plain urllib never
    asks for: the same loop asking for gzip is printed too.
(b) Groups created (through PostHog's REST API, another thread) while a
    ListGroups runs: groups streamed twice, and groups that existed at the
    start but were not streamed (both must be 0).
"""

import argparse
import gzip
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
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


def rest(url, key, body=None, accept_gzip=False):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if accept_gzip:
        headers["Accept-Encoding"] = "gzip"
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)


def sequential_loop(url, key, accept_gzip=False):
    """What a user writes: GET, follow `next` until null."""
    next_url = f"{url}/api/projects/1/groups/?group_type_index=0"
    keys = []
    while next_url:
        page = rest(next_url, key, accept_gzip=accept_gzip)
        keys.extend(g["group_key"] for g in page["results"])
        next_url = page["next"]
    return keys


def stream(pb, pb_grpc, target, timeout=600):
    with grpc.insecure_channel(target) as channel:
        groups = pb_grpc.GroupServiceStub(channel)
        start = time.monotonic()
        keys = []
        for message in groups.ListGroups(pb.ListGroupsRequest(group_type_index=0), timeout=timeout):
            keys.extend(g.group_key for g in message.groups)  # What a caller does: touch each.
        return keys, time.monotonic() - start


def groups_requests(url):
    return admin(url, "/_emulator/requests?route=groups")["routes"].get("groups", {}).get("count", 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bazel_bin", default=None)
    parser.add_argument("--groups", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inserters", type=int, default=2, help="threads creating groups in (b)")
    args = parser.parse_args()

    stubs = tempfile.mkdtemp(prefix="bench-groups-stubs-")
    test_user_python.generate_stubs(stubs)
    pb = importlib.import_module("posthog.v1.group_pb2")
    pb_grpc = importlib.import_module("posthog.v1.group_pb2_grpc")
    keys = stack.keys_from_seed(stack.DEFAULT_SEED)
    key = keys["personal_api_key"]

    s = stack.Stack(keys, bazel_bin=args.bazel_bin, extra_config=NO_LIMITS,
                    emulator_args=["--rate_limits=off"])
    s.__enter__()
    try:
        admin(s.emulator_url, "/_emulator/seed",
              {"generate_groups": args.groups, "project_id": 1, "group_type_index": 0})
        admin(s.emulator_url, "/_emulator/faults", [{"route": "groups", "latency_ms": LATENCY_MS}])
        print(f"(a) {args.groups} groups, {LATENCY_MS} ms per page at the emulator, limits off")
        loops, streams = [], []
        for run in range(args.runs):
            before = groups_requests(s.emulator_url)
            t0 = time.monotonic()
            loop_keys = sequential_loop(s.emulator_url, key)
            loop_time = time.monotonic() - t0
            pages = groups_requests(s.emulator_url) - before
            t0 = time.monotonic()
            gzip_keys = sequential_loop(s.emulator_url, key, accept_gzip=True)
            gzip_time = time.monotonic() - t0
            assert gzip_keys == loop_keys
            before = groups_requests(s.emulator_url)
            stream_keys, stream_time = stream(pb, pb_grpc, s.gateway_target)
            stream_pages = groups_requests(s.emulator_url) - before
            assert stream_keys == loop_keys, "the gateway streamed another list than the loop"
            bound = stream_pages * LATENCY_MS / 1000.0
            loops.append(loop_time)
            streams.append(stream_time / bound)
            print(f"    run {run + 1}: loop {len(loop_keys)} groups, {pages} pages in {loop_time:.2f} s; "
                  f"ListGroups {len(stream_keys)} groups, {stream_pages} pages in {stream_time:.2f} s; "
                  f"bound {stream_pages} x {LATENCY_MS} ms = {bound:.2f} s; "
                  f"ListGroups/bound {stream_time / bound:.3f}x, ListGroups/loop "
                  f"{stream_time / loop_time:.3f}x, loop/bound {loop_time / bound:.3f}x; "
                  f"gzip loop {gzip_time:.2f} s, ListGroups/gzip loop {stream_time / gzip_time:.3f}x")
        print(f"    median ListGroups/bound {statistics.median(streams):.3f}x")
        # What the emulator itself costs per page (no injected latency).
        admin(s.emulator_url, "/_emulator/faults", [])
        t0 = time.monotonic()
        plain = len(sequential_loop(s.emulator_url, key))
        plain_time = time.monotonic() - t0
        t0 = time.monotonic()
        sequential_loop(s.emulator_url, key, accept_gzip=True)
        gzip_time = time.monotonic() - t0
        pages = (plain + 99) // 100
        print(f"    without injected latency, per page: urllib loop {plain_time / pages * 1000:.2f} ms, "
              f"gzip loop {gzip_time / pages * 1000:.2f} ms")
        admin(s.emulator_url, "/_emulator/faults", [{"route": "groups", "latency_ms": LATENCY_MS}])

        # (b) Inserts during a list (latency kept, so the list takes seconds).
        existing = set(sequential_loop(s.emulator_url, key))
        created = []
        stop = threading.Event()

        def insert(worker):
            k = 0
            while not stop.is_set():
                body = {"group_type_index": 0, "group_key": f"bench-inserted-{worker}-{k}",
                        "group_properties": {}}
                created.append(rest(f"{s.emulator_url}/api/projects/1/groups/", key, body)["group_key"])
                k += 1

        threads = [threading.Thread(target=insert, args=(w,)) for w in range(args.inserters)]
        for thread in threads:
            thread.start()
        try:
            listed, list_time = stream(pb, pb_grpc, s.gateway_target)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        duplicates = len(listed) - len(set(listed))
        skipped = len(existing - set(listed))
        inserted_listed = len(set(listed) & set(created))
        print(f"(b) {len(created)} groups created while ListGroups streamed {len(listed)} in {list_time:.2f} s: "
              f"{duplicates} streamed twice, {skipped} of the {len(existing)} existing groups skipped "
              f"({inserted_listed} of the new ones streamed: those created before the list reached "
              f"the first page)")
    finally:
        s.stop()
        shutil.rmtree(stubs, ignore_errors=True)


if __name__ == "__main__":
    main()
