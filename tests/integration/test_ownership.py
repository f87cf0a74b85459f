"""R2.4, R2.5, R4.2 on the real broker and store: ownership always ends with a person,
and every service names the same one. A policy leaving a department of a mall without
anyone is refused at start and at reload; an assessment closes and reopens with its
case, so open load is today's work; the unowned sweep reaches every unowned complaint,
however many wait for a shift elsewhere; after the operations director's review meeting
triage, resolution and analytics name the meeting's department and owner, and a later
reassignment to another department is refused. A redelivered event changes nothing, and
a reopening that overtakes its closing is not undone by it."""

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook, entrypoint_waiter, replace_dependencies

from mallcare_cli.examples import desk_complaint
from mallcare_common.contracts import COMPLAINT_REGISTERED, EVENT_TYPES, build_event
from mallcare_common.policy import InvalidPolicy
from tests.helpers import SPOT_REFUND, handled, staff
from tests.integration.test_policy_files import edit
from triage.service import TriageService

SH = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, tzinfo=SH)
SUPERVISOR, DIRECTOR, DESK = staff("E3011"), staff("E3901"), staff("D3001")


def without_finance_at_bj(data):
    data["fallback"].pop("bj-chaoyang")
    data["roster"]["bj-chaoyang"] = [h for h in data["roster"]["bj-chaoyang"] if h["department"] != "finance"]


def triage_with(container_factory, service_config, policy_dir, clock):
    config = service_config("triage")
    config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(policy_dir)}
    container = container_factory(TriageService, config)
    replace_dependencies(container, clock=clock)
    container.start()
    return container


def test_a_policy_leaving_a_department_without_anyone_is_refused_at_start_and_reload(
    container_factory, service_config, web_client, policy_dir
):
    triage = triage_with(container_factory, service_config, policy_dir, lambda: MONDAY.replace(hour=10))
    web = web_client(triage)
    version = web.get("/policy").json()["version"]
    edit(policy_dir / "triage.yml", without_finance_at_bj)
    refused = web.post("/policy/reload")
    assert refused.status_code == 422
    assert refused.json()["fields"]["roster"] == ["bj-chaoyang: nobody for finance (no handler and no fallback)."]
    assert web.get("/policy").json()["version"] == version

    config = service_config("triage")
    config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(policy_dir)}
    with pytest.raises(InvalidPolicy, match=r"triage.yml is invalid: .*bj-chaoyang: nobody for finance"):
        container_factory(TriageService, config).start()


def registered(number, mall_id, received_at, description, phone):
    """complaint_registered as intake publishes it (without intake, to make hundreds quickly)."""
    return build_event(
        COMPLAINT_REGISTERED,
        mall_id=mall_id,
        complaint_no=number,
        occurred_at=received_at,
        payload={
            "channel": "desk",
            "channel_ref": None,
            "received_at": received_at.isoformat(),
            "ack_due_at": (received_at + timedelta(minutes=30)).isoformat(),
            "customer": {"ref": f"ref-{phone}", "contact_masked": None, "member_tier": None},
            "location": {},
            "staff_involved": [],
            "description": description,
            "demands": {},
            "policy_version": "test",
        },
    )


def test_the_sweep_reaches_a_new_complaint_behind_more_than_a_page_waiting_for_a_shift(
    container_factory, service_config, web_client, policy_dir
):
    """201 refund complaints at Shanghai wait for its finance handler, whose shift this
    test policy shrinks to a minute after midnight; a later complaint
    at Beijing must still get its owner as soon as someone there is on shift. (Recurrence
    is off here, so that every complaint keeps the same resolution deadline.)"""

    def never_on_shift(data):
        data["shift_patterns"]["never"] = {
            day: "00:00-00:01" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        }
        next(h for h in data["roster"]["sh-xujiahui"] if h["department"] == "finance")["shifts"] = "never"
        data["urgency"]["systemic"]["threshold"] = 100000

    edit(policy_dir / "triage.yml", never_on_shift)
    clock = {"now": MONDAY.replace(hour=23, minute=30)}  # after every shift
    triage = triage_with(container_factory, service_config, policy_dir, lambda: clock["now"])
    web = web_client(triage)
    with entrypoint_hook(triage, "handle_complaint_registered") as register:
        for i in range(201):
            register(
                registered(
                    f"SHXJH-20261123-{i:04d}", "sh-xujiahui", clock["now"], "退款一周了还没到账", f"1390000{i:04d}"
                )
            )
        clock["now"] += timedelta(minutes=5)
        register(registered("BJCY-20261123-0001", "bj-chaoyang", clock["now"], "收银员态度很差", "13700000001"))
    assert web.get("/assessments/BJCY-20261123-0001").json()["owner"] is None

    clock["now"] = MONDAY.replace(hour=10) + timedelta(days=1)  # Tuesday morning: Beijing's day shift
    with entrypoint_hook(triage, "assign_unowned") as sweep:
        sweep()
    assessment = web.get("/assessments/BJCY-20261123-0001").json()
    assert assessment["owner"] == {"id": "E4001", "name": "马丽"}
    assert assessment["history"][-1]["action"] == "reassigned"
    waiting = web.get("/queue", params={"mall_id": "sh-xujiahui", "limit": 500}).json()["items"]
    assert len(waiting) == 201 and all(a["owner"] is None for a in waiting)


