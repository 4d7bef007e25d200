"""OpenAI Responses: its stream repairer and aggregator (stream.py), its translator to and from the unified
form (translate.py), its mid-stream resume (resume.py, registered with protocols.resume)."""

from protocols.openai_responses import resume as _resume  # noqa: F401  (registers itself)
