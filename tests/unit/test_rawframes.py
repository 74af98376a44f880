"""The isolation audit tool's frames (``testbed.programs.rawframes``): layout of tags,
IPv4 and UDP, the marker a counter recognises, and refusals of bad input."""
from __future__ import annotations

import socket
import struct

import pytest

from testbed.programs import rawframes as R

BASE = {"dst_mac": "02:00:00:00:00:10", "src_mac": "02:00:00:00:00:01",
        "src_ip": "10.0.0.1", "dst_ip": "10.0.0.16", "tag": "spoof"}


def test_untagged_udp_frame_layout():
    """Ethernet type IPv4, a valid IPv4 header checksum, UDP ports, the marker payload."""
    f = R.build_frame(**BASE, seq=7, sport=1234, dport=5001)
    assert f[:6] == bytes.fromhex("020000000010") and f[12:14] == b"\x08\x00"
    ip = f[14:34]
    assert R.checksum(ip) == 0
    assert socket.inet_ntoa(ip[12:16]) == "10.0.0.1" and ip[9] == 17
    assert struct.unpack("!HH", f[34:38]) == (1234, 5001)
    assert R.read_marker(f) == ("spoof", 7)


def test_tag_stack_is_written_outermost_first():
    """An 802.1ad outer tag then an 802.1Q inner tag (TPID, PCP<<13|VID), then IPv4."""
    f = R.build_frame(**BASE, vlans=[[0x88A8, 100, 0], [0x8100, 0, 5]])
    assert struct.unpack("!HHHHH", f[12:22]) == (0x88A8, 100, 0x8100, 5 << 13, 0x0800)
    assert R.read_marker(f) == ("spoof", 0)


def test_sweep_makes_one_frame_per_vid():
    """A vid_sweep group gives one singly tagged frame per VID, count times over."""
    frames = R.frames_of({**BASE, "vid_sweep": [0x8100, 1, 4094], "count": 2})
    assert len(frames) == 2 * 4094
    vids = [struct.unpack("!H", f[14:16])[0] & 0xFFF for f in frames[:4094]]
    assert vids == list(range(1, 4095))
    assert [R.read_marker(f)[1] for f in frames[:3]] == [0, 1, 2]


@pytest.mark.parametrize("change, message", [
    ({"vlans": [[0x9100, 5, 0]]}, "TPID"),
    ({"vlans": [[0x8100, 4096, 0]]}, "VID 0..4095"),
    ({"tag": "x" * 17}, "longer than 16"),
    ({"src_mac": "02:00"}, "not a MAC address"),
])
def test_bad_frames_are_refused(change, message):
    """Unknown TPIDs, out-of-range VIDs, long tags and bad MACs are refused by name."""
    with pytest.raises(ValueError, match=message):
        R.build_frame(**{**BASE, **change})


def test_frames_without_the_marker_are_not_counted():
    """A frame that lacks the marker (or is cut inside it) is no counted frame."""
    f = R.build_frame(**BASE)
    assert R.read_marker(f[:-3]) is None and R.read_marker(b"\0" * 60) is None
