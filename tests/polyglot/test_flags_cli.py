"""The `posthog flags ...` commands against the real gateway and emulator.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import importlib
import json
import os
import subprocess
import sys
import time
import unittest

import grpc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))

import stack  # noqa: E402
from test_persons_python import load_stubs  # noqa: E402  (kept for the whole process)

CLI_BINARY = os.path.join("client", "posthog")
RUN_TIMEOUT_SECONDS = 30


class FlagsCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cli = os.path.join(stack.default_bazel_bin(), CLI_BINARY)
        if not os.access(cls.cli, os.X_OK):
            raise stack.StackError(f"{cls.cli} is missing: build it with `bazel build //client:posthog`")
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED),
                                extra_config={"flags": {"poll_interval_ms": 200}})
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        # The tests read the local definitions: the gateway waits for their
        # first load at start only a bounded while, and FlagService's health
        # entry turns SERVING once they are loaded.
        load_stubs()
        health_pb2 = importlib.import_module("health_pb2")
        health_pb2_grpc = importlib.import_module("health_pb2_grpc")
        with grpc.insecure_channel(cls.stack.gateway_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="posthog.v1.FlagService")
            deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
            while (health.Check(request, timeout=RUN_TIMEOUT_SECONDS).status
                   != health_pb2.HealthCheckResponse.SERVING):
                if time.monotonic() > deadline:
                    raise AssertionError("posthog.v1.FlagService never SERVING")
                time.sleep(0.05)

    def run_cli(self, *args):
        result = subprocess.run(
            [self.cli, f"--target={self.stack.gateway_target}", *args],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False)
        return result

    def run_json(self, *args):
        result = self.run_cli(*args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_list_local_shows_the_seed_flags(self):
        message = self.run_json("flags", "list-local")
        keys = [flag["key"] for flag in message["definitions"]["flags"]]
        self.assertIn("beta-feature", keys)

    def test_evaluate_by_distinct_id_and_by_context(self):
        results = self.run_json("flags", "evaluate", "user-1", "disabled-flag")["results"]
        self.assertEqual(results["disabled-flag"]["reason"]["code"], "FLAG_REASON_CODE_FLAG_DISABLED")
        context = json.dumps({"distinct_id": "u2", "person_properties": {"plan": "pro"}})
        results = self.run_json("flags", "evaluate", context, "pro-users")["results"]
        self.assertTrue(results["pro-users"]["enabled"])
        self.assertEqual(results["pro-users"]["source"], "FLAG_DECISION_SOURCE_LOCAL")

    def test_create_get_update_delete(self):
        flag = {"key": "cli-managed", "name": "From the CLI", "active": True,
                "filters": {"groups": [{"rollout_percentage": 20}]}}
        created = self.run_json("flags", "create", json.dumps(flag))["flag"]
        flag_id = created["id"]
        got = self.run_json("flags", "get", str(flag_id))["flag"]
        self.assertEqual(got["key"], "cli-managed")
        stale = self.run_cli("flags", "update",
                             json.dumps({"id": flag_id, "name": "x",
                                         "version": int(got.get("version", 0)) + 9}), "name")
        self.assertNotEqual(stale.returncode, 0)
        self.assertIn("ABORTED", stale.stderr)
        updated = self.run_json("flags", "update",
                                json.dumps({"id": flag_id, "name": "renamed",
                                            "version": got.get("version", "0")}), "name")["flag"]
        self.assertEqual(updated["name"], "renamed")
        self.run_json("flags", "delete", str(flag_id))

    def test_list_prints_json_lines_newest_first_and_resumes(self):
        listed = self.run_cli("flags", "list", "page_size=2")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        # One line per message, a message per PostHog page of 2 flags.
        lines = [json.loads(line) for line in listed.stdout.splitlines()]
        keys = [flag["key"] for line in lines for flag in line["flags"]]
        # The seed's flags over several pages of 2, newest (highest id) first.
        self.assertGreaterEqual(len(keys), 6)
        self.assertEqual(keys[-2:], ["checkout-experiment", "beta-feature"])
        self.assertEqual([line["progress"]["page"] for line in lines], list(range(1, len(lines) + 1)))
        self.assertTrue(all(len(line["flags"]) <= 2 for line in lines))
        self.assertTrue(all(line["resume_token"] for line in lines))

        def listed_keys(result):
            return [flag["key"] for line in result.stdout.splitlines()
                    for flag in json.loads(line)["flags"]]

        resumed = self.run_cli("flags", "list", "page_size=3", f"resume={lines[0]['resume_token']}")
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertEqual(listed_keys(resumed), keys[2:])

        limited = self.run_cli("flags", "list", "limit=2")
        self.assertEqual(listed_keys(limited), keys[:2])

    def test_list_with_a_forged_token_fails_with_invalid_argument(self):
        result = self.run_cli("flags", "list", "resume=forged.token")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        self.assertIn("INVALID_ARGUMENT", result.stderr)
        self.assertIn("resume_token", result.stderr)

    def test_list_with_an_unknown_argument_is_a_usage_error(self):
        result = self.run_cli("flags", "list", "sort=key")
        self.assertEqual(result.returncode, 2)
        self.assertIn("unknown flags list argument", result.stderr)

    def test_bad_id_is_a_usage_error(self):
        result = self.run_cli("flags", "get", "abc")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ID must be a positive integer", result.stderr)


if __name__ == "__main__":
    unittest.main()
