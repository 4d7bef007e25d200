"""The key pools from mitmproxy: the `rotator.pools` command, and the pools' state kept across restarts.

The engine keeps the state (rewrite/state/kept.py): on each config (re)load this addon has it hand the new pools
what the store keeps, writing in batches from `running` and once more in `done()`. A store that cannot be opened is
a config error: at start-up Rotator exits before it listens; at run time the change is refused.
"""

from __future__ import annotations

import json
import logging
import sys

from mitmproxy import command, exceptions

from addons.config import starting_up
from rewrite.surface import Engine, StateError, describe_pool, login_table, pool_table

logger = logging.getLogger("rotator")


class Pools:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" not in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            return
        try:
            self.engine.keep_state()
        except StateError as e:
            logger.error("rotator_config: state.path: %s", e)
            if starting_up():
                sys.exit(1)  # before the proxy listens, like any config error
            raise exceptions.OptionsError(f"rotator_config: state.path: {e}") from None

    def running(self) -> None:
        self.engine.kept.start()

    def done(self) -> None:
        self.engine.kept.close()

    @command.command("rotator.pools")
    def pools(self, fmt: str = "table") -> str:
        """Each key pool: keys masked, their state (ready, resting until when and why, out), requests in flight,
        and requests, tokens and cost in the last hour and in all; then each subscription login seen, if any (masked,
        never pooled): its plan windows, used share, reset and whether it is exhausted. fmt: table or json."""
        providers = self.engine.router.providers
        described = [describe_pool(p.pool) for p in providers if p.pool is not None]
        logins = [{"provider": p.name, "logins": seen} for p in providers
                  if p.logins is not None and (seen := p.logins.describe())]  # (a login provider never used: noise)
        if fmt == "json":
            return json.dumps(described + logins, indent=2)
        return "\n\n".join([pool_table(described), *map(login_table, logins)])
