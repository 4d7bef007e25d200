"""Google Vertex AI: Gemini and Claude as the platform serves them (docs/clients.md, "Cloud platforms").

- Hosts: `{region}-aiplatform.googleapis.com`, `aiplatform.googleapis.com` (the `global` location) and
  `aiplatform.{us,eu}.rep.googleapis.com` (the multi-regions); the location in the path is the host's region.
- Gemini: `POST /{v1,v1beta1}/projects/P/locations/L/publishers/google/models/M:{generateContent,
  streamGenerateContent}` (`?alt=sse` for SSE), the Gemini API's body; express mode (an API key) has no
  `projects/P/locations/L`.
- Claude: `POST /v1/projects/P/locations/L/publishers/anthropic/models/M:{rawPredict,streamRawPredict}`, the
  Messages body without `model`, with `anthropic_version` (`vertex-2023-10-16`) and `stream` in it; the answers are
  Anthropic's own.
- Errors are Google's (`{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", ...}}`), for Claude too; a 429
  names no delay: the client backs off, or goes to another region.

The envelope (protocols/envelope.py): a call opens into the vendor's own (`/v1beta/models/M:method` with the same
body; `/v1/messages` with `model` from the path and without `anthropic_version`), and is put back the way it came
(its version, project and location kept, the model and method the plain call's). A call made for the platform by
another provider's client (a route's target) goes in a new one, `projects/-/locations/global` standing for the
project and location the payer puts in (`placed`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import unquote

from protocols.envelope import Envelope
from protocols.sse import dumps, load_object
from protocols.urls import segment
from protocols.vendor_errors import ErrorAnswer, ErrorKind, VendorError

GLOBAL = "global"
GLOBAL_HOST = "aiplatform.googleapis.com"
HOSTS = (GLOBAL_HOST, "*-aiplatform.googleapis.com", "aiplatform.*.rep.googleapis.com")
MULTI_REGIONS = frozenset({"us", "eu"})  # served at aiplatform.{us,eu}.rep.googleapis.com
_REGIONAL = re.compile(r"^([a-z0-9-]+)-aiplatform\.googleapis\.com$")
_MULTI = re.compile(r"^aiplatform\.([a-z0-9-]+)\.rep\.googleapis\.com$")
REGION = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

GOOGLE, ANTHROPIC = "google", "anthropic"
GEMINI_METHODS = ("generateContent", "streamGenerateContent")
CLAUDE_METHODS = ("rawPredict", "streamRawPredict")
STREAMING = {GOOGLE: "streamGenerateContent", ANTHROPIC: "streamRawPredict"}
WHOLE = {GOOGLE: "generateContent", ANTHROPIC: "rawPredict"}
# The generation calls (full match, without the query); `count-tokens:rawPredict` and `:countTokens` are not.
GENERATION = re.compile(
    r"/(?:v1|v1beta1)(?:/projects/[^/]+/locations/[^/]+)?"
    r"/publishers/(?:google/models/[^/:]+:(?:generateContent|streamGenerateContent)"
    r"|anthropic/models/(?!count-tokens:)[^/:]+:(?:rawPredict|streamRawPredict))")
_CALL = re.compile(
    r"^(?P<head>/(?P<version>v1|v1beta1)(?:/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+))?"
    r"/publishers/(?P<publisher>google|anthropic)/models/)(?P<model>[^/:]+):(?P<method>\w+)$")
_PLACE = re.compile(r"^/(v1|v1beta1)(?:/projects/[^/]+/locations/[^/]+)?/publishers/")

PLAIN_GEMINI = "/v1beta/models/{model}:{method}"
_PLAIN_GEMINI = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)$")
PLAIN_CLAUDE = "/v1/messages"
ANTHROPIC_VERSION = "anthropic_version"
DEFAULT_ANTHROPIC_VERSION = "vertex-2023-10-16"  # what Claude Code sends (the SDKs send their own)
NEW_HEAD = {GOOGLE: "/v1beta1/projects/-/locations/global/publishers/google/models/",
            ANTHROPIC: "/v1/projects/-/locations/global/publishers/anthropic/models/"}
EXHAUSTED = "RESOURCE_EXHAUSTED"


# -- hosts and regions -------------------------------------------------------------------------------------------


def region_of(host: str) -> str | None:
    """The region (location) a Vertex host serves: `global`, `us-east5`, `eu`; None for another host."""
    host = host.lower()
    if host == GLOBAL_HOST:
        return GLOBAL
    m = _REGIONAL.match(host) or _MULTI.match(host)
    return m.group(1) if m else None


def host_for(region: str) -> str:
    """The host of a region (location): the global endpoint, a multi-region's, or a region's own."""
    if region == GLOBAL:
        return GLOBAL_HOST
    if region in MULTI_REGIONS:
        return f"aiplatform.{region}.rep.googleapis.com"
    return f"{region}-aiplatform.googleapis.com"


def placed(path: str, project: str | None, location: str) -> str:
    """A Vertex call's path for `project` (None: the path's own; an express path gets none) in `location`."""
    call = _CALL.match(path)
    if call is None:
        return path
    if project is None:
        project = call.group("project")
        if project is None:  # (express mode: no project, no location in the path)
            return path
    head = f"/{call.group('version')}/projects/{segment(project, 'project')}/locations/{segment(location, 'region')}"
    return _PLACE.sub(lambda m: head + "/publishers/", path, count=1)


# -- the envelope ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """A Vertex generation path, read."""

    head: str  # up to and with `models/`
    segment: str  # the model as the path writes it
    version: str
    project: str | None
    location: str | None
    publisher: str
    model: str
    method: str


def call_of(path: str) -> Call | None:
    m = _CALL.match(path)
    if m is None:
        return None
    groups = m.groupdict()
    return Call(groups["head"], groups["model"], groups["version"], groups["project"], groups["location"],
                groups["publisher"], unquote(groups["model"], errors="replace"), groups["method"])


def sample_path(path: str) -> str:
    """The plain path a Vertex generation path stands for (its protocol's), for any model."""
    call = call_of(path)
    if call is None:
        return path
    return PLAIN_CLAUDE if call.publisher == ANTHROPIC else PLAIN_GEMINI.format(model="m", method=call.method)


def opened(path: str, body: dict) -> tuple[str, dict] | None:
    """(the plain path, the plain request) of a Vertex call; None for another path."""
    call = call_of(path)
    if call is None or not call.model:
        return None
    if call.publisher == GOOGLE:
        return PLAIN_GEMINI.format(model=call.segment, method=call.method), body
    inner = {"model": call.model, **{k: v for k, v in body.items() if k not in (ANTHROPIC_VERSION, "model")}}
    return PLAIN_CLAUDE, inner


def envelope_path(client_path: str, plain_path: str, body: dict) -> str:
    """The Vertex path of a plain call: the client's own (its version, project and location) with the plain call's
    model and method, or a new one (`projects/-/locations/global`) when there is no client's."""
    gemini = _PLAIN_GEMINI.search(plain_path)
    if gemini is not None:
        publisher, model, method = GOOGLE, unquote(gemini.group(1), errors="replace"), gemini.group(2)
    else:
        asked = body.get("model")
        model = asked if isinstance(asked, str) else ""
        publisher = ANTHROPIC
        method = STREAMING[ANTHROPIC] if body.get("stream") is True else WHOLE[ANTHROPIC]
    call = call_of(client_path) if client_path else None
    if call is not None and call.publisher == publisher and (call.model, call.method) == (model, method):
        return client_path  # (as it came)
    head = call.head if call is not None and call.publisher == publisher else NEW_HEAD[publisher]
    return head + segment(model) + ":" + method


def enveloped(envelope: dict | None, plain_path: str, content: bytes) -> bytes:
    """A plain call's JSON as Vertex takes it: Gemini's as it is; Claude's without `model`, with the client's
    `anthropic_version` (else Claude Code's)."""
    if _PLAIN_GEMINI.search(plain_path) is not None:
        return content
    version = (envelope or {}).get(ANTHROPIC_VERSION, DEFAULT_ANTHROPIC_VERSION)
    inner = load_object(content) or {}
    return dumps({ANTHROPIC_VERSION: version, **{k: v for k, v in inner.items() if k != "model"}})


ENVELOPE = Envelope(sample_path, opened, envelope_path, enveloped)


# -- errors ------------------------------------------------------------------------------------------------------


def exhausted(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A 429 `RESOURCE_EXHAUSTED` (pay-as-you-go capacity, or a per-minute quota of the region's base model): a
    rate limit that names no delay, for Claude's answers too (whose reader knows Anthropic's shapes): the request
    backs off, or goes to another region. A daily quota read before it stays one."""
    if answer.status != 429 or error.kind is ErrorKind.QUOTA or answer.error is None:
        return error
    if answer.error.get("status") != EXHAUSTED:
        return error
    return dataclasses.replace(error, kind=ErrorKind.RATE_LIMITED)
