"""CaptureService from Python against the real gateway and emulator: the
exact event bodies PostHog receives, each acknowledgement mode, streaming,
the convention RPCs and input validation.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest discover -s tests/polyglot -p 'test_*.py' -v
"""

import os
import threading
import unittest

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

import capture_helpers as helpers
import stack

TIMEOUT = 30


def struct(values):
    s = struct_pb2.Struct()
    s.update(values)
    return s


# What the gateway adds to every event by default: its library, the server
# mark and GeoIP off, as PostHog's server SDKs do.
LIB = {"$lib": "posthog-grpc-gateway", "$lib_version": "0.1.0", "$is_server": True,
       "$geoip_disable": True}


class CapturePythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.pb_grpc = helpers.load_capture_stubs(cls)
        cls.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED))
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.stop)
        cls.channel = grpc.insecure_channel(cls.stack.gateway_target)
        cls.addClassCleanup(cls.channel.close)
        cls.capture = cls.pb_grpc.CaptureServiceStub(cls.channel)
        cls.url = cls.stack.emulator_url

    def test_per_project_capture_readiness_is_serving_with_a_good_key(self):
        import importlib
        health_pb2 = importlib.import_module("health_pb2")
        health_pb2_grpc = importlib.import_module("health_pb2_grpc")

        response = health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service="posthog.v1.CaptureService/demo"),
            timeout=TIMEOUT)

        self.assertEqual(response.status, health_pb2.HealthCheckResponse.SERVING)

    def stored(self, uuid):
        [event] = helpers.wait_for_uuids(self.url, [uuid])
        return helpers.stored_body(event)

    def test_capture_event_delivers_the_exact_sdk_body(self):
        when = timestamp_pb2.Timestamp(seconds=1767225600, nanos=250000000)
        event = self.pb.Event(
            event="order completed", distinct_id="user-1",
            properties=struct({"amount": 29.5, "items": 3, "tags": ["a", "b"]}),
            timestamp=when, uuid="0191e8a0-0000-7000-8000-000000000001",
            groups={"company": "acme"}, set=struct({"plan": "pro"}),
            set_once=struct({"first_seen": "2026"}), geoip="GEOIP_MODE_DISABLED")

        response = self.capture.CaptureEvent(self.pb.CaptureEventRequest(event=event),
                                             timeout=TIMEOUT)

        self.assertEqual(response.uuid, "0191e8a0-0000-7000-8000-000000000001")
        self.assertEqual(self.stored(response.uuid), {
            "event": "order completed", "distinct_id": "user-1",
            "properties": {"amount": 29.5, "items": 3, "tags": ["a", "b"],
                           "$groups": {"company": "acme"}, "$set": {"plan": "pro"},
                           "$set_once": {"first_seen": "2026"}, **LIB},
            "timestamp": "2026-01-01T00:00:00.250Z",
            "uuid": "0191e8a0-0000-7000-8000-000000000001"})

    def test_gateway_makes_a_uuid_v7_and_timestamp_when_absent(self):
        response = self.capture.CaptureEvent(self.pb.CaptureEventRequest(
            event=self.pb.Event(event="e", distinct_id="d", personless=True)), timeout=TIMEOUT)

        self.assertEqual(response.uuid[14], "7")
        body = self.stored(response.uuid)
        self.assertEqual(body["properties"], {"$process_person_profile": False, **LIB})
        self.assertRegex(body["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_batch_in_delivered_mode_is_stored_when_acknowledged(self):
        events = [self.pb.Event(event="batch", distinct_id=f"b{i}") for i in range(5)]

        response = self.capture.BatchCaptureEvents(
            self.pb.BatchCaptureEventsRequest(events=events,
                                              ack_mode=self.pb.ACK_MODE_DELIVERED),
            timeout=TIMEOUT)

        self.assertEqual(len(response.uuids), 5)
        # Delivered mode: already in the emulator, no waiting.
        stored = helpers.events(self.url, event="batch")["events"]
        self.assertEqual(sorted(e["uuid"] for e in stored), sorted(response.uuids))

    def test_capture_event_in_delivered_mode_is_stored_when_acknowledged(self):
        # Unary CaptureEvent runs on gRPC's callback API; delivered mode waits
        # for PostHog on a thread of its own.
        response = self.capture.CaptureEvent(
            self.pb.CaptureEventRequest(event=self.pb.Event(event="delivered", distinct_id="u"),
                                        ack_mode=self.pb.ACK_MODE_DELIVERED),
            timeout=TIMEOUT)

        stored = helpers.events(self.url, event="delivered")["events"]
        self.assertEqual([e["uuid"] for e in stored], [response.uuid])

    def test_stream_acknowledges_progress_per_message(self):
        def requests():
            for m in range(3):
                yield self.pb.StreamCaptureEventsRequest(
                    events=[self.pb.Event(event="streamed", distinct_id=f"s{m}-{i}")
                            for i in range(4)])

        acks = [r.acknowledged_count
                for r in self.capture.StreamCaptureEvents(requests(), timeout=TIMEOUT)]

        self.assertEqual(acks, [4, 8, 12])
        helpers.wait_for(lambda: len(helpers.events(self.url, event="streamed")["events"]) == 12,
                         "12 streamed events")

    def test_an_unreadable_stream_message_ends_with_invalid_argument_after_the_acks(self):
        # Raw bytes: the caller's second message is not a request at all; the
        # third (good) one must not be taken silently after it.
        method = self.channel.stream_stream(
            "/posthog.v1.CaptureService/StreamCaptureEvents",
            request_serializer=None,
            response_deserializer=self.pb.StreamCaptureEventsResponse.FromString)

        def message(m):
            return self.pb.StreamCaptureEventsRequest(events=[
                self.pb.Event(event="unreadable-stream", distinct_id=f"u{m}-{i}")
                for i in range(3)]).SerializeToString()

        acks = []
        with self.assertRaises(grpc.RpcError) as raised:
            for response in method(iter([message(0), b"\xff\xff\xff\xff", message(2)]),
                                   timeout=TIMEOUT):
                acks.append(response.acknowledged_count)

        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("stream message 2 (after 3 acknowledged events)",
                      raised.exception.details())
        self.assertEqual(acks, [3])
        helpers.wait_for(
            lambda: len(helpers.events(self.url, event="unreadable-stream")["events"]) == 3,
            "the 3 acknowledged events")
        self.assertEqual(
            sorted(e["distinct_id"]
                   for e in helpers.events(self.url, event="unreadable-stream")["events"]),
            ["u0-0", "u0-1", "u0-2"])

    def test_stream_in_delivered_mode_acknowledges_what_posthog_stored(self):
        # A delivered-mode message waits for PostHog on a thread of its own;
        # the stream itself holds none.
        def requests():
            for m in range(2):
                yield self.pb.StreamCaptureEventsRequest(
                    ack_mode=self.pb.ACK_MODE_DELIVERED,
                    events=[self.pb.Event(event="streamed-delivered", distinct_id=f"d{m}-{i}")
                            for i in range(3)])

        acks = [r.acknowledged_count
                for r in self.capture.StreamCaptureEvents(requests(), timeout=TIMEOUT)]

        self.assertEqual(acks, [3, 6])
        # Delivered: already in the emulator, no waiting.
        self.assertEqual(len(helpers.events(self.url, event="streamed-delivered")["events"]), 6)

    def test_open_streams_hold_no_thread_each(self):
        # Services keep a capture stream open per replica: a gateway holds
        # hundreds, and each must not park a thread.
        streams = 100
        release = threading.Event()

        def requests(n):
            yield self.pb.StreamCaptureEventsRequest(
                events=[self.pb.Event(event="held-open", distinct_id=f"h{n}")])
            release.wait(TIMEOUT)

        calls = [self.capture.StreamCaptureEvents(requests(n), timeout=TIMEOUT)
                 for n in range(streams)]
        try:
            for call in calls:
                self.assertEqual(next(call).acknowledged_count, 1)
            threads = len(os.listdir(f"/proc/{self.stack.gateway_pid}/task"))
        finally:
            release.set()
        for call in calls:
            self.assertEqual(list(call), [])  # Ends cleanly once the caller closes.
        self.assertLess(threads, streams, f"{threads} gateway threads for {streams} open streams")

    def test_bad_events_are_invalid_argument_naming_the_event(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.capture.BatchCaptureEvents(self.pb.BatchCaptureEventsRequest(events=[
                self.pb.Event(event="ok", distinct_id="d"),
                self.pb.Event(event="bad", distinct_id="x" * 201)]), timeout=TIMEOUT)

        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        details = dict(raised.exception.trailing_metadata()).get("grpc-status-details-bin")
        self.assertIn(b"events[1].distinct_id", details)

    def test_a_batch_over_the_event_limit_is_invalid_argument_and_stores_nothing(self):
        events = [self.pb.Event(event="over-limit", distinct_id=f"d-{i}") for i in range(1001)]
        with self.assertRaises(grpc.RpcError) as raised:
            self.capture.BatchCaptureEvents(
                self.pb.BatchCaptureEventsRequest(events=events), timeout=TIMEOUT)

        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("more than the 1000", raised.exception.details())
        details = dict(raised.exception.trailing_metadata()).get("grpc-status-details-bin")
        self.assertIn(b"events", details)
        # Exactly the limit is taken.
        uuids = self.capture.BatchCaptureEvents(
            self.pb.BatchCaptureEventsRequest(events=events[:1000]), timeout=TIMEOUT).uuids
        self.assertEqual(len(uuids), 1000)

    def test_bad_unary_event_is_invalid_argument_naming_the_field(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.capture.CaptureEvent(
                self.pb.CaptureEventRequest(event=self.pb.Event(event="", distinct_id="d")),
                timeout=TIMEOUT)

        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        details = dict(raised.exception.trailing_metadata()).get("grpc-status-details-bin")
        self.assertIn(b"event.event", details)

    def test_identify(self):
        response = self.capture.Identify(self.pb.IdentifyRequest(
            distinct_id="user-42", anonymous_distinct_id="anon-42",
            set=struct({"email": "a@example.com"}), set_once=struct({"source": "ads"})),
            timeout=TIMEOUT)

        body = self.stored(response.uuid)
        self.assertEqual((body["event"], body["distinct_id"]), ("$identify", "user-42"))
        self.assertEqual(body["properties"], {
            "$set": {"email": "a@example.com"}, "$set_once": {"source": "ads"},
            "$anon_distinct_id": "anon-42", **LIB})

    def test_alias(self):
        response = self.capture.Alias(self.pb.AliasRequest(distinct_id="123", alias="456"),
                                      timeout=TIMEOUT)

        body = self.stored(response.uuid)
        self.assertEqual((body["event"], body["distinct_id"]), ("$create_alias", "123"))
        self.assertEqual(body["properties"], {"distinct_id": "123", "alias": "456", **LIB})

    def test_group_identify(self):
        response = self.capture.GroupIdentify(self.pb.GroupIdentifyRequest(
            group_type="company", group_key="acme", properties=struct({"name": "Acme"})),
            timeout=TIMEOUT)

        body = self.stored(response.uuid)
        self.assertEqual((body["event"], body["distinct_id"]),
                         ("$groupidentify", "$company_acme"))
        self.assertEqual(body["properties"], {"$group_type": "company", "$group_key": "acme",
                                              "$group_set": {"name": "Acme"}, **LIB})

    def test_set_person_properties(self):
        response = self.capture.SetPersonProperties(self.pb.SetPersonPropertiesRequest(
            distinct_id="p1", set=struct({"plan": "pro"}), unset=["legacy"]), timeout=TIMEOUT)

        body = self.stored(response.uuid)
        self.assertEqual((body["event"], body["distinct_id"]), ("$set", "p1"))
        self.assertEqual(body["properties"],
                         {"$set": {"plan": "pro"}, "$unset": ["legacy"], **LIB})


if __name__ == "__main__":
    unittest.main()
