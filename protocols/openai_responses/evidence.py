"""OpenAI Responses' conversation evidence (protocols/evidence.py).

Pins: `previous_response_id` and `conversation` (stored by the organization that answered), `item_reference` items
(stored items), and every item's `encrypted_content` (reasoning, compaction: an organization's key decrypts only its
own; OpenAI answers `invalid_encrypted_content` elsewhere). The root is `instructions`, `tools` and the leading
system and developer items (Codex's `additional_tools` item with them); a string `input` is one user message; then a
link per item, reasoning items aside (their content is signed, and clients drop them). The cache prefix and
lifetime as OpenAI's (protocols/families/openai/evidence.py).

Its state calls: on a stored response, `GET` and `DELETE …/responses/<id>`, `POST …/<id>/cancel` (a background
one), `GET …/<id>/input_items`, each naming it by the pin a stored answer is bound by (`previous_response_id`); on a
conversation, `POST …/conversations` makes one (the answer names it), and `GET`, `POST` (its metadata) and `DELETE
…/conversations/<id>` and its `…/items[/<item>]` name it. OpenAI keeps a conversation without expiry, and a stored
response 30 days from when it was made (a read does not lengthen it): neither answer says for how long.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from protocols.evidence import Reader, Scan, content_mark, tail, tools_mark
from protocols.families.openai.evidence import INSTRUCTION_ROLES, content_parts, openai_cache
from protocols.pins import (
    PIN_CONVERSATION,
    PIN_ENCRYPTED_CONTENT,
    PIN_ITEM_REFERENCE,
    PIN_PREVIOUS_RESPONSE,
    Kept,
    Pin,
    StateCall,
)

_ROOT_ITEMS = ("additional_tools",)
_CALL_ARGUMENTS = ("arguments", "input", "output")
_RESPONSE_CALL = re.compile(r"/responses/([^/]+)(/cancel|/input_items)?$")
_RESPONSE_METHODS = {"": ("GET", "DELETE"), "/cancel": ("POST",), "/input_items": ("GET",)}
CONVERSATIONS = "/conversations"
_CONVERSATION_CALL = re.compile(r"/conversations/([^/]+)(/items(?:/[^/]+)?)?$")
_CONVERSATION_METHODS = ("GET", "POST", "DELETE")


class ResponsesConversation(Reader):
    """(A reasoning item's `encrypted_content` is the state a request can go without: the model reasons afresh. A
    compaction item's is not: it holds the conversation's summary.)"""

    def foreign(self, body: object) -> tuple[str, ...]:
        items = body.get("input") if isinstance(body, dict) else None
        return tuple(m for i in items if (m := _reasoning_mark(i))) if isinstance(items, list) else ()

    def without(self, body: dict, marks: Collection[str]) -> dict | None:
        items = body.get("input")
        if not isinstance(items, list):
            return None
        kept = [i for i in items if _reasoning_mark(i) not in marks]
        return {**body, "input": kept} if len(kept) < len(items) else None

    def state_call(self, method: str, path: str) -> StateCall | None:
        if path.endswith(CONVERSATIONS):  # (its GET would list them, which OpenAI does not serve)
            return StateCall(None) if method == "POST" else None
        if match := _CONVERSATION_CALL.search(path):
            if method not in _CONVERSATION_METHODS:
                return None
            deletes = method == "DELETE" and match.group(2) is None  # (an item's deletion leaves it)
            return StateCall(Pin(PIN_CONVERSATION, match.group(1)), deletes)
        if (match := _RESPONSE_CALL.search(path)) and method in _RESPONSE_METHODS[match.group(2) or ""]:
            return StateCall(Pin(PIN_PREVIOUS_RESPONSE, match.group(1)), method == "DELETE")
        return None

    def kept(self, call: StateCall, asked: object, answer: object, now: float) -> Kept | None:
        """A conversation made or read names itself (kept without expiry: the pin's default binding); a stored
        response's own calls make nothing new."""
        if call.deletes or not isinstance(answer, dict) or answer.get("object") != "conversation":
            return None
        made = answer.get("id")
        if not isinstance(made, str) or not made or call.pin is not None and call.pin.value != made:
            return None
        return Kept(Pin(PIN_CONVERSATION, made), None)

    def scan(self, body: dict, path: str, scan: Scan) -> None:
        tools_mark(scan, body.get("tools"))
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        items = items if isinstance(items, list) else []
        instructions = body.get("instructions")
        if isinstance(instructions, str):
            scan.text(instructions)
        elif isinstance(instructions, list):
            for item in instructions:
                if isinstance(item, dict):
                    _item(scan, item)
        start = 0
        while start < len(items) and _in_root(items[start]):
            _item(scan, items[start])
            start += 1
        scan.close()
        for item in items[tail(scan, items, start, _linked):]:
            if isinstance(item, dict) and _item(scan, item):
                scan.close()
        conversation = body.get("conversation")
        scan.pin(PIN_CONVERSATION, conversation.get("id") if isinstance(conversation, dict) else conversation)
        scan.pin(PIN_PREVIOUS_RESPONSE, body.get("previous_response_id"))
        openai_cache(scan, body)


def _in_root(item: object) -> bool:
    return isinstance(item, dict) and (item.get("role") in INSTRUCTION_ROLES or item.get("type") in _ROOT_ITEMS)


def _linked(item: object) -> bool:
    """Whether the item makes a link (`_item`)."""
    return isinstance(item, dict) and item.get("type") != "reasoning"


def _reasoning_mark(item: object) -> str:
    """The mark of a reasoning item's encrypted content ("" for any other item)."""
    if isinstance(item, dict) and item.get("type") == "reasoning":
        content = item.get("encrypted_content")
        if isinstance(content, str) and content:
            return content_mark(content)
    return ""


def _item(scan: Scan, item: dict) -> bool:
    """Marks one input item; False for one that makes no link (a reasoning item)."""
    kind = item.get("type", "message")
    if kind == "message":
        scan.mark(f"{item.get('role')}")
        content_parts(scan, item.get("content"))
        return True
    if kind == "function_call" or kind == "function_call_output":
        call_id = item.get("call_id")
        scan.mark(f"{kind}|{call_id}|{item.get('name')}|{item.get('namespace')}")
        if isinstance(call_id, str) and call_id:  # (a call and its result are named by its id, not read)
            return True
        value = item.get("arguments", item.get("output"))
        if isinstance(value, list):
            content_parts(scan, value)
        else:
            scan.value(value)
        return True
    scan.pin(PIN_ENCRYPTED_CONTENT, item.get("encrypted_content"))
    if kind == "reasoning":
        return False
    if kind == "item_reference":
        scan.pin(PIN_ITEM_REFERENCE, item.get("id"))
        scan.mark(f"{kind}|{item.get('id')}")
        return True
    scan.mark(f"{kind}|{item.get('call_id', item.get('id'))}|{item.get('name')}|{item.get('namespace')}")
    if isinstance(item.get("encrypted_content"), str):  # a compaction item
        scan.opaque(item["encrypted_content"])
    if isinstance(item.get("tools"), list):  # additional_tools
        tools_mark(scan, item["tools"])
    for key in _CALL_ARGUMENTS:
        value = item.get(key)
        if isinstance(value, list):
            content_parts(scan, value)
        elif value is not None:
            scan.value(value)
    return True


READER = ResponsesConversation()
