#!/usr/bin/python3
"""Starts a fleet on loopback for tests and benchmarks: redis-server, the
PostHog emulator and N gateways sharing one configuration (each with its own
spool), as real processes.

    import fleet
    with fleet.Fleet(replicas=3) as f:
        f.gateway_target(0), f.emulator_url, f.metrics(1)
        f.kill_gateway(0); f.start_gateway(0)      # again on its spool, spool_dir(0)
        f.stop_redis(); f.start_redis()

The emulator and the gateways listen on port 0 and report their port through
a port file (tests/harness/stack.py); redis-server cannot report the port it
bound, so the harness picks a free one and retries on a clash. Nothing here
sleeps to synchronise: waits poll a condition with a deadline. Keys never
appear in the configuration or in anything printed.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

import stack  # noqa: E402

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
POLL_SECONDS = 0.05


def wait_for(condition, what, deadline_seconds=30.0):
    """Polls `condition()` until truthy; returns it, or raises AssertionError."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_pid(port, timeout=0.5):
    """The process id of the Redis answering on 127.0.0.1:`port`, else None:
    a port picked free may have gone to another test's Redis meanwhile."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"INFO server\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                reply += chunk
    except OSError:
        return None
    for line in reply.split(b"\r\n"):
        if line.startswith(b"process_id:"):
            return int(line.split(b":", 1)[1])
    return None


def parse_metrics(text):
    """{name: {labels_text: value}} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name, _, labels = name_labels.partition("{")
        out.setdefault(name, {})[labels.rstrip("}")] = float(value)
    return out


