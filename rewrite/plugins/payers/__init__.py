"""Who pays for each target of a request (rewrite/lifecycle/payer.py): the plug-in that answers the `paying` event
with a pooled key (`keys.py`), the client's own subscription login (`login.py`), a cloud platform's (by its
`payer`: `azure.py`, an Azure key at its own resource and deployment; `vertex.py`, a Vertex region, and a service
account whose tokens Rotator mints; `sigv4`, Bedrock's: each attempt of a pool signed by Rotator in its key's region,
`signing.py`, else a request its client signed itself, `signed.py`) or the client's own credential (`keys.py` too).
Every question of "is this a login" is asked here and answered by the payer it makes."""

from __future__ import annotations

import time

from protocols import sigv4
from protocols.windows import Window, merged
from rewrite.lifecycle.events import Arrival, Finished, Paying
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.payer import Payer
from rewrite.lifecycle.views import RequestView
from rewrite.plugins.payers.azure import AzureKey
from rewrite.plugins.payers.google_tokens import Tokens
from rewrite.plugins.payers.keys import OwnCredential, PooledKey
from rewrite.plugins.payers.login import PlanLogin
from rewrite.plugins.payers.platform import Keyless
from rewrite.plugins.payers.signed import ClientSigned
from rewrite.plugins.payers.signing import SignedKey
from rewrite.plugins.payers.vertex import Accounts, vertex_payer
from rewrite.pool.decisions import Prefetch
from rewrite.pool.logins import LoginState
from rewrite.pool.prefetch import model_in_body


class WhoPays(Plugin):
    name = "who-pays"

    def configure(self, setting) -> None:
        self.prefetched: dict[str, Prefetch] = getattr(self, "prefetched", {})
        self.tokens: Tokens = getattr(self, "tokens", None) or Tokens()  # (a service account's live past a reload)

    def arrived(self, arrival: Arrival) -> None:
        """Start the first attempt's shared pick now, when the pool shares its state and the model can be told from
        the path or the body's ends (rewrite/pool/prefetch.py); not when a plug-in holds it for the whole body."""
        called, proto, router = arrival.called, arrival.protocol, self.setting.router
        if called.pool is None or called.pool.shared is None or router is None:
            return
        asked = proto.model(arrival.path, {}) if proto.model_in_path else model_in_body(arrival.body)
        if not asked:
            return
        target = router.routes.targets_for(asked, called.name)[0]
        provider = router.provider_named(target.provider)
        if provider is None or provider.pool is None:
            return
        model = target.model_for(asked)
        if arrival.held(provider, model):
            return
        prefetch = provider.pool.prefetch(model, arrival.tokens)
        if prefetch is not None:
            self.prefetched[arrival.request_id] = prefetch

    def forgotten(self, request_id: str) -> None:
        prefetch = self.prefetched.pop(request_id, None)
        if prefetch is not None:  # (ended before its first attempt)
            prefetch.drop()

    def engage(self, ctx: RequestView) -> Part | None:
        return Paid(self, ctx)


class Paid(Part):
    """One request's payers."""

    def __init__(self, plugin: WhoPays, ctx: RequestView) -> None:
        self.plugin, self.ctx = plugin, ctx
        req, job = ctx.req, ctx.job
        called = job.route.provider
        # The subscription login the client called, if it did (a WebSocket upgrade, `req` None, carries none); what
        # another target is not sent of the client's request (its wire's: a login's, a platform's).
        self.login = called.login if req is not None else None
        self.leaving = called.wire if req is not None else None
        self.state: LoginState | None = None
        self.plans: list[PlanLogin] = []  # the payers made of the client's login (what their answers reported)
        if self.login is not None and called.logins is not None and job.credential is not None:
            token = self.login.token(job.credential.headers)
            if token:
                self.state = called.logins.login(token)

    def finished(self, e: Finished) -> None:
        """The client's own login on the flow: masked, named by its fingerprint, with its plan's windows as this
        request's answers reported them."""
        if self.state is not None:
            job = e.job
            windows: tuple[Window, ...] = ()
            for plan in self.plans:
                windows = merged(windows, plan.windows)
            job.records["login"] = self.state.record(windows, job.model or "", time.time())

    def paying(self, e: Paying) -> Payer:
        ctx, provider = self.ctx, e.provider
        req, job = ctx.req, ctx.job
        login, state = self.login, self.state
        if e.called and login is not None:
            sealed = req is not None and req.proto is not None and login.is_signed(req.body) and e.model == req.asked
            if state is not None and provider.logins is not None:
                plan = PlanLogin(login, job.credential, state, provider.logins, sealed)
                self.plans.append(plan)
                return plan
            own = OwnCredential(True, job.credential)
            own.sealed, own.hedged_unasked = sealed, False
            return own
        if provider.platform is not None:
            return self._platform(e, PLATFORM_POOLS.get(provider.platform.payer, PooledKey))
        if provider.pool is not None:
            return self._pooled(PooledKey, e)
        return OwnCredential(e.called, job.credential, self.leaving)

    def _pooled(self, kind: type[PooledKey], e: Paying) -> PooledKey:
        ctx, provider, pool = self.ctx, e.provider, e.provider.pool
        assert pool is not None  # (asked only of a provider with a pool)
        prefetch = self.plugin.prefetched.pop(ctx.job.id, None)
        return kind(provider, pool, e.called, self.leaving, ctx.clock, ctx.streaming.first_token_timeout,
                    ctx.req.proto if ctx.req is not None else None, ctx.job.id, prefetch)

    def _platform(self, e: Paying, kind: type[PooledKey]) -> Payer:
        """A cloud platform's payer (rewrite/providers/platform.py): its pool's kind of key, else the client's own
        credential where it called; for another provider's client, nobody without keys."""
        provider, ctx = e.provider, self.ctx
        pooled = self._pooled(kind, e) if provider.pool is not None else None
        if isinstance(pooled, AzureKey):
            pooled.model = e.model
        payer = provider.platform.payer if provider.platform is not None else ""
        if payer == VERTEX:
            host = ctx.req.host if ctx.req is not None else ""
            made = vertex_payer(provider, e.called, host, ctx.job.credential, pooled, self.plugin.tokens, ctx.client)
        elif payer == SIGV4 and pooled is None:
            made = self._client_signed(e) or (OwnCredential(True, ctx.job.credential) if e.called else None)
        else:
            made = pooled or (OwnCredential(True, ctx.job.credential) if e.called else None)
        return made if made is not None else Keyless(provider)

    def _client_signed(self, e: Paying) -> ClientSigned | None:
        """A request its client signed with AWS SigV4, to the platform it called (rewrite/plugins/payers/signed.py);
        None for another."""
        ctx, provider = self.ctx, e.provider
        if not e.called or provider.signers is None or ctx.req is None:
            return None
        held = ctx.job.credential
        # The headers as the client sent them: the held credential in place of the flow's masked form (a signed
        # `x-amz-security-token` goes once, with its exact bytes).
        sent = held.restore(list(ctx.req.request.headers), "")[0] if held else list(ctx.req.request.headers)
        signature = sigv4.signature(sent)
        return ClientSigned(ctx.job.credential, signature, sent, provider.signers, e.more) if signature else None


VERTEX, SIGV4 = "vertex", "sigv4"  # (Bedrock's payer signs its requests with AWS SigV4)
# The kind of pooled key of each platform (rewrite/providers/platform.py's `payer`).
PLATFORM_POOLS: dict[str, type[PooledKey]] = {"azure": AzureKey, VERTEX: Accounts, SIGV4: SignedKey}
