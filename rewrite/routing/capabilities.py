"""A provider's model capabilities: the built-in table (protocols/capabilities.py) with the config's overrides
(`providers.NAME.models.GLOB.capabilities`), and one log line the first time a model the table does not know is
sent a translated request (it then gets the conservative guess for its family)."""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase
from typing import Any

from protocols.capabilities import Capabilities, overridden
from protocols.registry import model_capabilities

logger = logging.getLogger("rotator")
MAX_REMEMBERED = 1024  # models whose capabilities are kept (model names come from clients)


class ModelTable:
    """`families`: a platform's, whose host serves several vendors' models (Vertex's Gemini and Claude): a model its
    own family's table does not know is looked up in theirs. `crossings`: what every request translated for one
    of its models carries, by (client protocol, upstream protocol, model), kept by rewrite/routing/targets.py."""

    def __init__(self, provider: str, family: str, overrides: dict[str, dict] | None = None,
                 families: tuple[str, ...] = ()) -> None:
        self.provider, self.family = provider, family
        self.others = tuple(f for f in families if f != family)
        self.overrides = [(glob.lower(), columns) for glob, columns in (overrides or {}).items() if columns]
        self._known: dict[str, Capabilities] = {}
        self.crossings: dict[tuple[str, str, str], Any] = {}  # (targets.Crossing: targets imports this module)

    def get(self, model: str) -> Capabilities:
        caps = self._known.get(model)
        if caps is None:
            caps = self._resolve(model)
            if len(self._known) < MAX_REMEMBERED:
                self._known[model] = caps
                if not caps.known:
                    logger.info("rotator: %s: model %s is not in the capability table: sent as an unknown %s model "
                                "(docs/capabilities.md)", self.provider, model[:100], self.family)
        return caps

    def _resolve(self, model: str) -> Capabilities:
        caps = model_capabilities(self.family, model)
        if not caps.known:
            caps = next((c for f in self.others if (c := model_capabilities(f, model)).known), caps)
        name = model.removeprefix("models/").lower()
        for glob, columns in self.overrides:  # an exact name first, then the globs in config order
            if glob == name:
                return overridden(caps, columns)
        for glob, columns in self.overrides:
            if fnmatchcase(name, glob):
                return overridden(caps, columns)
        return caps
