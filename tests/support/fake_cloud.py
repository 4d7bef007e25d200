"""A fake cloud platform: Google Vertex AI (Gemini and Anthropic models), Google's OAuth token endpoint and the GCE
metadata server, Azure OpenAI (classic, v1, Responses), Azure AI Foundry's Anthropic path and Amazon Bedrock
(tests/support/fake_bedrock.py: InvokeModel, Converse, their streams; every SigV4 signature checked), at their real
hostnames. It is the fake vendor (tests/support/fake_vendor.py) with the platforms' dialects
(tests/support/cloud_dialects.py), identities (tests/support/cloud_auth.py) and faults
(tests/support/cloud_faults.py): every fault, record and wait of the fake vendor works the same here.

It is meant to run inside the private network namespace of tests/support/cloud_net.py, listening on 127.0.0.1:443
with a certificate for the real names (tests/support/cloud_certs.py); tests/support/cloud_kit.py puts it all
together. On its own (a unit test) it serves plain HTTP on a free port, and a request names its host in `Host`.

    cloud = FakeCloud().start()
    sa = cloud.accounts.service_account("proj-a")
    cloud.accounts.azure("res-a.openai.azure.com", keys=["k"], deployments={"gpt-4o-deploy": "gpt-4o-2024-11-20"})
    cloud.script(vertex_exhausted(), host="us-east5-aiplatform.googleapis.com")   # this region's next request
    cloud.script(CloudFault.filtered(deltas=2))                                   # the next request, any host
    ...
    cloud.at("us-east5-aiplatform.googleapis.com")[0].path, cloud.wait_for(2), cloud.calls("anthropic")

Which fault a request gets: its host's queue, else its host's `always` rule, else the fake vendor's order (its
credential's queue and rule, the shared queue and rule, `Fault.ok()`). The platform's refusals (a bad token, a
foreign project, an unknown deployment) come before any fault, as the real ones do; a request refused so still
takes its fault off the queue. A scripted `Fault.status(code)` without a body gets the platform's error shape.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl

from tests.support import fake_bedrock
from tests.support.cloud_auth import CloudAccounts
from tests.support.cloud_dialects import (
    CLOUD_DIALECTS,
    METADATA,
    OAUTH_TOKEN,
    CloudDialects,
    host_of,
)
from tests.support.cloud_faults import error_body
from tests.support.fake_vendor import FakeVendor, Fault, Request, _Exchange


class FakeCloud(FakeVendor):
    """The fake platform's server. Several (the TLS one on 443, the metadata server on 80) may share `accounts`."""

    def __init__(self, accounts: CloudAccounts | None = None, *, tls: ssl.SSLContext | None = None,
                 sock: socket.socket | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port, tls=tls, sock=sock)
        self.accounts = accounts or CloudAccounts()
        self.dialects = CloudDialects(self.accounts)
        self._host_queues: dict[str, list[Fault]] = {}
        self._host_rules: dict[str, Fault] = {}

    # --- scripting by host

    def script(self, *faults: Fault, key: str | None = None, host: str | None = None) -> FakeCloud:
        """Queue faults, consumed one per request in arrival order: of any request, or only of those with
        credential `key`, or only of those to `host` (a region's endpoint, an Azure resource)."""
        if host is None:
            super().script(*faults, key=key)
        else:
            with self._lock:
                self._host_queues.setdefault(host, []).extend(faults)
        return self

    def always(self, fault: Fault | None, key: str | None = None, host: str | None = None) -> FakeCloud:
        """Answer every request (with credential `key`, or to `host`) this way once its queue is empty; None
        removes the rule."""
        if host is None:
            super().always(fault, key=key)
            return self
        with self._lock:
            if fault is None:
                self._host_rules.pop(host, None)
            else:
                self._host_rules[host] = fault
        return self

    def _pick_for(self, credential: str | None, headers: dict[str, str]) -> Fault:
        host = host_of(headers)
        with self._lock:
            if self._host_queues.get(host):
                return self._host_queues[host].pop(0)
            if host in self._host_rules:
                return self._host_rules[host]
        return self._pick(credential)

    @property
    def pending(self) -> int:
        with self._lock:
            return super().pending + sum(len(q) for q in self._host_queues.values())

    def reset(self) -> None:
        """Forget records and scripts (the accounts and the tokens minted stay)."""
        with self._lock:
            self._host_queues.clear()
            self._host_rules.clear()
        super().reset()

    # --- records

    def at(self, host: str) -> list[Request]:
        """Every request made to `host` (as its Host header named it), in arrival order."""
        return [r for r in self.requests if host_of(r.headers) == host]

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    # --- answering

    async def _respond(self, ex: _Exchange) -> None:
        rec = ex.rec
        head = [("server", "fake-cloud"), ("x-fake-cloud-request", str(rec.index))]
        if rec.protocol == OAUTH_TOKEN:
            status, body = self.accounts.token_endpoint(rec.raw_body)
            await self._send_whole(ex, status, head + [("cache-control", "no-store")], body)
            return
        if rec.protocol == METADATA:
            status, answer = self.accounts.metadata(rec.path, rec.headers)
            kind = "application/json" if isinstance(answer, dict) else "application/text"
            await self._send_whole(ex, status, head + [("metadata-flavor", "Google"), ("content-type", kind)],
                                   json.dumps(answer) if isinstance(answer, dict) else answer)
            return
        if rec.dialect in CLOUD_DIALECTS:
            refused = self.dialects.check(rec) if rec.protocol is not None else (404, error_body(rec.dialect, 404))
            if refused is not None:
                await self._send_whole(ex, refused[0], head, refused[1])
                return
            if rec.protocol == fake_bedrock.PROFILES:  # (Bedrock's control plane: the inference profiles)
                status, body = fake_bedrock.profiles(fake_bedrock.region_of(rec, host_of(rec.headers)))
                await self._send_whole(ex, status, head, body)
                return
            fault = rec.fault
            if fault.status_code is not None and fault.status_code >= 400 and fault.error_body is None:
                rec.fault = dataclasses.replace(fault, error_body=error_body(rec.dialect, fault.status_code))
        await super()._respond(ex)