class Fleet:
    """redis-server (optional), the emulator and `replicas` gateways.

    Args:
      replicas: how many gateways.
      redis: whether to start redis-server and configure the gateways with it.
      extra_config: top-level sections merged into the gateways' configuration.
      emulator_args, gateway_args: extra flags.
    """

    def __init__(self, replicas=3, redis=True, extra_config=None, emulator_args=(),
                 gateway_args=stack.DEFAULT_GATEWAY_ARGS, bazel_bin=None, start_timeout=30.0):
        self._replicas = replicas
        self._use_redis = redis
        self._extra_config = dict(extra_config or {})
        self._emulator_args = list(emulator_args)
        self._gateway_args = list(gateway_args)
        self._bazel_bin = bazel_bin or stack.default_bazel_bin()
        self._start_timeout = start_timeout
        self._dir = None
        self._emulator = None
        self._redis = None
        self.redis_port = None
        self._gateways = [None] * replicas
        self._runs = [0] * replicas
        self._config_paths = [None] * replicas

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
        self._dir = tempfile.mkdtemp(prefix="posthog-fleet-")
        emulator = os.path.join(self._bazel_bin, stack.EMULATOR_BINARY)
        self._emulator = stack._Process(
            "emulator",
            [emulator, f"--seed={stack.DEFAULT_SEED}", "--host=127.0.0.1", "--port=0",
             f"--port_file={self._path('emulator.port')}"] + self._emulator_args,
            self._path("emulator.log"), self._path("emulator.port"))
        self._emulator.start()
        self._emulator.wait_for_port(time.monotonic() + self._start_timeout)
        if self._use_redis:
            self.start_redis()
        key_paths = self._write_keys(stack.keys_from_seed(stack.DEFAULT_SEED))
        for i in range(self._replicas):
            self._config_paths[i] = self._write_config(i, key_paths)
        for i in range(self._replicas):
            self.start_gateway(i)

    def stop(self):
        if self._dir is None:
            return
        for process in self._gateways + [self._emulator]:
            if process is not None:
                process.stop(30)
        self.stop_redis()
        if not os.environ.get("STACK_KEEP"):
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def start_redis(self):
        """Starts redis-server (again on the same port once it has one)."""
        for _ in range(5):
            port = self.redis_port or _free_port()
            self._redis = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self._dir, "--logfile",
                 self._path("redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            try:
                # Ours answering, not whoever else took the port meanwhile.
                wait_for(lambda: redis_pid(port) == self._redis.pid or self._redis.poll() is not None,
                         "redis-server to answer", self._start_timeout)
            except AssertionError:
                self._redis.kill()
                raise
            if self._redis.poll() is None:
                self.redis_port = port
                return
            # The port was taken between picking and binding: another one.
            if self.redis_port is not None:
                break
        raise stack.StackError(f"redis-server did not start; its log:\n{self._read('redis.log')}")

    def stop_redis(self):
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            self._redis.wait(timeout=30)
        self._redis = None

    def start_gateway(self, i):
        binary = os.path.join(self._bazel_bin, stack.GATEWAY_BINARY)
        self._runs[i] += 1
        port_file = self._path(f"gateway-{i}.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        process = stack._Process(
            f"gateway-{i}",
            [binary, f"--config={self._config_paths[i]}", "--host=127.0.0.1", "--port=0",
             f"--port_file={port_file}", "--admin_port=0"] + self._gateway_args,
            self._path(f"gateway-{i}.{self._runs[i]}.log"), port_file)
        process.start()
        process.wait_for_port(time.monotonic() + self._start_timeout)
        self._gateways[i] = process

    def kill_gateway(self, i):
        """kill -9: no drain, no goodbye to Redis (its lease must expire)."""
        self._gateways[i].popen.kill()
        self._gateways[i].popen.wait()

    def stop_gateway(self, i):
        return self._gateways[i].stop(30)

    # -- what tests use ------------------------------------------------------

    @property
    def emulator_url(self):
        return f"http://127.0.0.1:{self._emulator.port}"

    @property
    def replicas(self):
        return self._replicas

    @property
    def gateway_binary(self):
        return os.path.join(self._bazel_bin, stack.GATEWAY_BINARY)

    @property
    def directory(self):
        """The run's directory (removed by stop unless STACK_KEEP is set)."""
        return self._dir

    def config_path(self, i):
        return self._config_paths[i]

    def spool_dir(self, i):
        return self._path(f"spool-{i}")

    def gateway_target(self, i):
        return f"127.0.0.1:{self._gateways[i].port}"

    def alive(self, i):
        return self._gateways[i] is not None and self._gateways[i].popen.poll() is None

    def log(self, i):
        return self._gateways[i].log()

    def emulator_admin(self, path, body=None):
        return stack.emulator_admin(self.emulator_url, path, body, timeout=60)

    def metrics(self, i):
        """Gateway `i`'s metrics, parsed (see parse_metrics)."""
        port = None
        for line in self.log(i).splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("message") == "admin server listening":
                    port = entry["port"]
        if port is None:
            raise stack.StackError(f"gateway {i} logged no admin port")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            return parse_metrics(answer.read().decode())

    def metric(self, i, name, labels=""):
        return self.metrics(i).get(name, {}).get(labels)

    def route_count(self, route):
        """How many requests the emulator saw on `route` (any status)."""
        routes = self.emulator_admin(f"/_emulator/requests?route={route}")["routes"]
        return routes.get(route, {}).get("count", 0)

    def route_statuses(self, route):
        routes = self.emulator_admin(f"/_emulator/requests?route={route}")["routes"]
        return routes.get(route, {}).get("status", {})

    # -- helpers -------------------------------------------------------------

    def _path(self, name):
        return os.path.join(self._dir, name)

    def _read(self, name):
        try:
            with open(self._path(name), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _write_keys(self, keys):
        key_dir = self._path("keys")
        os.mkdir(key_dir, 0o700)
        paths = {}
        for name, value in keys.items():
            path = os.path.join(key_dir, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as key_file:
                key_file.write(value)
            paths[name] = path
        # The fleet's resume token secret, shared by every replica.
        secret = os.path.join(key_dir, "resume_token_secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as secret_file:
            secret_file.write(os.urandom(24).hex())
        paths["resume_token_secret"] = secret
        return paths

    def _write_config(self, i, key_paths):
        url = self.emulator_url
        project = {"alias": "demo", "project_id": 1, "ingestion_host": url, "app_host": url}
        for name in stack.KEY_NAMES:
            if name in key_paths:
                project[name] = {"file": key_paths[name]}
        config = {
            "default_project": "demo",
            "projects": [project],
            "capture": {"spool_dir": self._path(f"spool-{i}"), "flush_interval_ms": 20},
            "paging": {"resume_token_secret": {"file": key_paths["resume_token_secret"]}},
            # The harness default: development mode, every call allowed.
            "authorization": dict(stack.DEV_AUTHORIZATION),
        }
        if self._use_redis:
            config["redis"] = {"address": f"127.0.0.1:{self.redis_port}"}
        for section, values in self._extra_config.items():
            if isinstance(values, dict) and isinstance(config.get(section), dict):
                config[section] = {**config[section], **values}
            else:
                config[section] = values
        path = self._path(f"gateway-{i}.json")
        with open(path, "w", encoding="utf-8") as config_file:
            json.dump(config, config_file, indent=2)
        return path
