"""A provider's key pool: which key serves the next attempt, and how each key's answers rest it.

Kinds of rest:
- a cooldown (rate limited, overloaded, out of quota): the key is not used for that model, or at all, until it is
  due; never shortened by a later, shorter hint;
- out: the vendor refused the key (401/403); not used again until the config is reloaded (a new pool);
- a stall (no first token in time, no connection): the key is used only when no other key is ready (a stall may be
  the vendor's, not the key's, and must not make a request wait).

A model's rests are its quota group's (`quotas`, rewrite/pool/windows.py: models that share one quota at the vendor
rest together), and a key whose quota window the request would exceed is passed over until the window's reset (the
vendor's windows its answers report, `reported`; the config's caps), the request's tokens estimated by the caller.

A `max_concurrent` key is leased for each attempt (`lease`, a context manager) and skipped while at its cap.

The pool keeps its own view of its keys (`states`); its `rests` (`KeyRests`) are the policy of how an answer rests a
key; which key serves, and the rests and leases that decide it, are its `decisions` (rewrite/pool/decisions.py): its
own (`local`), or with `state.redis` every worker's (`shared`, rewrite/state/redis/decisions.py), which decide alone,
on what the pool holds, when Redis does not answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from rewrite.policy.backoff import backoff
from rewrite.policy.retry import Failure
from rewrite.pool.decisions import Decisions, Held, Pick, Resting
from rewrite.pool.key_state import WHOLE_KEY, Counts, KeyState, distinguish, fingerprint, mask
from rewrite.pool.local import Lease, LocalDecisions
from rewrite.pool.recheck import Rechecks
from rewrite.pool.state_line import StateLine
from rewrite.pool.windows import NO_NEED, REQUESTS, Need, Quotas

if TYPE_CHECKING:
    from protocols.windows import Window
    from rewrite.pool.affinity import Affinity
    from rewrite.pool.decisions import Prefetch

__all__ = ["KeyPool", "KeyRests", "Lease", "Pick", "Resting", "key_of", "name_keys", "stored_id", "stored_ids"]

logger = logging.getLogger("rotator")

ALERT = 21  # mitmproxy.log.ALERT, for what the user must see (rewrite/ does not import mitmproxy)
# A key that stalls rests this long, doubling with each failure in a row up to STALL_REST_MAX.
STALL_REST = 5.0
STALL_REST_MAX = 300.0
# A cooldown whose answer named no delay: this long, doubling with each such answer in a row, with jitter.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 120.0


def name_keys(pool: KeyPool, secret: bytes) -> None:
    """Name each key by its fingerprint under `secret`, the store's, before state is imported or exported."""
    for s in pool.states:
        s.id = fingerprint(s.secret, secret)


def masked_in(pool: KeyPool | None, key: str) -> str:
    """`key` as the pool shows it (masked, told apart from a key of the pool that masks alike); masked alone for a
    key that is none of the pool's."""
    state = pool.by_secret.get(key) if pool is not None else None
    return state.masked if state is not None else mask(key)


def stored_ids(pool: KeyPool) -> list[str]:
    """Each key's fingerprint (config order) as the pool's kept state names it, for what records which key made it
    (the conversation state: rewrite/conversation/): with `state.redis` Redis's (none until Redis has answered once),
    else the state file's (`KeyState.id`). Never a key itself."""
    if pool.shared is None:
        return [s.id for s in pool.states]
    return list(pool.shared.shared_ids or ())


def stored_id(pool: KeyPool, key: str) -> str:
    """`key`'s fingerprint as `stored_ids` names it; "" when it is not known (or not one of the pool's)."""
    ids = stored_ids(pool)
    index = next((i for i, s in enumerate(pool.states) if s.secret == key), None)
    return ids[index] if index is not None and index < len(ids) else ""


def key_of(pool: KeyPool, stored: str) -> str | None:
    """The pool's key that `stored_ids` names `stored`; None when none is (a key no longer configured, another
    store's name, or none known)."""
    if not stored:
        return None
    return next((s.secret for s, i in zip(pool.states, stored_ids(pool)) if i == stored), None)


class _Changed:
    """A pool's `dirty`: set by each change, cleared by rewrite/pool/persistence.py's `export_state`. The first change
    after a clear calls the pool's `on_change`, when its state is kept (rewrite/state/kept.py): the keeper then waits
    for it instead of looking every few seconds, which would wake an idle worker for nothing."""

    def __get__(self, pool: KeyPool | None, owner: type | None = None) -> bool:
        return pool._dirty if pool is not None else False

    def __set__(self, pool: KeyPool, value: bool) -> None:
        if value and not pool._dirty and pool.on_change is not None:
            pool.on_change()
        pool._dirty = value


