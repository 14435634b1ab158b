"""Where notifications may go: public addresses, and only what the operator allowed besides."""

from __future__ import annotations

import ipaddress

import pytest

from salesrail.notify.addresses import (
    AddressPolicy,
    AddressRefused,
    ResolutionFailed,
    refusal_reason,
)

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8 (IPv6-only networks with DNS64)
]

NOT_PUBLIC = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # the cloud metadata service
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "240.0.0.1": "reserved",
    "100.64.0.1": "not globally reachable",  # carrier-grade NAT
    "192.0.2.10": "private",  # documentation range
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "ff02::1": "multicast",
    "fec0::1": "site-local",
    "2001:db8::1": "private",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "64:ff9b::a00:1": "NAT64 of private",
    "64:ff9b:1::1": "local-use NAT64",
    "2002:7f00:1::": "6to4 of loopback",
    "::7f00:1": "reserved",  # IPv4-compatible (deprecated) 127.0.0.1
}


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("address", "reason"), sorted(NOT_PUBLIC.items()))
def test_non_public_addresses_are_refused_with_their_kind(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",  # a host name that resolves to a private address
        "http://2130706433/hook",  # 127.0.0.1 as one number
        "http://127.1/hook",
        "http://0x7f.1/hook",
        "http://0.0.0.0:9/hook",
    ],
)
async def test_the_default_policy_refuses_every_way_of_reaching_this_machine(url: str) -> None:
    with pytest.raises(AddressRefused, match="allow-list"):
        await AddressPolicy().check(url)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "/relative"]
)
async def test_only_http_and_https_are_requested(url: str) -> None:
    with pytest.raises(AddressRefused):
        await AddressPolicy().check(url)


async def test_an_allowed_address_passes_and_is_what_will_be_connected_to() -> None:
    policy = AddressPolicy.allowing(["127.0.0.1"])

    target = await policy.check("http://127.0.0.1:8080/hook?key=1")

    assert target.addresses == ("127.0.0.1",)
    assert target.url.host == "127.0.0.1"
    # The allow-list names 127.0.0.1 only: the rest of loopback and IPv6 stay refused.
    with pytest.raises(AddressRefused, match="127.0.0.2"):
        await policy.check("http://127.0.0.2/hook")
    with pytest.raises(AddressRefused, match="::1"):
        await policy.check("http://[::1]/hook")


async def test_an_allowed_ipv4_address_also_allows_its_mapped_ipv6_form() -> None:
    policy = AddressPolicy.allowing(["127.0.0.1"])

    target = await policy.check("http://[::ffff:127.0.0.1]:8080/hook")

    assert target.addresses == ("::ffff:127.0.0.1",)


async def test_an_allowed_host_name_may_resolve_to_a_private_address() -> None:
    target = await AddressPolicy.allowing(["LocalHost"]).check("http://localhost:9/hook")

    assert "127.0.0.1" in target.addresses


def test_every_resolved_address_must_pass_not_just_the_first() -> None:
    # A DNS answer that mixes a public and a private address (a rebinding trick) is refused.
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.5, a private address"):
        AddressPolicy().check_addresses("hooks.example.com", ["93.184.216.34", "10.0.0.5"])
    AddressPolicy().check_addresses("hooks.example.com", ["93.184.216.34", "2606:4700::1"])


def test_networks_and_wildcard_domains_on_the_allow_list() -> None:
    policy = AddressPolicy.allowing(["10.0.0.0/8", "*.corp.example", "fd00::/8"])

    policy.check_addresses("intranet", ["10.20.30.40", "fd00::7"])
    with pytest.raises(AddressRefused):
        policy.check_addresses("intranet", ["10.20.30.40", "192.168.0.1"])
    assert policy.host_allowed("hooks.corp.example")
    assert policy.host_allowed("HOOKS.Corp.Example.")
    assert not policy.host_allowed("corp.example")
    assert not policy.host_allowed("evilcorp.example")


@pytest.mark.parametrize("entry", ["http://hooks.example", "localhost:8080", "a*.example"])
def test_a_malformed_allow_list_entry_is_refused_at_start(entry: str) -> None:
    with pytest.raises(ValueError, match="allow-list entry"):
        AddressPolicy.allowing([entry])


async def test_a_name_that_does_not_resolve_is_worth_retrying() -> None:
    with pytest.raises(ResolutionFailed, match="cannot resolve"):
        await AddressPolicy().check("https://no-such-host.invalid/hook")
