import pytest

from rewrite.config import ConfigError, load, parse
from rewrite.engine import Engine
from rewrite.providers import build
from rewrite.routing.router import Router


def test_empty_config_serves_every_builtin_vendor_with_the_clients_credential():
    router = Router(parse(""))
    names = {p.name: p for p in router.providers}
    assert set(names) == {"openai", "anthropic", "gemini", "bedrock", "claude_login", "copilot", "chatgpt",
                          "code_assist", "antigravity", "azure", "vertex"}
    assert all(p.pool is None for p in names.values())
    assert names["openai"].base_url == "https://api.openai.com/v1"
    assert router.config.streaming.first_token_timeout == 30
    assert router.config.streaming.idle_timeout == 120
    assert router.config.streaming.request_timeout == 600
    assert all(p.force_upstream_stream for p in names.values())  # non-stream calls are protected by default


def test_public_shape_with_env_references(monkeypatch):
    monkeypatch.setenv("OPENAI_KEY_2", "sk-from-env")
    cfg = parse(
        """
providers:
  openai:    {base_url: https://api.openai.com/v1, keys: [sk-one, "${OPENAI_KEY_2}"]}
  anthropic: {base_url: https://api.anthropic.com, keys: [a1]}
  gemini:    {base_url: https://generativelanguage.googleapis.com, keys: [g1]}
streaming:
  first_token_timeout: 30   # seconds
  idle_timeout: 120         # seconds
"""
    )
    assert [k.key for k in cfg.providers["openai"].keys] == ["sk-one", "sk-from-env"]
    assert cfg.streaming.first_token_timeout == 30


