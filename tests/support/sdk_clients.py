"""The official SDKs reading a canned response body through an in-memory transport: no sockets, ~1 ms a call.

Each helper serves `body` as the streamed answer and returns what the SDK's own streaming code made of it.
"""

from __future__ import annotations

import functools

import anthropic
import httpx
import httpx2
import openai
from google import genai
from google.genai import types as genai_types

_ANSWER = {"body": b"", "status": 200}
SSE_HEADERS = {"content-type": "text/event-stream"}
JSON_HEADERS = {"content-type": "application/json"}
PROMPT = [{"role": "user", "content": "hi"}]


def _headers() -> dict:
    return SSE_HEADERS if _ANSWER["status"] == 200 else JSON_HEADERS


def _serve2(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(_ANSWER["status"], content=_ANSWER["body"], headers=_headers())


def _serve(request: httpx.Request) -> httpx.Response:
    return httpx.Response(_ANSWER["status"], content=_ANSWER["body"], headers=_headers())


def _answer(body: bytes, status: int) -> None:
    _ANSWER["body"], _ANSWER["status"] = body, status


@functools.cache
def openai_client() -> openai.OpenAI:
    transport = httpx2.MockTransport(_serve2)
    return openai.OpenAI(api_key="k", base_url="http://sdk.test/v1", http_client=httpx2.Client(transport=transport), max_retries=0)


@functools.cache
def anthropic_client() -> anthropic.Anthropic:
    transport = httpx2.MockTransport(_serve2)
    return anthropic.Anthropic(api_key="k", base_url="http://sdk.test", http_client=httpx2.Client(transport=transport), max_retries=0)


@functools.cache
def genai_client() -> genai.Client:
    options = genai_types.HttpOptions(base_url="http://sdk.test", httpx_client=httpx.Client(transport=httpx.MockTransport(_serve)))
    return genai.Client(api_key="k", http_options=options)


def chat_chunks(body: bytes, status: int = 200) -> list:
    """`chat.completions.create(stream=True)`: the chunks the SDK yields."""
    _answer(body, status)
    return list(openai_client().chat.completions.create(model="m", messages=PROMPT, stream=True))


def chat_final(body: bytes):
    """`chat.completions.stream()` helper: the accumulated completion (raises LengthFinishReasonError on length)."""
    _answer(body, 200)
    with openai_client().chat.completions.stream(model="m", messages=PROMPT) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion()


def responses_events(body: bytes, status: int = 200) -> list:
    """`responses.stream()` helper: every event, after the helper's own ordering checks and accumulation."""
    _answer(body, status)
    with openai_client().responses.stream(model="m", input="hi") as stream:
        return list(stream)


def anthropic_final(body: bytes, status: int = 200):
    """`messages.stream()` helper: (events, the accumulated final message)."""
    _answer(body, status)
    with anthropic_client().messages.stream(model="c", max_tokens=10, messages=PROMPT) as stream:
        events = list(stream)
        return events, stream.get_final_message()


def gemini_chunks(body: bytes, status: int = 200) -> list:
    """`models.generate_content_stream()`: the responses the SDK yields."""
    _answer(body, status)
    return list(genai_client().models.generate_content_stream(model="g", contents="hi"))
