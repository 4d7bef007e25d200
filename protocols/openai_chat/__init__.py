"""OpenAI Chat Completions: its stream repairer and aggregator (stream.py), its translator to and from the unified
form (translate/), its usage reader (usage.py), OpenAI's error reader (errors.py); and its registration, all the
engine knows of it."""

from protocols.openai_chat import conversation
from protocols.openai_chat.errors import OPENAI_ERRORS
from protocols.openai_chat.stream import OpenAIChat
from protocols.openai_chat.translate import TRANSLATOR
from protocols.openai_chat.usage import ChatSniffer
from protocols.openai_chat.windows import OPENAI_WINDOWS
from protocols.registration import CredentialStyle, Registration

# How OpenAI's providers take a key (Azure-style `api-key` too), for both OpenAI protocols.
OPENAI_CREDENTIAL = CredentialStyle(
    "authorization", "Bearer {}", ("authorization", "api-key"),
    account_headers=("openai-organization", "openai-project", "cookie"),
    account_fields=(("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")),
)

REGISTRATION = Registration(OpenAIChat(), TRANSLATOR, ChatSniffer, "OpenAI Chat Completions", OPENAI_CREDENTIAL,
                            choice="chat", errors=OPENAI_ERRORS, windows=OPENAI_WINDOWS,
                            conversation=conversation.READER)

# Its mid-stream resume (resume.py) registers itself with protocols.resume.
from protocols.openai_chat import resume as _resume  # noqa: E402,F401
