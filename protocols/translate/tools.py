"""Tools that only OpenAI has, carried to targets that lack them: namespaces and custom (freeform) tools.

A namespaced tool goes to every target as a plain tool named `<ns>__<name>`; a custom tool goes to a target that
does not take it as a function of one string parameter `input`, its grammar told in the description. The
client's request keeps what each flattened name stands for, so the answer's calls go back as the client sent
the tools (`client_tool`).
"""

from __future__ import annotations

import hashlib
import json
import re

from protocols.unified import Request, Tool

NAMESPACE_SEPARATOR = "__"
MAX_NAME = 64  # the strictest vendor's tool name limit (OpenAI, Anthropic): [A-Za-z0-9_-]{1,64}
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
FORMAT_TEXT = {"type": "text"}
INPUT = "input"
INPUT_SCHEMA = {"type": "object", "properties": {INPUT: {"type": "string"}}, "required": [INPUT]}


def flat_name(namespace: str, name: str) -> str:
    """`<ns>__<name>`, made safe for every vendor; a name too long keeps a prefix and a hash of the whole."""
    flat = NAME_UNSAFE.sub("_", f"{namespace}{NAMESPACE_SEPARATOR}{name}")
    if len(flat) <= MAX_NAME:
        return flat
    digest = hashlib.sha256(flat.encode()).hexdigest()[:12]
    return f"{flat[:MAX_NAME - len(digest) - 1]}_{digest}"


def in_namespace(tool: Tool, namespace: str, description: str | None) -> Tool:
    """A tool of a namespace as the flattened tool every target sees; the namespace's description leads its own."""
    tool.namespace, tool.name_in_namespace = namespace, tool.name
    tool.name = flat_name(namespace, tool.name)
    tool.description = "\n\n".join(d for d in (description, tool.description) if d) or None
    return tool


def _grammar_note(fmt: dict) -> str:
    if fmt.get("type") != "grammar":
        return "Pass the whole input as the string `input`."
    return (f"Pass the whole input as the string `input`; it must match this {fmt.get('syntax') or ''} "
            f"grammar:\n{fmt.get('definition') or ''}")


def as_function(tool: Tool) -> Tool:
    """The tool for a target without custom tools: a custom tool becomes a function of one string `input`.

    Lossy: the target does not enforce the grammar; the model only reads it.
    """
    if tool.custom_format is None:
        return tool
    description = "\n\n".join(d for d in (tool.description, _grammar_note(tool.custom_format)) if d)
    return Tool(tool.name, description, INPUT_SCHEMA)


def custom_arguments(text: str) -> str:
    """A custom call's raw input as the unified arguments (a JSON string)."""
    return json.dumps({INPUT: text}, ensure_ascii=False)


def custom_input(arguments: str) -> str:
    """A custom call's raw input from the arguments a target gave: `input` if the model used the emulated
    function's shape, else the arguments as they are."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(INPUT), str) and len(value) == 1:
        return str(value[INPUT])
    return arguments


def client_tool(request: Request, name: str) -> Tool | None:
    """The client's tool a call of `name` (a name the target saw) is for: None for a plain function the client
    named so itself, or a tool it did not send."""
    for tool in request.tools:
        if tool.name == name and (tool.custom_format is not None or tool.namespace is not None):
            return tool
    return None
