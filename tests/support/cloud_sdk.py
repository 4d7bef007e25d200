"""The official SDKs' cloud clients, each making one call as a user's script would: run as a process inside the
private namespace (tests/support/cloud_kit.py: `CloudKit.sdk`), with only HTTPS_PROXY and the proxy's CA to go by.

    python -m tests.support.cloud_sdk anthropic_vertex '{"project": "proj-a", "region": "us-east5",
                                                        "credentials": "/path/sa.json", "stream": true}'
    python -m tests.support.cloud_sdk --serve      # a fork server of such calls (see `serve`); the kit uses this

It prints one JSON line: what the user saw (`text`, `model`, `finish`, the chunks' count and the first one's
`choices` and `prompt_filter_results` where there are chunks) or the error the SDK raised (`error`, `status`,
`body`). Options every client takes: `prompt`, `stream` (true), `max_retries` (0), `timeout` (30 s).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
CLIENTS: dict[str, Callable[[dict], dict]] = {}


def client(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
    CLIENTS[fn.__name__] = fn
    return fn


def google_credentials(options: dict) -> Any:
    """The service account's credentials from its JSON key file (`credentials`), or None."""
    if not options.get("credentials"):
        return None
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(options["credentials"], scopes=[CLOUD_PLATFORM])


def _messages(options: dict) -> list[dict]:
    return [{"role": "user", "content": options.get("prompt", "Say hello")}]


@client
def anthropic_vertex(options: dict) -> dict:
    """AnthropicVertex: `project`, `region`, and `credentials` (a key file) or `access_token`; `model`."""
    import anthropic

    sdk = anthropic.AnthropicVertex(region=options["region"], project_id=options["project"],
                                    credentials=google_credentials(options), access_token=options.get("access_token"),
                                    max_retries=options.get("max_retries", 0), timeout=options.get("timeout", 30))
    model = options.get("model", "claude-sonnet-4-5@20250929")
    if options.get("stream", True):
        with sdk.messages.stream(model=model, max_tokens=256, messages=_messages(options)) as stream:
            message = stream.get_final_message()
    else:
        message = sdk.messages.create(model=model, max_tokens=256, messages=_messages(options))
    text = "".join(block.text for block in message.content if block.type == "text")
    return {"text": text, "model": message.model, "finish": message.stop_reason}


@client
def genai_vertex(options: dict) -> dict:
    """google-genai with vertexai=True: `project`, `location`, `credentials` (a key file); `model`."""
    from google import genai

    sdk = genai.Client(vertexai=True, project=options["project"], location=options["location"],
                       credentials=google_credentials(options))
    model = options.get("model", "gemini-2.5-flash")
    prompt = options.get("prompt", "Say hello")
    if options.get("stream", True):
        chunks = list(sdk.models.generate_content_stream(model=model, contents=prompt))
        text = "".join(chunk.text or "" for chunk in chunks)
        last = chunks[-1] if chunks else None
        finish = last.candidates[0].finish_reason if last and last.candidates else None
        return {"text": text, "chunks": len(chunks), "finish": str(finish) if finish else None,
                "model": last.model_version if last else None}
    answer = sdk.models.generate_content(model=model, contents=prompt)
    return {"text": answer.text, "model": answer.model_version,
            "finish": str(answer.candidates[0].finish_reason) if answer.candidates else None}


def _azure(options: dict) -> Any:
    import openai

    if options.get("v1"):  # the v1 API: the plain OpenAI client at {endpoint}/openai/v1/, the key as a bearer
        return openai.OpenAI(base_url=f"{options['endpoint']}/openai/v1/", api_key=options["api_key"],
                             max_retries=options.get("max_retries", 0), timeout=options.get("timeout", 30))
    return openai.AzureOpenAI(azure_endpoint=options["endpoint"], api_key=options["api_key"],
                              api_version=options.get("api_version", "2024-10-21"),
                              max_retries=options.get("max_retries", 0), timeout=options.get("timeout", 30))


