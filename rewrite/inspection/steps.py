"""A request's steps as the flow's LLM view shows them (`steps`, rewrite/inspection/views.py): what the steps plug-in
recorded (rewrite/plugins/steps.py: each upstream request as it left Rotator, and the answer before Rotator translated
or rewrote it)."""

from __future__ import annotations

import json

from protocols.registry import label
from rewrite.inspection.lines import RULE, clip, indent

MAX_STEP = 4_000  # characters of one translation step's detail
MAX_STEP_BODY = 20_000  # characters of one body shown in the steps (a step keeps at most 64 KiB of it)
UPSTREAM_STEP = "upstream"  # `kind` of the steps the steps plug-in records (rewrite/plugins/steps.py)


def steps(recorded: object, client_body: bytes = b"") -> list[str]:
    """A translated or adapted request's steps (as the client sent it, as it left Rotator, the upstream's answer
    before translation), as recorded in the flow's metadata."""
    if not isinstance(recorded, list) or not recorded:
        return []
    if any(isinstance(s, dict) and s.get("kind") == UPSTREAM_STEP for s in recorded):
        return upstream_steps(recorded, client_body)
    lines = ["steps:"]
    for n, step in enumerate(recorded, 1):
        if not isinstance(step, dict):
            lines.append(f"  {n}. {clip(str(step), MAX_STEP)}")
            continue
        label = step.get("name") or step.get("kind") or step.get("step") or "step"
        lines.append(f"  {n}. {label}")
        for key, value in step.items():
            if key in ("name", "kind", "step"):
                continue
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)
            lines += indent(f"{key}: {clip(text, MAX_STEP)}", 5)
    return lines


def upstream_steps(recorded: list, client_body: bytes) -> list[str]:
    """The steps rewrite/plugins/steps.py records: the client's request, then for each target tried the request as it
    left Rotator (credentials masked) and the upstream's answer before Rotator translated or rewrote it."""
    lines = [f"{RULE} steps: what Rotator changed on the way {RULE}", "1. the request as the client sent it:",
             *indent(body_text(client_body.decode("utf-8", "replace"), len(client_body), 0), 5)]
    n = 1
    for step in recorded:
        if not isinstance(step, dict):
            continue
        target, protocol = step.get("target", "?"), step.get("protocol")
        protocol = label(protocol) if isinstance(protocol, str) else protocol
        sent = step.get("request")
        request: dict = sent if isinstance(sent, dict) else {}
        n += 1
        lines += ["", f"{n}. as it left Rotator for {target} ({protocol}):"]
        changes = step.get("changes")
        if isinstance(changes, list) and changes:
            lines += indent("\n".join(f"- {c}" for c in changes), 5)
        lines.append(f"     {request.get('method', '')} {request.get('url', '')}")
        headers = request.get("headers")
        for pair in headers if isinstance(headers, list) else []:
            if isinstance(pair, list) and len(pair) == 2:
                lines.append(f"     {pair[0]}: {pair[1]}")
        lines += indent(body_text(request.get("body"), request.get("size"), request.get("left_out")), 5)
        answer = step.get("answer")
        if isinstance(answer, dict):
            n += 1
            about = " · ".join(str(x) for x in (f"status {answer.get('status')}", answer.get("content_type"),
                                                f"{answer.get('size')} bytes") if x)
            lines += ["", f"{n}. {target}'s answer, before Rotator translated or rewrote it ({about}):",
                      *indent(body_text(answer.get("body"), answer.get("size"), answer.get("left_out")), 5)]
    return lines


def body_text(body: object, size: object, left_out: object) -> str:
    """A recorded body: JSON indented, anything else (an SSE stream) as it came; clipped, and said so."""
    if not isinstance(body, str) or not body:
        return "(no body)"
    if not left_out:
        try:
            body = json.dumps(json.loads(body), ensure_ascii=False, indent=2)
        except (ValueError, RecursionError):  # (json.loads raises RecursionError on deep nesting)
            pass
    shown = body
    if len(body) > MAX_STEP_BODY:
        shown = f"{body[:MAX_STEP_BODY]}… [{len(body) - MAX_STEP_BODY} more characters not shown]"
    if isinstance(left_out, int) and left_out:
        shown += f"\n[rotator: {left_out} of {size} bytes were not kept]"
    return shown
