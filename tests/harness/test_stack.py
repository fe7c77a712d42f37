"""Tests of the harness itself (stack.py), against fake binaries.

The fakes are small Python programs that keep the real binaries' contract
(`--port=0`, a port file written once listening, exit on SIGTERM) and can be
told to misbehave, so start-up failures, timeouts and shutdown are tested
without building anything.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/harness -p 'test_*.py' -v
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack  # noqa: E402

# A stand-in for both binaries. FAKE_<NAME>_MODE selects its behaviour:
# serve (default), exit_early, no_port, ignore_term. It records its argv in
# <port_file>.argv so tests can check the flags it was given.
FAKE_BINARY = r'''#!/usr/bin/python3
import json, os, signal, socket, sys
name = os.path.basename(sys.argv[0]).replace("posthog_", "").upper()
mode = os.environ.get(f"FAKE_{name}_MODE", "serve")
flags = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
with open(flags["port_file"] + ".argv", "w") as f:
    json.dump(sys.argv[1:], f)
if mode == "exit_early":
    print(f"{name}: cannot start: boom", file=sys.stderr)
    sys.exit(3)
if mode == "ignore_term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print(f"{name}: listening", file=sys.stderr, flush=True)
if mode != "no_port":
    with open(flags["port_file"] + ".tmp", "w") as f:
        f.write(f"{listener.getsockname()[1]}\n")
    os.replace(flags["port_file"] + ".tmp", flags["port_file"])
while True:
    signal.pause()
'''

KEYS = {
    "project_api_key": "phc_TestProjectKey000000000000000000000000",
    "personal_api_key": "phx_TestPersonalKey00000000000000000000000",
}


def _make_fake_bazel_bin(root):
    for relative in (stack.GATEWAY_BINARY, stack.EMULATOR_BINARY):
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(FAKE_BINARY)
        os.chmod(path, 0o755)


class StackTest(unittest.TestCase):
    def setUp(self):
        self.bazel_bin = tempfile.mkdtemp(prefix="fake-bazel-bin-")
        self.addCleanup(shutil.rmtree, self.bazel_bin, True)
        _make_fake_bazel_bin(self.bazel_bin)
        patcher = mock.patch.dict(os.environ, {"FAKE_GATEWAY_MODE": "serve",
                                               "FAKE_EMULATOR_MODE": "serve"})
        patcher.start()
        self.addCleanup(patcher.stop)

    def make_stack(self, **kwargs):
        kwargs.setdefault("start_timeout", 10.0)
        kwargs.setdefault("stop_timeout", 10.0)
        return stack.Stack(KEYS, bazel_bin=self.bazel_bin, **kwargs)

    def read_argv(self, s, name):
        with open(os.path.join(s.directory, f"{name}.port.argv"), encoding="utf-8") as f:
            return json.load(f)

    def test_start_reports_ports_and_passes_port_zero(self):
        with self.make_stack() as s:
            self.assertRegex(s.gateway_target, r"^127\.0\.0\.1:[1-9][0-9]*$")
            self.assertRegex(s.emulator_url, r"^http://127\.0\.0\.1:[1-9][0-9]*$")
            directory = s.directory
            gateway_argv = self.read_argv(s, "gateway")
            emulator_argv = self.read_argv(s, "emulator")

        self.assertEqual(gateway_argv,
                         [f"--config={directory}/gateway.json", "--host=127.0.0.1", "--port=0",
                          f"--port_file={directory}/gateway.port", "--drain_delay=0s",
                          "--termination_grace=1s"])
        self.assertEqual(emulator_argv,
                         [f"--seed={stack.DEFAULT_SEED}", "--host=127.0.0.1", "--port=0",
                          f"--port_file={directory}/emulator.port"])

    def test_config_names_key_files_and_never_holds_a_key(self):
        with self.make_stack() as s:
            with open(os.path.join(s.directory, "gateway.json"), encoding="utf-8") as f:
                config_text = f.read()
            key_dir = os.path.join(s.directory, "keys")
            key_files = {}
            for name in sorted(os.listdir(key_dir)):
                path = os.path.join(key_dir, name)
                with open(path, encoding="utf-8") as f:
                    key_files[name] = (stat.S_IMODE(os.stat(path).st_mode), f.read())
            emulator_url = s.emulator_url

        for key in KEYS.values():
            self.assertFalse(key in config_text, "a key is in the configuration")
        config = json.loads(config_text)
        self.assertEqual(config["default_project"], "demo")
        self.assertEqual(len(config["projects"]), 1)
        project = config["projects"][0]
        self.assertEqual(project["alias"], "demo")
        self.assertEqual(project["project_id"], 1)
        self.assertEqual(project["ingestion_host"], emulator_url)
        self.assertEqual(project["app_host"], emulator_url)
        self.assertEqual(project["project_api_key"], {"file": f"{key_dir}/project_api_key"})
        self.assertEqual(project["personal_api_key"], {"file": f"{key_dir}/personal_api_key"})
        self.assertNotIn("feature_flags_secure_key", project)
        self.assertEqual(key_files, {name: (0o600, value) for name, value in KEYS.items()})

    def test_stop_removes_directory_and_keeps_logs(self):
        with self.make_stack() as s:
            directory = s.directory

        self.assertFalse(os.path.exists(directory))
        self.assertIsNone(s.directory)
        self.assertEqual(s.logs(), {"emulator": "EMULATOR: listening\n",
                                    "gateway": "GATEWAY: listening\n"})
        # The fakes die of the SIGTERM they do not handle.
        self.assertEqual(s.exit_statuses, {"gateway": -signal.SIGTERM,
                                           "emulator": -signal.SIGTERM})

    def test_process_exiting_before_serving_fails_with_its_log(self):
        os.environ["FAKE_GATEWAY_MODE"] = "exit_early"
        s = self.make_stack()

        with self.assertRaises(stack.StackError) as raised:
            s.__enter__()

        message = str(raised.exception)
        self.assertIn("gateway exited with status 3 before serving", message)
        self.assertIn("GATEWAY: cannot start: boom", message)
        self.assertIsNone(s.directory, "the failed start was not cleaned up")
        self.assertEqual(s.exit_statuses["emulator"], -signal.SIGTERM)

    def test_missing_port_file_fails_at_start_deadline(self):
        os.environ["FAKE_EMULATOR_MODE"] = "no_port"
        # The fake must have started Python and printed its line before the
        # deadline for its log to say so: 0.3 s was not always enough on a
        # loaded CI machine. The deadline is still what ends the start.
        s = self.make_stack(start_timeout=3.0)

        with self.assertRaises(stack.StackError) as raised:
            s.__enter__()

        self.assertIn("emulator wrote no port file within the start timeout", str(raised.exception))
        self.assertIn("EMULATOR: listening", str(raised.exception))
        self.assertIsNone(s.directory)

    def test_process_ignoring_sigterm_is_killed_after_stop_timeout(self):
        os.environ["FAKE_GATEWAY_MODE"] = "ignore_term"

        with self.make_stack(stop_timeout=0.3) as s:
            pass

        self.assertEqual(s.exit_statuses["gateway"], -signal.SIGKILL)
        self.assertEqual(s.exit_statuses["emulator"], -signal.SIGTERM)

    def test_missing_binary_names_the_bazel_target(self):
        os.remove(os.path.join(self.bazel_bin, stack.GATEWAY_BINARY))

        with self.assertRaises(stack.StackError) as raised:
            with self.make_stack():
                pass

        self.assertIn("bazel build //server:posthog_gateway", str(raised.exception))

    def test_unknown_key_name_is_refused(self):
        with self.assertRaises(stack.StackError):
            stack.Stack({"api_key": "x"}, bazel_bin=self.bazel_bin)


class KeysFromSeedTest(unittest.TestCase):
    def write_seed(self, seed):
        fd, path = tempfile.mkstemp(suffix=".json")
        self.addCleanup(os.remove, path)
        with os.fdopen(fd, "w") as f:
            json.dump(seed, f)
        return path

    def test_picks_project_tokens_and_all_access_key_of_a_member(self):
        path = self.write_seed({
            "organizations": [{"id": "org-1"}, {"id": "org-2"}],
            "projects": [{"id": 1, "organization_id": "org-1", "api_token": "phc_1",
                          "secret_api_token": "phs_1"}],
            "users": [{"id": 1, "organization_ids": ["org-2"]},
                      {"id": 2, "organization_ids": ["org-1"]}],
            "personal_api_keys": [
                {"value": "phx_other_org", "user_id": 1, "scopes": ["*"]},
                {"value": "phx_read_only", "user_id": 2, "scopes": ["person:read"]},
                {"value": "phx_member", "user_id": 2, "scopes": ["*"]},
            ],
        })

        self.assertEqual(stack.keys_from_seed(path, 1), {
            "project_api_key": "phc_1",
            "personal_api_key": "phx_member",
            "feature_flags_secure_key": "phs_1",
        })

    def test_unknown_project_is_an_error(self):
        path = self.write_seed({"projects": [], "users": [], "personal_api_keys": []})

        with self.assertRaises(stack.StackError):
            stack.keys_from_seed(path, 7)


class CommandModeTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="stack-cli-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.bazel_bin = os.path.join(self.work, "bazel-bin")
        _make_fake_bazel_bin(self.bazel_bin)

    def start_harness(self, *flags):
        """Runs stack.py as a command until it serves; returns the process
        and its env file."""
        env_file = os.path.join(self.work, "stack.env")
        harness = subprocess.Popen(
            [sys.executable, stack.__file__, f"--env_file={env_file}",
             f"--bazel_bin={self.bazel_bin}", *flags],
            stderr=subprocess.PIPE, text=True,
        )
        self.addCleanup(harness.stderr.close)
        self.addCleanup(harness.kill)
        # The harness prints one line once it serves (after the env file is
        # in place); reading it is the synchronisation.
        ready_line = harness.stderr.readline()
        self.assertTrue(ready_line.startswith("stack: gateway at 127.0.0.1:"), ready_line)
        return harness, env_file

    def test_writes_env_file_and_stops_cleanly_on_sigterm(self):
        harness, env_file = self.start_harness()

        with open(env_file, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual([line.split("=", 1)[0] for line in lines],
                         ["GATEWAY_TARGET", "EMULATOR_URL", "STACK_DIR"])
        stack_dir = lines[2].split("=", 1)[1]
        self.assertTrue(os.path.isdir(stack_dir))

        harness.send_signal(signal.SIGTERM)
        self.assertEqual(harness.wait(timeout=30), 0)
        self.assertIn("stack: stopped by SIGTERM", harness.stderr.read())
        self.assertFalse(os.path.exists(env_file))
        self.assertFalse(os.path.exists(stack_dir))

    def test_extra_config_is_merged_into_the_gateway_configuration(self):
        harness, env_file = self.start_harness(
            '--extra_config={"server": {"access_log": "errors"}}')

        with open(env_file, encoding="utf-8") as f:
            stack_dir = f.read().splitlines()[2].split("=", 1)[1]
        with open(os.path.join(stack_dir, "gateway.json"), encoding="utf-8") as f:
            config = json.load(f)
        self.assertEqual(config["server"], {"access_log": "errors"})
        self.assertEqual(config["default_project"], "demo")  # The rest is kept.
        harness.send_signal(signal.SIGTERM)
        self.assertEqual(harness.wait(timeout=30), 0)

    def test_extra_capture_settings_keep_the_runs_spool(self):
        harness, env_file = self.start_harness(
            '--extra_config={"capture": {"memory_queue_bytes": 67108864}}')

        with open(env_file, encoding="utf-8") as f:
            stack_dir = f.read().splitlines()[2].split("=", 1)[1]
        with open(os.path.join(stack_dir, "gateway.json"), encoding="utf-8") as f:
            config = json.load(f)
        self.assertEqual(config["capture"]["memory_queue_bytes"], 67108864)
        self.assertEqual(config["capture"]["spool_dir"], os.path.join(stack_dir, "spool"))
        self.assertEqual(config["capture"]["flush_interval_ms"], 20)
        harness.send_signal(signal.SIGTERM)
        self.assertEqual(harness.wait(timeout=30), 0)

if __name__ == "__main__":
    unittest.main()
