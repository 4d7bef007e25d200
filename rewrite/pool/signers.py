"""The AWS credentials a signing provider's clients signed their own requests with (no pool configured: the
requests go as they came, rewrite/plugins/payers/signed.py), one entry per access key id and region, since AWS
throttles an account per region: what they served, how often they were throttled and when last, and until when one
is cooling down after a throttle (a route's next target then serves its requests without asking it). Named by the
access key id masked (never the secret, which Rotator never sees) with its region; shown on the status page beside
the pools."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from protocols.windows import iso
from rewrite.pool.key_state import mask

logger = logging.getLogger("rotator")

MAX_SIGNERS = 256  # per provider; past it, the one seen longest ago is forgotten


@dataclass
class SignerState:
    access_key_id: str  # (an identifier AWS shows in its own errors, not a secret; shown masked all the same)
    region: str
    requests: int = 0  # attempts sent
    served: int = 0
    throttled: int = 0
    failed: int = 0  # attempts that failed otherwise (a stall, a cut before the first token, a 5xx)
    tokens: int = 0
    last_throttled: float = 0.0  # epoch
    cooling_until: float = 0.0  # epoch: throttled, not asked while a route's next target can serve

    @property
    def shown(self) -> str:
        return f"{mask(self.access_key_id)} {self.region}"


class SignerBook:
    def __init__(self, provider: str, wall=time.time) -> None:
        self.provider = provider
        self._wall = wall
        self._signers: OrderedDict[tuple[str, str], SignerState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._signers)

    def signer(self, access_key_id: str, region: str) -> SignerState:
        """The state of one access key id in one region (made on first sight)."""
        at = (access_key_id, region)
        state = self._signers.get(at)
        if state is None:
            state = self._signers[at] = SignerState(access_key_id, region)
            while len(self._signers) > MAX_SIGNERS:
                self._signers.popitem(last=False)
        self._signers.move_to_end(at)
        return state

    def ended(self, state: SignerState, throttled: bool, failed: bool, cool: float | None = None) -> None:
        """One attempt ended: served, throttled (cooling down for `cool` seconds, if given) or failed."""
        state.requests += 1
        if throttled:
            now = self._wall()
            state.throttled += 1
            state.last_throttled = now
            if cool:
                state.cooling_until = max(state.cooling_until, now + cool)
            logger.info("rotator: %s: %s throttled (%d so far)", self.provider, state.shown, state.throttled)
        elif failed:
            state.failed += 1
        else:
            state.served += 1
            state.cooling_until = 0.0

    def cooling(self, state: SignerState) -> float:
        """Seconds it is still cooling down after a throttle (0: it may be asked)."""
        return max(0.0, state.cooling_until - self._wall())

    def describe(self) -> list[dict]:
        """Each credential and region as JSON (the status page, `rotator.pools`, the metrics): masked."""
        now = self._wall()
        return [{"signer": s.shown, "region": s.region, "requests": s.requests, "served": s.served,
                 "throttled": s.throttled, "failed": s.failed, "tokens": s.tokens,
                 "last_throttled": iso(s.last_throttled) if s.last_throttled else None,
                 "cooling_until": iso(s.cooling_until) if s.cooling_until > now else None, "text": text(s, now)}
                for s in reversed(self._signers.values())]


def text(state: SignerState, now: float) -> str:
    """One line: requests, throttles and when last, cooling down until when."""
    parts = [f"requests {state.requests}", f"served {state.served}", f"throttled {state.throttled}"]
    if state.last_throttled:
        parts.append(f"last throttled {iso(state.last_throttled)}")
    if state.cooling_until > now:
        parts.append(f"cooling down until {iso(state.cooling_until)}")
    return ", ".join(parts)
