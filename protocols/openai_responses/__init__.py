"""OpenAI Responses: its stream repairer and aggregator (stream.py), its translator to and from the unified form
(translate/), its usage reader (usage.py), its `previous_response_id` (continuity.py), its conversation evidence
(evidence.py), its mid-stream resume (resume.py); and its registration, all the engine knows of it. Its family,
OpenAI's, is protocols/families/openai/."""

from protocols.errors import openai_error
from protocols.families import openai
from protocols.openai_responses import evidence, resume
from protocols.openai_responses.continuity import PreviousResponses
from protocols.openai_responses.stream import OpenAIResponses
from protocols.openai_responses.translate import TRANSLATOR
from protocols.openai_responses.usage import ResponsesSniffer
from protocols.registration import Registration
from protocols.sse import dumps

WEBSOCKET_REFUSED_STATUS = 426
WEBSOCKET_REFUSED_CODE = "websocket_not_supported"


def websocket_refusal(message: str) -> bytes:
    """Codex CLI opens Responses as a WebSocket first, and uses HTTPS POST for the session once that is refused."""
    return dumps({"error": {**openai_error(WEBSOCKET_REFUSED_STATUS, message), "code": WEBSOCKET_REFUSED_CODE}})


# Stateful: reasoning items with `encrypted_content`.
REGISTRATION = Registration(OpenAIResponses(), TRANSLATOR, ResponsesSniffer, "OpenAI Responses", openai.FAMILY,
                            stateful=True, choice="responses", continuity=PreviousResponses(),
                            websocket_refusal=websocket_refusal, evidence=evidence.READER, resumer=resume.RESUMER)
