"""Who may call what, through the real gateway and emulator: the matrix of
each kind of caller (none, Istio's x-forwarded-client-cert, Linkerd's
l5d-client-id, the gateway's own mTLS, bearer tokens) × every RPC of every
posthog.v1 service × granted and other projects; plus the attacker's
unclosed quote, per-caller quotas, the audit log and the access log's
caller.

Requests are raw bytes holding only `project` (field 1 of every request),
so no stubs are needed. "Allowed" means the call got past authorization: any
code but UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED (an empty
request is usually INVALID_ARGUMENT); a few calls check their exact answer.
"""

import hashlib
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

import stack  # noqa: E402

TIMEOUT = 10

# Every RPC and the grant it needs (server/authz/grants.cc says the same).
METHODS = {
    "/posthog.v1.CaptureService/CaptureEvent": "capture",
    "/posthog.v1.CaptureService/BatchCaptureEvents": "capture",
    "/posthog.v1.CaptureService/StreamCaptureEvents": "capture",
    "/posthog.v1.CaptureService/Identify": "capture",
    "/posthog.v1.CaptureService/Alias": "capture",
    "/posthog.v1.CaptureService/GroupIdentify": "capture",
    "/posthog.v1.CaptureService/SetPersonProperties": "capture",
    "/posthog.v1.FlagService/EvaluateFlag": "flag_evaluation",
    "/posthog.v1.FlagService/EvaluateFlags": "flag_evaluation",
    "/posthog.v1.FlagService/WatchFlagDefinitions": "flag_evaluation",
    "/posthog.v1.FlagService/ListFlags": "flag_management",
    "/posthog.v1.FlagService/GetFlag": "flag_management",
    "/posthog.v1.FlagService/CreateFlag": "flag_management",
    "/posthog.v1.FlagService/UpdateFlag": "flag_management",
    "/posthog.v1.FlagService/DeleteFlag": "flag_management",
    "/posthog.v1.GroupService/ListGroupTypes": "groups_read",
    "/posthog.v1.GroupService/ListGroups": "groups_read",
    "/posthog.v1.GroupService/GetGroup": "groups_read",
    "/posthog.v1.GroupService/CreateGroup": "groups_write",
    "/posthog.v1.GroupService/UpdateGroupProperties": "groups_write",
    "/posthog.v1.PersonService/ListPersons": "persons_read",
    "/posthog.v1.PersonService/GetPerson": "persons_read",
    "/posthog.v1.PersonService/DeletePerson": "persons_write",
    "/posthog.v1.PersonService/UpdatePersonProperties": "persons_write",
    "/posthog.v1.UserService/GetCurrentUser": "user",
}
GROUPS = sorted(set(METHODS.values()))
SERVER_STREAMING = {"/posthog.v1.FlagService/WatchFlagDefinitions",
                    "/posthog.v1.FlagService/ListFlags",
                    "/posthog.v1.GroupService/ListGroups",
                    "/posthog.v1.PersonService/ListPersons"}
BIDI = {"/posthog.v1.CaptureService/StreamCaptureEvents"}
REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
           grpc.StatusCode.RESOURCE_EXHAUSTED}
GRANTED = "demo"
OTHER = "other"


def request_bytes(project):
    encoded = project.encode()
    return b"\x0a" + bytes([len(encoded)]) + encoded