@client
def azure_chat(options: dict) -> dict:
    """AzureOpenAI chat completions: `endpoint`, `api_key`, `deployment`, `api_version`; `v1`: the v1 API."""
    sdk = _azure(options)
    asked = {"model": options["deployment"], "messages": _messages(options)}
    if not options.get("stream", True):
        answer = sdk.chat.completions.create(**asked)
        return {"text": answer.choices[0].message.content, "model": answer.model,
                "finish": answer.choices[0].finish_reason}
    chunks = list(sdk.chat.completions.create(**asked, stream=True))
    with_choices = [c for c in chunks if c.choices]
    first = chunks[0].model_dump() if chunks else {}
    return {"text": "".join(c.choices[0].delta.content or "" for c in with_choices if c.choices[0].delta),
            "model": with_choices[-1].model if with_choices else None, "chunks": len(chunks),
            "finish": with_choices[-1].choices[0].finish_reason if with_choices else None,
            "first_choices": first.get("choices"), "prompt_filter_results": first.get("prompt_filter_results")}


@client
def azure_responses(options: dict) -> dict:
    """AzureOpenAI responses (the deployment in `model`): `endpoint`, `api_key`, `deployment`, `api_version`
    (2025-04-01-preview); `v1`: the v1 API."""
    sdk = _azure({"api_version": "2025-04-01-preview", **options})
    asked = {"model": options["deployment"], "input": options.get("prompt", "Say hello")}
    if not options.get("stream", True):
        answer = sdk.responses.create(**asked)
        return {"text": answer.output_text, "model": answer.model, "finish": answer.status}
    events = list(sdk.responses.create(**asked, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    last = events[-1] if events else None
    response = getattr(last, "response", None)
    return {"text": text, "chunks": len(events), "finish": last.type if last else None,
            "model": response.model if response is not None else None}


BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def _boto3(options: dict) -> Any:
    """boto3's bedrock-runtime client: `region` (us-east-1), `access_key`, `secret_key` and `session_token` (else
    `unsigned`: botocore sends no signature, as Claude Code with CLAUDE_CODE_SKIP_BEDROCK_AUTH), `max_retries` (0);
    the proxy's CA from AWS_CA_BUNDLE, as boto3 users give it."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = Config(retries={"max_attempts": 1 + options.get("max_retries", 0), "mode": "standard"},
                    read_timeout=options.get("timeout", 30), **({"signature_version": UNSIGNED}
                                                               if options.get("unsigned") else {}))
    return boto3.client("bedrock-runtime", region_name=options.get("region", "us-east-1"), config=config,
                        aws_access_key_id=options.get("access_key"), aws_secret_access_key=options.get("secret_key"),
                        aws_session_token=options.get("session_token"))


def _invoke_body(options: dict) -> bytes:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256,
                       "messages": _messages(options)}).encode()


@client
def boto3_invoke_stream(options: dict) -> dict:
    """`invoke_model_with_response_stream`: every Anthropic event of its chunks (`events`), the text, the stop."""
    answer = _boto3(options).invoke_model_with_response_stream(
        modelId=options.get("model", BEDROCK_MODEL), body=_invoke_body(options))
    events = [json.loads(e["chunk"]["bytes"]) for e in answer["body"]]
    stops = [e["delta"].get("stop_reason") for e in events if e.get("type") == "message_delta"]
    text = "".join(e["delta"].get("text", "") for e in events if e.get("type") == "content_block_delta")
    return {"text": text, "finish": stops[-1] if stops else None, "events": [e.get("type") for e in events],
            "content_type": answer.get("contentType")}


@client
def boto3_invoke(options: dict) -> dict:
    """`invoke_model`: Anthropic's message."""
    answer = _boto3(options).invoke_model(modelId=options.get("model", BEDROCK_MODEL), body=_invoke_body(options))
    message = json.loads(answer["body"].read())
    text = "".join(b.get("text", "") for b in message.get("content", []))
    return {"text": text, "finish": message.get("stop_reason"), "model": message.get("model")}


def _converse_args(options: dict) -> dict:
    return {"modelId": options.get("model", BEDROCK_MODEL),
            "messages": [{"role": "user", "content": [{"text": options.get("prompt", "Say hello")}]}],
            "inferenceConfig": {"maxTokens": 256}}


@client
def boto3_converse_stream(options: dict) -> dict:
    """`converse_stream`: the events' kinds, the text, the stop reason and the usage of `metadata`."""
    answer = _boto3(options).converse_stream(**_converse_args(options))
    events = list(answer["stream"])
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    stops = [e["messageStop"]["stopReason"] for e in events if "messageStop" in e]
    usage = [e["metadata"]["usage"] for e in events if "metadata" in e]
    return {"text": text, "finish": stops[-1] if stops else None, "events": [next(iter(e)) for e in events],
            "usage": usage[-1] if usage else None}


@client
def boto3_converse(options: dict) -> dict:
    """`converse`: the answer's text, stop reason and usage."""
    answer = _boto3(options).converse(**_converse_args(options))
    text = "".join(b.get("text", "") for b in answer["output"]["message"]["content"])
    return {"text": text, "finish": answer["stopReason"], "usage": answer["usage"]}


@client
def anthropic_bedrock(options: dict) -> dict:
    """AnthropicBedrock: `region`, `access_key`, `secret_key` and `session_token`; `model`; a stream unless `stream`
    is false."""
    import anthropic

    sdk = anthropic.AnthropicBedrock(aws_access_key=options.get("access_key"), aws_secret_key=options.get("secret_key"),
                                     aws_session_token=options.get("session_token"),
                                     aws_region=options.get("region", "us-east-1"),
                                     max_retries=options.get("max_retries", 0), timeout=options.get("timeout", 30))
    model = options.get("model", BEDROCK_MODEL)
    if options.get("stream", True):
        with sdk.messages.stream(model=model, max_tokens=256, messages=_messages(options)) as stream:
            kinds = [event.type for event in stream]
            message = stream.get_final_message()
    else:
        kinds, message = [], sdk.messages.create(model=model, max_tokens=256, messages=_messages(options))
    text = "".join(block.text for block in message.content if block.type == "text")
    return {"text": text, "model": message.model, "finish": message.stop_reason, "events": kinds}


def run(name: str, options: dict) -> dict:
    """One client's call: what the user saw, or the error the SDK raised."""
    try:
        return CLIENTS[name](options)
    except Exception as e:  # noqa: BLE001 - reported to the test as what the user saw
        response = getattr(e, "response", None)
        body = getattr(e, "body", None) if response is not None else None
        if isinstance(response, dict):  # (botocore's ClientError: its parsed error and status)
            body, status = response.get("Error"), response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        else:
            status = getattr(e, "status_code", None) or getattr(e, "code", None)
        return {"error": type(e).__name__, "message": str(e)[:2000], "status": status, "body": body,
                "trace": traceback.format_exc()[-3000:]}


def serve() -> None:
    """A fork server: the SDKs imported once (two seconds of CPU each time otherwise), then each job of stdin
    (`{"client", "options", "env"}`, one JSON line) run in a fresh fork with that environment alone. For each job it
    prints the fork's pid (`{"pid": …}`, so a caller can kill a call that hangs), then the fork's result line."""
    import anthropic.lib.bedrock  # noqa: F401 - (imported for the forks)
    import anthropic.lib.vertex  # noqa: F401
    import boto3  # noqa: F401
    import google.auth.transport.requests  # noqa: F401
    import google.genai  # noqa: F401
    import google.oauth2.service_account  # noqa: F401
    import openai  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.dup2(2, 1)  # (anything the SDKs print stays off the server's answers)
            os.environ.clear()
            os.environ.update(job["env"])
            result = run(job["client"], job["options"])
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(result, default=str) + "\n")
            os._exit(0)
        os.close(write_end)
        print(json.dumps({"pid": pid}), flush=True)
        with os.fdopen(read_end) as answer:
            result_line = answer.read().strip()
        _, status = os.waitpid(pid, 0)
        print(result_line or json.dumps({"error": "the call's process died", "status": status}), flush=True)


def main(argv: list[str]) -> int:
    if argv[1:] == ["--serve"]:
        serve()
        return 0
    print(json.dumps(run(argv[1], json.loads(argv[2]) if len(argv) > 2 else {}), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
