"""R5.1-R5.5, R2.2 on the real broker and store: a generated month of complaints at two
malls, published as the other services publish them, gives the monthly report worked
out independently from the generator's plan; the SLA figures come from analytics' own
clocks (an injected clock first before every deadline, then past them all); CSV and
HTML render it; a redelivered event counts once; the rebuild from the stored events
gives the same report; improvement actions are recorded, validated, listed and done."""

import codecs
import csv
import io
import math
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from nameko.testing.services import entrypoint_hook

from analytics.rebuild import rebuild
from mallcare_common.contracts import EVENT_TYPES
from mallcare_common.malls import load_registry_file
from tests.helpers import POLICY_DIR, bearer, handled as took, wait_for, staff as as_staff
from tests.unit.analytics.test_reports import acknowledged, answer, escalated, event, registered, resolved, triaged

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
BEFORE, AFTER = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2027, 1, 10, tzinfo=timezone.utc)
A, B = "sh-xujiahui", "bj-chaoyang"
CATEGORIES = ("product.quality_defect", "service.attitude", "environment.facility", "product.expired")
AREAS = ("fresh produce", "level 2")
DEPARTMENTS = {
    "product.quality_defect": "merchant_relations",
    "product.expired": "merchant_relations",
    "service.attitude": "customer_service",
    "environment.facility": "property",
}
HOURS = (2, 10, 30, 60, 200)  # received -> resolved; first response is due in 48 h, resolution in 168 h
H = timedelta(hours=1)


def plan():
    """40 complaints in November (24 at Xujiahui, 16 at Chaoyang), each as a dict of facts."""
    complaints = []
    for i in range(40):
        c = {
            "no": f"N{i:02d}",
            "mall": A if i % 5 < 3 else B,
            "received": START + i * 17 * H,
            "category": CATEGORIES[i % 4],
            "area": AREAS[i % 2],
            "merchant": f"T-{i % 3}",
            "acknowledged": i % 7 != 0,
            "triaged": i % 10 != 9,
            "risk": "high" if i % 8 == 0 else "low",
            "escalated_to": {0: "operations_director", 4: "supervisor"}.get(i % 8),
            "hours": None if i % 6 == 5 else HOURS[i % 5],
            "owner": f"E{100 + i % 4}",
        }
        if not c["triaged"]:  # never classified, never handled
            c["category"], c["hours"] = "unclassified", None
        if c["hours"] is None:
            c["escalated_to"] = None
        if c["hours"] is not None and i % 3 == 0:
            c["answers"] = [(True, [])] if i % 2 == 0 else [(False, ["slow"] if i % 4 == 1 else ["attitude"])]
            if i % 9 == 0:  # dissatisfied first, satisfied at the next revisit: both answers count
                c["answers"] = [(False, ["compensation_unclear"]), (True, [])]
        else:
            c["answers"] = []
        complaints.append(c)
    complaints[1]["corrected_to"] = "product.expired"  # graded, then corrected (counts move)
    return complaints


def envelopes(c):
    mall, number, at = c["mall"], c["no"], c["received"].astimezone(timezone.utc)
    out = [registered(number, at, area=c["area"], merchant=c["merchant"], mall=mall)]
    if c["acknowledged"]:
        out.append(acknowledged(number, at + timedelta(minutes=20), at + H, mall=mall))
    if c["triaged"]:
        first = c["category"] if "corrected_to" not in c else "service.attitude"
        out.append(
            triaged(number, at, first, risk=c["risk"], department=DEPARTMENTS[first], owner=c["owner"], mall=mall)
        )
        if "corrected_to" in c:
            out.append(
                triaged(
                    number,
                    at + H,
                    c["corrected_to"],
                    risk=c["risk"],
                    department=DEPARTMENTS[c["corrected_to"]],
                    owner=c["owner"],
                    mall=mall,
                    kind="complaint_corrected",
                    field="category",
                    old=first,
                    new=c["corrected_to"],
                    by="E3011",
                    reason="regraded",
                )
            )
        if c["escalated_to"]:
            out.append(escalated(number, at + H, c["escalated_to"], mall=mall))
        if c["hours"] is not None:
            out.append(resolved(number, at + c["hours"] * H, mall=mall))
        for k, (happy, reasons) in enumerate(c["answers"]):
            out.append(answer(number, at + (c["hours"] + 5 + k) * H, happy, reasons, mall=mall))
    return out


