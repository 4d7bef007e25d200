"""Conversation affinity: which pooled key a request's conversation is bound to, and how long.

Vendors cache a prompt's prefix per account (Anthropic per workspace, OpenAI per organization, Gemini per project),
and some state is valid only on the account that made it (a stored Responses answer, an `encrypted_content`). A pool
that rotates per request moves a conversation to another account almost every turn: each move writes the whole
prefix again (a Claude cache write costs 12.5 times a read) or is refused. So a request that belongs to a
conversation goes to the key its conversation is bound to while that key can serve.

`Affinity` is what one request says of its conversation, for one pool (made from the request's
`protocols.evidence.Evidence` by the affinity plug-in: rewrite/plugins/affinity/ `affinity_of`). The pool's
decisions (rewrite/pool/decisions.py) look its `lookup` ids up, in order, among the pool's bindings (id ->
`KeyBinding`): the first live one names the bound key, unless the request names its pin's `holder` (the key Rotator
recorded as holding it), which is bound whatever they say. After the request is served, its `bind` ids are bound to
the key that served it (not the one first picked), for `ttl` seconds.

Ids, strongest evidence first, each scoped by the client (its client key's name, or its address):
- `p:<client>:<kind>:<value>`: a pin, state another account refuses. `hard` where the request cannot go without
  it (a stored answer, a server-side conversation or item, a Gemini cache): the bound key is waited for, not left,
  and a rest longer than a request may wait is answered 429 until it ends. An encrypted reasoning item is not hard:
  another key's request goes without it (rewrite/exchange/target.py). A call on the pin's state alone (a Gemini
  cache read, changed or deleted, a stored response or a conversation of OpenAI's read or deleted: `state_affinity`)
  looks its pin up too; a deletion, served, unbinds it;
- `l:<client>:<link>`: the conversation's lineage, its links deepest first (protocols/evidence.py): the
  conversation's own prompt, so it is looked up before the session, which sub-agents share;
- `s:<client>:<session>`: the client's own session id.

A binding carries the conversation's `name` (the first id it was bound by: its live conversations are counted by
name, one per conversation however many turns) and its `depth` (the messages of the turn that bound it). A request
found only by its session whose history is far shorter than the bound turn's is a compaction (the history replaced by
a summary): placed as a new conversation, a free point to move it to the least loaded key.

Where a binding is not worth it, there is none: a prompt under the model's minimum cacheable prompt
(`cache_minimum`), or where its cache reads cost no less than its input (its price says so), with no pin; a pool
or provider with `affinity: off`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from protocols.pins import Pin

# A binding lives as long as the request asks its vendor to keep the prompt cache; this long when it says nothing
# (Anthropic's and OpenAI's default cache lifetime is five minutes; a pin lives as long as the vendor keeps it).
DEFAULT_TTL = 300.0
PIN_TTL = 30 * 86400.0
# Live conversations counted per key for placement are capped: a key holding many long pins is not starved of new
# conversations forever, it is only passed over while others hold fewer.
LIVE_CAP = 64
# A session's history shorter than this share of the bound turn's is a compaction.
COMPACTED = 0.5

# Why a key was chosen, for the flow (`Pick.why`).
BOUND = "bound"  # the conversation's bound key
NEW = "new"  # a new conversation, placed on the key with the most headroom
MOVED = "moved"  # its bound key could not serve (resting, out, busy past the wait budget, the key that just failed)
COMPACTION = "compaction"  # its history was replaced by a summary: placed again


@dataclass(frozen=True, slots=True)
class Affinity:
    """What a request says of its conversation, for its pool."""

    lookup: tuple[str, ...]  # ids to look up, strongest first (pins, lineage deepest first, session)
    bind: tuple[str, ...]  # ids bound to the key that serves (the session, the deepest link)
    name: str  # the conversation's name if it is new (its session id, else its deepest link)
    ttl: float  # seconds a binding lives
    depth: int = 0  # messages in the request
    hard: bool = False  # a pin the request cannot go without: another account refuses it
    session: str | None = None  # the session id among `lookup` (for compaction), if any
    said: str = ""  # the evidence in words, for the flow: "session header:x-claude-code-session-id", "lineage"
    # The key (its index in the pool) whose account holds the stored state a pin names, as Rotator recorded it when
    # it served it: the conversation's bound key whatever its bindings say (they may have been lost: a restart with
    # another state file, a worker that decides alone).
    holder: int | None = None
    drops: bool = False  # the request deletes its pin's state: once served, the pin is unbound, not bound

    def unpinned(self) -> Affinity:
        """The affinity without its pins (nor their holder): the request sent whole, for any key."""
        return Affinity(tuple(i for i in self.lookup if not i.startswith("p:")),
                        tuple(i for i in self.bind if not i.startswith("p:")), self.name, self.ttl, self.depth, False,
                        self.session, self.said)


@dataclass(frozen=True, slots=True)
class KeyBinding:
    """One id's binding: the key (its index in the pool, config order), until when (wall clock), the conversation's
    name and the depth of the turn that bound it."""

    key: int
    until: float
    name: str
    depth: int

    def encoded(self) -> str:
        return f"{self.key}|{self.until:.3f}|{self.depth}|{self.name}"

    @classmethod
    def decoded(cls, text: str) -> KeyBinding | None:
        key, _, rest = text.partition("|")
        until, _, rest = rest.partition("|")
        depth, _, name = rest.partition("|")
        try:
            return cls(int(key), float(until), name, int(depth))
        except ValueError:
            return None


def preferring(affinity: Affinity | None, key: int) -> Affinity:
    """A request that prefers the key of index `key` while it serves (ready, below its max_concurrent: a race's
    second attempt beside the first, where its prompt cache is), else is placed as its conversation is (or, of
    none, as a new one): the key is its pin's holder, unpinned."""
    base = affinity if affinity is not None else Affinity((), (), "", DEFAULT_TTL)
    return replace(base, holder=key, hard=False)


def answer_pin(client: str, kind: str, value: str) -> str:
    """The id of a pin: one a request names (`affinity_of`), or one an answer creates (a stored Responses answer's
    id, which the next turn names as its `previous_response_id`; a Gemini cache's name)."""
    return f"p:{client}:{kind}:{value}"


def state_affinity(client: str, pin: Pin, deletes: bool) -> Affinity:
    """The affinity of a call on a pin's state alone (a Gemini cache, an OpenAI stored response or conversation,
    read, changed or deleted): its key, waited for."""
    pin_id = answer_pin(client, pin.kind, pin.value)
    return Affinity((pin_id,), (), pin_id, PIN_TTL, hard=True, said=pin.kind, drops=deletes)
