"""What makes a built-in provider a subscription login (`ProviderSpec.login`): the client's own plan credential
(Claude Code's Pro/Max OAuth token, the Copilot CLI's GitHub token, ...), which Rotator serves but never pools,
never replaces by a pooled key and never sends to another vendor.

A login provider is one module in this package, like any built-in provider, whose spec carries a `Login`; what
its wire says beyond its protocol is pure and lives in protocols/logins/<name>.py. A `Login` is a `Wire`
(rewrite/providers/wire.py: its `paths`, `families`, `credential`, `errors`, `windows`, `envelope`, `forwarded`,
`owns` and `lookups`, `foreign` and `foreign_body`: its client's headers and body as another target of a `from:`
route gets them), and
the engine asks it besides:

- `claims(headers)`: whether a request on one of its hosts carries this login (every one, unless its spec says how to
  tell: a login may share its host with an API-key provider);
- `signed(body)`: whether a request's body is signed by its client (Claude Code's billing hash): then it goes
  upstream byte for byte, and whatever would rewrite it is skipped (the flow says so);
- `window_events`: the stream events (by type) that report its plan windows, read by its window dialects as an
  answer's body (Codex's `codex.rate_limits`);
- `client_error(status, body)`: an error answer of the login as its client is given it (Gemini CLI would sleep out
  a Code Assist quota's hours-long retry delay: it gets it bounded).

A login with no host of its own to send to (Copilot's plan names the host; a ChatGPT workspace may have a regional
origin) has an empty `base_url` in its spec: the host the client called, under the spec's path prefix, is the
upstream, unless the config sets `base_url`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rewrite.config import ConfigError
from rewrite.config_providers import ProviderConfig
from rewrite.pool.logins import LoginBook
from rewrite.providers.wire import Wire

Headers = list[tuple[str, str]]


def _everyone(headers: Mapping[str, str]) -> bool:
    return True


def _as_it_came(status: int, body: bytes) -> bytes:
    return body


@dataclass(frozen=True)
class Login(Wire):
    claims: Callable[[Mapping[str, str]], bool] | None = _everyone
    signed: Callable[[dict], bool] | None = None
    window_events: frozenset[str] = frozenset()
    client_error: Callable[[int, bytes], bytes] = _as_it_came

    def fields(self, name: str, pc: ProviderConfig, configured: Any) -> dict:
        """Its provider's: no pool (keys in its config stop start-up), a book of the logins it served."""
        if pc.keys:
            raise ConfigError(f"providers.{name}.keys: {name} serves each client's own subscription login, which is "
                              "never pooled (the vendors' terms forbid sharing or pooling plan credentials); put API "
                              "keys on an API-key provider")
        return {"envelope": self.envelope, "window_events": self.window_events, "client_error": self.client_error,
                "login": self, "logins": LoginBook(name)}

    def is_signed(self, body: dict) -> bool:
        return self.signed is not None and self.signed(body)
