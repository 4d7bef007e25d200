"""Recorded-style bodies for the translation tests: one conversation said in each protocol, and answers.

The four requests say the same thing: a system prompt, a question with an image by URL and an inline one, an
assistant turn with text and two parallel tool calls, their results (the second an error), and a follow-up; two
tools, tool_choice auto, sampling settings. Each also carries what only its protocol can say (reasoning with
its opaque signature).
"""

from __future__ import annotations

import json

SYSTEM = "You are a terse assistant."
QUESTION = "What is the weather in Paris, and the time there?"
IMAGE_URL = "https://upload.wikimedia.org/wikipedia/commons/a/a8/Tour_Eiffel_Wikimedia_Commons.jpg"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PREAMBLE = "Let me check both."
WEATHER_ARGS = {"city": "Paris"}
TIME_ARGS = {"tz": "Europe/Paris"}
WEATHER_RESULT = "18C, cloudy"
TIME_ERROR = "clock service unavailable"
FOLLOW_UP = "Thanks. Summarise in one line."
THINKING = "The user wants two facts; call both tools at once."
ANTHROPIC_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
GEMINI_SIGNATURE = "CiQBVKhc7tUzJj1yqxMuC0Jbt2nO0n4hJ0gkqUdR1X3z1u5rs6s="
RESPONSES_ENCRYPTED = "gAAAAABo8xQ1k2m9Y0bN8yJfV3cE5rR1hX4vT9qL0wZ7sK2uP6dA3gM8eC1nB5"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                  "required": ["city"]}
TIME_SCHEMA = {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}

CHAT_REQUEST = {
    "model": "gpt-4.1",
    "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": [
            {"type": "text", "text": QUESTION},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "low"}},
        ]},
        {"role": "assistant", "content": PREAMBLE, "tool_calls": [
            {"id": "call_Wd3Yq7uB1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)}},
            {"id": "call_Xk9Lm2cQ4", "type": "function",
             "function": {"name": "get_time", "arguments": json.dumps(TIME_ARGS)}},
        ]},
        {"role": "tool", "tool_call_id": "call_Wd3Yq7uB1", "content": WEATHER_RESULT},
        {"role": "tool", "tool_call_id": "call_Xk9Lm2cQ4", "content": f"Error: {TIME_ERROR}"},
        {"role": "user", "content": FOLLOW_UP},
    ],
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                          "parameters": WEATHER_SCHEMA}},
        {"type": "function", "function": {"name": "get_time", "description": "Local time",
                                          "parameters": TIME_SCHEMA}},
    ],
    "tool_choice": "auto",
    "max_completion_tokens": 512,
    "temperature": 0.2,
    "top_p": 0.9,
    "stream": True,
    "stream_options": {"include_usage": True},
}

RESPONSES_REQUEST = {
    "model": "gpt-5-codex",
    "instructions": SYSTEM,
    "input": [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": QUESTION},
            {"type": "input_image", "image_url": IMAGE_URL, "detail": "auto"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": "low"},
        ]},
        {"type": "reasoning", "id": "rs_68f1b0c2a1", "summary": [{"type": "summary_text", "text": THINKING}],
         "encrypted_content": RESPONSES_ENCRYPTED},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": PREAMBLE}]},
        {"type": "function_call", "call_id": "call_Wd3Yq7uB1", "name": "get_weather",
         "arguments": json.dumps(WEATHER_ARGS)},
        {"type": "function_call", "call_id": "call_Xk9Lm2cQ4", "name": "get_time", "arguments": json.dumps(TIME_ARGS)},
        {"type": "function_call_output", "call_id": "call_Wd3Yq7uB1", "output": WEATHER_RESULT},
        {"type": "function_call_output", "call_id": "call_Xk9Lm2cQ4", "output": f"Error: {TIME_ERROR}"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": FOLLOW_UP}]},
    ],
    "tools": [
        {"type": "function", "name": "get_weather", "description": "Current weather", "parameters": WEATHER_SCHEMA,
         "strict": False},
        {"type": "function", "name": "get_time", "description": "Local time", "parameters": TIME_SCHEMA,
         "strict": False},
    ],
    "tool_choice": "auto",
    "max_output_tokens": 512,
    "temperature": 0.2,
    "top_p": 0.9,
    "stream": True,
}

ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 512,
    "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": QUESTION},
            {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": THINKING, "signature": ANTHROPIC_SIGNATURE},
            {"type": "text", "text": PREAMBLE},
            {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": WEATHER_ARGS},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_time", "input": TIME_ARGS},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "content": WEATHER_RESULT},
            {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
             "content": [{"type": "text", "text": TIME_ERROR}], "is_error": True},
            {"type": "text", "text": FOLLOW_UP},
        ]},
    ],
    "tools": [
        {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA},
        {"name": "get_time", "description": "Local time", "input_schema": TIME_SCHEMA},
    ],
    "tool_choice": {"type": "auto"},
    "temperature": 0.2,
    "top_p": 0.9,
    "stream": True,
}

