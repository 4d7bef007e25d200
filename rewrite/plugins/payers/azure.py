"""An Azure key (rewrite/providers/azure.py): pooled as any key, sent in `api-key` to its own resource, the model
asked written as that resource's deployment of it (in a classic path, and in the body's `model`): a request the
client made to one resource's deployment, moved to another key, goes to that key's resource and deployment."""

from __future__ import annotations

from protocols.members import with_members
from protocols.platforms import azure
from rewrite.lifecycle.payer import Outbound, Ticket
from rewrite.plugins.payers.keys import PooledKey
from rewrite.providers.azure import Resource

MODEL_MEMBER = b'"model"'


class AzureKey(PooledKey):
    model = ""  # the model the target is asked (set by the who-pays plug-in)

    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        out = super().apply(out, ticket, shown)
        resource = self.provider.held.get(ticket.key or "")
        if not isinstance(resource, Resource):
            return out
        deployment = resource.deployment(self.model)
        out.url = azure.placed(out.url, resource.host, deployment)
        if isinstance(out.content, bytes) and MODEL_MEMBER in out.content:
            out.content = with_members(out.content, {"model": deployment}) or out.content
        return out