@pytest.mark.parametrize(
    "text, field",
    [
        ("providers: {openai: {base_url: ftp://x}}", "providers.openai.base_url"),
        ("providers: {openai: {keys: sk-not-a-list}}", "providers.openai.keys"),
        ("streaming: {idle_timeout: -1}", "streaming.idle_timeout"),
        ("streaming: {first_token_timeout: soon}", "streaming.first_token_timeout"),
        ("streaming: {on_truncation: maybe}", "streaming.on_truncation"),
        ("websocket: sometimes", "websocket"),
        ("streaming: {request_timeout: 0}", "streaming.request_timeout"),
        ("providers: {gemini: {force_upstream_stream: sometimes}}", "providers.gemini.force_upstream_stream"),
        ("streaming: {idle_timeuot: 3}", "streaming.idle_timeuot"),
        ("providers: {openai: {keys: ['${ROTATOR_TEST_UNSET_VAR}']}}", "providers.openai.keys.0"),
        ("providers: [1, 2]", "providers"),
        ("providers: {openai: {base_url: [unclosed", "not valid YAML"),
        # A base URL no request can be sent to (each request failed with Rotator's internal error).
        ("providers: {openai: {base_url: 'http://127.0.0.1:99999/v1'}}", "providers.openai.base_url"),
        ("providers: {openai: {base_url: 'http://vendor:abc/v1'}}", "providers.openai.base_url"),
        ("providers: {openai: {base_url: 'http://[::1/v1'}}", "providers.openai.base_url"),
        ("providers: {openai: {base_url: 'http://vendor .example/v1'}}", "providers.openai.base_url"),
        ("providers: {openai: {base_url: 'http://vendor:0/v1'}}", "providers.openai.base_url"),
        # Nested without end, or deeper than the parser goes (a RecursionError's traceback at start-up).
        ("routes: &r [*r]", "nested too deeply"),
        ("providers: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_bad_config_names_the_field_in_one_line(text, field):
    with pytest.raises(ConfigError) as e:
        build(parse(text))
    message = str(e.value)
    assert field in message
    assert "\n" not in message


# Every number of the config, at its place in the file: a value with no finite meaning (`.inf` is no timeout a
# stalled stream ever reaches, `.nan` compares false with everything) stops start-up like a negative one.
NUMBERS = {
    "streaming.first_token_timeout": "streaming: {first_token_timeout: V}",
    "streaming.idle_timeout": "streaming: {idle_timeout: V}",
    "streaming.heartbeat_interval": "streaming: {heartbeat_interval: V}",
    "streaming.request_timeout": "streaming: {request_timeout: V}",
    "streaming.first_token_retries": "streaming: {first_token_retries: V}",
    "resume.deadline": "resume: {deadline: V}",
    "resume.max_attempts": "resume: {max_attempts: V}",
    "providers.openai.resume.deadline": "providers: {openai: {resume: {deadline: V}}}",
    "affinity.wait": "affinity: {wait: V}",
    "hedging.delay": "hedging: {delay: V}",
    "hedging.max_share": "hedging: {max_share: V}",
    "providers.openai.hedging.delay": "providers: {openai: {hedging: {delay: V}}}",
    "limits.max_request_body": "limits: {max_request_body: V}",
    "limits.max_response_body": "limits: {max_response_body: V}",
    "providers.openai.keys.0.weight": "providers: {openai: {keys: [{key: sk-a, weight: V}]}}",
    "providers.openai.keys.0.max_concurrent": "providers: {openai: {keys: [{key: sk-a, max_concurrent: V}]}}",
    "providers.openai.windows.0.tokens": "providers: {openai: {windows: [{tokens: V, per: day}]}}",
    "providers.openai.adapters.0.cap.max_tokens": "providers: {openai: {adapters: [{cap: {max_tokens: V}}]}}",
    "providers.openai.adapters.0.clamp.temperature.max":
        "providers: {openai: {adapters: [{clamp: {temperature: {max: V}}}]}}",
    "providers.openai.models.gpt-x.capabilities.max_output_tokens":
        "providers: {openai: {models: {gpt-x: {capabilities: {max_output_tokens: V}}}}}",
    "prices.gpt-x.input": "prices: {gpt-x: {input: V, output: 2}}",
}


@pytest.mark.parametrize("value", [".inf", ".nan"])
@pytest.mark.parametrize("field", NUMBERS)
def test_a_number_without_a_finite_value_stops_start_up_naming_its_field(field, value):
    with pytest.raises(ConfigError) as e:
        build(parse(NUMBERS[field].replace("V", value)))
    message = str(e.value)
    assert message.startswith(f"{field}: ")
    assert "\n" not in message


def test_unknown_provider_needs_kind_and_base_url():
    with pytest.raises(ConfigError, match=r"providers\.groq\.kind"):
        build(parse("providers: {groq: {base_url: https://api.groq.com/openai/v1}}"))
    with pytest.raises(ConfigError, match=r"providers\.groq\.base_url"):
        build(parse("providers: {groq: {kind: openai}}"))


def test_unknown_provider_without_hosts_is_a_route_target_only():
    router = Router(parse("providers: {groq: {kind: openai, base_url: https://api.groq.com/openai/v1}}"))
    groq = next(p for p in router.providers if p.name == "groq")
    assert groq.hosts == ()
    assert groq.protocol == "chat"  # an openai-kind target speaks Chat Completions unless it says otherwise
    assert router.route("api.groq.com", "POST", "/openai/v1/chat/completions") is None


def test_two_providers_cannot_claim_one_host():
    with pytest.raises(ConfigError, match=r"api\.openai\.com is already intercepted"):
        build(parse("providers: {mine: {kind: openai, hosts: [api.openai.com], base_url: http://x/v1}}"))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "nope.yaml"))


def test_no_path_and_no_default_file_gives_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load("").providers == {}


def test_websocket_defaults_to_downgrade_and_accepts_pass():
    assert parse("").websocket == "downgrade"
    assert parse("websocket: pass").websocket == "pass"


def test_every_missing_environment_variable_is_named_in_one_line(monkeypatch):
    for name in ("ROTATOR_TEST_A", "ROTATOR_TEST_B", "ROTATOR_TEST_C"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROTATOR_TEST_SET", "sk-set-value-never-shown")
    text = """
providers:
  openai: {keys: ["${ROTATOR_TEST_A}", "${ROTATOR_TEST_SET}", "${ROTATOR_TEST_A}"]}
  anthropic: {keys: ["${ROTATOR_TEST_B}"]}
clients: [{name: ci, key: "prefix-${ROTATOR_TEST_C}"}]
"""
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert str(e.value) == ("3 environment variables are not set: ROTATOR_TEST_A (providers.openai.keys.0), "
                            "ROTATOR_TEST_B (providers.anthropic.keys.0), ROTATOR_TEST_C (clients.0.key)")


def test_state_redis_takes_a_redis_url_with_its_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret-pw")
    cfg = parse('state: {redis: "rediss://:${REDIS_PASSWORD}@cache.internal:6380/2"}')
    assert cfg.state.redis == "rediss://:s3cret-pw@cache.internal:6380/2"
    assert parse("").state.redis is None  # unset: one process, deciding alone


def test_state_redis_takes_a_unix_socket_url_and_the_log_names_it_without_its_password():
    from rewrite.state.sharing import where

    for url in ("unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock?db=3",
                "unix://:pw@/run/redis/redis.sock?db=3", "unix:///run/redis/redis.sock?db=3&password=pw"):
        assert parse(f'state: {{redis: "{url}"}}').state.redis == url
    assert where("unix://:pw@/run/redis/redis.sock?db=3&password=pw") == "unix:///run/redis/redis.sock?db=3"
    assert where("unix:///run/redis/redis.sock") == "unix:///run/redis/redis.sock?db=0"
    assert where("rediss://:pw@cache.internal:6380/2") == "rediss://cache.internal:6380/2"


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/0", "redis://:pw@127.0.0.1:99999/0", "redis://:pw@host/db",
                                 "redis://", "127.0.0.1:6379", "unix://:pw@run/redis.sock", "unix:///r.sock?db=x&pw",
                                 "unix://:pw@host:6379/r.sock", "unix://", "unix:relative.sock"])
