"""OpenAI Responses: its stream repairer and aggregator (stream.py), its translator to and from the unified form
(translate.py), its usage reader (usage.py); and its registration, all the engine knows of it."""

from protocols.openai_chat import OPENAI_CREDENTIAL
from protocols.openai_responses import conversation
from protocols.openai_responses.stream import OpenAIResponses
from protocols.openai_responses.translate import TRANSLATOR
from protocols.openai_responses.usage import ResponsesSniffer
from protocols.registration import Registration

# Stateful: reasoning items with `encrypted_content`.
REGISTRATION = Registration(OpenAIResponses(), TRANSLATOR, ResponsesSniffer, "OpenAI Responses", OPENAI_CREDENTIAL,
                            stateful=True, choice="responses", conversation=conversation.READER)

# Its mid-stream resume (resume.py) registers itself with protocols.resume.
from protocols.openai_responses import resume as _resume  # noqa: E402,F401
