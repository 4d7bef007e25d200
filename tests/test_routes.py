"""Routes: config shape, validation and pure matching."""

import pytest

from rewrite.config import ConfigError, parse
from rewrite.providers import build
from rewrite.routing.router import Router
from rewrite.routing.routes import Routes, RouteTarget, parse_target

ISSUE_EXAMPLE = """
providers:
  anthropic: {keys: [a1]}
  deepseek:  {kind: openai, base_url: https://api.deepseek.com/v1, keys: [d1]}   # a target only: no hosts
  gemini:    {keys: [g1]}
  openrouter: {kind: openai, protocol: responses, base_url: https://openrouter.ai/api/v1}
routes:
  - models: ["claude-sonnet-4*", "claude-opus-*"]
    targets: [anthropic, deepseek/deepseek-chat, gemini/gemini-2.5-pro]
  - models: ["gpt-5*"]
    targets: [openai, anthropic/claude-sonnet-4-5, openrouter/anthropic/claude-sonnet-4.5]
  - models: ["*"]
    targets: [deepseek]
"""


def routes(text: str = ISSUE_EXAMPLE) -> Routes:
    return Router(parse(text)).routes


def test_first_matching_route_gives_its_targets_in_order():
    assert routes().targets_for("claude-sonnet-4-5-20250929", "anthropic") == (
        RouteTarget("anthropic"), RouteTarget("deepseek", "deepseek-chat"), RouteTarget("gemini", "gemini-2.5-pro"))
    assert routes().targets_for("claude-opus-4-1", "anthropic")[1] == RouteTarget("deepseek", "deepseek-chat")


def test_a_later_route_matches_only_what_earlier_ones_did_not():
    assert routes().targets_for("gpt-5-codex", "openai")[0] == RouteTarget("openai")
    assert routes().targets_for("claude-3-haiku", "anthropic") == (RouteTarget("deepseek"),)


def test_no_matching_route_goes_to_the_called_provider():
    text = "routes: [{models: ['claude-*'], targets: [anthropic]}]"
    assert routes(text).targets_for("gemini-2.5-pro", "gemini") == (RouteTarget("gemini"),)
    assert routes("").targets_for("gpt-5", "openai") == (RouteTarget("openai"),)


def test_globs_match_the_whole_name_case_sensitively():
    r = routes("routes: [{models: ['gpt-5', 'o?-mini', 'glm-[45]*'], targets: [openai/x]}]")
    assert r.targets_for("gpt-5", "p")[0].provider == "openai"
    assert r.targets_for("gpt-5-mini", "p") == (RouteTarget("p"),)  # no implicit prefix match
    assert r.targets_for("o3-mini", "p")[0].model == "x"
    assert r.targets_for("glm-4.6", "p")[0].model == "x"
    assert r.targets_for("GPT-5", "p") == (RouteTarget("p"),)


def test_a_target_is_split_at_the_first_slash():
    assert parse_target("openrouter/anthropic/claude-sonnet-4.5") == RouteTarget("openrouter", "anthropic/claude-sonnet-4.5")
    assert parse_target("deepseek") == RouteTarget("deepseek", None)
    assert RouteTarget("deepseek").model_for("claude-x") == "claude-x"
    assert RouteTarget("deepseek", "deepseek-chat").model_for("claude-x") == "deepseek-chat"


def test_openai_kind_targets_speak_chat_unless_they_say_responses():
    providers = {p.name: p for p in build(parse(ISSUE_EXAMPLE))}
    assert providers["deepseek"].protocol == "chat"
    assert providers["openrouter"].protocol == "responses"
    assert providers["deepseek"].hosts == ()  # nothing is intercepted for a target-only provider
    assert providers["openai"].protocol is None  # the built-in speaks both, the client's own
    assert providers["anthropic"].protocol is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("routes: [{models: [a*], targets: [openai, nosuch/x]}]", "routes.0.targets.1: unknown provider 'nosuch'"),
        ("routes: [{models: [a], targets: [openai]}, {models: [b], targets: [ghost]}]", "routes.1.targets.0: unknown"),
        ("routes: [{models: [a*], targets: [openai, 'openai/']}]", "routes.0.targets.1:"),
        ("routes: [{models: [a*], targets: ['/gpt-5']}]", "routes.0.targets.0:"),
        ("routes: [{models: [a*], targets: []}]", "routes.0.targets:"),
        ("routes: [{models: [], targets: [openai]}]", "routes.0: Value error, a route needs `models`"),
        ("routes: [{from: nosuch, targets: [openai]}]", "routes.0.from: unknown provider 'nosuch'"),
        ("routes: [{models: [claude-*], targets: [claude_login, anthropic]}]",
         "routes.0.targets.0: claude_login serves only its own clients' logins: name it in a route `from: claude_login`"),
        ("routes: [{from: anthropic, targets: [anthropic, copilot]}]", "routes.0.targets.1: copilot serves only"),
        ("routes: [{models: [a*]}]", "routes.0.targets:"),
        ("routes: [{model: [a*], targets: [openai]}]", "routes.0.model: Extra inputs are not permitted"),
        ("routes: {models: [a]}", "routes:"),
        ("providers: {anthropic: {protocol: responses}}", "providers.anthropic.protocol:"),
        ("providers: {openai: {protocol: grpc}}", "providers.openai.protocol:"),
    ],
)
def test_a_bad_route_config_is_one_line_naming_the_field(text, message):
    with pytest.raises(ConfigError) as e:
        build(parse(text))
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


GATED = """
providers:
  anthropic: {}                     # keyless: the client's own key goes upstream
  gemini: {keys: [g1-0123456789abcdef]}
  deepseek: {kind: openai, base_url: https://api.deepseek.com/v1, keys: [d1]}
routes:
  - models: ["claude-via-*"]
    targets: [anthropic, deepseek/deepseek-chat]
  - models: ["gemini-elsewhere"]
    targets: [anthropic/claude-haiku-4-5]
"""


def pooled_names(host: str, path: str, body: bytes | None, method: str = "POST") -> list[str]:
    router = Router(parse(GATED))
    return [p.name for p in router.pooled(router.route(host, method, path), path, body)]


def test_the_pools_a_request_could_draw_from_follow_its_route():
    messages = "/v1/messages"
    assert pooled_names("api.anthropic.com", messages, b'{"model": "claude-via-x"}') == ["deepseek"]
    assert pooled_names("api.anthropic.com", messages, b'{"model": "claude-haiku-4-5"}') == []
    assert pooled_names("api.anthropic.com", messages, b"not json") == []  # forwarded to the called provider as is
    assert pooled_names("api.anthropic.com", messages, None) == ["deepseek"]  # a body not read yet: any route's
    assert pooled_names("api.anthropic.com", "/v1/models", b"", "GET") == []  # not a generation call: not routed
    gemini = "/v1beta/models/gemini-elsewhere:generateContent"
    assert pooled_names("generativelanguage.googleapis.com", gemini, b"{}") == ["gemini"]  # its own pool only