def expected_report(complaints, mall):
    """The monthly report's figures from the plan, counted directly (not with reports.py)."""
    mine = [c for c in complaints if c["mall"] == mall]
    done = [c for c in mine if c["hours"] is not None]
    category = lambda c: c.get("corrected_to", c["category"])  # noqa: E731
    answered = [a for c in mine for a in c["answers"]]
    sla, overdue = {}, 0
    for c in mine:
        department = DEPARTMENTS.get(category(c), "none")
        ends = [("desk", department, c["acknowledged"])]
        if c["triaged"]:
            ends += [
                (c["owner"], department, c["hours"] is not None and c["hours"] <= 48),
                (c["owner"], department, c["hours"] is not None and c["hours"] <= 168),
            ]
        overdue += any(not met for _, _, met in ends)
        for owner, dept, met in ends:  # the desk's acknowledgement is a channel's, not a handler's
            for key in (
                ("departments", dept),
                ("services", "acknowledgement", owner) if owner == "desk" else ("handlers", owner),
            ):
                sla.setdefault(key, Counter())["met" if met else "breached"] += 1
    hours = sorted(c["hours"] for c in done)
    bounds = (1, 4, 8, 24, 48, 72, 168, 336, 720)
    p90 = next(b for b in bounds if b >= hours[math.ceil(0.9 * len(hours)) - 1])
    high = [c for c in mine if c["risk"] == "high" and c["triaged"]]
    problems = Counter((category(c), mall, c["area"], c["merchant"]) for c in mine)
    return {
        "counts": {
            "received": len(mine),
            "registered": len(mine),
            "rejected": 0,
            "resolved": len(done),
            "open": len(mine) - len(done),
            "reopened": 0,
        },
        "categories": Counter(category(c) for c in mine),
        "handling": (len(done), round(sum(hours) / len(hours), 2), p90),
        "overdue": overdue,
        "satisfaction": (
            len(answered),
            sum(1 for happy, _ in answered if happy),
            Counter(r for happy, reasons in answered if not happy for r in reasons),
        ),
        "top": sorted(problems.items(), key=lambda kv: (-kv[1], kv[0]))[:10],
        "merchants": Counter(c["merchant"] for c in mine),
        "sla": {key: (n["met"], n["breached"]) for key, n in sla.items()},
        "management": (
            len(high),
            sum(1 for c in high if c["escalated_to"] == "operations_director"),
            sum(1 for c in mine if c["escalated_to"] == "operations_director"),
        ),
    }


def figures(report):
    """The same figures read from a served report."""
    return {
        "counts": report["counts"],
        "categories": Counter({r["category"]: r["count"] for r in report["categories"]}),
        "handling": (
            report["handling_time"]["resolved"],
            report["handling_time"]["average_hours"],
            report["handling_time"]["p90_hours"],
        ),
        "overdue": report["overdue"]["count"],
        "satisfaction": (
            report["satisfaction"]["answered"],
            report["satisfaction"]["satisfied"],
            Counter({r["reason"]: r["count"] for r in report["satisfaction"]["reasons"]}),
        ),
        "top": [
            ((r["category"], r["mall_id"], r["area"], r["merchant_id"]), r["count"]) for r in report["top_problems"]
        ],
        "merchants": Counter({r["merchant_id"]: r["complaints"] for r in report["merchants"]}),
        "sla": {
            **{("departments", r["department"]): (r["met"], r["breached"]) for r in report["sla"]["departments"]},
            **{("handlers", r["handler"]): (r["met"], r["breached"]) for r in report["sla"]["handlers"]},
            **{("services", r["clock"], r["owner"]): (r["met"], r["breached"]) for r in report["sla"]["services"]},
        },
        "management": (
            report["management"]["high_risk"],
            report["management"]["high_risk_reached_directors"],
            report["management"]["reached_directors"],
        ),
    }


