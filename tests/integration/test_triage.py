"""R2.1-R2.6 on the real broker and store: a complaint registered at intake is
assessed by triage (category, risk and reasons, urgency, department, owner,
deadlines, policy version) and announced to a plain kombu subscriber; a
redelivered event stays single; corrections and reassignments are recorded and
announced; queues come ordered by deadline; a broken policy is refused."""

import json
import shutil
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from kombu import Connection, Queue
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook, entrypoint_waiter, replace_dependencies

from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.contracts import EVENT_TYPES, build_event
from mallcare_common.messaging import DEAD_LETTER_QUEUE
from mallcare_common.policy import InvalidPolicy
from tests.helpers import POLICY_DIR, bearer, handled, staff, wait_for
from triage.service import TriageService

SUPERVISOR = staff("E3011")  # corrections and reassignments are a supervisor's

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # day shift on


@pytest.fixture
def policy_dir(tmp_path):
    target = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, target)
    return target


@pytest.fixture
def system(services, policy_dir):
    """Triage on a Monday morning with the test's copy of the policy, intake, and a queue
    on triage's events."""
    system = services(
        "triage", "intake", clocks={"triage": lambda: MONDAY_10}, settings={"triage": {"POLICY_DIR": str(policy_dir)}}
    )
    system.catch_all("triage")
    return system


def next_event(system):
    message = wait_for(lambda: system.queues["triage"].get(no_ack=True))
    return json.loads(message.body)


def register(system, **overrides):
    with handled(system.containers["triage"], "handle_complaint_registered"):
        response = system.web["intake"].post("/complaints", json=desk_complaint(**overrides))
    return response.json()["number"]


def test_a_registered_complaint_is_assessed_and_announced(system):
    number = register(system)
    assessment = system.web["triage"].get(f"/assessments/{number}").json()
    assert assessment["category"] == "product.quality_defect"
    assert assessment["category_source"] == "keywords"
    assert assessment["department"] == "merchant_relations"  # tenant T-17 sold it
    assert assessment["owner"] == {"id": "E3501", "name": "周洁"}
    assert (assessment["risk_level"], assessment["urgency"]) == ("low", "routine")
    received = datetime.fromisoformat(assessment["received_at"])
    assert datetime.fromisoformat(assessment["first_response_due_at"]) == received + timedelta(hours=48)
    assert assessment["policy_version"].startswith("2026-")

    event = next_event(system)
    assert event["event_type"] == "complaint_triaged" and event["complaint_no"] == number
    assert event["payload"]["owner_id"] == "E3501" and event["payload"]["department"] == "merchant_relations"
    assert "13812345678" not in json.dumps(event) and "王女士" not in json.dumps(event, ensure_ascii=False)


def test_high_risk_is_graded_with_its_reasons_and_tightens_deadlines(system):
    number = register(
        system,
        channel="social",
        channel_ref="weibo-1",
        anger_score=5,
        description="孩子吃了这里买的饼干后拉肚子，不处理就找记者曝光",
        location={},
        demands={"expectation": "二十倍赔偿"},
    )  # food law grants ten times
    assessment = system.web["triage"].get(f"/assessments/{number}").json()
    assert assessment["risk_level"] == "high" and assessment["urgency"] == "urgent"
    assert {r["reason"] for r in assessment["risk_reasons"]} == {
        "media_exposure",
        "safety",
        "beyond_statutory",
        "anger",
    }
    received = datetime.fromisoformat(assessment["received_at"])
    assert datetime.fromisoformat(assessment["resolution_due_at"]) == received + timedelta(hours=12)


def test_a_redelivered_event_makes_no_second_assessment_or_event(system):
    number = register(system)
    assert next_event(system)["event_type"] == "complaint_triaged"
    envelope = system.db("intake").complaints.find_one({"_id": number})["outbox"][0]["event"]
    with handled(system.containers["triage"], "handle_complaint_registered", event_id=envelope["event_id"]):
        system.dispatch("intake", "complaint_registered", envelope)
    assert system.queues["triage"].get(no_ack=True) is None
    assert len(system.web["triage"].get("/queue").json()["items"]) == 1


