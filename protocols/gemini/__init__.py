"""Gemini generateContent: its stream repairer and aggregator (stream.py), its translator to and from the unified
form (translate/), its usage reader (usage.py), its conversation evidence (evidence.py); and its registration,
all the engine knows of it. Its family, the Gemini API's, is protocols/families/gemini/."""

from protocols.families import gemini
from protocols.gemini import evidence
from protocols.gemini.stream import Gemini
from protocols.gemini.translate import TRANSLATOR
from protocols.gemini.usage import GeminiSniffer
from protocols.registration import Registration

# Stateful: a function call's `thoughtSignature`.
REGISTRATION = Registration(Gemini(), TRANSLATOR, GeminiSniffer, "Gemini", gemini.FAMILY, stateful=True,
                            evidence=evidence.READER)

# Its mid-stream resume (resume.py) registers itself with protocols.resume.
from protocols.gemini import resume as _resume  # noqa: E402,F401