@pytest.fixture
def now():
    """analytics' clock, set by the test."""
    return {"at": BEFORE}


@pytest.fixture
def system(services, now):
    """analytics alone, sweeping every 0.2 s on the test's clock; the events come from the test."""
    system = services(
        "analytics", clocks={"analytics": lambda: now["at"]}, settings={"analytics": {"SLA_TICK_SECONDS": 0.2}}
    )
    system.catch_all("analytics")  # a subscriber for the SLA events analytics publishes
    return system


def publish(system, envelope):
    system.dispatch(EVENT_TYPES[envelope["event_type"]].source, envelope["event_type"], envelope)


def handled(system, envelope):
    """Waits until analytics has handled this very event: an earlier one's worker may finish
    first (analytics handles several at once), so the next worker to finish is not enough."""
    return took(system.containers["analytics"], f"handle_{envelope['event_type']}", event_id=envelope["event_id"])


def report(system, period="2026-11", mall_id=A, **params):
    response = system.web["analytics"].get(
        f"/reports/{'monthly' if '-Q' not in period else 'quarterly'}",
        params={"period": period, **({"mall_id": mall_id} if mall_id else {}), **params},
    )
    assert response.status_code == 200, response.text
    return response.json() if not params else response


def settles(fetch, expected, timeout=60):
    try:
        wait_for(lambda: fetch() == expected, timeout)
    except AssertionError:
        assert fetch() == expected


def test_a_generated_month_gives_the_hand_computed_report_and_the_rebuild_reproduces_it(system, now):
    complaints = plan()
    sent = [e for c in complaints for e in envelopes(c)]
    outside = registered("OUT", datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc))  # 1 Dec, 00:30 in Shanghai
    rejected = event(
        "complaint_rejected",
        "REJ",
        {
            "channel": "web",
            "received_at": START.isoformat(),
            "reason": "duplicate",
            "detail": "d",
            "duplicate_of": "N00",
            "policy_version": "v",
        },
        START.astimezone(timezone.utc),
    )
    for envelope in [*sent, outside, rejected]:
        publish(system, envelope)
    wait_for(lambda: system.db("analytics").events.count_documents({"applied": True}) == len(sent) + 2, timeout=60)

    # past every deadline: the sweep breaches the clocks still running
    now["at"] = AFTER
    expected = {mall: expected_report(complaints, mall) for mall in (A, B)}
    expected[A]["counts"] = {**expected[A]["counts"], "received": 25, "rejected": 1}
    settles(lambda: figures(report(system)), expected[A])
    settles(lambda: figures(report(system, mall_id=B)), expected[B])

    # by hand: Xujiahui has i % 5 < 3 (24 complaints), unresolved where i % 6 == 5 (5, 11, 17, 35), all
    # triaged (the untriaged, i % 10 == 9, are at Chaoyang); plus the rejected one
    mine = report(system)
    assert mine["counts"] == {"received": 25, "rejected": 1, "registered": 24, "resolved": 20, "open": 4, "reopened": 0}
    # Xujiahui's resolved took 2 h (6), 10 h (7) or 30 h (7): 292 h / 20, the 18th of 20 is in <= 48 h
    assert (mine["handling_time"]["average_hours"], mine["handling_time"]["p90_hours"]) == (14.6, 48)
    assert mine["satisfaction"]["target"] == 0.85
    chain = report(system, mall_id=None)
    assert chain["malls"] == [B, A] and chain["counts"]["received"] == 41
    assert report(system, "2026-12", mall_id=None)["counts"]["received"] == 1  # the one received on 1 December
    quarter = report(system, "2026-Q4", mall_id=None)
    assert quarter["counts"]["received"] == 42 and quarter["kind"] == "quarterly"

    # a redelivered answer (same event id) counts once
    with took(system.containers["analytics"], "handle_customer_satisfied"):
        publish(system, next(e for e in sent if e["event_type"] == "customer_satisfied"))
    assert report(system) == mine

    # CSV (Excel's UTF-8), the spreadsheet and the page, in the reader's language
    sheet = report(system, format="csv")
    assert sheet.headers["Content-Type"].startswith("text/csv") and sheet.content.startswith(codecs.BOM_UTF8)
    assert 'filename="mallcare-sh-xujiahui-2026-11.csv"' in sheet.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert rows[0] == ["期间", "范围", "部分", "项目", "指标", "数值"]
    assert ["2026-11", "上海徐家汇店", "概况", "", "受理", "25"] in rows
    book = openpyxl.load_workbook(io.BytesIO(report(system, format="xlsx", lang="en").content))
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    assert (summary["Scope"], summary["Received"], summary["Resolved"]) == ("Shanghai Xujiahui", 25, 20)
    assert summary["Average (hours)"] == 14.6
    whole = openpyxl.load_workbook(io.BytesIO(report(system, "2026-Q4", mall_id=None, format="xlsx").content))
    assert {row[0]: row[1] for row in whole["概况"].iter_rows(values_only=True)}["受理"] == 42
    page = system.web["analytics"].get("/reports/monthly.html", params={"period": "2026-11", "mall_id": A})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<svg" in page.text and "上海徐家汇店" in page.text and "<script" not in page.text
    english = system.web["analytics"].get(
        "/reports/monthly.html", params={"period": "2026-11", "mall_id": A, "lang": "en"}
    )
    assert "Shanghai Xujiahui" in english.text and "Share by category" in english.text
    assert system.web["analytics"].get("/reports/quarterly.html", params={"period": "2026-Q4"}).status_code == 200

    # the rebuild from the stored events (the clocks only read) gives the same reports
    outboxes = sorted((c["_id"], len(c.get("outbox", []))) for c in system.db("analytics").clocks.find())
    counts = rebuild(system.db("analytics"), load_registry_file(POLICY_DIR / "malls.yml"))
    assert counts["events"] == len(sent) + 2 and counts["skipped_without_payload"] == 0
    assert report(system) == mine and report(system, mall_id=None) == chain
    assert report(system, "2026-Q4", mall_id=None) == quarter
    assert sorted((c["_id"], len(c.get("outbox", []))) for c in system.db("analytics").clocks.find()) == outboxes
    assert not system.db("analytics").events.find_one({"payload.customer": {"$exists": True}})


