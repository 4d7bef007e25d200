"""Each kind of payer's attempt flow (rewrite/lifecycle/payer.py's `Payer.attempt`), driven as the spine drives it
(rewrite/exchange/keys.py): picked, held while the attempt runs, told how it ended; closed when not used; refused
with why. A pooled key (rewrite/plugins/payers/keys.py; Azure's, Bedrock's and Vertex's pools share its flow), a
subscription login (login.py), a request its client signed (signed.py), a Vertex region (vertex.py), and those that
pay nothing (platform.py's `Keyless`, payer.py's `Unpaid`)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from protocols.sigv4 import signature
from rewrite.config import parse
from rewrite.lifecycle.payer import Ask, Flow, Unpaid
from rewrite.plugins.payers.keys import PooledKey
from rewrite.plugins.payers.login import PlanLogin
from rewrite.plugins.payers.platform import Keyless
from rewrite.plugins.payers.signed import ClientSigned
from rewrite.plugins.payers.vertex import OwnRegions, Regions
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure, KeyRest
from rewrite.pool.decisions import Pick
from rewrite.pool.logins import LoginBook
from rewrite.pool.signers import SignerBook
from rewrite.routing.router import Router

KEY = "sk-one-aaaaaaaa"
RATE_LIMITED = Failure(FailureKind.STATUS, "status 429", 429, delay=30.0, rest=KeyRest("rate limited, status 429"))


def pooled(keys: str = f"{{key: {KEY}, max_concurrent: 1}}") -> PooledKey:
    provider = Router(parse(f"providers: {{openai: {{base_url: 'http://vendor.test', keys: [{keys}]}}}}")
                      ).provider_named("openai")
    assert provider is not None and provider.pool is not None
    clock = SimpleNamespace(loop=asyncio.get_running_loop())
    return PooledKey(provider, provider.pool, True, None, clock, 5.0, None, "job-0001")  # type: ignore[arg-type]


async def ended(flow: Flow, failure: Failure | None) -> None:
    """Tell `flow`, held, how its attempt ended; it ends there."""
    with pytest.raises(StopAsyncIteration):
        await flow.asend(failure)


async def test_a_pooled_key_is_leased_while_its_attempt_runs_and_rested_as_it_ended():
    payer = pooled()
    state = payer.pool.by_secret[KEY]
    flow = payer.attempt(Ask("gpt-4o"))
    ticket = await anext(flow)
    assert ticket.key == KEY and ticket.refused is None and ticket.shown is not None and KEY not in ticket.shown
    assert state.in_flight == 0 and state.usage.total.requests == 0  # (picked: not held before the spine's wait)
    assert await anext(flow) is ticket
    assert state.in_flight == 1 and state.usage.total.requests == 1
    await ended(flow, RATE_LIMITED)
    assert state.in_flight == 0
    refused = (await anext(payer.attempt(Ask("gpt-4o")))).refused  # the key rests 30 s: past first_token_timeout
    assert refused is not None and refused.status == 429 and refused.reason == "every key rate limited, for 30 s more"


async def test_a_pooled_key_not_used_is_given_back_its_shared_slot_at_once_and_nothing_counted():
    payer = pooled()
    slots: list[str] = []
    slot = SimpleNamespace(hold=lambda: slots.append("held"), release=lambda: slots.append("released"))

    async def take(*_, **__) -> Pick:
        return Pick(KEY, held=slot)  # (a pick made in Redis holds the key's slot there)

    payer.pool.take = take  # type: ignore[method-assign]
    flow = payer.attempt(Ask("gpt-4o"))
    assert (await anext(flow)).key == KEY
    await flow.aclose()  # (its wait too long, a race's second not needed)
    assert slots == ["released"] and payer.pool.by_secret[KEY].usage.total.requests == 0


async def test_a_pooled_attempt_cancelled_gives_its_lease_back_and_tells_nobody():
    payer = pooled()
    state = payer.pool.by_secret[KEY]
    flow = payer.attempt(Ask("gpt-4o"))
    await anext(flow)
    await anext(flow)
    await flow.aclose()  # (its client left, or it lost a race)
    assert state.in_flight == 0 and (await anext(payer.attempt(Ask("gpt-4o")))).refused is None  # not rested


async def test_a_kept_pooled_key_stays_held_past_its_served_attempt_until_its_flow_is_closed():
    payer = pooled()
    state = payer.pool.by_secret[KEY]
    flow = payer.attempt(Ask("gpt-4o", keeps=True))
    await anext(flow)
    await anext(flow)
    assert (await flow.asend(None)).key == KEY  # (served: told, and held on)
    assert state.in_flight == 1
    await flow.aclose()  # (the socket closed)
    assert state.in_flight == 0


async def test_a_pool_whose_every_key_was_rejected_refuses_with_a_401():
    payer = pooled()
    payer.pool.rests.reject(KEY)
    ticket = await anext(payer.attempt(Ask("gpt-4o")))
    assert ticket.key is None and ticket.refused is not None
    assert ticket.refused.status == 401 and ticket.refused.reason == "every key rejected"


async def test_a_login_whose_quota_ran_out_is_left_until_its_window_resets():
    book = LoginBook("claude")
    state = book.login("sk-ant-oat01-login-token-aaaa")
    payer = PlanLogin(None, None, state, book, sealed=False)  # type: ignore[arg-type]
    flow = payer.attempt(Ask("claude-sonnet-4"))
    assert (await anext(flow)).key is None
    await anext(flow)
    await ended(flow, Failure(FailureKind.STATUS, "status 429", 429, delay=600.0,
                              rest=KeyRest("rate limited", per_model=False, quota="weekly limit")))
    skipped = payer.skip("claude-sonnet-4", 0, 5.0)
    assert skipped is not None and skipped.kind == FailureKind.PLAN_EXHAUSTED and "weekly limit" in skipped.reason


def client_signed(book: SignerBook, signed_at: float, wall: float, more: bool = True) -> ClientSigned:
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
    headers = [("x-amz-date", date),
               ("authorization", f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{date[:8]}/us-east-1/bedrock/aws4_request, "
                                 "SignedHeaders=host;x-amz-date, Signature=0123abcd")]
    sig = signature(headers)
    assert sig is not None
    return ClientSigned(None, sig, headers, book, more, wall=lambda: wall)


async def test_a_client_signed_request_throttled_cools_its_credential_and_an_expired_one_says_why():
    now = time.time()
    book = SignerBook("bedrock", wall=lambda: now)
    payer = client_signed(book, now, now)
    flow = payer.attempt(Ask("claude"))
    await anext(flow)
    await anext(flow)
    await ended(flow, Failure(FailureKind.STATUS, "status 429", 429, delay=8.0, rest=KeyRest("rate limited, 429")))
    cooling = (await anext(payer.attempt(Ask("claude")))).refused  # (a route's next target takes its requests)
    assert cooling is not None and cooling.reason.endswith("us-east-1 is throttled, cooling down 8 s")
    expired = (await anext(client_signed(book, now - 600, now).attempt(Ask("claude")))).refused
    assert expired is not None and expired.reason.startswith("the client's signature expired")


async def test_a_vertex_attempt_that_failed_moves_the_next_to_the_next_region():
    provider = SimpleNamespace(base_url="")
    payer = OwnRegions(provider, None, Regions("us-central1", ("us-central1", "europe-west4")))  # type: ignore[arg-type]
    flow = payer.attempt(Ask("gemini-2.5-pro"))
    await anext(flow)
    await anext(flow)
    await ended(flow, Failure(FailureKind.STATUS, "status 429", 429))
    assert payer.regions.region == "europe-west4"


async def test_who_pays_nothing_refuses_every_attempt_with_its_reason():
    provider = SimpleNamespace(name="vertex")
    keyless = (await anext(Keyless(provider).attempt(Ask("m")))).refused  # type: ignore[arg-type]
    assert keyless is not None and "has no keys (providers.vertex.keys)" in keyless.reason
    failed = Failure(FailureKind.BAD_REQUEST, "who pays failed", 502, retryable=False)
    assert (await anext(Unpaid(failed).attempt(Ask("m")))).refused is failed
