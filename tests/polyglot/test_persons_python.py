"""PersonService from Python against the real gateway and emulator: the RPCs,
then the faults ListPersons must survive (posthog issue 6).

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import importlib
import json
import os
import shutil
import sys
import tempfile
import atexit
import time
import unittest
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_user_python  # noqa: E402  (stub generation and the harness path)
import stack  # noqa: E402

TIMEOUT = 30
# The gateway's default look-ahead: pages fetched beyond the one streamed.
LOOK_AHEAD = 3


class _Emulator:
    """The emulator's admin endpoints and its persons API, as a user would call it."""

    def __init__(self, url, personal_key):
        self.url = url
        self._key = personal_key

    def admin(self, path, body=None):
        return stack.emulator_admin(self.url, path, body, timeout=TIMEOUT)

    def persons_requests(self):
        return self.admin("/_emulator/requests?route=persons")["routes"].get("persons", {}).get("count", 0)

    def requests_to(self, path_prefix):
        """How many requests of the recent log went to a path under `path_prefix`."""
        recent = self.admin("/_emulator/requests?route=persons")["recent"]
        return sum(1 for r in recent if r["path"].startswith(path_prefix))

    def faults(self, rules):
        self.admin("/_emulator/faults", rules)

    def all_persons(self, query="", page_size=100):
        """Lists persons by following `next`, the way a user's script would."""
        url = f"{self.url}/api/projects/1/persons/?limit={page_size}{query}"
        persons = []
        while url:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._key}"})
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                page = json.loads(response.read())
            persons.extend(page["results"])
            url = page["next"]
        return persons


_STUBS_DIR = None


def load_stubs():
    """Generates the stubs once per process, in a directory kept until exit.

    Several test modules generate stubs; the first one imported wins the
    `posthog` package, so its directory must outlive every test class (a
    class cleanup deleting it breaks later imports of other modules).
    """
    global _STUBS_DIR
    if _STUBS_DIR is None:
        for name in [m for m in sys.modules if m == "posthog" or m.startswith("posthog.")]:
            del sys.modules[name]
        _STUBS_DIR = tempfile.mkdtemp(prefix="polyglot-persons-stubs-")
        atexit.register(shutil.rmtree, _STUBS_DIR, True)
        test_user_python.generate_stubs(_STUBS_DIR)
        for module in ("user_pb2", "user_pb2_grpc", "person_pb2", "person_pb2_grpc"):
            importlib.import_module(f"posthog.v1.{module}")
    return importlib.import_module("posthog.v1.person_pb2"), importlib.import_module("posthog.v1.person_pb2_grpc")