class KeyPool:
    dirty = _Changed()  # changed since the last snapshot

    def __init__(self, keys: list, strategy: str = "round-robin", name: str = "", clock=time.monotonic,
                 wall=time.time, rng=random.random, quotas: Quotas | None = None, recheck_after: float = 0.0) -> None:
        """`keys`: strings, or objects with key, weight, tier and max_concurrent (rewrite.config.KeyConfig);
        `quotas`: its vendor's quota groups and the config's caps; `recheck_after`: a rest longer than this many
        seconds gets one live request after that long (rewrite/pool/recheck.py; 0: never)."""
        self.name = name
        self.quotas = quotas or Quotas()
        self.states = [KeyState(k) if isinstance(k, str) else
                       KeyState(k.key, k.weight, k.tier, k.max_concurrent) for k in keys]
        distinguish(self.states)
        self.keys = [s.secret for s in self.states]
        self.by_secret = {s.secret: s for s in self.states}
        self.clock, self.wall, self.rng = clock, wall, rng  # (read by rewrite/pool/persistence.py too)
        self.line = StateLine(name, self.states, wall)
        self.local = LocalDecisions(self.states, strategy, self.line, clock, wall, rng)
        self.local.books.recheck_after = recheck_after
        self.strategy = self.local.strategy
        self.shared: Decisions | None = None  # with state.redis: the decisions every worker shares
        self.on_change: Callable[[], None] | None = None  # (the keeper's, while it keeps this pool's state)
        self._dirty = False
        self.rests = KeyRests(self)

    @property
    def decisions(self) -> Decisions:
        """Where the pool's decisions are made now: every worker's with `state.redis`, else its own."""
        return self.shared if self.shared is not None else self.local

    # -- choosing a key --------------------------------------------------------------------------------------

    def need(self, model: str, tokens: float) -> Need:
        """The windows a request at `model` of `tokens` tokens (estimated) counts in: none to check while nothing
        can be over one (no cap, no window an answer reported to this process, and no other worker's to read)."""
        if self.quotas.caps or self.shared is not None or any(s.windows for s in self.states):
            return self.quotas.need(model, tokens, self.wall())
        return NO_NEED

    def pick(self, avoid: str | None = None, model: str = "", tokens: float = 0, *,
             affinity: Affinity | None = None, patient: bool = True) -> Pick:
        """The key for the next attempt at `model`, as this process alone decides it; `avoid`: the key that just
        failed, if another may be used; `tokens`: the request's, estimated (for its quota windows); `affinity`: the
        request's conversation (rewrite/pool/affinity.py; None: the strategy alone), its bound key picked first
        while it can serve (`patient`: waited for at its max_concurrent)."""
        need = self.need(model, tokens)
        return self.local.pick(avoid, self.quotas.scope(model), need, affinity, patient)

    def prefetch(self, model: str, tokens: float = 0, *, affinity: Affinity | None = None, patient: bool = True
                 ) -> Prefetch | None:
        """The first attempt's shared pick for `model`, started now (rewrite/pool/decisions.py, `Prefetch`); None
        without shared state."""
        need = self.need(model, tokens)
        return self.decisions.prefetch(self.quotas.scope(model), need, affinity, patient)

    def take(self, avoid: str | None = None, model: str = "", prefetch: Prefetch | None = None,
             tokens: float = 0, *, affinity: Affinity | None = None, patient: bool = True, client: object = None
             ) -> Awaitable[Pick]:
        """`pick` as every worker sharing the state decides it, the key's slot taken there (`Pick.held`, given back
        by `lease`); the pool's own `pick` without shared state, or when Redis does not answer. `prefetch`: the
        request's pick started earlier, used if it was made for this pool and model. `client`: its client's budget
        and limits, checked by a shared pick in the same step (`Need.client`; this process's own pick leaves them to
        the clients plug-in, which checked them already)."""
        scope = self.quotas.scope(model)
        if prefetch is not None and prefetch.made_for(self.decisions, scope):
            need = prefetch.need  # (the early pick's: worked out once a request)
        else:
            need = self.need(model, tokens)
        if client is not None and self.shared is not None:
            need = Need(need.group, need.tokens, need.caps, client)
        return self.decisions.take(avoid, scope, prefetch, need, affinity, patient)

    def bind(self, key: str, affinity: Affinity, conversation: str, extra: tuple[str, ...] = ()) -> None:
        """`key` served the conversation: bind it there (`Pick.bind_as` names it), for every worker with
        `state.redis`; `extra`: more ids to bind (what its answer made: a response id, say)."""
        state = self.by_secret.get(key)
        if state is not None:
            self.decisions.books.bind(state, affinity, conversation, extra)
            self.dirty = True

    def unbind(self, key: str, affinity: Affinity) -> None:
        """`key` failed the conversation: its ids bound to that key are dropped (the next pick places it)."""
        state = self.by_secret.get(key)
        if state is not None:
            self.decisions.books.unbind(state, affinity)
            self.dirty = True

    def lease(self, key: str, model: str = "", held: Held | None = None, waited: float = 0, tokens: float = 0
              ) -> Lease:
        """Hold `key` for one attempt (counted as a request, for `model` too); give it back by leaving the `with`
        block. `held`: the slot a shared pick took, given back with it. `waited`: the pick named a wait (the key
        was resting, or over a window, when it was picked): the request of `tokens` is counted in its windows now
        (a pick that goes at once counted it)."""
        state = self.by_secret.get(key)
        if held is not None:
            held.hold()
        if state is None:
            return Lease(None, None, held)
        wall = self.wall()
        state.usage.request(model, wall)
        decisions = self.decisions
        decisions.books.count(state, model, wall, requests=1)
        if waited:
            checks = tuple(c for c in self.quotas.checks(model, wall, tokens) if c.limit == 0 or c.unit == REQUESTS)
            decisions.books.spend(state, checks, {c.unit: c.amount for c in checks}, wall)
        self.dirty = True
        return self.local.lease(state, held)  # (whoever picked it: this process's attempts count at its cap)

    def returned(self) -> asyncio.Future:
        """A future of the caller's own (cancelling it touches no other waiter), resolved when a lease is given
        back: to wait for a key at its max_concurrent."""
        return self.decisions.returned()

    def resting(self, model: str = "", pick: Pick | None = None, tokens: float = 0) -> Resting:
        """How long until a key may serve `model` again (when `pick` says to wait, or that none is free): as the
        decision that made `pick` saw it, if it was not the pool's alone (a shared pick knows every worker's rests);
        a key over a window a request of `tokens` counts in is back at its reset."""
        need = self.need(model, tokens)
        return self.decisions.resting(self.quotas.scope(model), pick, need)

    def rests_past(self, seconds: float, model: str = "", tokens: float = 0) -> bool:
        """No key may serve `model` within `seconds`: each is out, cooling down, resting after a stall, or over a
        window a request of `tokens` counts in, longer."""
        need = self.need(model, tokens)
        return self.decisions.rests_past(seconds, self.quotas.scope(model), need)

    def record_usage(self, key: str, model: str, cost: float | None, *, input_tokens: int = 0, output_tokens: int = 0,
                     cache_read: int = 0, cache_write: int = 0, cold_cost: float = 0.0) -> None:
        """Count an answer served by `key` (the pooled key itself): its tokens, `input_tokens` and `output_tokens`
        (reasoning and cache tokens among them, each once: `cache_read` and `cache_write` of the input), and its cost
        in dollars, None when the model has no known price (`cold_cost`: what its cache writes cost above cache
        reads); in its counters and its quota windows."""
        state = self.by_secret.get(key)
        if state is not None:
            tokens = input_tokens + output_tokens
            wall = self.wall()
            counts = Counts(0, max(0, int(tokens)), cost or 0.0, int(cost is None), max(0, int(input_tokens)),
                            max(0, int(cache_read)), max(0, int(cache_write)), max(0.0, cold_cost))
            state.usage.answered(model, counts, wall)
            books = self.decisions.books
            books.count(state, model, wall, **{n: v for n, v in vars(counts).items() if n != "requests"})
            used = {"tokens": max(0, tokens), "input_tokens": max(0, input_tokens),
                    "output_tokens": max(0, output_tokens), "dollars": cost or 0.0}
            if self.quotas.caps:  # (what an answer used counts in the caps alone: the vendor's windows it reports)
                books.spend(state, self.quotas.checks(model, wall, caps_only=True), used, wall)
            self.dirty = True

    def reported(self, key: str, model: str, windows: Iterable[Window]) -> None:
        """The rate-limit windows an answer of `key` at `model` reported (protocols/windows.py): the vendor's figures
        in place of what was counted, by the model's quota group (a Gemini quota error's model, if it names one)."""
        state = self.by_secret.get(key)
        if state is not None:
            for window, unit, tally in self.quotas.reported(model, windows):
                self.decisions.books.report(state, window, unit, tally)
                self.dirty = True


