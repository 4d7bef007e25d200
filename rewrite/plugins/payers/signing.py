"""A pool of a platform that signs its requests (AWS SigV4: rewrite/providers/signer.py): each pooled key is a
credential in one region (AWS keys, or a Bedrock API key: the provider's `held`); the pool picks, leases and rests
it as any pooled key (rewrite/plugins/payers/keys.py), and each attempt is sent to its region's host (an ARN in
the path naming that region too) and signed there, over its final bytes: a throttled key or region moves to the
next, and a body Rotator rebuilds (a continuation, a forced stream) is signed as it is sent. Its secret is in no
log, flow or status page: the flow shows the credential masked and no signature."""

from __future__ import annotations

from rewrite.lifecycle.payer import Outbound, Ticket
from rewrite.plugins.payers.keys import PooledKey
from rewrite.pool import mask
from rewrite.providers.signer import CloudKey, signer_of


class SignedKey(PooledKey):
    def apply(self, out: Outbound, ticket: Ticket, shown: bool = False) -> Outbound:
        out = self.depart(out)
        provider, key = self.provider, ticket.key
        signer = signer_of(provider.platform)
        entry = provider.held.get(key) if key is not None else None
        if signer is None or not isinstance(entry, CloudKey):
            return out
        out.url, region = signer.located(out.url, entry.region, moves=not provider.base_url)
        if shown:
            out.headers = signer.shown(out.headers, entry, mask(entry.id))
        else:
            out.headers = signer.sign(out.method, out.url, out.query, out.headers, out.content, entry, region)
        return out
