"""The controller's northbound and metrics: the real os-ken application class (no OpenFlow
listener) serving its FastAPI northbound on a real loopback port, spoken to by the
testbed's httpx client; switches are stand-in datapaths that record what they are sent."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser
from prometheus_client.parser import text_string_to_metric_families

from testbed.controller import app as controller_app
from testbed.controller.process import NorthboundClient, free_port
from testbed.errors import ControllerError

ROOT = Path(__file__).resolve().parents[2]
#  s1 -- s2 -- s4 and s1 -- s3 -- s4; h1 at s1, A at s2, h2 at s4
WIRING = {"switches": {"s1": 1, "s2": 2, "s3": 3, "s4": 4},
          "links": [{"a": "s1", "a_port": 10, "b": "s2", "b_port": 10},
                    {"a": "s1", "a_port": 11, "b": "s3", "b_port": 10},
                    {"a": "s2", "a_port": 11, "b": "s4", "b_port": 10},
                    {"a": "s3", "a_port": 11, "b": "s4", "b_port": 11}],
          "attachments": [{"name": "h1", "switch": "s1", "port": 1},
                          {"name": "A", "switch": "s2", "port": 1},
                          {"name": "h2", "switch": "s4", "port": 1}]}
GRAPH = {"name": "fg1", "hops": ["h1", "A", "h2"],
         "match": {"ip_proto": 17, "udp_dst": 5000}}


class Datapath:
    """A connected switch as os-ken hands it to handlers: its id, OpenFlow 1.3 modules, and
    the messages sent to it; it answers barrier requests at once through ``ctl``'s
    handler, as the event loop would."""

    def __init__(self, dpid: int, ctl=None):
        self.id, self.ofproto, self.ofproto_parser = dpid, ofproto_v1_3, ofproto_v1_3_parser
        self.sent: list = []
        self.xid = 0
        self.ctl = ctl

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg):
        self.sent.append(msg)
        if self.ctl is not None and isinstance(msg, ofproto_v1_3_parser.OFPBarrierRequest):
            self.ctl.barrier_reply(SimpleNamespace(msg=SimpleNamespace(xid=msg.xid,
                                                                       datapath=self)))

    def send(self, buf: bytes):
        """Raw bytes (the controller's batched writes): parsed back into messages by
        os-ken's own parser, one by one."""
        off = 0
        while off < len(buf):
            version, msg_type, length, xid = ofproto_parser.header(buf[off:])
            self.sent.append(ofproto_parser.msg(self, version, msg_type, length, xid,
                                                buf[off:off + length]))
            off += length


@pytest.fixture
def controller(tmp_path, monkeypatch):
    """The controller application and an httpx client of its northbound."""
    port = free_port()
    cfg = tmp_path / "controller.json"
    cfg.write_text(json.dumps({"wiring": WIRING, "of_port": free_port(), "api_port": port}))
    monkeypatch.setenv(controller_app.CONFIG_ENV, str(cfg))
    ctl = controller_app._build_app()()
    client = NorthboundClient(f"http://127.0.0.1:{port}", timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.health()
            break
        except ControllerError:
            assert time.monotonic() < deadline, "northbound did not answer"
            time.sleep(0.02)
    yield ctl, client
    client.close()
    ctl.close()


def _samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_northbound_routes_answer_json_and_refuse_with_the_reason(controller):
    """A graph is installed, read, listed and removed over HTTP; an unknown graph is 404, a
    graph naming an unknown hop 400, a method a route lacks 405, an unknown path 404, a
    name outside the allowed characters 404 — each refusal says why."""
    _ctl, c = controller
    view = c.put_graph(GRAPH)
    assert view["paths"] == [["s1", "s2"], ["s2", "s4"]] and view["status"] == "ok"
    assert [(p["from"], p["to"], p["path"], p["vlans"]) for p in view["pairs"]] == [
        ("h1", "A", ["s1", "s2"], [1]), ("A", "h2", ["s2", "s4"], [1])]   # ids per link
    assert c.graph("fg1")["spec"]["hops"] == ["h1", "A", "h2"]
    assert list(c.graphs()) == ["fg1"]
    assert c.health() == {"switches": 4, "connected": 0, "ready": 0}
    assert {a["name"] for a in c.topology()["attachments"]} == {"h1", "A", "h2"}
    cases = [(("GET", "/v1/graphs/nope"), "no forwarding graph 'nope'; graphs: fg1"),
             (("PUT", "/v1/graphs/bad", {"name": "bad", "hops": ["h1", "zz"]}),
              "unknown hop(s) 'zz'"),
             (("PUT", "/v1/graphs/x", {"name": "y", "hops": ["h1", "h2"]}),
              "graph name in the path (x) and body differ"),
             (("POST", "/v1/graphs/fg1", {}), "no route POST /v1/graphs/fg1"),
             (("GET", "/v1/nothing"), "no route GET /v1/nothing"),
             (("GET", "/v1/graphs/a%20b"), "should match pattern")]
    for args, why in cases:
        with pytest.raises(ControllerError, match="controller refused") as err:
            c.request(*args)
        assert why in str(err.value), (args, str(err.value))
    r = c._http.get("/v1/graphs/nope")
    assert (r.status_code, r.json()) == (404, {"error": "no forwarding graph 'nope'; "
                                                        "graphs: fg1"})
    assert c._http.post("/v1/graphs/fg1", json={}).status_code == 405
    assert c._http.put("/v1/graphs/bad", json={"name": "bad", "hops": ["h1", "zz"]}) \
        .status_code == 400
    assert c._http.put("/v1/graphs/bad", content=b"{not json").status_code == 400
    c.delete_graph("fg1")
    assert c.graphs() == {}


def test_northbound_refuses_bad_attachment_and_graph_fields_naming_path_and_value(controller):
    """A PUT attachment or graph whose fields have the wrong type or range is refused with
    400, the message naming the document, the field path, the value and what is valid; the
    refused attachment is not added, a good one is."""
    ctl, c = controller
    cases = [({"switch": "s2", "port": "3"},
              "attachment 'B': port: expected an integer 1..4294967040, got '3'"),
             ({"switch": "s2", "port": 3, "mac": "02:00:00:00:00"},
              "attachment 'B': mac: expected a MAC address like 02:00:00:00:00:01"),
             ({"switch": "s2", "port": 3, "ip": "10.0.0.256"},
              "attachment 'B': ip: '10.0.0.256' is not a valid IPv4 address"),
             ({"switch": "s2", "port": 3, "vlan": 5}, "attachment 'B': vlan: unknown key 'vlan'"),
             ({"port": 3}, "missing required key 'switch'; required: name, switch, port")]
    for body, why in cases:
        r = c._http.put("/v1/attachments/B", json=body)
        assert r.status_code == 400 and why in r.json()["error"], (body, r.json())
    assert "B" not in ctl.fabric.attachments()
    c.put_attachment({"name": "B", "switch": "s3", "port": 3, "mac": "02:00:00:00:00:0b",
                      "ip": "10.0.0.11"})
    assert ctl.fabric.attachments()["B"].port == 3
    r = c._http.put("/v1/graphs/fg2", json={"name": "fg2", "hops": ["h1", "B", "h2"],
                                            "match": {"ip_proto": 17, "udp_dst": 70000}})
    assert (r.status_code, r.json()) == (400, {"error": "forwarding graph 'fg2': match.udp_dst: "
                                                        "expected an integer 0..65535, got 70000"})
    assert c.graphs() == {}


def _answer_connect_requests(ctl, dps: dict) -> None:
    """Answer what each connecting switch was asked (port description: every wired port
    up; flows and groups: none, an empty switch), as the event loop would."""
    ports: dict[int, set[int]] = {dpid: set() for dpid in dps}
    sw = WIRING["switches"]
    for link in WIRING["links"]:
        ports[sw[link["a"]]].add(link["a_port"])
        ports[sw[link["b"]]].add(link["b_port"])
    for att in WIRING["attachments"]:
        ports[sw[att["switch"]]].add(att["port"])
    for dp in dps.values():
        for msg in dp.sent:
            done, _replies = ctl.pending.pop((dp.id, msg.xid), (None, None))
            if done is None:
                continue
            what = done.args[1]
            done([SimpleNamespace(port_no=n, state=0, config=0) for n in sorted(ports[dp.id])]
                 if what == "ports" else [])


def test_metrics_count_the_flow_mods_sent_and_time_the_reaction_to_a_port_status(controller):
    """/metrics counts, by type, every flow and group mod that connecting switches and a
    reroute sent (equal to what the datapaths received), counts the port status by reason
    and link state, observes one reaction time for it, and reports switches and graphs."""
    ctl, c = controller
    c.put_graph(GRAPH)
    dps = {dpid: Datapath(dpid, ctl) for dpid in WIRING["switches"].values()}
    for dp in dps.values():
        ctl.switch_ready(SimpleNamespace(datapath=dp))
    _answer_connect_requests(ctl, dps)
    ofp = ofproto_v1_3
    desc = SimpleNamespace(port_no=10, state=ofp.OFPPS_LINK_DOWN, config=0)
    before = sum(len(dp.sent) for dp in dps.values())
    ctl.port_status(SimpleNamespace(msg=SimpleNamespace(
        datapath=dps[1], desc=desc, reason=ofp.OFPPR_MODIFY)))
    deadline = time.monotonic() + 5
    while not ctl.rollouts.idle():       # the reroute goes out stage by stage
        assert time.monotonic() < deadline, "the reroute was not carried out"
        time.sleep(0.01)
    assert sum(len(dp.sent) for dp in dps.values()) > before   # the reroute sent something
    s = _samples(c.metrics())
    sent: dict[str, int] = {}
    for dp in dps.values():
        for msg in dp.sent:
            if isinstance(msg, ofproto_v1_3_parser.OFPFlowMod):
                kind = {ofp.OFPFC_ADD: "flow_add", ofp.OFPFC_DELETE: "flow_delete",
                        ofp.OFPFC_DELETE_STRICT: "flow_delete"}[msg.command]
            elif isinstance(msg, ofproto_v1_3_parser.OFPGroupMod):
                kind = {ofp.OFPGC_ADD: "group_add", ofp.OFPGC_MODIFY: "group_modify",
                        ofp.OFPGC_DELETE: "group_delete"}[msg.command]
            else:
                continue
            sent[kind] = sent.get(kind, 0) + 1
    counted = {dict(k[1])["type"]: int(v) for k, v in s.items()
               if k[0] == "testbed_controller_flow_mods_total" and v}
    assert counted == sent
    assert counted["flow_add"] >= 4        # the empty switches filled on connecting
    assert s[("testbed_controller_port_status_total",
              (("link", "down"), ("reason", "modify")))] == 1
    assert s[("testbed_controller_port_status_total",
              (("link", "up"), ("reason", "modify")))] == 0
    assert s[("testbed_controller_reaction_seconds_count", (("link", "down"),))] == 1
    assert 0 < s[("testbed_controller_reaction_seconds_sum", (("link", "down"),))] < 5
    assert s[("testbed_controller_switches", (("state", "connected"),))] == 4
    assert s[("testbed_controller_switches", (("state", "ready"),))] == 4  # barriers answered
    assert s[("testbed_controller_graphs", ())] == 1


def test_the_controller_dashboard_queries_only_metrics_the_controller_exports(controller):
    """Every metric named in dashboards/grafana-controller.json is a sample name the
    controller's /metrics serves (so the dashboard cannot drift from the exporter)."""
    _ctl, c = controller
    served = {name for name, _labels in _samples(c.metrics())}
    dash = json.loads((ROOT / "dashboards" / "grafana-controller.json").read_text())
    used = {m for p in dash["panels"] for t in p["targets"]
            for m in re.findall(r"\btestbed_controller_[a-z_]+", t["expr"])}
    assert len(used) >= 5 and used <= served, used - served


def test_a_port_status_never_waits_for_a_rollout_stuck_on_barrier_replies(controller):
    """While one reroute waits for barrier replies (which only the event loop delivers),
    the next port status handled on that event loop returns at once: it does not wait for
    its own rollout to start (it waited up to 1 s before, per port of a failed switch)."""
    ctl, c = controller
    c.put_graph(GRAPH)
    dps = {dpid: Datapath(dpid) for dpid in WIRING["switches"].values()}   # never answer
    for dp in dps.values():
        ctl.switch_ready(SimpleNamespace(datapath=dp))
    _answer_connect_requests(ctl, dps)
    ofp = ofproto_v1_3
    took = []
    for port in (10, 11):                  # s1's two links go down, one after the other
        desc = SimpleNamespace(port_no=port, state=ofp.OFPPS_LINK_DOWN, config=0)
        t0 = time.monotonic()
        ctl.port_status(SimpleNamespace(msg=SimpleNamespace(
            datapath=dps[1], desc=desc, reason=ofp.OFPPR_MODIFY)))
        took.append(time.monotonic() - t0)
    assert not ctl.rollouts.idle(), "the first reroute should still wait for its barriers"
    assert max(took) < 0.5, took
    ctl.rollouts.close()