def test_a_correction_reroutes_and_is_recorded(system):
    number = register(system, location={})
    next_event(system)
    corrected = system.web["triage"].post(
        f"/assessments/{number}/corrections",
        headers=SUPERVISOR,
        json={"field": "category", "value": "environment.hygiene", "reason": "mould on the shelf, not the fruit"},
    )
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert (body["category"], body["category_source"], body["department"]) == (
        "environment.hygiene",
        "corrected",
        "facilities",
    )
    assert body["owner"]["id"] == "E3201"
    assert body["history"][-1] == {
        **body["history"][-1],
        "action": "corrected",
        "by": "E3011",
        "old": "product.quality_defect",
        "new": "environment.hygiene",
    }
    event = next_event(system)
    assert event["event_type"] == "complaint_corrected" and event["payload"]["department"] == "facilities"

    risk = (
        system.web["triage"]
        .post(
            f"/assessments/{number}/corrections",
            headers=SUPERVISOR,
            json={"field": "risk_level", "value": "high", "reason": "journalist called"},
        )
        .json()
    )
    assert (risk["risk_level"], risk["urgency"]) == ("high", "urgent")
    assert risk["risk_reasons"][-1]["reason"] == "corrected"

    bad = system.web["triage"].post(
        f"/assessments/{number}/corrections",
        headers=SUPERVISOR,
        json={"field": "category", "value": "product.haunted", "reason": "?"},
    )
    assert bad.status_code == 422 and "value" in bad.json()["fields"]


def test_reassignment_is_recorded_and_announced(system):
    number = register(system, location={})
    next_event(system)
    moved = system.web["triage"].post(
        f"/assessments/{number}/owner",
        headers=SUPERVISOR,
        json={"owner_id": "E3001", "reason": "she handled this customer before"},
    )
    assert moved.status_code == 200
    assert moved.json()["owner"]["id"] == "E3001" and moved.json()["department"] == "customer_service"
    event = next_event(system)
    assert event["event_type"] == "complaint_reassigned"
    assert (event["payload"]["from_owner_id"], event["payload"]["to_owner_id"]) == ("E3101", "E3001")
    unknown = system.web["triage"].post(
        f"/assessments/{number}/owner", headers=SUPERVISOR, json={"owner_id": "E0000", "reason": "x"}
    )
    assert unknown.status_code == 422


def test_queues_are_ordered_by_deadline(system):
    routine = register(system, location={}, channel_ref="q-1", customer={"phone": "13900000001"})
    urgent = register(
        system,
        location={},
        channel_ref="q-2",
        customer={"phone": "13900000002"},
        description="草莓发霉，孩子吃了拉肚子",
    )
    queue = system.web["triage"].get("/queue", params={"department": "procurement_qc"}).json()["items"]
    assert [a["complaint_no"] for a in queue] == [urgent, routine]
    mine = system.web["triage"].get("/queue", params={"owner_id": "E3101"}).json()["items"]
    assert {a["complaint_no"] for a in mine} == {urgent, routine}


def test_the_policy_in_force_is_shown_and_a_broken_one_is_refused(system, policy_dir):
    version = system.web["triage"].get("/policy").json()["version"]
    assert version.startswith("2026-")
    (policy_dir / "triage.yml").write_text("version: 2\ntaxonomy: nonsense\n", encoding="utf-8")
    refused = system.web["triage"].post("/policy/reload")
    assert refused.status_code == 422 and "taxonomy" in refused.json()["fields"]
    assert system.web["triage"].get("/policy").json()["version"] == version


def test_a_service_with_a_broken_policy_does_not_start(container_factory, service_config, policy_dir):
    (policy_dir / "triage.yml").write_text("version: x\n", encoding="utf-8")
    config = service_config("triage")
    config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(policy_dir)}
    with pytest.raises(InvalidPolicy, match=r"triage.yml is invalid: .*taxonomy: Missing data for required field"):
        container_factory(TriageService, config).start()


def test_rpc_gives_the_same_answers(system):
    number = register(system, location={})
    with system.rpc(bearer()) as cluster:
        assert cluster.triage.get_assessment(number) == system.web["triage"].get(f"/assessments/{number}").json()
        queue = cluster.triage.queue({"department": "procurement_qc"})
        assert [a["complaint_no"] for a in queue["items"]] == [number]
        assert cluster.triage.get_policy()["version"] == system.web["triage"].get("/policy").json()["version"]


