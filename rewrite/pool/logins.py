"""The subscription logins a login provider has served (rewrite/providers/login.py): never a pool, one client's own
credential each, named by its fingerprint and shown masked (the token itself is never kept).

Per login: the plan windows its answers last reported (protocols/windows.py), whether it is known exhausted and until
when (for the whole login, or for one model), and what it served. A login known exhausted is left for the next
target of a `from:` route until then, without asking it again; the vendor's next answer that says the plan serves
again ends it sooner. An exhaustion longer than the provider's `recheck_after` is re-checked as a pooled key's long
rest is (rewrite/pool/recheck.py): once that long has passed, the login's own next request is let through, and its
answer ends the exhaustion or renews it, the wait before the next re-check doubled.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from protocols.windows import Window, WindowStatus, exhausted_until, iso, merged
from rewrite.pool.key_state import WHOLE_KEY, fingerprint, mask
from rewrite.pool.recheck import JITTER
from rewrite.pool.report import windows_words

logger = logging.getLogger("rotator")

MAX_LOGINS = 256  # per provider; past it, the login seen longest ago is forgotten
SAME_RESET = 60.0  # seconds: resets this close are one (an answer's windows and its error name the same one)


@dataclass
class LoginState:
    id: str  # fingerprint of the credential
    masked: str
    windows: tuple[Window, ...] = ()
    exhausted: dict[str, tuple[float, str]] = field(default_factory=dict)  # scope -> (until, epoch; why)
    facts: dict = field(default_factory=dict)  # what its client's look-ups reported beside windows (reset credits)
    requests: int = 0
    tokens: int = 0
    last_seen: float = 0.0
    rechecks: dict[str, tuple[float, float]] = field(default_factory=dict)  # scope -> (next re-check, epoch; wait)
    checking: tuple[str, ...] = ()  # the scopes its re-check in flight tests

    def answered(self, tokens: int) -> None:
        """It served an answer of `tokens` tokens (input, output, reasoning and cache tokens, each once)."""
        self.requests += 1
        self.tokens += max(0, int(tokens))

    def record(self, windows: tuple[Window, ...], model: str, now: float) -> dict:
        """What a flow records of the login: its fingerprint, masked credential, the windows this request's answers
        reported, and whether it is exhausted for the model asked."""
        record: dict = {"id": self.id, "credential": self.masked, "windows": [w.as_json() for w in windows]}
        spent = self.exhausted_for(model, now)
        if spent is not None:
            record["exhausted_until"] = iso(spent[0]) if spent[0] != math.inf else None
            record["why"] = spent[1]
        return record

    def exhausted_for(self, model: str, now: float) -> tuple[float, str] | None:
        """(until, why) when the login is known exhausted for `model` now; None when it may be asked."""
        spent = [self.exhausted[s] for s in (WHOLE_KEY, model) if s in self.exhausted and self.exhausted[s][0] > now]
        return max(spent) if spent else None


class LoginBook:
    def __init__(self, provider: str, wall=time.time, rng=random.random) -> None:
        self.provider = provider
        self._wall, self._rng = wall, rng
        self._logins: OrderedDict[str, LoginState] = OrderedDict()
        self.recheck_after = 0.0  # an exhaustion longer than this is re-checked after it (0: never; the config's)

    def __len__(self) -> int:
        return len(self._logins)

    def login(self, token: str) -> LoginState:
        """The state of the login whose credential is `token` (made on first sight)."""
        fp = fingerprint(token)
        state = self._logins.get(fp)
        if state is None:
            state = self._logins[fp] = LoginState(fp, mask(token))
            while len(self._logins) > MAX_LOGINS:
                self._logins.popitem(last=False)
        self._logins.move_to_end(fp)
        state.last_seen = self._wall()
        return state

    def reported(self, state: LoginState, windows: tuple[Window, ...]) -> None:
        """An answer's plan windows: kept; one refused now makes the login exhausted until it resets (for its model
        alone, when the window is a model's), and one that names the window that limits now as served ends an
        exhaustion sooner."""
        if not windows:
            return
        now = self._wall()
        state.windows = merged(state.windows, windows)
        spent = [w for w in windows if w.exhausted(now)]
        for scope in dict.fromkeys(w.model or WHOLE_KEY for w in spent):
            its = [w for w in spent if (w.model or WHOLE_KEY) == scope]
            self.exhaust(state, exhausted_until(its, now) or math.inf, scope,
                         f"the plan's {its[0].name} window is used up")
        for w in windows:  # (a model's quota a look-up says serves again)
            if w.model and w.status is WindowStatus.ALLOWED and w.model in state.exhausted:
                del state.exhausted[w.model]
        if not spent and any(w.binding and w.status is not None for w in windows) and WHOLE_KEY in state.exhausted:
            del state.exhausted[WHOLE_KEY]
            logger.info("rotator: %s login %s is served again", self.provider, state.masked)

    def held_back(self, state: LoginState, model: str) -> tuple[float, str] | None:
        """(until, why) while the login is known exhausted for `model` and is not asked; None when it may be asked:
        not exhausted, or its re-check is due (claimed: the next one moves to twice the last wait, jittered, and
        every other request keeps leaving the login alone meanwhile)."""
        now = self._wall()
        spent = state.exhausted_for(model, now)
        if spent is None:
            return None
        scopes = [s for s in (WHOLE_KEY, model) if s in state.exhausted and state.exhausted[s][0] > now]
        if not all(s in state.rechecks and state.rechecks[s][0] <= now for s in scopes):
            return spent
        for s in scopes:
            wait = state.rechecks[s][1] * 2
            state.rechecks[s] = (now + wait * (1 + JITTER * (2 * self._rng() - 1)), wait)
        state.checking = tuple(scopes)
        logger.info("rotator: %s login %s: re-check of its exhaustion (%s)", self.provider, state.masked, spent[1])
        return None

    def served(self, state: LoginState, model: str) -> None:
        """The login served `model`: an exhaustion its re-check tested ends now."""
        tested, state.checking = [s for s in state.checking if s in (WHOLE_KEY, model)], ()
        for scope in tested:
            if state.exhausted.pop(scope, None) is not None:
                state.rechecks.pop(scope, None)
                logger.info("rotator: %s login %s is served again%s: a re-check ended its exhaustion", self.provider,
                            state.masked, f" for {scope}" if scope else "")

    def looked_up(self, state: LoginState, windows: tuple[Window, ...], facts: dict) -> None:
        """What its client's own look-up of its plan reported (protocols.windows.Lookup): its windows, as an
        answer's are, and the facts shown beside them."""
        state.facts.update(facts)
        self.reported(state, windows)

    def exhaust(self, state: LoginState, until: float, scope: str, why: str) -> None:
        """The login is used up (for `scope`: a model, or WHOLE_KEY) until `until` (epoch); said once. Its re-check
        refused: renewed from this answer, shorter or longer."""
        current = state.exhausted.get(scope)
        now = self._wall()
        renewed = scope in state.checking
        state.checking = tuple(s for s in state.checking if s != scope)
        if current is not None and current[0] >= until - SAME_RESET and not renewed:
            return
        state.exhausted[scope] = (until, why)
        if current is None or current[0] <= now:
            state.rechecks.pop(scope, None)
        if self.recheck_after > 0 and until - now > self.recheck_after and scope not in state.rechecks:
            state.rechecks[scope] = (now + self.recheck_after, self.recheck_after)
        shown = "until its reset" if until == math.inf else f"until {iso(until)} (in {round(until - now)} s)"
        logger.info("rotator: %s login %s exhausted%s %s: %s", self.provider, state.masked,
                    f" for {scope}" if scope else "", shown, why)

    def describe(self) -> list[dict]:
        """Each login as JSON (for `rotator.pools`, the status page and the metrics): masked, never the token."""
        now = self._wall()
        out = []
        for s in reversed(self._logins.values()):
            exhausted = [{"model": scope or None, "until": iso(until) if until != math.inf else None, "why": why,
                          **({"recheck": iso(s.rechecks[scope][0])} if _rechecked(s, scope, until) else {})}
                         for scope, (until, why) in sorted(s.exhausted.items()) if until > now]
            out.append({"login": s.masked, "id": s.id, "windows": [w.as_json() for w in s.windows],
                        "exhausted": exhausted, **s.facts, "requests": s.requests, "tokens": s.tokens,
                        "last_seen": iso(s.last_seen), "text": text(s, now)})
        return out


