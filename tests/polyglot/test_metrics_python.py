"""The gateway's /metrics against the real gateway: the exposition passes
`promtool check metrics`, `posthog_gateway_build_info` names this checkout's
version and revision, the standard `process_*` metrics describe the gateway's
own process (compared with its /proc entry), and every metric the
PrometheusRule of deploy/kubernetes/components/monitoring alerts on is one
the gateway exposes.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest tests/polyglot/test_metrics_python.py -v
"""

import os
import re
import resource
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "harness"))

import stack  # noqa: E402

REPO_ROOT = stack.REPO_ROOT
RULES = os.path.join(REPO_ROOT, "deploy", "kubernetes", "components", "monitoring", "prometheusrule.yaml")


def families(text):
    """{name: type} of every `# TYPE` line of an exposition."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def sample(text, name):
    """The value of the unlabelled series `name`."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    if match is None:
        raise AssertionError(f"no series {name} in:\n{text}")
    return float(match.group(1))


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED),
                                gateway_args=stack.DEFAULT_GATEWAY_ARGS + ("--admin_port=0",))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.text = cls.stack.gateway_metrics()

    def test_promtool_accepts_the_exposition(self):
        result = subprocess.run(["promtool", "check", "metrics"], input=self.text,
                                capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_build_info_names_this_checkout(self):
        with open(os.path.join(REPO_ROOT, "VERSION"), encoding="ascii") as f:
            version = f.read().strip()
        in_git = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "HEAD"], capture_output=True,
                                check=False).returncode == 0
        lines = re.findall(r"^posthog_gateway_build_info\{(.*)\} (\S+)$", self.text, re.M)
        self.assertEqual(len(lines), 1, self.text)
        labels = dict(re.findall(r'(\w+)="([^"]*)"', lines[0][0]))
        self.assertEqual(lines[0][1], "1")
        self.assertEqual(labels["version"], version)
        if in_git:
            # The commit the binary was built from: HEAD on a fresh build, an
            # earlier commit of this repository when commits (or a rebase) came
            # after the last build.
            self.assertRegex(labels["revision"], r"^[0-9a-f]{40}$")
            known = subprocess.run(["git", "-C", REPO_ROOT, "cat-file", "-e",
                                    labels["revision"] + "^{commit}"], capture_output=True, check=False)
            self.assertEqual(known.returncode, 0, f"{labels['revision']} is no commit of this repository")
        else:
            self.assertEqual(labels["revision"], "unknown")
        self.assertRegex(labels["source"], r"^[A-Za-z0-9._:/@+-]+$")

    def test_process_metrics_describe_the_gateway_process(self):
        kinds = families(self.text)
        for name, kind in [("process_cpu_seconds_total", "counter"),
                           ("process_resident_memory_bytes", "gauge"),
                           ("process_virtual_memory_bytes", "gauge"),
                           ("process_open_fds", "gauge"),
                           ("process_max_fds", "gauge"),
                           ("process_start_time_seconds", "gauge")]:
            self.assertEqual(kinds.get(name), kind, name)
        pid = self.stack.gateway_pid
        # The start time, from the same /proc fields the gateway reads.
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            starttime = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            btime = int(re.search(r"^btime (\d+)$", f.read(), re.M).group(1))
        ticks = os.sysconf("SC_CLK_TCK")
        self.assertEqual(sample(self.text, "process_start_time_seconds"), btime + starttime // ticks)
        # The gateway inherits this process's limit on open files.
        self.assertEqual(sample(self.text, "process_max_fds"),
                         resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        # Listening sockets, the spool and the log at least; at most what it has now plus
        # the connections of a scrape.
        open_now = len(os.listdir(f"/proc/{pid}/fd"))
        self.assertGreater(sample(self.text, "process_open_fds"), 3)
        self.assertLessEqual(sample(self.text, "process_open_fds"), open_now + 8)
        self.assertGreater(sample(self.text, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(sample(self.text, "process_virtual_memory_bytes"),
                           sample(self.text, "process_resident_memory_bytes"))
        self.assertGreaterEqual(sample(self.text, "process_cpu_seconds_total"), 0)
        self.assertEqual(sample(self.text, "posthog_gateway_drain_seconds"), 0)

    def test_every_metric_the_alerts_use_is_exposed(self):
        with open(RULES, encoding="utf-8") as f:
            rules = f.read()
        expressions = "\n".join(re.findall(r"expr: \|?\n?((?:.|\n)*?)\n\s+(?:for|labels):", rules))
        used = set(re.findall(r"\b((?:posthog|process|grpc)_[a-z_]+)\b", expressions))
        self.assertGreaterEqual(len(used), 7, expressions)
        kinds = families(self.text)
        for name in sorted(used):
            family = re.sub(r"_(count|sum|bucket)$", "", name)
            self.assertIn(family, kinds, name)
            if family != name:
                self.assertEqual(kinds[family], "histogram", name)


if __name__ == "__main__":
    unittest.main()