def test_an_event_for_a_mall_triage_does_not_know_is_dead_lettered(system):
    number = register(system, location={})
    envelope = system.db("intake").complaints.find_one({"_id": number})["outbox"][0]["event"]
    stranger = {**envelope, "event_id": "e-stranger", "complaint_no": "XX-1", "mall_id": "atlantis"}
    with entrypoint_waiter(system.containers["triage"], "handle_complaint_registered"):
        system.dispatch("intake", "complaint_registered", stranger)
    with Connection(system.amqp) as conn:
        dead = wait_for(lambda: Queue(DEAD_LETTER_QUEUE, channel=conn).get(no_ack=True))
        assert json.loads(dead.body)["event_id"] == "e-stranger"
    assert system.web["triage"].get("/assessments/XX-1").status_code == 404


def test_a_case_event_or_a_correction_for_a_complaint_triage_never_assessed_is_refused(system):
    closed = build_event(
        EVENT_TYPES["case_closed"],
        mall_id="sh-xujiahui",
        complaint_no="XX-2",
        occurred_at=MONDAY_10,
        payload={"by": "E3011", "reason": "settled at the desk"},
    )
    with entrypoint_waiter(system.containers["triage"], "handle_case_closed"):
        system.dispatch("resolution", "case_closed", closed)
    with Connection(system.amqp) as conn:  # a broken contract: dead-lettered at once, not retried
        dead = wait_for(lambda: Queue(DEAD_LETTER_QUEUE, channel=conn).get(no_ack=True))
        assert json.loads(dead.body)["event_id"] == closed["event_id"]
        assert dead.headers["x-mallcare-reason"] == "contract" and dead.headers["x-mallcare-attempts"] == 1
    refused = system.web["triage"].post(
        "/assessments/XX-2/corrections",
        headers=SUPERVISOR,
        json={"field": "risk_level", "value": "high", "reason": "journalist called"},
    )
    assert refused.status_code == 404


def test_a_complaint_taken_while_nobody_is_on_shift_gets_an_owner_when_someone_is(
    container_factory, service_config, web_client, policy_dir
):
    clock = {"now": MONDAY_10.replace(hour=23)}  # finance works 09:00-18:00
    config = service_config("triage")
    config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(policy_dir)}
    triage = container_factory(TriageService, config)
    replace_dependencies(triage, clock=lambda: clock["now"])
    triage.start()
    intake = container_factory(IntakeService, service_config("intake"))
    intake.start()
    with handled(triage, "handle_complaint_registered"):
        number = (
            web_client(intake)
            .post("/complaints", json=desk_complaint(location={}, description="退款一周了还没到账", demands={}))
            .json()["number"]
        )
    web = web_client(triage)
    assert web.get(f"/assessments/{number}").json()["owner"] is None

    with entrypoint_hook(triage, "assign_unowned") as sweep:
        sweep()  # still night: nothing to do
    assert web.get(f"/assessments/{number}").json()["owner"] is None
    clock["now"] = MONDAY_10.replace(hour=23) + timedelta(hours=10)  # 09:00 next day
    with entrypoint_hook(triage, "assign_unowned") as sweep:
        sweep()
    assessment = web.get(f"/assessments/{number}").json()
    assert assessment["owner"] == {"id": "E3301", "name": "赵敏"}
    assert assessment["history"][-1]["action"] == "reassigned" and assessment["history"][-1]["by"] == "triage"


def test_work_is_shared_by_load_and_a_recurring_problem_becomes_systemic(
    container_factory, service_config, web_client, policy_dir
):
    """Both customer-service handlers are on shift at 16:00; the policy flags a
    category systemic at its fifth complaint at one mall within 30 days, beside its
    urgency, which stays routine with the same deadline (R2.2, issue 16 finding 3)."""
    config = service_config("triage")
    config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(policy_dir)}
    triage = container_factory(TriageService, config)
    replace_dependencies(triage, clock=lambda: MONDAY_10.replace(hour=16))
    triage.start()
    intake = container_factory(IntakeService, service_config("intake"))
    intake.start()
    owners, urgencies, flags, allowed = [], [], [], set()
    for i in range(5):
        with handled(triage, "handle_complaint_registered"):
            number = (
                web_client(intake)
                .post(
                    "/complaints",
                    json=desk_complaint(
                        location={},
                        channel_ref=f"rude-{i}",
                        customer={"phone": f"1360000000{i}"},
                        description="收银员态度很差",
                        demands={},
                    ),
                )
                .json()["number"]
            )
        assessment = web_client(triage).get(f"/assessments/{number}").json()
        owners.append(assessment["owner"]["id"])
        urgencies.append(assessment["urgency"])
        flags.append((assessment["systemic"], assessment["recurrences"]))
        allowed.add(
            datetime.fromisoformat(assessment["resolution_due_at"]) - datetime.fromisoformat(assessment["received_at"])
        )
    assert owners == ["E3001", "E3002", "E3001", "E3002", "E3001"]
    assert urgencies == ["routine"] * 5
    assert flags == [(False, 1), (False, 2), (False, 3), (False, 4), (True, 5)]
    assert allowed == {timedelta(days=7)}


