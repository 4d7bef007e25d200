"""AWS's side of a SigV4 signature, as the fake Bedrock checks it: the canonical request rebuilt from what arrived
(the raw path, the query, the headers the signature names, the body's SHA-256), signed with the secret of the
access key id it names (botocore's SigV4Auth at the request's own x-amz-date), compared; and AWS's answers to a
signature that does not match or is too old (403, as AWS words them)."""

from __future__ import annotations

import hashlib
import json

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from protocols import sigv4

SKEW = 300.0  # seconds either way AWS takes a signature's time


def refusal(method: str, host: str, target: str, headers: list[tuple[str, str]], body: bytes,
            secrets: dict[str, tuple[str, str | None]], now: float) -> tuple[str, str] | None:
    """Why AWS would refuse this request's signature: (exception type, message); None when it takes it. `secrets`:
    access key id -> (secret access key, session token or None)."""
    sig = sigv4.signature(headers)
    if sig is None:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    if sig.access_key_id not in secrets:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    secret, token = secrets[sig.access_key_id]
    got = {n.lower(): v for n, v in headers}
    if token is not None and got.get("x-amz-security-token") != token:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    if sig.signed_at is None or abs(now - sig.signed_at) > SKEW:
        return "InvalidSignatureException", "Signature expired: is now earlier than the time allowed (5 min.)"
    if "host" not in sig.signed_headers:
        return "InvalidSignatureException", "'Host' must be a signed header"
    claimed = got.get("x-amz-content-sha256")
    if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
        return "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match the body."
    request = AWSRequest(method=method, url=f"https://{host}{target}", data=body)
    for name in sig.signed_headers:
        if name != "host":
            request.headers[name] = " ".join(v for n, v in headers if n.lower() == name)
    request.headers["host"] = got.get("host", host)
    request.context["timestamp"] = got.get("x-amz-date", "")
    auth = SigV4Auth(Credentials(sig.access_key_id, secret, token), sig.service, sig.region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    given = headers_value(headers, "authorization").rpartition("Signature=")[2].strip()
    if given != expected:
        return ("InvalidSignatureException", "The request signature we calculated does not match the signature you "
                f"provided. Check your AWS Secret Access Key and signing method. The Canonical String for this "
                f"request should have been\n'{canonical}'")
    return None


def headers_value(headers: list[tuple[str, str]], name: str) -> str:
    return next((v for n, v in headers if n.lower() == name), "")


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode()
