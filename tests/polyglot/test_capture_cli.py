"""The `posthog capture ...` commands of the C++ CLI against the real gateway
and emulator.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import json
import os
import subprocess
import unittest

import capture_helpers as helpers
import stack

RUN_TIMEOUT_SECONDS = 30


class CaptureCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cli = os.path.join(stack.default_bazel_bin(), "client", "posthog")
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)

    def run_cli(self, *args):
        return subprocess.run([self.cli, f"--target={self.stack.gateway_target}", *args],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS,
                              check=False)

    def stored(self, uuid):
        [event] = helpers.wait_for_uuids(self.stack.emulator_url, [uuid])
        return event

    def test_capture_event_prints_the_uuid_and_delivers(self):
        result = self.run_cli("capture", "event", "cli event", "cli-user", '{"plan": "pro"}')

        self.assertEqual(result.returncode, 0, result.stderr)
        uuid = json.loads(result.stdout)["uuid"]
        event = self.stored(uuid)
        self.assertEqual((event["event"], event["distinct_id"]), ("cli event", "cli-user"))
        self.assertEqual(event["properties"]["plan"], "pro")

    def test_geoip_is_off_unless_the_flag_turns_it_on(self):
        for flags, expected in [((), True), (("--geoip=off",), True), (("--geoip=on",), None)]:
            with self.subTest(flags=flags):
                result = self.run_cli(*flags, "capture", "event", "cli geoip", "cli-geo")
                self.assertEqual(result.returncode, 0, result.stderr)
                properties = self.stored(json.loads(result.stdout)["uuid"])["properties"]
                self.assertEqual(properties.get("$geoip_disable"), expected)
                self.assertIs(properties["$is_server"], True)

    def test_a_bad_geoip_value_is_a_usage_error(self):
        result = self.run_cli("--geoip=maybe", "capture", "event", "e", "d")

        self.assertEqual(result.returncode, 2)
        self.assertIn("--geoip must be on or off", result.stderr)

    def test_identify_alias_group_and_set(self):
        commands = [
            (("identify", "cli-42", '{"email": "c@example.com"}', "anon-cli"), "$identify"),
            (("alias", "cli-42", "cli-alias"), "$create_alias"),
            (("group", "company", "acme", '{"name": "Acme"}'), "$groupidentify"),
            (("set", "cli-42", '{"plan": "team"}'), "$set"),
        ]
        for args, event_name in commands:
            with self.subTest(command=args[0]):
                result = self.run_cli("capture", *args)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(self.stored(json.loads(result.stdout)["uuid"])["event"],
                                 event_name)

    def test_malformed_json_is_a_usage_error(self):
        result = self.run_cli("capture", "event", "e", "d", "not json")

        self.assertEqual(result.returncode, 2)
        self.assertIn("PROPERTIES_JSON", result.stderr)

    def test_empty_event_name_exits_one_naming_the_field(self):
        result = self.run_cli("capture", "event", "", "d")

        self.assertEqual(result.returncode, 1)
        self.assertIn("event.event", result.stderr)


if __name__ == "__main__":
    unittest.main()
