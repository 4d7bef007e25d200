"""Gemini generateContent: its stream repairer and aggregator (stream.py), its translator to and from the unified
form (translate/), its usage reader (usage.py), its error reader (errors.py); and its registration, all the engine
knows of it."""

from protocols.gemini import conversation
from protocols.gemini.errors import GEMINI_ERRORS
from protocols.gemini.stream import Gemini
from protocols.gemini.translate import TRANSLATOR
from protocols.gemini.usage import GeminiSniffer
from protocols.gemini.windows import GEMINI_WINDOWS
from protocols.registration import CredentialStyle, Registration

GEMINI_CREDENTIAL = CredentialStyle(
    "x-goog-api-key", "{}", ("x-goog-api-key", "authorization"), client_query="key",
    account_headers=("x-goog-user-project", "cookie"),
)

# Stateful: a function call's `thoughtSignature`.
REGISTRATION = Registration(Gemini(), TRANSLATOR, GeminiSniffer, "Gemini", GEMINI_CREDENTIAL, stateful=True,
                            errors=GEMINI_ERRORS, windows=GEMINI_WINDOWS,
                            conversation=conversation.READER)

# Its mid-stream resume (resume.py) registers itself with protocols.resume.
from protocols.gemini import resume as _resume  # noqa: E402,F401