def test_bad_report_queries_are_refused_with_field_messages(system):
    web = system.web["analytics"]
    for params, field in (
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-Q4"}, "period"),
        ({"period": "2026-11", "mall_id": "nowhere"}, "mall_id"),
        ({}, "period"),
        ({"period": "2026-11", "format": "pdf"}, "format"),
        ({"period": "2026-11", "lang": "fr"}, "lang"),
    ):
        response = web.get("/reports/monthly", params=params)
        assert response.status_code == 422 and field in response.json()["fields"], (params, response.text)


def test_improvement_actions_are_recorded_validated_listed_reported_and_done(system, now):
    web, now["at"] = system.web["analytics"], datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
    body = {
        "mall_id": A,
        "problem": {"summary": "mouldy fruit at T-17", "category": "product.quality_defect", "merchant_id": "T-17"},
        "whys": ["mouldy on sale", "not checked at delivery", "no receiving standard"],
        "root_cause": "no cold-chain receiving standard",
        "action": "add receiving checks",
        "owner_id": "E3091",
        "due_date": "2026-12-15",
    }
    refused = web.post("/actions", json={**body, "whys": [], "due_date": "soon"}, headers=as_staff("E3901"))
    assert refused.status_code == 422 and set(refused.json()["fields"]) == {"whys", "due_date"}
    assert web.post("/actions", json=body, headers={"Authorization": None}).status_code == 401
    assert web.post("/actions", json=body, headers=as_staff("E4091")).status_code == 403  # another mall's manager

    first = web.post("/actions", json=body, headers=as_staff("E3901"))
    assert first.status_code == 201, first.text
    late = web.post("/actions", json={**body, "due_date": "2026-11-20"}, headers=as_staff("E3901")).json()
    first = first.json()
    assert first["action_id"] == "SHXJH-IA-0001" and first["status"] == "open" and late["overdue"] is True

    listed = lambda **q: [a["action_id"] for a in web.get("/actions", params=q).json()["items"]]  # noqa: E731
    assert listed(mall_id=A, status="open") == [late["action_id"], first["action_id"]]
    assert listed(status="overdue") == [late["action_id"]]
    assert report(system)["actions"]["open"] == 2 and report(system)["actions"]["overdue"] == 1

    done = web.post(
        f"/actions/{first['action_id']}/done", json={"evidence": "checklist signed"}, headers=as_staff("E3091")
    )
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["done_by"] == "E3091"
    again = web.post(f"/actions/{first['action_id']}/done", json={"evidence": "x"}, headers=as_staff("E3091"))
    assert again.status_code == 409
    assert web.post("/actions/NOPE/done", json={"evidence": "x"}, headers=as_staff("E3091")).status_code == 404
    assert listed(mall_id=A, status="done") == [first["action_id"]]
    assert [a["action_id"] for a in report(system)["actions"]["items"]] == [late["action_id"]]


