"""Capture under faults, against the real gateway and emulator: PostHog down
and back (refusing connections, and its process stopped then restarted), 429 storms with Retry-After, 5xx bursts, resets mid-response, a
poisoned event inside a batch, a 413, a damaged spool segment, and kill -9 of
the gateway under load. Each test checks in `/_emulator/events` that every
acknowledged event arrived (lost == 0) and that duplicates share a uuid.

Waits poll the emulator with a deadline; nothing asserts a timing.

Run from the repository root (binaries built first):
    /usr/bin/python3 -m unittest tests/polyglot/test_capture_faults.py -v
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import struct
import threading
import unittest
import zlib

import grpc

import capture_helpers as helpers
import stack

TIMEOUT = 30


def encode_record(project, event_json, historical=False):
    """One spool record, as server/capture/spool.h lays it out."""
    alias = project.encode()
    payload = bytes([1 if historical else 0]) + struct.pack("<H", len(alias)) + alias
    payload += event_json.encode()
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


class CaptureFaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.pb_grpc = helpers.load_capture_stubs(cls)

    def setUp(self):
        # On SIGTERM, 5 s (10 s x 0.5) to keep sending the spool.
        self.stack = stack.Stack(stack.keys_from_seed(stack.DEFAULT_SEED),
                                 gateway_args=stack.DEFAULT_GATEWAY_ARGS + (
                                     "--admin_port=0", "--termination_grace=10s",
                                     "--spool_send_share=0.5"))
        self.stack.__enter__()
        self.addCleanup(self.stack.stop)
        self.url = self.stack.emulator_url
        self.connect()

    def connect(self):
        self.channel = grpc.insecure_channel(self.stack.gateway_target)
        self.addCleanup(self.channel.close)
        self.capture = self.pb_grpc.CaptureServiceStub(self.channel)

    def metrics(self):
        return self.stack.gateway_metrics(timeout=TIMEOUT)

    def set_faults(self, rules):
        helpers.emulator_post(self.url, "/_emulator/faults", rules)

    def batch_statuses(self):
        routes = helpers.emulator_get(self.url, "/_emulator/requests?route=batch")["routes"]
        return routes.get("batch", {}).get("status", {})

    def capture_batches(self, batches, size, name):
        uuids = []
        for b in range(batches):
            response = self.capture.BatchCaptureEvents(self.pb.BatchCaptureEventsRequest(
                events=[self.pb.Event(event=name, distinct_id=f"{name}-{b}-{i}",
                                      properties=helpers_struct({"n": i}))
                        for i in range(size)]), timeout=TIMEOUT)
            uuids.extend(response.uuids)
        return uuids

    def assert_all_delivered(self, uuids, label):
        stored = helpers.wait_for_uuids(self.url, uuids)
        unique = {e["uuid"] for e in stored}
        lost = len(set(uuids) - unique)
        duplicated = len(stored) - len(unique)
        print(f"\n[{label}] acknowledged={len(uuids)} lost={lost} duplicated={duplicated}")
        self.assertEqual(lost, 0)
        return stored

    def test_posthog_down_then_back_loses_nothing_and_drains(self):
        # Every connection dropped before an answer, for a while.
        self.set_faults([{"route": "batch", "reset_rate": 1, "count": 6}])
        uuids = self.capture_batches(5, 50, "outage")
        self.assert_all_delivered(uuids, "outage")

    def test_emulator_process_down_then_back_loses_nothing(self):
        # The real thing: PostHog's process is gone (connections refused)
        # while events are acknowledged, then a fresh one comes back.
        before = self.capture_batches(1, 10, "before-outage")
        self.assert_all_delivered(before, "before the outage")
        self.stack.stop_emulator()
        uuids = self.capture_batches(5, 50, "down")
        self.assertEqual(len(uuids), 250)
        # Only bring it back once delivery has failed against the closed port.
        helpers.wait_for(
            lambda: "sending a batch failed" in self.stack.logs()["gateway"] or None,
            "a failed delivery in the gateway's log", TIMEOUT)
        self.stack.start_emulator()
        stored = self.assert_all_delivered(uuids, "emulator down then back")
        self.assertEqual({e["event"] for e in stored}, {"down"})

    def test_429_storm_with_retry_after(self):
        self.set_faults([{"route": "batch", "error_rate": 1, "status": 429,
                          "retry_after_s": 1, "count": 4}])
        uuids = self.capture_batches(3, 20, "storm")
        self.assert_all_delivered(uuids, "429 storm")
        self.assertGreaterEqual(self.batch_statuses().get("429", 0), 4)

    def test_5xx_burst(self):
        self.set_faults([{"route": "batch", "error_rate": 1, "status": 503, "count": 3},
                         {"route": "batch", "error_rate": 1, "status": 500, "count": 3}])
        uuids = self.capture_batches(3, 20, "burst")
        self.assert_all_delivered(uuids, "5xx burst")

    def test_reset_mid_response_duplicates_share_the_uuid(self):
        self.set_faults([{"route": "batch", "reset_rate": 1, "count": 2}])
        uuids = self.capture_batches(2, 30, "reset")
        stored = self.assert_all_delivered(uuids, "reset mid-response")
        # Whatever was stored twice was stored under the same uuid.
        self.assertTrue({e["uuid"] for e in stored} <= set(uuids))

    def test_413_splits_the_batch(self):
        self.set_faults([{"route": "batch", "error_rate": 1, "status": 413, "count": 1}])
        uuids = self.capture_batches(1, 40, "split")
        self.assert_all_delivered(uuids, "413")
        self.assertEqual(self.batch_statuses().get("413"), 1)

    def write_segment(self, records, name="segment-00000000000000000001.log"):
        spool_dir = os.path.join(self.stack.directory, "spool")
        for old in glob.glob(os.path.join(spool_dir, "segment-*")):  # Logs and release logs.
            os.unlink(old)
        with open(os.path.join(spool_dir, name), "wb") as segment:
            segment.write(b"".join(records))

    def test_poisoned_event_is_dead_lettered_and_the_rest_delivered(self):
        good = [json.dumps({"event": "replayed", "distinct_id": f"g{i}",
                            "uuid": f"00000000-0000-7000-8000-00000000000{i}"})
                for i in range(5)]
        # PostHog refuses an event without distinct_id (400 for the whole
        # batch); an older gateway might have spooled one.
        poison = json.dumps({"event": "replayed", "uuid": "00000000-0000-7000-8000-0000000000ff"})
        records = [encode_record("demo", e) for e in good[:2] + [poison] + good[2:]]
        self.stack.restart_gateway(before_start=lambda: self.write_segment(records))
        self.connect()

        stored = self.assert_all_delivered([json.loads(e)["uuid"] for e in good], "poison")
        self.assertNotIn("00000000-0000-7000-8000-0000000000ff", {e["uuid"] for e in stored})
        dead_path = os.path.join(self.stack.directory, "spool", "dead-letter.jsonl")

        def dead_letter_text():
            # The file exists from its open(2), before its line is written:
            # wait for a whole line.
            try:
                with open(dead_path, encoding="utf-8") as dead_file:
                    text = dead_file.read()
            except FileNotFoundError:
                return None
            return text if text.endswith("\n") else None
        [line] = helpers.wait_for(dead_letter_text, "a line in the dead-letter file").splitlines()
        dead = json.loads(line)
        self.assertEqual(dead["http_status"], 400)
        self.assertIn("missing_distinct_id", dead["reason"])
        self.assertEqual(dead["event"], json.loads(poison))
        self.assertIn("\nposthog_gateway_capture_dead_letters_total 1\n", self.metrics())

    def test_corrupt_segment_delivers_the_intact_records_and_reports(self):
        events = [json.dumps({"event": "damaged", "distinct_id": f"c{i}",
                              "uuid": f"00000000-0000-7000-8000-0000000001{i:02d}"})
                  for i in range(6)]
        records = [encode_record("demo", e) for e in events]
        corrupt = bytearray(records[4])
        corrupt[12] ^= 0xFF  # A payload byte: the checksum no longer matches.
        data = records[:4] + [bytes(corrupt)] + records[5:]
        self.stack.restart_gateway(before_start=lambda: self.write_segment(data))
        self.connect()

        # Every record but the damaged one, those after it included.
        intact = events[:4] + events[5:]
        self.assert_all_delivered([json.loads(e)["uuid"] for e in intact], "corrupt segment")
        log = self.stack.logs()["gateway"]
        self.assertIn("damaged segment", log)
        self.assertIn('"damaged_segments":"1"', log)
        metrics = self.metrics()
        self.assertIn("\nposthog_gateway_capture_spool_damaged_segments 1\n", metrics)
        self.assertIn("\nposthog_gateway_capture_replayed_records 5\n", metrics)

    def test_kill_9_under_load_loses_no_acknowledged_event(self):
        # Slow PostHog so that a backlog is spooled when the gateway dies.
        self.set_faults([{"route": "batch", "latency_ms": 300}])
        acknowledged = []
        stop = threading.Event()
        killed = threading.Event()

        def load():
            b = 0
            while not stop.is_set():
                try:
                    response = self.capture.BatchCaptureEvents(
                        self.pb.BatchCaptureEventsRequest(events=[
                            self.pb.Event(event="load", distinct_id=f"k{b}-{i}")
                            for i in range(100)]), timeout=TIMEOUT)
                except grpc.RpcError:
                    if killed.is_set():
                        return
                    raise
                acknowledged.extend(response.uuids)
                b += 1

        worker = threading.Thread(target=load)
        worker.start()
        helpers.wait_for(lambda: len(acknowledged) >= 3000, "3000 acknowledged events")
        killed.set()
        self.stack.restart_gateway(kill=True)
        stop.set()
        worker.join()
        self.set_faults([])
        self.connect()

        stored = self.assert_all_delivered(list(acknowledged), "kill -9")
        self.assertTrue(len(stored) >= len(acknowledged))


    # -- events PostHog accepted are not sent again by the next run -------------

    def assert_restart_replays_nothing(self, kill):
        uuids = self.capture_batches(5, 100, "delivered")
        stored = self.assert_all_delivered(uuids, "before restart")
        self.assertEqual(len(stored), len(uuids))
        # Delivery releases a batch right after PostHog's 200: wait until the
        # spool's release logs hold all of them.
        helpers.wait_for(lambda: self.released_records() == len(uuids),
                         f"{len(uuids)} records in the release logs")
        self.stack.restart_gateway(kill=kill)
        self.connect()
        replayed = [line for line in self.metrics().splitlines()
                    if line.startswith("posthog_gateway_capture_replayed_records ")]
        self.assertEqual(replayed, ["posthog_gateway_capture_replayed_records 0"])
        # And one more event, to be sure the new run delivers: nothing else
        # arrives with it.
        uuids += self.capture_batches(1, 1, "after")
        stored = self.assert_all_delivered(uuids, "after restart")
        self.assertEqual(len(stored), len(uuids), "events were sent again")

    def released_records(self):
        """How many records the spool's release logs hold (8 bytes each)."""
        spool_dir = os.path.join(self.stack.directory, "spool")
        return sum(os.path.getsize(log) for log in
                   glob.glob(os.path.join(spool_dir, "segment-*.released"))) // 8

    # -- the spool outlives its pod -------------------------------------------

    def capture_while_posthog_refuses(self, batches):
        """Acknowledged (durable) events that PostHog has not taken: every
        batch answers 503 until the faults are cleared."""
        self.set_faults([{"route": "batch", "error_rate": 1, "status": 503}])
        return self.capture_batches(batches, 100, "spooled")

    def assert_each_arrived_once(self, uuids, label):
        stored = self.assert_all_delivered(uuids, label)
        self.assertEqual(len(stored), len(uuids), "events arrived more than once")

    def test_sigterm_keeps_sending_the_spool_then_leaves_the_rest_on_disk(self):
        # PostHog refuses everything: a SIGTERM with a short grace leaves the
        # spool on disk (the gateway exits in time); the next start on the same
        # volume delivers it.
        uuids = self.capture_while_posthog_refuses(3)

        def posthog_back():
            self.assertIn("events left in the spool for the next start",
                          log_messages(self.stack.previous_gateway_log()))
            self.set_faults([])

        self.stack.restart_gateway(before_start=posthog_back)
        self.assertEqual(self.stack.exit_statuses.get("gateway", 0), 0)
        self.assert_each_arrived_once(uuids, "left on disk, sent by the next start")

    def test_sigterm_sends_the_whole_spool_before_exiting_when_the_grace_allows(self):
        # 20 s (40 s x 0.5) to keep sending after the SIGTERM.
        self.stack.restart_gateway(gateway_args=stack.DEFAULT_GATEWAY_ARGS + (
            "--admin_port=0", "--termination_grace=40s", "--spool_send_share=0.5"))
        self.connect()
        uuids = self.capture_while_posthog_refuses(3)
        # PostHog takes batches again, slowly (7 s an answer): the spool is
        # still being sent when the server has stopped (about 5 s after the
        # SIGTERM here, with a client's connection open).
        self.set_faults([{"route": "batch", "latency_ms": 7000}])
        stored_at_exit = []

        def at_exit():
            self.assertIn("spool empty", log_messages(self.stack.previous_gateway_log()))
            stored_at_exit.extend(helpers.events(self.url)["events"])

        self.stack.restart_gateway(before_start=at_exit)
        self.assertEqual(set(uuids) - {e["uuid"] for e in stored_at_exit}, set(),
                         "events were still spooled when the gateway exited")

    def test_a_spool_copied_elsewhere_is_drained_by_drain_spool_once(self):
        uuids = self.capture_while_posthog_refuses(5)
        # The pod is gone for good (kill -9); its claim is mounted elsewhere.
        os.kill(self.stack.gateway_pid, signal.SIGKILL)
        copy = os.path.join(self.stack.directory, "claim-of-a-gone-pod")
        shutil.copytree(os.path.join(self.stack.directory, "spool"), copy)
        self.set_faults([])
        drain = subprocess.run(
            [self.stack.gateway_binary, f"--config={self.stack.config_path}",
             f"--drain_spool={copy}", "--drain_spool_timeout=60s"],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(drain.returncode, 0, drain.stderr)
        self.assertIn("spool drained", log_messages(drain.stderr))
        self.assert_each_arrived_once(uuids, "--drain_spool")
        # Drained: a second run finds nothing to send.
        again = subprocess.run(
            [self.stack.gateway_binary, f"--config={self.stack.config_path}",
             f"--drain_spool={copy}"], capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(again.returncode, 0, again.stderr)
        found = [entry for entry in log_entries(again.stderr)
                 if entry["message"] == "draining a spool"]
        self.assertEqual([entry["events"] for entry in found], ["0"])
        self.assert_each_arrived_once(uuids, "--drain_spool again")

    def test_graceful_restart_sends_no_delivered_event_again(self):
        self.assert_restart_replays_nothing(kill=False)

    def test_kill_9_sends_no_delivered_event_again(self):
        self.assert_restart_replays_nothing(kill=True)


def log_entries(text):
    """The gateway's JSON log lines, decoded."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def log_messages(text):
    return [entry["message"] for entry in log_entries(text)]


def helpers_struct(values):
    from google.protobuf import struct_pb2
    s = struct_pb2.Struct()
    s.update(values)
    return s


if __name__ == "__main__":
    unittest.main()
