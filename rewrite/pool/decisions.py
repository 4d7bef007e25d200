"""Where a key pool's decisions are made: which key serves the next attempt, which keys rest, which are held.

`KeyPool` (rewrite/pool/keypool.py) keeps the pool's own view of its keys (`KeyState`: rests, stalls, refusals,
usage) and the policy of how an answer rests a key; what it decides from that view it asks of one `Decisions`:

- `LocalDecisions` (rewrite/pool/local.py): this process alone, on the pool's own `KeyState`s; the strategies are
  rewrite/pool/strategies.py's classes.
- `RedisDecisions` (rewrite/state/redis/decisions.py), with `state.redis`: every worker's decisions at once, one Lua
  script per pick (rewrite/state/redis/scripts.py: each strategy's own chunk), rests and leases in Redis. It keeps a
  `LocalDecisions` of the same pool to decide alone when Redis does not answer, and to show what every worker set.

Each keeps its account of what happened between picks in its `Books` (`books`: rests, conversations bound, windows
spent and reported, counts), which the picks read; the `Decisions` themselves pick and say how long keys rest. An
attempt's lease on its key is counted in the pool's own view whoever picked it (`Lease`, rewrite/pool/local.py),
with the slot a shared pick took (`Pick.held`) given back beside it.

Each decision is written once per implementation, and tests/test_pool_parity.py runs one scripted sequence of
picks, rests, stalls, refusals, leases and releases through both (over fakeredis and a real redis-server) and
compares every choice. A strategy name that an implementation does not know is an error where the pool is made.

Conversation bindings (rewrite/pool/affinity.py: a conversation bound to the key that served it, until its cache's
lifetime), without a round trip more to a pick. The request's `Affinity` is one more argument of `pick`/`take`/
`prefetch` (None: a one-shot call, the strategy exactly as before); its `lookup` ids are looked up in order and the
first live binding whose key is in the pool names the bound key B (its pin's `holder` in its place when it names another
key: the key Rotator recorded as holding the stored state, whatever bindings were lost). B serves while it is ready (not
out, not resting for the model, not slow after a stall, not over a window the request counts in), is not the key that
just failed, and is below its max_concurrent (`Pick.why` BOUND); at its cap the pick waits for it while `patient`
(`Pick(None, busy=True, why=BOUND, bound=B)`: the caller waits for a lease to come back, then asks again impatient); a
pin (`hard`) waits for its resting B (`Pick(B, wait)`). Otherwise the conversation is placed among the other keys
(MOVED, `bound` B); a new one (NEW), or one found by its session only with a history under COMPACTED of the bound turn's
(COMPACTION), is placed too: among the free keys, the fewest live conversations (capped at LIVE_CAP), then the most
quota headroom (to 0.05), then the strategy among those; with no free key, the fallback as for any pick.
`Pick.bind_as` names what to bind: the binding's name, or `Affinity.name`. Its `books`: `bind(state, affinity,
conversation, extra)` binds the request's ids (and `extra`) to the key that served, the conversation live there and
nowhere else; `unbind(state, affinity)` drops those bound to a key that failed; `live(state)` counts the key's live
conversations (`describe()`). Local: rewrite/pool/local.py `Bindings` (id -> KeyBinding, per key name -> until, wall
clock; expired ones purged lazily; kept in the state file by key fingerprint). Redis: one hash per pool
(`rot:{pool}:bind`, id -> "fp|until ms|depth|name"), a fixed key of the prepared pick, the ids among the pick's own
arguments, read by the pick script before the strategy's `choose` (rewrite/state/redis/bind_scripts.py: its own chunks);
each key's live conversations a sorted set (ZCOUNT for placement); the expiries a sorted set trimmed by each bind; bind
and unbind written at once on the pipe, as rests are (rewrite/state/redis/bindings.py). Parity cases: a bound key picked
first; a resting, busy (impatient), avoided or refused one passed over and the conversation bound again to the key that
serves; a pin waiting for its resting key; an expired binding and a compaction placed anew; six new conversations over
three keys two each; unbind after a failure; a pin's holder bound without a binding, or over one naming another key,
waited for while it rests, left when it just failed; a pin an answer made (a Gemini cache) kept for its own lifetime,
waited for, and dropped when deleted.

Quota windows (rewrite/pool/windows.py: per key and quota group, the vendor's rate limits and the config's caps;
a key whose window the request would exceed is passed over, and is back at the window's reset): the request's
`Need` (the windows that count it and what it is expected to spend of each) is one more argument of `pick`/`take`
(and of `resting`, `rests_past` and `prefetch`, whose answers then name the earliest reset); a key over its window
is not ready, and waits for its reset as a resting key waits for the end of its rest; `Pick.passed` names the keys
passed over for one. The pick that chooses a key at once counts the request in its windows (`windows.picked`);
`spend(state, checks, amounts, wall)` counts the rest: a request sent after waiting for its key, and what an
answer's usage says (tokens, dollars) in the caps; `report(state, window, unit, tally)` puts the vendor's figures in
place of what was counted. Local: `KeyState.windows`.
Redis: one hash per pool (`rot:{pool}:window`, "fp|window|unit" -> "left|limit|reset ms|reserve"), the prepared
pick's last key, read once by the pick script (rewrite/state/redis/window_scripts.py: its own chunk) and spent
there for the key it chooses; spends and reports are written at once on the pipe, as rests are. Still one round
trip a pick. Parity cases: a key over its window is passed over before its 429 and back after its reset; every key
over names the earliest reset; a share cap keeps part of the vendor's window back; a cap counts across models.
For placing new conversations, each key's headroom (0..1: the share left of its tightest window that counts the
request; 1 when none is known to be used) is `windows.headroom(state.windows, need, wall)` locally and `k.headroom`
in the pick script.

Re-checks of long rests (rewrite/pool/recheck.py): a key whose every rest for the model is due its re-check is ready
for one pick, which claims it (its next re-check moved out in the same decision) and says so in `Pick.recheck`; the
answer acts through `books.renew` (refused: the rest from the new answer) and `books.recovered` (served: it ends).
Local: `Rest.check_at`, `KeyState.checking`. Redis: one hash per pool (`rot:{pool}:recheck`), read by the pick
script for resting keys only. Parity case: a long rest re-checked once per wait, twice as late after a refusal,
ended by a success; a model's rest by a pick for that model.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rewrite.pool.windows import NO_NEED, Check, Need, WindowTally

if TYPE_CHECKING:
    from rewrite.pool.affinity import Affinity
    from rewrite.pool.key_state import KeyState


class Held(Protocol):
    """A key's slot taken by a pick made elsewhere (in Redis): renewed from `hold`, given back by `release`."""

    def hold(self) -> None: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class Resting:
    """Why no key of a pool can be used now."""

    seconds: float  # until the soonest key is back (inf: none will be)
    rejected: bool  # every key was refused by the vendor (401/403)
    busy: bool = False  # the keys that may be used are all at their max_concurrent
    pinned: str = ""  # the state only the conversation's key holds (a pin's kind), when that key alone rests


