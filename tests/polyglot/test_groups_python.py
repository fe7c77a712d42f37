"""GroupService from Python against the real gateway and emulator (issue 19):
the RPCs, resumption of the cursor-paginated ListGroups at every position, and
the faults it must survive.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import base64
import importlib
import json
import os
import sys
import threading
import unittest
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_persons_python  # noqa: E402  (stub generation and the harness path)
import stack  # noqa: E402

TIMEOUT = 30
# The groups endpoints spend the default private-API budget (480/minute);
# these tests page far more, and the pacer has its own tests.
NO_LIMITS = {"paging": {"flags_per_minute": 0, "flags_per_hour": 0}}


def load_stubs():
    test_persons_python.load_stubs()
    return (importlib.import_module("posthog.v1.group_pb2"),
            importlib.import_module("posthog.v1.group_pb2_grpc"))


class _Emulator:
    """The emulator's admin endpoints and its groups API, as a user would call it."""

    def __init__(self, url, personal_key):
        self.url = url
        self._key = personal_key

    def admin(self, path, body=None):
        return stack.emulator_admin(self.url, path, body, timeout=TIMEOUT)

    def groups_requests(self):
        return self.admin("/_emulator/requests?route=groups")["routes"].get("groups", {}).get("count", 0)

    def faults(self, rules):
        self.admin("/_emulator/faults", rules)

    def _call(self, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                         headers={"Authorization": f"Bearer {self._key}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read())

    def all_groups(self, query="group_type_index=0"):
        """Lists groups by following `next`, the way a user's script would."""
        url = f"{self.url}/api/projects/1/groups/?{query}"
        groups = []
        while url:
            page = self._call(url)
            groups.extend(page["results"])
            url = page["next"]
        return groups

    def create(self, key, index=0):
        return self._call(f"{self.url}/api/projects/1/groups/",
                          {"group_type_index": index, "group_key": key, "group_properties": {}})


class GroupServiceTestBase(unittest.TestCase):
    GENERATED = 0

    @classmethod
    def setUpClass(cls):
        cls.pb, cls.pb_grpc = load_stubs()
        cls.keys = stack.keys_from_seed(stack.DEFAULT_SEED)
        cls.stack = stack.Stack(cls.keys, extra_config=NO_LIMITS)
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.emulator = _Emulator(cls.stack.emulator_url, cls.keys["personal_api_key"])
        if cls.GENERATED:
            cls.emulator.admin("/_emulator/seed", {"generate_groups": cls.GENERATED, "project_id": 1,
                                                   "group_type_index": 0})
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)
        cls.groups = cls.pb_grpc.GroupServiceStub(cls.channel)

    def setUp(self):
        self.emulator.faults([])

    def list(self, timeout=TIMEOUT, **fields):
        return self.groups.ListGroups(self.pb.ListGroupsRequest(**fields), timeout=timeout)

    @staticmethod
    def keys_of(responses):
        return [group.group_key for r in responses for group in r.groups]


class GroupRpcsTest(GroupServiceTestBase):
    GENERATED = 250

    def test_list_streams_every_group_to_the_end_newest_first_with_progress(self):
        expected = [g["group_key"] for g in self.emulator.all_groups()]
        self.assertGreaterEqual(len(expected), 250)

        responses = list(self.list(group_type_index=0))

        self.assertEqual(self.keys_of(responses), expected)
        # One message per PostHog page (100 groups).
        sizes = [len(r.groups) for r in responses]
        self.assertEqual(sum(sizes), len(expected))
        self.assertTrue(all(size == 100 for size in sizes[:-1]), sizes)
        self.assertEqual([r.progress.page for r in responses], list(range(1, len(responses) + 1)))
        self.assertEqual(responses[-1].progress.items_streamed, len(expected))
        self.assertTrue(all(r.resume_token for r in responses))

    def test_list_filters_by_key_and_search_as_posthog_does(self):
        for query, fields in (("group_type_index=0&group_key=GROUP-1", {"group_key": "GROUP-1"}),
                              ("group_type_index=0&search=generated-group-7",
                               {"search": "generated-group-7"})):
            with self.subTest(query=query):
                expected = [g["group_key"] for g in self.emulator.all_groups(query)]
                self.assertTrue(expected)
                self.assertEqual(self.keys_of(self.list(group_type_index=0, **fields)), expected)

    def test_limit_stops_there_and_counts_resumed_calls(self):
        first = list(self.list(group_type_index=0, limit=130))
        self.assertEqual(len(self.keys_of(first)), 130)
        second = list(self.list(group_type_index=0, limit=170, resume_token=first[-1].resume_token))
        full = self.keys_of(self.list(group_type_index=0))
        self.assertEqual(self.keys_of(second), full[130:170])

    def test_resume_after_each_message(self):
        full = self.keys_of(self.list(group_type_index=0))
        messages = list(self.list(group_type_index=0))
        for index, message in enumerate(messages):
            with self.subTest(message=index):
                resumed = self.keys_of(self.list(group_type_index=0, resume_token=message.resume_token))
                self.assertEqual(resumed, full[message.progress.items_streamed:])

    def test_resume_at_every_position_of_a_page(self):
        full = self.keys_of(self.list(group_type_index=0))
        # A call with limit n ends after the n-th group: its token is the
        # position right after it. Every position of the second page.
        for position in range(100, 200):
            with self.subTest(position=position):
                cut = list(self.list(group_type_index=0, limit=position + 1))
                self.assertEqual(self.keys_of(cut), full[:position + 1])
                resumed = self.keys_of(self.list(group_type_index=0, resume_token=cut[-1].resume_token))
                self.assertEqual(resumed, full[position + 1:])

    def test_a_forged_cursor_inside_a_token_is_invalid_argument(self):
        # The whole list is read, so that no look-ahead fetch of this call can
        # still reach the emulator once the count below is taken.
        token = list(self.list(group_type_index=0))[0].resume_token
        payload, mac = token.split(".")
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self.assertIn("c", decoded)
        decoded["c"] = base64.b64encode(b"o=0&p=2001-01-01").decode()
        forged_payload = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
        before = test_persons_python.wait_until_stable(self.emulator.groups_requests)
        for bad in (forged_payload + "." + mac, "garbage", token + "x"):
            with self.subTest(token=bad[:12]):
                with self.assertRaises(grpc.RpcError) as raised:
                    list(self.list(group_type_index=0, resume_token=bad))
                self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.emulator.groups_requests(), before)

    def test_a_token_for_another_type_or_filter_is_invalid_argument(self):
        token = next(iter(self.list(group_type_index=0))).resume_token
        for fields in ({"group_type_index": 1}, {"group_type_index": 0, "search": "x"},
                       {"group_type_index": 0, "group_key": "a"}):
            with self.subTest(fields=fields):
                with self.assertRaises(grpc.RpcError) as raised:
                    list(self.list(resume_token=token, **fields))
                self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn("other filters", raised.exception.details())

    def test_a_type_index_outside_zero_to_four_is_invalid_argument(self):
        for index in (-1, 5):
            with self.subTest(index=index):
                with self.assertRaises(grpc.RpcError) as raised:
                    list(self.list(group_type_index=index))
                self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_list_group_types(self):
        types = self.groups.ListGroupTypes(self.pb.ListGroupTypesRequest(), timeout=TIMEOUT).group_types
        self.assertEqual([(t.group_type_index, t.group_type) for t in types], [(0, "company"), (1, "project")])

    def test_create_get_set_and_unset(self):
        request = self.pb.CreateGroupRequest(group_type_index=1, group_key="acme/inc?x=1")
        request.group_properties.update({"plan": "pro"})
        created = self.groups.CreateGroup(request, timeout=TIMEOUT).group
        self.assertEqual(created.group_key, "acme/inc?x=1")
        with self.assertRaises(grpc.RpcError) as raised:
            self.groups.CreateGroup(request, timeout=TIMEOUT)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.ALREADY_EXISTS)

        update = self.pb.UpdateGroupPropertiesRequest(group_type_index=1, group_key="acme/inc?x=1",
                                                      unset=["plan"])
        update.set.update({"seats": 12})
        self.groups.UpdateGroupProperties(update, timeout=TIMEOUT)

        group = self.groups.GetGroup(self.pb.GetGroupRequest(group_type_index=1, group_key="acme/inc?x=1"),
                                     timeout=TIMEOUT).group
        self.assertEqual(group.group_properties["seats"], 12)
        self.assertNotIn("plan", group.group_properties)

    def test_get_unknown_group_is_not_found_and_a_bad_key_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.groups.GetGroup(self.pb.GetGroupRequest(group_type_index=0, group_key="nobody"),
                                 timeout=TIMEOUT)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)
        for key in ("", "k" * 401):
            with self.assertRaises(grpc.RpcError) as raised:
                self.groups.GetGroup(self.pb.GetGroupRequest(group_type_index=0, group_key=key),
                                     timeout=TIMEOUT)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