@pytest.fixture
def system(services):
    """Intake, triage, resolution and analytics on a Monday afternoon (both of Shanghai's
    customer-service handlers on shift); the clocks move, so that what happens one after
    the other (triage, the meeting; closing, reopening) is stamped so."""
    started, four = time.monotonic(), MONDAY.replace(hour=16)
    moving = lambda: four + timedelta(seconds=time.monotonic() - started)  # noqa: E731
    return services(
        "triage",
        "analytics",
        "resolution",
        "intake",
        clocks={"triage": moving, "analytics": moving, "resolution": moving},
    )


def complain(system, **overrides):
    with system.case_opened():
        return system.web["intake"].post("/complaints", json=desk_complaint(**overrides)).json()["number"]


def rude_cashier(system, i):
    return complain(
        system,
        location={},
        channel_ref=f"rude-{i}",
        customer={"phone": f"1360000000{i}"},
        description="收银员态度很差",
        demands={},
        anger_score=2,
    )


def test_an_assessment_closes_and_reopens_with_its_case_so_open_load_is_todays(system):
    containers, web = system.containers, system.web
    first, second, third = (rude_cashier(system, i) for i in range(3))
    owners = [web["triage"].get(f"/assessments/{n}").json()["owner"]["id"] for n in (first, second, third)]
    assert owners == ["E3001", "E3002", "E3001"]

    for number in (first, third):  # settled at the desk, then closed by the supervisor
        assert web["resolution"].post(f"/cases/{number}/spot-resolution", headers=DESK, json=SPOT_REFUND).ok
        with entrypoint_waiter(containers["triage"], "handle_case_closed"):
            closed = web["resolution"].post(
                f"/cases/{number}/closure", headers=SUPERVISOR, json={"reason": "customer thanked us at the desk"}
            )
            assert closed.status_code == 200, closed.text
    assessment = web["triage"].get(f"/assessments/{first}").json()
    assert assessment["status"] == "closed" and assessment["history"][-1]["action"] == "case_closed"
    redeliver(system, first, "case_closed", "handle_case_closed")
    assert web["triage"].get(f"/assessments/{first}").json()["history"] == assessment["history"]
    assert {a["complaint_no"] for a in web["triage"].get("/queue").json()["items"]} == {second}

    fourth = rude_cashier(system, 3)  # E3001 has nothing open now, E3002 one
    assert web["triage"].get(f"/assessments/{fourth}").json()["owner"]["id"] == "E3001"

    with entrypoint_waiter(containers["triage"], "handle_case_reopened"):
        assert (
            web["resolution"]
            .post(f"/cases/{first}/reopening", headers=SUPERVISOR, json={"reason": "the customer called back"})
            .ok
        )
    assert web["triage"].get(f"/assessments/{first}").json()["status"] == "open"
    fifth = rude_cashier(system, 4)  # E3001: the fourth and the reopened first; E3002: the second
    assert web["triage"].get(f"/assessments/{fifth}").json()["owner"]["id"] == "E3002"


def redeliver(system, number, event_type, handler):
    """Resolution's event again, as the broker may deliver it twice."""
    outbox = system.db("resolution").cases.find_one({"_id": number})["outbox"]
    envelope = next(e["event"] for e in outbox if e["event"]["event_type"] == event_type)
    with entrypoint_waiter(system.containers["triage"], handler):
        system.dispatch("resolution", event_type, envelope)


def read_model(system, number):
    """Analytics' report row of the complaint, read the way an operator would inspect it."""
    return system.db("analytics").complaints.find_one({"_id": number}) or {}


