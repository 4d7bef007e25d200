"""LangChain's chat models (langchain-openai, langchain-anthropic, langchain-google-genai) through a real mitmdump,
against the fake vendor: what an application built on LangChain gets back when Rotator retries, repairs and routes.

Each model is built as an application builds it, with a model name and nothing else: it finds the proxy, the CA
and its API key in the environment (HTTPS_PROXY, SSL_CERT_FILE, OPENAI_API_KEY / ANTHROPIC_API_KEY /
GEMINI_API_KEY), and calls its vendor's own host. Answers are streamed, as agents do.
"""

from __future__ import annotations

import time
from functools import reduce
from operator import add

import pytest

from tests.support.clients import TRUNCATED
from tests.support.fake_vendor import TEXT, TOOL_ARGUMENTS, TOOL_NAME, Fault, split_text
from tests.support.harness import POOL_KEYS
from tests.support.reliability import RESUME_OFF

langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is not installed (scripts/setup --test)")
langchain_anthropic = pytest.importorskip("langchain_anthropic", reason="langchain-anthropic is not installed")
langchain_google_genai = pytest.importorskip("langchain_google_genai", reason="langchain-google-genai is not installed")
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage  # noqa: E402  (once the packages are known to be there)

pytestmark = pytest.mark.e2e

PROVIDERS = ("openai", "anthropic", "google")
MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "google": "gemini-2.5-flash"}
PROTOCOL = {"openai": "chat", "anthropic": "anthropic", "google": "gemini"}
KEYS = {"openai": POOL_KEYS["openai"], "anthropic": POOL_KEYS["anthropic"], "google": POOL_KEYS["gemini"]}
# Where each model's finish reason lands in LangChain's response_metadata.
FINISH_FIELD = {"openai": "finish_reason", "anthropic": "stop_reason", "google": "finish_reason"}
FIRST_TOKEN_TIMEOUT = 2.0
STALL = 60.0  # far past the first-token timeout: without Rotator the call would wait it out
DELTAS = 2
PREFIX = "".join(split_text(TEXT)[:DELTAS])
# A route per provider to a target of another protocol family: the model the application asks for -> (the target
# provider, the model sent upstream, the protocol the vendor sees).
ROUTED = {
    "openai": ("via-anthropic", "anthropic", "claude-haiku-4-5", "anthropic"),
    "anthropic": ("via-gemini", "gemini", "gemini-2.5-flash", "gemini"),
    "google": ("via-chat", "deepseek", "deepseek-chat", "chat"),
}
DEEPSEEK_KEYS = ["sk-deepseek-1", "sk-deepseek-2"]
WEATHER = {
    "name": TOOL_NAME,
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}


def config(vendor_url: str) -> dict:
    return {
        "providers": {"deepseek": {"kind": "openai", "base_url": f"{vendor_url}/v1", "keys": DEEPSEEK_KEYS}},
        "routes": [{"models": [model], "targets": [f"{target}/{upstream}"]} for model, target, upstream, _ in ROUTED.values()],
        "streaming": {"first_token_timeout": FIRST_TOKEN_TIMEOUT},
    }


def chat_model(provider: str, model: str | None = None):
    model = model or MODEL[provider]
    if provider == "openai":
        return langchain_openai.ChatOpenAI(model=model)
    if provider == "anthropic":
        return langchain_anthropic.ChatAnthropic(model=model)
    return langchain_google_genai.ChatGoogleGenerativeAI(model=model)


def streamed(llm, messages) -> AIMessageChunk:
    """The whole answer, as an application folds the streamed chunks."""
    return reduce(add, llm.stream(messages))


def finish(provider: str, message: AIMessageChunk) -> str | None:
    return message.response_metadata.get(FINISH_FIELD[provider])


@pytest.fixture(autouse=True)
def _http_clients_per_proxy():
    """langchain-openai and langchain-anthropic keep their HTTP clients for the whole process (lru_cache), built
    with the proxy the environment named at the time. An application has one proxy for its life; these tests have
    one per test, so each starts with no client kept."""
    from langchain_anthropic import _client_utils as anthropic_clients
    from langchain_openai.chat_models import _client_utils as openai_clients

    for cached in (openai_clients._cached_sync_httpx_client, openai_clients._cached_async_httpx_client,
                   anthropic_clients._get_default_httpx_client, anthropic_clients._get_default_async_httpx_client):
        cached.cache_clear()


