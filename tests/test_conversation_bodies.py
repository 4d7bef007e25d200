"""Conversation evidence from bodies of any shape: every field of a request that uses all of its protocol's features,
replaced in turn by a value of every other JSON type (or left out), still gives evidence, never an exception (a
malformed body is forwarded for its vendor to answer: its evidence must not be what stops it)."""

from __future__ import annotations

import copy
import json

import pytest

import protocols
from protocols.evidence import DEPTH

LONG = "y" * 300
ANTHROPIC = {
    "model": "claude-opus-4-8", "max_tokens": 100, "cache_control": {"type": "ephemeral", "ttl": "1h"},
    "metadata": {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": "s"})},
    "tools": [{"name": "Read", "description": LONG, "input_schema": {"type": "object", "properties": {"p": {}}},
               "cache_control": {"type": "ephemeral"}}, {"type": "web_search_20250305", "name": "web_search"}],
    "system": [{"type": "text", "text": "x-anthropic-billing-header: cch=1;"},
               {"type": "text", "text": LONG, "cache_control": {"type": "ephemeral", "ttl": "5m"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": "iVBOR" * 50}},
                                     {"type": "document", "source": {"type": "content", "content": [
                                         {"type": "text", "text": "doc"}]}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": 1}},
                                          {"type": "server_tool_use", "id": "srv_1", "name": "web_search"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "text", "text": LONG}, {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}]}]},
        {"role": "system", "content": "be brief"},
    ],
}
CHAT = {
    "model": "gpt-5.5", "prompt_cache_retention": "24h", "prompt_cache_options": {"mode": "auto", "ttl": "30m"},
    "prompt_cache_key": "k", "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                                                                         "parameters": {"properties": {"a": {}}}}},
                                       {"type": "custom", "custom": {"name": "exec"}}],
    "functions": [{"name": "legacy", "parameters": {}}],
    "messages": [
        {"role": "system", "content": "S"}, {"role": "developer", "content": [{"type": "text", "text": "D"}]},
        {"role": "user", "content": [
            {"type": "text", "text": LONG, "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
            {"type": "file", "file": {"file_id": "file_1"}}]},
        {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
            {"id": "call_2", "type": "custom", "custom": {"name": "exec", "input": "ls"}}],
         "function_call": {"name": "legacy", "arguments": "{}"}},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
    ],
}
RESPONSES = {
    "model": "gpt-6.1-sol", "previous_response_id": "resp_1", "conversation": {"id": "conv_1"},
    "prompt_cache_retention": "in_memory", "instructions": [{"role": "developer", "content": "I"}],
    "tools": [{"type": "namespace", "name": "functions", "tools": [{"type": "function", "name": "f"}]},
              {"type": "custom", "name": "exec", "format": {"type": "grammar"}}],
    "input": [
        {"type": "additional_tools", "role": "developer", "tools": [{"type": "function", "name": "g"}]},
        {"role": "developer", "content": "D"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": LONG, "prompt_cache_breakpoint": {"ttl": "30m"}},
            {"type": "input_image", "image_url": "https://x/i.png"}, {"type": "input_file", "file_id": "f1"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA" + LONG},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "namespace": "functions"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "ok"}]},
        {"type": "custom_tool_call", "call_id": "c2", "name": "exec", "input": "ls"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "files"},
        {"type": "item_reference", "id": "msg_9"}, {"type": "compaction", "encrypted_content": "gAAAA" + LONG},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ],
}
GEMINI = {
    "cachedContent": "cachedContents/c1",
    "tools": [{"functionDeclarations": [{"name": "ls", "parametersJsonSchema": {"properties": {"p": {}}}}]},
              {"googleSearch": {}}],
    "systemInstruction": {"parts": [{"text": LONG}]},
    "contents": [
        {"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR" * 40}},
                                   {"fileData": {"fileUri": "gs://b/f"}}]},
        {"role": "model", "parts": [{"text": "hm", "thought": True},
                                    {"functionCall": {"id": "c1", "name": "ls", "args": {"p": [1, {"q": "r"}]}},
                                     "thoughtSignature": "sig"},
                                    {"executableCode": {"language": "PYTHON", "code": "print(1)"}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "ls", "response": {"output": LONG}}}]},
    ],
}
ENVELOPE = {"model": "gemini-2.5-flash", "project": "p", "request": {**GEMINI, "session_id": "s"}}
BODIES = [("anthropic_messages", ANTHROPIC), ("openai_chat", CHAT), ("openai_responses", RESPONSES),
          ("gemini", GEMINI), ("gemini", ENVELOPE)]
OTHERS = [None, 7, 2.5, True, "s", "", [], {}, [[1]], {"k": [1]}, [None, "x"]]


def paths(value: object, at: tuple = ()):
    yield at
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*at, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from paths(inner, (*at, i))


def replaced(body: dict, at: tuple, value: object, delete: bool = False) -> dict:
    out = copy.deepcopy(body)
    holder = out
    for step in at[:-1]:
        holder = holder[step]
    if delete and isinstance(holder, dict):
        del holder[at[-1]]
    else:
        holder[at[-1]] = value
    return out


@pytest.mark.parametrize(("name", "body"), BODIES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BODIES)])
def test_every_field_of_another_type_or_left_out_still_gives_evidence(name, body):
    reader = protocols.registered(name).evidence
    assert reader.read([], body).messages >= 3
    for at in list(paths(body))[1:]:
        for value in OTHERS:
            evidence = reader.read([], replaced(body, at, value))
            assert 1 <= len(evidence.links) <= min(evidence.messages, DEPTH) + 1 and evidence.prompt_tokens >= 0
        reader.read([], replaced(body, at, None, delete=True))