@dataclass(slots=True)  # (not frozen: a frozen dataclass of nine fields cost 3.3 µs to make, this 0.8)
class Pick:
    key: str | None  # None: every key that may be used now is at its max_concurrent (busy), or every key is out
    wait: float = 0.0  # seconds until `key` is back from its rest
    busy: bool = False
    held: Held | None = None  # the key's slot, taken by a shared pick (see `KeyPool.take`)
    # Why no key can be used now, as the decision that made this pick saw it when that is not the pool's own state
    # (a shared pick: the rests every worker set, the leases every worker holds); None: `resting` asks the pool.
    resting: Resting | None = None
    # The keys passed over for a quota window the request counts in, and the seconds until its reset.
    passed: tuple[tuple[str, float], ...] = ()
    # Why the key was chosen, for a request of a conversation (rewrite/pool/affinity.py: BOUND, NEW, MOVED,
    # COMPACTION; "" without one); the key its conversation was bound to, when this pick did not choose it or waits
    # for it; the name to bind the conversation under (its binding's, or `Affinity.name` for a new one).
    why: str = ""
    bound: str | None = None
    bind_as: str = ""
    recheck: str = ""  # a re-check of the key's long rest (rewrite/pool/recheck.py): the decision trail's words

    def drop(self) -> None:
        """Give back the slot of a pick that is not used."""
        if self.held is not None:
            self.held.release()


class Books(ABC):
    """What one pool's decisions keep account of between picks, told as it happens: the keys' rests, the
    conversations bound to them, what their answers spent of their windows and what they served. Keys are the
    pool's `KeyState`s, in config order."""

    @abstractmethod
    def rest(self, state: KeyState, scope: str, seconds: float, why: str, share: bool = True) -> bool:
        """Rest the key for `seconds` (for the model `scope`, or WHOLE_KEY); a longer rest it has stays. `share`:
        off for a rest learned from the other processes. Returns whether the pool's own view changed."""

    @abstractmethod
    def renew(self, state: KeyState, scope: str, seconds: float, why: str) -> None:
        """A re-check was refused (rewrite/pool/recheck.py): the rest of `scope` lasts `seconds` from now, shorter or
        longer, its next re-check where the re-check's claim put it."""

    @abstractmethod
    def recovered(self, state: KeyState, scope: str) -> None:
        """A re-check was served: the rest of `scope` ends now."""

    @abstractmethod
    def bind(self, state: KeyState, affinity: Affinity, conversation: str, extra: tuple[str, ...] = ()) -> None:
        """Bind `affinity.bind` and `extra` ids to the key (it served the conversation) until `affinity.ttl` from
        now, under the name `conversation`; the conversation is live on this key until then, and on no other."""

    @abstractmethod
    def unbind(self, state: KeyState, affinity: Affinity) -> None:
        """The key failed the conversation: drop those of its ids bound to the key, and its live count there."""

    @abstractmethod
    def live(self, state: KeyState) -> int:
        """The conversations live on the key (bound to it, not expired)."""

    @abstractmethod
    def spend(self, state: KeyState, checks: tuple[Check, ...], amounts: dict[str, float], wall: float) -> None:
        """What the key's answer used (tokens, input and output tokens, dollars), counted in its windows."""

    @abstractmethod
    def report(self, state: KeyState, window: str, unit: str, tally: WindowTally) -> None:
        """The vendor's figures of one of the key's windows, in place of what was counted."""

    @abstractmethod
    def count(self, state: KeyState, model: str, wall: float, **amounts: float) -> None:
        """Requests, tokens and cost the key served (already in its `KeyState.usage`), for whoever else counts them."""


