"""The routes the end-to-end routing tests configure: each client protocol's model goes to a provider of every other
family on the fake vendor."""

from __future__ import annotations

CLIENTS = ("chat", "responses", "anthropic", "gemini")
# Target-only providers (no hosts) for the two OpenAI protocols; Anthropic and Gemini targets are the built-ins.
TARGET_KEYS = {"deepseek": ["sk-deepseek-1", "sk-deepseek-2"], "respond": ["sk-respond-1", "sk-respond-2"]}
# The model a client asks for -> (the target's provider, the model sent upstream, the protocol the vendor sees).
VIA = {
    "chat": ("deepseek", "deepseek-chat", "chat"),
    "responses": ("respond", "gpt-5-mini", "responses"),
    "anthropic": ("anthropic", "claude-haiku-4-5", "anthropic"),
    "gemini": ("gemini", "gemini-2.5-flash", "gemini"),
}
FIRST_TOKEN_TIMEOUT = 3.0


def model_via(upstream: str) -> str:
    return f"via-{upstream}"


def routing_config(vendor_url: str) -> dict:
    return {
        "providers": {
            "deepseek": {"kind": "openai", "base_url": f"{vendor_url}/v1", "keys": TARGET_KEYS["deepseek"]},
            "respond": {"kind": "openai", "protocol": "responses", "base_url": f"{vendor_url}/v1",
                        "keys": TARGET_KEYS["respond"]},
        },
        "routes": [
            {"models": [model_via(u)], "targets": [f"{VIA[u][0]}/{VIA[u][1]}"]} for u in CLIENTS
        ] + [
            # The request's own fault stays with the first target; a model the first target lacks goes on.
            {"models": ["two-targets"], "targets": ["anthropic/claude-haiku-4-5", "deepseek/deepseek-chat"]},
        ],
        "streaming": {"first_token_timeout": FIRST_TOKEN_TIMEOUT, "first_token_retries": 1,
                      "heartbeat_interval": 0.3},
    }