def test_a_bad_state_redis_url_is_one_line_naming_the_field_and_never_the_password(url):
    with pytest.raises(ConfigError) as e:
        parse(f'state: {{redis: "{url}"}}')
    message = str(e.value)
    assert message.startswith("state.redis: ") and "\n" not in message
    assert "pw" not in message and "redis://[:password@]host" in message


def test_resume_defaults_to_continue_and_a_provider_overrides_only_what_it_gives():
    config = parse("resume: {max_attempts: 3}\nproviders: {anthropic: {resume: {mode: 'off'}}}")
    assert parse("").resume_for("openai").model_dump() == {"mode": "continue", "max_attempts": 2, "deadline": 120.0}
    assert config.resume_for("anthropic").model_dump() == {"mode": "off", "max_attempts": 3, "deadline": 120.0}
    assert config.resume_for("openai").mode == "continue"
    with pytest.raises(ConfigError, match=r"resume\.mode"):
        parse("resume: {mode: later}")


def test_the_engine_works_out_each_providers_resume_settings_once_per_config():
    engine = Engine(parse("providers: {anthropic: {resume: {mode: 'off'}}, openai: {}}"))
    assert engine.resume_for("anthropic").mode == "off" and engine.resume_for("openai").mode == "continue"
    engine.configure(parse("providers: {anthropic: {}}"))
    assert engine.resume_for("anthropic").mode == "continue"


def test_a_config_file_that_is_not_utf8_is_named_in_one_line(tmp_path):
    path = tmp_path / "rotator.yaml"
    path.write_bytes(b"providers:\n  openai: {keys: [sk-\xe9t\xe9]}\n")  # (a traceback at start-up)
    with pytest.raises(ConfigError) as e:
        load(str(path))
    assert str(e.value) == f"{path}: cannot read it: not UTF-8 text (byte 32)"


@pytest.mark.parametrize("url", ["http://[::1]:8080/v1", "https://vendor.example:443", "http://localhost:11434/v1"])
def test_a_base_url_with_a_port_or_an_ipv6_host_is_taken(url):
    assert parse(f"providers: {{openai: {{base_url: '{url}'}}}}").providers["openai"].base_url == url.rstrip("/")
