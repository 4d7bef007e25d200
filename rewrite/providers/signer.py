"""A cloud platform whose requests are signed with AWS Signature Version 4 (`SigningPlatform`, a `Platform` that
holds its `Signer`: Bedrock's): where each region is, and signing a request with a pooled credential (botocore's
`SigV4Auth`, over the final bytes).

Its pool is one entry per credential and region (`CloudKey`s, the provider's `held`, made by its `configure` from
the config's `keys` and `regions`): AWS throttles an account per region, so a key rests, is picked and is counted in
each region apart (the pool names it `<id>@<region>`, masked with its region shown). A credential is AWS keys (an
access key id, its secret, a session token for temporary ones: signed per attempt) or a Bedrock API key
(`Authorization: Bearer`, no signature). A request a client signed itself is read by protocols/sigv4.py: it goes as
it came (rewrite/plugins/payers/signed.py). Every call of its hosts is served (`forwards`), a generation call or
not: a pool's requests are all signed by Rotator, its clients sending none of their own.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from protocols import sigv4
from rewrite.intake.big_json import Upload
from rewrite.providers.platform import Platform

Headers = list[tuple[str, str]]

# What a request carries of a signature or a credential, replaced whole by Rotator's.
SIGNING_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "date"})
# Headers not signed: the transport writes them (content-length, host from the URL) or they are one connection's.
UNSIGNED = frozenset({"content-length", "host", "connection", "keep-alive", "transfer-encoding", "expect",
                      "user-agent", "x-amzn-trace-id"})
CONTENT_SHA256 = "X-Amz-Content-SHA256"

# botocore's SigV4Auth logs each canonical request at DEBUG, a pooled session token's `x-amz-security-token` line in
# it; mitmproxy runs the root logger at DEBUG and mitmweb's event log keeps such records.
logging.getLogger("botocore.auth").setLevel(logging.INFO)


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


@dataclass(frozen=True)
class SigningPlatform(Platform):
    signer: Signer = field(kw_only=True)

    def forwards(self, method: str, path: str) -> bool:
        """Every other call of its hosts is served too (count-tokens, guardrails, another vendor's InvokeModel body),
        forwarded with only its credential put in: a pool's signature, or the client's own as it came."""
        return True


def signer_of(platform: Platform | None) -> Signer | None:
    """The signer of a platform that signs its requests; None for another."""
    return platform.signer if isinstance(platform, SigningPlatform) else None
