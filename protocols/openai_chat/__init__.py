"""OpenAI Chat Completions: its stream repairer and aggregator (stream.py), its translator to and from the unified form
(translate/), its usage reader (usage.py), its conversation evidence (evidence.py), its mid-stream resume (resume.py);
and its registration, all the engine knows of it. Its family, OpenAI's, is protocols/families/openai/."""

from protocols.families import openai
from protocols.openai_chat import evidence, resume
from protocols.openai_chat.stream import OpenAIChat
from protocols.openai_chat.translate import TRANSLATOR
from protocols.openai_chat.usage import ChatSniffer
from protocols.registration import Registration

REGISTRATION = Registration(OpenAIChat(), TRANSLATOR, ChatSniffer, "OpenAI Chat Completions", openai.FAMILY,
                            choice="chat", evidence=evidence.READER, resumer=resume.RESUMER)
