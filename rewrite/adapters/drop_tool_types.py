"""`drop_tool_types: [custom, web_search_20250305]`: leave out tools of types the host rejects.

A tool of a listed type is removed from `tools`, except an Anthropic user tool (one with an `input_schema`)
written with the `type: custom` shorthand: a tool without a type is exactly that, so it stays and only its
`type` goes. When no tool is left, `tools` and `tool_choice` go too.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rewrite.adapters.registry import Adapter, UpstreamRequest, register


@register
class DropToolTypes(Adapter):
    name = "drop_tool_types"
    Options = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]

    def __init__(self, options: list[str]) -> None:
        super().__init__(options)
        self.types = frozenset(options)

    def request(self, req: UpstreamRequest) -> None:
        tools = req.body.get("tools")
        if not isinstance(tools, list):
            return
        kept = []
        for tool in tools:
            kind = tool.get("type") if isinstance(tool, dict) else None
            if not isinstance(kind, str) or kind not in self.types:
                kept.append(tool)
            elif "input_schema" in tool:
                kept.append({k: v for k, v in tool.items() if k != "type"})
        if kept:
            req.body["tools"] = kept
        else:
            req.body.pop("tools", None)
            req.body.pop("tool_choice", None)
