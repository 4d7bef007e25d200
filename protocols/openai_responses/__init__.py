"""OpenAI Responses: its stream repairer and aggregator (stream.py), its translator to and from the unified
form (translate.py)."""
