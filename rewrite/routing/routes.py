"""Routes: which providers serve a model, in order. Pure matching; the engine tries the targets.

```yaml
routes:
  - models: ["claude-sonnet-4*", "claude-opus-*"]   # globs on the model the client asked for
    targets: [anthropic, deepseek/deepseek-chat]     # provider, or provider/model (split at the first slash)
```
The first route with a matching glob wins; a model no route matches goes to the provider whose host was called.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str | None = None  # None: the model the client asked for

    def model_for(self, asked: str) -> str:
        return self.model if self.model is not None else asked


def parse_target(text: str) -> Target:
    """`provider` or `provider/model`, split at the first slash (`openrouter/anthropic/claude-sonnet-4.5`)."""
    provider, slash, model = text.partition("/")
    if not provider:
        raise ValueError("a target is provider or provider/model")
    if slash and not model:
        raise ValueError(f"{text!r} names no model after the slash")
    return Target(provider, model if slash else None)


@dataclass(frozen=True, slots=True)
class Route:
    globs: tuple[str, ...]
    targets: tuple[Target, ...]
    _pattern: re.Pattern

    @classmethod
    def of(cls, globs: list[str], targets: list[str]) -> Route:
        pattern = re.compile("|".join(fnmatch.translate(g) for g in globs))
        return cls(tuple(globs), tuple(parse_target(t) for t in targets), pattern)

    def matches(self, model: str) -> bool:
        return self._pattern.match(model) is not None


class Routes:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    @classmethod
    def from_config(cls, routes) -> Routes:
        """From the config's `routes` (each with `models` and `targets`)."""
        return cls([Route.of(r.models, r.targets) for r in routes])

    def targets_for(self, model: str, called_provider: str) -> tuple[Target, ...]:
        """The providers to try for `model`, in order; the called provider alone when no route matches."""
        for route in self.routes:
            if route.matches(model):
                return route.targets
        return (Target(called_provider),)


def check_targets(routes, providers: set[str]) -> str | None:
    """The first target naming no provider, as a one-line config error; None if every target is known."""
    for i, route in enumerate(routes):
        for j, text in enumerate(route.targets):
            name = parse_target(text).provider
            if name not in providers:
                return f"routes.{i}.targets.{j}: unknown provider {name!r} (providers: {', '.join(sorted(providers))})"
    return None