@pytest.mark.parametrize("named, owner", [("E3102", "E3102"), (None, "E3101")])
def test_after_the_review_meeting_every_service_names_its_department_and_owner(system, named, owner):
    """A mouldy punnet and a rude cashier: procurement/QC and customer service dispute it,
    the operations director's meeting decides QC is responsible (naming 陈静, or nobody:
    then QC's least-loaded handler on shift, 王强 and 陈静 both free, the first in the roster)."""
    containers, web = system.containers, system.web
    number = complain(system, location={}, description="买的草莓发霉了，收银员态度还很差", demands={})
    assessment = web["triage"].get(f"/assessments/{number}").json()
    assert assessment["review_meeting"] is True and assessment["department"] == "operations_director"

    decision = {
        "responsible_department": "procurement_qc",
        "decision": "QC owns the mouldy batch",
        "attendees": ["E3101", "E3001"],
        **({"owner_id": named} if named else {}),
    }
    with (
        handled(containers["analytics"], "handle_complaint_reassigned"),
        entrypoint_waiter(containers["resolution"], "handle_complaint_reassigned"),
    ):
        decided = web["resolution"].post(f"/cases/{number}/review-meeting", headers=DIRECTOR, json=decision)
        assert decided.status_code == 200, decided.text

    assessment = web["triage"].get(f"/assessments/{number}").json()
    case = web["resolution"].get(f"/cases/{number}").json()
    assert (assessment["department"], assessment["owner"]["id"]) == ("procurement_qc", owner)
    assert assessment["history"][-1] == {
        **assessment["history"][-1],
        "action": "review_meeting",
        "by": "E3901",
        "old": "operations_director",
        "new": "procurement_qc",
    }
    assert (case["department"], case["owner_id"]) == ("procurement_qc", owner)
    clocks = {c["clock"]: c for c in web["analytics"].get(f"/clocks/{number}").json()["clocks"]}
    for kind in ("first_response", "resolution"):
        assert (clocks[kind]["department"], clocks[kind]["owner"]) == ("procurement_qc", owner)
    row = read_model(system, number)
    assert (row["department"], row["owner_id"]) == ("procurement_qc", owner)

    redeliver(system, number, "review_meeting_decided", "handle_review_meeting_decided")
    assert web["triage"].get(f"/assessments/{number}").json()["history"] == assessment["history"]

    # a later reassignment cannot undo the meeting: only within its department
    refused = web["triage"].post(
        f"/assessments/{number}/owner",
        headers=SUPERVISOR,
        json={"owner_id": "E3001", "reason": "she knows the customer"},
    )
    assert refused.status_code == 409
    assert "review meeting decided that procurement_qc is responsible" in refused.json()["message"]
    other = "E3101" if owner == "E3102" else "E3102"
    with entrypoint_waiter(containers["resolution"], "handle_complaint_reassigned"):
        moved = web["triage"].post(
            f"/assessments/{number}/owner",
            headers=SUPERVISOR,
            json={"owner_id": other, "reason": "the day shift takes it"},
        )
        assert moved.status_code == 200, moved.text
    case = web["resolution"].get(f"/cases/{number}").json()
    assert (case["department"], case["owner_id"]) == ("procurement_qc", other)


def test_a_reopening_that_overtakes_its_closing_leaves_the_assessment_open(
    container_factory, service_config, web_client, policy_dir
):
    """case_closed and case_reopened come on separate queues: the later by when it happened holds."""
    now = MONDAY.replace(hour=10)
    triage = triage_with(container_factory, service_config, policy_dir, lambda: now)
    number = "SHXJH-20261123-0007"
    with entrypoint_hook(triage, "handle_complaint_registered") as register:
        register(registered(number, "sh-xujiahui", now, "收银员态度很差", "13700000007"))

    def case_event(kind, at, **payload):
        envelope = build_event(
            EVENT_TYPES[kind],
            mall_id="sh-xujiahui",
            complaint_no=number,
            occurred_at=at,
            payload={"by": "E3011", "reason": "x", **payload},
        )
        with entrypoint_waiter(triage, f"handle_{kind}"):
            event_dispatcher({"AMQP_URI": triage.config["AMQP_URI"]})("resolution", kind, envelope)
        return web_client(triage).get(f"/assessments/{number}").json()

    resolution_due = now + timedelta(hours=48)
    assert (
        case_event("case_reopened", now + timedelta(hours=2), round=2, resolution_due_at=resolution_due.isoformat())[
            "status"
        ]
        == "open"
    )
    overtaken = case_event("case_closed", now + timedelta(hours=1))
    assert overtaken["status"] == "open" and overtaken["history"][-1]["action"] == "case_reopened"
    assert case_event("case_closed", now + timedelta(hours=3))["status"] == "closed"
    assert web_client(triage).get("/queue").json()["items"] == []
