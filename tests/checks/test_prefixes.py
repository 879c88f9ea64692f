"""Route prefix verdicts: properties over every IPv4/IPv6 network, plus the named edge cases."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.checks.prefixes import PrefixProblem, judge_cidr, judge_prefix, route_network
from orchestrator.transport.graph.profilexml import VpnRoute

addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
)


@st.composite
def address_and_size(draw: st.DrawFn) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    address = draw(addresses)
    return address, draw(st.integers(0, address.max_prefixlen))


@given(address_and_size())
def test_host_bits_iff_the_address_is_not_the_network(case: tuple[ipaddress._BaseAddress, int]) -> None:
    address, size = case
    network = ipaddress.ip_network(f"{address}/{size}", strict=False)
    verdict = judge_prefix(str(address), size)
    if network.network_address == address:
        assert verdict.problem is None
        assert verdict.network == network
    else:
        assert verdict.problem is PrefixProblem.HOST_BITS
        assert verdict.corrected == str(network)
        assert verdict.network is None  # Windows drops the route


@given(address_and_size())
def test_the_correction_is_a_network_that_contains_the_address(
    case: tuple[ipaddress._BaseAddress, int],
) -> None:
    address, size = case
    corrected = judge_prefix(str(address), size).corrected
    if corrected is not None:
        fixed = judge_cidr(corrected)
        assert fixed.problem is None
        assert address in ipaddress.ip_network(corrected)


@given(address_and_size())
def test_agrees_with_the_graph_route_value(case: tuple[ipaddress._BaseAddress, int]) -> None:
    address, size = case
    route = VpnRoute(str(address), size)
    verdict = judge_prefix(str(address), size)
    assert (verdict.problem is None) == route.is_network_address()
    if verdict.corrected:
        assert verdict.corrected == f"{route.normalized().prefix}/{size}"


@given(address_and_size())
def test_cidr_and_split_forms_agree(case: tuple[ipaddress._BaseAddress, int]) -> None:
    address, size = case
    assert judge_cidr(f"{address}/{size}") == judge_prefix(str(address), size)


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address), st.integers(33, 300))
def test_ipv4_sizes_beyond_32_are_invalid(address: ipaddress.IPv4Address, size: int) -> None:
    assert judge_prefix(str(address), size).problem is PrefixProblem.INVALID


@pytest.mark.parametrize(
    ("address", "size", "problem", "corrected"),
    [
        ("172.21.12.0", 21, PrefixProblem.HOST_BITS, "172.21.8.0/21"),  # the article's route
        ("172.21.8.0", 21, None, None),
        ("10.1.2.3", 32, None, None),  # a /32 never has host bits
        ("0.0.0.0", 0, None, None),
        ("10.0.0.0", 0, PrefixProblem.HOST_BITS, "0.0.0.0/0"),
        ("fd00:10::1", 48, PrefixProblem.HOST_BITS, "fd00:10::/48"),
        ("fd00:0010::", 48, None, None),  # leading zeros are normal in IPv6 groups
        ("::1", 128, None, None),
        ("::1", 0, PrefixProblem.HOST_BITS, "::/0"),
        ("fd00::", 129, PrefixProblem.INVALID, None),
        ("010.001.0.0", 16, PrefixProblem.INVALID, "10.1.0.0/16"),  # octal to Windows, maybe
        ("10.001.12.0", 21, PrefixProblem.INVALID, "10.1.8.0/21"),  # leading zeros and host bits
        ("10.0.0.256", 24, PrefixProblem.INVALID, None),
        ("010.0.0.300", 24, PrefixProblem.INVALID, None),
        ("10.0.0.0", "", PrefixProblem.INVALID, None),
        ("10.0.0.0", "8 ", None, None),
        ("10.0.0.0", "٨", PrefixProblem.INVALID, None),  # an Arabic-Indic digit is not a size
        ("10.0.0.0", -1, PrefixProblem.INVALID, None),
        ("vpn.contoso.com", 32, PrefixProblem.INVALID, None),
        (" 10.0.0.0 ", 8, None, None),
    ],
)
def test_edge_cases(
    address: str, size: int | str, problem: PrefixProblem | None, corrected: str | None
) -> None:
    verdict = judge_prefix(address, size)
    assert (verdict.problem, verdict.corrected) == (problem, corrected), verdict.detail


def test_cidr_without_size_is_invalid() -> None:
    assert judge_cidr("10.0.0.0").problem is PrefixProblem.INVALID


def test_routing_table_prefixes_are_read_leniently() -> None:
    assert route_network("FD00:0010::/48") == ipaddress.ip_network("fd00:10::/48")
    assert route_network("garbage") is None
