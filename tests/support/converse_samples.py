"""Bedrock Converse bodies and streams for the tests, in the shapes boto3 sends and Bedrock answers (botocore's
service model of bedrock-runtime): the conversation of tests/support/translate_samples.py said in Converse, an answer,
and ConverseStreams as frames (with the `p` padding field Bedrock adds to its events, which clients ignore).

Converse takes no image by URL, only inline bytes or an S3 object: its conversation's first image is in S3.
"""

from __future__ import annotations

from protocols.eventstream import event_frame, exception_frame
from tests.support import translate_samples as S

NAME = "bedrock_converse"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
S3_IMAGE = "s3://rotator-test-images/tour-eiffel.jpg"
SIGNATURE = "ErcBCkgIBhABGAIiQBbh7Z3J2mVd8u9e5Yx0hW4kQyP1sTcN6aLoRq"
WEATHER_ID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
TIME_ID = "tooluse_7pA1bC2dE3fG4hI5jK6lMw"
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"


TOOL_CONFIG = {"tools": [
    {"toolSpec": {"name": "get_weather", "description": "Current weather", "inputSchema": {"json": S.WEATHER_SCHEMA}}},
    {"toolSpec": {"name": "get_time", "description": "Local time", "inputSchema": {"json": S.TIME_SCHEMA}}},
], "toolChoice": {"auto": {}}}

REQUEST = {
    "system": [{"text": S.SYSTEM}, {"cachePoint": {"type": "default"}}],
    "messages": [
        {"role": "user", "content": [
            {"text": S.QUESTION},
            {"image": {"format": "jpeg", "source": {"s3Location": {"uri": S3_IMAGE}}}},
            {"image": {"format": "png", "source": {"bytes": S.PNG_B64}}},
        ]},
        {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": S.THINKING, "signature": SIGNATURE}}},
            {"text": S.PREAMBLE},
            {"toolUse": {"toolUseId": WEATHER_ID, "name": "get_weather", "input": S.WEATHER_ARGS}},
            {"toolUse": {"toolUseId": TIME_ID, "name": "get_time", "input": S.TIME_ARGS}},
        ]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": WEATHER_ID, "content": [{"text": S.WEATHER_RESULT}]}},
            {"toolResult": {"toolUseId": TIME_ID, "content": [{"text": S.TIME_ERROR}], "status": "error"}},
            {"text": S.FOLLOW_UP},
        ]},
    ],
    "toolConfig": TOOL_CONFIG,
    "inferenceConfig": {"maxTokens": 512, "temperature": 0.2, "topP": 0.9},
}

USAGE = {"inputTokens": S.PROMPT_TOKENS - S.CACHE_READ, "outputTokens": S.OUTPUT_TOKENS,
         "totalTokens": S.PROMPT_TOKENS + S.OUTPUT_TOKENS, "cacheReadInputTokens": S.CACHE_READ,
         "cacheWriteInputTokens": 0}

ANSWER = {
    "output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": S.THINKING, "signature": SIGNATURE}}},
        {"text": S.ANSWER_TEXT},
        {"toolUse": {"toolUseId": WEATHER_ID, "name": "get_weather", "input": S.WEATHER_ARGS}},
        {"toolUse": {"toolUseId": TIME_ID, "name": "get_time", "input": S.TIME_ARGS}},
    ]}},
    "stopReason": "tool_use",
    "usage": USAGE,
    "metrics": {"latencyMs": 1130},
}


def frames(*events: tuple[str, dict]) -> bytes:
    return b"".join(event_frame(name, {**payload, "p": PADDING[:len(name)]}) for name, payload in events)


def delta(index: int, delta_: dict) -> tuple[str, dict]:
    return "contentBlockDelta", {"contentBlockIndex": index, "delta": delta_}


def stop(index: int) -> tuple[str, dict]:
    return "contentBlockStop", {"contentBlockIndex": index}


def tool_start(index: int, id_: str, name: str) -> tuple[str, dict]:
    return "contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id_, "name": name}}}


START = ("messageStart", {"role": "assistant"})
TEXT_PIECES = ["Paris is ", "18C and cloudy", "; it is 14:05 there."]

TEXT_STREAM = frames(
    START,
    *(delta(0, {"text": piece}) for piece in TEXT_PIECES),
    stop(0),
    ("messageStop", {"stopReason": "end_turn"}),
    ("metadata", {"usage": {"inputTokens": 25, "outputTokens": 14, "totalTokens": 39}, "metrics": {"latencyMs": 412}}),
)

# Reasoning with its signature, text, then two tool calls whose input comes in fragments.
TOOL_STREAM = frames(
    START,
    delta(0, {"reasoningContent": {"text": "The user wants two facts; "}}),
    delta(0, {"reasoningContent": {"text": "call both tools at once."}}),
    delta(0, {"reasoningContent": {"signature": SIGNATURE}}),
    stop(0),
    delta(1, {"text": "Checking "}),
    delta(1, {"text": "both now."}),
    stop(1),
    tool_start(2, WEATHER_ID, "get_weather"),
    delta(2, {"toolUse": {"input": '{"city": '}}),
    delta(2, {"toolUse": {"input": '"Paris"}'}}),
    stop(2),
    tool_start(3, TIME_ID, "get_time"),
    delta(3, {"toolUse": {"input": '{"tz": "Europe/Paris"}'}}),
    stop(3),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": USAGE, "metrics": {"latencyMs": 1130}}),
)

STREAMS = {"converse_text": TEXT_STREAM, "converse_tools": TOOL_STREAM}

THROTTLED = "Too many tokens, please wait before trying again."
THROTTLED_STREAM = frames(START) + exception_frame("throttlingException", THROTTLED)