class KeyRests:
    """How each answer rests a pool's key (the module's docstring): its failures, stalls and refusals, and the rests
    they earn; what the rests then decide is the pool's `decisions`."""

    def __init__(self, pool: KeyPool) -> None:
        self.pool = pool
        self.rechecks = Rechecks(pool)

    def succeeded(self, key: str, model: str = "") -> None:
        """The key answered (at `model`): forget its failures and stalls; a re-check's rests end."""
        state = self.pool.by_secret.get(key)
        if state is not None and state.checking:
            self.rechecks.succeeded(state, model)
        if state is None or not (state.failures or state.stalls):
            return
        state.failures = state.stalls = 0
        was_slow, state.slow_until = state.slow_until > self.pool.clock(), 0.0
        self.pool.dirty = True
        if was_slow:
            self.pool.line.changed(self.pool.clock())

    def failed(self, key: str, failure: Failure, model: str = "") -> float | None:
        """Rest `key` as its failed attempt at `model` deserves (a re-check refused: its rests renewed from the
        answer). Returns the rest after a stall, if it stalled."""
        checked = self.pool.by_secret.get(key)
        if checked is not None and checked.checking and self._recheck_failed(checked, failure, model):
            return None
        if failure.stalled:
            return self.stalled(key)
        rest, state = failure.rest, self.pool.by_secret.get(key)
        if rest is None or state is None:
            return None
        if rest.out:
            self.reject(key, rest.why)
            return None
        state.failures += 1
        seconds = failure.delay if failure.delay is not None else self.backoff(state.failures)
        self.bench(key, seconds, self.pool.quotas.scope(model) if rest.per_model else WHOLE_KEY, rest.why)
        return None

    def _recheck_failed(self, state: KeyState, failure: Failure, model: str) -> bool:
        rest = failure.rest
        if failure.stalled or rest is None or rest.out:
            return self.rechecks.failed(state, model, None, "")
        seconds = failure.delay if failure.delay is not None else self.backoff(state.failures + 1)
        if not self.rechecks.failed(state, model, seconds, rest.why):
            return False
        state.failures += 1
        return True

    def backoff(self, failures: int) -> float:
        """A cooldown that no answer named: exponential in the failures in a row, jittered so that keys rested
        together do not all come back at once."""
        return backoff(failures - 1, base=BACKOFF_BASE, cap=BACKOFF_MAX, jitter=0.5, rng=self.pool.rng)

    def bench(self, key: str, seconds: float, model: str = WHOLE_KEY, why: str = "rate limited",
              rejected: bool = False, share: bool = True) -> None:
        """Rest `key` for `seconds` (for `model` only, if given); a longer rest it already has stays. `rejected`:
        the vendor refused it (see `reject`; `seconds` does not matter then). `share`: tell the other workers
        (off for a rest learned from them)."""
        if rejected:
            self.reject(key, "rejected by the vendor (401/403)")
            return
        state = self.pool.by_secret.get(key)
        if state is not None and self.pool.decisions.books.rest(state, model, seconds, why, share):
            self.pool.dirty = True

    def reject(self, key: str, why: str = "rejected") -> None:
        """The vendor refused the key: out until the config is reloaded; said once, loudly."""
        state = self.pool.by_secret.get(key)
        if state is None or state.out is not None:
            return
        state.out = why
        self.pool.dirty = True
        logger.log(ALERT, "rotator: %s key %s was refused by the vendor (%s): it is not used again until the "
                   "config is reloaded", self.pool.name or "pool", state.masked, why)
        self.pool.line.changed(self.pool.clock())

    def stalled(self, key: str) -> float:
        """The key produced nothing in time, or could not be reached: rest it, longer for each failure in a row.
        Returns the rest in seconds."""
        state = self.pool.by_secret.get(key)
        if state is None:
            return 0.0
        state.stalls += 1
        rest = backoff(state.stalls - 1, base=STALL_REST, cap=STALL_REST_MAX)
        now = self.pool.clock()
        state.slow_until = now + rest
        self.pool.line.changed(now)
        return rest
