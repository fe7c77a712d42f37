"""The gateway's container image, run under podman (runc) the way the
Kubernetes manifests run it: read-only root filesystem, every capability
dropped, no privilege escalation, uid 10001, the spool on a volume, the keys
as mounted files readable through the group, /tmp a tmpfs, explicit ulimits;
against the PostHog emulator on the host's loopback (--network=host).

Checks: the OCI labels and the build_info metric name the same version,
revision and source; no shell or package manager in the image; health
SERVING; GetCurrentUser; 1,000 durable captures while PostHog refuses them;
`podman stop` exits 0 (no SIGKILL) within the grace period; a second
container on the same volume delivers what the first left in the spool,
counted at the emulator: every acknowledged event, none lost.

Run by tests/image/run.sh, which builds the image and sets POSTHOG_IMAGE.
"""

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "polyglot"))

import grpc  # noqa: E402

import stack  # noqa: E402
import test_user_python  # noqa: E402

IMAGE = os.environ.get("POSTHOG_IMAGE", "")
# The pod's terminationGracePeriodSeconds and the gateway's flags in
# deploy/kubernetes/base/deployment.yaml.
GRACE_SECONDS = 40
GATEWAY_FLAGS = ["--drain_delay=5s", "--shutdown_grace=20s"]
TIMEOUT = 60
# podman's default rlimits are above what this machine lets a process set
# ("error setting rlimit type 7"): pass them explicitly, within the hard limits
# this process has (as a kubelet's container runtime would apply its own).
NOFILE = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
NPROC = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
ULIMITS = [f"--ulimit=nofile={NOFILE}:{NOFILE}", f"--ulimit=nproc={NPROC}:{NPROC}"]
CAPTURED = 1000
SPOOL = "/var/lib/posthog-gateway/spool"
KEYS = "/var/run/secrets/posthog/default"


