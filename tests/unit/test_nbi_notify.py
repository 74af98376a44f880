"""Subscriptions and notifications of the NBI (mano.nbi.notify) delivered over real HTTP to
a callback server on loopback: the callback check, START/RESULT and NS identifier
notifications, filters, tenant isolation and bounded retries."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from nbi_helpers import Env, onboard, wait_op

from mano.nbi.notify import Notifier
from mano.nbi.records import Records

NSI = "/nslcm/v1/ns_instances"
SUBS = "/nslcm/v1/subscriptions"


class Receiver:
    """A notification endpoint: GET answers ``get_status``; POSTs are recorded and answered
    with the next of ``post_statuses`` (204 once they run out)."""

    def __init__(self, get_status=204, post_statuses=()):
        self.got: list[dict] = []
        self.posts = 0
        self.get_status, self.post_statuses = get_status, list(post_statuses)
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(rec.get_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                rec.posts += 1
                status = rec.post_statuses.pop(0) if rec.post_statuses else 204
                if status < 300:
                    rec.got.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


def _subscribe(c, url, flt=None):
    body = {"callbackUri": url}
    if flt is not None:
        body["filter"] = flt
    return c.post(SUBS, json=body)


def test_lifecycle_notifications_start_result_and_identifiers_in_order(env):
    """A subscriber without filter gets, in order: creation, START and RESULT of the
    instantiation (COMPLETED), START and RESULT of the termination, deletion; each names
    its subscription and links the NS instance and occurrence."""
    rx = Receiver()
    try:
        c = env.client
        r = _subscribe(c, rx.url)
        assert r.status_code == 201 and r.headers["Location"].endswith(r.json()["id"])
        sid = r.json()["id"]
        assert c.get(f"{SUBS}/{sid}").json()["callbackUri"] == rx.url
        onboard(c)
        ns = c.post(NSI, json={"nsdId": "chain3", "nsName": "web",
                               "nsDescription": ""}).json()["id"]
        wait_op(c, c.post(f"{NSI}/{ns}/instantiate",
                          json={"nsFlavourId": "default"}).headers["Location"])
        wait_op(c, c.post(f"{NSI}/{ns}/terminate", json={}).headers["Location"])
        assert c.delete(f"{NSI}/{ns}").status_code == 204
        env.app.state.notifier.drain()
        seen = [(n["notificationType"], n.get("notificationStatus"), n.get("operation"),
                 n.get("operationState")) for n in rx.got]
        op = "NsLcmOperationOccurrenceNotification"
        assert seen == [("NsIdentifierCreationNotification", None, None, None),
                        (op, "START", "INSTANTIATE", "PROCESSING"),
                        (op, "RESULT", "INSTANTIATE", "COMPLETED"),
                        (op, "START", "TERMINATE", "PROCESSING"),
                        (op, "RESULT", "TERMINATE", "COMPLETED"),
                        ("NsIdentifierDeletionNotification", None, None, None)]
        assert all(n["subscriptionId"] == sid and n["nsInstanceId"] == ns for n in rx.got)
        assert rx.got[1]["_links"]["nsLcmOpOcc"]["href"].startswith("http://nbi.test/")
        assert len({n["id"] for n in rx.got}) == len(rx.got)
        assert c.delete(f"{SUBS}/{sid}").status_code == 204
        assert c.get(f"{SUBS}/{sid}").status_code == 404
    finally:
        rx.close()


def test_filters_select_notification_types_operation_states_and_instances(env):
    """A filter on RESULT states FAILED_TEMP gets only the failed occurrence's result; one
    on another NS instance id gets nothing; one on creation only gets the creation."""
    failed, other, created = Receiver(), Receiver(), Receiver()
    try:
        c = env.client
        op = "NsLcmOperationOccurrenceNotification"
        assert _subscribe(c, failed.url, {"notificationTypes": [op],
                                          "operationStates": ["FAILED_TEMP"]}).status_code == 201
        assert _subscribe(c, other.url, {"nsInstanceSubscriptionFilter": {
            "nsInstanceIds": ["not-this-one"]}}).status_code == 201
        assert _subscribe(c, created.url, {"notificationTypes": [
            "NsIdentifierCreationNotification"]}).status_code == 201
        onboard(c)
        ns = c.post(NSI, json={"nsdId": "chain3", "nsName": "web",
                               "nsDescription": ""}).json()["id"]
        env.driver.fail_on = {f"fw_{i}" for i in range(1, 9)}
        occ = wait_op(c, c.post(f"{NSI}/{ns}/instantiate",
                                json={"nsFlavourId": "default"}).headers["Location"])
        env.app.state.notifier.drain()
        assert [(n["operationState"], n["nsLcmOpOccId"]) for n in failed.got] == \
            [("FAILED_TEMP", occ["id"])]
        assert "boom" in failed.got[0]["error"]["detail"]
        assert other.got == []
        assert [n["notificationType"] for n in created.got] == [
            "NsIdentifierCreationNotification"]
    finally:
        for rx in (failed, other, created):
            rx.close()


def test_callback_must_answer_get_with_204_and_bad_filters_are_400(env):
    """A callback answering GET with 200, or not answering, is refused (422); an unknown
    notification type in the filter is a 400."""
    rx = Receiver(get_status=200)
    try:
        c = env.client
        r = _subscribe(c, rx.url)
        assert r.status_code == 422 and "204" in r.json()["detail"]
        r = _subscribe(c, "http://127.0.0.1:9/nothing")
        assert r.status_code == 422 and "did not get an answer" in r.json()["detail"]
        r = _subscribe(c, rx.url, {"notificationTypes": ["Whatever"]})
        assert r.status_code == 400
        assert c.get(SUBS).json() == []
    finally:
        rx.close()


def test_delivery_retries_a_bounded_number_of_times(tmp_path):
    """A callback that fails twice then accepts gets the notification once on the third
    attempt; one that always fails is tried exactly `attempts` times and the notification
    dropped."""
    records = Records(tmp_path / "n.db")
    n = Notifier(records, attempts=3, backoff=0.01)
    flaky, dead = Receiver(post_statuses=[500, 503]), Receiver(post_statuses=[500] * 10)
    try:
        n.subscribe("t", {"callbackUri": flaky.url}, "http://nbi.test")
        n.subscribe("t", {"callbackUri": dead.url}, "http://nbi.test")
        n.on_ns("created", "t", "ns1", "web", "chain3", "http://nbi.test")
        n.on_ns("created", "other-tenant", "ns2", "x", "chain3", "http://nbi.test")
        n.drain()
        assert flaky.posts == 3 and [g["nsInstanceId"] for g in flaky.got] == ["ns1"]
        assert dead.posts == 3 and dead.got == []
        assert (n.delivered, n.dropped) == (1, 1)
    finally:
        n.close()
        records.close()
        flaky.close()
        dead.close()
