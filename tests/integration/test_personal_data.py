"""Issue 7 (personal data), R1.3, R6.3 on the real broker and store: reads show the
customer masked; the full record is read by staff with customer.contact and a
purpose, and every such read is in the audit log; retention anonymises complaints
whose case closed more than retention_months ago (learnt from resolution's
case_closed / case_reopened, in whatever order they come), and finished incidents,
once: the full read then answers 410. Free text (descriptions, demands, notes,
findings, incident reports, revisit comments) is masked in every read, the customer's
own name too where the record knows it; the text as told comes with the audited read
only. A whole flow leaves the raw phone, e-mail and name in no log line and in no
other service's data."""

import json
import logging
import subprocess
import sys
from datetime import timedelta

import pytest
import yaml
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook

from mallcare_cli.examples import desk_complaint
from mallcare_common.calendar import utc_now
from mallcare_common.contracts import build_event
from mallcare_common.contracts.resolution import CASE_CLOSED, CASE_REOPENED
from mallcare_common.retention import months_before
from tests.helpers import ROOT, api_key, bearer, drain, handled, settle_at_desk, staff, wait_for

PHONE, EMAIL = "13812345678", "wang.nvshi@example.com"
SH_DESK, SH_HANDLER, SH_MANAGER, BJ_HANDLER = staff("D3001"), staff("E3501"), staff("E3091"), staff("E4001")
LEGAL = bearer("L0001", "legal", ["sh-xujiahui"])
ADMIN = bearer()
REGIONAL = staff("R7001")  # three malls, no customer.contact
WECHAT_KEY = {**api_key("wechat-sh"), "Authorization": None}
# what a customer typed into the text: another phone, an e-mail, an ID and a member number, their name
TOLD = {
    "description": "王女士的草莓发霉了，请回电13912345678或发邮件wang.nvshi@example.com，身份证11010119900307123X",
    "demands": {"fact": "会员M00123买的草莓发霉", "expectation": "王女士要求退款"},
}
TOLD_RAW = ("13912345678", "wang.nvshi@example.com", "11010119900307123X", "M00123", "王女士")
TOLD_MASKED = {
    "description": "[name]的草莓发霉了，请回电[phone]或发邮件[e-mail]，身份证[ID number]",
    "demands": {"fact": "会员[member id]买的草莓发霉", "expectation": "[name]要求退款"},
}


def shows_none_of(answer, raw=TOLD_RAW):
    text = json.dumps(answer, ensure_ascii=False)
    return not [r for r in raw if r in text]


def customer(i=0):
    return {"name": "王女士", "phone": f"1381234{5678 + i:04d}", "email": f"wang{i}@example.com", "member_tier": "gold"}


@pytest.fixture
def resolution_now():
    """Resolution's clock, the test's to move (incidents start 26 months ago)."""
    return {"at": months_before(utc_now(), 26)}


@pytest.fixture
def pair(services, resolution_now):
    """Intake and resolution, on the test's clock."""
    return services("intake", "resolution", clocks={"resolution": lambda: resolution_now["at"]})


def register(web, i, **extra):
    response = web.post(
        "/complaints", headers=SH_DESK, json=desk_complaint(channel_ref=f"desk-pd-{i}", customer=customer(i), **extra)
    )
    assert response.status_code == 201, response.text
    return response.json()["number"]


def case_event(container, kind, number, at, payload):
    """Publish as resolution would, and wait until `container` (intake) has taken it."""
    envelope = build_event(kind, mall_id="sh-xujiahui", complaint_no=number, occurred_at=at, payload=payload)
    with handled(container, f"handle_{kind.name}", number):
        event_dispatcher({"AMQP_URI": container.config["AMQP_URI"]})(kind.source, kind.name, envelope)


def closed(container, number, at):
    case_event(container, CASE_CLOSED, number, at, {"reason": "customer satisfied (score 5)", "by": "feedback"})


def reopened(container, number, at):
    case_event(
        container,
        CASE_REOPENED,
        number,
        at,
        {"reason": "dissatisfied", "round": 2, "resolution_due_at": at.isoformat(), "by": "feedback"},
    )