def podman(*args, check=True, timeout=120):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def poll(read, done, what, timeout=TIMEOUT):
    """Calls read() every 50 ms until done(value) or the deadline; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout} s")
        time.sleep(0.05)


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not IMAGE:
            raise unittest.SkipTest("run through tests/image/run.sh (POSTHOG_IMAGE)")
        stubs = tempfile.mkdtemp(prefix="image-stubs-")
        cls.addClassCleanup(shutil.rmtree, stubs, True)
        test_user_python.generate_stubs(stubs)
        import importlib
        cls.user_pb2 = importlib.import_module("posthog.v1.user_pb2")
        cls.user_pb2_grpc = importlib.import_module("posthog.v1.user_pb2_grpc")
        cls.capture_pb2 = importlib.import_module("posthog.v1.capture_pb2")
        cls.capture_pb2_grpc = importlib.import_module("posthog.v1.capture_pb2_grpc")
        cls.health_pb2 = importlib.import_module("health_pb2")
        cls.health_pb2_grpc = importlib.import_module("health_pb2_grpc")

        cls.dir = tempfile.mkdtemp(prefix="image-test-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.run_id = uuid.uuid4().hex[:12]
        cls.emulator = stack._Process(
            "emulator",
            [os.path.join(os.environ.get("POSTHOG_BAZEL_BIN") or stack.default_bazel_bin(),
                          "emulator", "posthog_emulator"),
             f"--seed={stack.DEFAULT_SEED}", "--host=127.0.0.1", "--port=0",
             f"--port_file={cls.dir}/emulator.port"],
            f"{cls.dir}/emulator.log", f"{cls.dir}/emulator.port")
        cls.emulator.start()
        cls.addClassCleanup(cls.emulator.stop, 30)
        cls.emulator.wait_for_port(time.monotonic() + TIMEOUT)
        cls.emulator_url = f"http://127.0.0.1:{cls.emulator.port}"

        # The keys as the Secret's files: root-owned, group 10001 (fsGroup), 0440.
        cls.keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        keys_dir = os.path.join(cls.dir, "keys")
        os.mkdir(keys_dir, 0o750)
        os.chown(keys_dir, 0, 10001)
        for name, value in cls.keys.items():
            path = os.path.join(keys_dir, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(value)
            os.chown(path, 0, 10001)
            os.chmod(path, 0o440)
        config_dir = os.path.join(cls.dir, "config")
        os.mkdir(config_dir)
        project = {"alias": "demo", "project_id": 1, "ingestion_host": cls.emulator_url,
                   "app_host": cls.emulator_url}
        for name in cls.keys:
            project[name] = {"file": f"{KEYS}/{name}"}
        config = {"default_project": "demo", "projects": [project],
                  "capture": {"spool_dir": SPOOL, "flush_interval_ms": 20, "max_backoff_ms": 1000}}
        # Once the gateway has authorization, a test on loopback runs in its
        # development mode, as the harness does (docs/security.md).
        if hasattr(stack, "DEV_AUTHORIZATION"):
            config["authorization"] = dict(stack.DEV_AUTHORIZATION)
        with open(os.path.join(config_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f)
        os.chmod(os.path.join(config_dir, "config.json"), 0o444)
        cls.config_dir, cls.keys_dir = config_dir, keys_dir
        cls.volume = f"posthog-gateway-spool-{cls.run_id}"
        podman("volume", "create", cls.volume)
        cls.addClassCleanup(podman, "volume", "rm", "--force", cls.volume, check=False)

    # -- helpers --------------------------------------------------------------

    def start_gateway(self, name):
        """Runs the image as the manifests do; returns (target, admin port)."""
        out = os.path.join(self.dir, name)
        os.mkdir(out)
        os.chown(out, 10001, 10001)
        podman("run", "--detach", f"--name={name}", "--runtime=runc", "--network=host",
               "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
               "--user=10001:10001", *ULIMITS,
               "--tmpfs=/tmp:rw,size=64m,mode=1777",
               f"--stop-timeout={GRACE_SECONDS}",
               f"--volume={self.volume}:{SPOOL}",
               f"--volume={self.config_dir}:/etc/posthog-gateway:ro",
               f"--volume={self.keys_dir}:{KEYS}:ro",
               f"--volume={out}:/var/run/posthog-gateway",
               IMAGE, "--config=/etc/posthog-gateway/config.json", "--host=127.0.0.1",
               "--port=0", "--port_file=/var/run/posthog-gateway/port", "--admin_port=0",
               *GATEWAY_FLAGS)
        self.addCleanup(podman, "rm", "--force", "--time=0", name, check=False)

        def port():
            if podman("inspect", "--format={{.State.Running}}", name).stdout.strip() != "true":
                raise AssertionError(f"{name} exited:\n{podman('logs', name).stderr}")
            try:
                with open(os.path.join(out, "port"), encoding="ascii") as f:
                    return f.read().strip()
            except FileNotFoundError:
                return ""
        grpc_port = poll(port, str.isdigit, f"{name}'s port file")
        admin = poll(lambda: self.admin_port(name), bool, f"{name}'s admin port")
        return f"127.0.0.1:{grpc_port}", admin

    @staticmethod
    def admin_port(name):
        for line in podman("logs", name).stderr.splitlines():
            if line.startswith("{") and '"admin server listening"' in line:
                return json.loads(line)["port"]
        return None

    def stop(self, name):
        """podman stop (SIGTERM, SIGKILL after the grace period); returns the exit code."""
        podman("stop", f"--time={GRACE_SECONDS}", name, timeout=GRACE_SECONDS + 30)
        return int(podman("inspect", "--format={{.State.ExitCode}}", name).stdout.strip())

    def emulator_events(self, distinct_id):
        url = f"{self.emulator_url}/_emulator/events?distinct_id={distinct_id}&limit=100000"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            return json.loads(answer.read())

    def labels(self):
        return json.loads(podman("image", "inspect", "--format={{json .Labels}}", IMAGE).stdout)

    # -- the tests ------------------------------------------------------------

    def test_labels_name_this_build(self):
        status = subprocess.run([os.path.join(REPO_ROOT, "tools", "workspace_status.sh")],
                                capture_output=True, text=True, check=True).stdout
        stable = dict(line.split(" ", 1) for line in status.splitlines())
        with open(os.path.join(REPO_ROOT, "VERSION"), encoding="ascii") as f:
            version = f.read().strip()
        labels = self.labels()
        self.assertEqual(labels["org.opencontainers.image.version"], version)
        revision = labels["org.opencontainers.image.revision"]
        if stable["STABLE_GIT_REVISION"] == "unknown":
            self.assertEqual(revision, "unknown")
        else:
            # The commit built: HEAD on a fresh build, an earlier commit of this
            # repository when commits (or a rebase) came after the build.
            self.assertRegex(revision, r"^[0-9a-f]{40}$")
            self.assertEqual(subprocess.run(["git", "-C", REPO_ROOT, "cat-file", "-e", revision + "^{commit}"],
                                            check=False).returncode, 0, revision)
        self.assertEqual(labels["org.opencontainers.image.source"], stable["STABLE_SOURCE_URL"])

    def test_no_shell_or_package_manager(self):
        for program in ("/bin/sh", "/bin/bash", "/usr/bin/dash", "/usr/bin/apt-get", "/usr/bin/apt",
                        "/usr/bin/dpkg"):
            result = podman("run", "--rm", "--runtime=runc", "--network=none", *ULIMITS,
                            f"--entrypoint={program}",
                            IMAGE, "--version", check=False)
            self.assertNotEqual(result.returncode, 0, program)
            self.assertRegex(result.stderr, r"no such file or directory|not found", program)

    def test_serves_stops_cleanly_and_a_second_container_delivers_the_spool(self):
        target, admin = self.start_gateway(f"gateway-a-{self.run_id}")
        with grpc.insecure_channel(target) as channel:
            health = self.health_pb2_grpc.HealthStub(channel)
            poll(lambda: health.Check(self.health_pb2.HealthCheckRequest(service="readiness"),
                                      timeout=TIMEOUT).status,
                 lambda s: s == self.health_pb2.HealthCheckResponse.SERVING, "readiness")
            user = self.user_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                self.user_pb2.GetCurrentUserRequest(), timeout=TIMEOUT).user
            self.assertTrue(user.email.endswith("@") is False and "@" in user.email, user.email)

            # build_info names what the image's labels name; process metrics are read.
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=TIMEOUT) as answer:
                metrics = answer.read().decode()
            labels = self.labels()
            build_info = re.search(r'^posthog_gateway_build_info\{version="([^"]*)",revision="([^"]*)",'
                                   r'source="([^"]*)"\} 1$', metrics, re.M)
            self.assertIsNotNone(build_info, metrics)
            self.assertEqual(build_info.groups(), (labels["org.opencontainers.image.version"],
                                                   labels["org.opencontainers.image.revision"],
                                                   labels["org.opencontainers.image.source"]))
            self.assertRegex(metrics, r"(?m)^process_open_fds [1-9]")
            self.assertRegex(metrics, rf"(?m)^process_max_fds {NOFILE}$")

            # PostHog refuses every batch: the 1,000 durable events stay in the spool.
            stack.emulator_admin(self.emulator_url, "/_emulator/faults",
                                 [{"route": "batch", "status": 503, "error_rate": 1, "count": 1000000}])
            distinct_id = f"image-{self.run_id}"
            capture = self.capture_pb2_grpc.CaptureServiceStub(channel)
            acknowledged = []
            for batch in range(CAPTURED // 100):
                request = self.capture_pb2.BatchCaptureEventsRequest(
                    ack_mode=self.capture_pb2.ACK_MODE_DURABLE,
                    events=[self.capture_pb2.Event(event="image test", distinct_id=distinct_id)
                            for _ in range(100)])
                acknowledged += capture.BatchCaptureEvents(request, timeout=TIMEOUT).uuids
        self.assertEqual(len(set(acknowledged)), CAPTURED)

        # SIGTERM: the gateway drains and exits by itself, 0, before SIGKILL.
        self.assertEqual(self.stop(f"gateway-a-{self.run_id}"), 0,
                         podman("logs", f"gateway-a-{self.run_id}").stderr[-3000:])
        left = self.emulator_events(distinct_id)["count"]
        self.assertEqual(left, 0, "PostHog refused every batch, yet events arrived")

        # PostHog is back; a second container on the same volume delivers the spool.
        stack.emulator_admin(self.emulator_url, "/_emulator/faults", [])
        self.start_gateway(f"gateway-b-{self.run_id}")
        stored = poll(lambda: self.emulator_events(distinct_id),
                      lambda e: len({event["uuid"] for event in e["events"]}) >= CAPTURED,
                      "events delivered from the spool")
        self.assertEqual({event["uuid"] for event in stored["events"]}, set(acknowledged))
        self.assertEqual(self.stop(f"gateway-b-{self.run_id}"), 0)


if __name__ == "__main__":
    unittest.main()
