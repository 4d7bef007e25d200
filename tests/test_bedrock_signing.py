"""Who pays for a Bedrock request (rewrite/plugins/payers/signed.py, signing.py), through the engine against a
Bedrock that checks every signature as AWS does (tests/support/sigv4_check.py): the client's own signature goes as
it came, every header it signed as it sent it, and is sent again as it is while AWS takes it; a pool signs each
attempt itself, in its key's region, and a throttled key or region moves to the next."""

from __future__ import annotations

import json
import time

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from rewrite.accounting.metrics import Tally
from rewrite.inspection.status import page, render_text
from rewrite.pool.key_state import mask
from tests.support import bedrock_sdk as sdk
from tests.support import converse_samples as C
from tests.support import samples
from tests.support.bedrock_samples import EVENT_STREAM, TEXT, bedrock_exception, bedrock_frames
from tests.support.engine_harness import Stream, Upstream, sse, stall_before_headers
from tests.support.routed_exchange import exchange, router
from tests.support.sigv4_check import refusal
from tests.support.streams import parse

EAST, WEST = "bedrock-runtime.us-east-1.amazonaws.com", "bedrock-runtime.us-west-2.amazonaws.com"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
INVOKE = f"/model/{MODEL}/invoke-with-response-stream"
BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
SECRETS = {"AKIDCLIENT": ("client-secret", None), "AKIDPOOLA": ("secret-a", None), "AKIDPOOLB": ("secret-b", "tok")}
POOL = """
providers:
  bedrock:
    keys:
      - {access_key_id: AKIDPOOLA, secret_access_key: secret-a}
      - {access_key_id: AKIDPOOLB, secret_access_key: secret-b, session_token: tok}
    regions: [us-east-1, us-west-2]
"""
FRAMES = bedrock_frames(samples.ANTHROPIC_TEXT)


def client_signed(path: str = INVOKE, body: bytes = BODY, host: str = EAST, at: float | None = None) -> list:
    """The headers of a request the client signed (as the anthropic SDK does: accept-encoding among them)."""
    request = AWSRequest(method="POST", url=f"https://{host}{path}", data=body,
                         headers={"content-type": "application/json", "accept-encoding": "gzip, deflate"})
    auth = SigV4Auth(Credentials("AKIDCLIENT", "client-secret"), "bedrock", "us-east-1")
    if at is None:
        auth.add_auth(request)
    else:  # (signed at another time)
        request.context["timestamp"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))
        auth._modify_request_before_signing(request)
        auth._inject_signature_to_request(request, auth.signature(auth.string_to_sign(
            request, auth.canonical_request(request)), request))
    return [("host", host), *request.headers.items()]


