"""What finished requests add up to: the status page's `Tally` and the Prometheus metrics served at the status host's
`/metrics` (addons/status.py).

Both are fed once per finished request, from what the flow recorded in `flow.metadata["rotator"]`: nothing is
counted per streamed event. Key states and requests in flight are read
from the pools and the engine's jobs when scraped. Keys appear masked only. A private registry: nothing of
prometheus_client's default one (process and platform collectors) is served.

Label values stay few: a failure's reason is its kind ("status 429", "first-token timeout", "connect error"),
never its free text; model names come from clients, so past MAX_MODELS of them the rest count as "other".
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rewrite.accounting.live_metrics import Live
from rewrite.policy.outcomes import ATTEMPT_ERRORS, Note

MAX_MODELS = 200
RECENT_ERRORS = 5  # per key, on the status page
OUTCOMES = ("ok", "repaired", "failed")  # of a request served or given up; "refused" (no client key) besides
TOKEN_KINDS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60)
DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
# A reason's kind, for a label: the first pattern that matches names it.
REASONS = (
    (re.compile(r"^status (\d{3})"), None),  # None: the match itself ("status 429")
    (re.compile(r"first.token timeout"), "first-token timeout"),
    (re.compile(r"request timeout"), "request timeout"),
    (re.compile(r"idle timeout"), "idle timeout"),
    (re.compile(r"timeout|Timeout"), "timeout"),
    (re.compile(r"every key rejected"), "every key rejected"),
    (re.compile(r"every key busy"), "every key busy"),
    (re.compile(r"every key rate limited"), "every key rate limited"),
    (re.compile(r"before the first token"), "ended before the first token"),
    (re.compile(r"upstream ended"), "upstream ended"),
    (re.compile(r"upstream reset"), "upstream reset"),
    (re.compile(r"undecodable"), "upstream body undecodable"),
    (re.compile(r"not understood"), "upstream event not understood"),
    (re.compile(r"body cut"), "body cut"),
    (re.compile(r"ConnectError|connect error"), "connect error"),
    (re.compile(r"bad (upstream )?request"), "bad request"),
    (re.compile(r"forced stream"), "forced stream error"),
    (re.compile(r"client left"), "client left"),
    (re.compile(r"Error|error|Exception"), "upstream error"),
)


@dataclass
class ProviderSpent:
    """What one provider's finished requests used."""

    requests: int = 0
    usage: collections.Counter = field(default_factory=collections.Counter)
    cost: float = 0.0  # in dollars, of the answers whose price is known
    unpriced: int = 0  # answers with usage but no known price: costed as unknown, not zero
    covered: int = 0  # answers a subscription login's plan covered: not priced
    hedges: int = 0  # second attempts sent beside a late first one (hedging)
    hedges_won: int = 0  # of them, those that answered first


# What the status page's "last hour at a glance" counts per minute: requests, and of them those retried before their
# first token, continued after a cut, ended honestly (repaired), hedged (each hedge fired) and won by the hedge,
# moved to a route's next target, and refused for a client's budget or limit.
GLANCE = ("requests", "retried", "continued", "repaired", "hedges", "hedges_won", "fallbacks", "budget_refused")
MINUTES = 60


