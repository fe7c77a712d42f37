"""UserService from Python: Debian's grpcio and stubs that protoc generates
from the .proto files at test time, against the real gateway and emulator.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import grpc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import seed_facts  # noqa: E402
import stack  # noqa: E402

PROTO_ROOT = os.path.join(REPO_ROOT, "proto")
API_PROTOS = [
    "posthog/v1/common.proto",
    "posthog/v1/user.proto",
    "posthog/v1/capture.proto",
    "posthog/v1/person.proto",
    "posthog/v1/group.proto",
    "posthog/v1/flag.proto",
]
HEALTH_PROTO = "/usr/share/grpc-proto/grpc/health/v1/health.proto"
CALL_TIMEOUT_SECONDS = 10


def _protoc(include_dir, out_dir, files):
    """Generates Python messages and gRPC stubs for `files` into `out_dir`."""
    result = subprocess.run(
        [
            "/usr/bin/protoc",
            f"-I{include_dir}",
            "-I/usr/include",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
        ]
        + files,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed for {files}:\n{result.stderr}")


def generate_stubs(out_dir):
    """Generates the posthog.v1 and health stubs and makes them importable.

    The API keeps its package path (posthog/v1/...), made a regular package
    so nothing installed can shadow it. The health proto is copied to a flat
    folder first: generated under grpc/health/v1 it would make a `grpc`
    package that shadows the real grpc module.
    """
    _protoc(PROTO_ROOT, out_dir, API_PROTOS)
    for package in ("posthog", os.path.join("posthog", "v1")):
        open(os.path.join(out_dir, package, "__init__.py"), "a").close()
    flat = os.path.join(out_dir, "health_proto")
    os.mkdir(flat)
    shutil.copy(HEALTH_PROTO, flat)
    _protoc(flat, out_dir, ["health.proto"])
    sys.path.insert(0, out_dir)
    importlib.invalidate_caches()


def load_user_stubs(cls, prefix):
    """Generates the stubs into a directory of the class's own (removed with
    it) and sets cls.user_pb2, cls.user_pb2_grpc, cls.health_pb2 and
    cls.health_pb2_grpc."""
    stubs_dir = tempfile.mkdtemp(prefix=prefix)
    cls.addClassCleanup(shutil.rmtree, stubs_dir, True)
    generate_stubs(stubs_dir)
    cls.user_pb2 = importlib.import_module("posthog.v1.user_pb2")
    cls.user_pb2_grpc = importlib.import_module("posthog.v1.user_pb2_grpc")
    cls.health_pb2 = importlib.import_module("health_pb2")
    cls.health_pb2_grpc = importlib.import_module("health_pb2_grpc")


class UserServicePythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        load_user_stubs(cls, "polyglot-python-stubs-")

        cls.keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        cls.expected = seed_facts.expected_user(stack.DEFAULT_SEED, cls.keys["personal_api_key"])
        cls.stack = stack.Stack(cls.keys)
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)
        cls.users = cls.user_pb2_grpc.UserServiceStub(cls.channel)

    def get_user(self, project):
        return self.users.GetCurrentUser(
            self.user_pb2.GetCurrentUserRequest(project=project),
            timeout=CALL_TIMEOUT_SECONDS,
            metadata=[("x-request-id", "polyglot-python")],
        )

    def assert_is_seed_user(self, user):
        expected = self.expected
        self.assertEqual(user.uuid, expected["uuid"])
        self.assertEqual(user.distinct_id, expected["distinct_id"])
        self.assertEqual(user.first_name, expected["first_name"])
        self.assertEqual(user.last_name, expected["last_name"])
        self.assertEqual(user.email, expected["email"])
        self.assertEqual(user.team.id, expected["team_id"])
        self.assertEqual(user.team.uuid, expected["team_uuid"])
        self.assertEqual(user.team.name, expected["team_name"])
        self.assertEqual(user.organization.id, expected["organization_id"])
        self.assertEqual(user.organization.name, expected["organization_name"])
        self.assertEqual([o.id for o in user.organizations], expected["organization_ids"])

    def test_get_current_user_with_default_project_returns_seed_user(self):
        response = self.get_user("")

        self.assert_is_seed_user(response.user)

    def test_get_current_user_by_alias_returns_seed_user(self):
        response = self.get_user(self.stack.alias)

        self.assert_is_seed_user(response.user)

    def test_get_current_user_with_unknown_project_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.get_user("no-such-project")

        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_health_check_for_whole_server_is_serving(self):
        health = self.health_pb2_grpc.HealthStub(self.channel)

        response = health.Check(self.health_pb2.HealthCheckRequest(service=""),
                                timeout=CALL_TIMEOUT_SECONDS)

        self.assertEqual(response.status, self.health_pb2.HealthCheckResponse.SERVING)

    def test_logs_never_contain_a_key_after_good_and_bad_calls(self):
        self.get_user("")
        with self.assertRaises(grpc.RpcError) as raised:
            self.get_user("no-such-project")

        logs = self.stack.logs()
        self.assertNotEqual(logs["gateway"], "", "the gateway logged nothing")
        self.assertNotEqual(logs["emulator"], "", "the emulator logged nothing")
        # Checked by hand, not with assertNotIn, whose failure message would
        # print the key.
        for key_name, key in self.keys.items():
            if key in (raised.exception.details() or ""):
                self.fail(f"{key_name} appears in an error message")
            for process, text in logs.items():
                if key in text:
                    self.fail(f"{key_name} appears in the {process} log")


if __name__ == "__main__":
    unittest.main()
