"""`posthog groups ...` (the C++ CLI) against the real gateway and emulator."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_user_python  # noqa: E402,F401  (the harness path)
import stack  # noqa: E402

CLI_BINARY = os.path.join("client", "posthog")


class GroupsCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cli = os.path.join(stack.default_bazel_bin(), CLI_BINARY)
        if not os.access(cls.cli, os.X_OK):
            raise stack.StackError(f"{cls.cli} is missing: build it with `bazel build //client:posthog`")
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        stack.emulator_admin(cls.stack.emulator_url, "/_emulator/seed",
                             {"generate_groups": 150, "project_id": 1, "group_type_index": 0})

    def run_cli(self, *args):
        return subprocess.run([self.cli, f"--target={self.stack.gateway_target}", *args],
                              capture_output=True, text=True, timeout=30, check=False)

    @staticmethod
    def keys(stdout):
        return [g["group_key"] for line in stdout.splitlines() for g in json.loads(line)["groups"]]

    def test_list_prints_json_lines_and_resumes(self):
        listed = self.run_cli("groups", "list", "0")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        lines = [json.loads(line) for line in listed.stdout.splitlines()]
        # A line per PostHog page of 100.
        self.assertEqual([len(line["groups"]) for line in lines], [100, 50])
        cut = self.run_cli("groups", "list", "0", "limit=42")
        token = json.loads(cut.stdout.splitlines()[-1])["resume_token"]

        resumed = self.run_cli("groups", "list", "0", f"resume={token}")

        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertEqual(self.keys(cut.stdout) + self.keys(resumed.stdout), self.keys(listed.stdout))

    def test_create_get_set_unset(self):
        created = self.run_cli("groups", "create", "1", "cli-acme", '{"plan": "pro"}')
        self.assertEqual(created.returncode, 0, created.stderr)
        self.assertEqual(json.loads(created.stdout)["group"]["group_key"], "cli-acme")
        self.assertEqual(self.run_cli("groups", "set", "1", "cli-acme", "seats=3", "tier=gold").returncode, 0)
        self.assertEqual(self.run_cli("groups", "unset", "1", "cli-acme", "plan").returncode, 0)
        got = self.run_cli("groups", "get", "1", "cli-acme")
        self.assertEqual(got.returncode, 0, got.stderr)
        properties = json.loads(got.stdout)["group"]["group_properties"]
        self.assertEqual(properties, {"seats": 3, "tier": "gold"})
        types = json.loads(self.run_cli("groups", "types").stdout)["group_types"]
        self.assertEqual([t["group_type"] for t in types], ["company", "project"])

    def test_errors(self):
        self.assertEqual(self.run_cli("groups", "get", "zero", "k").returncode, 2)  # Usage.
        missing = self.run_cli("groups", "get", "0", "nobody")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("NOT_FOUND", missing.stderr)
        self.assertEqual(self.run_cli("groups", "list", "7").returncode, 1)  # INVALID_ARGUMENT.


if __name__ == "__main__":
    unittest.main()