class ListGroupsFaultsTest(GroupServiceTestBase):
    GENERATED = 3000

    def assert_fails(self, code, rules, **fields):
        self.emulator.faults(rules)
        received = []
        with self.assertRaises(grpc.RpcError) as raised:
            for response in self.list(group_type_index=0, **fields):
                received.append(response)
        self.assertEqual(raised.exception.code(), code, raised.exception.details())
        return received, raised.exception

    def test_foreign_next_url_ends_the_stream_without_following_it(self):
        before = self.emulator.groups_requests()
        _, error = self.assert_fails(grpc.StatusCode.UNAVAILABLE,
                                     [{"route": "groups", "foreign_next_host": "http://evil.example:1234",
                                       "count": 1}])
        self.assertIn("next", error.details())
        self.assertEqual(self.emulator.groups_requests() - before, 1)

    def test_truncated_page_is_unavailable_and_resumable_without_gap(self):
        full = self.keys_of(self.list(group_type_index=0, limit=500))
        received, error = self.assert_fails(
            grpc.StatusCode.UNAVAILABLE,
            [{"route": "groups", "latency_ms": 0, "count": 2},
             {"route": "groups", "truncate_rate": 1, "count": 1}], limit=500)
        self.assertIn("not complete JSON", error.details())
        self.assertEqual(self.keys_of(received), full[:200])
        resumed = list(self.list(group_type_index=0, limit=500, resume_token=received[-1].resume_token))
        self.assertEqual(self.keys_of(received) + self.keys_of(resumed), full)

    def test_429_is_waited_out(self):
        self.emulator.faults([{"route": "groups", "status": 429, "error_rate": 1, "retry_after_s": 1,
                               "count": 1}])
        self.assertEqual(len(self.keys_of(self.list(group_type_index=0, limit=300))), 300)

    def test_429_beyond_the_deadline_is_resource_exhausted_with_retry_info(self):
        _, error = self.assert_fails(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            [{"route": "groups", "status": 429, "error_rate": 1, "retry_after_s": 30, "count": 1}],
            timeout=5)
        details = dict(error.trailing_metadata() or ())
        self.assertIn(b"google.rpc.RetryInfo", details["grpc-status-details-bin"])

    def test_groups_created_while_listing_are_neither_repeated_nor_skip_any(self):
        before = [g["group_key"] for g in self.emulator.all_groups()]
        created = []
        stop = threading.Event()

        def create_while_listing():
            k = 0
            while not stop.is_set() and k < 200:
                created.append(self.emulator.create(f"inserted-{k}")["group_key"])
                k += 1

        writer = threading.Thread(target=create_while_listing)
        listed = []
        call = self.list(group_type_index=0)
        listed.extend(self.keys_of([next(call)]))
        writer.start()
        try:
            for response in call:
                listed.extend(g.group_key for g in response.groups)
        finally:
            stop.set()
            writer.join()
        self.assertTrue(created)
        self.assertEqual(len(listed), len(set(listed)), "a group was streamed twice")
        self.assertEqual([k for k in listed if not k.startswith("inserted-")], before)


if __name__ == "__main__":
    unittest.main()
