#!/usr/bin/python3
"""Starts the PostHog emulator and the gateway as real processes, for tests.

Both listen on port 0 (a free port the kernel picks) and report the port they
bound through a port file; nothing here depends on a fixed port or on sleeping.
Everything a run writes lives in one temporary directory:

    keys/project_api_key            key files, mode 0600, one key each
    keys/personal_api_key
    keys/feature_flags_secure_key   (only when given)
    gateway.json                    the gateway's configuration (file paths, no keys)
    emulator.log, gateway.log       each process's stdout and stderr
    emulator.port, gateway.port     port files

As a library (Python 3 standard library only):

    import stack
    keys = stack.keys_from_seed(stack.DEFAULT_SEED)
    with stack.Stack(keys) as s:
        channel = grpc.insecure_channel(s.gateway_target)
        ...
        logs = s.logs()   # {"emulator": "...", "gateway": "..."}

As a command, for the Node tests and scripts: start both, write
`GATEWAY_TARGET=...`, `EMULATOR_URL=...` and `STACK_DIR=...` lines to
--env_file once both serve, and run until SIGTERM or SIGINT:

    /usr/bin/python3 tests/harness/stack.py --env_file=/tmp/stack.env

Once both serve it also prints one line, `stack: gateway at ...`, to stderr.
It exits 0 after SIGTERM or SIGINT, 1 when a process fails to start or dies
on its own, and removes the environment file on the way out.

The children stay in the caller's process group, so Ctrl-C in a terminal
reaches them too; the harness still stops them in order. A harness killed
with SIGKILL leaves them running. A Stack is not thread-safe: start, use and
stop it from one thread.

The binaries come from --bazel_bin (default: $POSTHOG_BAZEL_BIN, else the
repository's bazel-bin): server/posthog_gateway and emulator/posthog_emulator.
Keys never appear in the configuration, the environment file or anything this
module prints.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SEED = os.path.join(REPO_ROOT, "emulator", "seed", "demo.json")
GATEWAY_BINARY = os.path.join("server", "posthog_gateway")
EMULATOR_BINARY = os.path.join("emulator", "posthog_emulator")

# The key names of a project in the gateway's configuration.
KEY_NAMES = ("project_api_key", "personal_api_key", "feature_flags_secure_key")

# Extra gateway flags: no drain delay on SIGTERM, since no load balancer needs
# time to notice that a test's gateway is going away; and a short termination
# grace, so that a gateway stopped with events still spooled (PostHog down)
# keeps sending them for about a second, not half a minute.
DEFAULT_GATEWAY_ARGS = ("--drain_delay=0s", "--termination_grace=1s")
# The gateway's default "authorization" section here: development mode, every
# call allowed (docs/security.md). extra_config={"authorization": {...}}
# replaces it.
DEV_AUTHORIZATION = {"development_mode": True}

_POLL_INTERVAL_SECONDS = 0.05


def emulator_admin(emulator_url, path, body=None, timeout=120):
    """Calls the emulator's /_emulator/ admin API: POSTs `body` as JSON when
    given, else GETs; returns the decoded JSON answer (None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emulator_url + path, data=data,
                                     method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


class StackError(RuntimeError):
    """A process of the stack failed to start, or the setup is wrong."""


def default_bazel_bin():
    """Returns $POSTHOG_BAZEL_BIN, else the repository's bazel-bin."""
    return os.environ.get("POSTHOG_BAZEL_BIN") or os.path.join(REPO_ROOT, "bazel-bin")


def keys_from_seed(seed_path, project_id=1):
    """Returns the keys a gateway needs to serve `project_id` of a seed.

    The project's `api_token` (phc_) and, when the seed has one, its
    `secret_api_token` (phs_); the personal key (phx_) is the first one with
    scope `*` whose user belongs to the project's organization. The result
    maps KEY_NAMES to values, ready for Stack(keys=...).
    """
    with open(seed_path, encoding="utf-8") as seed_file:
        seed = json.load(seed_file)
    project = next((p for p in seed["projects"] if p["id"] == project_id), None)
    if project is None:
        raise StackError(f"seed {seed_path} has no project {project_id}")
    users = {u["id"]: u for u in seed.get("users", [])}
    personal = next(
        (
            k["value"]
            for k in seed.get("personal_api_keys", [])
            if "*" in k.get("scopes", [])
            and project["organization_id"]
            in users.get(k["user_id"], {}).get("organization_ids", [])
        ),
        None,
    )
    if personal is None:
        raise StackError(f"seed {seed_path} has no all-access personal key for project {project_id}")
    keys = {"project_api_key": project["api_token"], "personal_api_key": personal}
    if project.get("secret_api_token"):
        keys["feature_flags_secure_key"] = project["secret_api_token"]
    return keys


class _Process:
    """One child process whose stdout and stderr go to a log file."""

    def __init__(self, name, argv, log_path, port_file):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.port_file = port_file
        self.popen = None
        self.port = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )

    def wait_for_port(self, deadline):
        """Polls the port file until it holds a port, the process exits, or
        `deadline` (time.monotonic()) passes."""
        while True:
            port = self._read_port()
            if port is not None:
                self.port = port
                return port
            if self.popen.poll() is not None:
                raise StackError(
                    f"{self.name} exited with status {self.popen.returncode} before serving; "
                    f"its log:\n{self.log()}"
                )
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{self.name} wrote no port file within the start timeout; its log:\n{self.log()}"
                )
            try:
                # Waits for the process to exit or the poll interval to pass,
                # whichever comes first.
                self.popen.wait(timeout=_POLL_INTERVAL_SECONDS)
            except subprocess.TimeoutExpired:
                pass

    def _read_port(self):
        try:
            with open(self.port_file, encoding="ascii") as f:
                text = f.read().strip()
        except FileNotFoundError:
            return None
        # Both binaries rename a complete file into place, so a partial read
        # is not expected; tolerate one anyway and read again.
        return int(text) if text.isdigit() else None

    def stop(self, timeout):
        """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds.
        Returns the exit status (negative: killed by that signal)."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class Stack:
    """The emulator and a gateway configured for one project of it.

    Use as a context manager: entering starts both processes and returns once
    both serve (or raises StackError with the failing process's log); leaving
    stops them (SIGTERM, then SIGKILL after `stop_timeout`) and deletes the
    temporary directory, keeping the logs readable through logs().

    Args:
      keys: maps KEY_NAMES to key values (see keys_from_seed); each is written
        to its own 0600 file and only that file's path goes in the config.
      seed_path: the emulator's seed.
      bazel_bin: where the built binaries are (default_bazel_bin()).
      alias, project_id: the project as the gateway's configuration names it;
        it is also the default project.
      start_timeout, stop_timeout: bounds in seconds for each process.
      gateway_args, emulator_args: extra flags.
      extra_config: top-level sections merged into the gateway's
        configuration (e.g. {"flags": {"poll_interval_ms": 200}}); a section
        the harness sets ("capture") is merged key by key. The
        gateway runs in development mode (no authorization) unless it holds
        an "authorization" section, which replaces DEV_AUTHORIZATION whole:
        tests of authorization pass their callers and grants there.
      extra_projects: more projects, each {"alias": ..., "project_id": ...},
        on the same emulator with the same key files (for tests that need
        more than one configured project).
    """

    def __init__(
        self,
        keys,
        seed_path=DEFAULT_SEED,
        bazel_bin=None,
        alias="demo",
        project_id=1,
        start_timeout=30.0,
        stop_timeout=30.0,
        gateway_args=DEFAULT_GATEWAY_ARGS,
        emulator_args=(),
        extra_config=None,
        extra_projects=(),
    ):
        unknown = set(keys) - set(KEY_NAMES)
        if unknown:
            raise StackError(f"unknown key names: {sorted(unknown)}")
        self._keys = dict(keys)
        self._seed_path = os.path.abspath(seed_path)
        self._bazel_bin = bazel_bin or default_bazel_bin()
        self._alias = alias
        self._project_id = project_id
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._gateway_args = list(gateway_args)
        self._emulator_args = list(emulator_args)
        self._extra_config = dict(extra_config or {})
        self._extra_projects = [dict(p) for p in extra_projects]
        self._dir = None
        self._emulator = None
        self._gateway = None
        self._final_logs = None
        self._config_path = None
        self._restarts = 0
        self._emulator_restarts = 0
        self.exit_statuses = {}

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info):
        self.stop()
        return False

    def start(self):
        """Starts the emulator, then the gateway pointed at it."""
        emulator_binary = self._binary(EMULATOR_BINARY, "//emulator:posthog_emulator")
        gateway_binary = self._binary(GATEWAY_BINARY, "//server:posthog_gateway")
        if not os.path.isfile(self._seed_path):
            raise StackError(f"no seed at {self._seed_path}")
        self._dir = tempfile.mkdtemp(prefix="posthog-stack-")

        self._emulator = _Process(
            "emulator",
            [
                emulator_binary,
                f"--seed={self._seed_path}",
                "--host=127.0.0.1",
                "--port=0",
                f"--port_file={self._path('emulator.port')}",
            ]
            + self._emulator_args,
            self._path("emulator.log"),
            self._path("emulator.port"),
        )
        self._emulator.start()
        self._emulator.wait_for_port(time.monotonic() + self._start_timeout)

        self._config_path = self._write_config(self._write_keys())
        self._start_gateway("gateway.log")

    def _start_gateway(self, log_name):
        gateway_binary = self._binary(GATEWAY_BINARY, "//server:posthog_gateway")
        config_path = self._config_path
        port_file = self._path("gateway.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self._gateway = _Process(
            "gateway",
            [
                gateway_binary,
                f"--config={config_path}",
                "--host=127.0.0.1",
                "--port=0",
                f"--port_file={self._path('gateway.port')}",
            ]
            + self._gateway_args,
            self._path(log_name),
            port_file,
        )
        self._gateway.start()
        self._gateway.wait_for_port(time.monotonic() + self._start_timeout)

    def restart_gateway(self, kill=False, before_start=None, gateway_args=None):
        """Stops the gateway (SIGKILL when `kill`, else SIGTERM) and starts it
        again on the same configuration and capture spool; it listens on a
        new port (see gateway_target). The earlier run's log is kept as
        gateway-<n>.log. `before_start`, if given, is called in between
        (e.g. to damage the spool). `gateway_args`, if given, replace the
        extra flags from this run on."""
        if kill:
            self._gateway.popen.kill()
            self._gateway.popen.wait()
        else:
            self._gateway.stop(self._stop_timeout)
        self._restarts += 1
        os.rename(self._path("gateway.log"), self._path(f"gateway-{self._restarts}.log"))
        if before_start is not None:
            before_start()
        if gateway_args is not None:
            self._gateway_args = list(gateway_args)
        self._start_gateway("gateway.log")

    def stop_emulator(self):
        """Stops the emulator (SIGTERM): PostHog is down, connections are
        refused. Its stored events go with it; start_emulator brings up an
        empty one (the same seed) on the same port."""
        self._emulator.stop(self._stop_timeout)

    def start_emulator(self):
        """Starts the emulator again on the port it had, so the gateway's
        configuration still points at it. Its log of the earlier run is kept
        as emulator-<n>.log."""
        port = self._emulator.port
        self._emulator_restarts += 1
        os.rename(self._path("emulator.log"),
                  self._path(f"emulator-{self._emulator_restarts}.log"))
        os.unlink(self._path("emulator.port"))
        argv = [f"--port={port}" if arg == "--port=0" else arg for arg in self._emulator.argv]
        self._emulator = _Process("emulator", argv, self._path("emulator.log"),
                                  self._path("emulator.port"))
        self._emulator.start()
        self._emulator.wait_for_port(time.monotonic() + self._start_timeout)

    def stop(self):
        """Stops the gateway, then the emulator; idempotent."""
        if self._dir is None:
            return
        for process in (self._gateway, self._emulator):
            if process is not None:
                self.exit_statuses[process.name] = process.stop(self._stop_timeout)
        self._final_logs = self._read_logs()
        # STACK_KEEP=1 keeps the folder (logs, config, keys) for debugging.
        if not os.environ.get("STACK_KEEP"):
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def exited_process(self):
        """Returns the name of a process that has exited on its own, or None."""
        for process in (self._gateway, self._emulator):
            if process is not None and process.popen.poll() is not None:
                return process.name
        return None

    def wait_for_exit(self, timeout):
        """Waits up to `timeout` seconds for a process to exit on its own;
        returns its name, or None if both still run."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.exited_process()
            if exited is not None or time.monotonic() >= deadline:
                return exited
            try:
                self._gateway.popen.wait(timeout=_POLL_INTERVAL_SECONDS)
            except subprocess.TimeoutExpired:
                pass

    # -- what tests use ------------------------------------------------------

    @property
    def gateway_target(self):
        """The gateway's address for a gRPC channel, e.g. `127.0.0.1:40123`."""
        return f"127.0.0.1:{self._gateway.port}"

    @property
    def config_path(self):
        """The gateway's configuration file (key file paths, no keys)."""
        return self._config_path

    @property
    def gateway_binary(self):
        """The gateway binary this stack runs."""
        return self._binary(GATEWAY_BINARY, "//server:posthog_gateway")

    @property
    def gateway_pid(self):
        """The running gateway's process id."""
        return self._gateway.popen.pid

    @property
    def emulator_url(self):
        """The emulator's base URL, e.g. `http://127.0.0.1:40124`."""
        return f"http://127.0.0.1:{self._emulator.port}"

    @property
    def directory(self):
        """The temporary directory of this run (None once stopped)."""
        return self._dir

    @property
    def alias(self):
        return self._alias

    def logs(self):
        """Returns {"emulator": text, "gateway": text}: each process's output
        so far, or all of it once stopped."""
        if self._final_logs is not None:
            return dict(self._final_logs)
        return self._read_logs()

    def previous_gateway_log(self):
        """The log of the gateway run before the last restart_gateway."""
        path = self._path(f"gateway-{self._restarts}.log")
        with open(path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def gateway_metrics(self, timeout=30):
        """The gateway's /metrics text. Needs the gateway started with
        --admin_port (its bound port is read from its log)."""
        port = None
        for line in self.logs()["gateway"].splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("message") == "admin server listening":
                    port = entry["port"]
        if port is None:
            raise StackError("the gateway logged no admin port (start it with --admin_port)")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
            return answer.read().decode()

    # -- helpers -------------------------------------------------------------

    def _binary(self, relative, label):
        path = os.path.join(self._bazel_bin, relative)
        if not os.access(path, os.X_OK):
            raise StackError(
                f"{path} is missing: build it with `bazel build {label}`, "
                f"or point --bazel_bin / $POSTHOG_BAZEL_BIN at the right bazel-bin"
            )
        return path

    def _path(self, name):
        return os.path.join(self._dir, name)

    def _write_keys(self):
        """Writes each key to its own 0600 file; returns name → path."""
        key_dir = self._path("keys")
        os.mkdir(key_dir, 0o700)
        paths = {}
        for name, value in self._keys.items():
            path = os.path.join(key_dir, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as key_file:
                key_file.write(value)
            paths[name] = path
        return paths

    def _write_config(self, key_paths):
        url = self.emulator_url
        project = {
            "alias": self._alias,
            "project_id": self._project_id,
            "ingestion_host": url,
            "app_host": url,
        }
        for name, path in key_paths.items():
            project[name] = {"file": path}
        config = {
            "default_project": self._alias,
            "projects": [project] + [{**project, **extra} for extra in self._extra_projects],
            # Capture's spool lives with the run (kept across restart_gateway).
            # A small memory queue: tests exercise backlogs read back from disk.
            "capture": {"spool_dir": self._path("spool"), "flush_interval_ms": 20,
                        "max_backoff_ms": 2000, "memory_queue_bytes": 262144},
            "authorization": dict(DEV_AUTHORIZATION),
        }
        for section, values in self._extra_config.items():
            # A section the harness sets is merged key by key (a benchmark
            # changes one capture setting and keeps the run's spool), except
            # "authorization", which replaces DEV_AUTHORIZATION whole.
            if (section != "authorization" and isinstance(values, dict)
                    and isinstance(config.get(section), dict)):
                config[section] = {**config[section], **values}
            else:
                config[section] = values
        path = self._path("gateway.json")
        with open(path, "w", encoding="utf-8") as config_file:
            json.dump(config, config_file, indent=2)
        return path

    def _read_logs(self):
        return {
            process.name: process.log()
            for process in (self._emulator, self._gateway)
            if process is not None
        }


class _Stop(Exception):
    """Raised by the signal handler to unwind into Stack's clean shutdown."""


def _raise_stop(signum, frame):
    # One-shot: a second signal must not interrupt the shutdown it started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def _write_env_file(path, stack):
    lines = [
        f"GATEWAY_TARGET={stack.gateway_target}",
        f"EMULATOR_URL={stack.emulator_url}",
        f"STACK_DIR={stack.directory}",
    ]
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as env_file:
        env_file.write("\n".join(lines) + "\n")
    os.replace(temp, path)  # Readers never see a partial file.


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env_file", required=True,
                        help="Where to write GATEWAY_TARGET=, EMULATOR_URL= and STACK_DIR= once serving.")
    parser.add_argument("--seed", default=DEFAULT_SEED, help="The emulator's seed.")
    parser.add_argument("--project_id", type=int, default=1,
                        help="The seed project the gateway serves as alias `demo`.")
    parser.add_argument("--bazel_bin", default=None,
                        help="Where the built binaries are; default $POSTHOG_BAZEL_BIN or bazel-bin.")
    parser.add_argument("--extra_config", default="{}",
                        help="JSON: top-level sections merged into the gateway's configuration.")
    args = parser.parse_args(argv)

    # Installed first, so that a signal during start-up still unwinds through
    # Stack's shutdown.
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        with Stack(keys_from_seed(args.seed, args.project_id), seed_path=args.seed,
                   bazel_bin=args.bazel_bin, project_id=args.project_id,
                   extra_config=json.loads(args.extra_config)) as stack:
            _write_env_file(args.env_file, stack)
            print(f"stack: gateway at {stack.gateway_target}, emulator at {stack.emulator_url}, "
                  f"logs in {stack.directory}", file=sys.stderr, flush=True)
            # Supervise: a process that dies on its own ends the run with an error.
            while True:
                exited = stack.wait_for_exit(timeout=1.0)
                if exited is not None:
                    print(f"stack: {exited} exited unexpectedly; its log:\n{stack.logs()[exited]}",
                          file=sys.stderr)
                    return 1
    except _Stop as stop:
        print(f"stack: stopped by {stop}", file=sys.stderr)
        return 0
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    finally:
        try:
            os.remove(args.env_file)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    sys.exit(main())
