"""Adapters: small named rewrites of upstream requests (and of answers, where one needs it) that make a host
accept what a client sends, configured per provider and per model.

One adapter is one class in one module of this package, registered by name with `register` (registry.py). Its
`Options` is the pydantic type its config value is validated with. The config names them as a list of one-key mappings
(`[{cap: {max_tokens: 32000}}, developer_to_system]`); `entries.AdapterEntry` validates that list, and
`chain.ProviderAdapters` compiles it into the chain a request gets.
"""

from __future__ import annotations

# Each module registers its adapter; the order here is the order docs/configuration.md's table follows.
from rewrite.adapters import (  # noqa: F401  (each registers itself in registry.py)
    cap,
    clamp,
    default,
    developer_to_system,
    drop,
    drop_tool_types,
    force,
    headers,
    reasoning_field,
    rename_model,
)
from rewrite.adapters.chain import AdapterChain, ProviderAdapters  # noqa: F401  (the package's names)
