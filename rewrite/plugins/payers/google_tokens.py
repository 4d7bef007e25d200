"""Google service accounts' access tokens (protocols/platforms/google_auth.py), minted by Rotator itself at each
account's `token_uri` through the engine's upstream client (so through `upstream_proxy`, trusting `upstream_ca`),
kept while they last, minted again before they end and after the platform refused one (a 401). One mint at a time
per account, whoever asks. A token is never logged nor shown: flows show the account's masked key id."""

from __future__ import annotations

import asyncio
import logging
import time

from protocols.platforms.google_auth import Minted, ServiceAccount, fresh, token_answer, token_request
from rewrite.upstream.client import Sender, encode_headers

logger = logging.getLogger("rotator")

MINT_TIMEOUT = 30.0  # seconds a token endpoint is given to answer


class Tokens:
    """The tokens minted for every service account of the engine's providers, by key id."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self._minted: dict[str, Minted] = {}
        self._minting: dict[str, asyncio.Future] = {}

    async def token(self, account: ServiceAccount, client: Sender, within: float = MINT_TIMEOUT) -> str:
        """A token of `account` that lasts more than a few minutes yet: the one kept, else one minted now.
        ServiceAccountError (the endpoint's words), an httpx error or TimeoutError when none could be had."""
        minted = self._minted.get(account.key_id)
        if fresh(minted, self.clock()):
            assert minted is not None
            return minted.token
        minting = self._minting.get(account.key_id)
        if minting is None:
            minting = self._minting[account.key_id] = asyncio.ensure_future(self._mint(account, client))
            minting.add_done_callback(lambda _: self._minting.pop(account.key_id, None))
        made: Minted = await asyncio.wait_for(asyncio.shield(minting), min(within, MINT_TIMEOUT))
        return made.token

    def refused(self, account: ServiceAccount, token: str) -> None:
        """The platform refused `token` (401): the next ask mints another."""
        minted = self._minted.get(account.key_id)
        if minted is not None and minted.token == token:
            del self._minted[account.key_id]

    async def _mint(self, account: ServiceAccount, client: Sender) -> Minted:
        url, headers, body = token_request(account, self.clock())
        response = await client.send(client.build_request("POST", url, headers=encode_headers(headers),
                                                          content=body))
        minted = token_answer(response.status_code, response.content, self.clock())
        self._minted[account.key_id] = minted
        logger.info("rotator: token minted for service account %s (%s), for %d s", account.email, account.project,
                    round(minted.expires_at - self.clock()))
        return minted