def bedrock(*answers):
    """A Bedrock that refuses a signature AWS would (403, with AWS's error type), else answers in turn."""
    state = {"n": 0}

    def serve(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        wrong = refusal(request.method, request.url.host, target, list(request.headers.multi_items()),
                        request.content, SECRETS, time.time())
        if wrong is not None:
            return httpx.Response(403, headers={"x-amzn-errortype": wrong[0]}, json={"message": wrong[1]})
        answer = answers[min(state["n"], len(answers) - 1)]
        state["n"] += 1
        return answer(request) if callable(answer) else answer
    return serve


def frames(chunks=FRAMES) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": EVENT_STREAM}, stream=Stream(list(chunks)))


def throttled() -> httpx.Response:
    return httpx.Response(429, headers={"x-amzn-errortype": "ThrottlingException"},
                          json={"message": "Too many tokens, please wait before trying again."})


async def test_the_clients_signature_goes_as_it_came_and_aws_takes_it():
    upstream = Upstream([bedrock(lambda r: frames())])
    out, _ = await exchange(EAST, INVOKE, BODY, upstream, headers=client_signed(), config="")
    assert out.status == 200 and out.body == TEXT
    (sent,) = upstream.seen
    assert sent.headers["accept-encoding"] == "gzip, deflate"  # signed: as the client sent it, not Rotator's


async def test_a_stalled_first_token_is_the_identical_signed_request_again():
    upstream = Upstream([stall_before_headers(10), bedrock(lambda r: frames())])
    out, job = await exchange(EAST, INVOKE, BODY, upstream, headers=client_signed(), config="")
    first, second = upstream.seen
    assert (first.content, first.headers.multi_items()) == (second.content, second.headers.multi_items())
    assert out.body == TEXT and any(n["kind"] == "retry" for n in job.notes)


async def test_a_signature_aws_would_no_longer_take_is_not_sent():
    upstream = Upstream([bedrock(lambda r: frames())])
    out, _ = await exchange(EAST, INVOKE, BODY, upstream, headers=client_signed(at=time.time() - 290), config="")
    assert upstream.seen == [] and out.status == 502
    assert "signature expired" in json.loads(out.body)["message"]


async def test_a_changed_byte_is_refused_as_aws_refuses_it():
    upstream = Upstream([bedrock(lambda r: frames())])
    headers = client_signed(body=BODY.replace(b"hi", b"ho"))
    out, _ = await exchange(EAST, INVOKE, BODY, upstream, headers=headers, config="")
    assert out.status == 403 and dict(out.headers)["x-amzn-errortype"] == "InvalidSignatureException"


async def test_a_pool_signs_each_attempt_and_a_throttled_key_moves_to_the_next_region():
    upstream = Upstream([bedrock(lambda r: throttled(), lambda r: frames())])
    out, job = await exchange(EAST, INVOKE, BODY, upstream, headers=client_signed(), config=POOL)
    assert out.status == 200 and out.body == TEXT
    first, second = upstream.seen
    assert (first.url.host, second.url.host) == (EAST, WEST)
    assert [s.headers["authorization"].split("/")[0].split("=")[1] for s in upstream.seen] == ["AKIDPOOLA"] * 2
    assert "client-secret" not in json.dumps(job.notes) and "secret-a" not in json.dumps(job.notes)


async def test_a_pool_signs_what_it_rebuilt_a_forced_stream_of_a_non_stream_call():
    path = f"/model/{MODEL}/invoke"
    upstream = Upstream([bedrock(lambda r: frames())])
    out, _ = await exchange(EAST, path, BODY, upstream, headers=[("host", EAST)], config=POOL)
    (sent,) = upstream.seen
    assert sent.url.raw_path.decode() == f"/model/{MODEL}/invoke-with-response-stream"
    assert "stream" not in json.loads(sent.content) and "model" not in json.loads(sent.content)
    answer = json.loads(out.body)
    assert answer["content"][0]["text"] == "The capital of France is Paris." and answer["stop_reason"] == "end_turn"


async def test_a_call_of_no_protocol_is_signed_by_the_pool_too():
    path = f"/model/{MODEL}/count-tokens"  # (not a generation call: forwarded with only the credential put in)
    upstream = Upstream([bedrock(httpx.Response(200, json={"inputTokens": 9}))])
    out, _ = await exchange(EAST, path, BODY, upstream, headers=[("host", EAST)], config=POOL)
    (sent,) = upstream.seen
    assert out.status == 200 and json.loads(out.body) == {"inputTokens": 9}
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDPOOLA/")
    assert sent.url.raw_path.decode() == path and sent.content == BODY


async def test_a_bearer_key_goes_as_a_bearer_token():
    config = "providers: {bedrock: {keys: [{bearer: ABSKpooledkey0001}]}}"
    upstream = Upstream([lambda r: frames()])
    out, _ = await exchange(EAST, INVOKE, BODY, upstream, headers=client_signed(), config=config)
    (sent,) = upstream.seen
    assert sent.headers["authorization"] == "Bearer ABSKpooledkey0001" and "x-amz-date" not in sent.headers
    assert sent.url.host == EAST and out.body == TEXT


async def test_an_exception_frame_before_content_moves_a_pool_to_the_next_key():
    throttle = bedrock_exception("throttlingException", "Too many tokens, please wait before trying again.")
    upstream = Upstream([bedrock(lambda r: frames([FRAMES[0], throttle]), lambda r: frames())])
    out, _ = await exchange(EAST, INVOKE, BODY, upstream, headers=[("host", EAST)], config=POOL)
    assert len(upstream.seen) == 2 and upstream.seen[1].url.host == WEST
    assert out.body == TEXT and [e["chunk"] for e in sdk.invoke_stream(out.body)]


async def test_throttling_is_counted_per_access_key_id_and_region_and_shown_on_the_status_page():
    rt = router("")
    upstream = Upstream([bedrock(lambda r: throttled())])
    out, _ = await exchange(EAST, INVOKE, BODY, upstream, headers=client_signed(), router=rt)
    assert out.status == 429 and len(upstream.seen) == 2  # (the identical request again, then the vendor's answer)
    provider = rt.provider_named("bedrock")
    shown = render_text(page([{"name": "bedrock", "family": "bedrock", "pool": None,
                               "signers": provider.signers.describe()}], [], Tally(), time.time())).decode()
    assert f"{mask('AKIDCLIENT')} us-east-1: requests 2, served 0, throttled 2" in shown
    assert "client-secret" not in shown


async def test_a_throttled_signer_cools_down_and_a_routes_next_target_serves_meanwhile():
    config = """
providers:
  anthropic: {base_url: 'http://anthropic.test', keys: [sk-a1]}
routes:
  - {from: bedrock, models: ['*anthropic.claude-*'], targets: [bedrock, anthropic/claude-sonnet-4-5]}
"""
    rt = router(config)

    def anthropic(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream([samples.ANTHROPIC_TEXT]))

    upstream = Upstream([bedrock(lambda r: throttled()), anthropic])
    out, job = await exchange(EAST, INVOKE, BODY, upstream, headers=client_signed(), router=rt)
    assert [r.url.host for r in upstream.seen] == [EAST, "anthropic.test"]  # (throttled: to the next at once)
    sent = json.loads(upstream.seen[-1].content)
    assert sent["model"] == "claude-sonnet-4-5" and "anthropic_version" not in sent
    assert upstream.seen[-1].headers["x-api-key"] == "sk-a1" and "x-amz-date" not in upstream.seen[-1].headers
    said = [json.loads(e["chunk"]["bytes"]) for e in sdk.invoke_stream(out.body)]  # framed for the Bedrock client
    assert said[-1] == {"type": "message_stop"} and dict(out.headers)["content-type"] == EVENT_STREAM
    again = Upstream([anthropic])  # while it cools down, the next request goes to the next target unasked
    out, _ = await exchange(EAST, INVOKE, BODY, again, headers=client_signed(), router=rt)
    assert [r.url.host for r in again.seen] == ["anthropic.test"] and out.status == 200


async def test_a_pool_continues_a_cut_answer_and_splices_it_in_frames_the_sdks_read():
    def rest(request: httpx.Request) -> httpx.Response:  # the continuation's answer: the rest of the text
        asked = json.loads(request.content)
        assert asked["messages"][-1]["role"] == "assistant" and "model" not in asked
        return frames(bedrock_frames(samples.ANTHROPIC_TEXT.replace(b"The capital", b" is").replace(
            b" of France", b"").replace(b" is Paris.", b" Paris.")))

    upstream = Upstream([bedrock(lambda r: frames(FRAMES[:5]), rest)])  # cut after "The capital of France"
    out, job = await exchange(EAST, INVOKE, BODY, upstream, headers=[("host", EAST)], config=POOL + "resume: {}\n",
                              resume=True)
    assert len(upstream.seen) == 2 and upstream.seen[1].url.raw_path == upstream.seen[0].url.raw_path
    said = [json.loads(e["chunk"]["bytes"]) for e in sdk.invoke_stream(out.body)]
    text = "".join(e["delta"].get("text", "") for e in said if e["type"] == "content_block_delta")
    assert text == "The capital of France is Paris." and said[-1]["type"] == "message_stop"
    assert [e["type"] for e in said].count("message_start") == 1
    assert job.resume and job.resume[0]["outcome"] == "spliced"


ANTHROPIC_CALL = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                  "messages": [{"role": "user", "content": "capital of France?"}]}
TO_BEDROCK = f"routes: [{{models: ['claude-*'], targets: ['bedrock/{MODEL}']}}]\n"


