"""The gateway with TLS turned on by its --tls_* flags (what the Kubernetes
`components/tls` does), against Python's grpcio and the posthog CLI: TLS
callers served, plaintext ones refused, client certificates required with a
client CA, and the plaintext port serving health only. Certificates are
made for each run with the openssl command.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import seed_facts  # noqa: E402
import stack  # noqa: E402
from test_user_python import load_user_stubs  # noqa: E402

CALL_TIMEOUT_SECONDS = 10


def openssl(directory, *args):
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def make_certificates(directory):
    """ca.pem; server.pem/.key for localhost and 127.0.0.1; client.pem/.key."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(directory, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    for name, cn in (("server", "localhost"), ("client", "billing-service")):
        with open(os.path.join(directory, f"{name}.ext"), "w") as ext:
            ext.write(f"subjectAltName=DNS:{cn},IP:127.0.0.1\n")
        openssl(directory, "req", *ec, "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")
        openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey",
                "ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.pem")


def logged_health_port(gateway_log):
    """The plaintext health port the gateway bound, from its log line."""
    ports = [json.loads(line)["port"] for line in gateway_log.splitlines()
             if line.startswith("{") and '"plaintext health listening"' in line]
    if len(ports) != 1:
        raise AssertionError(f"expected one plaintext health port in the log:\n{gateway_log}")
    return int(ports[0])


def read(path):
    with open(path, "rb") as file:
        return file.read()


class TlsFlagsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        load_user_stubs(cls, "polyglot-tls-stubs-")

        cls.certs = tempfile.mkdtemp(prefix="polyglot-tls-certs-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        make_certificates(cls.certs)
        cls.keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        cls.expected = seed_facts.expected_user(stack.DEFAULT_SEED, cls.keys["personal_api_key"])
        cls.stack = stack.Stack(cls.keys, gateway_args=stack.DEFAULT_GATEWAY_ARGS + (
            f"--tls_cert_file={cls.certs}/server.pem",
            f"--tls_key_file={cls.certs}/server.key",
            f"--tls_client_ca_file={cls.certs}/ca.pem",
            # Any free port, bound by the gateway and read from its log: a
            # port picked here and closed could be taken before it binds it.
            "--tls_plaintext_health_port=0",
        ))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        # The log line is written before the port file, which Stack waited for.
        cls.health_port = logged_health_port(cls.stack.logs()["gateway"])

    def tls_channel(self, with_certificate):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(f"{self.certs}/ca.pem"),
            private_key=read(f"{self.certs}/client.key") if with_certificate else None,
            certificate_chain=read(f"{self.certs}/client.pem") if with_certificate else None)
        channel = grpc.secure_channel(self.stack.gateway_target, credentials)
        self.addCleanup(channel.close)
        return channel

    def get_user(self, channel):
        return self.user_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
            self.user_pb2.GetCurrentUserRequest(), timeout=CALL_TIMEOUT_SECONDS)

    def test_a_caller_with_a_certificate_is_served(self):
        response = self.get_user(self.tls_channel(with_certificate=True))
        self.assertEqual(response.user.email, self.expected["email"])

    def test_a_caller_without_a_certificate_is_refused(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.get_user(self.tls_channel(with_certificate=False))
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_a_plaintext_caller_is_refused(self):
        channel = grpc.insecure_channel(self.stack.gateway_target)
        self.addCleanup(channel.close)
        with self.assertRaises(grpc.RpcError) as raised:
            self.get_user(channel)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_the_plaintext_health_port_serves_readiness_and_nothing_else(self):
        channel = grpc.insecure_channel(f"127.0.0.1:{self.health_port}")
        self.addCleanup(channel.close)
        health = self.health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 20
        while True:
            status = health.Check(self.health_pb2.HealthCheckRequest(service="readiness"),
                                  timeout=CALL_TIMEOUT_SECONDS).status
            if status == self.health_pb2.HealthCheckResponse.SERVING or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(status, self.health_pb2.HealthCheckResponse.SERVING)
        with self.assertRaises(grpc.RpcError) as raised:
            self.get_user(channel)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_the_cli_connects_with_its_certificate(self):
        cli = os.path.join(stack.default_bazel_bin(), "client", "posthog")
        result = subprocess.run(
            [cli, f"--target={self.stack.gateway_target}", "--tls",
             f"--ca_file={self.certs}/ca.pem", f"--cert_file={self.certs}/client.pem",
             f"--key_file={self.certs}/client.key", "user", "get"],
            capture_output=True, text=True, timeout=30, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["user"]["email"], self.expected["email"])


if __name__ == "__main__":
    unittest.main()
