"""Client values in upstream URLs (protocols/urls.py): a model name is one escaped path segment of a Gemini URL,
and a client's path never leaves its provider's base_url. The URLs are read back as httpx sends them."""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from protocols.gemini.stream import with_model
from protocols.gemini.translate.request_out import endpoint
from protocols.urls import UnsafeURLValue, path_problem, segment, segment_problem
from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.job import Job
from rewrite.exchange.websocket import SocketJob, open_upstream
from rewrite.lifecycle.setting import Setting
from rewrite.providers import build
from rewrite.routing.router import Route
from rewrite.upstream import client as upstream_client

# What a model name may become upstream: /v1beta/models/{one segment}:method, nothing else.
GEMINI_CALL = re.compile(r"/prefix/v1beta/models/([^/?#]+):(generateContent|streamGenerateContent)\Z")
HOSTILE = ["x/../../../v1beta/files/abc:delete?", "..", ".", "", "a/b", "a?alt=json", "a#", "a\r\nX-Evil: 1",
           "a\x00", "a\\..\\b", "\ud800"]
# Text close to what climbs out of a path: separators, dots, escapes and the characters that end a path.
PATH_TEXT = st.lists(st.sampled_from([*"/.\\%2eEfF5cC?#:a\r\n\x00 ", "%2e", "%2E", "%2f", "%5c", "..", "/"]),
                     max_size=24).map("".join)
MODEL_TEXT = st.one_of(st.text(max_size=30), PATH_TEXT, st.sampled_from(HOSTILE))

CONFIG = """
providers:
  openai: {base_url: 'https://vendor.test/prefix/v1'}
  gemini: {base_url: 'https://vendor.test/prefix'}
"""


def providers() -> dict:
    return {p.name: p for p in build(parse(CONFIG))}


def sent_path(url: str) -> str:
    """The path of `url` as httpx sends it (dot segments removed, a fragment cut off)."""
    return httpx.URL(url).raw_path.decode().partition("?")[0]


@pytest.mark.parametrize("model", HOSTILE)
def test_a_model_that_is_not_one_segment_is_refused_with_a_one_line_reason(model):
    assert segment_problem(model) is not None
    with pytest.raises(UnsafeURLValue) as refused:
        endpoint(model, stream=True)
    assert "\n" not in str(refused.value) and "\r" not in str(refused.value)


def test_an_ordinary_model_is_sent_as_it_is_and_others_escaped():
    assert endpoint("gemini-2.5-flash", stream=True) == ("/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                                                         "alt=sse")
    assert endpoint("models/gemini-2.5-pro", stream=False) == ("/v1beta/models/gemini-2.5-pro:generateContent", "")
    assert segment("a b:c%d") == "a%20b%3Ac%25d"


@given(MODEL_TEXT, st.booleans())
@example("x/../../../v1beta/files/abc:delete?", True)
def test_a_translated_gemini_url_names_the_model_in_one_segment_or_is_refused(model, stream):
    gemini = providers()["gemini"]
    try:
        path, query = endpoint(model, stream)
    except UnsafeURLValue:
        return
    url = gemini.base_url + path + (f"?{query}" if query else "")
    match = GEMINI_CALL.match(sent_path(url))
    assert match is not None, url
    assert unquote(match.group(1)) == model.removeprefix("models/")
    assert httpx.URL(url).query == query.encode()


@given(MODEL_TEXT)
def test_a_renamed_native_gemini_path_names_the_model_in_one_segment_or_is_refused(model):
    gemini = providers()["gemini"]
    try:
        path = with_model("/v1beta/models/gemini-2.5-flash:streamGenerateContent", model)
    except UnsafeURLValue:
        return
    match = GEMINI_CALL.match(sent_path(gemini.upstream_url(path) + "?alt=sse"))
    assert match is not None and unquote(match.group(1)) == model


@given(PATH_TEXT)
@example("/v1/../../admin")
@example("/v1/%2e%2e/%2E%2E/admin")
@example("/v1/..%2f..%2fadmin")
@example("/v1/files#/../../x")
def test_a_client_path_stays_under_base_url_or_is_refused(tail):
    openai, gemini = providers()["openai"], providers()["gemini"]
    path = ("/v1/" + tail).partition("?")[0]  # the engine checks the path without its query
    if path_problem(path) is not None:
        return
    for url in (openai.upstream_url(path),  # the called provider
                gemini.guest_url(path, openai.path_prefix)):  # a route's other one
        sent = sent_path(url)
        assert sent.startswith("/prefix/"), url
        assert not {".", ".."} & set(unquote(sent).replace("\\", "/").split("/")), url


@pytest.mark.parametrize("path", ["/v1/../../admin", "/v1/./x", "/v1/%2e%2e/admin", "/v1/%2E./admin",
                                  "/v1/..%2Fadmin", "/v1/..\\admin", "/v1/x#y", "/v1/x\ny", "/v1/x%0Dy"])
def test_a_path_with_a_dot_segment_a_fragment_or_a_control_character_is_refused(path):
    assert path_problem(path) is not None


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1beta/models/gemini-2.5-flash:generateContent",
                                  "/v1/files/a.b", "/v1/files/...", "/v1/x%20y", "/v1/responses/resp_1..2"])
def test_ordinary_paths_pass(path):
    assert path_problem(path) is None


def test_a_websocket_handshake_whose_path_climbs_is_refused_before_any_connection():
    openai = providers()["openai"]  # (vendor.test is never resolved: the handshake is refused first)
    sj = SocketJob(Job("job-0001", Route(openai, None), openai), [("authorization", "Bearer c")], "/v1/../../admin?x=1")
    failure = asyncio.run(open_upstream(sj, StreamingConfig(first_token_timeout=2), upstream_client.Upstream(), Setting()))
    assert failure.status == 400 and not failure.retryable and sj.upstream is None
    assert json.loads(failure.body)["error"]["type"] == "invalid_request_error"
    assert "dot segment" in json.loads(failure.body)["error"]["message"]


@given(st.text(alphabet=st.characters(max_codepoint=0x9f)))
def test_a_control_character_is_any_below_space_and_delete(text):
    from protocols.urls import _control
    assert _control(text) == any(c < " " or c == "\x7f" for c in text)