def test_reads_are_masked_and_a_full_read_needs_the_permission_a_purpose_and_is_audited(pair):
    web = pair.web
    number = register(web["intake"], 0)
    shown = web["intake"].get(f"/complaints/{number}", headers=SH_HANDLER).json()
    assert shown["customer"] == {
        "name_masked": "王**",
        "contact_masked": "138****5678",
        "reachable_by": ["phone", "email"],
        "member_tier": "gold",
    }
    listed = web["intake"].get("/complaints", headers=SH_HANDLER).json()["items"]
    assert PHONE not in json.dumps(listed) and "wang0@" not in json.dumps(listed)

    full = f"/complaints/{number}/customer"
    for headers in (ADMIN, BJ_HANDLER, bearer("A7001", "analyst", ["*"])):
        assert web["intake"].get(full, params={"purpose": "x"}, headers=headers).status_code == 403
    for params in ({}, {"purpose": "  "}):
        refused = web["intake"].get(full, params=params, headers=SH_HANDLER)
        assert (refused.status_code, list(refused.json()["fields"])) == (422, ["purpose"])
    read = web["intake"].get(
        full, params={"purpose": "call back about the refund"}, headers={**SH_HANDLER, "X-Request-Id": "req-42"}
    )
    assert read.status_code == 200, read.text
    assert read.json()["customer"] == customer(0)
    with pair.rpc(LEGAL) as rpc:
        assert rpc.intake.complaint_customer(number, {"purpose": "legal claim 2026-17"})["customer"]["phone"] == PHONE
        logged = rpc.intake.audit_log({"mall_id": "sh-xujiahui"})

    assert logged["total"] == 2
    newest, first = logged["items"]
    assert (first["user"], first["role"], first["number"], first["purpose"], first["request_id"]) == (
        "E3501",
        "handler",
        number,
        "call back about the refund",
        "req-42",
    )
    assert (newest["user"], newest["role"], newest["purpose"]) == ("L0001", "legal", "legal claim 2026-17")
    assert newest["request_id"] and newest["at"] >= first["at"]
    by_user = web["intake"].get("/audit", params={"user": "E3501"}, headers=ADMIN).json()
    assert [i["purpose"] for i in by_user["items"]] == ["call back about the refund"]
    assert web["intake"].get("/audit", params={"since": newest["at"]}, headers=ADMIN).json()["total"] == 1
    assert (
        web["intake"].get("/audit", params={"per_page": 1, "page": 2}, headers=ADMIN).json()["items"][0]["user"]
        == "E3501"
    )
    # the audit is for legal and admins, of their own malls
    assert web["intake"].get("/audit", headers=SH_HANDLER).status_code == 403
    assert web["intake"].get("/audit", params={"mall_id": "bj-chaoyang"}, headers=LEGAL).status_code == 403
    assert web["intake"].get("/audit", params={"since": "yesterday"}, headers=ADMIN).status_code == 422


def test_free_text_is_masked_in_every_read_and_whole_only_in_the_audited_read(pair):
    intake = pair.web["intake"]
    number = intake.post(
        "/complaints",
        headers=WECHAT_KEY,
        json=desk_complaint(
            channel="wechat", channel_ref="wx-told-1", customer={"name": "王女士", "phone": PHONE}, **TOLD
        ),
    ).json()["number"]
    assert shows_none_of(intake.get(f"/complaints/{number}", headers=WECHAT_KEY).json())  # even the channel's answer
    # an admin, a regional manager, a channel key, and a handler too: every ordinary read is masked
    for reader in (ADMIN, REGIONAL, WECHAT_KEY, SH_HANDLER):
        shown = intake.get(f"/complaints/{number}", headers=reader).json()
        assert {k: shown[k] for k in TOLD_MASKED} == TOLD_MASKED, reader
        listed = intake.get("/complaints", params={"mall_id": "sh-xujiahui"}, headers=reader).json()["items"]
        assert [c["description"] for c in listed] == [TOLD_MASKED["description"]] and shows_none_of(listed)
    with pair.rpc(ADMIN) as rpc:
        assert shows_none_of(rpc.intake.get_complaint(number))
        assert shows_none_of(rpc.intake.list_complaints({"mall_id": "sh-xujiahui"}))
    assert intake.get("/audit", headers=ADMIN).json()["total"] == 0  # nothing whole was read

    # the text as told comes with the customer, from the audited read of those with customer.contact
    for refused in (ADMIN, REGIONAL, WECHAT_KEY):
        assert intake.get(f"/complaints/{number}/customer", params={"purpose": "x"}, headers=refused).status_code == 403
    full = intake.get(
        f"/complaints/{number}/customer", params={"purpose": "call back on 13912345678 (refund)"}, headers=SH_HANDLER
    ).json()
    assert {k: full[k] for k in TOLD} == TOLD and full["customer"]["name"] == "王女士"
    [audited] = intake.get("/audit", headers=ADMIN).json()["items"]
    assert (audited["id"], audited["user"], audited["number"]) == (full["audit_id"], "E3501", number)
    assert audited["purpose"] == "call back on [phone] (refund)"  # the log is read like any text


