"""Every data-path and emulation-health measure of the testbed, each defined once.

Pure functions on recorded data (standard library only: the probe program imports this
module inside Mininet hosts). ``results/README.md`` gives the same definitions with their
units and data sources; keep the two in step.

Probe records
    (seq, recv_ns, send_ns) per datagram received, in arrival order: seq is the sender's
    sequence number, recv_ns and send_ns are CLOCK_MONOTONIC nanoseconds (shared by every
    network namespace of a machine) at the receiver and sender (send_ns 0 if unknown).
    The sender issues seqs 0 .. sent-1 on an absolute schedule: seq i is due at
    ``start_ns + i*T`` with ``T = 1/rate``. The records file written by the probe receiver
    is a flat array of unsigned 64-bit integers in native byte order (``array('Q')``):
    seq, recv_ns, send_ns, seq, recv_ns, send_ns, ... (:func:`read_records`).

Gaps (outages)
    Take the first arrival of every unique seq < sent, in arrival order. Add a virtual
    arrival before them (seq -1, at ``start_ns - T + L``) and one after them (seq ``sent``,
    at ``start_ns + sent*T + L``), where L is the smallest one-way latency observed
    (recv_ns - send_ns over all records, 0 if none is known): the virtual packets arrive "in
    time", with the path's base latency, so that a healthy stream has no edge gaps. Every
    pair of consecutive arrivals (virtual ones included) more than ``k*T`` apart with at
    least one sequence number between them never received is a gap (a gap *in the
    sequence*); its outage is ``(end - start) - T``, so n packets lost mid-stream give
    about n*T. A pause as long with nothing lost is a *delay spike* (packets late, not
    lost: a busy host's scheduling or queueing), counted apart, never an outage.
    A gap that reaches the virtual end is *trailing*: the stream had not come back when
    the sender stopped (not recovered). All gaps are kept.

Loss
    ``lost = sent - |{unique seqs < sent received}|`` (loss at the edges included).
    Loss per interval (load generator): ``loss_pct[i] = 100*(1 - received[i]/sent[i])``
    where both counts are of packets whose *send* time falls in interval i
    (``floor(send_ns / interval_ns)``).

Emulation health
    :func:`saturation` (per-CPU idle) and :func:`sender_behind` (achieved vs commanded rate).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

DEFAULT_K = 2  # a gap is an outage when it is longer than K nominal inter-packet intervals


@dataclass(frozen=True)
class Gap:
    """One gap in a probe stream (see the module docstring for the definition).

    start_ns/end_ns: CLOCK_MONOTONIC ns of the arrival before and after the gap (a virtual
    one at the edges); outage_ms: (end_ns - start_ns)/1e6 - T in ms; lost: seqs strictly
    between after_seq and before_seq (0 .. sent-1 at the edges) never received at all;
    after_seq None for a leading gap, before_seq None for a trailing one. sender_late_ms:
    how late the sender sent the packet that ends the gap (its send_ns minus its due time
    start_ns + seq*T, in ms; 0 for a trailing gap or an unknown send time), i.e. the part of
    the gap the sender, not the data path, explains: a gap with lost == 0 and sender_late_ms
    close to outage_ms is a sender stall (a busy host), not an outage of the network.
    """

    start_ns: int
    end_ns: int
    outage_ms: float
    lost: int
    after_seq: int | None
    before_seq: int | None
    leading: bool
    trailing: bool
    sender_late_ms: float = 0.0

    @property
    def recovered(self) -> bool:
        """False when the stream never came back before the sender stopped."""
        return not self.trailing

    def as_dict(self) -> dict:
        """The gap as a JSON-ready dict (the fields, plus "recovered")."""
        return {**asdict(self), "recovered": self.recovered}


class Records(Sequence):
    """Probe records backed by one flat ``array('Q')`` (24 bytes a record, not a tuple).

    Indexing and iteration give (seq, recv_ns, send_ns) tuples.
    """

    def __init__(self, flat: array) -> None:
        if flat.typecode != "Q" or len(flat) % 3:
            raise ValueError(
                f"probe records: expected an array('Q') of 3 values a record, got typecode "
                f"{flat.typecode!r} with {len(flat)} values"
            )
        self.flat = flat

    def __len__(self) -> int:
        return len(self.flat) // 3

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("record index out of range")
        f = self.flat
        return f[3 * i], f[3 * i + 1], f[3 * i + 2]

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        f = self.flat
        return zip(f[0::3], f[1::3], f[2::3])


def write_records(path: str, seqs: array, recvs: array, sends: array) -> None:
    """Write records (three parallel ``array('Q')``) to ``path`` atomically, interleaved."""
    n = len(seqs)
    if not len(recvs) == len(sends) == n:
        raise ValueError(f"records: {n} seqs, {len(recvs)} recv times, {len(sends)} send times")
    flat = array("Q", bytes(24 * n))
    flat[0::3], flat[1::3], flat[2::3] = seqs, recvs, sends
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        flat.tofile(f)
    os.replace(tmp, path)


def read_records(path) -> Records:
    """Read a probe records file (flat native-order u64: seq, recv_ns, send_ns, ...).

    Returns a :class:`Records` sequence of (seq, recv_ns, send_ns). Raises OSError if the
    file cannot be read and ValueError if its size is not a multiple of 24 bytes.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % 24:
        raise ValueError(
            f"{path}: {len(data)} bytes is not a whole number of 24-byte probe records "
            "(seq, recv_ns, send_ns as native u64)"
        )
    flat = array("Q")
    flat.frombytes(data)
    return Records(flat)


