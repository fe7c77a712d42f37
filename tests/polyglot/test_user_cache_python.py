"""GetCurrentUser's short-lived cache: a burst of calls costs PostHog one
request. Against the real gateway and emulator.
"""

import concurrent.futures
import importlib
import os
import sys
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_persons_python import _Emulator, load_stubs  # noqa: E402  (also the harness path)
import stack  # noqa: E402


class UserCacheTest(unittest.TestCase):
    def test_a_burst_of_get_current_user_costs_posthog_one_request(self):
        load_stubs()
        pb = importlib.import_module("posthog.v1.user_pb2")
        pb_grpc = importlib.import_module("posthog.v1.user_pb2_grpc")
        keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        with stack.Stack(keys) as s:
            emulator = _Emulator(s.emulator_url, keys["personal_api_key"])
            with grpc.insecure_channel(s.gateway_target) as channel:
                users = pb_grpc.UserServiceStub(channel)
                with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
                    answers = list(pool.map(
                        lambda _: users.GetCurrentUser(pb.GetCurrentUserRequest(), timeout=10),
                        range(50)))
                routes = emulator.admin("/_emulator/requests?route=users")["routes"]

        self.assertEqual(len({a.user.uuid for a in answers}), 1)
        self.assertEqual(routes["users"]["count"], 1)


if __name__ == "__main__":
    unittest.main()
