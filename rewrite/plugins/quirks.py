"""Learned quirks: what each provider's refusals taught, one record per provider (its models' refused streams,
prefills and parameters; whether it refuses the usage option; the state each of its keys' accounts refused as
another's), and the requests put accordingly: the spine reads the `Lessons` it answers (`learned`), this plug-in
leaves the refused parameters and state out of each attempt's body (`building`) and learns from each verdict that
says the upstream refused something the request can go without (`refused`, rewrite/policy/verdict.py).

A record lives as long as its provider (a config reload builds new providers, and they learn afresh). Until one of
them has learned something, and while no route's target has a pool of several keys (a translated request's state
the field cache may put back from another key's answer), a request's part leaves nothing out of its bodies; it hears
its refusals all the same (its next attempts leave out what was refused)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import protocols
from protocols.evidence import Reader
from protocols.refused_params import without
from rewrite.lifecycle.events import Building, Learned, Refused
from rewrite.lifecycle.hooks import Part, Plugin
from rewrite.lifecycle.lessons import Lessons
from rewrite.lifecycle.views import FlowView, RequestView, TargetView
from rewrite.policy.outcomes import Note
from rewrite.policy.verdict import Act, Verdict
from rewrite.pool.keypool import masked_in, stored_id, stored_ids
from rewrite.providers import Provider

FOREIGN_MAX = 4096  # marks of refused state kept per key (then forgotten at once, and learned again)


@dataclass
class Record:
    """What one provider's refusals taught."""

    streams: set[str] = field(default_factory=set)  # models that refused a streamed request
    prefills: set[str] = field(default_factory=set)  # models that refused a continuation's prefill
    params: dict[str, set[str]] = field(default_factory=dict)  # per model: the parameters it refused
    stream_options: bool = False  # the provider refused the usage option
    foreign: dict[str, set[str]] = field(default_factory=dict)  # per key: the marks of state its account refused

    def lessons(self, model: str) -> Lessons:
        return Lessons(model in self.streams, self.stream_options, model in self.prefills,
                       frozenset(self.params.get(model, ())), self.foreign)


_records: dict[int, Record] = {}  # by the provider's id(), dropped with the provider
NOTHING = Record()  # (what a provider that learned nothing has taught: never written to)


def record_of(provider: Provider) -> Record:
    record = _records.get(id(provider))
    if record is None:
        record = _records[id(provider)] = Record()
        weakref.finalize(provider, _records.pop, id(provider), None)
    return record


class Quirks(Plugin):
    name = "quirks"

    def engage(self, ctx: RequestView) -> Part | None:
        return Learning(ctx) if ctx.req is not None and ctx.req.proto is not None else None


class Learning(Part):
    def __init__(self, ctx: RequestView) -> None:
        self.job = ctx.job
        self.unmade_noted: set[str] = set()  # the keys noted as sent without another key's state

    def refused(self, e: Refused) -> None:
        """Learn what the verdict says the provider refused, for its next requests and this one's next attempts."""
        learn(e.call, e.ticket.key, e.verdict, self.job)

    def learned(self, e: Learned) -> Lessons | None:
        record = _records.get(id(e.provider))
        return record.lessons(e.model) if record is not None else None

    def building(self, e: Building) -> dict | None:
        """The attempt's body without what the target's model refused before, nor the state the key's account
        refused as another's, nor the state the field cache kept from another key's answer."""
        call, key = e.call, e.ticket.key
        record = _records.get(id(call.provider), NOTHING)
        refused = record.params.get(call.model)
        foreign = record.foreign.get(key) if key is not None else None
        unmade = _unmade(call, key)
        if not (refused or foreign or unmade) or (body := e.parsed()) is None:
            return None
        kept, left_out = body, []
        for param in sorted(refused or ()):
            if (less := without(kept, param)) is not None:
                kept = less
                left_out.append(param)
        if left_out:
            e.said.append(f"left out what {call.model} refused before (param-refused): "
                          + ", ".join(map(call.errors.shown, left_out)))
        reader = _reader(call)
        marks = (foreign or set()) | unmade
        if marks and reader is not None and (less := reader.without(kept, marks)) is not None:
            mine = len(set(reader.foreign(kept)) & unmade)
            if mine and key is not None:
                self._note_unmade(masked_in(call.provider.pool, key), mine)
            kept = less
        return kept if kept is not body else None

    def _note_unmade(self, shown: str, items: int) -> None:
        if shown in self.unmade_noted:
            return
        self.unmade_noted.add(shown)
        self.job.note(Note.FOREIGN, f"{items} encrypted reasoning item(s) the field cache kept from another key's "
                      f"answer left out for key {shown} (its account would refuse them)", key=shown, items=items)

def learn(call: TargetView, key: str | None, verdict: Verdict, job: FlowView) -> bool:
    """Keep what `verdict` says `call`'s provider refused (the flow notes it); whether it was anything."""
    record, model, act = record_of(call.provider), call.model, verdict.act
    if act is Act.RESEND_WITHOUT_STREAM:
        record.streams.add(model)
        job.note(Note.STREAM_REFUSED, f"the upstream refused a stream for {model}: sent as a non-stream request, "
                 "as are its next ones", model=model)
    elif act is Act.RESEND_WITHOUT_USAGE:
        record.stream_options = True
        job.note(Note.USAGE_REFUSED, f"{call.provider.name} refused stream_options: its Chat streams go upstream "
                 "without it, as the client sent them (their usage is not known)")
    elif act is Act.RESEND_WITHOUT_PARAMS:
        record.params.setdefault(model, set()).update(verdict.drop)
        said = ", ".join(map(call.errors.shown, verdict.drop))
        job.note(Note.PARAM_REFUSED, f"{said} ({call.provider.name} refused it for {model}: sent again without "
                 "it, as are the model's next requests)", params=list(verdict.drop), model=model)
    elif act is Act.RESEND_WITHOUT_FOREIGN and key is not None:
        marks = record.foreign.setdefault(key, set())
        if len(marks) + len(verdict.drop) > FOREIGN_MAX:
            marks.clear()
        marks.update(verdict.drop)
        shown = masked_in(call.provider.pool, key)
        job.note(Note.FOREIGN, f"key {shown}'s account refused {len(verdict.drop)} encrypted reasoning item(s) "
                 "another account made: sent again without them, as are its next requests that carry them",
                 key=shown, items=len(verdict.drop))
    elif act is Act.PREFILL:
        record.prefills.add(model)
    else:
        return False
    return True


def _reader(call: TargetView) -> Reader | None:
    """The conversation reader of what the target speaks (it names the state an account refuses)."""
    return None if call.protocol is None else protocols.registered(call.protocol.name).evidence


def _unmade(call: TargetView, key: str | None) -> set[str]:
    """The marks of the state the field cache put back from the answer of another key of the pool than `key`: a
    pool's keys are of different accounts (rate limits are per account), so the vendor would refuse it. None of
    what a key not known made (an entry from before, a key no longer configured): a refusal teaches it."""
    t, pool = call.translation, call.provider.pool
    if t is None or not t.made or key is None or pool is None:
        return set()
    mine = stored_id(pool, key)
    others = set(stored_ids(pool)) - {mine} if mine else set()
    return {m for made_by, marks in t.made.items() if made_by in others for m in marks}
