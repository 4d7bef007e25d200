"""Responses continuity: `previous_response_id` for targets that cannot resolve it.

A Responses client (Codex CLI, the openai SDK) may send only its new input and name the response it continues;
the vendor that served that response resolves the rest from what it stored. A target of another protocol, or
another Responses provider, has never seen that response. So Rotator keeps, for each response it served, the
input items of its request and the output items of its answer (plus the response it continued), and expands the
lineage into the whole conversation for such a target.

- A response served natively by a Responses provider with `store` on is left to that provider to resolve when the
  continuation goes to it again; the lineage is expanded only down to it.
- `store: false` responses are kept only as long as their continuation needs them: a short time to live, and once
  a later response continues one, that later one takes its items over and it is dropped after a grace period (for a
  request sent again).
- Instructions are not inherited through `previous_response_id` (as with OpenAI): each request keeps its own.
- A lineage Rotator cannot expand (expired, evicted, never seen) for a target that cannot resolve it is answered
  with OpenAI's own 400 `previous_response_not_found`, never with a conversation silently cut short.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from protocols.errors import openai_error
from protocols.sse import dumps
from protocols.unified import Answer, Reasoning, Text, ToolCall
from rewrite.state.kv import Store

KEY_PREFIX = "responses:"
DEFAULT_TTL = 24 * 3600.0  # seconds, for responses stored (`store` on, the API's default)
EPHEMERAL_TTL = 30 * 60.0  # seconds, for `store: false` responses no later turn has continued yet
CONSUMED_GRACE = 60.0  # seconds a `store: false` response is kept after a later response took its items over
RESPONSES = "openai_responses"

PREVIOUS = "previous_response_id"
ITEM_MESSAGE = "message"
ITEM_FUNCTION_CALL = "function_call"
ITEM_REASONING = "reasoning"
ROLE_USER = "user"
ROLE_ASSISTANT = "assistant"
NOT_FOUND_CODE = "previous_response_not_found"


class UnknownResponse(Exception):
    """A `previous_response_id` whose lineage Rotator does not hold, for a target that cannot resolve it."""

    def __init__(self, response_id: str) -> None:
        super().__init__(f"Previous response with id '{response_id}' not found.")
        self.response_id = response_id

    def body(self) -> bytes:
        """OpenAI's own answer to an unknown previous response (status 400)."""
        error = openai_error(400, str(self))
        error.update(param=PREVIOUS, code=NOT_FOUND_CODE)
        return dumps({"error": error})


@dataclass(slots=True)
class Served:
    """One response Rotator served: what it continued, its request's input items and its answer's output items."""

    previous: str | None
    input: list = field(default_factory=list)
    output: list = field(default_factory=list)
    provider: str = ""
    native: bool = False  # served by a Responses provider, which then holds it too (when stored)
    stored: bool = True  # the request's `store` (false: kept only until its continuation)

    def resolvable_by(self, provider: str) -> bool:
        return self.native and self.stored and self.provider == provider


@dataclass(slots=True)
class Expansion:
    """What `expand` made of a request: the body to send, and how many earlier responses it replays."""

    body: dict
    replayed: int = 0


def input_items(body: dict) -> list:
    """A Responses request's `input` as a list of items (a string is one user message; anything else stays, for
    the translator to judge)."""
    items = body.get("input")
    if isinstance(items, str):
        return [{"type": ITEM_MESSAGE, "role": ROLE_USER, "content": items}]
    if items is None:
        return []
    return list(items) if isinstance(items, list) else [items]


def output_items(answer: Answer) -> list[dict]:
    """An answer's output as Responses input items, for replay. Reasoning is kept only with Responses' own
    encrypted_content (another vendor's signed thinking is the field cache's, found by the turn's call ids)."""
    items: list[dict] = []
    for part in answer.parts:
        if isinstance(part, Text) and part.text:
            if items and items[-1]["type"] == ITEM_MESSAGE:
                items[-1]["content"][0]["text"] += part.text
            else:
                items.append({"type": ITEM_MESSAGE, "role": ROLE_ASSISTANT,
                              "content": [{"type": "output_text", "text": part.text}]})
        elif isinstance(part, ToolCall):
            items.append({"type": ITEM_FUNCTION_CALL, "call_id": part.id, "name": part.name,
                          "arguments": part.arguments or "{}"})
        elif isinstance(part, Reasoning) and part.origin == RESPONSES and part.signature:
            item = {"type": ITEM_REASONING, "summary": [{"type": "summary_text", "text": part.text}] if part.text
                    else [], "encrypted_content": part.signature}
            items.append({"id": part.id, **item} if part.id else item)
    return items


