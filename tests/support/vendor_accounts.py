"""What the fake vendor's accounts keep apart, as the real vendors do (issue 30): each pooled key belongs to an
organization (Anthropic: a workspace; OpenAI: an organization; Gemini: a project), and

- a prompt prefix the same organization saw recently is a cache read in the answer's usage, anything past it a
  write (Anthropic `cache_read_input_tokens` / `cache_creation_input_tokens`, only up to its `cache_control`
  markers; OpenAI Chat `prompt_tokens_details.cached_tokens`, Responses `input_tokens_details.cached_tokens`,
  Gemini `cachedContentTokenCount`: the whole prompt, automatically);
- a Responses answer stored (`store`, true by default) is known by id to its organization only, and the
  `encrypted_content` of the reasoning items it issues is accepted back by its organization only: elsewhere the
  vendor's own 400s, `previous_response_not_found` and `invalid_encrypted_content`. Its own calls (`GET`, `DELETE
  /v1/responses/<id>`, `POST …/<id>/cancel`) are answered by its organization alone, elsewhere OpenAI's 404; a
  background one (`background: true`, answered `queued`) is `in_progress` at its first poll, then `completed`;
- a conversation (`POST /v1/conversations`) is held by its organization: it alone reads and deletes it and answers
  a Responses request naming it (`conversation`), whose items, input and output, it keeps (its prompt the
  conversation's items before the input); elsewhere OpenAI's 404;
- a Gemini explicit cache (`POST /v1beta/cachedContents`) is held by the project that made it until its
  `expireTime`: it alone reads, updates, deletes and generates with it (its tokens a cache read); elsewhere Google's
  403 "CachedContent not found (or permission denied)". Caches are kept apart with organizations off too, each key
  then a project of its own.

Off until a test names the organizations (`FakeVendor.organizations({key: org})`): the fake's other answers keep
their fixed usage. The model of the prompt is the fake's own, exact and independent of Rotator's: each segment (the
root, system and tools, then each message) is its canonical JSON, and a prefix is the SHA-256 chain over them; a
segment counts len/4 tokens. Anthropic's billing header block and cache markers, and the fields a Responses client
echoes beside an item (`id`, `status`, annotations), are not part of the prompt, as at the vendors.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CHAT, RESPONSES, ANTHROPIC, GEMINI = "chat", "responses", "anthropic", "gemini"
ANTHROPIC_TTLS = {"5m": 300, "1h": 3600}
OPENAI_RETENTION = {"in_memory": 600, "24h": 86400}
BILLING_HEADER = "x-anthropic-billing-header"
ENCRYPTED_PREFIX = "gAAAAB"


def previous_response_not_found(response_id: str) -> dict:
    """OpenAI's 400 for a `previous_response_id` its organization does not have."""
    return {"error": {"message": f"Previous response with id '{response_id}' not found.",
                      "type": "invalid_request_error", "param": "previous_response_id",
                      "code": "previous_response_not_found"}}


def invalid_encrypted_content(content: str) -> dict:
    """OpenAI's 400 for an `encrypted_content` another organization issued (or none did)."""
    return {"error": {"message": f"The encrypted content {content[:4]}...{content[-4:]} could not be verified. "
                                 "Reason: Encrypted content could not be decrypted or parsed.",
                      "type": "invalid_request_error", "param": None, "code": "invalid_encrypted_content"}}


def not_found(what: str, name: str) -> dict:
    """OpenAI's 404 for a stored response or a conversation the key's organization does not hold."""
    return {"error": {"message": f"{what} with id '{name}' not found.", "type": "invalid_request_error",
                      "param": None, "code": None}}


def cache_not_held() -> dict:
    """Google's 403 for an explicit cache the key's project does not hold (another project's, or expired)."""
    return {"error": {"code": 403, "message": "CachedContent not found (or permission denied)",
                      "status": "PERMISSION_DENIED"}}