def _check(rate: float, sent: int, k: float) -> float:
    """Validate the schedule; return T in ns."""
    if not rate or rate <= 0:
        raise ValueError(f"probe rate must be > 0 packets/s, got {rate!r}")
    if sent is None or sent < 0:
        raise ValueError(f"probe sent count must be an integer >= 0, got {sent!r}")
    if not k or k < 1:
        raise ValueError(f"gap threshold k must be >= 1 inter-packet interval, got {k!r}")
    return 1e9 / rate


class _Scan:
    """One pass over the records: first arrivals, counts, latencies and inner gaps."""

    def __init__(self, records: Iterable[tuple[int, int, int]], sent: int, t_ns: float,
                 k: float) -> None:
        self.got = got = bytearray(sent)  # 1 once seq has been received
        limit = k * t_ns
        received = duplicates = reordered = unexpected = unique = 0
        max_seq = -1
        lat = array("q")
        inner: list[tuple[int, int, int, int, int]] = []  # after, before, start, end, send
        max_inner = 0
        first = last = None  # (seq, recv_ns) of the first / last unique arrival
        prev_seq = prev_recv = None
        for seq, recv_ns, send_ns in records:
            received += 1
            if send_ns:
                lat.append(recv_ns - send_ns)
            if seq >= sent:
                unexpected += 1
                continue
            if got[seq]:
                duplicates += 1
                continue
            got[seq] = 1
            unique += 1
            if seq < max_seq:
                reordered += 1
            else:
                max_seq = seq
            if prev_recv is None:
                first = (seq, recv_ns, send_ns)
            else:
                d = recv_ns - prev_recv
                max_inner = max(max_inner, d)
                if d > limit:
                    inner.append((prev_seq, seq, prev_recv, recv_ns, send_ns))
            prev_seq, prev_recv = seq, recv_ns
        last = (prev_seq, prev_recv) if prev_recv is not None else None
        self.received, self.duplicates, self.reordered = received, duplicates, reordered
        self.unexpected, self.unique = unexpected, unique
        self.first, self.last, self.inner, self.max_inner_ns = first, last, inner, max_inner
        self.latencies = lat
        self.base_latency = max(0, min(lat)) if lat else 0

    def missing(self, lo: int, hi: int) -> int:
        """Seqs in [lo, hi) never received."""
        if hi <= lo:
            return 0
        return self.got[lo:hi].count(0)


def _gaps(scan: _Scan, sent: int, start_ns: int, t_ns: float,
          k: float) -> tuple[list[Gap], int, list[Gap]]:
    """The gaps (with loss) in arrival order, the largest spacing between arrivals (ns), and
    the delay spikes (pauses longer than k*T in which nothing was lost)."""
    limit = k * t_ns
    t_ms = t_ns / 1e6
    lead_t = start_ns - t_ns + scan.base_latency
    end_t = start_ns + sent * t_ns + scan.base_latency
    gaps: list[Gap] = []

    def gap(a: float, b: float, after, before, lost: int, send_b: int = 0) -> Gap:
        late = max(0.0, (send_b - (start_ns + before * t_ns)) / 1e6) if send_b else 0.0
        return Gap(round(a), round(b), (b - a) / 1e6 - t_ms, lost, after, before,
                   after is None, before is None, late)

    if scan.first is None:
        spacing = end_t - lead_t
        if spacing > limit and sent:
            gaps.append(gap(lead_t, end_t, None, None, sent))
        return gaps, round(spacing), []
    s0, r0, send0 = scan.first
    lead = r0 - lead_t
    if lead > limit:
        gaps.append(gap(lead_t, r0, None, s0, scan.missing(0, s0), send0))
    for after, before, a, b, send_b in scan.inner:
        gaps.append(gap(a, b, after, before, scan.missing(after + 1, before), send_b))
    s1, r1 = scan.last
    trail = end_t - r1
    if trail > limit:
        gaps.append(gap(r1, end_t, s1, None, scan.missing(s1 + 1, sent)))
    spikes = [g for g in gaps if g.lost == 0]
    return ([g for g in gaps if g.lost > 0], round(max(lead, trail, scan.max_inner_ns)),
            spikes)


