"""One repetition of an agent-sized body's phases as one job: every proxy column of the size (bare's streams, the
rotator's non-stream requests, forcing off, compared, `stream` after `messages`: *variants*), each on its own
connection, its CPU per request read from its proxy's CPU-time clock (all its processes, looked up again at each
visit: a worker it started counts from its start) before each request and right after the last answer.

By default each variant in turn sends its warm-up request (not counted) and then its `n` requests in a row, in an
order that runs backwards every other repetition: the phases' separate jobs as they were, but a size's stream and
non-stream requests side by side in time. Measured one phase after another, bare mitmdump's figure for the same
8 MiB request read 25.4k µs in the non-stream phase against 33.1k in the stream phase of one quiet run; here, each
variant's minor page faults per request show why it moves: glibc serves a body's buffers from fresh memory or from a
heap that kept its pages depending on what the process freed before (its mmap threshold moves with the sizes
freed), and bare's 8 MiB figure went with its faults (0 to 2,220 a request, 24k to 39k µs) in one run.

`one_by_one` (scripts/bench --one-by-one): one warm-up request each, then rounds of one request of every variant, in
an order that turns by one each round, then one fence request per process (its clock read before it, so the last
requests' tails are counted); a request is charged what its proxy spent from its start to that proxy's next one.
Every column then meets the same moments of the machine, but each request finds its proxy's caches cold (the other
proxies ran 8 MiB requests meanwhile): Rotator, which reads the body more than once, then measured about a quarter
more at 8 MiB than in blocks on the same machine, bare about the same. Beside the CPU per request (the sum over the
requests), the raw results hold each request's and their median.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from bench_lib.client import (
    GIVE_UP_AFTER,
    BenchError,
    Conn,
    Errors,
    Scan,
    bounded,
    build_request,
    check_answer,
    check_stream,
    check_translated,
    describe,
    ms,
    per_request,
)
from bench_lib.counters import Instructions
from bench_lib.procinfo import cpu_seconds, descendants, minor_faults
from bench_lib.stats import median, pcts


class Variant:
    """One column of one phase in the job: its connection, its request, and what its requests measured."""

    def __init__(self, spec: dict, family: str, events: int, body_kib: int) -> None:
        self.name: str = spec["name"]
        self.target: dict = spec["target"]
        self.process = spec.get("root_pid") or tuple(spec.get("pids") or ())  # (variants of one process share it)
        self.root, self.pids = spec.get("root_pid"), list(spec.get("pids") or ())
        self.stream: bool = spec.get("stream", True)
        self.translated = bool(self.target.get("translated"))
        self.request = build_request(self.target, family, self.stream, events, body_kib=body_kib,
                                     stream_last=spec.get("stream_last", False))
        self.family, self.events = family, events
        self.conn: Conn | None = None
        self.cpu: list[float] = []  # seconds, per counted request
        self.faults: list[int] = []
        self.ttfb: list[int] = []
        self.ttft: list[int] = []
        self.errors = Errors()
        self.failed_in_a_row = 0
        self.done = 0
        self.failed = ""  # why the variant was not measured further (not translated: no figure, loudly)
        self.instructions: dict = {}  # the proxy's instructions a request, where the machine counts them (in blocks)

    @property
    def given_up(self) -> bool:
        return self.failed_in_a_row >= GIVE_UP_AFTER or bool(self.failed)

    async def send(self, timeout: float, counted: bool) -> None:
        """One request on its connection (opened again when the last one left it unusable)."""
        if counted:
            self.failed_in_a_row += 1
        try:
            if self.conn is None or not self.conn.usable:
                if self.conn is not None:
                    self.conn.close()
                self.conn = await Conn.open(self.target, self.family)
            scan = Scan(self.family, False, self.translated) if self.stream else None
            res = await bounded(self.conn, self.request, scan, timeout)
        except (OSError, BenchError) as e:
            if self.conn is not None:
                self.conn.usable = False
            if counted:
                self.errors.add(describe(e))
            return
        if not counted:
            return
        self.done += 1
        why = check_stream(res, self.family, self.events) if self.stream else check_answer(res, self.events)
        if why:
            self.errors.add(why)
            return
        if self.translated:
            try:
                check_translated(res)
            except BenchError as e:
                self.failed = str(e)
                return
        self.failed_in_a_row = 0
        self.ttfb.append(res.t_first_byte - res.t0)
        if self.stream and res.scan is not None and res.scan.t_first is not None:
            self.ttft.append(res.scan.t_first - res.t0)

    def result(self) -> dict:
        b50, b99 = pcts(self.ttfb, (50, 99))
        f50, f99 = pcts(self.ttft, (50, 99))
        n = len(self.cpu)
        return {"requests": self.done, "ok": len(self.ttfb), "ttfb_p50_ms": ms(b50), "ttfb_p99_ms": ms(b99),
                "ttft_p50_ms": ms(f50), "ttft_p99_ms": ms(f99), "request_bytes": len(self.request),
                "proxy_cpu_us_per_request": sum(self.cpu) * 1e6 / n if n else None,
                "proxy_cpu_us_median": median([c * 1e6 for c in self.cpu]),
                "proxy_cpu_us_each": [round(c * 1e6) for c in self.cpu],
                "minor_faults_per_request": sum(self.faults) / n if n else None, **self.instructions,
                **self.errors.as_dict(),
                **({"failed": self.failed} if self.failed else {})}


def spread[T](items: list[T], process: Callable[[T], Hashable]) -> list[T]:
    """`items` in an order where no two in a row are of the same process, where that can be: a request's tail work
    is then done before its process's clock is read for the next one."""
    left: dict[Hashable, list[T]] = {}
    for item in items:
        left.setdefault(process(item), []).append(item)
    out: list[T] = []
    last = None
    while left:
        # the process with the most left that did not send the last one (the one that did, if it alone is left)
        choices = sorted(left, key=lambda p: (p == last, -len(left[p])))
        last = choices[0]
        out.append(left[last].pop(0))
        if not left[last]:
            del left[last]
    return out