def call(channel, method, project, metadata=()):
    """The status code and message of one call (OK when it ended well, or
    when a stream's first message arrived)."""
    request = request_bytes(project)
    try:
        if method in BIDI:
            responses = channel.stream_stream(method)(iter([request]), timeout=TIMEOUT,
                                                      metadata=metadata)
            for _ in responses:
                pass
        elif method in SERVER_STREAMING:
            responses = channel.unary_stream(method)(request, timeout=TIMEOUT,
                                                     metadata=metadata)
            try:
                next(responses)
            except StopIteration:
                pass
            responses.cancel()
        else:
            channel.unary_unary(method)(request, timeout=TIMEOUT, metadata=metadata)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def openssl(directory, *args):
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def make_ca(directory):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(directory, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=authz-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    return ec


def make_cert(directory, ec, name, cn, san):
    with open(os.path.join(directory, f"{name}.ext"), "w") as ext:
        ext.write(f"subjectAltName={san}\n")
    openssl(directory, "req", *ec, "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
    openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")


def read(path):
    with open(path, "rb") as file:
        return file.read()


class AuthzStack:
    """A gateway with two projects (demo, other), authorization on, and
    `callers` granted one group each on demo."""

    def __init__(self, test, callers, gateway_args=(), quotas=None):
        self.dir = tempfile.mkdtemp(prefix="polyglot-authz-")
        test.addClassCleanup(shutil.rmtree, self.dir, True)
        self.audit_path = os.path.join(self.dir, "audit.jsonl")
        authorization = {
            "callers": callers,
            "audit_log_file": self.audit_path,
        }
        if quotas is not None:
            authorization["quotas"] = quotas
        self.tokens_path = os.path.join(self.dir, "bearer_tokens")
        with open(self.tokens_path, "w") as tokens:
            for group in GROUPS:
                digest = hashlib.sha256(f"token-{group}".encode()).hexdigest()
                tokens.write(f"bearer-{group} {digest}\n")
        authorization["bearer_tokens_file"] = self.tokens_path
        self.stack = stack.Stack(
            stack.keys_from_seed(stack.DEFAULT_SEED),
            gateway_args=stack.DEFAULT_GATEWAY_ARGS + tuple(gateway_args),
            extra_config={"authorization": authorization},
            extra_projects=[{"alias": OTHER, "project_id": 2}])
        self.stack.__enter__()
        test.addClassCleanup(self.stack.stop)

    def audit_records(self):
        try:
            with open(self.audit_path, encoding="utf-8") as audit:
                return [json.loads(line) for line in audit if line.strip()]
        except FileNotFoundError:
            return []


def one_group_callers(name_of):
    return [{"caller": name_of(group), "projects": [GRANTED], "grants": [group]}
            for group in GROUPS]


class MatrixMixin:
    """Runs the matrix for cls.kind's callers: `metadata_of(group)` is how a
    caller granted only `group` on demo presents itself (`channel_of(group)`
    the channel it calls on)."""

    def metadata_of(self, group):
        return ()

    def channel_of(self, group):
        return self.channel

    def test_no_identity_is_unauthenticated_for_every_rpc(self):
        for method in METHODS:
            for project in (GRANTED, OTHER, ""):
                code, details = call(self.anonymous_channel(), method, project)
                self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED,
                                 f"{method} on {project!r}: {details}")

    def test_each_group_is_allowed_on_its_project_and_denied_elsewhere(self):
        for group in GROUPS:
            channel, metadata = self.channel_of(group), self.metadata_of(group)
            for method, needed in METHODS.items():
                with self.subTest(kind=self.kind, group=group, method=method):
                    code, details = call(channel, method, GRANTED, metadata)
                    if needed == group:
                        self.assertNotIn(code, REFUSED, details)
                    else:
                        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, details)
                        self.assertIn(f'lacks the grant "{needed}" on project "{GRANTED}"',
                                      details)
                    code, details = call(channel, method, OTHER, metadata)
                    self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, details)
                    self.assertIn(f'lacks the grant "{needed}" on project "{OTHER}"', details)

    def test_a_granted_caller_gets_real_answers(self):
        code, details = call(self.channel_of("user"),
                             "/posthog.v1.UserService/GetCurrentUser", GRANTED,
                             self.metadata_of("user"))
        self.assertEqual(code, grpc.StatusCode.OK, details)
        code, details = call(self.channel_of("persons_read"),
                             "/posthog.v1.PersonService/ListPersons", "",  # The default.
                             self.metadata_of("persons_read"))
        self.assertEqual(code, grpc.StatusCode.OK, details)