# Gemini 2.5 gives function calls no id: results are matched to calls by order and name.
GEMINI_REQUEST = {
    "systemInstruction": {"parts": [{"text": SYSTEM}]},
    "contents": [
        {"role": "user", "parts": [
            {"text": QUESTION},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": IMAGE_URL}},
            {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
        ]},
        {"role": "model", "parts": [
            {"text": THINKING, "thought": True},
            {"text": PREAMBLE},
            {"functionCall": {"name": "get_weather", "args": WEATHER_ARGS}, "thoughtSignature": GEMINI_SIGNATURE},
            {"functionCall": {"name": "get_time", "args": TIME_ARGS}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": WEATHER_RESULT}}},
            {"functionResponse": {"name": "get_time", "response": {"error": TIME_ERROR}}},
            {"text": FOLLOW_UP},
        ]},
    ],
    "tools": [{"functionDeclarations": [
        {"name": "get_weather", "description": "Current weather", "parametersJsonSchema": WEATHER_SCHEMA},
        {"name": "get_time", "description": "Local time", "parametersJsonSchema": TIME_SCHEMA},
    ]}],
    "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    "generationConfig": {"maxOutputTokens": 512, "temperature": 0.2, "topP": 0.9},
}
GEMINI_MODEL = "gemini-2.5-pro"

REQUESTS = {
    "openai_chat": CHAT_REQUEST,
    "openai_responses": RESPONSES_REQUEST,
    "anthropic_messages": ANTHROPIC_REQUEST,
    "gemini": GEMINI_REQUEST,
}

# --- non-stream answers: reasoning, text and two parallel tool calls, with cached prompt tokens.

ANSWER_TEXT = "Checking both now."
PROMPT_TOKENS = 1200  # of which CACHE_READ were read from the prompt cache
CACHE_READ = 1000
OUTPUT_TOKENS = 90  # of which REASONING were reasoning
REASONING = 40

CHAT_ANSWER = {
    "id": "chatcmpl-CAb12xYz", "object": "chat.completion", "created": 1761000500, "model": "deepseek-reasoner",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": ANSWER_TEXT, "reasoning_content": THINKING, "refusal": None,
        "tool_calls": [
            {"id": "call_Wd3Yq7uB1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)}},
            {"id": "call_Xk9Lm2cQ4", "type": "function",
             "function": {"name": "get_time", "arguments": json.dumps(TIME_ARGS)}},
        ]}}],
    "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
              "total_tokens": PROMPT_TOKENS + OUTPUT_TOKENS,
              "prompt_tokens_details": {"cached_tokens": CACHE_READ},
              "completion_tokens_details": {"reasoning_tokens": REASONING}},
}