class Clocks:
    """Each process's CPU clock and page faults as last read, and the variant whose request it is spending on."""

    def __init__(self) -> None:
        self.read: dict[object, tuple[float, int]] = {}
        self.spending: dict[object, Variant] = {}
        self.pids: dict[object, list[int]] = {}

    def look(self, variants: list[Variant]) -> None:
        """The processes of each variant's target now (a process it started since included)."""
        for v in {v.process: v for v in variants}.values():
            self.pids[v.process] = descendants(v.root) if v.root else v.pids

    def before(self, v: Variant, counted: bool) -> None:
        """Read `v`'s process before a request to it: what it spent since the last read is the last request's."""
        pids = self.pids[v.process]
        now = (cpu_seconds(pids), minor_faults(pids))
        last, spender = self.read.get(v.process), self.spending.get(v.process)
        if last is not None and spender is not None:
            spender.cpu.append(now[0] - last[0])
            spender.faults.append(now[1] - last[1])
        self.read[v.process] = now
        if counted:
            self.spending[v.process] = v
        else:
            self.spending.pop(v.process, None)


async def job_interleaved(job: dict) -> dict:
    """The variants' requests, in blocks or interleaved one by one (the module's docstring); each variant's result
    by its name."""
    fam = job.get("family", "anthropic")
    timeout, deadline = job.get("request_timeout", 30), time.monotonic() + job["time_limit"]
    variants = [Variant(spec, fam, job.get("events", 3), job["body_kib"]) for spec in job["variants"]]
    order = variants[::-1] if job.get("backwards") else variants
    clocks = Clocks()
    try:
        if job.get("one_by_one"):
            await _one_by_one(job, order, clocks, timeout, deadline)
        else:
            await _in_blocks(job, order, clocks, timeout, deadline)
    finally:
        for v in variants:
            if v.conn is not None:
                v.conn.close()
    for v in variants:
        if v.given_up and not v.failed:
            v.errors.add(f"gave up after {GIVE_UP_AFTER} failed requests in a row")
    return {"variants": {v.name: v.result() for v in variants}}


async def _in_blocks(job: dict, order: list[Variant], clocks: Clocks, timeout: float, deadline: float) -> None:
    """Each variant in turn: its warm-up requests, then its `n` requests in a row, its process's clock read before
    each and right after the last answer (a separate job each, as the phases were measured before)."""
    for v in order:
        clocks.look([v])
        for _ in range(job.get("warmup", 1)):
            await v.send(timeout, counted=False)
        counter = Instructions(clocks.pids[v.process])
        before, done = counter.read(), v.done
        for _ in range(job["n"]):
            if not await _counted(v, clocks, timeout, deadline):
                break
        clocks.before(v, counted=False)
        v.instructions = per_request(before, counter.read(), v.done - done, counter)
        counter.close()


async def _one_by_one(job: dict, variants: list[Variant], clocks: Clocks, timeout: float, deadline: float) -> None:
    """One warm-up request each, then rounds of one request of every variant, in an order that turns by one each
    round, then one fence request per process (its clock read before it: the last requests' tails counted)."""
    clocks.look(variants)
    for v in variants:
        for _ in range(job.get("warmup", 1)):
            await v.send(timeout, counted=False)
    order = variants
    for r in range(job["n"]):
        order = variants[r % len(variants):] + variants[: r % len(variants)]
        clocks.look(variants)
        for v in order:
            await _counted(v, clocks, timeout, deadline)
    clocks.look(variants)
    fenced: set[object] = set()
    for v in order:
        if v.process not in fenced:
            fenced.add(v.process)
            clocks.before(v, counted=False)
            await v.send(timeout, counted=False)


async def _counted(v: Variant, clocks: Clocks, timeout: float, deadline: float) -> bool:
    """One counted request of `v`, its process's clock read before it; False (none sent) past the job's time or
    once `v` was given up."""
    if time.monotonic() > deadline:
        v.errors.add("time limit")
        return False
    if v.given_up:
        return False
    clocks.before(v, counted=True)
    await v.send(timeout, counted=True)
    return True