class IstioAndBearerTest(MatrixMixin, unittest.TestCase):
    kind = "xfcc"

    @classmethod
    def setUpClass(cls):
        callers = one_group_callers(lambda g: f"spiffe://cluster.local/ns/test/sa/{g}")
        callers += one_group_callers(lambda g: f"bearer-{g}")
        callers.append({"caller": "spiffe://cluster.local/ns/test/sa/limited",
                        "projects": [GRANTED], "grants": ["persons_read"],
                        "quotas": {"persons_per_minute": 2}})
        cls.gateway = AuthzStack(cls, callers, gateway_args=("--caller_identity=istio",))
        cls.channel = grpc.insecure_channel(cls.gateway.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)

    def anonymous_channel(self):
        return self.channel

    @staticmethod
    def xfcc(uri):
        return "By=spiffe://cluster.local/ns/posthog/sa/gateway;Hash=00;URI=" + uri

    def metadata_of(self, group):
        return (("x-forwarded-client-cert", self.xfcc(f"spiffe://cluster.local/ns/test/sa/{group}")),)

    def test_bearer_callers_follow_the_same_matrix(self):
        for group in GROUPS:
            metadata = (("authorization", f"Bearer token-{group}"),)
            for method, needed in METHODS.items():
                with self.subTest(kind="bearer", group=group, method=method):
                    code, details = call(self.channel, method, GRANTED, metadata)
                    if needed == group:
                        self.assertNotIn(code, REFUSED, details)
                    else:
                        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, details)
                    code, _ = call(self.channel, method, OTHER, metadata)
                    self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)

    def test_a_wrong_bearer_token_is_unauthenticated(self):
        for token in ("token-userx", "", "token-user "):
            code, details = call(self.channel, "/posthog.v1.UserService/GetCurrentUser",
                                 GRANTED, (("authorization", f"Bearer {token}"),))
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, token)

    def test_the_attackers_unclosed_quote_names_nobody(self):
        # The caller sends its own header; Istio's sidecar appends its element.
        forged = "URI=spiffe://cluster.local/ns/test/sa/persons_write;Subject=\""
        header = forged + "," + self.xfcc("spiffe://cluster.local/ns/test/sa/capture")
        code, _ = call(self.channel, "/posthog.v1.PersonService/DeletePerson", GRANTED,
                       (("x-forwarded-client-cert", header),))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)

    def test_a_callers_quota_ends_in_resource_exhausted_with_retry_info(self):
        metadata = (("x-forwarded-client-cert",
                     self.xfcc("spiffe://cluster.local/ns/test/sa/limited")),)
        method = "/posthog.v1.PersonService/GetPerson"
        started = time.monotonic()
        for _ in range(2):
            code, details = call(self.channel, method, GRANTED, metadata)
            self.assertNotIn(code, REFUSED, details)
        try:
            self.channel.unary_unary(method)(request_bytes(GRANTED), timeout=TIMEOUT,
                                             metadata=metadata)
            self.fail("the third call in a minute passed")
        except grpc.RpcError as error:
            elapsed_ms = (time.monotonic() - started) * 1000
            self.assertEqual(error.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("quota of 2 persons requests per minute", error.details())
            trailers = dict(error.trailing_metadata())
            # Half a minute for one call's worth at 2 a minute, less the time
            # since the bucket was last filled: at most what the three calls
            # took here (not a fixed second: a loaded machine may take more).
            self.assertGreaterEqual(int(trailers["grpc-retry-pushback-ms"]), 30000 - elapsed_ms - 1)
            self.assertLessEqual(int(trailers["grpc-retry-pushback-ms"]), 30000)
        # Another caller with the persons_read grant is not held back.
        code, details = call(self.channel, method, GRANTED, self.metadata_of("persons_read"))
        self.assertNotIn(code, REFUSED, details)

    # Runs last (unittest sorts by name): it stops the stack to read its logs.
    def test_zz_writes_and_deletes_are_audited_and_the_access_log_names_the_caller(self):
        writer = self.metadata_of("persons_write")
        call(self.channel, "/posthog.v1.PersonService/DeletePerson", GRANTED,
             writer + (("x-request-id", "audit-me"),))
        call(self.channel, "/posthog.v1.FlagService/DeleteFlag", GRANTED,
             self.metadata_of("user") + (("x-request-id", "audit-denied"),))
        self.gateway.stack.stop()  # Every record and log line is out.
        records = {r.get("request_id"): r for r in self.gateway.audit_records()}
        self.assertEqual(records["audit-me"]["caller"],
                         "spiffe://cluster.local/ns/test/sa/persons_write")
        self.assertEqual(records["audit-me"]["caller_source"], "xfcc")
        self.assertEqual(records["audit-me"]["method"], "posthog.v1.PersonService/DeletePerson")
        self.assertEqual(records["audit-me"]["project"], GRANTED)
        self.assertEqual(records["audit-me"]["target"], "person (none named)")
        self.assertEqual(records["audit-me"]["code"], "InvalidArgument")
        self.assertEqual(records["audit-denied"]["code"], "PermissionDenied")
        self.assertEqual(records["audit-denied"]["target"], "flag id 0")
        log = self.gateway.stack.logs()["gateway"]
        self.assertIn('"caller":"spiffe://cluster.local/ns/test/sa/persons_write"', log)
        self.assertNotIn('"log":"audit"', log, "audit records went to the file only")


class LinkerdTest(MatrixMixin, unittest.TestCase):
    kind = "l5d"

    @classmethod
    def setUpClass(cls):
        cls.gateway = AuthzStack(cls, one_group_callers(cls.identity),
                                 gateway_args=("--caller_identity=linkerd",))
        cls.channel = grpc.insecure_channel(cls.gateway.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)

    @staticmethod
    def identity(group):
        return f"{group.replace('_', '-')}.test.serviceaccount.identity.linkerd.cluster.local"

    def anonymous_channel(self):
        return self.channel

    def metadata_of(self, group):
        return (("l5d-client-id", self.identity(group)),)

    def test_an_istio_header_is_not_trusted_here(self):
        code, _ = call(self.channel, "/posthog.v1.UserService/GetCurrentUser", GRANTED,
                       (("x-forwarded-client-cert", "URI=" + self.identity("user")),))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)