@pytest.fixture
def proxy(rotator, fake_vendor):
    return rotator(config(fake_vendor.url), resume=RESUME_OFF)  # (its cut streams end honestly: what it tests)


@pytest.fixture
def fresh_proxy(rotator, fake_vendor):
    """A proxy of its own, whose pools start at their first key."""
    return rotator(config(fake_vendor.url), fresh=True)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answer_streams_through_rotator_from_the_pool(fake_vendor, proxy, provider):
    answer = streamed(chat_model(provider), "Say hello.")

    assert answer.text == TEXT
    [req] = fake_vendor.wait_for(1)
    assert req.protocol == PROTOCOL[provider] and req.stream and req.outcome == "complete"
    assert req.credential in KEYS[provider]  # from the pool, not the application's key


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stalled_first_key_is_retried_on_the_next(fake_vendor, fresh_proxy, provider):
    fake_vendor.script(Fault.stall_before_headers(STALL), Fault.ok())

    start = time.monotonic()
    answer = streamed(chat_model(provider), "Say hello.")
    elapsed = time.monotonic() - start

    assert answer.text == TEXT
    assert elapsed < FIRST_TOKEN_TIMEOUT + 10, f"the answer took {elapsed:.1f}s"
    first, second = fake_vendor.wait_for(2, done=False)[:2]
    assert first.credential != second.credential and {first.credential, second.credential} <= set(KEYS[provider])
    second.done.wait(5)
    assert (first.status, second.outcome) == (None, "complete")  # the stalled attempt never answered


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_429_on_the_first_key_is_answered_from_the_next(fake_vendor, fresh_proxy, provider):
    fake_vendor.script(Fault.status(429, headers={"retry-after": "30"}), Fault.ok())

    start = time.monotonic()
    answer = streamed(chat_model(provider), "Say hello.")
    elapsed = time.monotonic() - start

    assert answer.text == TEXT
    assert elapsed < 15, f"the answer took {elapsed:.1f}s"  # the SDK, seeing the 429, would wait the 30 s out
    first, second = fake_vendor.wait_for(2)
    assert (first.status, second.status) == (429, 200)
    assert first.credential != second.credential and {first.credential, second.credential} <= set(KEYS[provider])
    assert len(fake_vendor.requests) == 2  # LangChain sent one request; its SDK saw no 429 to retry


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_cut_stream_ends_truncated_with_the_partial_once(fake_vendor, proxy, provider):
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"))

    answer = streamed(chat_model(provider), "Say hello.")

    assert answer.text == PREFIX
    assert finish(provider, answer) == TRUNCATED[PROTOCOL[provider]]
    [req] = fake_vendor.wait_for(1)  # nothing retried after the first token, and LangChain did not ask again
    assert req.outcome == "cut-reset"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_route_to_another_protocol_carries_a_tool_call_and_its_result(fake_vendor, proxy, provider):
    model, target, upstream, protocol = ROUTED[provider]
    llm = chat_model(provider, model).bind_tools([WEATHER])
    fake_vendor.script(Fault.tool_call(), Fault.ok())
    question = HumanMessage("What is the weather in Paris?")

    call = streamed(llm, [question])

    [tool_call] = call.tool_calls
    assert (tool_call["name"], tool_call["args"]) == (TOOL_NAME, TOOL_ARGUMENTS)
    reply = ToolMessage("18C, cloudy", tool_call_id=tool_call["id"])
    answer = streamed(llm, [question, call, reply])
    assert answer.text == TEXT and not answer.tool_calls
    asked, told = fake_vendor.wait_for(2)
    for req in (asked, told):
        assert (req.protocol, req.model) == (protocol, upstream)
        assert req.credential in (DEEPSEEK_KEYS if target == "deepseek" else KEYS[{"gemini": "google"}.get(target, target)])
    assert TOOL_NAME in asked.raw_body.decode()
    assert "18C, cloudy" in told.raw_body.decode()
