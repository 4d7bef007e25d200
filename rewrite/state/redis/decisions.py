"""One pool's decisions made for every worker at once, through Redis (rewrite/pool/decisions.py's `Decisions`).

Per request: one pick, an atomic script (rewrite/state/redis/scripts.py, the pool's strategy's own), which also
leases the key and gives back the leases of uncapped keys this worker ended since its last pick; a capped key's
lease is given back at once (rewrite/state/redis/leases.py); and checks the quota windows the request counts in,
counting it in those of the key it chooses. Rests and windows are written at once (rests.py, windows.py); counts in
a batch about once a second (usage.py). When Redis does not answer, the breaker (connection.py) sends each decision
to the pool's `LocalDecisions`, which holds what this worker knows: its own rests, those it read from the others,
and its keys that are out or resting after a stall (which stay with each worker, and go with each pick).

Once connected, the pick is written at once from a call packed once (pipe.Prepared) and its reply handed to a
callback that makes the `Pick` (link.py, `script_soon`): no coroutine or task between the reply and the request
(docs/benchmark-history.md, "Where a Redis pick's time goes").
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

from rewrite.pool import recheck
from rewrite.pool.decisions import Books, Decisions, Pick, Prefetch, Resting, drop_unused
from rewrite.pool.key_state import KeyState
from rewrite.pool.local import LocalBooks, LocalDecisions
from rewrite.pool.windows import NO_NEED, Check, Need, WindowTally
from rewrite.state.redis import clients, scripts
from rewrite.state.redis.bindings import SharedBindings, affinity_args
from rewrite.state.redis.connection import Unavailable
from rewrite.state.redis.leases import SharedLease, SharedLeases
from rewrite.state.redis.names import PoolKeys
from rewrite.state.redis.pipe import Prepared
from rewrite.state.redis.rests import SharedRests
from rewrite.state.redis.usage import SharedUsage
from rewrite.state.redis.windows import SharedWindows, check_args, passed_of

if TYPE_CHECKING:
    from rewrite.accounting.client_rules import ClientHold
    from rewrite.pool.affinity import Affinity
    from rewrite.state.redis.link import RedisLink

# A request waiting for a key at its max_concurrent looks again this often (seconds): another worker's lease may
# come back, which this worker does not hear of.
SHARED_LOOK_AGAIN = 0.1


def _resolve(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _unpicked(leases: SharedLeases, given_back: list[str]) -> Pick | None:
    """Redis did not answer (None: decide locally); the leases given back go with the next pick that goes through
    (or expire)."""
    leases.given_back[:0] = given_back
    return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisDecisions(Decisions):
    books: RedisBooks

    def __init__(self, shared: RedisLink, name: str, local: LocalDecisions) -> None:
        self.shared, self.local = shared, local
        self.script = scripts.pick(local.strategy.name)  # (an unknown strategy is an error here)
        self.keys = PoolKeys(name, local.states, shared.secret)
        self.names, self._fps = self.keys.names, self.keys.fps
        self.shared_ids = self.keys.fps  # (filled in place once Redis has answered)
        self.leases = SharedLeases(shared, self.keys)
        self.books = RedisBooks(shared, self.keys, local.books)
        self._redis_keys: list[str] | None = None  # the pick's Redis keys (the fingerprints do not change)
        self._fixed: list[str | int | float] = []  # the pick's arguments that do not change
        self._call: Prepared | None = None  # the pick on the pipe, its unchanging part packed once

    # -- choosing a key --------------------------------------------------------------------------------------

    def pick(self, avoid: str | None, model: str, need: Need = NO_NEED, affinity: Affinity | None = None,
             patient: bool = True) -> Pick:
        return self.local.pick(avoid, model, need, affinity, patient)

    async def take(self, avoid: str | None, model: str, prefetch: Prefetch | None, need: Need = NO_NEED,
                   affinity: Affinity | None = None, patient: bool = True) -> Pick:
        # (an early pick was made without an affinity: a request that has one picks again)
        # (nor is one made for a client's rules: rewrite/plugins/clients.py, `holding`)
        early = (prefetch.take(self, model) if prefetch is not None and avoid is None and affinity is None
                 and need.client is None else None)
        picking = early or self._shared_pick(avoid, model, need, affinity, patient)
        try:
            pick = await picking
        except asyncio.CancelledError:
            # The request is gone: a pick already in gives its slot back now, one on its way when it comes
            # (`_unwanted`).
            if isinstance(picking, asyncio.Future) and picking.done():
                drop_unused(picking)
            raise
        return pick if pick is not None else self.local.pick(avoid, model, need, affinity, patient)

    def prefetch(self, model: str, need: Need = NO_NEED, affinity: Affinity | None = None, patient: bool = True
                 ) -> Prefetch | None:
        pick = self._shared_pick(None, model, need, affinity, patient)
        return Prefetch(self, model, pick if isinstance(pick, asyncio.Future) else asyncio.ensure_future(pick), need)

    def _shared_pick(self, avoid: str | None, model: str, need: Need = NO_NEED, affinity: Affinity | None = None,
                     patient: bool = True) -> Awaitable[Pick | None]:
        """The key every worker would agree on, leased; None: Redis did not answer (decide locally). Sent before
        this returns when the connection is up (then a future, else a coroutine that connects first)."""
        now = self.local.clock()
        call = self._call
        if call is None or not self.shared.ready():
            return self._pick_connecting(avoid, model, now, need, affinity, patient)
        given_back, lease_id, rest = self._pick_args(avoid, model, now, need, affinity, patient)
        return self.shared.script_soon(call, rest, then=lambda reply: self._picked(reply, lease_id, affinity, need),
                                       otherwise=lambda: _unpicked(self.leases, given_back),
                                       unwanted=lambda reply: self._unwanted(reply, lease_id))

    async def _pick_connecting(self, avoid: str | None, model: str, now: float, need: Need,
                               affinity: Affinity | None, patient: bool) -> Pick | None:
        try:
            fps = await self.keys.fingerprints()
        except Unavailable:
            return None
        if self._redis_keys is None:
            names, states = self.names, self.local.states
            self._redis_keys = [names.rests, names.turn, names.lru] + [names.leases(fp) for fp in fps]
            self._redis_keys += [names.bindings, *map(names.live, fps), *clients.KEYS, names.rechecks]
            self._redis_keys.append(names.windows)  # (the quota windows' key comes last)
            self._fixed = [int(self.shared.lease_seconds * 1000), len(states)]
            for s, fp in zip(states, fps):
                self._fixed += (fp, s.weight, s.tier, s.max_concurrent or 0)
            if self.shared.pipe is not None:
                self._call = self.shared.pipe.prepare(self.script, self._redis_keys, self._fixed)
        given_back, lease_id, rest = self._pick_args(avoid, model, now, need, affinity, patient)
        sent = asyncio.ensure_future(self.shared.script(self.script, self._redis_keys, [*self._fixed, *rest]))
        try:
            reply = await asyncio.shield(sent)
        except Unavailable:
            return _unpicked(self.leases, given_back)
        except asyncio.CancelledError:  # (the request is gone: the pick's reply gives back what it leased)
            def replied(done: asyncio.Future) -> None:
                if not done.cancelled() and done.exception() is None:
                    self._unwanted(done.result(), lease_id)

            sent.add_done_callback(replied)
            raise
        return self._picked(reply, lease_id, affinity, need)

    def _unwanted(self, reply: Any, lease_id: str) -> None:
        """The reply to a pick whose request is gone (the client hung up, a hedge outrun after its pick was sent):
        the key it leased is given back now, not when the lease expires."""
        chosen = reply if reply.__class__ is int else reply[0] if isinstance(reply, list | tuple) and reply else 0
        if chosen:  # (negative: a re-check claimed with it; 0, or a client's refusal: none leased)
            self.leases.give_back(abs(chosen) - 1, lease_id)

    def _pick_args(self, avoid: str | None, model: str, now: float, need: Need, affinity: Affinity | None,
                   patient: bool) -> tuple[list[str], str, list[str]]:
        """(the leases given back with this pick, the new lease's id, the pick's own arguments: scripts.pick)."""
        states, leases = self.local.states, self.leases
        given_back, leases.given_back = leases.given_back, []
        avoided = next((i + 1 for i, s in enumerate(states) if s.secret == avoid), 0) if avoid else 0
        lease_id = leases.lease_id()
        odd = ""  # (usually none: a plain loop, no generator)
        for i, s in enumerate(states, 1):
            if s.out is not None or s.slow_until > now:
                odd += f"{i}:{int(s.out is not None)}:{int(max(0.0, s.slow_until - now) * 1000)},"
        checks = check_args(need)
        head = f"{avoided}|{lease_id}|{','.join(given_back)}|{odd}|{int(self.local.wall() * 1000)}|{len(checks)}"
        return given_back, lease_id, [model, head, *checks, *affinity_args(affinity, patient),
                                      clients.pick_arg(cast("ClientHold | None", need.client))]

    def _picked(self, reply: Any, lease_id: str, affinity: Affinity | None, need: Need = NO_NEED) -> Pick:
        states = self.local.states
        if reply.__class__ is int:  # (a key chosen at once, nothing more to say: scripts.pick's short answer)
            return self.local.chosen(states[reply - 1], 0.0, SharedLease(self.leases, reply - 1, lease_id))
        if isinstance(reply, bytes | str):  # (the client's budget or limit refused it: no key picked, none leased)
            hold = cast("ClientHold", need.client)
            hold.refusal = clients.refusal_of(reply, hold, self.local.wall())
            return Pick(None, math.inf)
        chosen, wait_ms, passed = reply[0], reply[1], reply[-1]  # (windows' last)
        passed = passed_of(passed, states) if passed else ()
        tags: dict = {}
        if affinity is not None:  # (the conversation's: before the windows')
            why, bound, name = _text(reply[-4]), reply[-3], _text(reply[-2])
            tags = {"why": why, "bound": states[bound - 1].secret if bound else None,
                    "bind_as": name or affinity.name}
        if chosen < 0:  # (a re-check of the key's long rests, claimed in the same step: scripts.py)
            state = states[-chosen - 1]
            pick = self.local.chosen(state, 0.0, SharedLease(self.leases, -chosen - 1, lease_id), passed=passed, **tags)
            state.checking = tuple(_text(reply[5]).split("\n"))
            pick.recheck = recheck.said(reply[3] / 1000, _text(reply[4]))
            return pick
        if chosen and not wait_ms:
            return self.local.chosen(states[chosen - 1], 0.0, SharedLease(self.leases, chosen - 1, lease_id),
                                     passed=passed, **tags)
        # What the client is told if it will not wait is what every worker's rests and leases say (`resting`).
        soonest, busy = reply[3], bool(reply[4])
        resting = Resting(math.inf, rejected=True) if soonest < 0 else Resting(soonest / 1000, False, busy)
        wait = math.inf if wait_ms < 0 else wait_ms / 1000
        if not chosen:
            return Pick(None, wait, busy=bool(reply[2]), resting=resting, passed=passed, **tags)
        return self.local.chosen(states[chosen - 1], wait, SharedLease(self.leases, chosen - 1, lease_id),
                                 resting, passed=passed, **tags)

    # -- rests, the leases' slots --------------------------------------------------------------------------

    def resting(self, model: str, pick: Pick | None, need: Need = NO_NEED) -> Resting:
        return pick.resting if pick is not None and pick.resting is not None else self.local.resting(model, None, need)

    def rests_past(self, seconds: float, model: str, need: Need = NO_NEED) -> bool:
        return self.local.rests_past(seconds, model, need)

    def returned(self) -> asyncio.Future:
        waiter = self.local.returned()
        asyncio.get_running_loop().call_later(SHARED_LOOK_AGAIN, _resolve, waiter)
        return waiter


class RedisBooks(Books):
    """What every worker keeps account of, in Redis and in this worker's `LocalBooks` (`local`): rests
    (rests.py), conversations bound (bindings.py), windows spent and reported (windows.py), counts (usage.py)."""

    def __init__(self, shared: RedisLink, keys: PoolKeys, local: LocalBooks) -> None:
        self.keys, self.local = keys, local
        self.rests = SharedRests(shared, keys, local)
        self.usage = SharedUsage(shared, keys)
        self.windows = SharedWindows(shared, keys)
        self.bindings = SharedBindings(shared, keys)

    def rest(self, state: KeyState, scope: str, seconds: float, why: str, share: bool = True) -> bool:
        changed = self.local.rest(state, scope, seconds, why)
        if changed and share:
            self.rests.write(state, scope, seconds, why)
        return changed

    def renew(self, state: KeyState, scope: str, seconds: float, why: str) -> None:
        self.local.renew(state, scope, seconds, why)
        self.rests.write(state, scope, seconds, why, renew=True)

    def recovered(self, state: KeyState, scope: str) -> None:
        self.local.recovered(state, scope)
        self.rests.recovered(state, scope)

    # -- conversations (rewrite/state/redis/bindings.py) -------------------------------------------------------

    def bind(self, state: KeyState, affinity: Affinity, conversation: str, extra: tuple[str, ...] = ()) -> None:
        self.local.bind(state, affinity, conversation, extra)
        self.bindings.bind(self.keys.index[id(state)], affinity, conversation, extra, self.local.wall())

    def unbind(self, state: KeyState, affinity: Affinity) -> None:
        self.local.unbind(state, affinity)
        self.bindings.unbind(self.keys.index[id(state)], affinity)

    def live(self, state: KeyState) -> int:
        """As every worker bound them, read about once a second (this worker's own until then)."""
        seen = self.bindings.live(self.keys.index[id(state)])
        return seen if seen is not None else self.local.live(state)

    def spend(self, state: KeyState, checks: tuple[Check, ...], amounts: dict[str, float], wall: float) -> None:
        self.local.spend(state, checks, amounts, wall)
        if checks:  # (an answer's usage, in a pool without caps: nothing to write)
            self.windows.spend(self.keys.index[id(state)], checks, amounts, wall)

    def report(self, state: KeyState, window: str, unit: str, tally: WindowTally) -> None:
        self.local.report(state, window, unit, tally)
        self.windows.report(self.keys.index[id(state)], window, unit, tally, self.local.wall())

    def count(self, state: KeyState, model: str, wall: float, **amounts: float) -> None:
        self.usage.add(self.keys.index[id(state)], model, wall, amounts)
