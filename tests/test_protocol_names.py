"""The engine (rewrite/) and the mitmproxy glue (addons/) never name a protocol: what one protocol alone does is
asked of its registration (protocols/registration.py). This scan reads their code for the registered protocols'
names, families and choices (a provider's `protocol` value), taken from the registry, and for imports of a
protocol's own folder.

What it reads: string constants (a wire value or a key, as written: case counts, so "Gemini CLI" in a sentence is
prose), identifiers (any case: `ANTHROPIC`, `gemini_quota`) and imports. Docstrings and comments are prose and are
not read. A name counts as a word: `anthropic-version` and `openai_responses` name one, `openaiish` does not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import protocols

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("rewrite", "addons")

# (file, name): where a name may stand, and why.
ALLOWED = {
    # A built-in provider's own registration names its name and family (providers/__init__.py finds the modules).
    ("rewrite/providers/openai.py", "openai"),
    ("rewrite/providers/anthropic.py", "anthropic"),
    ("rewrite/providers/gemini.py", "gemini"),
    # A login provider's registration names the families its paths speak, and the paths it serves.
    ("rewrite/providers/claude_login.py", "anthropic"),
    ("rewrite/providers/copilot.py", "openai"),
    ("rewrite/providers/copilot.py", "anthropic"),
    ("rewrite/providers/copilot.py", "responses"),
    ("rewrite/providers/copilot.py", "chat"),
    ("rewrite/providers/chatgpt.py", "openai"),
    ("rewrite/providers/chatgpt.py", "responses"),
    ("rewrite/providers/code_assist.py", "gemini"),
    # A cloud platform's registration names the families its paths speak.
    ("rewrite/providers/bedrock.py", "bedrock"),
    ("rewrite/providers/bedrock.py", "anthropic"),
    ("rewrite/providers/vertex.py", "gemini"),
    ("rewrite/providers/vertex.py", "anthropic"),
    ("rewrite/providers/azure.py", "openai"),
    ("rewrite/providers/azure.py", "anthropic"),
    # The capabilities key users write in the config (`anthropic_version`), read by the registration's
    # `required_headers` through the capability table.
    ("rewrite/config_providers.py", "anthropic"),
    # The continuity store's key prefix ("responses:"): records in a shared Redis outlive an upgrade.
    ("rewrite/conversation/continuity.py", "responses"),
}


def registered_names() -> set[str]:
    """Every registered protocol's name, family and choice."""
    return {n for r in protocols.registrations() for n in (r.name, r.family.name, r.choice) if n}


def protocol_packages() -> set[str]:
    """The packages of the registered protocols' own folders (`protocols.openai_chat`)."""
    return {".".join(type(r.protocol).__module__.split(".")[:2]) for r in protocols.registrations()}


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])")


def _prose(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings or other bare string statements."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _identifiers(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    return []


def occurrences(source: str, names: set[str], packages: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every name of `names` in the code of `source`, and of every import of `packages`."""
    tree = ast.parse(source)
    prose = _prose(tree)
    words = {name: _word(name) for name in names}
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            found += [(line, name) for name, word in words.items() if word.search(node.value)]
        for identifier in _identifiers(node):
            found += [(line, name) for name, word in words.items() if word.search(identifier.lower().replace("_", " "))
                      or identifier.lower() == name]
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        found += [(line, package) for module in modules for package in packages
                  if module == package or module.startswith(package + ".")]
    return found


def test_the_registry_names_protocols_to_look_for():
    assert {"openai_chat", "openai_responses", "anthropic_messages", "gemini", "openai", "anthropic", "responses",
            "chat"} <= registered_names()  # (what the scan below must find, were it written)


def test_the_scan_finds_a_name_in_code_and_not_in_prose():
    names, packages = registered_names(), protocol_packages()
    code = '''"""Gemini and openai_responses, in a docstring."""
import protocols.gemini.stream
from protocols.openai_responses.translate import vocabulary
RESPONSES = "openai_responses"  # a comment naming anthropic
headers = [("anthropic-version", "2023-06-01")]
def gemini_quota(body): return "Gemini CLI" in body
same = proto.name == "responses"
'''
    found = {(line, name) for line, name in occurrences(code, names, packages)}
    assert found == {(2, "protocols.gemini"), (2, "gemini"), (3, "protocols.openai_responses"),
                     (4, "openai_responses"), (4, "openai"), (4, "responses"), (5, "anthropic"), (6, "gemini"),
                     (7, "responses")}


@pytest.mark.parametrize("folder", SCANNED)
def test_the_engine_and_the_glue_never_name_a_protocol(folder):
    names, packages = registered_names(), protocol_packages()
    spelled = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for line, name in occurrences(path.read_text(), names, packages):
            if (where, name) not in ALLOWED:
                spelled.append(f"{where}:{line}: {name}")
    assert not spelled, "protocol knowledge outside protocols/ (ask the registration):\n" + "\n".join(spelled)


def test_every_allowance_is_still_needed():
    names, packages = registered_names(), protocol_packages()
    for where, name in ALLOWED:
        assert name in {n for _, n in occurrences((ROOT / where).read_text(), names, packages)}, where