def plan_text(record: dict) -> str:
    """What a flow recorded of its login (`LoginState.record`, a saved flow's too) in words: "plan: five_hour 12%
    used, resets … · exhausted until …: why"."""
    parts = windows_words(record.get("windows") or [])
    if record.get("why"):
        parts.append(f"exhausted until {record.get('exhausted_until') or 'its reset'}: {record['why']}")
    return "plan: " + " · ".join(parts) if parts else ""


def text(state: LoginState, now: float) -> str:
    """One line: the windows' used shares and resets, and "exhausted until …"."""
    parts = windows_words([w.as_json() for w in state.windows])
    for scope, (until, why) in sorted(state.exhausted.items()):
        if until > now:
            when = "until its reset" if until == math.inf else f"until {iso(until)}"
            recheck = f", re-checked at {iso(state.rechecks[scope][0])}" if _rechecked(state, scope, until) else ""
            parts.append(f"exhausted{' for ' + scope if scope else ''} {when} ({why}{recheck})")
    if (credits := state.facts.get("reset_credits")) is not None:
        lapse = credits.get("expires_at") or []
        parts.append(f"reset credits: {credits.get('available', 0)} available"
                     + (f", the first lapsing {lapse[0]}" if lapse else "") + " (never redeemed by Rotator)")
    return "; ".join(parts) or "no plan windows reported yet"


def login_table(provider: dict) -> str:
    """Text for the console: a login provider's logins, one line each (`provider`: {"provider", "logins"})."""
    lines = [f"{provider['provider']} (subscription logins, each the client's own, never pooled): "
             f"{len(provider['logins'])} seen"]
    lines += [f"  {x['login']}  requests {x['requests']}  tokens {x['tokens']}  {x['text']}"
              for x in provider["logins"]]
    return "\n".join(lines)


def _rechecked(state: LoginState, scope: str, until: float) -> bool:
    """Its exhaustion of `scope` is re-checked before it ends."""
    return scope in state.rechecks and state.rechecks[scope][0] < until
