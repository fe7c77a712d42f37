"""The gateway behind a sidecar, the way a mesh puts one in front of it:
Debian's nginx stands in for Istio's Envoy, terminates the caller's mTLS,
forwards over plaintext h2c with grpc_pass, and sets x-forwarded-client-cert
as Istio's sidecar does (`By=<the gateway's SPIFFE id>;Hash=<SHA-256 of the
caller's certificate>;Subject="<its subject>";URI=<its SPIFFE id>`, replacing
whatever the caller sent). The gateway runs with `server.caller_identity:
"istio"` (deploy/gateway.example.json).

Through the sidecar: unary calls, client streaming (StreamCaptureEvents),
server streaming (ListPersons), health, rich error details
(google.rpc.BadRequest, RetryInfo) and trailers (grpc-retry-pushback-ms)
pass; the gateway's access log names the caller from its certificate, even
when the caller forges the header; a caller without a certificate never
reaches the gateway.

nginx cannot read a certificate's URI SAN into a variable, so the test maps
the certificate it issued (by its SHA-1 fingerprint, which nginx exposes) to
its SPIFFE id and SHA-256 hash: what Envoy reads from the certificate itself.
nginx cannot listen on port 0 and report the port it got (its `listen` refuses
port 0, and it has no port file), so the test picks a free port, starts nginx
on it, and when another process took the port in between (nginx exits with
"Address already in use" in its error log) picks another: NGINX_START_ATTEMPTS
at most. Any other failure to start is not retried.
"""

import hashlib
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack  # noqa: E402
import test_user_python  # noqa: E402

TIMEOUT = 10
GOOGLEAPIS = "/usr/share/gocode/src/github.com/gogo/googleapis"
GATEWAY_ID = "spiffe://cluster.local/ns/posthog/sa/posthog-gateway"
CALLER_ID = "spiffe://cluster.local/ns/shop/sa/checkout"
# nginx starts on a port picked free just before; a clash gets another port,
# this many times at most (see the module's docstring).
NGINX_START_ATTEMPTS = 5

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {dir}/nginx-access.log;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  # What Envoy reads from the verified certificate.
  map $ssl_client_fingerprint $client_uri {{ default ""; {sha1} "{uri}"; }}
  map $ssl_client_fingerprint $client_hash {{ default ""; {sha1} "{sha256}"; }}
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.key;
    ssl_client_certificate {dir}/ca.pem;
    ssl_verify_client on;
    client_max_body_size 16m;
    location / {{
      # Set, never appended: a caller cannot forge its identity.
      grpc_set_header x-forwarded-client-cert
          "By={gateway_id};Hash=$client_hash;Subject=\\"$ssl_client_s_dn\\";URI=$client_uri";
      grpc_pass grpc://{gateway};
    }}
  }}
}}
"""


def openssl(directory, *args):
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def make_certificates(directory):
    """ca.pem; server.pem/.key for 127.0.0.1; client.pem/.key with CALLER_ID as URI SAN."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(directory, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=mesh-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    for name, cn, san in (("server", "posthog-gateway", "DNS:localhost,IP:127.0.0.1"),
                          ("client", "checkout", f"URI:{CALLER_ID}")):
        with open(os.path.join(directory, f"{name}.ext"), "w", encoding="ascii") as ext:
            ext.write(f"subjectAltName={san}\n")
        openssl(directory, "req", *ec, "-subj", f"/O=shop/CN={cn}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")
        openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")


def der(pem_path):
    return subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "DER"], check=True,
                          capture_output=True).stdout


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read(path):
    with open(path, "rb") as file:
        return file.read()


class SidecarTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sidecar-test-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        stubs = os.path.join(cls.dir, "stubs")
        os.mkdir(stubs)
        test_user_python.generate_stubs(stubs)
        subprocess.run(["protoc", f"-I{GOOGLEAPIS}", "-I/usr/include", f"--python_out={stubs}",
                        f"{GOOGLEAPIS}/google/rpc/status.proto",
                        f"{GOOGLEAPIS}/google/rpc/error_details.proto"], check=True)
        for name in ("user", "person", "capture"):
            setattr(cls, name, importlib.import_module(f"posthog.v1.{name}_pb2"))
            setattr(cls, f"{name}_grpc", importlib.import_module(f"posthog.v1.{name}_pb2_grpc"))
        cls.health = importlib.import_module("health_pb2")
        cls.health_grpc = importlib.import_module("health_pb2_grpc")
        # google.rpc from its own folder: the `google` package of protobuf is a
        # namespace package, so the generated google/rpc joins it.
        import google.rpc.status_pb2 as status_pb2  # noqa: E402
        import google.rpc.error_details_pb2 as error_details_pb2  # noqa: E402
        cls.status_pb2, cls.error_details_pb2 = status_pb2, error_details_pb2

        make_certificates(cls.dir)
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED), extra_config=cls.config())
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        stack.emulator_admin(cls.stack.emulator_url, "/_emulator/seed",
                             {"generate_persons": 120, "project_id": 1})

        client_der = der(os.path.join(cls.dir, "client.pem"))
        cls.client_sha256 = hashlib.sha256(client_der).hexdigest()
        cls.nginx = None
        cls.addClassCleanup(cls.stop_nginx)
        for attempt in range(NGINX_START_ATTEMPTS):
            cls.port = free_port()
            with open(os.path.join(cls.dir, "nginx.conf"), "w", encoding="ascii") as conf:
                conf.write(NGINX_CONF.format(
                    dir=cls.dir, port=cls.port, gateway=cls.stack.gateway_target,
                    gateway_id=GATEWAY_ID, sha1=hashlib.sha1(client_der).hexdigest(),
                    sha256=hashlib.sha256(client_der).hexdigest(), uri=CALLER_ID))
            if cls.start_nginx():
                break
            print(f"\n[sidecar] port {cls.port} was taken before nginx bound it "
                  f"(attempt {attempt + 1} of {NGINX_START_ATTEMPTS})", file=sys.stderr, flush=True)
        else:
            raise AssertionError(f"nginx found each of {NGINX_START_ATTEMPTS} free ports taken")

    @classmethod
    def start_nginx(cls):
        """Starts nginx on cls.port and waits until a TLS client completes a
        call through it (bounded): True. False when nginx exited because the
        port was taken; any other failure raises."""
        error_log = os.path.join(cls.dir, "nginx-error.log")
        if os.path.exists(error_log):
            os.unlink(error_log)  # This attempt's errors only.
        cls.nginx = subprocess.Popen(["nginx", "-c", os.path.join(cls.dir, "nginx.conf"),
                                      "-p", cls.dir, "-e", error_log],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with cls.channel() as channel:
                    cls.health_grpc.HealthStub(channel).Check(
                        cls.health.HealthCheckRequest(service="liveness"), timeout=1)
                # Served through our nginx: another server on the port could
                # not present the certificate our CA signed for it.
                return True
            except grpc.RpcError:
                if cls.nginx.poll() is not None:
                    errors = read(error_log).decode(errors="replace") if os.path.exists(error_log) else ""
                    cls.nginx = None
                    if "Address already in use" in errors:
                        return False
                    raise AssertionError("nginx exited:\n" + errors)
                if time.monotonic() > deadline:
                    raise AssertionError("nginx did not serve:\n" + read(error_log).decode())
                time.sleep(0.05)

    @classmethod
    def config(cls):
        """The gateway's extra configuration: the mesh's word for the caller."""
        return {"server": {"caller_identity": "istio"}}

    @classmethod
    def stop_nginx(cls):
        if cls.nginx is None:
            return
        cls.nginx.send_signal(signal.SIGQUIT)
        try:
            cls.nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.nginx.kill()
            cls.nginx.wait()

    @classmethod
    def channel(cls, certificate=True):
        key, chain = (read(os.path.join(cls.dir, "client.key")),
                      read(os.path.join(cls.dir, "client.pem"))) if certificate else (None, None)
        credentials = grpc.ssl_channel_credentials(read(os.path.join(cls.dir, "ca.pem")), key, chain)
        return grpc.secure_channel(f"127.0.0.1:{cls.port}", credentials,
                                   options=[("grpc.ssl_target_name_override", "localhost")])

    def access_log(self):
        """The gateway's access-log entries so far (JSON lines with a method)."""
        entries = []
        for line in self.stack.logs()["gateway"].splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if "method" in entry:
                    entries.append(entry)
        return entries

    def wait_for_entry(self, method, count_before):
        """The first access-log entry for `method` after the first count_before
        entries; the line is written after the status goes out (bounded wait)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            entries = [e for e in self.access_log()[count_before:] if e["method"].endswith(method)]
            if entries:
                return entries[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no access-log entry for {method}: {self.access_log()[count_before:]}")
            time.sleep(0.05)

    def details(self, error):
        trailers = dict(error.trailing_metadata() or ())
        status = self.status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        self.assertEqual(status.code, error.code().value[0])
        return trailers, status.details

    # -- the tests ------------------------------------------------------------

    def test_unary_call_names_the_caller_from_its_certificate(self):
        before = len(self.access_log())
        with self.channel() as channel:
            user = self.user_grpc.UserServiceStub(channel).GetCurrentUser(
                self.user.GetCurrentUserRequest(), timeout=TIMEOUT).user
        self.assertIn("@", user.email)
        entry = self.wait_for_entry("GetCurrentUser", before)
        self.assertEqual((entry["code"], entry["caller"]), ("OK", CALLER_ID))

    def test_a_forged_header_is_replaced_by_the_sidecar(self):
        before = len(self.access_log())
        forged = f"By={GATEWAY_ID};URI=spiffe://cluster.local/ns/admin/sa/root"
        with self.channel() as channel:
            self.user_grpc.UserServiceStub(channel).GetCurrentUser(
                self.user.GetCurrentUserRequest(), timeout=TIMEOUT,
                metadata=[("x-forwarded-client-cert", forged)])
        self.assertEqual(self.wait_for_entry("GetCurrentUser", before)["caller"], CALLER_ID)

    def test_health_passes(self):
        with self.channel() as channel:
            response = self.health_grpc.HealthStub(channel).Check(
                self.health.HealthCheckRequest(service="readiness"), timeout=TIMEOUT)
        self.assertEqual(response.status, self.health.HealthCheckResponse.SERVING)

    def test_client_streaming_capture_passes(self):
        def requests():
            for i in range(5):
                yield self.capture.StreamCaptureEventsRequest(events=[
                    self.capture.Event(event="sidecar", distinct_id=f"sidecar-{i}-{j}") for j in range(20)])
        before = len(self.access_log())
        with self.channel() as channel:
            acknowledged = [r.acknowledged_count for r in
                            self.capture_grpc.CaptureServiceStub(channel).StreamCaptureEvents(
                                requests(), timeout=TIMEOUT)]
        self.assertEqual(acknowledged[-1], 100)
        entry = self.wait_for_entry("StreamCaptureEvents", before)
        self.assertEqual((entry["code"], entry["caller"]), ("OK", CALLER_ID))

    def test_server_streaming_list_passes_and_resumes(self):
        with self.channel() as channel:
            persons = self.person_grpc.PersonServiceStub(channel)
            messages = list(persons.ListPersons(self.person.ListPersonsRequest(page_size=50),
                                                timeout=TIMEOUT))
            everyone = [p.uuid for m in messages for p in m.persons]
            resumed = [p.uuid for m in persons.ListPersons(
                self.person.ListPersonsRequest(page_size=50, resume_token=messages[0].resume_token),
                timeout=TIMEOUT) for p in m.persons]
        self.assertGreaterEqual(len(everyone), 120)
        self.assertEqual(len(set(everyone)), len(everyone))
        self.assertEqual(resumed, everyone[len(messages[0].persons):])

    def test_bad_request_details_pass(self):
        with self.channel() as channel, self.assertRaises(grpc.RpcError) as raised:
            self.capture_grpc.CaptureServiceStub(channel).CaptureEvent(
                self.capture.CaptureEventRequest(event=self.capture.Event(event="", distinct_id="x")),
                timeout=TIMEOUT)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        _, details = self.details(raised.exception)
        bad_request = self.error_details_pb2.BadRequest()
        self.assertTrue(any(d.Unpack(bad_request) for d in details), details)
        self.assertIn("event.event", [v.field for v in bad_request.field_violations])

    def test_retry_info_and_pushback_trailer_pass_on_a_stream(self):
        stack.emulator_admin(self.stack.emulator_url, "/_emulator/faults",
                             [{"route": "persons", "status": 429, "error_rate": 1, "retry_after_s": 30,
                               "count": 1}])
        self.addCleanup(stack.emulator_admin, self.stack.emulator_url, "/_emulator/faults", [])
        with self.channel() as channel, self.assertRaises(grpc.RpcError) as raised:
            list(self.person_grpc.PersonServiceStub(channel).ListPersons(
                self.person.ListPersonsRequest(page_size=50), timeout=5))
        self.assertEqual(raised.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        trailers, details = self.details(raised.exception)
        retry = self.error_details_pb2.RetryInfo()
        self.assertTrue(any(d.Unpack(retry) for d in details), details)
        self.assertEqual(retry.retry_delay.seconds, 30)
        self.assertEqual(trailers.get("grpc-retry-pushback-ms"), "30000")

    def test_a_caller_without_a_certificate_never_reaches_the_gateway(self):
        before = len(self.access_log())
        with self.channel(certificate=False) as channel, self.assertRaises(grpc.RpcError) as raised:
            self.user_grpc.UserServiceStub(channel).GetCurrentUser(
                self.user.GetCurrentUserRequest(), timeout=TIMEOUT)
        # nginx answers HTTP 400 (text/html), no gRPC status: grpcio reports INTERNAL.
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INTERNAL, raised.exception.details())
        self.assertIn("status: 400", raised.exception.details())
        # A call that does pass afterwards is the first the gateway logs.
        with self.channel() as channel:
            self.user_grpc.UserServiceStub(channel).GetCurrentUser(
                self.user.GetCurrentUserRequest(), timeout=TIMEOUT)
        self.wait_for_entry("GetCurrentUser", before)
        self.assertEqual([e["caller"] for e in self.access_log()[before:]], [CALLER_ID])



@unittest.skipUnless(hasattr(stack, "DEV_AUTHORIZATION"), "the gateway has no authorization yet")
class SidecarAuthorizationTest(SidecarTest):
    """Every test above again, with authorization on as deploy/gateway.example.json
    documents it (development mode off, the caller granted by its SPIFFE id),
    and the audit log naming the caller from its certificate."""

    @classmethod
    def config(cls):
        return {"server": {"caller_identity": "istio"},
                "authorization": {"development_mode": False, "callers": [
                    {"caller": CALLER_ID, "projects": ["demo"],
                     "grants": ["user", "capture", "persons_read", "persons_write"]}]}}

    def audit_log(self):
        return [json.loads(line) for line in self.stack.logs()["gateway"].splitlines()
                if line.startswith("{") and '"log":"audit"' in line]

    def test_a_write_is_audited_under_the_callers_certificate_identity(self):
        before = len(self.audit_log())
        with self.channel() as channel:
            persons = self.person_grpc.PersonServiceStub(channel)
            first = next(iter(persons.ListPersons(self.person.ListPersonsRequest(limit=1),
                                                  timeout=TIMEOUT))).persons[0]
            persons.UpdatePersonProperties(
                self.person.UpdatePersonPropertiesRequest(
                    person=self.person.PersonRef(uuid=first.uuid),
                    set=self.struct({"plan": "pro"})), timeout=TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while len(self.audit_log()) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        records = self.audit_log()[before:]
        self.assertEqual([(r["method"], r["caller"], r["caller_source"], r["code"]) for r in records],
                         [("posthog.v1.PersonService/UpdatePersonProperties", CALLER_ID, "xfcc", "OK")])

    def test_an_rpc_outside_the_callers_grants_is_permission_denied(self):
        flag_pb2 = importlib.import_module("posthog.v1.flag_pb2")
        flag_pb2_grpc = importlib.import_module("posthog.v1.flag_pb2_grpc")
        with self.channel() as channel, self.assertRaises(grpc.RpcError) as raised:
            flag_pb2_grpc.FlagServiceStub(channel).EvaluateFlags(
                flag_pb2.EvaluateFlagsRequest(context=flag_pb2.EvaluationContext(distinct_id="x")),
                timeout=TIMEOUT)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    @staticmethod
    def struct(values):
        from google.protobuf import struct_pb2
        result = struct_pb2.Struct()
        result.update(values)
        return result


if __name__ == "__main__":
    unittest.main()
