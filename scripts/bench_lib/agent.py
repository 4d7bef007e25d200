"""Agent-sized Anthropic Messages bodies for the benchmark, built deterministically (same size, same bytes, every
run).

Shaped like a coding agent's request (Claude Code's): a long system prompt in blocks, 20 tool definitions with JSON
schemas, and a history of turns in which the assistant calls a tool and the user's next message carries its result
(a file read, a command's output); from 1 MiB up, every eighth result is a screenshot, a base64 image part. The
history grows until the body reaches the asked size. The last user message carries the fake vendor's `key=value`
words (vendor.py), which nothing else in the body may contain.
"""

from __future__ import annotations

import base64
import json
import random

SEED = 20
IMAGES_FROM = 1 << 20  # bodies at least this large carry screenshots
IMAGE_EVERY = 8  # turns
IMAGE_RAW_BYTES = 240 << 10  # a screenshot's bytes before base64 (a real PNG screenshot is 100 KB to 1 MB)
RESULT_LINES = (60, 140)  # lines in a file-read result

_WORDS = ("request", "response", "handler", "config", "pool", "route", "target", "stream", "chunk", "buffer",
          "client", "server", "token", "usage", "retry", "delay", "status", "result", "value", "record", "cache",
          "state", "field", "model", "provider", "session", "context", "limit", "reader", "writer", "parse",
          "render", "check", "build", "apply", "merge", "split", "format", "encode", "decode")
TOOLS = ("Task", "Bash", "Glob", "Grep", "LS", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit",
         "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "SlashCommand", "ListMcpResources",
         "ReadMcpResource", "Screenshot")


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."


def _code_line(rng: random.Random) -> str:
    a, b, c = rng.choice(_WORDS), rng.choice(_WORDS), rng.choice(_WORDS)
    return rng.choice((
        f"def {a}_{b}(self, {c}: dict) -> None:",
        f"    {a} = self.{b}.get({c!r}, None)",
        f"    if not {a}:",
        f"        return {b}_{c}({a})",
        f"    for {a} in {b}s:",
        f"        self.{a}_{b}.append({c})",
        f"class {a.capitalize()}{b.capitalize()}:",
        f"    # {_sentence(rng, 8)}",
        "",
    ))


def _tool(rng: random.Random, name: str) -> dict:
    props = {}
    for i in range(rng.randint(2, 6)):
        p = f"{rng.choice(_WORDS)}_{i}"
        props[p] = {"type": rng.choice(("string", "integer", "boolean")), "description": _sentence(rng, 14)}
    return {"name": name, "description": " ".join(_sentence(rng, 16) for _ in range(rng.randint(4, 10))),
            "input_schema": {"type": "object", "properties": props, "required": list(props)[:1],
                             "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}}


def _image(rng: random.Random) -> dict:
    data = b"\x89PNG\r\n\x1a\n" + rng.randbytes(IMAGE_RAW_BYTES - 8)  # incompressible, as image data is
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                        "data": base64.b64encode(data).decode()}}


def _turn(rng: random.Random, i: int, with_image: bool) -> list[dict]:
    tool_id = f"toolu_bench_{i:05d}"
    name = "Screenshot" if with_image else rng.choice(("Read", "Bash", "Grep"))
    call = {"role": "assistant", "content": [
        {"type": "text", "text": _sentence(rng, 20)},
        {"type": "tool_use", "id": tool_id, "name": name,
         "input": {"file_path": f"/home/dev/project/src/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}.py"}}]}
    if with_image:
        content: list[dict] = [_image(rng)]
    else:
        lines = (_code_line(rng) for _ in range(rng.randint(*RESULT_LINES)))
        content = [{"type": "text", "text": "\n".join(f"{n:6d}\t{line}" for n, line in enumerate(lines, 1))}]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": content}]}
    return [call, result]


def agent_body(size: int, model: str, stream: bool, words: str) -> dict:
    """An Anthropic Messages body of about `size` bytes (a little over it) as JSON, ending in a user message with
    `words`."""
    rng = random.Random(SEED)
    system = [{"type": "text", "text": "You are an interactive coding agent working in a repository."},
              {"type": "text", "text": "\n\n".join(" ".join(_sentence(rng, 18) for _ in range(6)) for _ in range(14)),
               "cache_control": {"type": "ephemeral"}}]
    body = {"model": model, "max_tokens": 32000, "stream": stream, "system": system,
            "tools": [_tool(rng, name) for name in TOOLS], "metadata": {"user_id": "user_bench_session_1"},
            "messages": [{"role": "user", "content": _sentence(rng, 30)}]}
    total = len(json.dumps(body, separators=(",", ":"))) + len(words) + 30
    i = 0
    while total < size:
        i += 1
        for message in _turn(rng, i, size >= IMAGES_FROM and i % IMAGE_EVERY == 0):
            body["messages"].append(message)
            total += len(json.dumps(message, separators=(",", ":"))) + 1
    ask = {"type": "text", "text": words}
    if i:  # beside the last tool result, as agents send a user's words
        body["messages"][-1]["content"].append(ask)
    else:
        body["messages"].append({"role": "assistant", "content": "Ready."})
        body["messages"].append({"role": "user", "content": [ask]})
    return body
