"""R1.2, R3.2, R3.3, R3.7, R4.1, R7.1 (issue 19): notify on the real broker and store, sending
through the gateways to the protocol stand-ins (`python -m standins`, its own process): an
e-mail complaint gets its acknowledgement by SMTP and intake's acknowledgement clock is met
by it; a relay that is down delays messages and loses none; a number the SMS provider
refuses ends in message_failed, listed for staff and on the case's timeline; a redelivered
event makes no second message; a complaint worked to resolved sends the customer, in order
and once each, the acknowledgement, the promised time, the answer, the execution notice and
the revisit request with its link. The customer's contact is read through intake's audited
read and kept nowhere in notify."""

import json
import logging
import time
from datetime import timedelta

import pytest
from nameko.testing.services import entrypoint_waiter

from mallcare_common.calendar import as_stored
from tests.helpers import drain, staff, wait_for
from tests.integration.test_gateways import email, phone, standins
from tests.unit.notify.conftest import MONDAY_10

HANDLER, DESK = staff("E3501"), staff("D3001")


@pytest.fixture
def outside(tmp_path):
    """The stand-ins of this test, as the shipped gateway settings reach them (no TLS, no AUTH)."""
    with standins(tmp_path) as started:
        yield started


@pytest.fixture
def system(services, policy_dir, outside, shift):
    """Triage, resolution, feedback, notify and intake on clocks that move from Monday 10:00 in
    Shanghai (notify's on by `shift`), notify's gateways pointed at the stand-ins, and queues on
    the events (analytics, which would subscribe to them all, is not running)."""
    outside.point_notify_here(policy_dir)
    started = time.monotonic()
    moving = lambda: as_stored(MONDAY_10 + timedelta(seconds=time.monotonic() - started))  # noqa: E731
    system = services(
        "triage",
        "resolution",
        "feedback",
        "notify",
        "intake",
        clocks={
            "triage": moving,
            "resolution": moving,
            "feedback": moving,
            "intake": moving,
            "notify": lambda: moving() + shift["by"],
        },
        settings={"notify": {"POLICY_DIR": str(policy_dir)}},
    )
    system.catch_all("notify", "intake", "resolution", "feedback", "triage")
    return system


