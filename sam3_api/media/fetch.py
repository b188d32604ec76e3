"""SSRF-safe image download: resolve, check every address, pin the connection, re-check each redirect.

The host is resolved once per hop, every resolved address must be globally routable, and the request
is sent to one of those checked addresses (with the original Host header and TLS SNI), so a DNS answer
that changes between the check and the connect (DNS rebinding) cannot reach an internal address.
Redirects are followed by hand, one hop at a time, through the same checks. The body is streamed under
a byte cap, and one deadline covers resolution, every hop and the body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from sam3_api.errors import ImageTooLarge, UrlFetchFailed, UrlNotAllowed

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TRUSTED_HINT = "set SAM3_URL_ALLOW_PRIVATE=true (or add the host to SAM3_URL_ALLOW_HOSTS) on trusted networks"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Images are already compressed; asking for identity avoids gzip bombs expanding inside one chunk.
_HEADERS = {"Accept": "image/*,*/*;q=0.5", "Accept-Encoding": "identity", "User-Agent": "sam3-api"}


@dataclass(frozen=True)
class _Policy:
    allow_private: bool
    allow_hosts: frozenset[str]
    resolver: Resolver
    transport: httpx.AsyncBaseTransport | None
    max_bytes: int


async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    max_redirects: int = 5,
    allow_private: bool = False,
    allow_hosts: Sequence[str] = (),
    resolver: Resolver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bytes:
    """Download url and return its body, raising UrlNotAllowed / UrlFetchFailed / ImageTooLarge.

    resolver(host, port) -> [ip, ...] replaces the system resolver (tests); transport replaces httpx's
    network transport (tests, e.g. httpx.MockTransport) and is closed on return. Neither is needed in
    production.
    """
    policy = _Policy(
        allow_private=allow_private,
        allow_hosts=frozenset(_normalise_host(h) for h in allow_hosts),
        resolver=resolver or _system_resolve,
        transport=transport,
        max_bytes=max_bytes,
    )
    try:
        async with asyncio.timeout(timeout_s):
            return await _follow(url, policy, max_redirects)
    except (TimeoutError, httpx.TimeoutException):
        raise UrlFetchFailed(f"image URL timed out after {timeout_s:g} s (SAM3_URL_TIMEOUT_S)") from None
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict) as exc:
        # Never let an httpx exception escape as a 500; it is the remote side's failure.
        raise UrlFetchFailed(f"image URL could not be fetched: {type(exc).__name__}: {exc}") from None


async def _follow(url_text: str, policy: _Policy, max_redirects: int) -> bytes:
    """Fetch url_text, following at most max_redirects redirects, each hop checked from scratch."""
    url = _parse(url_text)
    # trust_env=False: no proxy / netrc from the environment (a proxy would undo the IP pinning).
    # No keep-alive: a pooled connection is keyed by the pinned IP, and must not carry a later hop
    # for a different hostname over a TLS session verified for the first one. The deadline is
    # asyncio's, around everything, so httpx's own per-operation timeouts are off.
    async with httpx.AsyncClient(
        transport=policy.transport,
        follow_redirects=False,
        trust_env=False,
        timeout=None,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        for _ in range(max_redirects + 1):
            ips = await _checked_addresses(url, policy)
            response = await _send_pinned(client, url, ips)
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECT_STATUSES or not location:
                    return await _read_body(response, url, policy.max_bytes)
            finally:
                await response.aclose()
            # Relative Locations resolve against the original URL (hostname), never the pinned IP.
            url = _parse(str(url.join(location)))
    raise UrlFetchFailed(
        f"image URL redirected more than {max_redirects} times (SAM3_URL_MAX_REDIRECTS={max_redirects})"
    )


def _parse(url_text: str) -> httpx.URL:
    """Parse and allow only http(s) URLs with a host; file://, ftp://, data: ... are refused."""
    try:
        url = httpx.URL(url_text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UrlNotAllowed(f"image URL is not a valid URL: {exc}", field="image_url") from None
    if url.scheme not in ("http", "https"):
        scheme = url.scheme or "(none)"
        raise UrlNotAllowed(f"image URL scheme {scheme!r} is not allowed; use http or https", field="image_url")
    if not url.raw_host:
        raise UrlNotAllowed("image URL has no host", field="image_url")
    return url


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


async def _checked_addresses(url: httpx.URL, policy: _Policy) -> list[str]:
    """Resolve url's host and, unless the host is trusted, refuse if ANY address is not global."""
    host = _normalise_host(url.raw_host.decode("ascii"))  # IDNA-encoded, no IPv6 brackets
    trusted = policy.allow_private or host in policy.allow_hosts
    if not trusted and (host == "localhost" or host.endswith(".localhost")):
        # RFC 6761: these names are loopback by definition, whatever a resolver says.
        raise UrlNotAllowed(f"image URL host {host!r} is loopback; {_TRUSTED_HINT}", field="image_url")
    ips = await _resolve(host, url.port or (443 if url.scheme == "https" else 80), policy.resolver)
    if not trusted:
        for ip in ips:
            reason = blocked_reason(ipaddress.ip_address(ip))
            if reason:
                raise UrlNotAllowed(
                    f"image URL host {host!r} resolves to {ip}, a {reason} address; {_TRUSTED_HINT}",
                    field="image_url",
                )
    return ips


async def _resolve(host: str, port: int, resolver: Resolver) -> list[str]:
    """Literal IPs are used as written; names (and odd numeric spellings) go to the resolver."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        found = await resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UrlFetchFailed(f"image URL host {host!r} could not be resolved: {exc}") from None
    ips: list[str] = []
    for ip in found:
        try:
            text = str(ipaddress.ip_address(ip))
        except ValueError:
            raise UrlFetchFailed(f"resolver returned a non-IP address {ip!r} for {host!r}") from None
        if text not in ips:
            ips.append(text)
    if not ips:
        raise UrlFetchFailed(f"image URL host {host!r} resolved to no address")
    return ips


async def _system_resolve(host: str, port: int) -> list[str]:
    """getaddrinfo also interprets numeric spellings (2130706433, 0x7f000001, 127.1) as the OS would."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # Drop an IPv6 zone id ("fe80::1%eth0"): it is not part of the address we check or connect to.
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ip must not be fetched from (None: globally routable). IPv6 forms embedding IPv4 are unwrapped."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return blocked_reason(embedded)
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local (includes cloud metadata 169.254.169.254)"),
        (ip.version == 4 and ip in _CGNAT, "shared CGNAT (100.64.0.0/10)"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),  # also documentation / benchmarking ranges (e.g. 203.0.113.0/24)
        (not ip.is_global, "non-global"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside IPv4-mapped, IPv4-compatible, 6to4 and NAT64 (64:ff9b::/96) IPv6 forms."""
    if ip.version != 6:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # 64:ff9b::a.b.c.d, ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


async def _send_pinned(client: httpx.AsyncClient, url: httpx.URL, ips: list[str]) -> httpx.Response:
    """Connect to a checked IP (trying each in turn), keeping Host and TLS SNI/cert on the hostname."""
    host = url.raw_host.decode("ascii")
    headers = {**_HEADERS, "Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    last_error: Exception | None = None
    for ip in ips:
        request = client.build_request("GET", url.copy_with(host=ip), headers=headers, extensions=extensions)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:  # e.g. an IPv6 address on an IPv4-only network: try the next
            last_error = exc
    raise UrlFetchFailed(f"image URL host {host!r} refused the connection: {last_error}")


async def _read_body(response: httpx.Response, url: httpx.URL, max_bytes: int) -> bytes:
    """Stream a 2xx body under the byte cap; stop reading the moment it is exceeded."""
    host = url.raw_host.decode("ascii")
    if not 200 <= response.status_code < 300:
        raise UrlFetchFailed(
            f"image URL on {host!r} answered HTTP {response.status_code} {response.reason_phrase}".rstrip()
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(f"declares {declared} bytes", max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(f"sent more than {max_bytes} bytes", max_bytes)
    return bytes(body)


def _too_large(what: str, max_bytes: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"image URL {what}; the limit is {max_bytes} bytes (SAM3_MAX_UPLOAD_BYTES)", field="image_url"
    )