class MutualTlsTest(MatrixMixin, unittest.TestCase):
    kind = "tls"

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="polyglot-authz-certs-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        ec = make_ca(cls.certs)
        make_cert(cls.certs, ec, "server", "localhost", "DNS:localhost,IP:127.0.0.1")
        for group in GROUPS:
            make_cert(cls.certs, ec, group, f"{group}-service",
                      f"URI:spiffe://cluster.local/ns/test/sa/{group},DNS:{group}.test")
        # No SPIFFE URI: named by its subject.
        make_cert(cls.certs, ec, "plain", "plain-service", "DNS:plain.test")
        callers = one_group_callers(lambda g: f"spiffe://cluster.local/ns/test/sa/{g}")
        callers.append({"caller": "CN=plain-service", "projects": ["*"], "grants": ["user"]})
        cls.gateway = AuthzStack(cls, callers, gateway_args=(
            "--caller_identity=tls",
            f"--tls_cert_file={cls.certs}/server.pem",
            f"--tls_key_file={cls.certs}/server.key",
            f"--tls_client_ca_file={cls.certs}/ca.pem",
        ))
        cls.channels = {}

    @classmethod
    def tls_channel(cls, name):
        if name not in cls.channels:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=read(os.path.join(cls.certs, "ca.pem")),
                private_key=read(os.path.join(cls.certs, f"{name}.key")),
                certificate_chain=read(os.path.join(cls.certs, f"{name}.pem")))
            channel = grpc.secure_channel(
                cls.gateway.stack.gateway_target, credentials,
                options=(("grpc.ssl_target_name_override", "localhost"),))
            cls.addClassCleanup(channel.close)
            cls.channels[name] = channel
        return cls.channels[name]

    def channel_of(self, group):
        return self.tls_channel(group)

    def test_no_identity_is_unauthenticated_for_every_rpc(self):
        # Every TLS caller presents a certificate (the CA requires one); the
        # "no identity" case is a certificate-bearing caller spoofing mesh
        # headers, which TLS mode ignores: it is still only itself.
        channel = self.tls_channel("capture")
        for method, needed in METHODS.items():
            code, _ = call(channel, method, GRANTED, (
                ("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/test/sa/" + needed),
                ("l5d-client-id", "spiffe://cluster.local/ns/test/sa/" + needed)))
            if needed == "capture":
                self.assertNotIn(code, REFUSED)
            else:
                self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, method)

    def test_a_certificate_without_a_spiffe_uri_is_named_by_its_subject(self):
        channel = self.tls_channel("plain")
        code, details = call(channel, "/posthog.v1.UserService/GetCurrentUser", OTHER)
        self.assertNotIn(code, REFUSED, details)
        code, details = call(channel, "/posthog.v1.PersonService/GetPerson", GRANTED)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn('caller "CN=plain-service"', details)


class DevelopmentModeTest(unittest.TestCase):
    """The harness's default: development mode, every call allowed."""

    @classmethod
    def setUpClass(cls):
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)

    def test_every_rpc_passes_authorization_without_credentials(self):
        for method in METHODS:
            code, details = call(self.channel, method, GRANTED)
            self.assertNotIn(code, REFUSED, f"{method}: {details}")

    def test_the_gateway_says_it_runs_without_authorization(self):
        # On loopback (tests listen nowhere else) a notice; beyond it the
        # loud warning of tests/authz/authorizer_test.cc.
        self.assertIn("development mode: no authorization (listening on loopback only)",
                      self.stack.logs()["gateway"])


if __name__ == "__main__":
    unittest.main()