def test_retention_anonymises_what_closed_long_enough_ago_once_and_the_full_read_is_then_gone(
    pair, resolution_now, mongo_uri, tmp_path
):
    web = pair.web
    intake, now = pair.containers["intake"], utc_now()
    old, recent, reopened_later = (register(web["intake"], i) for i in (1, 2, 3))
    assert (
        web["intake"]
        .get(f"/complaints/{old}/customer", params={"purpose": "refund call"}, headers=SH_HANDLER)
        .status_code
        == 200
    )
    closed(intake, old, months_before(now, 25))
    closed(intake, recent, months_before(now, 1))
    # a closing and the reopening after it, delivered in the wrong order: the reopening stands
    reopened(intake, reopened_later, months_before(now, 25) + timedelta(days=3))
    closed(intake, reopened_later, months_before(now, 25))
    closed(intake, old, months_before(now, 25))  # a redelivery
    complaint = lambda n: web["intake"].get(f"/complaints/{n}").json()  # noqa: E731
    assert all(complaint(n).get("closed_at") for n in (old, recent))
    db = pair.db("intake")
    assert db.complaints.find_one({"_id": reopened_later}).get("case_state") == "reopened"

    # an incident reported, handled and communicated 26 months ago (resolution's clock)
    incident = (
        web["resolution"]
        .post(
            "/incidents",
            headers=SH_HANDLER,
            json={
                "mall_id": "sh-xujiahui",
                "type": "injury",
                "occurred_at": (months_before(now, 26) - timedelta(days=1)).isoformat(),
                "place": {"area": "一楼生鲜区"},
                "description": "李先生在生鲜区滑倒，电话13900001111",
                "customer": {"name": "李先生", "phone": "13900001111"},
                "suggested_handling": "陪同就医",
            },
        )
        .json()["number"]
    )
    for action, who, body in (
        ("verification", SH_MANAGER, {"confirmed": True, "note": "CCTV"}),
        ("agreement", staff("R7001"), {"plan": "赔偿800元", "agreed": True, "via": "phone"}),
        ("handling", staff("R7001"), {"outcome": "covered", "compensation": "800", "improvements": ["mats"]}),
        ("communication", staff("R7001"), {"via": "phone", "note": "李先生已知悉"}),
    ):
        assert web["resolution"].post(f"/incidents/{incident}/{action}", json=body, headers=who).status_code == 200
    resolution_now["at"] = now

    # a dry run by command counts and changes nothing
    config = tmp_path / "intake.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "MONGO_URI": mongo_uri,
                "MONGO_DATABASE": intake.config["MONGO_DATABASE"],
                "MALLCARE": {"POLICY_DIR": str(ROOT / "deploy" / "policy")},
            }
        )
    )
    before = list(db.complaints.find({}, {"outbox": 0}).sort("_id"))
    dry = subprocess.run(
        [sys.executable, "-m", "intake.retention", "--dry-run", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert (json.loads(dry.stdout)["candidates"], json.loads(dry.stdout)["anonymised"]) == (1, 0)
    assert list(db.complaints.find({}, {"outbox": 0}).sort("_id")) == before

    # only the admin runs it; then the complaint closed 25 months ago is anonymised, the others not
    assert web["intake"].post("/retention/run", json={}, headers=LEGAL).status_code == 403
    assert web["intake"].post("/retention/run", json={"dry_run": "maybe"}, headers=ADMIN).status_code == 422
    run = web["intake"].post("/retention/run", json={}, headers=ADMIN).json()
    assert (run["candidates"], run["anonymised"], run["months"], run["by"]) == (1, 1, 24, "A0001")
    gone = complaint(old)
    assert gone["anonymised_at"] and gone["customer"] == {
        "name_masked": "[anonymised]",
        "contact_masked": "[anonymised]",
        "reachable_by": [],
        "member_tier": "gold",
    }
    stored = db.complaints.find_one({"_id": old})
    text = json.dumps(stored, ensure_ascii=False, default=str)
    assert "13812345679" not in text and "wang1@" not in text and "王女士" not in text
    assert (stored["mall_id"], stored["channel"], stored["anger_score"], stored["status"]) == (
        "sh-xujiahui",
        "desk",
        4,
        "registered",
    )
    for kept in (recent, reopened_later):
        assert complaint(kept).get("anonymised_at") is None and complaint(kept)["customer"]["name_masked"] == "王**"

    # a second run (the hourly sweep) changes nothing; the full read answers 410
    snapshot = list(db.complaints.find().sort("_id"))
    with entrypoint_hook(intake, "retention_sweep") as sweep:
        sweep()
    assert list(db.complaints.find().sort("_id")) == snapshot
    runs = list(db.retention_runs.find().sort("at"))
    assert [(r["by"], r["dry_run"], r["anonymised"]) for r in runs] == [
        (runs[0]["by"], True, 0),
        ("A0001", False, 1),
        ("timer", False, 0),
    ]
    assert runs[0]["by"].startswith("command:")
    answer = web["intake"].get(f"/complaints/{old}/customer", params={"purpose": "refund call"}, headers=SH_HANDLER)
    assert (answer.status_code, answer.json()["error"]) == (410, "GONE")
    audited = web["intake"].get("/audit", headers=ADMIN).json()
    assert [(i["number"], i["user"]) for i in audited["items"]] == [(old, "E3501")]  # the 410 read is no read

    # resolution: the incident that finished 26 months ago loses its customer, once
    first = web["resolution"].post("/retention/run", json={}, headers=ADMIN).json()
    again = web["resolution"].post("/retention/run", json={}, headers=ADMIN).json()
    assert (first["incident_candidates"], first["incidents_anonymised"]) == (1, 1)
    assert (again["incident_candidates"], again["incidents_anonymised"]) == (0, 0)
    report = web["resolution"].get(f"/incidents/{incident}", headers=SH_HANDLER).json()
    assert report["anonymised_at"] and "13900001111" not in json.dumps(report) and report["type"] == "injury"
    answer = web["resolution"].get(f"/incidents/{incident}/customer", params={"purpose": "x"}, headers=SH_HANDLER)
    assert answer.status_code == 410


def test_what_staff_and_customers_write_on_cases_incidents_and_revisits_is_masked_in_every_read(system):
    web = system.web
    written = ("13911112222", "li.si@example.com", "11010119900307123X")
    # a case's finding, note and rectification task with a phone, an e-mail and an ID number
    with system.case_opened():
        number = (
            web["intake"]
            .post("/complaints", json=desk_complaint(channel_ref="desk-notes-1"), headers=SH_DESK)
            .json()["number"]
        )
    for action, body in (
        ("findings", {"source": "cctv", "summary": "顾客留下新号码13911112222"}),
        ("notes", {"kind": "internal", "text": "顾客要求发邮件到 li.si@example.com"}),
        (
            "rectifications",
            {"kind": "training", "owner_id": "E3501", "description": "小票上不得写顾客身份证11010119900307123X"},
        ),
    ):
        answer = web["resolution"].post(f"/cases/{number}/{action}", json=body, headers=SH_HANDLER)
        assert answer.status_code == 200 and shows_none_of(answer.json(), written), answer.text
    for reader in (ADMIN, REGIONAL, SH_HANDLER):
        case = web["resolution"].get(f"/cases/{number}", headers=reader).json()
        assert shows_none_of(case, written) and case["findings"][0]["summary"] == "顾客留下新号码[phone]"
        assert case["timeline"][-2]["detail"]["text"] == "顾客要求发邮件到 [e-mail]"
        assert case["rectifications"][-1]["description"] == "小票上不得写顾客身份证[ID number]"
        assert shows_none_of(web["resolution"].get(f"/cases/{number}/timeline", headers=reader).json(), written)
        tasks = web["resolution"].get("/rectifications", params={"mall_id": "sh-xujiahui"}, headers=reader).json()
        assert "小票上不得写顾客身份证[ID number]" in [t["description"] for t in tasks["items"]] and shows_none_of(
            tasks, written
        )

    # an incident: the report names its customer, whom every read masks by name too
    incident = (
        web["resolution"]
        .post(
            "/incidents",
            headers=SH_HANDLER,
            json={
                "mall_id": "sh-xujiahui",
                "type": "injury",
                "occurred_at": "2026-11-01T10:00:00+08:00",
                "place": {"area": "一楼生鲜区"},
                "description": "李先生在生鲜区滑倒，电话13900001111",
                "customer": {"name": "李先生", "phone": "13900001111"},
                "suggested_handling": "陪同李先生就医",
            },
        )
        .json()
    )
    assert (incident["description"], incident["suggested_handling"]) == (
        "[name]在生鲜区滑倒，电话[phone]",
        "陪同[name]就医",
    )
    verified = (
        web["resolution"]
        .post(
            f"/incidents/{incident['number']}/verification",
            headers=SH_MANAGER,
            json={"confirmed": True, "note": "李先生的监控录像已调取"},
        )
        .json()
    )
    assert verified["verification"]["note"] == "[name]的监控录像已调取"
    for reader in (ADMIN, REGIONAL):
        assert shows_none_of(
            web["resolution"].get(f"/incidents/{incident['number']}", headers=reader).json(), ("李先生", "13900001111")
        )
        listed = web["resolution"].get("/incidents", params={"mall_id": "sh-xujiahui"}, headers=reader).json()
        assert shows_none_of(listed, ("李先生", "13900001111"))
    full = (
        web["resolution"]
        .get(f"/incidents/{incident['number']}/customer", params={"purpose": "hospital visit"}, headers=SH_HANDLER)
        .json()
    )
    assert (full["description"], full["suggested_handling"]) == (
        "李先生在生鲜区滑倒，电话13900001111",
        "陪同李先生就医",
    )

    # a revisit's answer: the customer's comment and the caller's note
    with system.case_opened():
        settled = (
            web["intake"]
            .post(
                "/complaints",
                headers=SH_DESK,
                json=desk_complaint(channel_ref="desk-notes-2", description="买的蓝莓也发霉了"),
            )
            .json()["number"]
        )  # not a duplicate
    settle_at_desk(system, settled, SH_DESK)
    for attempt in (
        {"outcome": "no_answer", "note": "没接，已发邮件到 li.si@example.com"},
        {"outcome": "reached", "score": 5, "comment": "满意，有事打13911112222"},
    ):
        answered = web["feedback"].post(f"/revisits/{settled}-R1/attempts", headers=SH_HANDLER, json=attempt)
        assert answered.status_code == 200 and shows_none_of(answered.json(), written), answered.text
    for reader in (ADMIN, REGIONAL):
        revisit = web["feedback"].get(f"/revisits/{settled}-R1", headers=reader).json()
        assert revisit["answer"]["comment"] == "满意，有事打[phone]"
        assert revisit["attempts"][0]["note"] == "没接，已发邮件到 [e-mail]"


def test_a_whole_flow_leaves_the_raw_contact_in_no_log_and_no_other_service(system, caplog):
    caplog.set_level(logging.DEBUG, logger="mallcare_common")
    caplog.set_level(logging.INFO)  # what the services run at (config.yml LOGGING)
    web = system.web
    events = system.catch_all("intake", "triage", "resolution", "feedback", "analytics")  # every event published
    complaint = desk_complaint(
        channel_ref="desk-log-1",
        customer={"name": "王女士", "phone": PHONE, "email": EMAIL},
        description=f"王女士的草莓发霉了，请回电{PHONE}或发邮件{EMAIL}",
    )
    with system.case_opened():
        number = web["intake"].post("/complaints", json=complaint, headers=SH_DESK).json()["number"]
    settle_at_desk(system, number, SH_DESK)
    assert (
        web["intake"]
        .get(f"/complaints/{number}/customer", params={"purpose": "revisit call"}, headers=SH_HANDLER)
        .json()["customer"]["email"]
        == EMAIL
    )
    web["intake"].post("/complaints", json={**complaint, "customer": {"phone": "not a phone", "email": EMAIL}})
    wait_for(lambda: web["analytics"].get(f"/clocks/{number}").ok)

    logged = "\n".join(record.getMessage() + str(vars(record)) + (record.exc_text or "") for record in caplog.records)
    assert "GET /complaints/<string:number>/customer 200" in logged  # the capture saw the flow, reads included
    for raw in (PHONE, EMAIL, "王女士"):
        assert raw not in logged, raw

    published = [event for queue in events.values() for event in drain(queue)]
    assert {"complaint_registered", "complaint_triaged", "case_resolved", "revisit_scheduled"} <= {
        event["event_type"] for event in published
    }
    text = json.dumps(published, ensure_ascii=False)
    assert PHONE not in text and EMAIL not in text and "王女士" not in text

    for name in system.containers:
        db = system.db(name)
        for collection in db.list_collection_names():
            if (name, collection) == ("intake", "complaints"):
                continue  # the record itself (its outbox's events were read off the broker above)
            text = json.dumps(list(db[collection].find()), ensure_ascii=False, default=str)
            assert PHONE not in text and EMAIL not in text and "王女士" not in text, (name, collection)
