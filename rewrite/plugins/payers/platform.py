"""What a cloud platform's payers share (rewrite/providers/platform.py): a platform target that another provider's
client called and that has no keys is paid by nobody: the client's credential stays with the vendor it called, and
the platform is not asked (`Keyless`)."""

from __future__ import annotations

from rewrite.lifecycle.payer import Ask, Flow, Ticket
from rewrite.plugins.payers.keys import Departing
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure
from rewrite.providers import Provider


class Keyless(Departing):
    """A platform without keys, as the target of another provider's request."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(False, None)
        self.failure = Failure(FailureKind.KEYS_RESTING, f"{provider.name} has no keys (providers.{provider.name}"
                               ".keys) for another provider's requests", retryable=False)

    def skip(self, model: str, tokens: float, within: float) -> Failure | None:
        return self.failure

    async def attempt(self, ask: Ask) -> Flow:
        yield Ticket(refused=self.failure)
