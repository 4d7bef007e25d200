"""Who pays on Vertex AI (rewrite/providers/vertex.py), and where: the region of each attempt, and with service
accounts (`keys`), the account.

- Regions: the first attempt goes to the region the client called (another provider's request: the first of
  `regions`, else the global endpoint); an attempt that failed moves the next one to the next of `regions`, in
  order (Vertex's 429 RESOURCE_EXHAUSTED is its region's, and names no delay). Without `regions`, every attempt
  goes where the client called.
- Without keys, the client's own token (or express key) goes with it (`OwnRegions`).
- With service accounts (`Accounts`): the pool picks the account (rests, windows, affinity, usage per account, as
  for any pool); its token, minted by Rotator (rewrite/plugins/payers/google_tokens.py), replaces the client's
  credential, and its project the path's. A 401 has the token minted again and the attempt retried before the
  account counts as refused.
"""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import urlsplit

import httpx

from protocols.platforms import vertex
from protocols.platforms.google_auth import ServiceAccount, ServiceAccountError
from rewrite.intake.clients import HeldCredential
from rewrite.lifecycle.payer import NO_CREDENTIAL, Ask, Flow, Outbound, Ticket
from rewrite.plugins.payers.google_tokens import Tokens
from rewrite.plugins.payers.keys import OwnCredential, PooledKey
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure, KeyRest
from rewrite.pool import mask
from rewrite.pool.keypool import Pick
from rewrite.providers import Provider
from rewrite.upstream.client import Sender

logger = logging.getLogger("rotator")

REFUSED_TOKEN = 401


class Regions:
    """The regions one target's attempts go to, in order, from the first."""

    def __init__(self, first: str | None, configured: tuple[str, ...]) -> None:
        first = first or (configured[0] if configured else vertex.GLOBAL)
        self.order = [first, *(r for r in configured if r != first)]
        self.at = 0

    @property
    def region(self) -> str:
        return self.order[self.at]

    def failed(self, failure: Failure | None) -> None:
        """An attempt failed: the next goes to the next region (a refused token excepted: minted again there)."""
        if failure is not None and failure.status != REFUSED_TOKEN:
            self.at = (self.at + 1) % len(self.order)


def placed(url: str, project: str | None, region: str, fixed: bool = False) -> str:
    """A Vertex call's URL for `project` (None: the path's own) in `region`: that region's host (`fixed`: the
    configured base_url's, kept) and location. A call that names no project (express mode) stays where it is."""
    parts = urlsplit(url)
    call = vertex.call_of(parts.path)
    if call is None or (project is None and (call.project is None or call.location == region)):
        return url  # (where the client called)
    origin = f"{parts.scheme}://{parts.netloc}" if fixed else f"https://{vertex.host_for(region)}"
    return origin + vertex.placed(parts.path, project, region)


class OwnRegions(OwnCredential):
    """The client's own credential, sent to the region each attempt goes to."""

    def __init__(self, provider: Provider, held: HeldCredential | None, regions: Regions) -> None:
        super().__init__(True, held)
        self.provider, self.regions = provider, regions

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        out = super().apply(out, ticket, shown)
        out.url = placed(out.url, None, self.regions.region, bool(self.provider.base_url))
        return out

    async def attempt(self, ask: Ask) -> Flow:
        yield NO_CREDENTIAL  # picked
        failure = yield NO_CREDENTIAL  # the attempt runs
        self.regions.failed(failure)


class Accounts(PooledKey):
    """A pool of service accounts: each attempt's account picked by the pool, its token minted by Rotator."""

    regions: Regions
    tokens: Tokens
    client: Sender

    def setup(self, regions: Regions, tokens: Tokens, client: Sender) -> Accounts:
        self.regions, self.tokens, self.client = regions, tokens, client
        self.token: dict[str, str] = {}  # per account (key id): the token this request's attempts use
        self.refused: set[str] = set()  # accounts whose token was refused once already in this request
        return self

    def account(self, key: str | None) -> ServiceAccount | None:
        account = self.provider.held.get(key or "")
        return account if isinstance(account, ServiceAccount) else None

    async def _pick(self, ask: Ask) -> Pick:
        """The pool's account, with a token; one whose token cannot be minted is rested (an endpoint's refusal puts
        it out, a failure to reach it rests it as a stall), and another is taken."""
        for _ in range(max(1, len(self.pool.keys))):
            pick = await super()._pick(ask)
            account = self.account(pick.key)
            if account is None:
                return pick
            try:
                self.token[account.key_id] = await self.tokens.token(account, self.client,
                                                                     ask.deadline - self.clock.loop.time())
                return pick
            except (ServiceAccountError, httpx.HTTPError, TimeoutError) as e:
                refused = isinstance(e, ServiceAccountError)
                reason = str(e) if refused else f"token endpoint: {type(e).__name__}: {e}"
                logger.warning("rotator: %s %s: no token for service account %s: %s", self.provider.name,
                               self.job_id[:8], account.email, reason)
                rest = KeyRest(f"no token: {reason[:120]}", per_model=False, out=True) if refused else None
                failure = Failure(FailureKind.CONNECT, reason, stalled=not refused, rest=rest)
                self.pool.rests.failed(account.key_id, failure, ask.model)
                pick.drop()
                ask.avoid = account.key_id
        return Pick(None)

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        out = self.depart(out)
        account = self.account(ticket.key)
        token = self.token.get(ticket.key or "")
        if account is None or token is None:
            return out
        out.headers, out.query = self.provider.credential.apply(out.headers, out.query, mask(token) if shown
                                                                else token)
        out.url = placed(out.url, account.project, self.regions.region, bool(self.provider.base_url))
        return out

    def _ended(self, key: str, failure: Failure | None, model: str) -> None:
        """A first 401 of an account is its token's: minted again, and the account not refused for it."""
        account = self.account(key)
        if (failure is not None and failure.status == REFUSED_TOKEN and account is not None
                and account.key_id not in self.refused):
            self.refused.add(account.key_id)
            self.tokens.refused(account, self.token.get(account.key_id, ""))
            failure = dataclasses.replace(failure, rest=None)
        super()._ended(key, failure, model)
        self.regions.failed(failure)


def vertex_payer(provider: Provider, called: bool, called_host: str, held: HeldCredential | None,
                 pooled: PooledKey | None, tokens: Tokens, client: Sender):
    """Who pays for a Vertex target: its service accounts (`pooled`, made as any pool's), else the client's own
    credential where it called, else (another provider's client) nobody."""
    regions = Regions(vertex.region_of(called_host) if called else None, provider.regions)
    if isinstance(pooled, Accounts):
        return pooled.setup(regions, tokens, client)
    if called:
        return OwnRegions(provider, held, regions)
    return None
