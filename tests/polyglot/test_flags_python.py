"""FlagService from Python against the real gateway and emulator: local
evaluation (PostHog's 2 x 1000 consistency vectors through gRPC), the remote
fallback, $feature_flag_called events, management with optimistic
concurrency, WatchFlagDefinitions, and ListFlags over several PostHog pages
(resume tokens, limit, faults).

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc
from google.protobuf import field_mask_pb2, struct_pb2

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "harness"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack  # noqa: E402
from test_user_python import generate_stubs  # noqa: E402

CALL_TIMEOUT_SECONDS = 10
WAIT_SECONDS = 20
# PostHog's consistency vectors, kept in the repository.
VECTORS_DIR = os.path.join(REPO_ROOT, "tests", "data", "posthog_vectors")


def _struct(values):
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _forget_stubs(stubs_dir):
    """Unloads the generated modules, so that a later suite in the same
    process generates and imports its own (its directory is deleted)."""
    for name in list(sys.modules):
        if name == "posthog" or name.startswith("posthog.") or name.startswith("health_pb2"):
            del sys.modules[name]
    if stubs_dir in sys.path:
        sys.path.remove(stubs_dir)


def _load_flag_stubs(cls, prefix):
    """Generates the stubs into a directory of the class's own (removed with
    it) and sets cls.pb / cls.pb_grpc to the FlagService modules."""
    stubs_dir = tempfile.mkdtemp(prefix=prefix)
    cls.addClassCleanup(shutil.rmtree, stubs_dir, True)
    cls.addClassCleanup(_forget_stubs, stubs_dir)
    generate_stubs(stubs_dir)
    cls.pb = importlib.import_module("posthog.v1.flag_pb2")
    cls.pb_grpc = importlib.import_module("posthog.v1.flag_pb2_grpc")


def _wait_for(predicate, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class FlagServicePythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        _load_flag_stubs(cls, "polyglot-flags-stubs-")
        cls.health_pb2 = importlib.import_module("health_pb2")
        cls.health_pb2_grpc = importlib.import_module("health_pb2_grpc")
        cls.stack = stack.Stack(
            stack.keys_from_seed(stack.DEFAULT_SEED),
            gateway_args=stack.DEFAULT_GATEWAY_ARGS + ("--admin_port=0",),
            extra_config={"flags": {"poll_interval_ms": 200, "watch_heartbeat_ms": 500,
                                    "flag_called_flush_interval_ms": 50}})
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)
        cls.flags = cls.pb_grpc.FlagServiceStub(cls.channel)
        health = cls.health_pb2_grpc.HealthStub(cls.channel)
        # FlagService's own health entry follows the first definitions load.
        _wait_for(lambda: health.Check(cls.health_pb2.HealthCheckRequest(
                      service="posthog.v1.FlagService"),
                                       timeout=CALL_TIMEOUT_SECONDS).status
                  == cls.health_pb2.HealthCheckResponse.SERVING, "readiness")

    # -- helpers -------------------------------------------------------------

    def evaluate(self, key, distinct_id, only_local=False, send_events=False, **context):
        request = self.pb.EvaluateFlagRequest(
            key=key,
            context=self.pb.EvaluationContext(distinct_id=distinct_id, **context),
            options=self.pb.EvaluationOptions(only_local=only_local,
                                              send_flag_called_events=send_events))
        return self.flags.EvaluateFlag(request, timeout=CALL_TIMEOUT_SECONDS)

    def emulator_json(self, path):
        with urllib.request.urlopen(self.stack.emulator_url + path, timeout=10) as response:
            return json.load(response)

    def create_flag(self, definition):
        flag = self.pb.Flag(key=definition["key"], name=definition.get("name", ""),
                            active=definition.get("active", True))
        filters = definition["filters"]
        for group in filters.get("groups", []):
            condition = flag.filters.groups.add()
            if group.get("rollout_percentage") is not None:
                condition.rollout_percentage = group["rollout_percentage"]
        for variant in (filters.get("multivariate") or {}).get("variants", []):
            flag.filters.variants.add(key=variant["key"], name=variant.get("name", ""),
                                      rollout_percentage=variant["rollout_percentage"])
        return self.flags.CreateFlag(self.pb.CreateFlagRequest(flag=flag),
                                     timeout=CALL_TIMEOUT_SECONDS).flag

    def wait_until_local(self, key):
        def local():
            result = self.evaluate(key, "probe", only_local=True).result
            return result.error_code == self.pb.FLAG_ERROR_CODE_UNSPECIFIED
        _wait_for(local, f"flag {key} in the local definitions")

    # -- evaluation ----------------------------------------------------------

    def test_consistency_vectors_match_through_grpc(self):
        for name in ("flags_simple_consistency.json", "flags_multivariate_consistency.json"):
            with open(os.path.join(VECTORS_DIR, name), encoding="utf-8") as vectors_file:
                vectors = json.load(vectors_file)
            key = vectors["flag"]["key"]
            self.create_flag(vectors["flag"])
            self.wait_until_local(key)
            mismatches = []
            for i, want in enumerate(vectors["results"]):
                response = self.flags.EvaluateFlags(
                    self.pb.EvaluateFlagsRequest(
                        keys=[key],
                        context=self.pb.EvaluationContext(distinct_id=f"distinct_id_{i}"),
                        options=self.pb.EvaluationOptions(only_local=True)),
                    timeout=CALL_TIMEOUT_SECONDS)
                result = response.results[key]
                self.assertEqual(result.source, self.pb.FLAG_DECISION_SOURCE_LOCAL)
                got = (result.variant or True) if result.enabled else False
                if got != want:
                    mismatches.append((i, got, want))
            self.assertEqual(mismatches, [], name)

    def test_local_result_carries_reason_payload_id_and_version(self):
        result = self.evaluate("checkout-experiment", "user-42").result
        self.assertEqual(result.source, self.pb.FLAG_DECISION_SOURCE_LOCAL)
        self.assertTrue(result.enabled)
        self.assertIn(result.variant, ("control", "test"))
        self.assertEqual(result.reason.code, self.pb.FLAG_REASON_CODE_CONDITION_MATCH)
        self.assertEqual(result.reason.description, "Matched condition set 1")
        self.assertEqual(result.reason.condition_index, 0)
        self.assertEqual(result.flag_id, 2)
        if result.variant == "test":
            self.assertEqual(result.payload.struct_value.fields["discount"].number_value, 10)

    def test_missing_property_falls_back_to_posthog_unless_only_local(self):
        local = self.evaluate("pro-users", "nobody-known", only_local=True).result
        self.assertEqual(local.error_code, self.pb.FLAG_ERROR_CODE_GENERAL)
        self.assertIn("plan", local.error_message)

        remote = self.evaluate("pro-users", "nobody-known")
        self.assertEqual(remote.result.source, self.pb.FLAG_DECISION_SOURCE_REMOTE)
        self.assertEqual(remote.result.error_code, self.pb.FLAG_ERROR_CODE_UNSPECIFIED)
        self.assertFalse(remote.result.enabled)
        self.assertNotEqual(remote.request_id, "")

        given = self.evaluate("pro-users", "nobody-known", person_properties=_struct({"plan": "pro"}))
        self.assertEqual(given.result.source, self.pb.FLAG_DECISION_SOURCE_LOCAL)
        self.assertTrue(given.result.enabled)

    def test_group_flag_needs_its_group(self):
        without = self.evaluate("company-flag", "u1").result
        self.assertFalse(without.enabled)
        self.assertEqual(without.reason.code, self.pb.FLAG_REASON_CODE_NO_GROUP_TYPE)
        with_group = self.evaluate("company-flag", "u1", groups={"company": "acme"}).result
        self.assertTrue(with_group.enabled)

    def test_unknown_flag_is_flag_not_found(self):
        result = self.evaluate("no-such-flag", "u1").result
        self.assertEqual(result.error_code, self.pb.FLAG_ERROR_CODE_FLAG_NOT_FOUND)
        result = self.evaluate("no-such-flag", "u1", only_local=True).result
        self.assertEqual(result.error_code, self.pb.FLAG_ERROR_CODE_FLAG_NOT_FOUND)

    def test_evaluate_all_flags_decides_each_seed_flag(self):
        response = self.flags.EvaluateFlags(
            self.pb.EvaluateFlagsRequest(
                context=self.pb.EvaluationContext(distinct_id="u7",
                                                  person_properties=_struct({"plan": "free",
                                                                             "email": "a@b.org"}))),
            timeout=CALL_TIMEOUT_SECONDS)
        for key in ("beta-feature", "checkout-experiment", "pro-users", "example-com-cohort",
                    "company-flag", "disabled-flag"):
            self.assertIn(key, response.results)
        self.assertFalse(response.results["pro-users"].enabled)
        self.assertEqual(response.results["disabled-flag"].reason.code,
                         self.pb.FLAG_REASON_CODE_FLAG_DISABLED)

    def test_missing_distinct_id_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.evaluate("beta-feature", "")
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_flag_called_events_are_sent_once_per_value(self):
        for _ in range(3):
            self.evaluate("beta-feature", "called-once", send_events=True)

        def events():
            answer = self.emulator_json(
                "/_emulator/events?event=%24feature_flag_called&distinct_id=called-once")
            return answer["events"] if answer["events"] else None
        found = _wait_for(events, "a $feature_flag_called event")
        time.sleep(0.3)  # Would a duplicate follow? Flushes run every 50 ms.
        found = events()
        self.assertEqual(len(found), 1)
        properties = found[0]["properties"]
        self.assertEqual(properties["$feature_flag"], "beta-feature")
        self.assertTrue(properties["locally_evaluated"])
        self.assertEqual(properties["$feature/beta-feature"], properties["$feature_flag_response"])
        self.assertEqual(properties["$feature_flag_id"], 1)
        # They went through the capture pipeline, which stamps its library.
        self.assertEqual(properties["$lib"], "posthog-grpc-gateway")
        self.assertIn("$lib_version", properties)

    # -- management ----------------------------------------------------------

    def test_create_get_update_with_version_and_delete(self):
        created = self.create_flag({"key": "py-managed", "name": "Managed",
                                    "filters": {"groups": [{"rollout_percentage": 30}]}})
        self.assertGreater(created.id, 0)
        got = self.flags.GetFlag(self.pb.GetFlagRequest(id=created.id),
                                 timeout=CALL_TIMEOUT_SECONDS).flag
        self.assertEqual(got.key, "py-managed")
        self.assertEqual(got.filters.groups[0].rollout_percentage, 30)

        name_only = field_mask_pb2.FieldMask(paths=["name"])
        stale = self.pb.Flag(id=created.id, name="stale", version=got.version + 5)
        with self.assertRaises(grpc.RpcError) as raised:
            self.flags.UpdateFlag(
                self.pb.UpdateFlagRequest(flag=stale, update_mask=name_only),
                timeout=CALL_TIMEOUT_SECONDS)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.ABORTED)

        fresh = self.pb.Flag(id=created.id, name="renamed", version=got.version)
        updated = self.flags.UpdateFlag(
            self.pb.UpdateFlagRequest(flag=fresh, update_mask=name_only),
            timeout=CALL_TIMEOUT_SECONDS).flag
        self.assertEqual(updated.name, "renamed")
        self.assertEqual(updated.filters.groups[0].rollout_percentage, 30)

        self.flags.DeleteFlag(self.pb.DeleteFlagRequest(id=created.id),
                              timeout=CALL_TIMEOUT_SECONDS)
        try:
            after = self.flags.GetFlag(self.pb.GetFlagRequest(id=created.id),
                                       timeout=CALL_TIMEOUT_SECONDS).flag
            self.assertTrue(after.deleted)
        except grpc.RpcError as error:
            self.assertEqual(error.code(), grpc.StatusCode.NOT_FOUND)

    def test_get_unknown_flag_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.flags.GetFlag(self.pb.GetFlagRequest(id=987654), timeout=CALL_TIMEOUT_SECONDS)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)

    # -- watch ---------------------------------------------------------------

    def test_watch_sends_definitions_then_changes_then_heartbeats(self):
        stream = self.flags.WatchFlagDefinitions(self.pb.WatchFlagDefinitionsRequest(),
                                                 timeout=30)
        try:
            first = next(stream)
            self.assertTrue(first.HasField("definitions"))
            keys = [f.struct_value.fields["key"].string_value
                    for f in first.definitions.fields["flags"].list_value.values]
            self.assertIn("beta-feature", keys)
            self.create_flag({"key": "py-watched",
                              "filters": {"groups": [{"rollout_percentage": 100}]}})
            saw_change = saw_heartbeat = False
            for message in stream:
                if message.HasField("definitions"):
                    keys = [f.struct_value.fields["key"].string_value
                            for f in message.definitions.fields["flags"].list_value.values]
                    saw_change = saw_change or "py-watched" in keys
                else:
                    saw_heartbeat = True
                if saw_change and saw_heartbeat:
                    break
            self.assertTrue(saw_change)
            self.assertTrue(saw_heartbeat)
        finally:
            stream.cancel()


    # -- metrics -------------------------------------------------------------

    def definitions_metric(self, name):
        """{project alias: value} of one posthog_gateway_flag_definitions_* gauge."""
        return self.project_gauge(f"posthog_gateway_flag_definitions_{name}")

    def project_gauge(self, metric):
        """{project alias: value} of one gauge labelled by project."""
        prefix = f"{metric}{{project=\""
        values = {}
        for line in self.stack.gateway_metrics().splitlines():
            if line.startswith(prefix):
                labels, value = line.rsplit(" ", 1)
                values[labels[len(prefix):-2]] = float(value)
        return values

    def posthog_definition_keys(self):
        """The flag keys PostHog's definitions endpoint serves now."""
        keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        request = urllib.request.Request(
            f"{self.stack.emulator_url}/flags/definitions?token={keys['project_api_key']}",
            headers={"Authorization": f"Bearer {keys['personal_api_key']}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return sorted(flag["key"] for flag in json.load(response)["flags"])

    def watched_definition_keys(self):
        """The flag keys of the gateway's current definitions (a watch's first message)."""
        stream = self.flags.WatchFlagDefinitions(self.pb.WatchFlagDefinitionsRequest(),
                                                 timeout=30)
        try:
            return sorted(f.struct_value.fields["key"].string_value
                          for f in next(stream).definitions.fields["flags"].list_value.values)
        finally:
            stream.cancel()

    def test_definitions_metrics_count_the_flags_and_show_staleness(self):
        # Other tests create and delete flags, and a poll (every 200 ms) brings
        # each change later: a poll landing between the watch's message and the
        # scrape below made them disagree. Start once the gateway holds what
        # PostHog serves now, so that no poll can change the count under the
        # reads (nothing changes PostHog's flags during this test).
        expected = self.posthog_definition_keys()
        _wait_for(lambda: self.watched_definition_keys() == expected,
                  "the gateway's definitions to be PostHog's current ones")
        flags = len(expected)
        self.assertGreater(flags, 0)
        self.assertEqual(list(self.definitions_metric("flags").values()), [flags])
        self.assertEqual(list(self.definitions_metric("stale").values()), [0])
        self.assertEqual(list(self.definitions_metric("quota_limited").values()), [0])
        self.assertGreaterEqual(list(self.definitions_metric("age_seconds").values())[0], 0)

        # PostHog failing: the last definitions are kept, marked stale.
        self.addCleanup(stack.emulator_admin, self.stack.emulator_url, "/_emulator/faults", [])
        stack.emulator_admin(self.stack.emulator_url, "/_emulator/faults",
                             [{"route": "flag_definitions", "status": 503, "error_rate": 1}])
        _wait_for(lambda: list(self.definitions_metric("stale").values()) == [1], "stale = 1")
        self.assertEqual(list(self.definitions_metric("flags").values()), [flags])
        stack.emulator_admin(self.stack.emulator_url, "/_emulator/faults", [])
        _wait_for(lambda: list(self.definitions_metric("stale").values()) == [0], "stale = 0")

    def test_watch_streams_are_counted_per_project(self):
        def streams():
            return self.project_gauge("posthog_gateway_flag_watch_streams")

        # Streams other tests cancelled go away asynchronously.
        _wait_for(lambda: streams() == {"demo": 0}, "no watch stream before")
        stream = self.flags.WatchFlagDefinitions(self.pb.WatchFlagDefinitionsRequest(),
                                                 timeout=30)
        try:
            next(stream)
            self.assertEqual(streams(), {"demo": 1})
        finally:
            stream.cancel()
        _wait_for(lambda: streams() == {"demo": 0}, "no watch stream left")

# The flags ListFlagsPythonTest's emulator holds: GENERATED_FLAGS generated
# ones (created after the seed, so listed first, newest first) and the seed's
# six, one of which each test class deletes.
GENERATED_FLAGS = 230
SEED_FLAG_KEYS_NEWEST_FIRST = ["disabled-flag", "company-flag", "example-com-cohort", "pro-users",
                               "checkout-experiment", "beta-feature"]
DELETED_FLAG_ID = 4  # example-com-cohort


class ListFlagsPythonTest(unittest.TestCase):
    """ListFlags against a stack of its own, so the list is known exactly."""

    @classmethod
    def setUpClass(cls):
        _load_flag_stubs(cls, "polyglot-list-flags-stubs-")
        cls.person_pb = importlib.import_module("posthog.v1.person_pb2")
        cls.person_pb_grpc = importlib.import_module("posthog.v1.person_pb2_grpc")
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.admin("/_emulator/seed", {"generate_flags": GENERATED_FLAGS, "project_id": 1})
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)
        cls.flags = cls.pb_grpc.FlagServiceStub(cls.channel)
        cls.flags.DeleteFlag(cls.pb.DeleteFlagRequest(id=DELETED_FLAG_ID), timeout=CALL_TIMEOUT_SECONDS)
        # PostHog's order: newest first, deleted flags left out.
        cls.expected_keys = [f"generated-flag-{k}" for k in reversed(range(GENERATED_FLAGS))] + [
            key for key in SEED_FLAG_KEYS_NEWEST_FIRST if key != "example-com-cohort"]

    @classmethod
    def admin(cls, path, body=None):
        return stack.emulator_admin(cls.stack.emulator_url, path, body,
                                    timeout=CALL_TIMEOUT_SECONDS)

    def setUp(self):
        self.admin("/_emulator/faults", [])

    def list(self, **fields):
        return list(self.flags.ListFlags(self.pb.ListFlagsRequest(**fields),
                                         timeout=CALL_TIMEOUT_SECONDS))

    @staticmethod
    def keys(messages):
        """The flags' keys, in order, across the stream's messages."""
        return [flag.key for message in messages for flag in message.flags]

    def flag_requests(self):
        routes = self.admin("/_emulator/requests?route=feature_flags")["routes"]
        return routes.get("feature_flags", {}).get("count", 0)

    def test_streams_every_live_flag_over_several_pages_newest_first(self):
        before = self.flag_requests()
        received = self.list()
        self.assertEqual(self.keys(received), self.expected_keys)
        self.assertEqual(len(self.expected_keys), GENERATED_FLAGS + 5)
        # PostHog's default page of 100: three pages, one request and one
        # message each.
        self.assertEqual([r.progress.page for r in received], [1, 2, 3])
        self.assertEqual([r.progress.items_streamed for r in received],
                         [100, 200, GENERATED_FLAGS + 5])
        self.assertTrue(all(r.resume_token for r in received))
        self.assertEqual(self.flag_requests() - before, 3)
        # Each flag converted as GetFlag converts it.
        beta = received[-1].flags[-1]
        self.assertEqual(beta, self.flags.GetFlag(self.pb.GetFlagRequest(id=beta.id),
                                                  timeout=CALL_TIMEOUT_SECONDS).flag)
        self.assertEqual(beta.filters.groups[0].rollout_percentage, 50)

    def test_resume_continues_without_gap_or_duplicate(self):
        # Pages of one flag: a message, so a token, after every flag.
        full = self.list(page_size=1, limit=120)
        total = len(self.expected_keys)
        for position in (0, 49, 50, 117):
            with self.subTest(position=position):
                resumed = self.list(page_size=30, resume_token=full[position].resume_token)
                self.assertEqual(self.keys(resumed), self.expected_keys[position + 1:])
                self.assertEqual(resumed[0].progress.items_streamed, min(position + 31, total))
        last = self.list(page_size=100)[-1]
        self.assertEqual(self.list(resume_token=last.resume_token), [])

    def test_limit_counts_the_flags_of_resumed_calls(self):
        first = self.list(page_size=20, limit=120)
        self.assertEqual(self.keys(first), self.expected_keys[:120])
        resumed = self.list(page_size=40, limit=120, resume_token=first[2].resume_token)
        self.assertEqual(self.keys(resumed), self.expected_keys[60:120])
        self.assertEqual(self.list(limit=120, resume_token=first[-1].resume_token), [])

    def test_forged_token_is_invalid_argument(self):
        token = self.list(limit=1)[0].resume_token
        forged = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        for bad in (forged, "not.a-token"):
            with self.subTest(token=bad), self.assertRaises(grpc.RpcError) as raised:
                self.list(resume_token=bad)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("resume_token", raised.exception.details())

    def test_a_persons_list_token_is_refused(self):
        persons = self.person_pb_grpc.PersonServiceStub(self.channel)
        token = next(iter(persons.ListPersons(self.person_pb.ListPersonsRequest(limit=1),
                                              timeout=CALL_TIMEOUT_SECONDS))).resume_token
        with self.assertRaises(grpc.RpcError) as raised:
            self.list(resume_token=token)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("resume_token", raised.exception.details())

    def test_bad_page_size_and_limit_are_invalid_argument(self):
        for fields in ({"page_size": 1001}, {"page_size": -1}, {"limit": -5}):
            with self.subTest(**fields), self.assertRaises(grpc.RpcError) as raised:
                self.list(**fields)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_a_truncated_page_is_unavailable_and_resumable(self):
        # The first page is fetched alone; the rule's first use is on it, its
        # second (truncating) use on the second page.
        self.admin("/_emulator/faults", [{"route": "feature_flags", "count": 1},
                                         {"route": "feature_flags", "truncate_rate": 1, "count": 1}])
        received = []
        with self.assertRaises(grpc.RpcError) as raised:
            for response in self.flags.ListFlags(self.pb.ListFlagsRequest(page_size=50),
                                                 timeout=CALL_TIMEOUT_SECONDS):
                received.append(response)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("not complete JSON", raised.exception.details())
        received_keys = self.keys(received)
        self.assertEqual(received_keys, self.expected_keys[:len(received_keys)])
        self.assertEqual(len(received_keys) % 50, 0)
        rest = self.list(page_size=50, resume_token=received[-1].resume_token) if received \
            else self.list(page_size=50)
        self.assertEqual(self.keys(received + rest), self.expected_keys)

    def test_upstream_errors_map_like_every_other_call(self):
        self.admin("/_emulator/faults", [{"route": "feature_flags", "status": 503, "error_rate": 1,
                                          "count": 1}])
        with self.assertRaises(grpc.RpcError) as raised:
            self.list()
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)



