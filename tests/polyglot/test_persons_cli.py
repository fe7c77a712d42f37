"""`posthog persons ...` (the C++ CLI) against the real gateway and emulator."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_user_python  # noqa: E402,F401  (the harness path)
import stack  # noqa: E402

CLI_BINARY = os.path.join("client", "posthog")


class PersonsCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cli = os.path.join(stack.default_bazel_bin(), CLI_BINARY)
        if not os.access(cls.cli, os.X_OK):
            raise stack.StackError(f"{cls.cli} is missing: build it with `bazel build //client:posthog`")
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)

    def run_cli(self, *args):
        result = subprocess.run([self.cli, f"--target={self.stack.gateway_target}", *args],
                                capture_output=True, text=True, timeout=30, check=False)
        return result

    def test_list_prints_json_lines_and_resumes(self):
        listed = self.run_cli("persons", "list", "page_size=2")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        # One line per message, a message per PostHog page of 2 persons.
        lines = [json.loads(line) for line in listed.stdout.splitlines()]
        self.assertGreaterEqual(len(lines), 2)
        self.assertEqual(len(lines[0]["persons"]), 2)

        resumed = self.run_cli("persons", "list", "page_size=2", f"resume={lines[0]['resume_token']}")

        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        self.assertEqual([p["uuid"] for line in resumed.stdout.splitlines() for p in json.loads(line)["persons"]],
                         [p["uuid"] for line in lines[1:] for p in line["persons"]])

    def test_set_get_unset_delete(self):
        first = json.loads(self.run_cli("persons", "list", "limit=1").stdout.splitlines()[0])["persons"][0]
        ref = f"uuid={first['uuid']}"

        self.assertEqual(self.run_cli("persons", "set", ref, "cli_flag=true", "tier=gold").returncode, 0)
        got = json.loads(self.run_cli("persons", "get", ref).stdout)["person"]
        self.assertIs(got["properties"]["cli_flag"], True)
        self.assertEqual(got["properties"]["tier"], "gold")

        self.assertEqual(self.run_cli("persons", "unset", ref, "tier").returncode, 0)
        got = json.loads(self.run_cli("persons", "get", ref).stdout)["person"]
        self.assertNotIn("tier", got["properties"])

        self.assertEqual(self.run_cli("persons", "delete", ref).returncode, 0)
        self.assertEqual(self.run_cli("persons", "get", ref).returncode, 1)

    def test_bad_person_ref_is_a_usage_error(self):
        self.assertEqual(self.run_cli("persons", "get", "someone").returncode, 2)


if __name__ == "__main__":
    unittest.main()
