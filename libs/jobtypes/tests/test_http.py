"""`http.request`'s decisions: which targets are refused, which statuses are retried."""

from __future__ import annotations

import ipaddress

import pytest

from jobkit import PermanentError, RetryableError
from jobtypes.http import AllowList, HttpRequestInput, check_target, classify

pytestmark = pytest.mark.unit


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "192.168.0.5", "169.254.169.254", "::1", "fd00::1"]
)
def test_non_public_targets_are_refused_by_default(address: str) -> None:
    with pytest.raises(PermanentError) as info:
        check_target("example.test", [ip(address)], AllowList([]))
    assert info.value.error_class == "TargetNotAllowed"


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(PermanentError):
        check_target("mixed.test", [ip("93.184.216.34"), ip("10.0.0.1")], AllowList([]))


def test_allow_list_by_address_network_or_host_name() -> None:
    allow = AllowList.parse("127.0.0.1, 10.0.0.0/8,api.internal")
    check_target("localhost", [ip("127.0.0.1")], allow)
    check_target("x", [ip("10.9.9.9")], allow)
    check_target("API.internal", [ip("192.168.1.1")], allow)
    with pytest.raises(PermanentError):
        check_target("x", [ip("127.0.0.2")], allow)
    check_target("public.test", [ip("93.184.216.34")], AllowList([]))


@pytest.mark.parametrize(
    ("status", "expected", "outcome"),
    [
        (200, None, None),
        (204, None, None),
        (500, None, RetryableError),
        (503, None, RetryableError),
        (429, None, RetryableError),
        (404, None, PermanentError),
        (400, None, PermanentError),
        (302, None, PermanentError),
        (302, [302], None),
        (200, [201], PermanentError),
    ],
)
def test_statuses_are_classified(
    status: int, expected: list[int] | None, outcome: type[Exception] | None
) -> None:
    item = HttpRequestInput(url="http://h.test/", expected_status=expected)
    if outcome is None:
        classify(item, status)
    else:
        with pytest.raises(outcome):
            classify(item, status)


@pytest.mark.parametrize("url", ["ftp://h.test/x", "file:///etc/passwd", "http:///nohost"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        HttpRequestInput(url=url)
