"""Gemini generateContent: its stream repairer and aggregator (stream.py), its translator to and from the unified form
(translate/), its usage reader (usage.py), its conversation evidence (evidence.py), its mid-stream resume (resume.py);
and its registration, all the engine knows of it. Its family, the Gemini API's, is protocols/families/gemini/."""

from protocols.families import gemini
from protocols.gemini import evidence, resume
from protocols.gemini.stream import Gemini
from protocols.gemini.translate import TRANSLATOR
from protocols.gemini.usage import GeminiSniffer
from protocols.registration import Registration

# Stateful: a function call's `thoughtSignature`.
REGISTRATION = Registration(Gemini(), TRANSLATOR, GeminiSniffer, "Gemini", gemini.FAMILY, stateful=True,
                            evidence=evidence.READER, resumer=resume.RESUMER)