class Continuity:
    def __init__(self, store: Store, ttl: float = DEFAULT_TTL, ephemeral_ttl: float = EPHEMERAL_TTL) -> None:
        self.store = store
        self.ttl = ttl
        self.ephemeral_ttl = ephemeral_ttl

    @staticmethod
    def _key(client: str, response_id: str) -> str:
        return KEY_PREFIX + hashlib.sha256(f"{client}\0{response_id}".encode()).hexdigest()

    def _load(self, client: str, response_id: str) -> Served | None:
        value = self.store.get(self._key(client, response_id))
        if value is None:
            return None
        try:
            return Served(**json.loads(value))
        except (ValueError, TypeError):
            return None  # not a record of ours

    def _save(self, client: str, response_id: str, served: Served, ttl: float | None = None) -> None:
        if ttl is None:
            ttl = self.ttl if served.stored else self.ephemeral_ttl
        value = json.dumps(asdict(served), separators=(",", ":"), ensure_ascii=False).encode()
        self.store.put(self._key(client, response_id), value, ttl)

    def expand(self, body: dict, provider: str, speaks_responses: bool, client: str = "") -> Expansion:
        """The request to send to `provider` (a Responses provider if `speaks_responses`): unchanged when it can
        resolve `previous_response_id` itself, else with the lineage's items in front of its input (and no
        `previous_response_id`, or one naming the newest response the provider holds). Raises UnknownResponse."""
        previous = body.get(PREVIOUS)
        if previous is None or previous == "":
            return Expansion(body)
        served = self._load(client, previous) if isinstance(previous, str) else None
        if served is None:
            if speaks_responses:
                return Expansion(body)  # not one Rotator served elsewhere: the provider may hold it
            raise UnknownResponse(str(previous))
        chain: list[Served] = []
        seen: set[str] = set()
        resolvable: str | None = None
        response_id: str | None = previous
        while response_id is not None:
            if served is None or response_id in seen:  # a lineage that loops is no lineage
                raise UnknownResponse(response_id)
            seen.add(response_id)
            if speaks_responses and served.resolvable_by(provider):
                resolvable = response_id
                break
            chain.append(served)
            response_id = served.previous
            served = self._load(client, response_id) if response_id is not None else None
        if not chain:
            return Expansion(body)
        items = [item for s in reversed(chain) for item in (*s.input, *s.output)]
        expanded = {k: v for k, v in body.items() if k != PREVIOUS}
        expanded["input"] = items + input_items(body)
        if resolvable is not None:
            expanded[PREVIOUS] = resolvable
        return Expansion(expanded, len(chain))

    def record(self, response_id: str, body: dict, output: list, provider: str, native: bool,
               client: str = "") -> None:
        """Keep a response Rotator served: `body` is the client's request as it sent it, `output` the answer's
        output items. A `store: false` response it continues hands its items over to this one."""
        if not response_id or response_id == body.get(PREVIOUS):
            return  # an id the upstream did not make unique cannot name a turn
        previous = body.get(PREVIOUS) if isinstance(body.get(PREVIOUS), str) and body.get(PREVIOUS) else None
        served = Served(previous, input_items(body), list(output), provider, native, body.get("store") is not False)
        parent = self._load(client, previous) if previous is not None else None
        if previous is not None and parent is not None and not parent.stored:
            # Take the store:false parent's items over, so it need not outlive this turn.
            served.previous = parent.previous
            served.input = [*parent.input, *parent.output, *served.input]
            self._save(client, previous, parent, ttl=CONSUMED_GRACE)
        self._save(client, response_id, served)
