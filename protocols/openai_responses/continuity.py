"""Responses' `previous_response_id` (protocols/stored_responses.py): a request continuing a stored response, its
items replayed for a target that cannot resolve it.

Instructions are not inherited through `previous_response_id` (as with OpenAI): each request keeps its own.
Reasoning is replayed only with Responses' own `encrypted_content` (another vendor's signed thinking is the field
cache's, found by the turn's call ids).
"""

from __future__ import annotations

from protocols.errors import openai_error
from protocols.openai_responses.translate.answer_out import response_id_for
from protocols.openai_responses.translate.vocabulary import NAME, SYNTHETIC_ID
from protocols.sse import dumps
from protocols.stored_responses import StoredResponses
from protocols.unified import Answer, Reasoning, Text, ToolCall

PREVIOUS = "previous_response_id"
ITEM_MESSAGE = "message"
ITEM_FUNCTION_CALL = "function_call"
ITEM_REASONING = "reasoning"
ROLE_USER = "user"
ROLE_ASSISTANT = "assistant"
NOT_FOUND_STATUS = 400
NOT_FOUND_CODE = "previous_response_not_found"


class PreviousResponses(StoredResponses):
    def previous(self, body: dict) -> object:
        return body.get(PREVIOUS)

    def stored(self, body: dict) -> bool:
        return body.get("store") is not False

    def input_items(self, body: dict) -> list:
        """`input` as a list of items (a string is one user message; anything else stays, for the translator to
        judge)."""
        items = body.get("input")
        if isinstance(items, str):
            return [{"type": ITEM_MESSAGE, "role": ROLE_USER, "content": items}]
        if items is None:
            return []
        return list(items) if isinstance(items, list) else [items]

    def output_items(self, answer: Answer) -> list[dict]:
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
            elif isinstance(part, Reasoning) and part.origin == NAME and part.signature:
                item = {"type": ITEM_REASONING, "summary": [{"type": "summary_text", "text": part.text}]
                        if part.text else [], "encrypted_content": part.signature}
                items.append({"id": part.id, **item} if part.id else item)
        return items

    def expanded(self, body: dict, items: list, previous: str | None) -> dict:
        out = {k: v for k, v in body.items() if k != PREVIOUS}
        out["input"] = items + self.input_items(body)
        if previous is not None:
            out[PREVIOUS] = previous
        return out

    def response_id(self, answer_id: str) -> str | None:
        response_id = response_id_for(answer_id)
        return None if response_id == SYNTHETIC_ID else response_id

    def unknown(self, response_id: str) -> tuple[int, bytes]:
        """OpenAI's own answer to an unknown previous response."""
        error = openai_error(NOT_FOUND_STATUS, f"Previous response with id '{response_id}' not found.")
        error.update(param=PREVIOUS, code=NOT_FOUND_CODE)
        return NOT_FOUND_STATUS, dumps({"error": error})
