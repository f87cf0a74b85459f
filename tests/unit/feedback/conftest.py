"""Shared by feedback's unit tests: the shipped policy (malls in Asia/Shanghai,
bj-chaoyang with its own quiet hours), the case_resolved event a revisit starts
from, the complaint summary feedback keeps, revisits built by the rules at a fixed
`now`, and a check that what the rules publish matches the event contract."""

import copy
import dataclasses
import json
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest
from marshmallow import RAISE

from feedback import rules
from feedback.policy import load_policy
from mallcare_common.contracts import EVENT_TYPES, EnvelopeSchema, build_event, read_event
from mallcare_common.contracts import resolution as case_events
from mallcare_common.policy import load_policy_dir
from tests.conftest import POLICY_DIR

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
CODES = {"sh-xujiahui": "SHXJH", "bj-chaoyang": "BJCY", "gz-tianhe": "GZTH"}


def sh(*args):
    """A Shanghai wall-clock time as the service's clock gives it (UTC)."""
    return datetime(*args, tzinfo=SH).astimezone(UTC)


def local(at):
    return at.astimezone(SH)


def quiet(at, start, end):
    """Independent of the rules: is `at` (mall time) inside quiet hours start-end?"""
    t = local(at).time()
    return (t >= start or t < end) if start > end else start <= t < end


MONDAY_10 = sh(2026, 11, 23, 10, 0)  # Mon 2026-11-23 10:00 in Shanghai
CHAIN_QUIET = (time(21, 0), time(9, 0))
BJ_QUIET = (time(21, 30), time(9, 30))


@pytest.fixture(scope="session")
def policy():
    return load_policy_dir(POLICY_DIR, "feedback.yml", load_policy)


def with_override(policy, mall_id, **revisit):
    """The policy with `mall_id`'s revisit entries replaced (values as loaded, e.g. quiet
    hours as a (time, time) pair), the way a mall override in feedback.yml does."""
    changed = copy.deepcopy(policy.rules)
    changed["mall_overrides"][mall_id] = {"revisit": revisit}
    return dataclasses.replace(policy, rules=changed)


def resolved_event(
    mall_id="sh-xujiahui",
    channel="desk",
    round_=1,
    at=MONDAY_10,
    complaint_no=None,
    category="product.quality_defect",
    risk_level="low",
    department="merchant_relations",
):
    """case_resolved as feedback's handler reads it (occurred_at back as a datetime)."""
    payload = {
        "spot": False,
        "decision": "upheld",
        "remedy_types": ["refund"],
        "total_fen": 3990,
        "round": round_,
        "category": category,
        "risk_level": risk_level,
        "department": department,
        "owner_id": "E3501",
        "channel": channel,
        "by": "E3501",
    }
    event = build_event(
        case_events.CASE_RESOLVED,
        mall_id=mall_id,
        complaint_no=complaint_no or f"{CODES[mall_id]}-20261123-0042",
        occurred_at=at,
        payload=payload,
    )
    return read_event(event, case_events.CASE_RESOLVED)


def complaint(contact="138****5678", channel="desk", **extra):
    """What feedback keeps of complaint_registered (masked contact only)."""
    return {
        "_id": "SHXJH-20261123-0042",
        "mall_id": "sh-xujiahui",
        "channel": channel,
        "contact_masked": contact,
        "description": "草莓发霉",
        "demands": {"fact": "mouldy strawberries", "expectation": "refund"},
        "merchant_id": "T-17",
        "area": "B1 fresh food",
        **extra,
    }


@pytest.fixture
def new_revisit(policy):
    """new_revisit(channel, contact, mall_id, at, round_, policy) -> a new revisit document and its first event."""

    def make(
        channel="desk", contact="138****5678", mall_id="sh-xujiahui", at=MONDAY_10, round_=1, now=None, policy=policy
    ):
        event = resolved_event(mall_id=mall_id, channel=channel, round_=round_, at=at)
        return rules.new_revisit(event, complaint(contact, channel), policy, now or at)

    return make


@pytest.fixture
def make_revisit(new_revisit):
    """make_revisit(...) -> the revisit document alone."""
    return lambda **kwargs: new_revisit(**kwargs)[0]


def assert_valid(event, event_type):
    """The event is the type expected and matches its contract (envelope and payload,
    unknown fields refused), as plain JSON; returns it as a subscriber reads it."""
    assert event["event_type"] == event_type.name
    assert EnvelopeSchema().validate(event) == {}
    assert EVENT_TYPES[event["event_type"]].payload(unknown=RAISE).validate(event["payload"]) == {}
    json.dumps(event)
    return read_event(event, event_type)