def probe_gaps(records: Iterable[tuple[int, int, int]], *, rate: float, sent: int,
               start_ns: int, k: float = DEFAULT_K) -> list[Gap]:
    """Every gap of a probe stream longer than ``k`` nominal intervals, in time order.

    records: (seq, recv_ns, send_ns) in arrival order; rate: packets/s; sent: seqs issued
    (0 .. sent-1); start_ns: CLOCK_MONOTONIC ns at which seq 0 was due. Definition in the
    module docstring and results/README.md. Raises ValueError for rate <= 0, sent < 0 or
    k < 1.
    """
    t_ns = _check(rate, sent, k)
    return _gaps(_Scan(records, sent, t_ns, k), sent, start_ns, t_ns, k)[0]


def delay_spikes(records: Iterable[tuple[int, int, int]], *, rate: float, sent: int,
                 start_ns: int, k: float = DEFAULT_K) -> list[Gap]:
    """Pauses in arrival longer than ``k`` intervals with nothing lost (late, not lost,
    packets: scheduling jitter of a busy host or queueing); arguments as
    :func:`probe_gaps`. They are not outages."""
    t_ns = _check(rate, sent, k)
    return _gaps(_Scan(records, sent, t_ns, k), sent, start_ns, t_ns, k)[2]


def lost_packets(records: Iterable[tuple[int, int, int]], sent: int) -> int:
    """``sent`` minus the number of unique seqs < sent received (edge loss included)."""
    if sent is None or sent < 0:
        raise ValueError(f"probe sent count must be an integer >= 0, got {sent!r}")
    got = bytearray(sent)
    for seq, _r, _s in records:
        if seq < sent:
            got[seq] = 1
    return got.count(0)


