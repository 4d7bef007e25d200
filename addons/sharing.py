"""`state.redis` from mitmproxy: the key pools' decisions and the conversation store shared by every worker.

The engine shares them (rewrite/state/sharing.py): on each config (re)load this addon has it give the new pools their
shared decisions (a new link when `state.redis` names another server), start from `running`, and write the usage
counts not yet written in `done()`. Without `state.redis`, nothing changes: each pool decides alone.
"""

from __future__ import annotations

from rewrite.surface import Engine


class Sharing:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" in updated:  # (RotatorConfig, registered before this addon, has loaded it)
            self.engine.share_state()

    def running(self) -> None:
        self.engine.sharing.start()

    def done(self) -> None:
        self.engine.sharing.close()