def wait_until_stable(read, interval=0.3, timeout=10.0):
    """Returns read()'s value once two readings `interval` apart agree."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(interval)
        value = read()
        if value == last:
            return value
        last = value
    return last


class PersonServiceTestBase(unittest.TestCase):
    GENERATED = 0
    CONFIG_EXTRA = None
    EXTRA_PROJECTS = ()

    @classmethod
    def setUpClass(cls):
        cls.pb, cls.pb_grpc = load_stubs()
        cls.keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        cls.stack = stack.Stack(cls.keys, extra_config=cls.CONFIG_EXTRA,
                                extra_projects=cls.EXTRA_PROJECTS)
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.emulator = _Emulator(cls.stack.emulator_url, cls.keys["personal_api_key"])
        if cls.GENERATED:
            cls.emulator.admin("/_emulator/seed", {"generate_persons": cls.GENERATED, "project_id": 1})
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)
        cls.persons = cls.pb_grpc.PersonServiceStub(cls.channel)

    def setUp(self):
        self.emulator.faults([])

    def list(self, timeout=TIMEOUT, **fields):
        return self.persons.ListPersons(self.pb.ListPersonsRequest(**fields), timeout=timeout)

    def uuids(self, responses):
        """The persons' uuids, in order, across the stream's messages."""
        return [person.uuid for r in responses for person in r.persons]


class PersonRpcsTest(PersonServiceTestBase):
    GENERATED = 250

    def test_list_streams_every_person_in_posthogs_order_with_progress(self):
        expected = [p["uuid"] for p in self.emulator.all_persons()]

        responses = list(self.list(page_size=40))

        self.assertEqual(self.uuids(responses), expected)
        # One message per PostHog page of 40.
        pages = (len(expected) + 39) // 40
        self.assertEqual([len(r.persons) for r in responses],
                         [40] * (pages - 1) + [len(expected) - 40 * (pages - 1)])
        self.assertEqual([r.progress.items_streamed for r in responses],
                         [min(40 * (i + 1), len(expected)) for i in range(pages)])
        self.assertEqual([r.progress.page for r in responses], list(range(1, pages + 1)))
        self.assertTrue(all(r.resume_token for r in responses))

    def test_list_with_limit_stops_there(self):
        responses = list(self.list(page_size=7, limit=10))

        self.assertEqual([len(r.persons) for r in responses], [7, 3])

    def test_list_filters_by_distinct_id(self):
        responses = list(self.list(distinct_id="generated-3"))

        self.assertEqual(len(self.uuids(responses)), 1)
        self.assertIn("generated-3", responses[0].persons[0].distinct_ids)

    def test_resume_after_a_disconnect_at_every_position_of_a_page(self):
        full = self.uuids(self.list(page_size=5, limit=15))
        # Pages of one person: a message, so a token, after every person.
        first = list(self.list(page_size=1, limit=15))
        for position in range(5, 10):  # every position of the second page of 5
            with self.subTest(position=position):
                resumed = list(self.list(page_size=5, limit=15, resume_token=first[position].resume_token))
                self.assertEqual(self.uuids(resumed), full[position + 1:])
                self.assertEqual(resumed[0].progress.items_streamed, min(position + 6, 15))

    def test_resume_after_each_message_of_a_list(self):
        full = self.uuids(self.list(page_size=10, limit=30))
        messages = list(self.list(page_size=10, limit=30))
        self.assertEqual(len(messages), 3)
        for index, message in enumerate(messages):
            with self.subTest(message=index):
                resumed = self.uuids(self.list(page_size=10, limit=30, resume_token=message.resume_token))
                self.assertEqual(resumed, full[10 * (index + 1):])

    def test_resume_with_another_page_size_continues_at_the_same_person(self):
        full = self.uuids(self.list(page_size=10, limit=30))
        token = list(self.list(page_size=1, limit=30))[12].resume_token

        self.assertEqual(self.uuids(self.list(page_size=7, limit=30, resume_token=token)), full[13:])

    def test_forged_token_is_invalid_argument(self):
        token = next(iter(self.list(page_size=5))).resume_token
        payload, mac = token.split(".")
        forged = ("A" if payload[0] != "A" else "B") + payload[1:] + "." + mac
        for bad in (forged, "garbage", token + "x"):
            with self.subTest(token=bad[:12]):
                with self.assertRaises(grpc.RpcError) as raised:
                    list(self.list(page_size=5, resume_token=bad))
                self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_token_for_other_filters_is_invalid_argument(self):
        token = next(iter(self.list(page_size=5))).resume_token

        with self.assertRaises(grpc.RpcError) as raised:
            list(self.list(page_size=5, search="generated", resume_token=token))

        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("other filters", raised.exception.details())

    def test_get_person_by_uuid_and_by_distinct_id(self):
        listed = next(iter(self.list(distinct_id="generated-7"))).persons[0]

        by_uuid = self.persons.GetPerson(
            self.pb.GetPersonRequest(person=self.pb.PersonRef(uuid=listed.uuid)), timeout=TIMEOUT).person
        by_distinct_id = self.persons.GetPerson(
            self.pb.GetPersonRequest(person=self.pb.PersonRef(distinct_id="generated-7")),
            timeout=TIMEOUT).person

        self.assertEqual(by_uuid.uuid, listed.uuid)
        self.assertEqual(by_distinct_id.uuid, listed.uuid)
        self.assertIn("generated-7", by_uuid.distinct_ids)

    def test_get_unknown_person_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.persons.GetPerson(self.pb.GetPersonRequest(person=self.pb.PersonRef(distinct_id="nobody-at-all")),
                                   timeout=TIMEOUT)

        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_set_and_unset_properties(self):
        ref = self.pb.PersonRef(distinct_id="generated-11")
        request = self.pb.UpdatePersonPropertiesRequest(person=ref)
        request.set.update({"plan": "pro", "seats": 3})
        self.persons.UpdatePersonProperties(request, timeout=TIMEOUT)
        person = self.persons.GetPerson(self.pb.GetPersonRequest(person=ref), timeout=TIMEOUT).person
        self.assertEqual(person.properties["plan"], "pro")
        self.assertEqual(person.properties["seats"], 3)

        self.persons.UpdatePersonProperties(
            self.pb.UpdatePersonPropertiesRequest(person=ref, unset=["plan"]), timeout=TIMEOUT)

        person = self.persons.GetPerson(self.pb.GetPersonRequest(person=ref), timeout=TIMEOUT).person
        self.assertNotIn("plan", person.properties)
        self.assertEqual(person.properties["seats"], 3)

    def test_delete_person(self):
        ref = self.pb.PersonRef(distinct_id="generated-200")
        self.persons.DeletePerson(self.pb.DeletePersonRequest(person=ref, delete_events=True), timeout=TIMEOUT)

        with self.assertRaises(grpc.RpcError) as raised:
            self.persons.GetPerson(self.pb.GetPersonRequest(person=ref), timeout=TIMEOUT)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)


class ListPersonsFaultsTest(PersonServiceTestBase):
    GENERATED = 3000
    # These tests page far more than 240 times a minute; the pacer has its own
    # tests, so PostHog's budget is lifted here (the emulator enforces none).
    CONFIG_EXTRA = {"paging": {"persons_per_minute": 0, "persons_per_hour": 0}}
    # A second project of the seed, for the one test that counts requests.
    ISOLATED = {"alias": "isolated", "project_id": 2}
    ISOLATED_PATH = "/api/projects/2/persons"
    EXTRA_PROJECTS = (ISOLATED,)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator.admin("/_emulator/seed", {"generate_persons": 120,
                                               "project_id": cls.ISOLATED["project_id"]})

    def assert_fails(self, code, rules, **fields):
        self.emulator.faults(rules)
        received = []
        with self.assertRaises(grpc.RpcError) as raised:
            for response in self.list(**fields):
                received.append(response)
        self.assertEqual(raised.exception.code(), code, raised.exception.details())
        return received, raised.exception

    def test_foreign_next_url_ends_the_stream_without_following_it(self):
        # On a project no other test lists: a page an earlier test's stream
        # still had in flight can neither take this fault nor be counted here.
        before = self.emulator.requests_to(self.ISOLATED_PATH)
        _, error = self.assert_fails(grpc.StatusCode.UNAVAILABLE,
                                     [{"route": self.ISOLATED_PATH,
                                       "foreign_next_host": "http://evil.example:1234", "count": 1}],
                                     page_size=50, project=self.ISOLATED["alias"])
        self.assertIn("next", error.details())
        # The first page named the foreign host, so nothing was fetched beyond it.
        self.assertEqual(self.emulator.requests_to(self.ISOLATED_PATH) - before, 1)

    def test_malformed_page_is_unavailable(self):
        self.assert_fails(grpc.StatusCode.UNAVAILABLE,
                          [{"route": "persons", "malformed_rate": 1, "count": 1}], page_size=50)

    def test_truncated_page_is_unavailable(self):
        _, error = self.assert_fails(grpc.StatusCode.UNAVAILABLE,
                                     [{"route": "persons", "truncate_rate": 1, "count": 1}], page_size=50)
        self.assertIn("not complete JSON", error.details())

    def test_reset_mid_page_is_unavailable_and_resumable_without_gap(self):
        full = self.uuids(self.list(page_size=50, limit=200))
        # The third request (the look-ahead fetches pages 2-4 concurrently) is reset.
        received, _ = self.assert_fails(
            grpc.StatusCode.UNAVAILABLE,
            [{"route": "persons", "latency_ms": 0, "count": 1},
             {"route": "persons", "reset_rate": 1, "count": 1}], page_size=50, limit=200)
        self.assertEqual(self.uuids(received), full[:len(self.uuids(received))])
        self.assertEqual(len(self.uuids(received)) % 50, 0)
        resumed = list(self.list(page_size=50, limit=200, resume_token=received[-1].resume_token)) \
            if received else list(self.list(page_size=50, limit=200))
        self.assertEqual(self.uuids(received) + self.uuids(resumed), full)

    def test_429_with_retry_after_is_waited_out(self):
        self.emulator.faults([{"route": "persons", "status": 429, "error_rate": 1, "retry_after_s": 1,
                               "count": 1}])
        self.assertEqual(len(self.uuids(self.list(page_size=100, limit=300))), 300)

    def test_429_without_retry_after_is_waited_out_from_posthogs_detail(self):
        self.emulator.faults([{"route": "persons", "status": 429, "error_rate": 1, "count": 1}])
        self.assertEqual(len(self.uuids(self.list(page_size=100, limit=300))), 300)

    def test_429_beyond_the_deadline_is_resource_exhausted_with_retry_info(self):
        _, error = self.assert_fails(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            [{"route": "persons", "status": 429, "error_rate": 1, "retry_after_s": 30, "count": 1}],
            page_size=100, timeout=5)
        details = dict(error.trailing_metadata() or ())
        self.assertIn("grpc-status-details-bin", details)
        self.assertIn(b"google.rpc.RetryInfo", details["grpc-status-details-bin"])

    def test_cancel_mid_stream_stops_fetching(self):
        before = self.emulator.persons_requests()
        call = self.list(page_size=10)
        for _ in range(3):
            next(call)
        call.cancel()
        # The count stops growing once the gateway notices; the bound below
        # holds whatever the timing.
        after_cancel = wait_until_stable(self.emulator.persons_requests)
        # 300 pages exist: only those gRPC's flow-control windows let the
        # gateway write ahead of this reader, plus the look-ahead, were fetched.
        self.assertLess(after_cancel - before, 200)

    def test_slow_reader_throttles_fetching_and_still_gets_everything(self):
        # Without BDP probing the client's HTTP/2 window stays at 64 KiB; with
        # it, grpcio keeps widening the window and buffers the stream itself.
        channel = grpc.insecure_channel(self.stack.gateway_target, options=[("grpc.http2.bdp_probe", 0)])
        self.addCleanup(channel.close)
        persons = self.pb_grpc.PersonServiceStub(channel)
        before = self.emulator.persons_requests()
        call = persons.ListPersons(self.pb.ListPersonsRequest(page_size=10), timeout=TIMEOUT)
        received = [next(call)]
        # A reader that stalls: fetching must stall with it, once the
        # flow-control window is full (how soon depends on the machine's load).
        stalled = wait_until_stable(self.emulator.persons_requests) - before
        # Of the list's 300 pages, only what fills the flow-control window
        # (64 KiB, about 21 pages of 10 here) plus the look-ahead was fetched.
        self.assertLess(stalled, 60)
        received.extend(call)
        self.assertEqual(self.uuids(received), [p["uuid"] for p in self.emulator.all_persons()])


class ExpiredTokenTest(PersonServiceTestBase):
    GENERATED = 20
    CONFIG_EXTRA = {"paging": {"resume_token_ttl_ms": 1000}}

    def test_expired_token_is_invalid_argument_saying_so(self):
        token = next(iter(self.list(page_size=5))).resume_token
        time.sleep(2.1)  # The token's lifetime (1 s, whole seconds) must pass.

        with self.assertRaises(grpc.RpcError) as raised:
            list(self.list(page_size=5, resume_token=token))

        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("expired", raised.exception.details())


if __name__ == "__main__":
    unittest.main()
