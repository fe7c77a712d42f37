"""Shared by the capture tests: stubs, the emulator's event store, polling.

Nothing here sleeps to synchronise: waits poll `/_emulator/events` until a
condition holds or a deadline passes.
"""

import atexit
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, HERE)

import stack  # noqa: E402
import test_user_python  # noqa: E402

DEADLINE_SECONDS = 60.0
POLL_SECONDS = 0.05


_stubs_dir = None


def load_capture_stubs(test_class):
    """Generates the stubs once per process (kept until exit: the `posthog`
    package, once imported, keeps pointing at their directory, and other
    suites in the same process import from it); returns the capture modules."""
    del test_class
    global _stubs_dir
    if _stubs_dir is None:
        _stubs_dir = tempfile.mkdtemp(prefix="polyglot-capture-stubs-")
        atexit.register(shutil.rmtree, _stubs_dir, True)
        test_user_python.generate_stubs(_stubs_dir)
    return (importlib.import_module("posthog.v1.capture_pb2"),
            importlib.import_module("posthog.v1.capture_pb2_grpc"))


def emulator_get(base_url, path):
    with urllib.request.urlopen(base_url + path, timeout=30) as response:
        return json.loads(response.read())


def emulator_post(base_url, path, body):
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def events(base_url, **filters):
    query = "&".join(f"{k}={urllib.parse.quote(str(v))}" for k, v in filters.items())
    return emulator_get(base_url, "/_emulator/events?limit=1000000&" + query)


def wait_for(condition, what, deadline_seconds=DEADLINE_SECONDS):
    """Polls `condition()` until it returns a truthy value; returns it, or
    raises AssertionError naming `what` after the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def wait_for_uuids(base_url, uuids, deadline_seconds=DEADLINE_SECONDS):
    """Waits until every uuid of `uuids` is stored; returns the stored events
    of those uuids (duplicates included)."""
    wanted = set(uuids)

    def all_there():
        stored = events(base_url)["events"]
        seen = {e["uuid"] for e in stored}
        return [e for e in stored if e["uuid"] in wanted] if wanted <= seen else None

    return wait_for(all_there, f"{len(wanted)} events in the emulator", deadline_seconds)


def stored_body(event):
    """The event as the gateway sent it: the emulator adds team_id."""
    event = dict(event)
    event.pop("team_id", None)
    return event


import urllib.parse  # noqa: E402  (used by events)
