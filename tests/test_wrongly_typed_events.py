"""Upstream events of the right type with wrongly typed fields (valid JSON of the wrong shape).

A repairer may refuse such an event (the engine then treats the stream as cut, see rewrite/exchange/pump.py), but
whatever it was fed, the ending it then writes must never fail: a client always gets an honest ending.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocols
import protocols.translate as translate
from protocols import ENDING_ERROR, ENDING_LENGTH
from protocols.events import Event
from protocols.sse import SSEParser, format_event
from protocols.translate.base import MALFORMED
from protocols.unified import Request
from tests.support.translation_streams import STREAMS as TRANSLATED_STREAMS

# Every stream the translation tests use: the recorded vendor samples and the fake vendor's own streams.
STREAMS: dict[str, list[bytes]] = {}
for _protocol, _body in TRANSLATED_STREAMS.values():
    STREAMS.setdefault(_protocol, []).append(_body)
WRONG = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3),
                  st.lists(st.integers(), max_size=2), st.just({}), st.just({"x": [1]}), st.just([{}]))


def paths(value, prefix=()):
    """Every place in a JSON value: the keys and indexes that lead to it."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))


def replaced(value, path, new):
    if not path:
        return new
    value = value.copy()
    value[path[0]] = replaced(value[path[0]], path[1:], new)
    return value


def mutated(event: Event, data) -> Event:
    """`event` with one field anywhere in its JSON replaced by a value of another type."""
    obj = json.loads(event.data) if event.data and event.data.startswith("{") else None
    if obj is None:
        return event
    path = data.draw(st.sampled_from(list(paths(obj))[1:] or [()]))
    obj = replaced(obj, path, data.draw(WRONG))
    return SSEParser().feed(format_event(json.dumps(obj), event.event))[0]


@pytest.mark.parametrize("protocol", list(STREAMS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_wrongly_typed_field_breaks_the_ending(protocol, data):
    body = data.draw(st.sampled_from(STREAMS[protocol]))
    events = SSEParser().feed(body)
    at = data.draw(st.integers(0, len(events) - 1))
    target = mutated(events[at], data)
    repairer = protocols.get(protocol).repairer({"model": "m", "stream": True})
    for e in [*events[:at], target]:
        try:
            repairer.feed(e)
        except MALFORMED:
            break  # refused: the engine ends the stream here
    ending = data.draw(st.sampled_from([ENDING_LENGTH, ENDING_ERROR]))
    assert isinstance(repairer.end(ending), bytes)
    assert isinstance(repairer.error_event("upstream failed"), bytes)


@pytest.mark.parametrize("protocol", list(STREAMS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_wrongly_typed_field_breaks_a_folded_answer(protocol, data):
    """The same for a non-stream call served by a forced stream: the answer folded from it is JSON, or the
    aggregator refuses it (and the engine answers 502 in the protocol's error shape)."""
    body = data.draw(st.sampled_from(STREAMS[protocol]))
    events = SSEParser().feed(body)
    at = data.draw(st.integers(0, len(events) - 1))
    events[at] = mutated(events[at], data)
    aggregator = protocols.get(protocol).aggregator({"model": "m"})
    for e in events[: at + 1]:
        try:
            aggregator.feed(e)
        except MALFORMED:
            break
    try:
        folded = aggregator.result()
    except MALFORMED:
        return
    assert isinstance(json.dumps(folded), str)


CLIENTS = list(STREAMS)


@pytest.mark.parametrize("source", list(STREAMS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_wrongly_typed_field_breaks_a_translated_ending(source, data):
    """The same for a stream translated for a client of another protocol."""
    client = data.draw(st.sampled_from([c for c in CLIENTS if c != source]))
    body = data.draw(st.sampled_from(STREAMS[source]))
    events = SSEParser().feed(body)
    at = data.draw(st.integers(0, len(events) - 1))
    events[at] = mutated(events[at], data)
    tr = translate.stream_translator(source, client, Request(model="m", include_usage=True), None)
    for e in events[: at + 1]:
        try:
            tr.feed(e)
        except MALFORMED:
            break
    ending = data.draw(st.sampled_from([ENDING_LENGTH, ENDING_ERROR]))
    assert isinstance(tr.end(ending), bytes)
