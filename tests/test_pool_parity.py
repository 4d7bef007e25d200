"""Both implementations of a pool's decisions (rewrite/pool/decisions.py) make the same choices: one scripted
sequence of picks, leases held and given back, rests (whole key and one model), time passing, a stall, a refusal,
a busy pool and a pool of refused keys runs through the pool's own decisions and through Redis's (over fakeredis
and a real redis-server), for every strategy, and every pick (key, wait, busy) and every answer of `resting` after
a pick that found no key ready is compared.

The pool runs on a fake clock; for Redis, time passes by moving the rests' ends back on the server, and the real
time its own clock moved meanwhile is given back after each step (on a loaded machine, a second or more over a
script). Rests that end at the same moment on the pool's clock would end a few ms apart on the
server's, so the script's rests all differ in length.

Not compared: least-used's second criterion, tokens in the last hour, which only the pool's own decisions weigh (the
shared pick weighs the leases every worker holds, then the key picked longest ago: docs/scaling.md)."""

from __future__ import annotations

import asyncio
import math
import time

import fakeredis
import pytest

from protocols.pins import PIN_CACHED_CONTENT, Pin
from protocols.windows import QuotaGroups, Window
from rewrite.config_providers import KeyConfig
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure, KeyRest
from rewrite.pool import STRATEGIES, KeyPool, Lease
from rewrite.pool.affinity import Affinity, preferring, state_affinity
from rewrite.pool.caps import CapConfig, Share
from rewrite.pool.windows import Quotas
from rewrite.state.redis import scripts
from rewrite.state.redis.names import PoolNames
from rewrite.state.redis.shared import SharedState

A, B, C, D = "sk-parity-a-0001", "sk-parity-b-0002", "sk-parity-c-0003", "sk-parity-d-0004"
KEYS = [KeyConfig(key=A, weight=3, tier=1), KeyConfig(key=B, weight=1, tier=1, max_concurrent=1),
        KeyConfig(key=C, weight=2, tier=1), KeyConfig(key=D, weight=1, tier=2, max_concurrent=2)]
NAME = {A: "a", B: "b", C: "c", D: "d", None: None}
KEY = {"a": A, "b": B, "c": C, "d": D}

