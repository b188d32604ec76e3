"""media/fetch.py: SSRF checks, IP pinning, redirects, byte cap and deadline.

Real traffic goes only to a test server on 127.0.0.1. Private and metadata addresses are exercised only
through a patched resolver and a recording transport that proves no connection was attempted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

import httpx
import pytest

from sam3_api.errors import ImageTooLarge, UrlFetchFailed, UrlNotAllowed
from sam3_api.media.fetch import blocked_reason, fetch_url

PUBLIC_IP = "93.184.216.34"  # a globally routable address; only ever "reached" through MockTransport


from tests.http_server import PAYLOAD  # noqa: E402


class RecordingTransport(httpx.AsyncBaseTransport):
    """Real transport that records the host of every request it is asked to connect to."""

    def __init__(self):
        self.hosts: list[str] = []
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        self.hosts.append(request.url.host)
        return await self._inner.handle_async_request(request)

    async def aclose(self):
        await self._inner.aclose()


def _fetch(url: str, **kwargs) -> bytes:
    kwargs.setdefault("max_bytes", 1024**2)
    kwargs.setdefault("timeout_s", 5.0)
    return asyncio.run(fetch_url(url, **kwargs))


def _static_resolver(mapping: dict[str, list[str]], calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return mapping[host]

    return resolve


def _never_called_transport(sent: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=PAYLOAD)

    return httpx.MockTransport(handler)


# --- positive cases against the local server -------------------------------------------------------


def test_image_downloads_when_private_addresses_are_allowed(server):
    assert _fetch(f"{server}/image.png", allow_private=True) == PAYLOAD


def test_allowed_host_is_fetched_from_the_pinned_ip_with_its_own_host_header(server):
    # "images.test" does not exist in DNS: the request can only succeed by connecting to the checked
    # IP, and the server must still see the original Host. allow_hosts matching ignores case and dots.
    port = server.rsplit(":", 1)[1]
    transport = RecordingTransport()
    body = _fetch(
        f"http://images.test:{port}/echo-host",
        allow_hosts=["IMAGES.test."],
        resolver=_static_resolver({"images.test": ["127.0.0.1"]}),
        transport=transport,
    )
    assert body == f"images.test:{port}".encode()
    assert transport.hosts == ["127.0.0.1"]


def test_allowed_host_does_not_unlock_other_hosts(server):
    port = server.rsplit(":", 1)[1]
    with pytest.raises(UrlNotAllowed):
        _fetch(
            f"http://other.test:{port}/image.png",
            allow_hosts=["images.test"],
            resolver=_static_resolver({"other.test": ["127.0.0.1"]}),
        )


def test_redirect_chain_is_followed_including_a_relative_location(server):
    transport = RecordingTransport()
    assert _fetch(f"{server}/redirect/3", allow_private=True, max_redirects=3, transport=transport) == PAYLOAD
    assert len(transport.hosts) == 4


def test_too_many_redirects_are_rejected_naming_the_setting(server):
    with pytest.raises(UrlFetchFailed) as info:
        _fetch(f"{server}/redirect/4", allow_private=True, max_redirects=3)
    assert "SAM3_URL_MAX_REDIRECTS" in info.value.message


def test_redirect_from_allowed_host_to_metadata_address_is_rejected_without_connecting(server):
    transport = RecordingTransport()
    with pytest.raises(UrlNotAllowed) as info:
        _fetch(f"{server}/to-metadata", allow_hosts=["127.0.0.1"], transport=transport)
    assert "169.254.169.254" in info.value.message
    assert transport.hosts == ["127.0.0.1"]


def test_redirect_to_a_file_url_is_rejected(server):
    with pytest.raises(UrlNotAllowed) as info:
        _fetch(f"{server}/to-file", allow_private=True)
    assert "file" in info.value.message


def test_declared_oversize_body_is_rejected(server):
    with pytest.raises(ImageTooLarge) as info:
        _fetch(f"{server}/big-with-length", allow_private=True, max_bytes=1000)
    assert "SAM3_MAX_UPLOAD_BYTES" in info.value.message


def test_endless_body_without_length_is_cut_at_the_byte_cap(server):
    started = time.monotonic()
    with pytest.raises(ImageTooLarge):
        _fetch(f"{server}/endless-without-length", allow_private=True, max_bytes=100_000, timeout_s=5.0)
    assert time.monotonic() - started < 2.0


def test_slow_drip_body_is_cut_off_at_the_total_deadline(server):
    started = time.monotonic()
    with pytest.raises(UrlFetchFailed) as info:
        _fetch(f"{server}/slow-drip", allow_private=True, timeout_s=0.5)
    assert time.monotonic() - started < 1.5
    assert "SAM3_URL_TIMEOUT_S" in info.value.message and "0.5" in info.value.message


def test_http_404_is_a_fetch_failure_naming_the_status(server):
    with pytest.raises(UrlFetchFailed) as info:
        _fetch(f"{server}/missing", allow_private=True)
    assert "404" in info.value.message


def test_non_http_answer_is_a_fetch_failure_not_an_httpx_error(server):
    with pytest.raises(UrlFetchFailed):
        _fetch(f"{server}/garbage", allow_private=True)


def test_refused_connection_is_a_fetch_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again on exit: nothing listens there
    with pytest.raises(UrlFetchFailed):
        _fetch(f"http://127.0.0.1:{port}/image.png", allow_private=True)


# --- refusals that must happen before any connection ----------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "LOCALHOST.", "2130706433", "0x7f000001", "0177.0.0.1", "127.1",
     "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "0", "app.localhost"],
)
def test_loopback_in_any_spelling_is_rejected(server, host):
    port = server.rsplit(":", 1)[1]
    transport = RecordingTransport()
    with pytest.raises(UrlNotAllowed) as info:
        _fetch(f"http://{host}:{port}/image.png", transport=transport)
    assert transport.hosts == []
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.64.0.1", "fd00::1", "fe80::1",
     "64:ff9b::a9fe:a9fe", "::ffff:10.0.0.1", "2002:a9fe:a9fe::1", "224.0.0.1", "ff02::1"],
)
def test_name_resolving_to_an_internal_address_is_rejected_without_connecting(address):
    sent: list[httpx.Request] = []
    with pytest.raises(UrlNotAllowed) as info:
        _fetch(
            "http://images.example.com/cat.png",
            resolver=_static_resolver({"images.example.com": [address]}),
            transport=_never_called_transport(sent),
        )
    assert sent == []
    assert "SAM3_URL_ALLOW_PRIVATE=true" in info.value.message and "SAM3_URL_ALLOW_HOSTS" in info.value.message


def test_one_internal_address_among_public_ones_is_enough_to_reject():
    sent: list[httpx.Request] = []
    with pytest.raises(UrlNotAllowed):
        _fetch(
            "http://images.example.com/cat.png",
            resolver=_static_resolver({"images.example.com": [PUBLIC_IP, "10.1.2.3"]}),
            transport=_never_called_transport(sent),
        )
    assert sent == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/cat.png", "gopher://example.com/"])
def test_non_http_schemes_are_rejected_naming_the_scheme(url):
    with pytest.raises(UrlNotAllowed) as info:
        _fetch(url, allow_private=True)
    assert url.split(":")[0] in info.value.message


# --- DNS rebinding: the connection goes to the address that was checked --------------------------


def _rebinding_resolver(calls: list[str]):
    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return [PUBLIC_IP] if len(calls) == 1 else ["127.0.0.1"]

    return resolve


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_request_is_sent_to_the_checked_ip_not_re_resolved(scheme):
    calls: list[str] = []
    sent: list[httpx.Request] = []
    body = _fetch(
        f"{scheme}://images.example.com/cat.png",
        resolver=_rebinding_resolver(calls),
        transport=_never_called_transport(sent),
    )
    assert body == PAYLOAD
    assert calls == ["images.example.com"]
    assert [r.url.host for r in sent] == [PUBLIC_IP]
    assert sent[0].headers["host"] == "images.example.com"
    if scheme == "https":  # TLS SNI and certificate checks use the hostname, not the IP
        assert sent[0].extensions["sni_hostname"] == "images.example.com"


def test_redirect_to_a_name_that_resolves_internally_is_rejected_after_one_request():
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(302, headers={"Location": "http://internal.example.com/secret"})

    resolver = _static_resolver({"images.example.com": [PUBLIC_IP], "internal.example.com": ["10.0.0.5"]})
    with pytest.raises(UrlNotAllowed):
        _fetch("http://images.example.com/a.png", resolver=resolver, transport=httpx.MockTransport(handler))
    assert len(sent) == 1


def test_unresolvable_host_is_a_fetch_failure():
    async def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UrlFetchFailed):
        _fetch("http://nonexistent.example.com/a.png", resolver=failing)


# --- the address classifier itself -----------------------------------------------------------------


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC_IP, "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_are_allowed(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "address, reason",
    [("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"),
     ("100.64.0.1", "CGNAT"), ("64:ff9b::7f00:1", "loopback"), ("::127.0.0.1", "loopback"),
     ("2002:7f00:1::", "loopback"), ("0.0.0.0", "unspecified"), ("240.0.0.1", "reserved"),
     ("203.0.113.10", "private")],
)
def test_internal_addresses_are_blocked_with_a_reason(address, reason):
    assert reason in (blocked_reason(ipaddress.ip_address(address)) or "")