def _percentile(sorted_values: Sequence, q: float):
    """Nearest-rank percentile of an ascending, non-empty sequence (q in 0..100)."""
    n = len(sorted_values)
    rank = max(1, -(-int(q * n) // 100))  # ceil(q*n/100), at least 1
    return sorted_values[min(rank, n) - 1]


def infer_schedule(records: Sequence[tuple[int, int, int]], rate: float) -> tuple[int, int]:
    """(sent, start_ns) guessed from the records alone, when the sender's stats are missing.

    sent = largest seq + 1; start_ns = the first record's send_ns - its seq * T. Both are
    lower bounds of the truth (loss after the last received packet is invisible). Empty
    records give (0, 0).
    """
    if not records:
        return 0, 0
    seq0, recv0, send0 = records[0]
    sent = max(seq for seq, _r, _s in records) + 1
    t_ns = 1e9 / rate
    return sent, round((send0 or recv0) - seq0 * t_ns)


def loss_runs(got: bytes) -> int:
    """The number of maximal runs of consecutive seqs never received, in a stream whose
    seq i was received iff ``got[i]`` is 1 (else 0); runs at either edge count. One cut
    healed at once loses one run; a second run means a second loss (a reroute that broke
    the path again), however short: a lone lost packet makes no gap at k = 2, but a run."""
    return got.count(b"\x01\x00") + (got[:1] == b"\x00")


def probe_report(records: Iterable[tuple[int, int, int]], *, rate: float, sent: int,
                 start_ns: int, k: float = DEFAULT_K) -> dict:
    """All probe measures of one stream, in one JSON-ready dict.

    Keys: sent, received (datagrams, duplicates included), unique, duplicates, reordered
    (unique datagrams arriving after a higher seq), unexpected (datagrams with seq >=
    sent), lost, loss_runs (runs of consecutive lost seqs, see :func:`loss_runs`), loss_pct
    (100*lost/sent, None if sent is 0), first_seq/last_seq (smallest
    and largest unique seq received, None if none), rate (packets/s), interval_ms (T), k,
    start_ns, end_ns (start_ns + sent*T), base_latency_ms (L), gaps (every :class:`Gap` as
    a dict, in time order), outage_ms (largest gap's outage, 0.0 if none), max_gap_ms
    (largest spacing between consecutive arrivals, virtual ones included), delay_spikes and
    max_delay_spike_ms (pauses without loss, see :func:`delay_spikes`), recovered
    (False if a gap is trailing), latency_ms {"min", "median", "p99"} (one-way,
    recv_ns - send_ns, nearest rank, None if unknown). Raises ValueError as
    :func:`probe_gaps`.
    """
    t_ns = _check(rate, sent, k)
    scan = _Scan(records, sent, t_ns, k)
    gaps, spacing, spikes = _gaps(scan, sent, start_ns, t_ns, k)
    lost = scan.got.count(0)
    lat = sorted(scan.latencies)
    got_seqs = scan.got
    first_seq = got_seqs.find(1) if scan.unique else None
    last_seq = got_seqs.rfind(1) if scan.unique else None
    return {
        "sent": sent,
        "received": scan.received,
        "unique": scan.unique,
        "duplicates": scan.duplicates,
        "reordered": scan.reordered,
        "unexpected": scan.unexpected,
        "lost": lost,
        "loss_runs": loss_runs(got_seqs),
        "loss_pct": 100.0 * lost / sent if sent else None,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "rate": rate,
        "interval_ms": t_ns / 1e6,
        "k": k,
        "start_ns": start_ns,
        "end_ns": round(start_ns + sent * t_ns),
        "base_latency_ms": scan.base_latency / 1e6,
        "gaps": [g.as_dict() for g in gaps],
        "outage_ms": max((g.outage_ms for g in gaps), default=0.0),
        "max_gap_ms": spacing / 1e6,
        "delay_spikes": len(spikes),
        "max_delay_spike_ms": max((g.outage_ms for g in spikes), default=0.0),
        "recovered": not any(g.trailing for g in gaps),
        "latency_ms": {
            "min": lat[0] / 1e6 if lat else None,
            "median": _percentile(lat, 50) / 1e6 if lat else None,
            "p99": _percentile(lat, 99) / 1e6 if lat else None,
        },
    }


def probe_report_with_sender(records: Sequence[tuple[int, int, int]], sender_stats: Mapping,
                             *, k: float = DEFAULT_K) -> dict:
    """:func:`probe_report` with the schedule from the probe sender's stats JSON.

    ``sender_stats`` needs "rate" (packets/s), "sent" (seqs issued) and "start_ns" (seq 0's
    due time); raises ValueError naming the missing or bad field.
    """
    for key in ("rate", "sent", "start_ns"):
        if sender_stats.get(key) is None:
            raise ValueError(f"probe sender stats: field {key!r} missing (have "
                             f"{sorted(sender_stats)}); a sender of this version writes it")
    return probe_report(records, rate=float(sender_stats["rate"]),
                        sent=int(sender_stats["sent"]), start_ns=int(sender_stats["start_ns"]),
                        k=k)


# --------------------------------------------------------------------------- load generator


def interval_loss(sent: Mapping[int, int], received: Mapping[int, int]) -> dict[int, float]:
    """Loss (%) per send-time interval index: 100*(1 - received[i]/sent[i]) for sent[i] > 0.

    Both maps count the same packets by ``floor(send_ns / interval_ns)`` (the sender when
    sending, the receiver from the send time in the payload). Keys may be ints or their
    decimal strings (as read from JSON); a received count above sent gives 0. Intervals
    still in flight (not yet fully received) must be left out by the caller.
    """
    rec = {int(i): n for i, n in received.items()}
    out: dict[int, float] = {}
    for i, n in sorted(((int(i), n) for i, n in sent.items())):
        if n > 0:
            out[i] = max(0.0, 100.0 * (1.0 - rec.get(i, 0) / n))
    return out


def load_loss(sender_stats: Mapping, receiver_result: Mapping) -> dict[int, float]:
    """:func:`interval_loss` from a trafgen sender's --stats and its receiver's --out JSON.

    Raises ValueError if either lacks its interval counts or the two intervals differ.
    """
    for what, d, key in (("sender stats", sender_stats, "sent_by_interval"),
                         ("receiver result", receiver_result, "received_by_interval")):
        if key not in d or not d.get("interval"):
            raise ValueError(f"trafgen {what}: fields 'interval' and {key!r} required")
    if float(sender_stats["interval"]) != float(receiver_result["interval"]):
        raise ValueError(f"trafgen sender interval {sender_stats['interval']} s differs from "
                         f"receiver interval {receiver_result['interval']} s; pass the same "
                         "--interval to both")
    sent = dict(sender_stats["sent_by_interval"])
    partial = sender_stats.get("partial_index")
    if partial is not None:
        sent.pop(str(partial), None)
        sent.pop(partial, None)
    return interval_loss(sent, receiver_result["received_by_interval"])


def sender_rate_samples(sender_stats: Mapping) -> list[tuple[float, float, float]]:
    """(t, commanded_pps, sent_pps) per finished interval of a trafgen sender's --stats.

    t is the interval's end (CLOCK_MONOTONIC s); commanded_pps the time-weighted mean
    commanded rate over the interval; sent_pps = packets sent in it / interval. The
    unfinished interval ("partial_index") is left out. Input of :func:`sender_behind`.
    """
    iv = float(sender_stats["interval"])
    sent = {int(i): n for i, n in sender_stats.get("sent_by_interval", {}).items()}
    cmd = {int(i): r for i, r in sender_stats.get("commanded_by_interval", {}).items()}
    partial = sender_stats.get("partial_index")
    idx = sorted((set(sent) | set(cmd)) - ({int(partial)} if partial is not None else set()))
    return [((i + 1) * iv, float(cmd.get(i, 0.0)), sent.get(i, 0) / iv) for i in idx]


# --------------------------------------------------------------------------- emulation health


def _runs(samples: Sequence, bad) -> list[tuple[float, float]]:
    """(from_t, to_t) of each run of consecutive samples for which ``bad(sample)`` holds.

    A sample at t describes the period since the previous sample, so a run of samples
    i..j covers (t[i-1], t[j]] (from t[i] for the first sample).
    """
    runs = []
    start = None
    prev_t = None
    for s in samples:
        t = s[0]
        if bad(s):
            if start is None:
                start = prev_t if prev_t is not None else t
            end = t
        elif start is not None:
            runs.append((start, end))
            start = None
        prev_t = t
    if start is not None:
        runs.append((start, end))
    return runs


def saturation(samples: Sequence[tuple[float, Sequence[float]]], *,
               idle_below_pct: float = 10.0, for_s: float = 1.0) -> dict:
    """Per-CPU saturation from idle samples (t seconds, idle % per CPU).

    A CPU is saturated while its idle is below ``idle_below_pct``; the host is overloaded
    when one CPU stays saturated (consecutive samples) for more than ``for_s`` seconds. Each
    sample's idle covers the time since the previous sample (psutil's
    ``cpu_times_percent(None, percpu=True)``). Returns {"min_idle_pct_per_cpu": [...],
    "min_idle_pct": x or None, "saturated": [{"cpu", "from_t", "to_t"}, ...] (every run),
    "overloaded": bool}.
    """
    ncpu = max((len(c) for _t, c in samples), default=0)
    mins = [min((c[i] for _t, c in samples if i < len(c)), default=None) for i in range(ncpu)]
    saturated = []
    overloaded = False
    for cpu in range(ncpu):
        for a, b in _runs(samples, lambda s, c=cpu: c < len(s[1]) and s[1][c] < idle_below_pct):
            saturated.append({"cpu": cpu, "from_t": a, "to_t": b})
            overloaded |= (b - a) > for_s
    saturated.sort(key=lambda r: (r["from_t"], r["cpu"]))
    known = [m for m in mins if m is not None]
    return {"min_idle_pct_per_cpu": mins, "min_idle_pct": min(known) if known else None,
            "saturated": saturated, "overloaded": overloaded}


def sender_behind(samples: Sequence[tuple[float, float, float]], *, ratio_below: float = 0.9,
                  for_s: float = 1.0) -> dict:
    """Whether a load generator fell behind its commanded rate.

    samples: (t seconds, commanded_pps, sent_pps) per interval (:func:`sender_rate_samples`).
    Behind while commanded > 0 and sent < ratio_below * commanded; the run flags itself when
    that lasts (consecutive samples, each covering the time since the previous one) more
    than ``for_s`` seconds. Returns {"behind": bool, "intervals": [{"from_t", "to_t"}],
    "min_ratio": min sent/commanded over samples with commanded > 0, or None}.
    """
    runs = _runs(samples, lambda s: s[1] > 0 and s[2] < ratio_below * s[1])
    ratios = [s[2] / s[1] for s in samples if s[1] > 0]
    return {"behind": any(b - a > for_s for a, b in runs),
            "intervals": [{"from_t": a, "to_t": b} for a, b in runs],
            "min_ratio": min(ratios) if ratios else None}