async def test_an_anthropic_client_routed_to_bedrock_gets_converse_signed_by_the_pool():
    upstream = Upstream([bedrock(lambda r: frames([C.TEXT_STREAM]))])
    out, _ = await exchange("api.anthropic.com", "/v1/messages", ANTHROPIC_CALL, upstream,
                            headers=[("host", "api.anthropic.com"), ("x-api-key", "sk-ant-client")],
                            config=POOL + TO_BEDROCK)
    (sent,) = upstream.seen
    assert (sent.url.host, sent.url.path) == (EAST, f"/model/{MODEL}/converse-stream")
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDPOOLA/")
    assert "x-api-key" not in sent.headers and "anthropic_version" not in json.loads(sent.content)
    said = "".join(json.loads(e.data)["delta"].get("text", "") for e in parse(out.body)
                   if e.event == "content_block_delta")
    assert out.status == 200 and said == "".join(C.TEXT_PIECES)


async def test_bedrock_without_keys_is_not_asked_for_another_providers_client():
    config = "providers: {anthropic: {base_url: 'http://anthropic.test', keys: [sk-a]}}\n" \
             f"routes: [{{models: ['claude-*'], targets: ['bedrock/{MODEL}', anthropic]}}]\n"
    upstream = Upstream([lambda r: sse([samples.ANTHROPIC_TEXT])])
    out, job = await exchange("api.anthropic.com", "/v1/messages", ANTHROPIC_CALL, upstream,
                              headers=[("host", "api.anthropic.com"), ("x-api-key", "sk-ant-client")], config=config)
    assert [r.url.host for r in upstream.seen] == ["anthropic.test"] and out.status == 200
