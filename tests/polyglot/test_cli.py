"""The C++ command-line tool (`posthog`, //client:posthog) against the real
gateway and emulator: output, exit statuses and decoded error details.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import json
import os
import subprocess
import sys
import unittest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import seed_facts  # noqa: E402
import stack  # noqa: E402

CLI_BINARY = os.path.join("client", "posthog")
RUN_TIMEOUT_SECONDS = 30


class PosthogCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cli = os.path.join(stack.default_bazel_bin(), CLI_BINARY)
        if not os.access(cls.cli, os.X_OK):
            raise stack.StackError(f"{cls.cli} is missing: build it with `bazel build //client:posthog`")
        cls.keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        cls.expected = seed_facts.expected_user(stack.DEFAULT_SEED, cls.keys["personal_api_key"])
        cls.stack = stack.Stack(cls.keys)
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)

    def run_cli(self, *args, target=None):
        return subprocess.run(
            [self.cli, f"--target={target or self.stack.gateway_target}", *args],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )

    def assert_no_key_in(self, text):
        # Not assertNotIn: its failure message would print the key.
        for key_name, key in self.keys.items():
            if key in text:
                self.fail(f"{key_name} appears in the output")

    def test_user_get_prints_seed_user_as_json(self):
        result = self.run_cli("--request_id=polyglot-cli", "user", "get")

        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        user = json.loads(result.stdout)["user"]
        expected = self.expected
        self.assertEqual(user["uuid"], expected["uuid"])
        self.assertEqual(user["distinct_id"], expected["distinct_id"])
        self.assertEqual(user["first_name"], expected["first_name"])
        self.assertEqual(user["last_name"], expected["last_name"])
        self.assertEqual(user["email"], expected["email"])
        # Protobuf's JSON mapping writes int64 as a string.
        self.assertEqual(user["team"]["id"], str(expected["team_id"]))
        self.assertEqual(user["team"]["uuid"], expected["team_uuid"])
        self.assertEqual(user["team"]["name"], expected["team_name"])
        self.assertEqual(user["organization"]["id"], expected["organization_id"])
        self.assertEqual(user["organization"]["name"], expected["organization_name"])
        self.assertEqual([o["id"] for o in user["organizations"]], expected["organization_ids"])
        self.assert_no_key_in(result.stdout)

    def test_user_get_with_unknown_project_exits_one_with_bad_request_detail(self):
        result = self.run_cli("--project=no-such-project", "user", "get")

        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        self.assertTrue(lines[0].startswith("error: INVALID_ARGUMENT: "), result.stderr)
        self.assertIn("no-such-project", lines[0])
        self.assertTrue(
            any(line.startswith("  BadRequest: project: ") for line in lines[1:]),
            f"no BadRequest violation for `project` in:\n{result.stderr}",
        )
        self.assert_no_key_in(result.stderr)

    def test_unreachable_gateway_exits_one_with_unavailable(self):
        result = self.run_cli("--timeout=5s", "user", "get",
                              target="unix:/nonexistent/posthog-gateway.sock")

        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertTrue(result.stderr.startswith("error: UNAVAILABLE: "), result.stderr)

    def test_unknown_command_exits_two_without_calling(self):
        result = self.run_cli("user", "delete")

        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        self.assertEqual(result.stderr,
                         "error: unknown command \"user delete\"\n"
                         "Run 'posthog --help' for usage.\n")

    def test_help_lists_commands_and_exits_zero(self):
        result = self.run_cli("--help")

        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("\n  user get  ", result.stdout)
        self.assertIn("\n  --target\n", result.stdout)


if __name__ == "__main__":
    unittest.main()