class LastHour:
    """The GLANCE counts of each of the last MINUTES minutes (a bucket per minute that saw a request)."""

    def __init__(self) -> None:
        self.buckets: collections.deque[tuple[int, list[int]]] = collections.deque()

    def add(self, now: float, counts: list[int]) -> None:
        minute = int(now // 60)
        if not self.buckets or self.buckets[-1][0] != minute:
            self.buckets.append((minute, [0] * len(GLANCE)))
            while self.buckets[0][0] <= minute - MINUTES:
                self.buckets.popleft()
        held = self.buckets[-1][1]
        for i, n in enumerate(counts):
            held[i] += n

    def describe(self, now: float) -> dict:
        """{"minutes": MINUTES, "totals": {name: n}, "per_minute": {name: [n, ... oldest first, this minute last]}}."""
        minute = int(now // 60)
        rows = [[0] * MINUTES for _ in GLANCE]
        for at, counts in self.buckets:
            slot = MINUTES - 1 - (minute - at)
            if 0 <= slot < MINUTES:
                for i, n in enumerate(counts):
                    rows[i][slot] = n
        return {"minutes": MINUTES, "totals": {name: sum(row) for name, row in zip(GLANCE, rows)},
                "per_minute": dict(zip(GLANCE, rows))}


class Tally:
    """Since start, from what each finished flow recorded in `flow.metadata["rotator"]`: each provider's requests,
    usage and cost, and each (masked) key's recent errors."""

    def __init__(self, clock=time.time) -> None:
        self.started = clock()
        self._clock = clock
        self.spent: dict[str, ProviderSpent] = {}
        self.errors: dict[tuple[str, str], collections.deque] = {}
        self.error_counts: collections.Counter = collections.Counter()
        self.last_hour = LastHour()

    def record(self, rotator: dict) -> None:
        provider = rotator.get("provider")
        if not isinstance(provider, str) or "refused" in rotator:
            return
        glance = [1, 0, 0, 0, 0, 0, 0, 0]  # (GLANCE's order)
        held = rotator.get("client_check")
        glance[7] = isinstance(held, dict) and held.get("status") == 429
        spent = self.spent.setdefault(provider, ProviderSpent())
        spent.requests += 1
        served = rotator.get("key")
        # A routed request may try other providers first: a retry's key is of the target tried then.
        targets = rotator.get("targets")
        first = targets[0] if isinstance(targets, list) and targets and isinstance(targets[0], dict) else {}
        named = first.get("provider")
        trying = named if isinstance(named, str) else provider
        events = rotator.get("events")
        for note in events if isinstance(events, list) else ():
            if not isinstance(note, dict):
                continue
            if note.get("kind") == Note.FALLBACK and isinstance(note.get("provider"), str):
                trying = note["provider"]
            if note.get("kind") == Note.HEDGED:
                hedged = self.spent.setdefault(trying, ProviderSpent())
                hedged.hedges += 1
                hedged.hedges_won += note.get("won") == "second"
                glance[4] += 1
                glance[5] += note.get("won") == "second"
            glance[1] |= note.get("kind") == Note.RETRY
            glance[2] |= note.get("kind") == Note.RESUMED
            glance[3] |= note.get("kind") == Note.REPAIRED
            glance[6] += note.get("kind") == Note.FALLBACK
            if note.get("kind") not in ATTEMPT_ERRORS:
                continue
            where, key = (trying, note.get("key")) if note["kind"] == Note.RETRY else (provider, served)
            if not isinstance(key, str):
                continue  # no key was used (every key resting, or no pool): not a key's error
            reason = str(note.get("reason") or note.get("detail") or "")[:200]
            self.errors.setdefault((where, key), collections.deque(maxlen=RECENT_ERRORS)).append(
                {"at": self._clock(), "kind": note["kind"], "reason": reason})
            self.error_counts[(where, key)] += 1
        self.last_hour.add(self._clock(), glance)
        usage = rotator.get("usage")
        if isinstance(usage, dict):
            spent.usage.update({k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)})
            cost = rotator.get("cost")
            if rotator.get("covered") == "plan":
                spent.covered += 1
            elif isinstance(cost, (int, float)) and not isinstance(cost, bool):
                spent.cost += cost
            else:
                spent.unpriced += 1


def reason_kind(text: object) -> str:
    """A failure's reason as a label value (see REASONS); "other" for one of no known kind."""
    text = str(text or "")
    for pattern, kind in REASONS:
        found = pattern.search(text)
        if found:
            return kind or found.group(0)
    return "other"


class Metrics:
    """The registry and its families. `record` takes one finished flow's record; `pools`, `in_flight`, `logins` and
    `store_reads` are read when scraped: the pools as rewrite/pool/report.py `describe`s them, {provider: requests
    in flight}, [{"provider", "logins"}] as rewrite/pool/logins.py `describe`s a login provider's, and how many
    reads of the conversation store waited for Redis (rewrite/state/redis/kv.py)."""

    def __init__(self, pools: Callable[[], list[dict]] = list, in_flight: Callable[[], dict[str, int]] = dict,
                 logins: Callable[[], list[dict]] = list, store_reads: Callable[[], int] = int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._models: set[str] = set()
        self._series: dict[tuple[str, str], _Series] = {}
        by_model, by_reason = ("provider", "model"), ("provider", "model", "reason")
        registry = self.registry
        self.requests = Counter("rotator_requests", "Requests answered, by provider, model and outcome "
                                "(ok, repaired, failed, refused)", (*by_model, "outcome"), registry=registry)
        self.retries = Counter("rotator_retries", "Attempts retried on another key (or after a wait)", by_reason,
                               registry=registry)
        self.repairs = Counter("rotator_repairs", "Cut streams Rotator ended honestly", by_reason, registry=registry)
        self.fallbacks = Counter("rotator_fallbacks", "Targets left for the next one before the first token "
                                 "(provider and model of the target left)", by_reason, registry=registry)
        self.resumes = Counter("rotator_resumes", "Cut streams resumed upstream", by_model, registry=registry)
        self.key_errors = Counter("rotator_key_errors", "Attempts that went wrong on each pooled key, by kind (retry: "
                                  "before the first token; failed, cut, repaired: the answer; keys masked)",
                                  ("provider", "key", "kind"), registry=registry)
        self.hedges = Counter("rotator_hedges", "Second attempts sent beside a first one whose first token was late "
                              "(hedging)", by_model, registry=registry)
        self.hedges_won = Counter("rotator_hedges_won", "Hedges whose second attempt answered first", by_model,
                                  registry=registry)
        self.failures = Counter("rotator_failures", "Requests given up (or cut) and why", by_reason, registry=registry)
        self.tokens = Counter("rotator_tokens", "Tokens the vendors reported, by kind (input includes cache reads "
                              "and writes, output includes reasoning)", (*by_model, "kind"), registry=registry)
        self.cost = Counter("rotator_cost_usd", "Cost of the answers whose model has a price, in USD", by_model,
                            registry=registry)
        self.unpriced = Counter("rotator_unpriced_answers", "Answers with usage whose model has no known price",
                                by_model, registry=registry)
        self.ttft = Histogram("rotator_time_to_first_token_seconds", "From the request to its first token",
                              by_model, buckets=TTFT_BUCKETS, registry=registry)
        self.duration = Histogram("rotator_request_duration_seconds", "From the request to its answer's end",
                                  by_model, buckets=DURATION_BUCKETS, registry=registry)
        self.registry.register(Live(pools, in_flight, logins, store_reads))

    def exposition(self) -> tuple[bytes, str]:
        """The body of `/metrics` and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def record(self, rotator: dict, duration: float | None = None) -> None:
        """One finished request, from its `flow.metadata["rotator"]`; `duration` in seconds."""
        provider = rotator.get("provider")
        if not isinstance(provider, str):
            return
        model = self._model(rotator.get("model"))
        if "refused" in rotator:
            self.requests.labels(provider, model, "refused").inc()  # (no usage, no timings)
            return
        # A routed request tries its targets in order: each note is of the target tried then.
        targets = [t for t in rotator.get("targets") or () if isinstance(t, dict)]
        at = 0
        trying = self._target(targets[0]) if targets else (provider, model)
        outcome = "ok"
        events = rotator.get("events")
        for note in events if isinstance(events, list) else ():
            if not isinstance(note, dict):
                continue
            kind, reason = note.get("kind"), note.get("reason") or note.get("cause") or note.get("detail")
            if kind == Note.RETRY:
                self.retries.labels(*trying, reason_kind(reason)).inc()
            elif kind == Note.FALLBACK:
                self.fallbacks.labels(*trying, reason_kind(reason)).inc()
                at += 1
                trying = self._target(targets[at]) if at < len(targets) else trying
            elif kind == Note.REPAIRED:
                self.repairs.labels(*trying, reason_kind(reason)).inc()
                outcome = "repaired" if outcome == "ok" else outcome
            elif kind in (Note.FAILED, Note.CUT):
                self.failures.labels(*trying, reason_kind(reason)).inc()
                outcome = "failed"
            elif kind == Note.HEDGED:
                self.hedges.labels(*trying).inc()
                if note.get("won") == "second":
                    self.hedges_won.labels(*trying).inc()
            if kind in ATTEMPT_ERRORS:  # (as the status page lists them under the key: a retry's key is the one left)
                key = note.get("key") if kind == Note.RETRY else rotator.get("key")
                if isinstance(key, str):
                    self.key_errors.labels(trying[0], key, str(kind)).inc()
        series = self._series.get(trying)
        if series is None:
            series = self._series[trying] = _Series(self, *trying)
        series.requests[outcome].inc()
        usage = rotator.get("usage")
        if isinstance(usage, dict):
            for kind, counter in series.tokens.items():
                count = usage.get(kind)
                if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                    counter.inc(count)
            cost = rotator.get("cost")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
                series.cost.inc(cost)
            elif rotator.get("covered") != "plan":  # (a subscription's answer is covered, not of unknown price)
                series.unpriced.inc()
        ttft = rotator.get("ttft")
        if isinstance(ttft, (int, float)) and not isinstance(ttft, bool) and ttft >= 0:
            series.ttft.observe(ttft)
        if duration is not None and duration >= 0:
            series.duration.observe(duration)

    def _target(self, target: dict) -> tuple[str, str]:
        return str(target.get("provider") or ""), self._model(target.get("model"))

    def _model(self, model: object) -> str:
        if not isinstance(model, str):
            return ""
        if model in self._models:
            return model
        if len(self._models) < MAX_MODELS:
            self._models.add(model)
            return model
        return "other"


class _Series:
    """A provider and model's children of the families counted for every request (a label lookup takes a lock and
    a dict lookup: done once, not per request). Created at 0, resumes and hedges included (shown at 0 until they
    come)."""

    __slots__ = ("requests", "tokens", "cost", "unpriced", "ttft", "duration")

    def __init__(self, metrics: Metrics, provider: str, model: str) -> None:
        labels = (provider, model)
        self.requests = {o: metrics.requests.labels(*labels, o) for o in OUTCOMES}
        self.tokens = {kind: metrics.tokens.labels(*labels, kind) for kind in TOKEN_KINDS}
        self.cost = metrics.cost.labels(*labels)
        self.unpriced = metrics.unpriced.labels(*labels)
        self.ttft = metrics.ttft.labels(*labels)
        self.duration = metrics.duration.labels(*labels)
        metrics.resumes.labels(*labels)
        metrics.hedges.labels(*labels)
        metrics.hedges_won.labels(*labels)
