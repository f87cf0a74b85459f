"""Shared by resolution's unit tests: the shipped policy, and a case opened from a
complaint_triaged event and driven through the domain's ACTIONS table (request
schema, then the rule) without a store or a broker, at a fixed `now` the test moves."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mallcare_common.contracts import COMPLAINT_TRIAGED, build_event, read_event
from mallcare_common.messaging import new_outbox
from mallcare_common.policy import load_policy_dir
from resolution.domain.actions import ACTIONS
from resolution.domain.opening import new_case
from resolution.domain.step import Actor, Step
from resolution.policy import load_policy
from tests.conftest import POLICY_DIR

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
SERVICES = ("feedback", "triage")  # actors that are services, not staff


def sh(*args):
    """A Shanghai wall-clock time as the service's clock gives it (UTC)."""
    return datetime(*args, tzinfo=SH).astimezone(UTC)


MONDAY_15 = sh(2026, 11, 23, 15, 0)  # Mon 2026-11-23 15:00 in Shanghai, the mall is open


@pytest.fixture(scope="session")
def policy():
    return load_policy_dir(POLICY_DIR, "resolution.yml", load_policy)


def triaged_event(
    mall_id="sh-xujiahui",
    complaint_no=None,
    category="product.quality_defect",
    risk_level="low",
    review_meeting=False,
    departments_involved=(),
    owner_id="E3501",
    department="merchant_relations",
    now=MONDAY_15,
    resolution_due_at=None,
    channel="desk",
    demand=None,
    risk_reasons=(),
):
    code = {"sh-xujiahui": "SHXJH", "bj-chaoyang": "BJCY", "gz-tianhe": "GZTH"}[mall_id]
    payload = {
        "category": category,
        "category_source": "keywords",
        "risk_level": risk_level,
        "risk_reasons": [{"reason": r, "level": risk_level, "detail": r} for r in risk_reasons],
        "urgency": "routine",
        "department": department,
        "review_meeting": review_meeting,
        "departments_involved": list(departments_involved),
        "owner_id": owner_id,
        "first_response_due_at": (now + timedelta(hours=24)).isoformat(),
        "resolution_due_at": (resolution_due_at or now + timedelta(days=7)).isoformat(),
        "policy_version": "2026-11-23.1+malls:2026-11-23.1",
        "received_at": now.isoformat(),
        "channel": channel,
        "merchant_id": "T-17",
        "demand": demand,
    }
    event = build_event(
        COMPLAINT_TRIAGED,
        mall_id=mall_id,
        complaint_no=complaint_no or f"{code}-20261123-0042",
        occurred_at=now,
        payload=payload,
    )
    return read_event(event, COMPLAINT_TRIAGED)


class CaseDriver:
    """One case, changed the way the service changes it: the request through the
    action's schema, the rule on a Step, then the step's fields set and its timeline
    entries appended. `events` collects every event in the order published."""

    def __init__(self, policy, case, now):
        self.policy, self.case, self.now = policy, case, now
        self.events = [entry["event"] for entry in case["outbox"]]
        self.steps = []

    @classmethod
    def open(cls, policy, triaged, now):
        """The case resolution opens for a complaint_triaged event, as the service inserts it (with
        its case_opened event in the outbox)."""
        case, made = new_case(triaged, policy, now)
        return cls(policy, {**case, **new_outbox(made[0], now, *made[1:])}, now)

    def actor(self, by):
        if by in SERVICES:
            return Actor(by, "service")
        staff = self.policy.staff(by)
        assert staff is not None and self.case["mall_id"] in staff.malls, f"{by} does not work at this mall"
        return Actor(staff.id, staff.role, staff.name)

    def act(self, action, by="E3501", at=None, **data):
        """Apply one action (a key of the domain's ACTIONS); raises what the rule raises,
        leaving the case as it was."""
        if at is not None:
            assert at >= self.now, "time only moves forward"
            self.now = at
        schema, rule = ACTIONS[action]
        request = schema().load({**data, "by": by})
        step = Step(self.case, self.actor(by), self.now)
        rule(step, request, self.policy)
        self.case = {**self.case, **step.changes, "timeline": [*self.case["timeline"], *step.entries]}
        self.events.extend(step.events)
        self.steps.append(step)
        return step

    def later(self, **delta):
        self.now += timedelta(**delta)
        return self

    @property
    def state(self):
        return self.case["state"]

    @property
    def proposal(self):
        return self.case["proposals"][-1]

    def event_types(self):
        return [e["event_type"] for e in self.events]

    # the usual ways forward, each one action
    def investigate(self, by="E3501"):
        return self.act("findings", by=by, source="cctv", summary="the strawberries on the shelf are mouldy")

    def propose(self, remedies=(("refund", "39.90"),), by="E3501", decision="upheld", **extra):
        return self.act(
            "proposals",
            by=by,
            decision=decision,
            reasons=["mouldy fruit sold"],
            remedies=[{"type": t, "amount": a} for t, a in remedies],
            **extra,
        )

    def reply(self, by="E3501", **extra):
        return self.act("reply", by=by, proposal_no=self.proposal["no"], oral=True, **extra)

    def accept(self, by="E3501"):
        return self.act("acceptance", by=by, proposal_no=self.proposal["no"])

    def object(self, by="E3501", points=("wants ten times the price",)):
        return self.act("objection", by=by, proposal_no=self.proposal["no"], points=list(points))

    def carry_out(self, by="E3501"):
        for task in self.case["tasks"]:
            if not task["done"]:
                self.act(
                    "task-done",
                    by=by,
                    task_id=task["id"],
                    **({"signature_ref": "RCPT-1"} if task["signature_required"] else {}),
                )

    def resolve(self, by="E3501"):
        return self.act("resolution", by=by, summary="refunded and apologised")


@pytest.fixture
def open_case(policy):
    """open_case(**triaged fields) -> a CaseDriver on a new case (state open)."""

    def make(now=MONDAY_15, **triaged):
        return CaseDriver.open(policy, triaged_event(now=now, **triaged), now)

    return make


@pytest.fixture
def proposed_case(open_case):
    """proposed_case(remedies, by, **triaged) -> a case with a proposal (approved if `by` may)."""

    def make(remedies=(("refund", "39.90"),), by="E3501", proposal=None, **triaged):
        driver = open_case(**triaged)
        driver.investigate(by=by)
        driver.propose(remedies, by=by, **(proposal or {}))
        return driver

    return make