# (step, arguments): "pick" n [model] [avoid]: n picks, each leased and given back at once (dropped when it must
# wait); "hold" n [model]: n picks whose leases stay held; "release": the held leases end; "rest" key seconds
# [model]; "pass" seconds; "stall" key; "reject" key.
SCRIPT: list[tuple] = [
    ("pick", 8),  # every key ready: the strategy's own order
    ("rest", "c", 3), ("pick", 3), ("pass", 4), ("pick", 2),  # a key back from a rest: where its turn is
    ("pick", 2), ("rest", "a", 3), ("pick", 3), ("pass", 4), ("pick", 3),
    ("hold", 4),  # four attempts under way (b's cap is 1, d's 2)
    ("pick", 4),
    ("release",),
    ("rest", "a", 30), ("rest", "c", 20, "m"),  # a rests whole, c for model m only
    ("pick", 5, "m"), ("pick", 3, "other"),
    ("pass", 25),  # c is back for m; a rests 5 s more
    ("pick", 5, "m"),
    ("stall", "b"),  # used only when no other key is ready
    ("pick", 4, "m"),
    ("rest", "c", 40), ("rest", "d", 50),  # no key ready: the stalled one at once, else the one back soonest
    ("pick", 2, "m"), ("pick", 1, "m", "b"),
    ("hold", 1, "m"),  # b at its cap: a, back in 5 s, is named with its wait
    ("pick", 2, "m"),
    ("release",),
    ("reject", "b"),
    ("pick", 2, "m"),
    ("pass", 10),  # a is back
    ("pick", 3, "m"),
    ("rest", "a", 100), ("pass", 45), ("rest", "c", 200),  # only d is ready (cap 2)
    ("hold", 2, "m"),
    ("pick", 2, "m"),  # busy
    ("release",),
    ("pick", 3, "m"),
    ("reject", "a"), ("reject", "c"), ("reject", "d"),
    ("pick", 1, "m"),  # every key out
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


REDIS_TIMEOUT = 5.0


class Run:
    """One pool on a fake clock, deciding alone or through Redis (`where`: a fakeredis server or a URL)."""

    def __init__(self, strategy: str, where: fakeredis.FakeServer | str | None, keys: list = KEYS,
                 recheck_after: float = 0.0) -> None:
        self.clock = Clock()
        self.pool = KeyPool(keys, strategy, name="parity", clock=self.clock, recheck_after=recheck_after)
        self.state: SharedState | None = None
        # Redis is given 5 s a call, not the product's 0.25 s: these runs are about the choices being alike, and under a
        # loaded CI a call can outlast 0.25 s and leave the pool deciding alone (the timeouts have tests of their own).
        if isinstance(where, fakeredis.FakeServer):
            self.state = SharedState(fakeredis.FakeAsyncRedis(server=where), timeout=REDIS_TIMEOUT)
        elif where is not None:
            self.state = SharedState.from_url(where, socket_timeout=REDIS_TIMEOUT, timeout=REDIS_TIMEOUT)
        if self.state is not None:
            self.pool.shared = self.state.pool(self.pool)
        self.held: list[Lease] = []
        self.seen: list[tuple] = []
        self.synced = time.monotonic()  # when the server's rests were last put in step with the pool's clock

    async def settled(self) -> None:
        """What went to Redis in the background (a rest before the first pick, a capped key given back) is there;
        and the rests there are in step with the pool's clock again."""
        if self.state is not None:
            await asyncio.gather(*self.state.tasks)
            if self.state.pipe is not None and self.state.pipe.connected():
                await self.state.pipe.send("PING")  # (after what went on the pipe: a rest written there is in)
            assert not self.state.breaker.broken
            # The server's clock went on in real time while the pool's stood still: on a loaded machine, over a
            # script of picks through fakeredis's Lua, a second or more (a rest's wait then rounds one second less).
            now = time.monotonic()
            await self.move_rests(now - self.synced)
            self.synced = now

    async def pick(self, n: int, model: str = "", avoid: str | None = None, hold: bool = False) -> None:
        for _ in range(n):
            pick = await self.pool.take(KEY.get(avoid or ""), model)
            assert self.state is None or pick.key is None or pick.held is not None  # (Redis decided: it leased)
            wait = pick.wait if math.isinf(pick.wait) else round(pick.wait)
            seen: tuple = (NAME[pick.key], wait, pick.busy) + (("re-check",) if pick.recheck else ())
            if pick.key is None or pick.wait > 0:
                resting = self.pool.resting(model, pick)
                seen += (resting.seconds if math.isinf(resting.seconds) else round(resting.seconds), resting.rejected,
                         resting.busy)
                pick.drop()
            else:
                lease = self.pool.lease(pick.key, model, pick.held)
                if hold:
                    self.held.append(lease)
                else:
                    lease.release()
            self.seen.append(seen)
            await self.settled()

    async def pass_time(self, seconds: float) -> None:
        self.clock.now += seconds
        await self.move_rests(-seconds)

    async def move_rests(self, seconds: float) -> None:
        """The rests' ends on the server moved `seconds` later (earlier, when negative), and their next re-checks."""
        if self.state is not None:
            client, names = self.state.client, PoolNames("parity")
            for member in await client.zrange(names.rests, 0, -1):
                await client.zincrby(names.rests, seconds * 1000, member)
            for member, value in (await client.hgetall(names.rechecks)).items():
                at, rest = value.decode().split("|", 1)
                await client.hset(names.rechecks, member, f"{int(int(at) + seconds * 1000)}|{rest}")

    async def play(self, script: list[tuple]) -> list[tuple]:
        for step, *args in script:
            if step in ("pick", "hold"):
                await self.pick(*args, hold=step == "hold")
            elif step == "release":
                for lease in self.held:
                    lease.release()
                self.held = []
            elif step == "rest":
                self.pool.rests.bench(KEY[args[0]], args[1], *args[2:], why="parity")
            elif step == "pass":
                await self.pass_time(args[0])
            elif step == "stall":
                self.pool.rests.stalled(KEY[args[0]])
            elif step == "reject":
                self.pool.rests.reject(KEY[args[0]], "parity")
            elif step == "refuse":  # (its re-check refused: out of quota again, for an hour)
                self.pool.rests.failed(KEY[args[0]], Failure(FailureKind.STATUS, "status 429", 429, delay=3600,
                                                             rest=KeyRest("out of quota, status 429", False)), "m")
            elif step == "serve":
                self.pool.rests.succeeded(KEY[args[0]], "m")
            await self.settled()
        if self.state is not None:
            await self.state.aclose()
        return self.seen


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_the_pools_own_decisions_and_redis_make_every_choice_alike(strategy, redis_where):
    alone = await Run(strategy, None).play(SCRIPT)
    shared = await Run(strategy, redis_where).play(SCRIPT)
    assert [n for n, *_ in alone].count(None) >= 3  # (the script reaches a busy pool and one of refused keys)
    assert shared == alone


# Re-checks of long rests (recheck_after 10 s): a key resting 100 s gets one pick after 10 s, the strategy's turn
# (each wait passed by a second more or less than due: the server's clock is moved in steps, a few ms apart);
# refused, none before 16 s (twice the wait, less a fifth) and one by 24 s; served, it is in turn again. A model's
# rest is re-checked by a pick for that model.
RECHECK_SCRIPT: list[tuple] = [
    ("rest", "a", 100), ("pick", 4, "m"), ("pass", 11), ("pick", 5, "m"),
    ("refuse", "a"), ("pass", 15), ("pick", 5, "m"), ("pass", 10), ("pick", 5, "m"),
    ("serve", "a"), ("pick", 5, "m"),
    ("rest", "c", 100, "m"), ("pass", 11), ("pick", 3, "other"), ("pick", 5, "m"), ("serve", "c"), ("pick", 5, "m"),
]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_both_recheck_a_long_rest_once_per_wait_alike(strategy, redis_where):
    alone = await Run(strategy, None, recheck_after=10).play(RECHECK_SCRIPT)
    shared = await Run(strategy, redis_where, recheck_after=10).play(RECHECK_SCRIPT)
    assert shared == alone
    picks = [n for n, *_ in alone]
    assert picks[:4].count("a") == 0 and picks[4:9].count("a") == 1  # (re-checked once)
    assert picks[9:14].count("a") == 0 and picks[14:19].count("a") == 1
    assert sum(1 for s in alone if s[-1] == "re-check") == 3  # (a twice, c once)


# A pool of one key (max_concurrent 1): taken without asking the strategy, by both; busy, resting, stalled and out.
ONE = [KeyConfig(key=A, weight=3, tier=2, max_concurrent=1)]
ONE_SCRIPT: list[tuple] = [("pick", 3), ("hold", 1), ("pick", 1), ("release",), ("rest", "a", 3), ("pick", 1),
                           ("pass", 4), ("pick", 2), ("stall", "a"), ("pick", 2), ("reject", "a"), ("pick", 1)]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_both_give_a_pool_of_one_key_its_key_without_asking_the_strategy(strategy, redis_where, monkeypatch):
    def not_asked(self, candidates):
        raise AssertionError("a pool of one key asked its strategy")

    alone = Run(strategy, None, ONE)
    monkeypatch.setattr(type(alone.pool.local.strategy), "choose", not_asked)
    seen = await alone.play(ONE_SCRIPT)
    assert await Run(strategy, redis_where, ONE).play(ONE_SCRIPT) == seen
    assert [s[:3] for s in seen] == [("a", 0, False)] * 4 + [(None, 0, True), ("a", 3, False)] \
        + [("a", 0, False)] * 4 + [(None, math.inf, False)]  # (stalled, it is still the one key to use)
    shared = Run(strategy, redis_where, ONE)
    await shared.pick(2)
    assert shared.state is not None
    assert set(await shared.state.client.hkeys(PoolNames("parity").turn)) == {b"seq"}  # (no strategy's position)
    await shared.state.aclose()


def test_each_implementation_knows_every_strategy_and_no_other():
    assert set(scripts.PICKS) == set(STRATEGIES)
    with pytest.raises(ValueError, match="unknown strategy 'least-recently-used'"):
        KeyPool([A], "least-recently-used")
    with pytest.raises(ValueError, match="unknown strategy 'least-recently-used'"):
        scripts.pick("least-recently-used")


# ------------------------------------------------------------------------------------------------------------------
# Quota windows (rewrite/pool/windows.py): the same choices where keys are over their windows.

GROUPS = QuotaGroups((("g", ("m1", "m2")),))  # m1 and m2 share one quota at the vendor
CAPS = [CapConfig(models=["m3"], per="minute", requests=3), CapConfig(models=["m4"], per="hour", input_tokens=1000),
        CapConfig(tokens=Share(0.5))]  # and half of each vendor token window kept back

# (step, arguments): "pick" n model tokens: as above, each request estimated at `tokens`; "report" key model unit
# remaining limit seconds: an answer's window; "use" key model input tokens: an answer's usage (every key uses alike:
# least-used weighs the hour's tokens, which only the pool's own decisions do); "pass" seconds.
WINDOW_SCRIPT: list[tuple] = [
    ("pick", 4, "m1", 100),
    ("report", "a", "m1", "requests", 0, 50, 5),  # a's window of the group is used up for 5 s
    ("pick", 4, "m2", 100),  # ... m2's too: a is passed over
    ("pick", 4, "other", 100),  # a still serves other models
    ("report", "b", "m1", "tokens", 800, 1000, 8),  # b: 800 tokens left, 500 of them kept back
    ("pick", 4, "m1", 400),  # b does not fit 400 more
    ("pick", 4, "m1", 100),  # b fits 100
    ("pass", 6),  # a's window reset
    ("pick", 4, "m1", 400),
    ("report", "a", "m1", "requests", 0, 50, 16), ("report", "b", "m1", "requests", 0, 50, 10),
    ("report", "c", "m1", "requests", 0, 50, 14), ("report", "d", "m1", "requests", 0, 50, 12),
    ("pick", 2, "m1", 10),  # every key over: the earliest reset (b's) named
    ("pass", 11),  # b is back
    ("pick", 2, "m2", 10),
    ("pick", 13, "m3", 0),  # 3 requests a minute a key: the last pick waits for the minute's end
    ("use", "c", "m4", 900),  # c's hour of m4 input tokens: 100 left
    ("use", "a", "m5", 900), ("use", "b", "m5", 900), ("use", "d", "m5", 900),  # (a model no cap counts)
    ("pick", 5, "m4", 200),  # c is passed over
    ("pick", 4, "m4", 50),  # c fits 50
]


class WindowRun(Run):
    def __init__(self, strategy: str, where: fakeredis.FakeServer | str | None) -> None:
        super().__init__(strategy, where)
        if self.state is not None:
            self.state.pools.clear()
        self.clock.now = 1_800_000_000.0  # (the wall clock too: windows reset at times of day)
        self.pool = KeyPool(KEYS, strategy, name="parity", clock=self.clock, wall=self.clock,
                            quotas=Quotas.of(GROUPS, {}, CAPS))
        if self.state is not None:
            self.pool.shared = self.state.pool(self.pool)
        self.steps: list[list[tuple]] = []  # what each step's picks saw

    async def pick_with(self, n: int, model: str, tokens: int) -> None:
        for _ in range(n):
            pick = await self.pool.take(None, model, tokens=tokens)
            wait = pick.wait if math.isinf(pick.wait) else round(pick.wait)
            seen: tuple = (NAME[pick.key], wait, pick.busy, sorted((NAME[k], round(s)) for k, s in pick.passed))
            if pick.key is None or pick.wait > 0:
                resting = self.pool.resting(model, pick, tokens)
                seen += (resting.seconds if math.isinf(resting.seconds) else round(resting.seconds), resting.rejected)
                pick.drop()
            else:
                self.pool.lease(pick.key, model, pick.held).release()
            self.steps[-1].append(seen)
            await self.settled()

    async def play(self, script: list[tuple]) -> list[tuple]:
        for step, *args in script:
            self.steps.append([])
            if step == "pick":
                await self.pick_with(*args)
            elif step == "report":
                key, model, unit, remaining, limit, seconds = args
                window = Window(unit, remaining=remaining, limit=limit, resets_at=self.clock.now + seconds, unit=unit)
                self.pool.reported(KEY[key], model, [window])
            elif step == "use":
                self.pool.record_usage(KEY[args[0]], args[1], 0.0, input_tokens=args[2])
            elif step == "pass":
                await self.pass_time(args[0])
            await self.settled()
        if self.state is not None:
            await self.state.aclose()
        return [seen for step in self.steps for seen in step]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_both_pass_over_a_key_over_its_quota_window_and_name_the_earliest_reset_alike(strategy, redis_where):
    alone = WindowRun(strategy, None)
    assert await WindowRun(strategy, redis_where).play(WINDOW_SCRIPT) == await alone.play(WINDOW_SCRIPT)
    steps = [[name for name, *_ in step] for step in alone.steps]
    assert "a" not in steps[2] and "a" in steps[3]  # passed over for m2 too (its group), still serving others
    assert "b" not in steps[5] and "b" in steps[6]  # too little left for 400, enough for 100
    assert "a" in steps[8]  # back after its reset
    assert alone.steps[13][0] == ("b", 10, False, [("a", 16), ("b", 10), ("c", 14), ("d", 12)], 10, False)
    assert alone.steps[2][0][3] == [("a", 5)]  # (each pick says which keys it passed over, until when)
    assert "b" in steps[15]
    assert alone.steps[16][-1][1] > 0 and all(s[1] == 0 for s in alone.steps[16][:-1])  # the 13th waits
    assert "c" not in steps[21] and "c" in steps[22]


# A quota group and a conversation whose names hold "|" and ",": the pick script gets its few arguments joined by "|"
# (rewrite/state/redis/scripts.py), a name last in its argument, read whole.
ODD_NAMES_SCRIPT: list[tuple] = [
    ("pick", 2, "m|x,1", 100),
    ("report", "a", "m|x,1", "requests", 0, 50, 5),  # a's window of m|x,1 is used up for 5 s
    ("pick", 4, "m|x,1", 100),  # a is passed over
    ("pick", 2, "m", 100),  # not for another model
]


@pytest.mark.parametrize("strategy", ["round-robin", "least-used"])
async def test_a_quota_group_that_holds_the_arguments_separators_is_read_whole_alike(strategy, redis_where):
    alone = WindowRun(strategy, None)
    assert await WindowRun(strategy, redis_where).play(ODD_NAMES_SCRIPT) == await alone.play(ODD_NAMES_SCRIPT)
    steps = [[name for name, *_ in step] for step in alone.steps]
    assert "a" not in steps[2] and alone.steps[2][0][3] == [("a", 5)] and "a" in steps[3]


@pytest.mark.parametrize("strategy", ["round-robin", "least-used"])
async def test_a_conversation_whose_ids_hold_the_arguments_separators_stays_on_its_key_alike(strategy, redis_where):
    odd = [("ask", "c|1,2"), ("ask", "c|2,2"), ("ask", "c|1,2"), ("ask", "c|2,2")]
    seen = await AffinityRun(strategy, None).play(odd)
    assert await AffinityRun(strategy, redis_where).play(odd) == seen
    assert seen[2][1] == seen[0][1] and seen[2][4] == "bound" and seen[3][1] == seen[1][1] and seen[3][4] == "bound"


# ------------------------------------------------------------------------------------------------------------------
# Conversation affinity (rewrite/pool/affinity.py): the same bound keys, moves and placements.

def affinity(conv: str, depth: int = 10, hard: bool = False, ttl: float = 60.0, holder: str | None = None
             ) -> Affinity:
    session = f"s:{conv}"
    pin = (f"p:{conv}",) if hard else ()
    return Affinity(lookup=(*pin, f"l:{conv}:{depth}", session), bind=(session, f"l:{conv}:{depth}"), name=session,
                    ttl=ttl, depth=depth, hard=hard, session=session,
                    holder=list(KEY).index(holder) if holder is not None else None)


# (step, arguments): "ask" conversation [options]: a pick for its next turn (options: avoid key, patient, hard,
# depth, ttl, hold: its lease kept), bound to the key that serves it when that goes at once; "name" alias key: the
# conversation bound to `key` is called `alias` from then on; "fail" conversation: its key failed it (unbind);
# "live": each key's live conversations; "pick", "rest", "pass", "release", "reject": as above.
AFFINITY_SCRIPT: list[tuple] = [
    ("ask", "c1"), ("ask", "c2"), ("ask", "c3"), ("ask", "c4"),  # new: one on each key
    ("live",),
    ("ask", "c1"), ("ask", "c2"), ("ask", "c3"), ("ask", "c4"),  # each stays on its key
    ("pick", 3),  # one-shot calls: the strategy alone
    ("name", "ka", "a"), ("name", "kb", "b"), ("name", "kc", "c"), ("name", "kd", "d"),
    ("rest", "a", 30), ("ask", "ka"), ("ask", "ka"),  # resting: moved, and bound to the key that served
    ("pass", 31), ("ask", "ka"),  # a is back: still where it was moved
    ("live",),
    ("ask", "kb", {"hold": True}),  # b (max_concurrent 1) leased
    ("ask", "kb"),  # patient: waits for b
    ("ask", "kb", {"patient": False}),  # past its wait budget: moved
    ("release",),
    ("ask", "kc", {"avoid": "c"}),  # c just failed this conversation: moved
    ("fail", "kc"), ("ask", "kc"),  # its binding dropped where it failed: placed again
    ("ask", "pin", {"hard": True}), ("name", "kp", "*pin"),
    ("rest", "*pin", 20), ("ask", "pin", {"hard": True}),  # a pin waits for its resting key
    ("ask", "pin"),  # not a pin: moved
    ("pass", 21),
    ("ask", "brief", {"ttl": 5}), ("pass", 6), ("ask", "brief"),  # expired: the strategy places it anew
    ("ask", "kd", {"depth": 30}), ("ask", "kd", {"depth": 4}),  # its session's history shrank: a compaction
    ("reject", "*kb"), ("ask", "kb"),  # out: moved
    ("ask", "n1"), ("ask", "n2"), ("ask", "n3"), ("ask", "n4"),
    ("live",),
]


class AffinityRun(WindowRun):
    def __init__(self, strategy: str, where: fakeredis.FakeServer | str | None, keys: list = KEYS) -> None:
        super().__init__(strategy, where)
        if self.state is not None:
            self.state.pools.clear()
        self.pool = KeyPool(keys, strategy, name="parity", clock=self.clock, wall=self.clock)
        if self.state is not None:
            self.pool.shared = self.state.pool(self.pool)
        self.alias: dict[str, str] = {}
        self.on: dict[str, str] = {}  # conversation -> the key it was bound to

    async def ask(self, conv: str, options: dict) -> None:
        conv = self.alias.get(conv, conv)
        a = affinity(conv, options.get("depth", 10), options.get("hard", False), options.get("ttl", 60.0),
                     options.get("holder"))
        pick = await self.pool.take(KEY.get(options.get("avoid", "")), "m", affinity=a,
                                    patient=options.get("patient", True))
        wait = pick.wait if math.isinf(pick.wait) else round(pick.wait)
        self.seen.append((conv, NAME[pick.key], wait, pick.busy, pick.why, NAME[pick.bound], pick.bind_as))
        if pick.key is None or pick.wait > 0:
            pick.drop()
            return
        lease = self.pool.lease(pick.key, "m", pick.held)
        self.pool.bind(pick.key, a, pick.bind_as)
        self.on[conv] = NAME[pick.key]
        if options.get("hold"):
            self.held.append(lease)
        else:
            lease.release()

    async def live(self) -> None:
        if self.pool.shared is not None:
            await self.pool.shared.books.bindings.observe(self.clock.now)
        self.seen.append(tuple(self.pool.decisions.books.live(s) for s in self.pool.states))

    def key_of(self, name: str) -> str:
        """A key by name, or `*conversation`: the key it is bound to."""
        return self.on[self.alias.get(name[1:], name[1:])] if name.startswith("*") else name

    async def play(self, script: list[tuple]) -> list[tuple]:
        for step, *args in script:
            if step == "ask":
                await self.ask(args[0], args[1] if len(args) > 1 else {})
            elif step == "name":
                key = self.key_of(args[1])
                self.alias[args[0]] = next(c for c, k in self.on.items() if k == key and c not in self.alias.values())
            elif step == "fail":
                conv = self.alias.get(args[0], args[0])
                self.pool.unbind(KEY[self.on[conv]], affinity(conv))
            elif step == "live":
                await self.live()
            elif step == "rest":
                self.pool.rests.bench(KEY[self.key_of(args[0])], args[1], why="parity")
            elif step == "pick":
                await self.pick(*args)
            elif step == "release":
                for lease in self.held:
                    lease.release()
                self.held = []
            elif step == "pass":
                await self.pass_time(args[0])
            elif step == "reject":
                self.pool.rests.reject(KEY[self.key_of(args[0])], "parity")
            await self.settled()
        if self.state is not None:
            await self.state.aclose()
        return self.seen


def asked(seen: list[tuple], conv: str) -> list[tuple]:
    return [s[1:] for s in seen if s[0] == conv]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_both_keep_a_conversation_on_its_key_and_move_and_place_it_alike(strategy, redis_where):
    alone = await AffinityRun(strategy, None).play(AFFINITY_SCRIPT)
    assert await AffinityRun(strategy, redis_where).play(AFFINITY_SCRIPT) == alone
    first = [s for s in alone[:4]]
    assert sorted(s[1] for s in first) == ["a", "b", "c", "d"] and {s[4] for s in first} == {"new"}
    assert alone[4] == (1, 1, 1, 1)
    assert [s[1:5] for s in alone[5:9]] == [(s[1], 0, False, "bound") for s in first]
    ka = asked(alone, next(s[0] for s in first if s[1] == "a"))
    moved_to = ka[2][0]
    assert ka[2][3:5] == ("moved", "a") and moved_to != "a"  # (its key, then why, the bound key, its name)
    assert ka[3][0] == moved_to and ka[3][3] == "bound" and ka[4][0] == moved_to  # re-bound where it was served
    kb = asked(alone, next(s[0] for s in first if s[1] == "b"))
    assert kb[2][:5] == ("b", 0, False, "bound", None)  # (held)
    assert kb[3][:5] == (None, 0, True, "bound", "b")  # waits for b
    assert kb[4][3:5] == ("moved", "b") and kb[4][0] not in ("b", None)
    kc = asked(alone, next(s[0] for s in first if s[1] == "c"))
    assert kc[2][3:5] == ("moved", "c") and kc[2][0] != "c"
    assert kc[3][3:5] == ("new", None)  # unbound after it failed
    pin = asked(alone, "pin")
    assert pin[1][1] == 20 and pin[1][3] == "bound" and pin[1][0] == pin[0][0]  # waits for its resting key
    assert pin[2][3] == "moved" and pin[2][0] != pin[0][0]
    brief = asked(alone, "brief")
    assert brief[0][3] == "new" and brief[1][3] == "new"
    kd = asked(alone, next(s[0] for s in first if s[1] == "d"))
    assert kd[-2][3] == "bound" and kd[-1][3] == "compaction" and kd[-1][5] == "s:" + kd[0][5][2:]
    assert kb[-1][3:5] == ("moved", kb[-2][0]) and kb[-1][0] != kb[-2][0]  # its key is out


# A pin whose holder Rotator recorded (rewrite/pool/affinity.py `Affinity.holder`): its key whatever the bindings say.
HOLDER_SCRIPT: list[tuple] = [
    ("ask", "h", {"hard": True, "holder": "c"}),  # no binding (lost): the holder
    ("ask", "h", {"hard": True}),  # bound there once served
    ("ask", "h", {"hard": True, "holder": "a"}),  # its bindings name c: the holder
    ("rest", "a", 20), ("ask", "h", {"hard": True, "holder": "a"}),  # waited for while it rests, as a pin's key is
    ("ask", "h", {"hard": True, "holder": "a", "avoid": "a"}),  # it just failed: moved
]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_both_send_a_pin_to_its_recorded_holder_whatever_the_bindings_say_alike(strategy, redis_where):
    alone = await AffinityRun(strategy, None).play(HOLDER_SCRIPT)
    assert await AffinityRun(strategy, redis_where).play(HOLDER_SCRIPT) == alone
    assert [s[1:6] for s in alone] == [("c", 0, False, "bound", None), ("c", 0, False, "bound", None),
                                       ("a", 0, False, "bound", None), ("a", 20, False, "bound", "a"),
                                       (alone[-1][1], 0, False, "moved", "a")]
    assert alone[-1][1] != "a" and {s[6] for s in alone} == {"s:h"}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_both_give_a_call_the_key_it_prefers_while_that_key_can_serve_alike(strategy, redis_where):
    """A race's second attempt prefers the first's key (rewrite/pool/affinity.py `preferring`), with no conversation
    of its own: that key while it is free, else another."""

    async def play(where) -> list[tuple]:
        run, seen = AffinityRun(strategy, where), []
        for prefer, step in (("a", None), ("b", "hold"), ("b", None), ("c", "rest"), ("c", None)):
            if step == "rest":
                run.pool.rests.bench(KEY["c"], 20, why="parity")
                await run.settled()
            pick = await run.pool.take(None, "m", affinity=preferring(None, list(KEY).index(prefer)), patient=False)
            seen.append((prefer, NAME[pick.key], pick.why))
            if step == "hold":  # (b's max_concurrent is 1: it is taken until the end)
                run.held.append(run.pool.lease(pick.key, "m", pick.held))
            elif pick.key is not None:
                run.pool.lease(pick.key, "m", pick.held).release()
            await run.settled()
        if run.state is not None:
            await run.state.aclose()
        return seen

    alone = await play(None)
    shared = await play(redis_where)
    assert shared == alone, (alone, shared)
    assert [s[1:] for s in alone[:2]] == [("a", "bound"), ("b", "bound")]
    assert alone[2][1] not in ("b", None) and alone[4][1] not in ("c", None)  # at its cap, resting: another key


THREE = [KeyConfig(key=A), KeyConfig(key=B), KeyConfig(key=C)]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_six_new_conversations_spread_two_on_each_of_three_keys_alike(strategy, redis_where):
    script: list[tuple] = [*(("ask", f"n{i}") for i in range(6)), ("live",), *(("ask", f"n{i}") for i in range(6))]
    alone = await AffinityRun(strategy, None, THREE).play(script)
    assert await AffinityRun(strategy, redis_where, THREE).play(script) == alone
    assert alone[6] == (2, 2, 2)
    assert [s[1] for s in alone[7:]] == [s[1] for s in alone[:6]]  # each turn after the first on its key


# A pin an answer made (a Gemini cache made through the pool), bound with the answer's own lifetime; the calls on its
# state alone (state_affinity) find it, wait for its resting key, and drop it when they delete it.
CACHE = Pin(PIN_CACHED_CONTENT, "cachedContents/c1")
MADE = Affinity((), (), "p:client:cachedContent:cachedContents/c1", 30.0, hard=True, said=PIN_CACHED_CONTENT)


async def cache_steps(run: AffinityRun) -> list[tuple]:
    pool, seen = run.pool, run.seen

    async def ask(affinity: Affinity | None) -> str | None:
        pick = await pool.take(None, "m", affinity=affinity)
        seen.append((NAME[pick.key], round(pick.wait), pick.why, NAME[pick.bound]))
        if pick.key is None or pick.wait > 0:
            pick.drop()
            return None
        pool.lease(pick.key, "m", pick.held).release()
        if affinity is not None and affinity.drops:
            pool.unbind(pick.key, affinity)
        elif affinity is not None:
            pool.bind(pick.key, affinity, pick.bind_as or affinity.name)
        await run.settled()
        return pick.key

    async def make() -> None:
        key = await ask(None)
        assert key is not None
        pool.bind(key, MADE, MADE.name, (MADE.name,))
        await run.settled()

    read, delete = state_affinity("client", CACHE, False), state_affinity("client", CACHE, True)
    await make()
    await ask(read)  # on the key that made it
    pool.rests.bench(KEY[seen[0][0]], 20, why="parity")
    await run.settled()
    await ask(read)  # waits for its resting key
    await run.pass_time(21)
    await ask(read)
    await run.pass_time(10)  # past its lifetime: unbound, placed as any other
    await ask(read)
    await make()
    await ask(delete)  # on its key, and unbound
    await ask(read)
    if run.state is not None:
        await run.state.aclose()
    return seen


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_both_keep_a_pin_an_answer_made_for_its_lifetime_and_drop_it_when_deleted_alike(strategy, redis_where):
    alone = await cache_steps(AffinityRun(strategy, None, THREE))
    assert await cache_steps(AffinityRun(strategy, redis_where, THREE)) == alone
    made, read, waiting, back, expired, made_again, deleted, after = alone
    assert made[2:] == ("", None) and read == (made[0], 0, "bound", None)  # (the bound key, named when waited for)
    assert waiting == (made[0], 20, "bound", made[0]) and back == read
    assert expired[2] == "new"
    assert deleted == (made_again[0], 0, "bound", None) and after[2] == "new"
