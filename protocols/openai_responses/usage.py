"""OpenAI Responses' usage: the response's `usage`, in a stream on its last event."""

from __future__ import annotations

from protocols.base import count, member
from protocols.unified import Usage
from protocols.usage import UsageSniffer


def usage_to_ir(usage: dict) -> Usage:
    inputs = member(usage, "input_tokens_details")
    return Usage(
        input_tokens=count(usage, "input_tokens"),
        output_tokens=count(usage, "output_tokens"),
        reasoning_tokens=count(member(usage, "output_tokens_details"), "reasoning_tokens"),
        cache_read_tokens=count(inputs, "cached_tokens"),
        cache_write_tokens=count(inputs, "cache_write_tokens"),
    )


class ResponsesSniffer(UsageSniffer):
    """`response.completed` / `incomplete` / `failed` carry the response with its usage (`response.created`'s
    usage is null)."""

    mark = '"input_tokens"'
    events = frozenset({"response.completed", "response.incomplete", "response.failed"})
    to_usage = staticmethod(usage_to_ir)
    names_answers = True

    def usage_of(self, obj: dict) -> object:
        response = obj.get("response")
        return response.get("usage") if isinstance(response, dict) else None

    @classmethod
    def id_of(cls, obj: dict) -> str | None:
        """A stored answer's id (a later request's `previous_response_id`): the response's in its last event, a whole
        answer's own."""
        response = obj.get("response", obj)
        answer_id = response.get("id") if isinstance(response, dict) else None
        return answer_id if isinstance(answer_id, str) and answer_id else None