RESPONSES_ANSWER = {
    "id": "resp_68f1c0d1e2f3", "object": "response", "created_at": 1761000500, "status": "completed",
    "error": None, "incomplete_details": None, "model": "o4-mini-2025-04-16",
    "output": [
        {"id": "rs_68f1c0d2", "type": "reasoning", "summary": [{"type": "summary_text", "text": THINKING}],
         "encrypted_content": RESPONSES_ENCRYPTED},
        {"id": "msg_68f1c0d3", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": ANSWER_TEXT, "annotations": []}]},
        {"id": "fc_68f1c0d4", "type": "function_call", "status": "completed", "call_id": "call_Wd3Yq7uB1",
         "name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)},
        {"id": "fc_68f1c0d5", "type": "function_call", "status": "completed", "call_id": "call_Xk9Lm2cQ4",
         "name": "get_time", "arguments": json.dumps(TIME_ARGS)},
    ],
    "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "instructions": None, "metadata": {},
    "temperature": 1.0, "top_p": 1.0,
    "usage": {"input_tokens": PROMPT_TOKENS, "input_tokens_details": {"cached_tokens": CACHE_READ},
              "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": REASONING},
              "total_tokens": PROMPT_TOKENS + OUTPUT_TOKENS},
}

ANTHROPIC_ANSWER = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": THINKING, "signature": ANTHROPIC_SIGNATURE},
        {"type": "text", "text": ANSWER_TEXT},
        {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": WEATHER_ARGS},
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_time", "input": TIME_ARGS},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": PROMPT_TOKENS - CACHE_READ, "cache_creation_input_tokens": 0,
              "cache_read_input_tokens": CACHE_READ, "output_tokens": OUTPUT_TOKENS,
              "output_tokens_details": {"thinking_tokens": REASONING}},
}

GEMINI_ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": THINKING, "thought": True},
        {"text": ANSWER_TEXT},
        {"functionCall": {"name": "get_weather", "args": WEATHER_ARGS}, "thoughtSignature": GEMINI_SIGNATURE},
        {"functionCall": {"name": "get_time", "args": TIME_ARGS}},
    ]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": PROMPT_TOKENS, "cachedContentTokenCount": CACHE_READ,
                      "candidatesTokenCount": OUTPUT_TOKENS - REASONING, "thoughtsTokenCount": REASONING,
                      "totalTokenCount": PROMPT_TOKENS + OUTPUT_TOKENS},
    "modelVersion": "gemini-2.5-pro", "responseId": "Zr7xaM2dFYbWz7IPvLOq8AQ",
}

ANSWERS = {
    "openai_chat": CHAT_ANSWER,
    "openai_responses": RESPONSES_ANSWER,
    "anthropic_messages": ANTHROPIC_ANSWER,
    "gemini": GEMINI_ANSWER,
}

# A Gemini stream whose function calls carry no id, two in one turn.
GEMINI_PARALLEL_CALLS = b"".join(
    b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n" for chunk in (
        {"candidates": [{"content": {"role": "model", "parts": [{"text": PREAMBLE}]}, "index": 0}],
         "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 4, "totalTokenCount": 44},
         "modelVersion": "gemini-2.5-flash", "responseId": "pQ8xaK2rBovXz7IPm9Wq4Ag"},
        {"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": WEATHER_ARGS}},
            {"functionCall": {"name": "get_time", "args": TIME_ARGS}}]}, "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 20, "totalTokenCount": 60},
         "modelVersion": "gemini-2.5-flash", "responseId": "pQ8xaK2rBovXz7IPm9Wq4Ag"},
    )
)


def anthropic_request() -> dict:
    return {"model": "m", "max_tokens": 4096, "messages": [{"role": "user", "content": QUESTION}],
            "tools": [{"name": "get_weather", "input_schema": WEATHER_SCHEMA},
                      {"name": "get_time", "input_schema": TIME_SCHEMA}]}


def anthropic_replay(first: dict, answer: dict) -> dict:
    results = [{"type": "tool_result", "tool_use_id": b["id"], "content": WEATHER_RESULT}
               for b in answer["content"] if b["type"] == "tool_use"]
    return {**first, "messages": [*first["messages"], {"role": "assistant", "content": answer["content"]},
                                  {"role": "user", "content": results}]}
