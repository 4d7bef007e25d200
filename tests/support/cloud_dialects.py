"""The fake cloud platform's dialects on top of the fake vendor's four protocols: which request at which real host is
what, who may make it, and how the answer differs (tests/support/fake_cloud.py serves them).

| dialect | host | paths | protocol |
|---|---|---|---|
| `vertex` | `{region}-aiplatform.googleapis.com`, `aiplatform.googleapis.com`, `aiplatform.{us,eu}.rep.googleapis.com` | `/{v1,v1beta1}/projects/P/locations/L/publishers/google/models/M:{streamGenerateContent,generateContent,countTokens}` (and the express ones without `projects/P/locations/L`) | gemini |
| | | `…/publishers/anthropic/models/M:{streamRawPredict,rawPredict}`; `count-tokens:rawPredict` | anthropic |
| `azure` | `{res}.openai.azure.com`, `{res}.cognitiveservices.azure.com`, `{res}.services.ai.azure.com` | `/openai/deployments/D/chat/completions?api-version=…` | chat |
| | | `/openai/responses?api-version=…`, `/openai/v1/responses` | responses |
| | | `/openai/v1/chat/completions` | chat |
| `foundry` | `{res}.services.ai.azure.com` | `/anthropic/v1/messages` | anthropic |
| `google_oauth` | `oauth2.googleapis.com` | `POST /token` | (the token endpoint) |
| `gce_metadata` | `metadata.google.internal` (port 80) | `/computeMetadata/v1/…` | (the metadata server) |
| `bedrock` | `bedrock-runtime.{region}.amazonaws.com`, `bedrock.{region}.amazonaws.com` | tests/support/fake_bedrock.py | anthropic |

A request is recorded with its base protocol and `Request.dialect`, its model from the path (Vertex, Azure's classic
deployment path) or the body. `check` refuses what the platform refuses, in its own words: a missing or foreign
credential, a project the token's account does not own, a deployment the resource does not have, a Vertex Anthropic
body that names `model` or lacks `anthropic_version`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.support import fake_bedrock, login_dialects
from tests.support import fake_vendor as fv
from tests.support.cloud_auth import CloudAccounts
from tests.support.cloud_certs import CLOUD_CODE_HOSTS, GOOGLE_OAUTH_HOST
from tests.support.cloud_faults import (
    AZURE,
    BEDROCK,
    FOUNDRY,
    VERTEX,
    CloudFault,
    azure_chat_body,
    azure_chat_events,
    azure_error,
    azure_headers,
    filtered,
    google_error,
    response_failed,
)

GOOGLE_OAUTH, GCE_METADATA = "google_oauth", "gce_metadata"
CLOUD_DIALECTS = (VERTEX, AZURE, FOUNDRY, BEDROCK)
OAUTH_TOKEN, METADATA = "google-oauth-token", "gce-metadata"  # the protocols of the platform's own calls

_VERTEX_HOST = re.compile(r"^(?:[a-z0-9-]+-aiplatform|aiplatform(?:\.(?:us|eu)\.rep)?)\.googleapis\.com$")
_VERTEX_PATH = re.compile(
    r"^/(?P<version>v1|v1beta1)(?:/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+))?"
    r"/publishers/(?P<publisher>google|anthropic)/models/(?P<model>[^/:]+):(?P<verb>\w+)$")
_AZURE_HOST = re.compile(r"^[a-z0-9-]+\.(?:openai\.azure\.com|cognitiveservices\.azure\.com|services\.ai\.azure\.com)$")
_AZURE_DEPLOYMENT = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
_AZURE_PATHS = {"/openai/responses": fv.RESPONSES, "/openai/v1/responses": fv.RESPONSES,
                "/openai/v1/chat/completions": fv.CHAT}
_FOUNDRY_PATHS = {"/anthropic/v1/messages": fv.ANTHROPIC, "/anthropic/v1/messages/count_tokens":
                  "anthropic-count_tokens"}
_VERBS = {("google", "generateContent"): fv.GEMINI, ("google", "streamGenerateContent"): fv.GEMINI,
          ("google", "countTokens"): "gemini-count_tokens", ("anthropic", "rawPredict"): fv.ANTHROPIC,
          ("anthropic", "streamRawPredict"): fv.ANTHROPIC}
AZURE_DENIED = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                "key for an active subscription and use a correct regional API endpoint for your resource.")
AZURE_NO_DEPLOYMENT = ("The API deployment for this resource does not exist. If you created the deployment within the "
                       "last 5 minutes, please wait a moment and try again.")
GOOGLE_BAD_TOKEN = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.")
GOOGLE_NO_KEYS = ("API keys are not supported by this API. Expected OAuth2 access token or other authentication "
                  "credentials that assert a principal. See https://cloud.google.com/docs/authentication")


def host_of(headers: dict[str, str]) -> str:
    host = headers.get("host", "").lower()
    return host[: -len(":443")] if host.endswith(":443") else host


@dataclass(frozen=True)
class VertexCall:
    version: str
    project: str | None  # None: an express-mode path (API key, no project)
    location: str | None
    publisher: str
    model: str
    verb: str

    @property
    def resource(self) -> str:
        return (f"projects/{self.project}/locations/{self.location}/publishers/{self.publisher}/models/{self.model}"
                if self.project else f"publishers/{self.publisher}/models/{self.model}")


def vertex_call(path: str) -> VertexCall | None:
    m = _VERTEX_PATH.match(path)
    return VertexCall(**m.groupdict()) if m else None  # type: ignore[arg-type]


def route(method: str, path: str, headers: dict[str, str]) -> tuple[str | None, str, str | None] | None:
    """(protocol, dialect, model from the path) of a request to the platform; None for a host it does not know."""
    host = host_of(headers)
    if path.startswith("/computeMetadata/") or (path == "/" and "metadata-flavor" in headers):
        return (METADATA if method == "GET" else None), GCE_METADATA, None
    bedrock = fake_bedrock.route(method, path, host)
    if bedrock is not None:
        return bedrock
    if host == GOOGLE_OAUTH_HOST:
        return (OAUTH_TOKEN if (method, path) == ("POST", "/token") else None), GOOGLE_OAUTH, None
    if host in CLOUD_CODE_HOSTS:  # (Code Assist's dialect, as the logins' fake vendor speaks it)
        return login_dialects.route(method, path.partition("?")[0], headers)
    if _VERTEX_HOST.match(host):
        call = vertex_call(path)
        if call is None or method != "POST":
            return None, VERTEX, None
        if (call.publisher, call.model, call.verb) == ("anthropic", "count-tokens", "rawPredict"):
            return "anthropic-count_tokens", VERTEX, None
        return _VERBS.get((call.publisher, call.verb)), VERTEX, call.model
    if _AZURE_HOST.match(host):
        if host.endswith(".services.ai.azure.com") and path in _FOUNDRY_PATHS:
            return (_FOUNDRY_PATHS[path] if method == "POST" else None), FOUNDRY, None
        deployment = _AZURE_DEPLOYMENT.match(path)
        if deployment:
            return (fv.CHAT if method == "POST" else None), AZURE, deployment.group("deployment")
        return (_AZURE_PATHS.get(path) if method == "POST" else None), AZURE, None
    return None


class CloudDialects:
    """The fake vendor's dialect hooks (as tests/support/login_dialects.py gives them), for the cloud platform."""

    def __init__(self, accounts: CloudAccounts) -> None:
        self.accounts = accounts

    route = staticmethod(route)

    @staticmethod
    def streams(dialect: str, path: str) -> bool | None:
        """Whether a generation call streams, when its dialect's path says it (Bedrock's operations); None: its
        protocol's way."""
        return path.endswith(("-stream", "-with-response-stream")) if dialect == BEDROCK else None

    @staticmethod
    def stream_type(rec: fv.Request) -> str | None:
        """A stream's content type, when its dialect has its own (Bedrock's event streams)."""
        return fake_bedrock.EVENT_STREAM if rec.dialect == BEDROCK else None

    @staticmethod
    def decoded(raw: bytes, headers: dict[str, str]) -> bytes:
        return raw

    @staticmethod
    def takes_fault(protocol: str | None) -> bool:
        return protocol in fv.GENERATION_PROTOCOLS or (protocol or "").endswith("count_tokens")

    @staticmethod
    def inner(rec: fv.Request) -> Any:
        return login_dialects.inner(rec)

    @staticmethod
    def other(protocol: str, body: Any) -> tuple[int, Any] | None:
        return login_dialects.other(protocol, body) if protocol.startswith("code_assist-") else None

    def check(self, rec: fv.Request) -> tuple[int, Any] | None:
        """The platform's refusal of a request (auth, project, deployment), before any fault applies."""
        if rec.dialect == VERTEX:
            return self._vertex_refusal(rec)
        if rec.dialect in (AZURE, FOUNDRY):
            return self._azure_refusal(rec)
        if rec.dialect == BEDROCK:
            return fake_bedrock.check(self.accounts, rec, host_of(rec.headers))
        return None

    def _vertex_refusal(self, rec: fv.Request) -> tuple[int, Any] | None:
        call = vertex_call(rec.path)
        if call is None:
            return None
        if call.project is None:  # express mode
            key = rec.headers.get("x-goog-api-key") or rec.params.get("key", "")
            if self.accounts.express_project(key) is None:
                return 400, google_error(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
            return None
        auth = rec.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            if "x-goog-api-key" in rec.headers:
                return 401, google_error(401, GOOGLE_NO_KEYS, "CREDENTIALS_MISSING")
            return 401, google_error(401, GOOGLE_BAD_TOKEN, "CREDENTIALS_MISSING")
        grant = self.accounts.grant(auth[7:].strip())
        if grant is None:
            return 401, google_error(401, GOOGLE_BAD_TOKEN, "ACCESS_TOKEN_EXPIRED")
        if grant.project != call.project:
            message = (f"Permission 'aiplatform.endpoints.predict' denied on resource "
                       f"'//aiplatform.googleapis.com/{call.resource}' (or it may not exist).")
            return 403, google_error(403, message, "IAM_PERMISSION_DENIED")
        return None

    def _azure_refusal(self, rec: fv.Request) -> tuple[int, Any] | None:
        foundry = rec.dialect == FOUNDRY
        resource = self.accounts.resource(host_of(rec.headers))
        classic = not rec.path.startswith(("/openai/v1/", "/anthropic/"))
        if resource is None or (classic and "api-version" not in rec.params):
            return 404, azure_error(404, "Resource not found")
        keys = [rec.headers.get("api-key"), rec.headers.get("x-api-key") if foundry else None]
        auth = rec.headers.get("authorization", "")
        keys.append(auth[7:].strip() if auth.lower().startswith("bearer ") else None)
        if not any(key in resource.keys for key in keys if key):
            if foundry:
                return 401, fv.error_body(fv.ANTHROPIC, 401, "invalid x-api-key")
            return 401, azure_error(401, AZURE_DENIED)
        if rec.model not in resource.deployments:
            if foundry:
                return 404, fv.error_body(fv.ANTHROPIC, 404, f"model: {rec.model}")
            return 404, azure_error(404, AZURE_NO_DEPLOYMENT, "DeploymentNotFound")
        return None

    def refusal(self, rec: fv.Request) -> tuple[int, Any] | None:
        """A body the platform's model server refuses (after the faults): Vertex's and Bedrock's Anthropic body."""
        if rec.dialect == login_dialects.CODE_ASSIST:
            return login_dialects.refusal(rec)
        if rec.dialect == BEDROCK:
            return fake_bedrock.body_refusal(rec)
        if rec.dialect == VERTEX and rec.protocol == fv.ANTHROPIC and isinstance(rec.body, dict):
            if "model" in rec.body:
                return 400, fv.error_body(fv.ANTHROPIC, 400, "model: Extra inputs are not permitted")
            if "anthropic_version" not in rec.body:
                return 400, fv.error_body(fv.ANTHROPIC, 400, "anthropic_version: Field required")
        return None

    def served_model(self, rec: fv.Request) -> str:
        """The model an answer names: on Azure the deployment's model, elsewhere the one asked for."""
        resource = self.accounts.resource(host_of(rec.headers))
        if rec.dialect == AZURE and resource is not None and rec.model in resource.deployments:
            return resource.deployments[rec.model]
        return rec.model or "fake-model"

    def headers(self, rec: fv.Request, base: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if rec.dialect == BEDROCK:
            return fake_bedrock.headers(rec, base)
        given = {k for k, _ in base}
        own = azure_headers(rec) if rec.dialect == AZURE else {}
        return base + [(k, v) for k, v in own.items() if k not in given]

    def events(self, rec: fv.Request, evs: list[fv.Ev], sent_headers: list[tuple[str, str]]) -> list[fv.Ev]:
        if rec.dialect == login_dialects.CODE_ASSIST:
            return login_dialects.events(rec, evs, sent_headers)
        fault, model = rec.fault, self.served_model(rec)
        if rec.dialect == BEDROCK:
            return fake_bedrock.events(rec, evs)
        if rec.dialect == AZURE and rec.protocol == fv.CHAT:
            evs = azure_chat_events(evs, model, isinstance(fault, CloudFault) and fault.annotated)
        elif rec.dialect == AZURE and rec.protocol == fv.RESPONSES:
            evs = [_with_response_model(ev, model) for ev in evs]
        if isinstance(fault, CloudFault) and fault.filtered_at is not None:
            evs = filtered(rec, evs, fault.filtered_at, model)
        return evs

    def whole(self, rec: fv.Request, body: dict) -> dict:
        if rec.dialect == login_dialects.CODE_ASSIST:
            return login_dialects.whole(rec, body)
        if rec.dialect == BEDROCK:
            return fake_bedrock.whole(rec, body)
        if rec.dialect == AZURE and rec.protocol == fv.CHAT:
            return azure_chat_body(body, self.served_model(rec))
        if rec.dialect == AZURE and rec.protocol == fv.RESPONSES:
            return {**body, "model": self.served_model(rec)}
        return body

    def error_event(self, rec: fv.Request, sequence_number: int) -> bytes | None:
        """Azure's Responses fails in the stream with `response.failed`, Bedrock's with an exception frame
        (Fault.error_after)."""
        if rec.dialect == login_dialects.CODE_ASSIST:
            return login_dialects.error_event(rec, sequence_number)
        if rec.dialect == BEDROCK:
            return fake_bedrock.error_event(rec)
        if rec.dialect == AZURE and rec.protocol == fv.RESPONSES:
            message = "The server had an error processing your request."
            return response_failed(rec, sequence_number, self.served_model(rec), "server_error", message).data
        return None


def _with_response_model(ev: fv.Ev, model: str) -> fv.Ev:
    response = (ev.payload or {}).get("response")
    if not isinstance(response, dict):
        return ev
    payload = {**(ev.payload or {}), "response": {**response, "model": model}}
    return fv.Ev(fv.sse(payload, event=payload["type"]), ev.delta, payload)