def test_a_burst_taken_in_one_batch_is_assessed_as_one_by_one(
    container_factory, service_config, web_client, policy_dir, mongo_client
):
    """Issue 21: registered complaints come to triage in batches, and each is assessed
    seeing the ones before it in its batch, which are not stored yet: the same shares of
    work, the same recurrence count reaching systemic at the fifth (R2.2), and a customer's
    third complaint in 90 days graded a repeat complainant (medium), as the test above
    and one-by-one handling give. A redelivered complaint in a later batch changes nothing
    and is not counted again in the history of the one beside it."""
    config = service_config("triage")
    config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(policy_dir), "EVENT_BATCH_WAIT_MS": 3000}
    triage = container_factory(TriageService, config)
    replace_dependencies(triage, clock=lambda: MONDAY_10.replace(hour=16))
    triage.start()
    intake = container_factory(IntakeService, service_config("intake"))
    intake.start()

    def batches():
        return [
            REGISTRY.get_sample_value(f"mallcare_event_batch_size_{s}", {"service": "triage"}) or 0.0
            for s in ("count", "sum")
        ]

    # the first customer's three complaints differ in their words: the same words again
    # within a day would be held at intake as a duplicate
    said = [
        ("13600000000", "收银员态度很差"),
        ("13600000001", "收银员态度很差"),
        ("13600000000", "收银员态度很差，还翻白眼"),
        ("13600000002", "收银员态度很差"),
        ("13600000000", "又是那个收银员，态度很差"),
    ]
    before = batches()
    numbers = []
    for i, (phone, words) in enumerate(said):  # each sent on the answer to the one before
        answer = web_client(intake).post(
            "/complaints",
            json=desk_complaint(
                location={}, channel_ref=f"burst-{i}", customer={"phone": phone}, description=words, demands={}
            ),
        )
        numbers.append(answer.json()["number"])
    wait_for(lambda: batches()[1] - before[1] == len(said))
    assert [now - then for now, then in zip(batches(), before, strict=True)] == [1, len(said)], "one batch of the five"

    web = web_client(triage)
    # the batch is counted as it is handed to its worker: wait for its writes
    assessments = wait_for(lambda: all((got := [web.get(f"/assessments/{n}") for n in numbers])) and got)
    assessments = [a.json() for a in assessments]
    assert [a["owner"]["id"] for a in assessments] == ["E3001", "E3002", "E3001", "E3002", "E3001"]
    assert [(a["systemic"], a["recurrences"]) for a in assessments] == [(False, n) for n in range(1, 5)] + [(True, 5)]
    repeats = [[r["detail"] for r in a["risk_reasons"] if r["reason"] == "repeat_complainant"] for a in assessments]
    assert repeats == [[], [], [], [], ["2 earlier complaints in 90 days"]]
    assert [a["risk_level"] for a in assessments] == ["low", "low", "low", "low", "medium"]

    # the first complaint delivered again, beside the first customer's fourth complaint
    intake_db = mongo_client[intake.config["MONGO_DATABASE"]]
    envelope = intake_db.complaints.find_one({"_id": numbers[0]})["outbox"][0]["event"]
    first = web.get(f"/assessments/{numbers[0]}").json()
    before = batches()
    event_dispatcher({"AMQP_URI": config["AMQP_URI"]})("intake", "complaint_registered", envelope)
    fourth = web_client(intake).post(
        "/complaints",
        json=desk_complaint(
            location={},
            channel_ref="burst-5",
            customer={"phone": "13600000000"},
            description="收银员还是态度很差",
            demands={},
        ),
    )
    assert fourth.status_code == 201, fourth.text
    wait_for(lambda: batches()[1] - before[1] == 2)
    assert batches()[0] - before[0] == 1, "the redelivery and the new complaint in one batch"
    latest = wait_for(lambda: (got := web.get(f"/assessments/{fourth.json()['number']}")).ok and got.json())
    assert [r["detail"] for r in latest["risk_reasons"] if r["reason"] == "repeat_complainant"] == [
        "3 earlier complaints in 90 days"
    ]
    assert latest["recurrences"] == 6
    assert web.get(f"/assessments/{numbers[0]}").json() == first
