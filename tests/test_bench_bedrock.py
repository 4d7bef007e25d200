"""scripts/bench's Bedrock streams: the frames its fake vendor writes are ones botocore reads as Bedrock's, and the
load client reads back every stamped event and the completion of each."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_lib import bedrock  # noqa: E402 - bench_lib lives in scripts/, put on the path just above

from tests.support import bedrock_sdk as sdk  # noqa: E402


def stream(family: str, events: int) -> bytes:
    path = next(k for k in bedrock.STREAMS if bedrock.PATHS[family].encode().endswith(k))
    first, event, last = bedrock.STREAMS[path]
    return first() + b"".join(event(i, 1000 + i) for i in range(events)) + last(events)


def test_the_vendors_frames_are_bedrocks_as_botocore_reads_them():
    invoke = [json.loads(e["chunk"]["bytes"]) for e in sdk.invoke_stream(stream("bedrock_invoke", 3), chunk=7)]
    assert [e["type"] for e in invoke][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "".join(e["delta"]["text"] for e in invoke if e["type"] == "content_block_delta") == \
        "w0 ts1000 w1 ts1001 w2 ts1002 "
    converse = sdk.converse_stream(stream("bedrock_converse", 3), chunk=5)
    assert [next(iter(e)) for e in converse][-3:] == ["contentBlockStop", "messageStop", "metadata"]


def test_the_client_reads_each_stamped_event_and_the_end_split_anywhere():
    for family in bedrock.FAMILIES:
        body = stream(family, 4)
        frames = bedrock.Frames()
        said = [bedrock.said(k, p) for piece in (body[i:i + 3] for i in range(0, len(body), 3))
                for k, p in frames.feed(piece)]
        assert sum(len(bedrock.STAMP_RE.findall(s)) for s in said) == 4 and not frames.pending
        kinds = [k for piece in [body] for k, _ in bedrock.Frames().feed(piece)]
        assert bedrock.terminal(kinds[-1], said[-1])