class RemoteOnlyFlagsTest(unittest.TestCase):
    """A project with only its project API key: no definitions to evaluate
    locally, so every flag is asked of PostHog."""

    @classmethod
    def setUpClass(cls):
        _load_flag_stubs(cls, "polyglot-flags-remote-stubs-")
        keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        cls.stack = stack.Stack({"project_api_key": keys["project_api_key"]})
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)
        cls.flags = cls.pb_grpc.FlagServiceStub(cls.channel)

    def evaluate(self, only_local):
        request = self.pb.EvaluateFlagsRequest(
            keys=["beta-feature"], context=self.pb.EvaluationContext(distinct_id="remote-only"),
            options=self.pb.EvaluationOptions(only_local=only_local))
        return self.flags.EvaluateFlags(request, timeout=CALL_TIMEOUT_SECONDS)

    def test_flags_are_decided_by_posthog(self):
        result = self.evaluate(only_local=False).results["beta-feature"]
        self.assertEqual(result.error_code, self.pb.FLAG_ERROR_CODE_UNSPECIFIED)
        self.assertEqual(result.source, self.pb.FLAG_DECISION_SOURCE_REMOTE)
        self.assertEqual(result.key, "beta-feature")

    def test_only_local_says_why_nothing_could_be_decided(self):
        result = self.evaluate(only_local=True).results["beta-feature"]
        self.assertEqual(result.error_code, self.pb.FLAG_ERROR_CODE_GENERAL)
        self.assertIn("no key that can fetch flag definitions", result.error_message)


if __name__ == "__main__":
    unittest.main()
