"""Issue 23, the abuse limits' arithmetic (mallcare_common.limits) with a clock the test
moves: an address past its refused keys is refused until the bucket refills; the settings
come from config.yml as text and a service with a wrong one does not start. The limits on
the real services: tests/integration/test_edge_limits.py."""

import pytest

from mallcare_common.auth import RateLimiter
from mallcare_common.limits import EdgeLimits, OverAddressLimit, RefusedKeys, RefusedTokens, reason_of, setting


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def limits(per_address=2, refused_keys=3, refused_tokens=4):
    edge, clock = EdgeLimits(), Clock()
    edge.per_address, edge.refused_keys, edge.refused_tokens = per_address, refused_keys, refused_tokens
    edge.requests, edge.refusals = RateLimiter(clock), RateLimiter(clock)
    return edge, clock


def test_an_address_past_its_refused_keys_waits_for_the_bucket_to_refill():
    edge, clock = limits(refused_keys=3)
    for _ in range(3):
        edge.admit("198.51.100.7", counted=False, presents_key=True)
        edge.key_refused("198.51.100.7")
    with pytest.raises(RefusedKeys) as refused:
        edge.admit("198.51.100.7", counted=False, presents_key=True)
    assert refused.value.retry_after == 20  # one more try every 60 / 3 seconds
    edge.admit("198.51.100.7", counted=False, presents_key=False)  # its customers have no key
    edge.admit("203.0.113.5", counted=False, presents_key=True)  # another address is not refused
    clock.now += 20
    edge.admit("198.51.100.7", counted=False, presents_key=True)


def test_an_address_sending_forged_tokens_is_refused_its_tokens_not_its_keys():
    """A forged token is each an audit record: an address cannot send them without end."""
    edge, clock = limits(refused_tokens=4)
    for _ in range(4):
        edge.admit("198.51.100.7", counted=False, presents_key=False, presents_token=True)
        edge.token_refused("198.51.100.7")
    with pytest.raises(RefusedTokens) as refused:
        edge.admit("198.51.100.7", counted=False, presents_key=False, presents_token=True)
    assert refused.value.retry_after == 15 and reason_of(429, refused.value) == "refused_tokens"
    edge.admit("198.51.100.7", counted=False, presents_key=True)  # its channel's key still counts apart
    clock.now += 15
    edge.admit("198.51.100.7", counted=False, presents_key=False, presents_token=True)


def test_counted_requests_past_the_rate_are_refused_and_staff_are_not_counted():
    edge, clock = limits(per_address=2)
    edge.admit("198.51.100.7", counted=True, presents_key=False)
    edge.admit("198.51.100.7", counted=True, presents_key=False)
    for _ in range(5):
        edge.admit("198.51.100.7", counted=False, presents_key=False)
    with pytest.raises(OverAddressLimit) as over:
        edge.admit("198.51.100.7", counted=True, presents_key=False)
    assert over.value.retry_after == 30 and "over 2 requests a minute" in str(over.value)
    clock.now += 30
    edge.admit("198.51.100.7", counted=True, presents_key=False)


@pytest.mark.parametrize("value", ["many", "0", "1000001", -5])
def test_a_setting_that_is_not_a_number_in_range_stops_the_start(value):
    with pytest.raises(RuntimeError, match="MALLCARE_PER_ADDRESS_PER_MINUTE"):
        setting({"MALLCARE": {"PER_ADDRESS_PER_MINUTE": value}}, "PER_ADDRESS_PER_MINUTE", 600, 1, 1_000_000)


def test_a_setting_left_out_or_empty_is_the_default_and_text_is_read_as_a_number():
    assert setting({}, "PER_ADDRESS_PER_MINUTE", 600, 1, 10**6) == 600
    assert setting({"MALLCARE": {"PER_ADDRESS_PER_MINUTE": ""}}, "PER_ADDRESS_PER_MINUTE", 600, 1, 10**6) == 600
    assert setting({"MALLCARE": {"PER_ADDRESS_PER_MINUTE": "30"}}, "PER_ADDRESS_PER_MINUTE", 600, 1, 10**6) == 30


def test_each_refusal_has_its_reason_for_the_counter():
    assert reason_of(429, OverAddressLimit("", 1)) == "address"
    assert reason_of(429, RefusedKeys("", 1)) == "refused_keys"
    assert reason_of(429, None) == "key"
    assert (reason_of(413, None), reason_of(401, None), reason_of(404, None)) == ("body", "unauthenticated", None)
