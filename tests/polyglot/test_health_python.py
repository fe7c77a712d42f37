"""Readiness from Python against the real gateway and emulator: readiness
follows what the pod itself needs (keys loaded, spool writable), never
PostHog; PostHog's state shows on `posthog.v1.FlagService`'s own entries.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_health_python.py' -v
"""

import os
import sys
import time
import unittest

import grpc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack  # noqa: E402
from test_user_python import load_user_stubs  # noqa: E402

CALL_TIMEOUT_SECONDS = 10
WAIT_SECONDS = 20
FLAG_SERVICE = "posthog.v1.FlagService"


class ReadinessWithoutPostHogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        load_user_stubs(cls, "polyglot-health-stubs-")
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED),
                                extra_config={"flags": {"poll_interval_ms": 200,
                                                        "max_backoff_ms": 200}})
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)

    def status(self, service):
        with grpc.insecure_channel(self.stack.gateway_target) as channel:
            health = self.health_pb2_grpc.HealthStub(channel)
            return health.Check(self.health_pb2.HealthCheckRequest(service=service),
                                timeout=CALL_TIMEOUT_SECONDS).status

    def wait_for_status(self, service, expected):
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            status = self.status(service)
            if status == expected or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)

    def test_a_pod_started_while_posthog_is_down_is_ready_and_flags_say_so(self):
        serving = self.health_pb2.HealthCheckResponse.SERVING
        not_serving = self.health_pb2.HealthCheckResponse.NOT_SERVING
        self.stack.stop_emulator()
        # A new pod during the outage: no definitions can load.
        self.stack.restart_gateway()

        self.assertEqual(self.wait_for_status("readiness", serving), serving)
        self.assertEqual(self.status(""), serving)
        self.assertEqual(self.status("posthog.v1.CaptureService"), serving)
        self.assertEqual(self.status(FLAG_SERVICE), not_serving)
        self.assertEqual(self.status(f"{FLAG_SERVICE}/{self.stack.alias}"), not_serving)

        # PostHog is back: the flag entries follow the first load by themselves.
        self.stack.start_emulator()
        self.assertEqual(self.wait_for_status(FLAG_SERVICE, serving), serving)
        self.assertEqual(self.status(f"{FLAG_SERVICE}/{self.stack.alias}"), serving)
        self.assertEqual(self.status("readiness"), serving)


if __name__ == "__main__":
    unittest.main()
