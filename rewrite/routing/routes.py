"""Routes: which providers serve a model, in order. Pure matching; the engine tries the targets.

```yaml
routes:
  - models: ["claude-sonnet-4*", "claude-opus-*"]   # globs on the model the client asked for
    targets: [anthropic, deepseek/deepseek-chat]     # provider, or provider/model (split at the first slash)
  - {from: claude_login, targets: [claude_login, anthropic]}   # the provider the client called
```
The first route that matches wins: its `from` names the provider the client called, its `models` globs the model
asked (a route with both needs both). A model no route matches goes to the provider whose host was called. A
subscription login's request (rewrite/providers/login.py) follows only a route `from` its provider: a route by
model alone never takes a login's request elsewhere, and a login is a target only of a route from it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouteTarget:
    provider: str
    model: str | None = None  # None: the model the client asked for

    def model_for(self, asked: str) -> str:
        return self.model if self.model is not None else asked


def parse_target(text: str) -> RouteTarget:
    """`provider` or `provider/model`, split at the first slash (`openrouter/anthropic/claude-sonnet-4.5`)."""
    provider, slash, model = text.partition("/")
    if not provider:
        raise ValueError("a target is provider or provider/model")
    if slash and not model:
        raise ValueError(f"{text!r} names no model after the slash")
    return RouteTarget(provider, model if slash else None)


@dataclass(frozen=True, slots=True)
class RouteRule:
    globs: tuple[str, ...]
    targets: tuple[RouteTarget, ...]
    _pattern: re.Pattern | None  # None: any model
    source: str | None = None  # `from`: the provider the client called; None: any

    @classmethod
    def of(cls, globs: list[str], targets: list[str], source: str | None = None) -> RouteRule:
        pattern = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
        return cls(tuple(globs), tuple(parse_target(t) for t in targets), pattern, source)

    def matches(self, model: str, called: str | None = None) -> bool:
        if self.source is not None and self.source != called:
            return False
        return self._pattern is None or self._pattern.match(model) is not None


class Routes:
    def __init__(self, routes: list[RouteRule], logins: frozenset[str] = frozenset()) -> None:
        self.routes = routes
        self.logins = logins  # the login providers: only a route `from` one takes their requests

    @classmethod
    def from_config(cls, routes, logins: frozenset[str] = frozenset()) -> Routes:
        """From the config's `routes` (each with `models` and/or `from`, and `targets`)."""
        return cls([RouteRule.of(r.models, r.targets, r.source) for r in routes], logins)

    def targets_for(self, model: str, called_provider: str) -> tuple[RouteTarget, ...]:
        """The providers to try for `model` asked of `called_provider`, in order; the called provider alone when no
        route matches."""
        login = called_provider in self.logins
        for route in self.routes:
            if (route.source is not None or not login) and route.matches(model, called_provider):
                return route.targets
        return (RouteTarget(called_provider),)


def check_targets(routes, providers: set[str], logins: Collection[str] = ()) -> str | None:
    """The first route naming no provider (in `from` or a target), or naming a login as a target of another
    provider's requests, as a one-line config error; None if every route is sound."""
    known = ", ".join(sorted(providers))
    for i, route in enumerate(routes):
        source = getattr(route, "source", None)
        if source is not None and source not in providers:
            return f"routes.{i}.from: unknown provider {source!r} (providers: {known})"
        for j, text in enumerate(route.targets):
            name = parse_target(text).provider
            if name not in providers:
                return f"routes.{i}.targets.{j}: unknown provider {name!r} (providers: {known})"
            if name in logins and source != name:
                return (f"routes.{i}.targets.{j}: {name} serves only its own clients' logins: name it in a route "
                        f"`from: {name}`")
    return None