class Decisions(ABC):
    """One pool's decisions (see the module's docstring): which key serves, and when a leased key's slot may be
    back; what they decide on is kept by their `books`. Keys are the pool's `KeyState`s, in config order."""

    books: Books

    # The keys' fingerprints as the state these decisions share names them (config order; empty until known), where
    # that is not the pool's own (`KeyState.id`, the state file's): Redis's, under the secret every worker reads.
    shared_ids: list[str] | None = None

    @abstractmethod
    def pick(self, avoid: str | None, model: str, need: Need = NO_NEED, affinity: Affinity | None = None,
             patient: bool = True) -> Pick:
        """The key for the next attempt at `model` (its quota group), decided now by this process alone; `avoid`:
        the key that just failed, if another may be used; `need`: what the attempt is expected to spend of the key's
        quota windows (the key chosen has the request counted in them); `affinity`: the request's conversation
        (None: a one-shot call, the strategy alone); `patient`: a bound key at its max_concurrent is waited for
        (`Pick(None, busy=True, why=BOUND)`), else the conversation is placed on another key."""

    @abstractmethod
    def take(self, avoid: str | None, model: str, prefetch: Prefetch | None, need: Need = NO_NEED,
             affinity: Affinity | None = None, patient: bool = True) -> Awaitable[Pick]:
        """`pick` as every process sharing the decisions makes it, the key's slot taken (`Pick.held`)."""

    @abstractmethod
    def prefetch(self, model: str, need: Need = NO_NEED, affinity: Affinity | None = None, patient: bool = True
                 ) -> Prefetch | None:
        """The first attempt's `take` for `model`, started now; None where a pick costs no round trip."""

    @abstractmethod
    def returned(self) -> asyncio.Future:
        """A future of the caller's own, resolved when a key's slot may have come back (to wait at max_concurrent)."""

    @abstractmethod
    def resting(self, model: str, pick: Pick | None, need: Need = NO_NEED) -> Resting:
        """How long until a key may serve `model` (after `pick` said to wait, or that none is free): its rest's
        end, or its window's reset."""

    @abstractmethod
    def rests_past(self, seconds: float, model: str, need: Need = NO_NEED) -> bool:
        """No key may serve `model` within `seconds` (out, cooling down, resting after a stall longer, or over a
        window that resets later)."""


class Prefetch:
    """The first attempt's shared pick, started as soon as the request is known to be an LLM call (the addon's request
    hook), while the request still goes its way to the engine: the round trip to Redis overlaps that work instead of
    being waited for at the pick. It halved the time to the first byte the pick adds (measured: +0.33 -> +0.15 ms);
    the pick's CPU stays what it was (docs/benchmark-history.md, "Where a Redis pick's time goes").

    It is used only by the attempt it was made for (the same pool, the same model, the first pick); any other, or a
    request that ends before its first attempt, gives its lease back."""

    def __init__(self, pool: Decisions, model: str, pick: asyncio.Future[Pick | None], need: Need = NO_NEED) -> None:
        self.pool, self.model, self.pick = pool, model, pick  # (`pool`: the decisions that made it)
        self.need = need  # the quota windows it was picked for (the attempt's own: the same model, the same request)
        self._taken = False

    def made_for(self, pool: Decisions, model: str) -> bool:
        return pool is self.pool and model == self.model

    def take(self, pool: Decisions, model: str) -> asyncio.Future[Pick | None] | None:
        """The pick, when `pool` made it for `model`; else None (and its lease is given back)."""
        if self._taken:
            return None
        if not self.made_for(pool, model):
            self.drop()
            return None
        self._taken = True
        return self.pick

    def drop(self) -> None:
        """Not used: its lease goes back now, or once the pick is in (a capped key's slot is then free before a
        pick made after this)."""
        if not self._taken:
            self._taken = True
            if self.pick.done():
                drop_unused(self.pick)
            else:
                self.pick.add_done_callback(drop_unused)


def drop_unused(pick: asyncio.Future[Pick | None]) -> None:
    """A pick that is in and not used: its slot given back."""
    if not pick.cancelled() and pick.exception() is None and (made := pick.result()) is not None:
        made.drop()