def register(system, channel, **customer):
    response = system.web["intake"].post(
        "/complaints",
        json={
            "mall_id": "sh-xujiahui",
            "channel": channel,
            "customer": {"name": "李伟", **customer},
            "description": "草莓约1/3霉变，要求全额退款",
            "demands": {"fact": "草莓约1/3霉变", "expectation": "全额退款"},
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["number"]


def messages(system, number):
    response = system.web["notify"].get("/messages", params={"complaint_no": number})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def complaint(system, number):
    return system.web["intake"].get(f"/complaints/{number}").json()


def timeline(system, number, action):
    case = system.web["resolution"].get(f"/cases/{number}")
    return case.ok and [e["detail"] for e in case.json()["timeline"] if e["action"] == action]


def everything_notify_keeps(system):
    db = system.db("notify")
    return json.dumps([*db.messages.find(), *db.complaints.find()], default=str, ensure_ascii=False)


def test_an_email_complaint_is_acknowledged_by_email_and_that_meets_intakes_clock(system, outside, caplog):
    caplog.set_level(logging.INFO)  # what the services run at (config.yml LOGGING)
    address = email()
    number = register(system, "email", email=address)

    [mail] = wait_for(lambda: outside.received(address))
    assert mail["subject"] == f"您的投诉已受理（{number}）"
    assert f"编号 {number}" in mail["text"] and f"编号 {number}" in mail["html"]
    assert mail["message_id"] == f"<{number}.acknowledgement.1@notify.mallcare>"

    acknowledged = wait_for(lambda: (c := complaint(system, number))["status"] == "acknowledged" and c)
    [message] = messages(system, number)
    assert acknowledged["acknowledgement"] == {
        "acknowledged_by": "notify",
        "method": "email",
        "within_deadline": True,
        "message_id": f"{number}:acknowledgement:1",
        "acknowledged_at": message["sent"]["at"],
    }
    assert (message["kind"], message["status"], message["channel"], message["sent"]["gateway"]) == (
        "acknowledgement",
        "sent",
        "email",
        "smtp",
    )
    assert [a["outcome"] for a in message["attempts"]] == ["accepted"]

    # on the case's timeline, masked
    [entry] = wait_for(lambda: timeline(system, number, "message_sent"))
    assert (entry["kind"], entry["channel"], entry["gateway"]) == ("acknowledgement", "email", "smtp")
    # the contact came through intake's audited read, for this purpose, and stayed nowhere
    audited = system.web["intake"].get("/audit", params={"user": "service:notify"}).json()["items"]
    assert [(a["number"], a["purpose"]) for a in audited] == [(number, "notify acknowledgement")]
    published = drain(system.queues["notify"], unique=True)
    assert [e["event_type"] for e in published] == ["message_sent"]
    assert address not in everything_notify_keeps(system) + json.dumps(published)
    logged = "\n".join(record.getMessage() + str(vars(record)) for record in caplog.records)
    assert f"{number}:acknowledgement:1: sent by email" in logged and address not in logged
    assert address not in system.web["resolution"].get(f"/cases/{number}").text


def test_a_mail_relay_that_is_down_delays_the_messages_and_loses_none(system, outside, shift):
    outside.control(target="smtp", mode="down")
    addresses = [email() for _ in range(3)]
    numbers = [register(system, "email", email=address) for address in addresses]

    waiting = wait_for(
        lambda: (
            all(m["status"] == "retry" for n in numbers for m in messages(system, n))
            and [messages(system, n)[0] for n in numbers]
        )
    )
    assert [[a["outcome"] for a in m["attempts"]] for m in waiting] == [["temporary"]] * 3
    assert all("421" in m["attempts"][0]["error"] for m in waiting)
    assert [outside.received(a) for a in addresses] == [[], [], []]
    assert [complaint(system, n)["status"] for n in numbers] == ["registered"] * 3  # not told yet

    outside.control(target="smtp", mode="ok")
    shift["by"] = timedelta(seconds=31)  # past the first retry's wait (30 s)
    sent = wait_for(
        lambda: (
            all(m["status"] == "sent" for n in numbers for m in messages(system, n))
            and [messages(system, n)[0] for n in numbers]
        ),
        timeout=30,
    )
    assert [[a["outcome"] for a in m["attempts"]] for m in sent] == [["temporary", "accepted"]] * 3
    assert [len(outside.received(a)) for a in addresses] == [1, 1, 1]
    assert wait_for(
        lambda: [complaint(system, n)["acknowledgement"]["acknowledged_by"] for n in numbers] == ["notify"] * 3
    )


def test_a_number_the_sms_provider_refuses_ends_in_message_failed_for_staff_and_on_the_timeline(system, outside):
    outside.control(target="sms", mode="refuse")
    number_to = phone()
    number = register(system, "hotline", phone=number_to)

    [failed] = wait_for(
        lambda: [
            m
            for m in system.web["notify"]
            .get("/messages/failed", params={"mall_id": "sh-xujiahui"}, headers=HANDLER)
            .json()["items"]
            if m["complaint_no"] == number
        ]
    )
    assert (failed["kind"], failed["status"], failed["channel"], failed["failure"]["reason"]) == (
        "acknowledgement",
        "failed",
        "sms",
        "refused",
    )
    assert [(a["outcome"], a["gateway"]) for a in failed["attempts"]] == [("refused", "aliyun_sms")]
    [entry] = wait_for(lambda: timeline(system, number, "message_failed"))
    assert (entry["kind"], entry["channel"], entry["reason"]) == ("acknowledgement", "sms", "refused")
    assert complaint(system, number)["status"] == "registered"  # a failed message acknowledges nothing
    assert outside.received(number_to) == []
    assert number_to not in everything_notify_keeps(system)
    # staff of another mall do not see them
    beijing = system.web["notify"].get("/messages/failed", params={"mall_id": "sh-xujiahui"}, headers=staff("D4001"))
    assert beijing.status_code == 403, beijing.text


def test_a_redelivered_event_makes_no_second_message(system, outside):
    address = email()
    number = register(system, "email", email=address)
    wait_for(lambda: outside.received(address))
    registered = next(
        e
        for e in drain(system.queues["intake"], unique=True)
        if e["event_type"] == "complaint_registered" and e["complaint_no"] == number
    )
    with entrypoint_waiter(system.containers["notify"], "handle_complaint_registered"):
        system.dispatch("intake", "complaint_registered", registered)
    assert len(messages(system, number)) == 1 and len(outside.received(address)) == 1


def test_a_complaint_worked_to_resolved_tells_the_customer_each_step_once_in_order(system, outside, shift):
    to = phone()
    number = register(system, "web", phone=to)
    wait_for(lambda: system.web["resolution"].get(f"/cases/{number}").ok)

    def act(action, **body):
        response = system.web["resolution"].post(f"/cases/{number}/{action}", headers=HANDLER, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    act("expected-resolution", expected_by=(MONDAY_10 + timedelta(days=1)).isoformat(), via="sms")
    act("findings", source="customer", summary="草莓霉变属实")
    act(
        "proposals",
        decision="partly_upheld",
        price="39.90",
        demanded_amount="399.00",
        reasons=["按售价退款；十倍赔偿无法律依据"],
        remedies=[{"type": "refund", "amount": "39.90"}],
    )
    act("reply", proposal_no=1, oral=False, text="很抱歉给您带来不便。")
    tasks = act("acceptance", proposal_no=1)["tasks"]
    for task in tasks:
        act("task-done", task_id=task["id"])
    act("resolution", summary="退款已办理")
    wait_for(lambda: system.web["feedback"].get(f"/revisits/{number}-R1").ok)
    shift["by"] = timedelta(hours=2, minutes=1)  # the revisit is asked 2 hours after the resolution

    kinds = ["acknowledgement", "promise", "answer", "execution", "revisit"]
    texts = wait_for(lambda: len(got := outside.received(to)) == len(kinds) and [m["text"] for m in got], timeout=40)
    assert [m["kind"] for m in messages(system, number)] == kinds
    assert all(m["status"] == "sent" and m["channel"] == "sms" for m in messages(system, number))
    assert texts[0] == f"您的投诉已受理，编号{number}。我们会尽快处理并与您联系。"
    assert texts[1] == f"您的投诉{number}预计将于11月24日 10:00前处理完毕，届时我们会告知您结果。"
    assert texts[2].startswith(
        f"您的投诉{number}答复：部分支持您的诉求，退款39.90元。理由：按售价退款；十倍赔偿无法律依据。"
    )
    assert texts[2].endswith("如有异议，可在7天内经服务台或客服热线申请复核。")  # not what the customer asked
    assert texts[3] == f"您的投诉{number}：退款39.90元已办理，请留意查收。"  # not the product held for inspection
    assert "/answers?token=" in texts[4]
    sent = wait_for(lambda: len(found := timeline(system, number, "message_sent")) == len(kinds) and found)
    # each on the case's timeline once, with the time the gateway took it: the acknowledgement
    # often goes before the case is opened (it waits for triage), and is noted when it is
    assert [e["kind"] for e in sorted(sent, key=lambda e: e["accepted_at"])] == kinds


def test_a_high_risk_case_is_led_by_the_legal_lead_who_is_told_and_signs_off_the_answer(system, outside):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — "吃完全家上吐下泻，去了医院急诊": triage
    grades it high for safety, so the legal lead (L9001 蒋律师) becomes the case's accountable
    lead beside the handler, is told at once by e-mail at work (the stand-in's mail catcher),
    and the answer reaches the customer only after the lead signs it off: before that the
    reply is refused with 409 and why, and nobody else may sign."""
    response = system.web["intake"].post(
        "/complaints",
        json={
            "mall_id": "sh-xujiahui",
            "channel": "web",
            "customer": {"name": "李伟", "phone": phone()},
            "description": "昨天在你们超市熟食档买的卤鸭翅，吃完全家上吐下泻，今天去了医院急诊",
            "demands": {"fact": "卤鸭翅食用后呕吐腹泻", "expectation": "按食品安全法退一赔十"},
        },
    )
    assert response.status_code == 201, response.text
    number = response.json()["number"]
    case = wait_for(lambda: (r := system.web["resolution"].get(f"/cases/{number}", headers=HANDLER)).ok and r.json())
    assert case["risk_level"] == "high" and "safety" in case["risk_reasons"]
    assert (case["lead"]["staff_id"], case["lead"]["role"]) == ("L9001", "legal")

    [mail] = wait_for(lambda: outside.received("l9001@staff.mall.example"))
    assert mail["subject"] == f"高风险投诉由您牵头（{number}）"
    assert mail["text"].startswith("蒋律师：") and "法务负责人" in mail["text"]
    told = wait_for(lambda: timeline(system, number, "lead_sent"))  # staff told, not a message to the customer
    assert told[0]["channel"] == "email"

    def act(action, who, expected=200, **body):
        answer = system.web["resolution"].post(f"/cases/{number}/{action}", headers=who, json=body)
        assert answer.status_code == expected, answer.text
        return answer.json()

    lead = staff("L9001")
    act("findings", HANDLER, source="records", summary="同批次卤鸭翅已下架送检")
    act(
        "proposals",
        HANDLER,
        decision="upheld",
        legal_basis="food_safety",
        price="32.00",
        reasons=["食用后致病，依食品安全法退一赔十"],
        remedies=[{"type": "refund", "amount": "32.00"}, {"type": "cash_compensation", "amount": "1000.00"}],
    )
    act("approval", lead, proposal_no=1)
    refused = act("reply", HANDLER, 409, proposal_no=1, oral=False)
    assert "led by 蒋律师 (L9001, legal)" in refused["message"] and "sign it off" in refused["message"]
    assert act("sign-off", HANDLER, 403, proposal_no=1)["error"] == "FORBIDDEN"
    signed = act("sign-off", lead, proposal_no=1, note="赔偿符合食品安全法")
    assert signed["proposals"][0]["signed_off"]["by"] == "L9001"
    answered = act("reply", HANDLER, proposal_no=1, oral=False)
    assert answered["proposals"][0]["status"] == "sent"
    assert [
        e["action"] for e in answered["timeline"] if e["action"] in ("lead_assigned", "signed_off", "answered")
    ] == [
        "lead_assigned",
        "signed_off",
        "answered",
    ]
