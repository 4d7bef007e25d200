"""The upstream request of each attempt on one target (`TargetCall`): the client's own bytes where nothing changes,
else rebuilt (translated, asked as a stream, adapters applied, refused parameters left out), with the credential; and
the step it is recorded as, for the flow's view, when it is not the client's request."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

import protocols
from protocols.base import ENDING_LENGTH, Event, Repairer
from protocols.conversation import Reader
from protocols.members import rewritten
from protocols.refused_params import without
from protocols.translate import TranslationError
from protocols.translate.base import MALFORMED
from protocols.urls import UnsafeURLValue
from protocols.vendor_errors import ErrorKind, VendorError
from protocols.windows import merged
from rewrite.adapters import chain_for
from rewrite.adapters.chain import EMPTY_CHAIN
from rewrite.exchange.job import Job
from rewrite.exchange.request import ClientRequest
from rewrite.inspection.steps import Capture, Step
from rewrite.intake.big_json import Upload, rewritten_upload
from rewrite.policy.outcomes import Note
from rewrite.policy.retry import QUOTA_REST
from rewrite.pool.key_state import WHOLE_KEY
from rewrite.pool.keypool import stored_id, stored_ids
from rewrite.pool.logins import LoginState
from rewrite.providers.credentials import mask
from rewrite.routing.targets import CREDENTIAL_HEADERS, ConversationHooks, Leg, Translation, adapted, parse_json
from rewrite.upstream.client import Sender, encode_headers, request_headers

# Distinct parameters a request is sent again without, after 400s that name them (protocols/vendor_errors.py).
MAX_REFUSED_PARAMS = 3


def translated_request(req: ClientRequest, leg: Leg, t: Translation, stream: bool, hooks: ConversationHooks | None
                       ) -> tuple[str, str, bytes, list[tuple[str, str]]]:
    """(path, query, content, headers) of a translated target (`leg`, its `translation`), before the credential;
    once per leg and way of asking (a stream, or not). TranslationError when the target's protocol cannot take it."""
    built = t.built.get(stream)
    if built is None:
        try:
            path, query, body = t.upstream_request(stream, hooks, leg)
        except UnsafeURLValue as e:
            raise TranslationError(str(e)) from None
        except MALFORMED as e:
            raise TranslationError(f"malformed {t.client} request: {type(e).__name__}: {e}") from None
        path, body, headers = adapted(leg, path, body, t.headers(req.request.headers))
        built = t.built[stream] = (path, query, json.dumps(body).encode(), headers)
    return built


FOREIGN_MAX = 4096  # marks of refused state kept per key (then forgotten at once, and learned again)


