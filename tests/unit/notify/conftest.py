"""Shared by notify's unit tests: the shipped policy (malls in Asia/Shanghai, bj-chaoyang
with its own quiet hours), what notify keeps of a complaint, and a check that what the
rules publish matches the event contract."""

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from marshmallow import RAISE

from mallcare_common.contracts import EVENT_TYPES, EnvelopeSchema, read_event
from mallcare_common.policy import load_policy_dir
from notify.policy import load_policy
from tests.conftest import POLICY_DIR

SH = ZoneInfo("Asia/Shanghai")


def sh(*args):
    """A Shanghai wall-clock time as the service's clock gives it (UTC)."""
    return datetime(*args, tzinfo=SH).astimezone(timezone.utc)


MONDAY_10 = sh(2026, 11, 23, 10, 0)


@pytest.fixture(scope="session")
def policy():
    return load_policy_dir(POLICY_DIR, "notify.yml", load_policy)


def complaint(channel="email", mall_id="sh-xujiahui", language="zh", number="SHXJH-20261123-0042", reachable=True):
    """What notify keeps of complaint_registered."""
    return {"_id": number, "mall_id": mall_id, "channel": channel, "language": language, "reachable": reachable}


def assert_valid(event, event_type):
    """The event is the type expected and matches its contract, as plain JSON; returns it as
    a subscriber reads it."""
    assert event["event_type"] == event_type.name
    assert EnvelopeSchema().validate(event) == {}
    assert EVENT_TYPES[event["event_type"]].payload(unknown=RAISE).validate(event["payload"]) == {}
    json.dumps(event)
    return read_event(event, event_type)
