"""`developer_to_system`: send `developer` messages as `system` ones, for hosts that reject the newer role.

Chat bodies (`messages`) and Responses bodies (`input` items) alike; a message keeps its place.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from rewrite.adapters.registry import Adapter, UpstreamRequest, register

DEVELOPER = "developer"
SYSTEM = "system"


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register
class DeveloperToSystem(Adapter):
    name = "developer_to_system"
    Options = NoOptions

    def request(self, req: UpstreamRequest) -> None:
        for key in ("messages", "input"):
            items = req.body.get(key)
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict) and item.get("role") == DEVELOPER:
                    item["role"] = SYSTEM
