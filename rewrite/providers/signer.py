"""A provider whose requests are signed with AWS Signature Version 4 (`ProviderSpec.signer`: Bedrock's): where each
region is, and signing a request with a pooled credential (botocore's `SigV4Auth`, over the final bytes).

Its pool (`CloudKey`s, from the config's `keys` and `regions`) is one entry per credential and region: AWS throttles
an account per region, so a key rests, is picked and is counted in each region apart (the pool names it
`<id>@<region>`, masked with its region shown). A credential is AWS keys (an access key id, its secret, a session
token for temporary ones: signed per attempt) or a Bedrock API key (`Authorization: Bearer`, no signature). A request
a client signed itself is read by protocols/sigv4.py: it goes as it came (rewrite/plugins/payers/signed.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from protocols import sigv4
from rewrite.config_providers import KeyConfig
from rewrite.intake.big_json import Upload

Headers = list[tuple[str, str]]

# What a request carries of a signature or a credential, replaced whole by Rotator's.
SIGNING_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "date"})
# Headers not signed: the transport writes them (content-length, host from the URL) or they are one connection's.
UNSIGNED = frozenset({"content-length", "host", "connection", "keep-alive", "transfer-encoding", "expect",
                      "user-agent", "x-amzn-trace-id"})
CONTENT_SHA256 = "X-Amz-Content-SHA256"


@dataclass(frozen=True)
class CloudKey:
    """One pooled credential in one region (`region` None: the region the client called)."""

    id: str = field(repr=False)  # the access key id, or the bearer API key
    region: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    bearer: bool = False

    @property
    def pooled_as(self) -> str:
        """The pool's name for it: the credential and its region."""
        return f"{self.id}@{self.region}" if self.region else self.id


@dataclass(frozen=True)
class Signer:
    service: str  # the credential scope's service (`bedrock`), also the service an ARN in a path names
    host: str  # the host of a region, `{region}` in it (`bedrock-runtime.{region}.amazonaws.com`)
    default_region: str = "us-east-1"  # for a target no host says the region of

    def region_of(self, host: str) -> str | None:
        """The region a host of the service is in; None for another host."""
        head, _, tail = self.host.partition("{region}")
        host = host.lower()
        if host.startswith(head) and host.endswith(tail) and len(host) > len(head) + len(tail):
            region = host[len(head):len(host) - len(tail)]
            return region if "." not in region else None
        return None

    def located(self, url: str, region: str | None, moves: bool) -> tuple[str, str]:
        """(the URL, the region) of a request sent in `region` (None: the one its host is in): `moves`, its host the
        region's and an ARN in its path naming it too; else the URL as it is (an endpoint the config names)."""
        parts = urlsplit(url)
        called = self.region_of(parts.hostname or "")
        region = region or called or self.default_region
        if not moves:
            return url, region
        path = parts.path
        if region != called:  # (an ARN of the region called names the new one)
            path = _ARN_REGION.sub(lambda m: m.group(1) + region + m.group(3), path)
        return f"https://{self.host.format(region=region)}{path}", region

    def sign(self, method: str, url: str, query: str, headers: Headers, content: bytes | Upload, key: CloudKey,
             region: str) -> Headers:
        """`headers` with the client's signature or credential replaced by `key`'s: a bearer key, or a SigV4
        signature (botocore's) over the method, URL, query, the headers and the body's SHA-256."""
        kept = [(n, v) for n, v in headers if n.lower() not in SIGNING_HEADERS]
        if key.bearer:
            return [*kept, ("authorization", f"Bearer {key.id}")]
        from botocore.auth import SigV4Auth  # (imported when a pool signs: botocore is slow to import)
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=url + (f"?{query}" if query else ""), data=b"")
        for name, value in kept:
            if name.lower() not in UNSIGNED:
                request.headers[name] = value
        if isinstance(content, Upload):  # (a large body, hashed a piece at a time)
            digest = hashlib.sha256()
            for piece in content.pieces:
                digest.update(piece)
            request.headers[CONTENT_SHA256] = digest.hexdigest()
        else:
            request.data = content
        credentials = Credentials(key.id, key.secret_access_key or "", key.session_token)
        SigV4Auth(credentials, self.service, region).add_auth(request)
        signed = [(n, v) for n, v in request.headers.items() if n.lower() in SIGNING_HEADERS]
        return [*kept, *signed]

    def shown(self, headers: Headers, key: CloudKey, masked: str) -> Headers:
        """`headers` as a person may see them signed by `key`: its credential masked, no signature."""
        kept = [(n, v) for n, v in headers if n.lower() not in SIGNING_HEADERS]
        if key.bearer:
            return [*kept, ("authorization", f"Bearer {masked}")]
        return [*kept, ("authorization", f"{sigv4.SCHEME} Credential={masked}/…, Signature=…")]


_ARN_REGION = re.compile(r"(arn(?::|%3[Aa])aws[a-z-]*(?::|%3[Aa])[a-z-]+(?::|%3[Aa]))([a-z0-9-]+)((?::|%3[Aa]))")


def cloud_pool(keys: list[KeyConfig], regions: list[str]) -> tuple[list[KeyConfig], dict[str, CloudKey]]:
    """A signing provider's pool: each configured credential in each region it serves (its own `region`, else each
    of the provider's `regions`, else the one its client calls), as the pool's keys, and what each stands for."""
    pooled: list[KeyConfig] = []
    cloud: dict[str, CloudKey] = {}
    for k in keys:
        places: list[str | None] = [k.region] if k.region else [*regions] or [None]
        for region in places:
            if k.access_key_id:
                entry = CloudKey(k.access_key_id, region, k.secret_access_key, k.session_token)
            else:
                entry = CloudKey(k.bearer or k.key, region, bearer=True)
            pooled.append(k.model_copy(update={"key": entry.pooled_as}))
            cloud[entry.pooled_as] = entry
    return pooled, cloud
