"""The egress proxy under the upstream transport: an http origin as absolute-form requests, an https origin through
a CONNECT tunnel with TLS to the vendor inside it, the proxy's credentials sent to it and shown nowhere."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from rewrite.config import ConfigError, parse
from rewrite.upstream.client import new_client, tls_context
from rewrite.upstream.egress import EgressProxy, basic_authorization, parse_proxy_url
from rewrite.upstream.transport import LeanTransport
from tests.support.egress_proxy import ConnectProxy, TLSFront

PASSWORD = "s3cret-Proxy-pw"
CREDENTIALS = ("corp-user", PASSWORD)
AUTH = basic_authorization(*CREDENTIALS)


class PlainVendor:
    """Answers every request `200 hello` on 127.0.0.1 (keep-alive), and keeps each request head."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = self.server.sockets[0].getsockname()[:2]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                close = b"connection: close" in head.lower()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n%s\r\nhello"
                             % (b"connection: close\r\n" if close else b""))
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
def proxies():
    started: list[ConnectProxy] = []

    def start(routes, credentials=CREDENTIALS, front=None) -> ConnectProxy:
        started.append(ConnectProxy(routes, credentials, front).start())
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def egress(proxy: ConnectProxy, auth: str | None = AUTH) -> EgressProxy:
    return EgressProxy("127.0.0.1", proxy.port, auth)


# ------------------------------------------------------------------------------------------------------------------
# The setting


def test_a_proxy_url_with_credentials_is_shown_without_them():
    proxy = parse_proxy_url(f"http://corp-user:{PASSWORD.replace('-', '%2D')}@proxy.corp.example:3128")
    assert (proxy.host, proxy.port, proxy.authorization) == ("proxy.corp.example", 3128, AUTH)
    assert str(proxy) == "http://…@proxy.corp.example:3128" and PASSWORD not in repr(proxy)
    assert str(parse_proxy_url("http://10.0.0.1")) == "http://10.0.0.1:80"


@pytest.mark.parametrize("url", [f"https://u:{PASSWORD}@proxy:3128", f"socks5://u:{PASSWORD}@proxy:1080",
                                 f"http://u:{PASSWORD}@proxy:3128/path", f"http://u:{PASSWORD}@proxy:99999",
                                 f"http://u:{PASSWORD}@:3128"])
def test_a_bad_proxy_url_stops_loading_with_one_line_without_the_password(url):
    with pytest.raises(ConfigError) as e:
        parse(f"upstream_proxy: '{url}'")
    assert str(e.value).startswith("upstream_proxy: ") and PASSWORD not in str(e.value) and "\n" not in str(e.value)


def test_upstream_ca_must_be_a_readable_pem_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^upstream_ca: .*cannot read"):
        parse(f"upstream_ca: {tmp_path / 'missing.pem'}")
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(ConfigError, match=r"^upstream_ca: .*no PEM certificate"):
        parse(f"upstream_ca: {tmp_path / 'empty.pem'}")


# ------------------------------------------------------------------------------------------------------------------
# Through the proxy


async def test_an_http_origin_goes_to_the_proxy_in_absolute_form_with_its_credentials(proxies):
    async with PlainVendor() as vendor:
        host, port = vendor.address
        proxy = proxies({f"{host}:{port}": vendor.address})
        async with httpx.AsyncClient(transport=LeanTransport(proxy=egress(proxy))) as client:
            resp = await client.post(f"http://{host}:{port}/v1/chat/completions?x=1", content=b"{}")
        assert resp.status_code == 200 and resp.text == "hello"
        [asked] = proxy.seen
        assert (asked.method, asked.target, asked.status) == ("POST", f"http://{host}:{port}/v1/chat/completions?x=1",
                                                               200)
        assert asked.proxy_authorization == AUTH
        assert vendor.heads[0].startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
        assert b"proxy-authorization" not in vendor.heads[0].lower()  # (the proxy's own header stays with it)