@dataclass
class Cache:
    """An explicit cache, as Google describes it (`resource`)."""

    name: str
    project: str
    model: str
    tokens: int
    created: float  # wall clock
    expires: float

    def resource(self) -> dict:
        made, expires = _rfc3339(self.created), _rfc3339(self.expires)
        return {"name": self.name, "model": self.model, "displayName": "", "createTime": made, "updateTime": made,
                "expireTime": expires, "usageMetadata": {"totalTokenCount": self.tokens}}


@dataclass
class Served:
    """What a request's organization made of it: the usage to report, the reasoning state to issue, and (called
    with the answer's output items) the Responses answer to store."""

    organization: str
    input_tokens: int
    cache_read: int
    cache_write: int
    encrypted: str | None = None  # a reasoning item's encrypted_content to put in a Responses answer
    store: Callable[[list[dict]], None] = lambda output: None


@dataclass
class Refused:
    status: int
    body: dict
    organization: str = ""


@dataclass
class _Prompt:
    segments: list[str]  # canonical JSON, the root first
    writes: list[int]  # the segment indexes the vendor caches at (Anthropic: its markers; the others: the end)
    ttl: float


@dataclass
class Organizations:
    """The fake vendor's organizations (thread-safe: scripted from tests, used by the server's thread)."""

    clock: Callable[[], float] = time.monotonic
    ttl: float = 300.0  # how long an automatic (OpenAI, Gemini) cache entry lives unless the request says
    min_tokens: int = 0  # a prompt shorter than this is not cached (the vendors' minimums are 512 to 4096)
    _of: dict[str, str] | None = None  # key -> organization; None: off
    _cache: dict[str, dict[str, float]] = field(default_factory=dict)  # org -> prefix digest -> expiry
    _responses: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (org, its prompt's items)
    _answers: dict[str, dict] = field(default_factory=dict)  # a stored response's id -> its answer, done
    _queued: dict[str, int] = field(default_factory=dict)  # a background response's id -> polls until it is done
    _conversations: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (org, its items)
    _encrypted: dict[str, str] = field(default_factory=dict)  # issued encrypted_content -> org
    _caches: dict[str, Cache] = field(default_factory=dict)  # a Gemini cache's name -> the cache
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def assign(self, organizations: Mapping[str, str], ttl: float | None = None, min_tokens: int | None = None) -> None:
        """Each key in `organizations` belongs to the organization it maps to; any other key is an organization of
        its own."""
        with self._lock:
            self._of = dict(organizations)
            self.ttl = self.ttl if ttl is None else ttl
            self.min_tokens = self.min_tokens if min_tokens is None else min_tokens

    def reset(self) -> None:
        with self._lock:
            self._of = None
            self._cache.clear()
            self._responses.clear()
            self._answers.clear()
            self._queued.clear()
            self._conversations.clear()
            self._encrypted.clear()
            self._caches.clear()
            self.ttl, self.min_tokens = 300.0, 0

    @property
    def on(self) -> bool:
        return self._of is not None

    def organization(self, credential: str | None) -> str:
        assert self._of is not None
        return self._of.get(credential or "", credential or "(no key)")

    def serve(self, protocol: str, body: Any, credential: str | None, index: int) -> Served | Refused | None:
        """A generation request as its key's organization takes it: refused (state of another organization), or
        served with the cache it reads and writes; None when organizations are off (and it names no cache)."""
        if not isinstance(body, dict):
            return None
        with self._lock:
            cache = None
            if protocol == GEMINI and body.get("cachedContent") is not None:
                cache = self._held(body["cachedContent"], self._project(credential))
                if cache is None:
                    return Refused(403, cache_not_held(), self._project(credential))
            if self._of is None:
                return None
            org = self.organization(credential)
            if protocol == RESPONSES:
                refused = self._refusal(body, org)
                if refused is not None:
                    refused.organization = org
                    return refused
            prompt = _prompt(protocol, body, {**self._responses, **self._conversations}, self.ttl)
            if prompt is None:
                return None
            read, write = self._cached(org, prompt)
            held = cache.tokens if cache is not None else 0  # (an explicit cache's tokens are read, not written)
            served = Served(org, sum(map(_tokens, prompt.segments)) + held, read + held, write)
            if protocol == RESPONSES:
                self._responses_state(served, body, prompt, org, index)
            return served

    def cache_call(self, method: str, name: str | None, body: Any, credential: str | None,
                   index: int) -> tuple[int, dict, str]:
        """A call on a Gemini explicit cache as the key's project takes it: made (`name` None), read, given a new
        lifetime (`ttl` or `expireTime`), or deleted; (status, answer, the project)."""
        with self._lock:
            project = self._project(credential)
            asked = body if isinstance(body, dict) else {}
            now = time.time()
            if name is None:
                contents = {k: asked.get(k) for k in ("systemInstruction", "contents", "tools")}
                cache = Cache(f"cachedContents/fake{index}", project, str(asked.get("model")),
                              _tokens(_canonical(contents)), now, now + _lifetime(asked, now, 3600.0))
                self._caches[cache.name] = cache
                return 200, cache.resource(), project
            held = self._held(name, project)
            if held is None:
                return 403, cache_not_held(), project
            if method == "DELETE":
                del self._caches[name]
                return 200, {}, project
            if method == "PATCH":
                held.expires = now + _lifetime(asked, now, held.expires - now)
            return 200, held.resource(), project

    def answered(self, response_id: str, answer: dict) -> dict:
        """A stored Responses answer, kept for its own calls; the answer its request gets (a background one's
        queued)."""
        with self._lock:
            if response_id not in self._responses:
                return answer
            self._answers[response_id] = answer
            if not answer.get("background"):
                return answer
            self._queued[response_id] = 1
            return {**answer, "status": "queued", "output": [], "usage": None, "completed_at": None}

    def response_call(self, method: str, response_id: str, cancel: bool, credential: str | None
                      ) -> tuple[int, dict, str]:
        """A call on a stored response as the key's organization takes it: read (a background one's status moves
        on), cancelled, or deleted; (status, answer, the organization)."""
        with self._lock:
            org = self._project(credential)
            answer = self._answers.get(response_id)
            if answer is None or self._responses[response_id][0] != org:
                return 404, not_found("Response", response_id), org
            if method == "DELETE":
                for kept in (self._answers, self._responses, self._queued):
                    kept.pop(response_id, None)
                return 200, {"id": response_id, "object": "response.deleted", "deleted": True}, org
            polls = self._queued.get(response_id)
            if cancel and polls is not None:
                del self._queued[response_id]
                answer["status"] = "cancelled"
            elif polls:
                self._queued[response_id] -= 1
                return 200, {**answer, "status": "in_progress", "output": [], "usage": None}, org
            else:
                self._queued.pop(response_id, None)
            return 200, answer, org

    def conversation_call(self, method: str, name: str | None, credential: str | None, index: int
                          ) -> tuple[int, dict, str]:
        """A call on a conversation as the key's organization takes it: made (`name` None), read or deleted."""
        with self._lock:
            org = self._project(credential)
            if name is None:
                name = f"conv_fake{index}"
                self._conversations[name] = (org, [])
            elif self._conversations.get(name, ("",))[0] != org:
                return 404, not_found("Conversation", name), org
            elif method == "DELETE":
                del self._conversations[name]
                return 200, {"id": name, "object": "conversation.deleted", "deleted": True}, org
            return 200, {"id": name, "object": "conversation", "created_at": 1_767_225_600, "metadata": {}}, org

    def _held(self, name: object, project: str) -> Cache | None:
        cache = self._caches.get(name) if isinstance(name, str) else None
        return cache if cache is not None and cache.project == project and cache.expires > time.time() else None

    def _project(self, credential: str | None) -> str:
        return self.organization(credential) if self._of is not None else credential or "(no key)"

    def _refusal(self, body: dict, org: str) -> Refused | None:
        conversation = body.get("conversation")
        conversation = conversation.get("id") if isinstance(conversation, dict) else conversation
        if isinstance(conversation, str) and self._conversations.get(conversation, ("",))[0] != org:
            return Refused(404, not_found("Conversation", conversation))
        previous = body.get("previous_response_id")
        if isinstance(previous, str) and self._responses.get(previous, ("",))[0] != org:
            return Refused(400, previous_response_not_found(previous))
        for item in body.get("input") if isinstance(body.get("input"), list) else ():
            content = item.get("encrypted_content") if isinstance(item, dict) else None
            if isinstance(content, str) and self._encrypted.get(content) != org:
                return Refused(400, invalid_encrypted_content(content))
        return None

    def _cached(self, org: str, prompt: _Prompt) -> tuple[int, int]:
        """(tokens read, tokens written): the longest prefix this organization has cached, at most up to the last
        write point; the entries at every write point made (or refreshed) for the prompt's lifetime."""
        if not prompt.writes:
            return 0, 0
        tokens = [_tokens(s) for s in prompt.segments]
        if sum(tokens[: prompt.writes[-1] + 1]) < self.min_tokens:
            return 0, 0
        digests = _chain(prompt.segments)
        now, entries = self.clock(), self._cache.setdefault(org, {})
        hit = next((i for i in range(prompt.writes[-1], -1, -1) if entries.get(digests[i], 0) > now), -1)
        for i in {*prompt.writes, hit} - {-1}:
            entries[digests[i]] = now + prompt.ttl
        read = sum(tokens[: hit + 1])
        return read, sum(tokens[: prompt.writes[-1] + 1]) - read

    def _responses_state(self, served: Served, body: dict, prompt: _Prompt, org: str, index: int) -> None:
        include = body.get("include") if isinstance(body.get("include"), list) else []
        if "reasoning.encrypted_content" in include or isinstance(body.get("reasoning"), dict):
            secret = base64.urlsafe_b64encode(f"{org}/{index}/".encode() + hashlib.sha256(
                f"{org}/{index}".encode()).digest()).decode()
            served.encrypted = ENCRYPTED_PREFIX + secret
            self._encrypted[served.encrypted] = org
        if body.get("store", True) is not False:
            conversation = body.get("conversation")
            conversation = conversation.get("id") if isinstance(conversation, dict) else conversation

            def store(output: list[dict]) -> None:
                with self._lock:
                    items = prompt.segments[1:] + [_canonical(_responses_item(i)) for i in output]
                    self._responses[f"resp_fake{index}"] = (org, items)
                    if isinstance(conversation, str) and conversation in self._conversations:
                        self._conversations[conversation] = (org, items)

            served.store = store


# ------------------------------------------------------------------------------------------------------------------
# The prompt, as the fake vendor sees it


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _tokens(segment: str) -> int:
    return max(1, len(segment) // 4)


def _chain(segments: list[str]) -> list[str]:
    h, out = hashlib.sha256(), []
    for segment in segments:
        h.update(segment.encode("utf-8", "surrogatepass") + b"\x00")
        out.append(h.copy().hexdigest())
    return out


def _unmarked(value: Any) -> Any:
    """`value` without Anthropic's cache markers (where a prefix is cached is not part of the prompt)."""
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def _text_blocks(content: Any, kind: str = "text") -> Any:
    return [{"type": kind, "text": content}] if isinstance(content, str) else content


def _prompt(protocol: str, body: dict, stored: dict[str, tuple[str, list[str]]], ttl: float) -> _Prompt | None:
    """(`stored`: the items of each stored response and conversation, by id.)"""
    if protocol == ANTHROPIC:
        return _anthropic(body)
    if protocol == CHAT:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        lead = 0
        while lead < len(messages) and messages[lead].get("role") in ("system", "developer"):
            lead += 1
        norm = [{**m, "content": _text_blocks(m.get("content"))} for m in messages]
        root = _canonical({"tools": body.get("tools"), "system": norm[:lead]})
        segments = [root, *map(_canonical, norm[lead:])]
        return _Prompt(segments, [len(segments) - 1], _openai_ttl(body, ttl))
    if protocol == RESPONSES:
        items = body.get("input")
        items = [{"role": "user", "content": items}] if isinstance(items, str) else items or []
        previous = body.get("previous_response_id", body.get("conversation"))
        previous = previous.get("id") if isinstance(previous, dict) else previous
        before = stored[previous][1] if isinstance(previous, str) and previous in stored else []
        root = _canonical({"instructions": body.get("instructions"), "tools": body.get("tools")})
        segments = [root, *before, *(_canonical(_responses_item(i)) for i in items if isinstance(i, dict))]
        return _Prompt(segments, [len(segments) - 1], _openai_ttl(body, ttl))
    if protocol == GEMINI:
        root = _canonical({"system": body.get("systemInstruction"), "tools": body.get("tools")})
        segments = [root, *map(_canonical, body.get("contents") or [])]
        return _Prompt(segments, [len(segments) - 1], ttl)
    return None


def _rfc3339(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _lifetime(asked: dict, now: float, default: float) -> float:
    """Seconds a cache is asked to live: its `ttl` ("3600s"), else until its `expireTime`."""
    ttl, expires = asked.get("ttl"), asked.get("expireTime")
    if isinstance(ttl, str) and ttl.endswith("s"):
        return float(ttl[:-1])
    if isinstance(expires, str):
        return datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp() - now
    return default


def _openai_ttl(body: dict, ttl: float) -> float:
    return OPENAI_RETENTION.get(body.get("prompt_cache_retention") or "", ttl)


def _responses_item(item: dict) -> dict:
    """An input or output item as the model reads it: without the ids and statuses a client echoes."""
    out = {k: v for k, v in item.items() if k not in ("id", "status")}
    out.setdefault("type", "message")
    if out["type"] == "message":
        kind = "output_text" if out.get("role") == "assistant" else "input_text"
        out["content"] = [{"type": p.get("type"), "text": p.get("text")} if isinstance(p, dict) else p
                          for p in _text_blocks(out.get("content"), kind)]
    return out


def _anthropic(body: dict) -> _Prompt:
    system = _text_blocks(body.get("system"))
    if isinstance(system, list):
        system = [b for b in system if not (isinstance(b, dict) and str(b.get("text", "")).startswith(BILLING_HEADER))]
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    segments = [_canonical(_unmarked({"tools": body.get("tools"), "system": system}))]
    writes: list[int] = []
    ttl = 0.0

    def marked(value: Any, at: int) -> None:
        nonlocal ttl
        for marker in _markers(value):
            writes.append(at)
            ttl = max(ttl, ANTHROPIC_TTLS.get(marker.get("ttl", "5m"), 300))

    marked({"tools": body.get("tools"), "system": system}, 0)
    for i, message in enumerate(messages, 1):
        segments.append(_canonical(_unmarked({**message, "content": _text_blocks(message.get("content"))})))
        marked(message, i)
    if isinstance(body.get("cache_control"), dict):  # automatic caching: the whole prompt
        marked({"cache_control": body["cache_control"]}, len(segments) - 1)
    return _Prompt(segments, sorted(set(writes)), ttl)


def _markers(value: Any) -> list[dict]:
    if isinstance(value, dict):
        own = [value["cache_control"]] if isinstance(value.get("cache_control"), dict) else []
        return own + [m for k, v in value.items() if k != "cache_control" for m in _markers(v)]
    if isinstance(value, list):
        return [m for v in value for m in _markers(v)]
    return []