def test_the_live_report_shows_a_complaints_clocks_open_then_at_risk_then_breached(system, now):
    """Issue 9's live dashboard: GET /reports/live and the RPC read the clocks still running,
    as the injected clock moves past the at-risk points and the deadlines."""
    web, at = system.web["analytics"], datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    now["at"] = at
    live = lambda **q: web.get("/reports/live", params=q)  # noqa: E731
    before = live().json()
    assert before["open"] == 0 and before["at_risk_share"]["acknowledgement"] == 0.5

    publish(system, registered("LIVE1", at))  # acknowledgement due in 1 h: at risk at 30 min
    publish(system, registered("LIVE2", at, mall=B))  # acknowledged at once: no clock left running
    publish(system, acknowledged("LIVE2", at, at + H, mall=B))
    publish(system, triaged("LIVE1", at, "product.quality_defect"))  # first response in 48 h, resolution in 168 h
    wait_for(
        lambda: (
            system.db("analytics").events.count_documents(
                {"complaint_no": {"$in": ["LIVE1", "LIVE2"]}, "applied": True}
            )
            == 4
        )
    )

    def counts(mall_id=A, **q):
        body = live(**({"mall_id": mall_id} if mall_id else {}), **q).json()
        return (
            (body["open"], body["at_risk"], body["breached"]),
            {r["stage"]: (r["open"], r["at_risk"], r["breached"]) for r in body["by_stage"]},
        )

    settles(
        lambda: counts(),
        ((1, 0, 0), {"acknowledgement": (1, 0, 0), "first_response": (1, 0, 0), "resolution": (1, 0, 0)}),
    )
    now["at"] = at + 40 * timedelta(minutes=1)  # past half the acknowledgement time
    assert counts() == ((1, 1, 0), {"acknowledgement": (1, 1, 0), "first_response": (1, 0, 0), "resolution": (1, 0, 0)})
    now["at"] = at + 40 * H  # past 80% of 48 h; the acknowledgement is overdue
    assert counts() == ((1, 0, 1), {"acknowledgement": (1, 0, 1), "first_response": (1, 1, 0), "resolution": (1, 0, 0)})
    chain = live().json()
    assert chain["mall_id"] is None and chain["by_mall"][0] == {"mall_id": A, "open": 1, "at_risk": 0, "breached": 1}
    assert {r["mall_id"] for r in chain["by_mall"][1:]} == {B, "gz-tianhe"}  # every mall, nothing open
    assert all(r["open"] == 0 for r in chain["by_mall"][1:])
    assert chain["as_of"].startswith("2026-11-24T18:00")

    # acknowledged late: that clock stops; the first response is still at risk
    publish(system, acknowledged("LIVE1", at + 40 * H, at + H))
    settles(lambda: counts(), ((1, 1, 0), {"first_response": (1, 1, 0), "resolution": (1, 0, 0)}))
    assert counts(mall_id=B) == ((0, 0, 0), {})

    with entrypoint_hook(
        system.containers["analytics"], "live_report", context_data={"authorization": bearer()["Authorization"]}
    ) as live_rpc:
        assert live_rpc({"mall_id": A})["by_mall"] == [{"mall_id": A, "open": 1, "at_risk": 1, "breached": 0}]

    # access: report.read, in the caller's scope; a bad mall is a field error
    assert live(mall_id=A).status_code == 200
    assert web.get("/reports/live", params={"mall_id": B}, headers=as_staff("E3901")).status_code == 403
    assert web.get("/reports/live", headers=as_staff("E3901")).json()["mall_id"] == A  # their one mall
    assert web.get("/reports/live", params={"mall_id": A}, headers=as_staff("E3001")).status_code == 403  # handler
    assert live(mall_id="nowhere").status_code == 422


