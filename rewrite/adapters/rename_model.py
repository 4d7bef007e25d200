"""`rename_model: glm-4.6`: ask the host for this model, whatever the client named.

The body's `model` gets the name; for a protocol whose model is in the URL path (Gemini's), `AdapterChain.apply_to_path`
puts it there.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from rewrite.adapters.registry import Adapter, UpstreamRequest, register


def _model_name(name: str) -> str:
    # Gemini's model is part of the URL path: nothing that would end or break it
    if not name or any(c.isspace() or c in "?#" for c in name):
        raise ValueError("a model name, without spaces, '?' or '#'")
    return name


@register
class RenameModel(Adapter):
    name = "rename_model"
    Options = Annotated[str, AfterValidator(_model_name)]

    def request(self, req: UpstreamRequest) -> None:
        req.model = self.options
        if "model" in req.body:
            req.body["model"] = self.options

    def model(self, model: str) -> str:
        return self.options
