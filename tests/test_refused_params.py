"""The parameter a vendor's 400 says its model does not support, read by the error reader of the family's protocol
(protocols/families/<name>/errors.py) from the error bodies the vendors really send, and the request without it
(protocols/refused_params.py)."""

from __future__ import annotations

import json

import pytest

from protocols import registry
from protocols.refused_params import without


def refused_params(family: str, status: int, body: bytes) -> tuple[str, ...]:
    """The parameters the reader of `family`'s protocol finds refused in an error answer."""
    return registry.errors(family).read(status, [], body, 0.0).refused


def body(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def openai(message: str, param: str | None, code: str | None) -> bytes:
    return body({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})


def anthropic(message: str) -> bytes:
    return body({"type": "error", "error": {"type": "invalid_request_error", "message": message},
                 "request_id": "req_011CW9z9GbtaQWp24SzDDZCp"})


def gemini(message: str) -> bytes:
    return body({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT", "details": [
        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"description": message}]}]}})


REFUSALS = {
    "openai unsupported parameter": ("openai", openai(
        "Unsupported parameter: 'temperature' is not supported with this model.", "temperature",
        "unsupported_parameter"), ("temperature",)),
    "openai unsupported value": ("openai", openai(
        "Unsupported value: 'temperature' does not support 0.1 with this model. Only the default (1) value is "
        "supported.", "temperature", "unsupported_value"), ("temperature",)),
    "openai null code": ("openai", openai(
        "Unsupported parameter: 'top_p' is not supported with this model.", "top_p", None), ("top_p",)),
    "openai reasoning effort": ("openai", openai(
        "Unsupported value: 'none' is not supported with the 'gpt-5.1-codex' model. Supported values are: 'low', "
        "'medium', and 'high'.", "reasoning.effort", "unsupported_value"), ("reasoning.effort",)),
    "openai unrecognized argument": ("openai", openai(
        "Unrecognized request argument supplied: top_k", None, None), ("top_k",)),
    "anthropic deprecated": ("anthropic", anthropic("`temperature` is deprecated for this model."),
                             ("temperature",)),
    "anthropic extra input": ("anthropic", anthropic("context_management: Extra inputs are not permitted"),
                              ("context_management",)),
    "anthropic not supported": ("anthropic", anthropic("top_k: this parameter is not supported for this model"),
                                ("top_k",)),
    "anthropic thinking shape": ("anthropic", anthropic(
        '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
        '"output_config.effort" to control thinking behavior.'), ("thinking",)),
    "anthropic adaptive thinking": ("anthropic", anthropic("adaptive thinking is not supported on this model"),
                                    ("thinking",)),
    "anthropic both sampling": ("anthropic", anthropic(
        "`temperature` and `top_p` cannot both be specified for this model. Please use only one."), ("top_p",)),
    "gemini unknown name": ("gemini", gemini(
        "Invalid JSON payload received. Unknown name \"topK\" at 'generation_config': Cannot find field."),
        ("generationConfig.topK",)),
    "gemini two unknown names": ("gemini", gemini(
        "Invalid JSON payload received. Unknown name \"temperature\" at 'generation_config': Cannot find field.\n"
        "Invalid JSON payload received. Unknown name \"topP\" at 'generation_config': Cannot find field."),
        ("generationConfig.temperature", "generationConfig.topP")),
    "gemini top-level unknown name": ("gemini", gemini(
        "Invalid JSON payload received. Unknown name \"labels\": Cannot find field."), ("labels",)),
    "gemini thinking level": ("gemini", gemini("Thinking level is not supported for this model."),
                              ("generationConfig.thinkingConfig.thinkingLevel",)),
}


@pytest.mark.parametrize("family,error,params", REFUSALS.values(), ids=list(REFUSALS))
def test_the_refused_parameter_is_read_from_the_vendors_own_error(family, error, params):
    assert refused_params(family, 400, error) == params


NOT_REFUSALS = {
    "another status": ("openai", 404, openai("Unsupported parameter: 'temperature'", "temperature",
                                             "unsupported_parameter")),
    "openai other error": ("openai", 400, openai("Invalid type for 'max_tokens'", "max_tokens", "invalid_type")),
    "openai stream": ("openai", 400, openai("Unsupported value: 'stream' does not support true with this model.",
                                            "stream", "unsupported_value")),
    "openai inside a list": ("openai", 400, openai("Unsupported parameter: 'messages[0].name'",
                                                   "messages[0].name", "unsupported_parameter")),
    "openai model": ("openai", 400, openai("Unsupported value: 'model'", "model", "unsupported_value")),
    "anthropic inside a message": ("anthropic", 400, anthropic(
        "messages.65.content.1.tool_use.text: Extra inputs are not permitted")),
    "anthropic max_tokens": ("anthropic", 400, anthropic("max_tokens: Extra inputs are not permitted")),
    "anthropic other type": ("anthropic", 400, body({"type": "error", "error": {
        "type": "not_found_error", "message": "`temperature` is deprecated for this model."}})),
    "anthropic prefill": ("anthropic", 400, anthropic(
        "This model does not support assistant message prefill. The conversation must end with a user message.")),
    "gemini inside a tool": ("gemini", 400, gemini(
        "Invalid JSON payload received. Unknown name \"ref\" at 'tools[0].function_declarations[0].parameters"
        ".properties[0].value.items': Cannot find field.")),
    "gemini other message": ("gemini", 400, gemini("Request contains an invalid argument.")),
    "not json": ("openai", 400, b"Bad Request"),
    "no error object": ("gemini", 400, body({"error": "Unknown name \"topK\""})),
    "unknown family": ("cohere", 400, openai("Unsupported parameter: 'temperature'", "temperature",
                                             "unsupported_parameter")),
}


@pytest.mark.parametrize("family,status,error", NOT_REFUSALS.values(), ids=list(NOT_REFUSALS))
def test_an_error_about_something_else_or_an_essential_parameter_names_none(family, status, error):
    assert refused_params(family, status, error) == ()


def test_a_parameter_is_removed_and_the_request_left_as_it_was():
    request = {"model": "m", "temperature": 0.2, "messages": [{"role": "user", "content": "hi"}]}
    assert without(request, "temperature") == {"model": "m", "messages": request["messages"]}
    assert request["temperature"] == 0.2


def test_a_nested_parameter_is_removed_in_either_case():
    request = {"contents": [], "generation_config": {"topK": 64.0, "temperature": 1}}
    assert without(request, "generationConfig.topK") == {"contents": [], "generation_config": {"temperature": 1}}
    assert request["generation_config"] == {"topK": 64.0, "temperature": 1}
    assert without({"reasoning": {"effort": "none"}}, "reasoning.effort") == {"reasoning": {}}


def test_a_parameter_the_request_does_not_carry_is_not_removed():
    assert without({"model": "m"}, "temperature") is None
    assert without({"generationConfig": {"topP": 1}}, "generationConfig.topK") is None
    assert without({"reasoning": "high"}, "reasoning.effort") is None
