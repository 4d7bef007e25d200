"""The field cache: opaque reasoning state a client cannot carry between turns, kept by Rotator and put back.

A client served by a vendor of another protocol never sees that vendor's opaque state (a Gemini `thoughtSignature`
on a function call, Anthropic thinking blocks and their signatures, Responses reasoning items with
`encrypted_content`): its own protocol has no place for it. Yet the vendor wants it back on the next turn (Gemini 3
rejects a replayed function call without its signature; Anthropic, with thinking on, wants the thinking blocks
before the `tool_use` of the last assistant turn). So Rotator keeps it from each translated answer and puts it
back into the assistant turn the client replays:

- found by the tool call ids Rotator handed out, or, for a turn without tool calls, by a hash of its text; an id
  Rotator made from a call's content (Gemini gives none) and a turn's text also name the message the turn
  answered, since two conversations may hold the same call or the same words;
- scoped per client, provider, model and protocol: state only ever goes back to the vendor that issued it; each entry
  names the pooled key whose answer it came from (by its fingerprint as the pool's kept state names it), since some
  state is accepted back only by that key's account;
- bounded by the store (entries, bytes) and by a time to live;
- looked up only for a provider and protocol whose answers left some, while the store is this process's alone (a
  route whose target gives none, or none yet, costs no lookup); a store shared through Redis is always read.

With thinking on, a target whose protocol wants its thinking signed (its registration's `signed_thinking`: Anthropic)
and whose last assistant turn has tool calls but no signed thinking of its own (the cache lost it, or the turn was
never that vendor's) gets that request with thinking off: unsigned thinking is never sent, let alone forged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import protocols
from protocols.evidence import content_mark
from protocols.translate.common import budget_for
from protocols.unified import (
    GENERATED_TOOL_ID_PREFIX,
    ROLE_ASSISTANT,
    Answer,
    Message,
    Reasoning,
    ReasoningConfig,
    Request,
    Text,
    ToolCall,
    ToolResult,
)
from rewrite.state.kv import MemoryStore, Store

KEY_PREFIX = "fields:"
DEFAULT_TTL = 6 * 3600.0  # seconds: an agent's next turn may come long after a tool ran
# Where a cached reasoning part sat in its turn: before a tool call (ANCHOR_CALL + id), before the text, or last.
ANCHOR_CALL = "call:"
ANCHOR_TEXT = "text"
ANCHOR_END = ""


@dataclass(frozen=True, slots=True)
class Issuer:
    """Who issued the state (provider, the model as sent upstream, the protocol) and for which client."""

    provider: str
    model: str
    protocol: str
    client: str = ""

    def key(self, kind: str, value: str) -> str:
        fields = (self.client, self.provider, self.model, self.protocol, kind, value)
        return KEY_PREFIX + hashlib.sha256("\0".join(map(str, fields)).encode()).hexdigest()


@dataclass(slots=True)
class Restored:
    """What `restore` put back into a request, for the flow's notes."""

    parts: int = 0  # signatures and reasoning parts put back
    thinking_off: bool = False  # a request sent without thinking, for want of a signed thinking block
    # The marks (protocols.evidence.content_mark) of the opaque state put back, by the fingerprint of the pooled
    # key whose answer it came from (entries that name none are left out: made by a key not known).
    made: dict[str, set[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.parts or self.thinking_off)


def stateful(protocol: str) -> bool:
    """Whether answers of `protocol` carry opaque state that their vendor wants back (its registration says)."""
    try:
        return protocols.registered(protocol).stateful
    except KeyError:
        return False


def signs_thinking(protocol: str) -> bool:
    """Whether `protocol`'s vendor, with thinking on, wants the last assistant turn's tool calls after its own
    signed thinking (its registration says)."""
    try:
        return protocols.registered(protocol).signed_thinking
    except KeyError:
        return False


def leaves_state(protocol: str, request: Request) -> bool:
    """Whether an answer of `protocol` to `request` (unified) may carry opaque state its vendor wants back. A vendor
    whose state is its signed thinking (its registration's `signed_thinking`: Anthropic, whose tool calls carry no
    signature) leaves none for a request that does not turn thinking on."""
    return stateful(protocol) and (not signs_thinking(protocol) or _thinks(request))


def _thinks(request: Request) -> bool:
    """Whether the request turns thinking on (the translators' own test)."""
    return request.reasoning is not None and budget_for(request.reasoning) is not None


def _turn_text(parts) -> str:
    return "".join(p.text for p in parts if isinstance(p, Text) and isinstance(p.text, str)).strip()


def _digest(message: Message | None) -> str:
    """A short digest of the message a turn answered (its text, tool results and calls)."""
    if message is None:
        return ""
    pieces: list = [message.role]
    for part in message.parts:
        if isinstance(part, Text):
            pieces.append(part.text)
        elif isinstance(part, ToolResult):
            pieces += [part.call_id, [p.text for p in part.content if isinstance(p, Text)]]
        elif isinstance(part, ToolCall):
            pieces.append(part.id)
    return hashlib.sha256(json.dumps(pieces, default=str).encode()).hexdigest()[:32]


def _turn_keys(scope: Issuer, parts: list, answered: Message | None) -> list[str]:
    """The keys a turn's state is kept under: each of its tool call ids, else its text."""
    keys = []
    for part in parts:
        if isinstance(part, ToolCall) and isinstance(part.id, str) and part.id:
            made_up = part.id.startswith(GENERATED_TOOL_ID_PREFIX)
            keys.append(scope.key("call", part.id + (_digest(answered) if made_up else "")))
    if not keys and (text := _turn_text(parts)):
        keys.append(scope.key("text", _digest(answered) + text))
    return keys


def _anchor(parts: list, index: int) -> str:
    """What follows the reasoning part at `index`: the next tool call, the text, or nothing."""
    for part in parts[index + 1:]:
        if isinstance(part, ToolCall):
            return f"{ANCHOR_CALL}{part.id}"
        if isinstance(part, Text) and part.text:
            return ANCHOR_TEXT
    return ANCHOR_END


def _record(answer: Answer, protocol: str) -> dict | None:
    """The opaque state of one answer, as JSON: signatures by tool call id, signed reasoning with its place."""
    parts = answer.parts
    calls = {p.id: p.signature for p in parts
             if isinstance(p, ToolCall) and isinstance(p.id, str) and p.signature and p.origin == protocol}
    reasoning = [
        {"text": p.text, "signature": p.signature, "redacted": p.redacted, "id": p.id, "before": _anchor(parts, i)}
        for i, p in enumerate(parts)
        if isinstance(p, Reasoning) and p.origin == protocol and p.signature
    ]
    if not calls and not reasoning:
        return None
    return {"calls": calls, "reasoning": reasoning}


class FieldCache:
    def __init__(self, store: Store, ttl: float = DEFAULT_TTL) -> None:
        self.store = store
        self.ttl = ttl

    @property
    def store(self) -> Store:
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        self._store = store
        # The (provider, protocol) scopes whose answers left state here, when nothing but this cache writes the store
        # (one of this process, given empty): a turn sent to any other has nothing to look up. None: the store may
        # hold what another wrote (shared through Redis, or given full), so every turn is looked up.
        self._givers: set[tuple[str, str]] | None = (
            set() if isinstance(store, MemoryStore) and not len(store) else None)

    def capture(self, scope: Issuer, answer: Answer, asked: Request | None = None, made_by: str = "") -> None:
        """Keep the opaque state of an answer the client receives in another protocol than `scope.protocol`;
        `asked` is the client's request it answers, `made_by` the fingerprint of the pooled key that answered (""
        none, or unknown)."""
        if not stateful(scope.protocol):
            return
        record = _record(answer, scope.protocol)
        if record is None:
            return
        if made_by:
            record["key"] = made_by
        if self._givers is not None:
            self._givers.add((scope.provider, scope.protocol))
        answered = asked.messages[-1] if asked is not None and asked.messages else None
        keys = _turn_keys(scope, answer.parts, answered)
        value = json.dumps(record, separators=(",", ":")).encode()
        for key in keys:
            self.store.put(key, value, self.ttl)

    def restore(self, scope: Issuer, request: Request) -> Restored:
        """Put the kept state back into the assistant turns of `request`, which goes to `scope`'s vendor. Its
        messages' part lists change; the parts themselves are never changed (another target may share them)."""
        done = Restored()
        if not stateful(scope.protocol):
            return done
        if self._givers is None or (scope.provider, scope.protocol) in self._givers:
            self._put_back(scope, request, done)
        if signs_thinking(scope.protocol) and _needs_signed_thinking(request, scope.protocol):
            request.reasoning = ReasoningConfig(enabled=False)
            done.thinking_off = True
        return done

    def _put_back(self, scope: Issuer, request: Request, done: Restored) -> None:
        for i, message in enumerate(request.messages):
            if message.role != ROLE_ASSISTANT:
                continue
            record = self._lookup(_turn_keys(scope, message.parts, request.messages[i - 1] if i else None))
            if record is None:
                continue
            put_back = _apply(record, message, scope.protocol)
            done.parts += len(put_back)
            made_by = record.get("key")
            if put_back and isinstance(made_by, str) and made_by:
                done.made.setdefault(made_by, set()).update(content_mark(s) for s in put_back if isinstance(s, str))

    def _lookup(self, keys: list[str]) -> dict | None:
        for key in keys:
            value = self.store.get(key)
            if value is not None:
                return _loads(value)
        return None


def _loads(value: bytes) -> dict | None:
    try:
        record = json.loads(value)
    except ValueError:
        return None  # a shared store holding something else under our key: nothing to restore
    return record if isinstance(record, dict) else None


def _apply(record: dict, message: Message, protocol: str) -> list[str]:
    """Put a record's signatures on the turn's tool calls and its signed reasoning back in place. Returns the
    signatures it put back; a turn that already carries the vendor's own reasoning keeps it."""
    restored: list[str] = []
    calls: dict = record.get("calls") or {}
    for i, part in enumerate(message.parts):
        if (isinstance(part, ToolCall) and isinstance(part.id, str) and part.id in calls
                and not (part.origin == protocol and part.signature)):
            # A copy: the request's parts may be shared with the next target's, which must not get the signature.
            message.parts[i] = dataclasses.replace(part, signature=calls[part.id], origin=protocol)
            restored.append(calls[part.id])
    cached = record.get("reasoning") or []
    if not cached or any(isinstance(p, Reasoning) and p.origin == protocol and p.signature for p in message.parts):
        return restored
    remaining = [(r.get("before", ANCHOR_END), Reasoning(r.get("text") or "", r.get("signature"), protocol,
                                                         bool(r.get("redacted")), r.get("id")))
                 for r in cached]
    restored += [p.signature for _, p in remaining if p.signature]

    def take(anchor: str) -> list[Reasoning]:
        nonlocal remaining
        taken = [p for a, p in remaining if a == anchor]
        remaining = [(a, p) for a, p in remaining if a != anchor]
        return taken

    placed: list = []
    text_seen = False
    for part in message.parts:
        if isinstance(part, ToolCall):
            placed += take(f"{ANCHOR_CALL}{part.id}")
        elif isinstance(part, Text) and part.text and not text_seen:
            text_seen = True
            placed += take(ANCHOR_TEXT)
        placed.append(part)
    ending = take(ANCHOR_END)
    # Anchors the replayed turn no longer has (a call or text the client left out) go first, in their order.
    message.parts = [*(p for _, p in remaining), *placed, *ending]
    return restored


def _last_assistant_turn(messages: list[Message]) -> list:
    """The parts of the last assistant turn (consecutive assistant messages, which a vendor may merge into one)."""
    parts: list = []
    seen = False
    for message in reversed(messages):
        if message.role == ROLE_ASSISTANT:
            parts[:0] = message.parts
            seen = True
        elif seen:
            break
    return parts


def _needs_signed_thinking(request: Request, protocol: str) -> bool:
    """Whether, with thinking on, the last assistant turn has tool calls but no signed thinking of `protocol`'s."""
    if not _thinks(request):
        return False
    turn = _last_assistant_turn(request.messages)
    if not any(isinstance(p, ToolCall) for p in turn):
        return False
    return not any(isinstance(p, Reasoning) and p.origin == protocol and p.signature for p in turn)
