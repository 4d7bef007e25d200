"""Azure OpenAI and Azure AI Foundry: OpenAI's and Anthropic's protocols as the platform serves them
(docs/clients.md, "Cloud platforms").

- Hosts: `{resource}.openai.azure.com`, `{resource}.cognitiveservices.azure.com`, `{resource}.services.ai.azure.com`.
- Paths: the classic `/openai/deployments/D/chat/completions?api-version=…` (the deployment in the path),
  `/openai/responses?api-version=…`, the v1 API's `/openai/v1/chat/completions` and `/openai/v1/responses` (the
  deployment in the body's `model`), and Foundry's `/anthropic/v1/messages` (Anthropic's Messages, the deployment in
  `model`). A deployment is a resource's own name for a model.
- Credentials: `api-key: KEY` (Foundry's Anthropic path takes `x-api-key` too), or `Authorization: Bearer` with the
  key or an Entra token; none is bound to the body.
- Wire facts the protocols' readers know (protocols/openai_chat/stream.py, protocols/openai_responses/stream.py,
  protocols/windows.py): a Chat stream's first chunk (`choices: []`, `prompt_filter_results`) carries no token; an
  answer its filter stopped ends with `finish_reason: content_filter` (perhaps without `data: [DONE]`) or a
  Responses `response.failed`; `x-ratelimit-remaining-*` of `-1` says nothing. Its 429 names the wait in
  `retry-after-ms`, `retry-after` and its message ("Please retry after 37 seconds").

The envelope (protocols/envelope.py): each path opens into the vendor's own (`/chat/completions`, `/responses`,
`/v1/messages`), `model` the model a known deployment serves (`models`, deployment -> model, from the config's
keys), else the deployment's name; it is put back the way it came, the model written as the client's deployment
when it is the model that one serves. A call made for the platform by another provider's client goes to the v1 API
(`/openai/v1/…`) or Foundry's Anthropic path.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from protocols.envelope import Envelope
from protocols.members import with_members
from protocols.sse import load_object
from protocols.urls import segment
from protocols.vendor_errors import ErrorAnswer, VendorError, finite

HOSTS = ("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com")
GENERATION = re.compile(r"/openai/deployments/[^/]+/chat/completions|/openai(?:/v1)?/responses"
                        r"|/openai/v1/chat/completions|/anthropic/v1/messages")
_DEPLOYMENT = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
CHAT, RESPONSES, MESSAGES = "/chat/completions", "/responses", "/v1/messages"  # the vendors' own paths
NEW_PATHS = {CHAT: "/openai/v1/chat/completions", RESPONSES: "/openai/v1/responses", MESSAGES: "/anthropic/v1/messages"}
DEPLOYMENT_PATH = "/openai/deployments/{}/chat/completions"
_RETRY_WORDS = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


def plain_of(path: str) -> str | None:
    """The vendor's own path an Azure generation path stands for; None for another path."""
    if not GENERATION.fullmatch(path):
        return None
    for plain in (CHAT, RESPONSES, MESSAGES):
        if path.endswith(plain):
            return plain
    return None


def deployment_of(path: str) -> str | None:
    """The deployment a classic path names."""
    m = _DEPLOYMENT.match(path)
    return m.group(1) if m else None


def sample_path(path: str) -> str:
    return plain_of(path) or path


def served(models: Mapping[str, str], deployment: str) -> str:
    """The model a deployment serves (its own name when the config does not say)."""
    return models.get(deployment, deployment)


def deployment_for(models: Mapping[str, str], model: str) -> str:
    """A deployment that serves `model` (the model's own name when none is known)."""
    return next((d for d, m in models.items() if m == model), model)


def opened(models: Mapping[str, str], path: str, body: dict) -> tuple[str, dict] | None:
    """(the vendor's own path, the request with the model its deployment serves) of an Azure call."""
    plain = plain_of(path)
    if plain is None:
        return None
    deployment = deployment_of(path)
    if deployment is None:
        deployment = body.get("model") if isinstance(body.get("model"), str) else None
    if deployment is None:
        return plain, body
    model = served(models, deployment)
    return plain, body if body.get("model") == model else {**body, "model": model}


def _written(models: Mapping[str, str], asked: object, model: str) -> str:
    """How `model` is written for the client's resource: the deployment the client asked (`asked`) when it serves
    that model, else a deployment known to serve it."""
    if isinstance(asked, str) and served(models, asked) == model:
        return asked
    return deployment_for(models, model)


def envelope_path(models: Mapping[str, str], client_path: str, plain_path: str, body: dict) -> str:
    """The client's path for a plain call (a classic path's deployment the one that serves the plain call's model),
    or the v1 API's (Foundry's, for Anthropic's) for a new one."""
    model = body.get("model")
    if client_path:
        deployment = deployment_of(client_path)
        if deployment is None or not isinstance(model, str):
            return client_path
        written = _written(models, deployment, model)
        return client_path if written == deployment else DEPLOYMENT_PATH.format(segment(written))
    return next((new for plain, new in NEW_PATHS.items() if plain_path.endswith(plain)), plain_path)


def enveloped(models: Mapping[str, str], envelope: dict | None, plain_path: str, content: bytes) -> bytes:
    """A plain call's JSON with its model written as the resource's deployment (the client's, when it serves it)."""
    if not models or b'"model"' not in content:
        return content
    model = (load_object(content) or {}).get("model")
    if not isinstance(model, str):
        return content
    written = _written(models, (envelope or {}).get("model"), model)
    return content if written == model else (with_members(content, {"model": written}) or content)


def envelope(models: Mapping[str, str]) -> Envelope:
    """Azure's envelope for a configuration whose keys name their deployments (`models`: deployment -> model)."""
    models = dict(models)
    return Envelope(sample_path, functools.partial(opened, models), functools.partial(envelope_path, models),
                    functools.partial(enveloped, models))


ENVELOPE = envelope({})


def placed(url: str, host: str, deployment: str) -> str:
    """An Azure call's URL (absolute, or a path alone) at the resource `host`, a classic path's deployment
    `deployment`."""
    parts = urlsplit(url)
    path = parts.path
    if deployment_of(path) is not None:
        path = DEPLOYMENT_PATH.format(segment(deployment))
    return f"https://{host}{path}"


def retry_in_words(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """The wait a 429's message names ("Please retry after 37 seconds"), when no header named one."""
    if answer.status != 429 or error.delay is not None:
        return error
    m = _RETRY_WORDS.search(error.message)
    return error if m is None else dataclasses.replace(error, delay=finite(float(m.group(1))))
