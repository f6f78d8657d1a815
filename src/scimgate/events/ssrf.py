"""Keeping webhook URLs away from the operator's own network (SSRF).

A webhook URL is chosen by a tenant, but requests to it leave from the operator's network,
so by default they may only reach public addresses. The URL is checked when an endpoint is
registered (to refuse it early) and again on every delivery, because DNS can change after
registration. At delivery the check happens inside the HTTP client's TCP connect
(:class:`GuardedBackend`): the host is resolved once, every address is checked, and the
connection goes to one of exactly those addresses, so a second, different DNS answer
("DNS rebinding") cannot slip past it. TLS still verifies the certificate against the
hostname in the URL. Redirects are never followed (see ``events.worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import typing
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

from scimgate.errors import InvalidInput

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeURL(InvalidInput):
    """A webhook URL that is malformed or points somewhere it must not."""


class UnresolvableHost(UnsafeURL):
    """The host name does not resolve (now)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL, split for the HTTP client."""

    scheme: str
    host: str
    """Lower-case ASCII (IDNA) host name, or an IP address without brackets."""
    port: int
    path: str
    """Path and query, as sent in the request line."""
    host_header: str


def parse_url(url: str) -> Target:
    """Split and check the shape of a webhook URL: absolute http(s), a host, no
    credentials. Raises :class:`UnsafeURL` with a message fit for an API client."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise UnsafeURL("the URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("the URL must not contain credentials (user:password@)")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    host = parts.hostname.rstrip(".")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UnsafeURL(f"not a valid host name: {parts.hostname!r}") from None
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, host_header)


def refusal(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("a loopback address"), or None when it
    is public. An IPv4 address embedded in IPv6 (mapped, 6to4, NAT64) is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded)
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    ):
        if flag:
            return f"a {kind} address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (an IP literal resolves to itself, without
    DNS). Module-level so that tests can stand in for DNS."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in found:
            found.append(address)
    return found


async def checked_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host``; refuse if any answer is non-public (unless allowed), so that a
    name with one public and one private address cannot be used either."""
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise UnresolvableHost(f"cannot resolve {host!r}: {exc}") from None
    if not addresses:
        raise UnresolvableHost(f"{host!r} has no address")
    if not allow_private:
        for address in addresses:
            kind = refusal(ipaddress.ip_address(address))
            if kind is not None:
                where = (
                    f"{address} is {kind}"
                    if address == host
                    else f"{host} resolves to {address}, {kind}"
                )
                raise UnsafeURL(
                    f"refused: {where} (the operator can allow private targets with "
                    "SCIMGATE_WEBHOOK_ALLOW_PRIVATE=true)"
                )
    return addresses


async def check_url(url: str, *, allow_private: bool) -> Target:
    """Registration-time check. A host that does not resolve right now is accepted (DNS
    may be on its way); delivery checks again and fails that attempt if still not."""
    target = parse_url(url)
    if allow_private:
        return target
    with contextlib.suppress(UnresolvableHost):
        await checked_addresses(target.host, target.port, allow_private=allow_private)
    return target


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend whose TCP connect resolves and checks the host
    itself and then connects to a checked address only."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, allow_private=self.allow_private)
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("webhooks are never delivered to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
