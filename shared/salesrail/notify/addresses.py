"""Which addresses outgoing notifications may reach: public ones, and what config allows.

A channel URL comes from a user, so a request to it must not become a way into the network
the service runs in (SSRF): the host is resolved and every address it resolves to must be
public, unless the operator allowed that host name or network explicitly. The request is then
sent to one of the checked addresses (with the original Host header and TLS server name), so a
DNS answer that changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# NAT64 (RFC 6052): DNS64 answers public IPv4 hosts with these on IPv6-only networks.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class AddressRefused(Exception):
    """The URL may not be requested; retrying will not change that."""


class ResolutionFailed(Exception):
    """The host name did not resolve now; it may later (DNS trouble), so this is retryable."""


@dataclass(frozen=True)
class CheckedTarget:
    """A URL whose host resolved to `addresses`, each of them allowed."""

    url: httpx.URL
    addresses: tuple[str, ...]


def refusal_reason(ip: IPAddress) -> str | None:
    """Why an address is not public (None if it is); embedded IPv4 addresses are unwrapped."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner = refusal_reason(ip.ipv4_mapped)
            return f"IPv4-mapped {inner}" if inner else None
        if ip in _NAT64:
            inner = refusal_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return f"NAT64 of {inner}" if inner else None
        if ip in _NAT64_LOCAL:
            return "local-use NAT64"
        if ip.sixtofour is not None:
            inner = refusal_reason(ip.sixtofour)
            return f"6to4 of {inner}" if inner else None
        if ip.is_site_local:
            return "site-local"
    # Order matters only for the message: the most specific name first.
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    )
    for name, flagged in checks:
        if flagged:
            return name
    if not ip.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT)
        return "not globally reachable"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only, plus allowed host names (`name`, `*.suffix`) and networks."""

    allow_hosts: frozenset[str] = frozenset()
    allow_suffixes: tuple[str, ...] = ()
    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, entries: Iterable[str] = ()) -> AddressPolicy:
        """From settings: each entry a host name, `*.domain`, an IP address or a CIDR."""
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])  # keeps the dot: "*.corp" allows "a.corp", not "corp"
            elif "/" in entry or "*" in entry or ":" in entry:
                raise ValueError(f"notify allow-list entry {raw!r} is not a host name or CIDR")
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        """Whether the host name itself is allowed (then its addresses are not checked)."""
        name = host.lower().rstrip(".")
        try:
            name = name.encode("idna").decode("ascii")  # allow-list entries are written in ASCII
        except UnicodeError:
            pass
        return name in self.allow_hosts or name.endswith(self.allow_suffixes)

    def address_refusal(self, ip: IPAddress) -> str | None:
        """Why this address may not be reached (None: it may)."""
        if any(ip.version == net.version and ip in net for net in self.allow_networks):
            return None
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None and any(mapped in net for net in self.allow_networks):
            return None
        return refusal_reason(ip)

    async def check(self, url: str | httpx.URL) -> CheckedTarget:
        """Resolve the URL's host and check every address; AddressRefused if any is refused."""
        parsed = check_url_shape(url)
        host = ascii_host(parsed)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = await _resolve(host, port)
        if not self.host_allowed(parsed.host):
            self.check_addresses(host, addresses)
        return CheckedTarget(url=parsed, addresses=addresses)

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """AddressRefused unless every address the host resolved to may be reached."""
        for address in addresses:
            reason = self.address_refusal(ipaddress.ip_address(address))
            if reason is not None:
                raise AddressRefused(
                    f"{host} resolves to {address}, a {reason} address, and neither the host "
                    "nor that address is on the notify allow-list"
                )


def check_url_shape(url: str | httpx.URL) -> httpx.URL:
    """An absolute http(s) URL with a host; AddressRefused otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise AddressRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise AddressRefused(f"scheme {parsed.scheme or '(none)'!r} refused: only http and https")
    if not parsed.host:
        raise AddressRefused("the URL has no host")
    return parsed


def ascii_host(url: httpx.URL) -> str:
    """The host as resolved and sent (IDNA-encoded), without IPv6 brackets."""
    return url.raw_host.decode("ascii")


async def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolutionFailed(f"cannot resolve {host}: {exc}") from exc
    # Scope ids ("fe80::1%eth0") are dropped: the address itself is what gets checked.
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise ResolutionFailed(f"{host} resolved to no address")
    return addresses