class TargetCall:
    """How the attempts on one target are put: its leg, model, adapters, and whether the answer is asked for as a
    stream (the client's, or forced and folded back). `refused` is the request's list of parameters it was sent
    again without (shared by its targets)."""

    def __init__(self, req: ClientRequest, leg: Leg, more: bool, client: Sender, job: Job,
                 hooks: ConversationHooks | None, refused: list[str]) -> None:
        self.req = req
        self.leg = leg
        self.provider = leg.provider
        self.model = leg.model
        self.more = more  # targets left after this one
        self.client = client
        self.job = job
        self.hooks = hooks
        self.refused = refused
        # What the target's error answers mean, and the usage windows its answers report: its protocol's readers
        # (its family's, for a call of no protocol), with a login's dialects.
        name = leg.protocol.name if leg.protocol is not None else None
        self.errors, self.windows = leg.provider.errors(name), leg.provider.windows(name)
        # The client's own login, when this target is the login provider it called (never pooled).
        self.login: LoginState | None = job.login if leg.called and leg.provider.login is not None else None
        p = req.proto
        self.adapters = chain_for(leg.provider, leg.model) if p is not None and not leg.translation else EMPTY_CHAIN
        # Forced upstream streaming: a non-stream client request goes upstream as a stream and is folded back into
        # JSON, so the stream deadlines protect it; unless the provider opted out, the model refuses streams or the
        # request is answered before its work is done (`folds`: a background response).
        self.aggregate = (p is not None and not req.client_stream and leg.provider.force_upstream_stream
                          and leg.model not in leg.provider.stream_refusals and p.folds(req.body))
        if leg.sealed:
            self._seal()
        self.upstream_stream = p is not None and (req.client_stream or self.aggregate)
        self.step: Step | None = None  # this target's, when its request is not the client's
        self.sent: bytes = b""  # the body of the current attempt's upstream request
        self.left_out: list[str] = []  # the parameters its model refused before, left out of it
        self.asking: str | None = None  # a continuation's: how it asks for the rest ("prefill", "instruction")
        self.unmade_noted: set[str] = set()  # the keys noted as sent without another key's state (`_kept`)

    def _seal(self) -> None:
        """A signed body goes to its login as it came: what would rewrite it is skipped, and the flow says so."""
        skipped = []
        if self.adapters:
            skipped.append("adapters (" + ", ".join(a.name for a in self.adapters.adapters) + ")")
        if self.aggregate:
            skipped.append("the forced upstream stream (force_upstream_stream): sent as the client asked")
        if self.req.asks_usage(self.provider):
            skipped.append("asking for the usage chunk")
        if refused := self.provider.param_refusals.get(self.model):
            skipped.append("leaving out what the model refused before (" + ", ".join(sorted(refused)) + ")")
        self.adapters, self.aggregate = EMPTY_CHAIN, False
        if skipped:
            self.job.note(Note.SIGNED, "the client's signed body went as it came; skipped: " + "; ".join(skipped),
                          skipped=skipped)

    def asks_usage(self) -> bool:
        """Whether this target is asked for the usage chunk the client did not ask for."""
        return not self.leg.sealed and self.req.asks_usage(self.provider)

    def seen(self, status: int, headers: list[tuple[str, str]], body: bytes, key: str | None = None) -> None:
        """An answer's headers (an error's body too): the windows it reports, kept for the login that got it (its
        plan's), or for the pooled `key` (its rate limits and quotas: the pool passes it over before it runs out)."""
        pool, book = self.provider.pool, self.leg.provider.logins
        if not self.windows or (self.login is None and (key is None or pool is None)):
            return
        windows = self.windows.read(status, headers, body, time.time())
        if not windows:
            return
        if self.login is not None and book is not None:
            book.reported(self.login, windows)
        elif key is not None and pool is not None:
            pool.reported(key, self.model, windows)
        self.job.windows = merged(self.job.windows, windows)

    def plan_events(self, repairer: Repairer) -> Repairer:
        """`repairer`, wrapped to read the stream events that report a login's plan windows (Login.window_events)
        as they pass, when this target is a login whose stream has them."""
        login = self.leg.provider.login
        if self.login is None or login is None or not login.window_events or not self.windows:
            return repairer
        return PlanEvents(repairer, login.window_events, self.seen)

    def spent(self, error: VendorError) -> None:
        """A login's exhaustion answer (kind QUOTA): it is left for the next target until the window resets (for the
        model asked, when the quota is the model's)."""
        book, quota = self.leg.provider.logins, error.quota
        if self.login is None or book is None or quota is None:
            return
        window = next((w for w in (quota.window, error.delay) if w is not None), QUOTA_REST)
        book.exhaust(self.login, time.time() + window, self.model if quota.per_model else WHOLE_KEY, quota.what)

    def build(self, key: str | None) -> httpx.Request:
        """The upstream request of an attempt on `key` (None: the client's own credential, or none)."""
        if self.leg.translation is not None:
            return self._build_translated(self.leg.translation, key)
        req, leg = self.req, self.leg
        headers = request_headers(req.request.headers)
        query = leg.query
        body = leg.body
        content = req.client_bytes() if leg.unchanged else None  # None: serialised from `body` below
        path = leg.path
        # (Chat: as_stream asks for the usage chunk.) Either needs a protocol, so a native leg's body is the JSON.
        if (self.aggregate or self.asks_usage()) and leg.protocol is not None and leg.body is not None:
            path, query, body = leg.protocol.as_stream(path, query, leg.body)
            # The client's bytes are kept, with only the members asking for a stream spliced in (an agent's request
            # body can be megabytes: serialising it again is a real share of its cost).
            if isinstance(content, Upload):  # (a large body is not parsed whole: see Legs.sent_as_it_came)
                content = rewritten_upload(content, leg.body, body)
            elif content is not None:
                content = rewritten(req.plain, leg.body, body)
        # The provider's and the model's rewrites (rewrite/adapters/), before the credential; chosen only for a
        # generation call, whose body is the JSON.
        if self.adapters and body is not None:
            path, body, headers = self.adapters.apply_to_path(path, body, headers, self.model, leg.protocol)
            content = None
        if isinstance(body, dict) and not req.skeletal and (kept := self._kept(body, key)) is not body:
            body, content = kept, None
        if content is None:
            if req.skeletal:  # (Legs.sent_as_it_came rules this out: never send a skeleton's stand-ins upstream)
                raise AssertionError("a large body's skeleton was to be sent upstream")
            content = json.dumps(body).encode()
        if isinstance(content, Upload):  # (httpx would send it chunked)
            headers = [*headers, ("content-length", str(content.size))]
            self.sent = b""  # (not parsed again for refused parameters: the request is not rewritten)
        else:
            self.sent = req.plain if content is req.client_bytes() else content
        shown = content if isinstance(content, Upload) else self.sent  # (what the flow's steps show)
        if req.repackaged and isinstance(content, bytes):
            # A content-encoded body (or a login's envelope) goes plain to another target than the vendor the client
            # called; rewritten for that vendor, it is encoded (put in the envelope) again the way the client sent it.
            if not leg.called:
                content = self.sent
                headers = [(n, v) for n, v in headers if n.lower() != "content-encoding"]
            elif content is not req.client_bytes():
                if req.dialect is not None:
                    _, content = req.enveloped(path, content)
                content = req.encoded(content)
        if leg.called and req.dialect is not None:  # (the client's own path, for the call in its envelope)
            path = req.dialect.envelope_path(path)
        if not leg.called:  # the client's credential and account are for the vendor it called, never another
            headers = [(n, v) for n, v in headers if n.lower() not in CREDENTIAL_HEADERS]
            if req.called.login is not None:  # nor what comes with a login (Claude's OAuth beta)
                headers = req.called.login.foreign(headers)
        if key is not None:
            headers, query = self.provider.authorize(headers, query, key)
        url = leg.url(path, req.called.path_prefix, req.host)
        if content is not req.client_bytes():  # (before the client's own credential, still masked here, is restored)
            self._record(req.request.method, url, headers, query, shown, key)
        if key is None and self.job.credential and leg.called:
            headers, query = self.job.credential.restore(headers, query)
        url += f"?{query}" if query else ""
        return self.client.build_request(req.request.method, url, headers=encode_headers(headers), content=content)

    def _build_translated(self, t: Translation, key: str | None) -> httpx.Request:
        path, query, content, headers = translated_request(self.req, self.leg, t, self.upstream_stream, self.hooks)
        self.left_out = []
        # (what the field cache restored may be state another account made)
        if ((self._refusals() or self._foreign(key) or self._unmade(key)) and (body := parse_json(content)) is not None
                and (kept := self._kept(body, key)) is not body):
            content = json.dumps(kept).encode()
        self.sent = content
        if key is not None:
            headers, query = self.provider.authorize(headers, query, key)
        url = self.provider.base_url + path
        self._record("POST", url, headers, query, content, key)
        url += f"?{query}" if query else ""
        return self.client.build_request("POST", url, headers=encode_headers(headers), content=content)

    # -- what the target's model refused ------------------------------------------------------------------------

    def _refusals(self) -> set[str]:
        """The parameters the target's model refused before (none left out of a signed body)."""
        if self.leg.protocol is None or self.leg.sealed:
            return set()
        return self.provider.param_refusals.get(self.model, set())

    def _kept(self, body: dict, key: str | None) -> dict:
        """`body` without what the target's model refused before, nor the state the key's account refused as
        another's, nor the state the field cache kept from another key's answer (`body` itself if it has none)."""
        kept = self._without_refused(body)
        refused, unmade, reader = self._foreign(key), self._unmade(key), self._reader
        if not (refused or unmade) or reader is None:
            return kept
        without = reader.without(kept, refused | unmade)
        if without is None:
            return kept
        left_out = len(set(reader.foreign(kept)) & unmade)
        if left_out and key is not None and key not in self.unmade_noted:
            self.unmade_noted.add(key)
            self.job.note(Note.FOREIGN, f"{left_out} encrypted reasoning item(s) the field cache kept from another "
                          f"key's answer left out for key {mask(key)} (its account would refuse them)",
                          key=mask(key), items=left_out)
        return without

    def _without_refused(self, body: dict) -> dict:
        """`body` without the parameters the target's model refused before (`body` itself if it has none)."""
        self.left_out = []
        for param in sorted(self._refusals()):
            if (kept := without(body, param)) is not None:
                body = kept
                self.left_out.append(param)
        return body

    def drops_refused(self, error: VendorError) -> bool:
        """Whether the upstream's 400 names parameters of the request just sent that its model does not support
        (at most MAX_REFUSED_PARAMS a request): then they are remembered for the provider's model, so this request
        and the model's next ones go without them."""
        said_refused = error.refused if self.leg.protocol is not None and not self.leg.sealed else ()
        sent = parse_json(self.sent) if said_refused else None
        named = [p for p in said_refused if sent is not None and p not in self.refused and without(sent, p) is not None]
        if not named or len(self.refused) + len(named) > MAX_REFUSED_PARAMS:
            return False
        self.refused += named
        self.provider.param_refusals.setdefault(self.model, set()).update(named)
        said = ", ".join(map(self.errors.shown, named))
        self.job.note(Note.PARAM_REFUSED, f"{said} ({self.provider.name} refused it for {self.model}: sent again "
                      "without it, as are the model's next requests)", params=named, model=self.model)
        return True

    # -- state another account made -----------------------------------------------------------------------------

    def drops_foreign(self, error: VendorError, key: str | None) -> bool:
        """Whether the upstream's 400 refused state only another account accepts (an encrypted reasoning item of a
        conversation moved to this key, or restored by the field cache from another key's answer) that the request
        can go without: then the key's requests go without it from now on (the model reasons afresh), this one at
        once. A signed body is not rewritten."""
        reader = self._reader
        if error.kind is not ErrorKind.FOREIGN or key is None or reader is None:
            return False
        sent = parse_json(self.sent)
        marks = set(reader.foreign(sent)) if sent is not None else set()
        refused = self.provider.foreign.setdefault(key, set())
        if not marks or marks <= refused:
            return False
        if len(refused) + len(marks) > FOREIGN_MAX:
            refused.clear()
        refused |= marks
        self.job.note(Note.FOREIGN, f"key {mask(key)}'s account refused {len(marks)} encrypted reasoning item(s) "
                      "another account made: sent again without them, as are its next requests that carry them",
                      key=mask(key), items=len(marks))
        return True

    def _unmade(self, key: str | None) -> set[str]:
        """The marks of the state the field cache put back from the answer of another key of the pool than `key`:
        a pool's keys are of different accounts (rate limits are per account), so the vendor would refuse it. None
        of what a key not known made (an entry from before, a key no longer configured): a refusal teaches it."""
        t, pool = self.leg.translation, self.provider.pool
        if t is None or not t.made or key is None or pool is None or self.leg.sealed:
            return set()
        mine = stored_id(pool, key)
        others = set(stored_ids(pool)) - {mine} if mine else set()
        return {m for made_by, marks in t.made.items() if made_by in others for m in marks}

    def _foreign(self, key: str | None) -> set[str]:
        """The marks of the state the key's account refused before as another's (none for a signed body)."""
        marks = self.provider.foreign.get(key) if key is not None and not self.leg.sealed else None
        return marks or set()

    @property
    def _reader(self) -> Reader | None:
        """The conversation reader of what the target speaks (it names the state an account refuses); None for
        no protocol, or a signed body, which is never rewritten."""
        leg = self.leg
        return None if leg.protocol is None or leg.sealed else protocols.registered(leg.protocol.name).conversation

    def unforce(self) -> None:
        """The upstream refused a stream for this model: send the request as the client did, and remember."""
        model = self.model
        self.provider.stream_refusals.add(model)
        self.aggregate = self.upstream_stream = False
        self.job.note(Note.STREAM_REFUSED, f"the upstream refused a stream for {model}: sent as a non-stream request, "
                      "as are its next ones", model=model)

    # -- the steps a transformed request went through (for the flow's view) -------------------------------------

    def _record(self, method: str, url: str, headers: list[tuple[str, str]], query: str, content: bytes | Upload,
                key: str | None) -> None:
        """Keep the upstream request of this target (its last attempt's), with the pooled key masked."""
        step = self.step
        leg = self.leg
        if step is None:
            step = self.step = Step(leg.name, leg.protocol.name if leg.protocol else "", [])
            if self.job.steps is None:
                self.job.steps = []
            self.job.steps.append(step)
        if key is not None:
            shown = mask(key)
            headers = [(n, v.replace(key, shown)) for n, v in headers]
            query = query.replace(key, shown)
        step.changes = self._changes()
        step.method, step.url, step.headers, step.body = method, url + (f"?{query}" if query else ""), headers, content
        step.answer = None

    def _changes(self) -> list[str]:
        """What Rotator did to the client's request for this target, in words."""
        leg, req = self.leg, self.req
        said = []
        if leg.translation is not None:
            said.append(f"translated from {leg.translation.client} to {leg.translation.upstream}")
            said += leg.translation.fitted
        elif not leg.unchanged:
            said.append(f"model {req.asked} sent as {leg.model}" if leg.model != req.asked
                        else "conversation state put into the body")
        if self.aggregate:
            said.append("sent as a stream (force_upstream_stream), the answer folded back into JSON")
        elif leg.translation is None and self.asks_usage():
            said.append("asked for the usage chunk (stream_options.include_usage)")
        chain = chain_for(leg.provider, leg.model) if leg.translation is not None else self.adapters
        if chain:
            said.append("adapters: " + ", ".join(a.name for a in chain.adapters))
        if self.left_out:
            left_out = ", ".join(map(self.errors.shown, self.left_out))
            said.append(f"left out what {leg.model} refused before (param-refused): {left_out}")
        return said

    def capture(self, resp: httpx.Response) -> Capture | None:
        """Where the current attempt's raw answer is kept, when Rotator translates or rewrites it for the client."""
        step = self.step
        if step is None or not (self.leg.translation is not None or self.adapters.answering or self.aggregate):
            return None
        step.answer = Capture(resp.status_code, resp.headers.get("content-type", ""))
        return step.answer


class PlanEvents(Repairer):
    """A login's stream repairer, fed as before, whose events of `kinds` (by type) are also read by `seen` as an
    answer's body: the plan windows they report (Codex's `codex.rate_limits`)."""

    def __init__(self, inner: Repairer, kinds: frozenset[str], seen: Callable[[int, list, bytes], None]) -> None:
        self.inner, self.seen = inner, seen
        self.marks = tuple(kind.encode() for kind in kinds)

    started = property(lambda self: self.inner.started)
    complete = property(lambda self: self.inner.complete)
    failed = property(lambda self: self.inner.failed)
    early_error = property(lambda self: self.inner.early_error)

    def feed(self, event: Event) -> bytes:
        if event.data is not None and any(mark in event.raw for mark in self.marks):
            self.seen(200, [], event.data.encode())
        return self.inner.feed(event)

    def quiet(self, block: bytes) -> bool:
        return self.inner.quiet(block) and not any(mark in block for mark in self.marks)

    def end(self, ending: str = ENDING_LENGTH) -> bytes:
        return self.inner.end(ending)

    def error_event(self, message: str, status: int = 502) -> bytes:
        return self.inner.error_event(message, status)