async def test_an_https_origin_goes_through_a_connect_tunnel_with_tls_inside(proxies, tmp_path):
    async with PlainVendor() as vendor:
        front = TLSFront(tmp_path, "api.vendor.test", vendor.address)
        proxy = proxies({"api.vendor.test:443": None}, front=front)
        async with httpx.AsyncClient(transport=LeanTransport(tls_context(str(front.ca_file)), egress(proxy))) as client:
            for _ in range(2):
                resp = await client.post("https://api.vendor.test/v1/chat/completions", content=b"{}")
                assert resp.status_code == 200 and resp.text == "hello"
        assert [(a.method, a.target, a.proxy_authorization) for a in proxy.seen] == [
            ("CONNECT", "api.vendor.test:443", AUTH)]  # one tunnel, kept alive for the second request
        assert front.connections == 1
        assert all(h.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") for h in vendor.heads)
        assert all(b"host: api.vendor.test" in h.lower() for h in vendor.heads)


async def test_the_vendor_certificate_is_verified_inside_the_tunnel(proxies, tmp_path):
    async with PlainVendor() as vendor:
        front = TLSFront(tmp_path, "api.vendor.test", vendor.address)
        proxy = proxies({"api.vendor.test:443": None}, front=front)
        async with httpx.AsyncClient(transport=LeanTransport(proxy=egress(proxy))) as client:  # certifi only
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED") as e:
                await client.get("https://api.vendor.test/v1/models")
        assert "through the upstream proxy http://…@127.0.0.1" in str(e.value) and PASSWORD not in str(e.value)
        assert vendor.heads == []


@pytest.mark.parametrize("auth, status", [(None, 407), (basic_authorization("corp-user", "wrong"), 407),
                                          (AUTH, 403)])
async def test_a_refused_tunnel_is_a_proxy_error_that_names_the_proxy_without_its_password(proxies, auth, status):
    proxy = proxies({})  # (403: the proxy reaches no such host)
    async with httpx.AsyncClient(transport=LeanTransport(proxy=egress(proxy, auth))) as client:
        with pytest.raises(httpx.ProxyError) as e:
            await client.get("https://api.vendor.test/v1/models")
    assert f"refused CONNECT api.vendor.test:443: {status}" in str(e.value)
    assert f"127.0.0.1:{proxy.port}" in str(e.value) and PASSWORD not in str(e.value)


async def test_an_unreachable_proxy_is_a_connect_error_that_names_it_without_its_password():
    transport = LeanTransport(proxy=parse_proxy_url(f"http://corp-user:{PASSWORD}@127.0.0.1:9"))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError) as e:
            await client.get("https://api.vendor.test/v1/models")
    assert str(e.value).startswith("the upstream proxy http://…@127.0.0.1:9: ") and PASSWORD not in str(e.value)


async def test_new_client_takes_the_proxy_and_the_extra_ca(proxies, tmp_path):
    async with PlainVendor() as vendor:
        front = TLSFront(tmp_path, "api.vendor.test", vendor.address)
        proxy = proxies({"api.vendor.test:443": None}, credentials=None, front=front)
        async with new_client(egress(proxy, None), str(front.ca_file)) as client:
            resp = await client.send(client.build_request("GET", "https://api.vendor.test/v1/models"))
            assert resp.text == "hello"
        assert proxy.seen[0].proxy_authorization is None


# ------------------------------------------------------------------------------------------------------------------
# Where the proxy comes from


def test_mitmproxys_upstream_mode_names_the_proxy_and_upstream_auth_its_credentials():
    from addons.egress import mode_proxy

    assert mode_proxy(["regular"], None) is None
    assert mode_proxy(["regular@8081", "upstream:http://10.1.2.3:3128"], f"corp-user:{PASSWORD}") == EgressProxy(
        "10.1.2.3", 3128, AUTH)
    assert mode_proxy(["upstream:http://proxy.corp:3128"], None) == EgressProxy("proxy.corp", 3128, None)
    with pytest.raises(ValueError, match="http:// upstream proxy only"):
        mode_proxy(["upstream:https://proxy.corp:3128"], None)


def test_the_configs_upstream_proxy_comes_before_mitmproxys_mode():
    from rewrite.engine import Engine

    engine = Engine(parse(f"upstream_proxy: http://corp-user:{PASSWORD}@10.0.0.1:3128"))
    engine.use_mode_proxy(EgressProxy("10.9.9.9", 8080))
    assert engine.egress == EgressProxy("10.0.0.1", 3128, AUTH) and engine.upstream.proxy == engine.egress
    engine.configure(parse(""))
    assert engine.upstream.proxy == EgressProxy("10.9.9.9", 8080)
    engine.use_mode_proxy(None)
    assert engine.upstream.proxy is None