def test_a_systemic_pattern_proposes_one_improvement_action_that_a_person_adopts(system, now):
    """R2.2, R5.3: the first complaint triage flags systemic makes analytics propose an
    improvement action with the pattern, its count and the complaints that made it; the
    next ones of the window join it, a redelivery changes nothing; a person adopts it."""
    web, at = system.web["analytics"], datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
    now["at"] = at + 30 * H
    for i in range(1, 5):  # four expired-food complaints at the mall, below the threshold
        publish(system, registered(f"SYS{i}", at + i * H))
        publish(system, triaged(f"SYS{i}", at + i * H, "product.expired", recurrences=i))
    publish(system, registered("OTHER", at, mall=B))
    publish(system, triaged("OTHER", at, "product.expired", mall=B, recurrences=1))
    wait_for(lambda: system.db("analytics").complaints.count_documents({"category": "product.expired"}) == 5)
    assert web.get("/actions", params={"status": "proposed"}).json()["items"] == []

    fifth = triaged("SYS5", at + 5 * H, "product.expired", systemic=True, recurrences=5)
    publish(system, registered("SYS5", at + 5 * H))
    with handled(system, fifth):
        publish(system, fifth)
    with handled(system, fifth):
        publish(system, fifth)  # redelivered: still one proposal
    sixth = triaged("SYS6", at + 6 * H, "product.expired", systemic=True, recurrences=6)
    with handled(system, sixth):
        publish(system, sixth)

    [proposal] = web.get("/actions", params={"mall_id": A, "status": "proposed"}).json()["items"]
    assert proposal["status"] == "proposed" and proposal["created_by"] == "analytics"
    assert proposal["problem"]["category"] == "product.expired" and proposal["recurrences"] == 6
    assert proposal["complaint_nos"] == ["SYS1", "SYS2", "SYS3", "SYS4", "SYS5", "SYS6"]
    assert proposal["pattern_key"].startswith(f"{A}|-|product.expired|")
    assert report(system)["actions"]["proposed"] == 1
    assert (
        web.post(
            f"/actions/{proposal['action_id']}/done", json={"evidence": "x"}, headers=as_staff("E3091")
        ).status_code
        == 409
    )  # analysed first

    analysis = {
        "problem": {"summary": "expired food on sale"},
        "whys": ["expired yoghurt on the shelf", "no date check at shelving"],
        "root_cause": "no date check",
        "action": "daily date check per aisle",
        "owner_id": "E3091",
        "due_date": "2026-12-15",
    }
    unknown = web.post("/actions", headers=as_staff("E3901"), json={**analysis, "mall_id": A, "proposal_id": "NOPE-1"})
    assert unknown.status_code == 422 and "proposal_id" in unknown.json()["fields"], unknown.text
    adopted = web.post(
        "/actions", headers=as_staff("E3901"), json={**analysis, "mall_id": A, "proposal_id": proposal["action_id"]}
    )
    assert adopted.status_code == 201, adopted.text
    adopted = adopted.json()
    assert (adopted["action_id"], adopted["status"], adopted["complaint_nos"]) == (
        proposal["action_id"],
        "open",
        proposal["complaint_nos"],
    )
    assert report(system)["actions"]["proposed"] == 0 and report(system)["actions"]["open"] == 1
