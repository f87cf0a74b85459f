"""Monthly and quarterly reports (R5.1, R5.2, R5.4, R5.5) as plain functions.

A report never reads complaints. Each complaint has one read-model document
(`apply` folds an event into it, `apply_clock` a clock's final outcome); what a
complaint adds to the running tallies of its own month and quarter at its mall is
`contributions(doc)`, and each change to the document moves the tallies by
`delta(before, after)`. So a correction of the category or the department, a
second answer or a reopening moves the counts from the old figure to the new one,
and every update commutes: events may come in any order. A report sums the tally
documents of one period (one per mall) with `build_report`.
"""

import copy
import math
from collections import Counter
from datetime import timezone

from .clocks import owner_kind

SATISFACTION_TARGET = 0.85
DIRECTORS = ("operations_director", "legal")
# Clocks of the handling itself: a breach of one of them makes the complaint overdue.
# The revisit and rectification clocks count in SLA compliance but not here.
HANDLING_CLOCKS = (
    "acknowledgement",
    "first_response",
    "resolution",
    "review_meeting",
    "re_review",
    "execution",
    "promised",
)  # a broken promise (R3.2) makes the complaint late for the customer
# not the adverse events' clocks; a merchant's reply (R7.5) is the merchant's record, not our lateness
COMPLAINT_CLOCKS = HANDLING_CLOCKS + ("rectification", "revisit", "merchant_reply")
# Received -> first resolution, in hours: the upper bounds of the histogram buckets
# (the last bucket, None, is everything over 30 days). p90 is reported as the bound of
# the bucket that holds the 90th percentile.
HANDLING_BUCKETS = (1, 4, 8, 24, 48, 72, 168, 336, 720, None)
# Payload fields that may carry personal data: never kept in `events` (R1 privacy).
PERSONAL = ("customer", "description", "demands", "staff_involved", "order_no", "channel_ref", "contact_masked")
TOP_PROBLEMS = 10


# --- periods --------------------------------------------------------------------------------


def periods_of(received_at, zone):
    """(month, quarter, day) of a complaint, in its mall's time zone."""
    local = received_at.astimezone(zone)
    return f"{local:%Y-%m}", f"{local.year}-Q{(local.month - 1) // 3 + 1}", f"{local:%Y-%m-%d}"


def months_of(period):
    """The months of a period: 2026-11 itself, 2026-Q4 its three, 2026-H2 its six (R7.13)."""
    kind = kind_of(period)
    if kind == "monthly":
        return [period]
    year, number = period[:4], int(period[-1])
    size = 3 if kind == "quarterly" else 6
    return [f"{year}-{m:02d}" for m in range(size * (number - 1) + 1, size * number + 1)]


def zone_of(malls, mall_id):
    """The mall's time zone from the registry (UTC for a mall it does not know)."""
    mall = malls.get(mall_id)
    return mall.calendar.zone if mall else timezone.utc


def kind_of(period):
    """'monthly' for 2026-11, 'quarterly' for 2026-Q4, 'half_year' for 2026-H2; ValueError otherwise."""
    year, _, part = period.partition("-")
    if len(year) == 4 and year.isdigit():
        if part.startswith("Q") and part[1:] in ("1", "2", "3", "4"):
            return "quarterly"
        if part in ("H1", "H2"):
            return "half_year"
        if part.isdigit() and len(part) == 2 and 1 <= int(part) <= 12:
            return "monthly"
    raise ValueError(f"{period!r} is neither a month (2026-11), a quarter (2026-Q4) nor a half year (2026-H2)")


def summed(tallies):
    """Tally documents of several periods as one per mall (the half year's six months, R7.13)."""
    by_mall = {}
    for tally in tallies:
        _add_into(by_mall.setdefault(tally["mall_id"], {}), tally.get("counts", {}))
    return [{"mall_id": mall, "counts": counts} for mall, counts in sorted(by_mall.items())]


def kept_payload(payload):
    return {k: v for k, v in payload.items() if k not in PERSONAL}


# --- the read model -------------------------------------------------------------------------


def _later(doc, stamp_field, at, event_id):
    """True when (at, event_id) is not older than what set the fields stamped by `stamp_field`."""
    seen = doc.get(stamp_field)
    return seen is None or (at, event_id) >= (seen["at"], seen["event_id"])


def apply(doc, event, zone):
    """The complaint's read-model document after `event` (a new dict; `doc` is untouched).
    `zone`: the mall's time zone. Times go in with $min/$max semantics and labels with
    last-writer-wins by occurred_at, so the result does not depend on arrival order."""
    doc = copy.deepcopy(doc)
    kind, p, at, eid = event["event_type"], event["payload"], event["occurred_at"], event["event_id"]
    doc.setdefault("mall_id", event["mall_id"])
    if "received_at" in p and kind in ("complaint_registered", "complaint_rejected", "complaint_triaged"):
        doc["received_at"] = p["received_at"]
        doc["month"], doc["quarter"], doc["day"] = periods_of(p["received_at"], zone)
        doc.setdefault("channel", p["channel"])
    if kind == "complaint_registered":
        doc["registered"] = True
        doc["channel"] = p["channel"]
        doc["area"] = p["location"].get("area")
        doc["merchant_id"] = p["location"].get("merchant_id") or doc.get("merchant_id")
    elif kind == "complaint_rejected":
        doc["rejected"] = True
    elif kind in ("complaint_triaged", "complaint_corrected"):
        if kind == "complaint_triaged":
            doc["registered"] = True  # triage only grades registered complaints
            doc.setdefault("merchant_id", p["merchant_id"])
        if _later(doc, "graded", at, eid):
            doc["category"], doc["risk_level"] = p["category"], p["risk_level"]
            doc["graded"] = {"at": at, "event_id": eid}
        if _later(doc, "routed", at, eid):
            doc["department"], doc["owner_id"] = p["department"], p["owner_id"]
            doc["routed"] = {"at": at, "event_id": eid}
    elif kind == "complaint_reassigned":
        if _later(doc, "routed", at, eid):
            doc["department"], doc["owner_id"] = p["department"], p["to_owner_id"]
            doc["routed"] = {"at": at, "event_id": eid}
    elif kind == "case_resolved":
        doc["resolved_at"] = min(at, doc.get("resolved_at") or at)
        doc["resolved_round"] = max(p["round"], doc.get("resolved_round", 0))
        # what each round's resolution gave the customer (R7.11: the cost of complaints), once per round
        doc.setdefault("remedies", {})[str(p["round"])] = {
            "fen": p["total_fen"],
            "types": sorted(set(p["remedy_types"])),
            "spot": p["spot"],
        }
    elif kind == "case_reopened":
        doc["reopened_round"] = max(p["round"], doc.get("reopened_round", 0))
        if _later(doc, "closing", at, eid):  # open again: neither closed nor closed without an answer
            doc["closed"], doc["closed_without_answer"], doc["closing"] = False, False, {"at": at, "event_id": eid}
    elif kind == "case_closed":
        if _later(doc, "closing", at, eid):  # the last closing says whether the customer could not be reached
            doc["closed"], doc["closed_without_answer"] = True, p["without_answer"]
            doc["closing"] = {"at": at, "event_id": eid}
    elif kind == "case_escalated":
        doc["escalated_to"] = sorted(set(doc.get("escalated_to", [])) | {p["to_role"]})
    elif kind == "proposal_approved":
        doc["approved_by"] = sorted(set(doc.get("approved_by", [])) | {p["approver_role"]})
    elif kind.startswith("incident_"):
        _incident(doc, kind, p, at, zone)
    elif kind in ("customer_satisfied", "customer_dissatisfied"):
        # every answer counts: a dissatisfied one stays dissatisfied after a later satisfied one
        answers = [a for a in doc.get("answers", []) if a["event_id"] != eid]
        answers.append(
            {
                "at": at,
                "event_id": eid,
                "satisfied": kind == "customer_satisfied",
                "reasons": sorted(set(p.get("reasons", []))),
            }
        )
        doc["answers"] = sorted(answers, key=lambda a: (a["at"], a["event_id"]))
    doc["rounds"] = max(doc.get("resolved_round", 0), doc.get("reopened_round", 0))
    doc["reached_directors"] = bool(set(doc.get("escalated_to", []) + doc.get("approved_by", [])) & set(DIRECTORS))
    return doc


def _incident(doc, kind, p, at, zone):
    """An adverse event (R3.9, R7.10) counts in the period it was reported in: its type,
    and whether each step came in time."""
    incident = doc.setdefault("incident", {})
    if kind == "incident_reported":
        incident["type"] = p["type"]
        doc["month"], doc["quarter"], doc["day"] = periods_of(at, zone)
    elif kind == "incident_forwarded":
        incident["forwarded_in_time"] = p["within_deadline"]
    elif kind == "incident_dismissed":
        incident["dismissed"] = True
    elif kind == "incident_handled":
        incident["handled_in_time"], incident["compensation_fen"] = p["within_deadline"], p["compensation_fen"]
    elif kind == "incident_communicated":
        incident["told_in_time"] = p.get("within_deadline")


def apply_clock(doc, clock, outcome):
    """The document after one of its SLA clocks reached its final outcome: `met` (stopped
    by the deadline), `breached` (the deadline passed) or `cancelled` (its obligation lapsed)."""
    doc = copy.deepcopy(doc)
    doc.setdefault("mall_id", clock["mall_id"])
    doc.setdefault("clocks", {})[_key(clock["_id"])] = {
        "clock": clock["clock"],
        "outcome": outcome,
        "owner": clock.get("owner"),
        "owner_kind": owner_kind(clock),
        "department": clock.get("department"),
    }
    doc["overdue"] = any(c["outcome"] == "breached" and c["clock"] in HANDLING_CLOCKS for c in doc["clocks"].values())
    return doc


def handling_seconds(doc):
    if doc.get("resolved_at") and doc.get("received_at"):
        return max(int((doc["resolved_at"] - doc["received_at"]).total_seconds()), 0)
    return None


def bucket_of(seconds):
    for bound in HANDLING_BUCKETS:
        if bound is None or seconds <= bound * 3600:
            return _bucket_name(bound)


def _bucket_name(bound):
    return "over" if bound is None else f"le_{bound}h"


# --- what a complaint adds to the tallies ---------------------------------------------------


def contributions(doc):
    """{tally_id: {field path: count}}: what this complaint adds to the tallies of its
    month and quarter at its mall. Nothing until its period is known."""
    if doc.get("incident", {}).get("type") and doc.get("month"):
        return _incident_contributions(doc)
    if not doc.get("month") or not (doc.get("registered") or doc.get("rejected")):
        return {}
    add = Counter(received=1)
    if doc.get("rejected"):
        add["rejected"] = 1
    else:
        _handled(doc, add)
    mall = doc["mall_id"]
    return {tally_id(doc["month"], mall): dict(add), tally_id(doc["quarter"], mall): dict(add)}


def _incident_contributions(doc):
    incident, add = doc["incident"], Counter({"incidents.reported": 1})
    add[f"incidents.type.{_key(incident['type'])}"] = 1
    if incident.get("dismissed"):
        add["incidents.dismissed"] = 1
    for step in ("forwarded", "handled", "told"):
        in_time = incident.get(f"{step}_in_time")
        if in_time is not None:
            add[f"incidents.{step}"] = 1
            add[f"incidents.{step}_in_time"] = int(in_time)
    if incident.get("compensation_fen"):
        add["incidents.compensation_fen"] = incident["compensation_fen"]
    mall = doc["mall_id"]
    return {tally_id(doc["month"], mall): dict(add), tally_id(doc["quarter"], mall): dict(add)}


def _handled(doc, add):
    add["registered"] = 1
    category = doc.get("category") or "unclassified"
    add[f"category.{_key(category)}"] = 1
    add[f"problem.{_key(category)}|{_key(doc.get('area') or '-')}|{_key(doc.get('merchant_id') or '-')}"] = 1
    if doc.get("merchant_id"):
        add[f"merchant.{_key(doc['merchant_id'])}"] = 1
    if doc.get("resolved_at"):
        add["resolved"] = 1
    settled = doc.get("closed") or (doc.get("resolved_round", 0) >= max(doc.get("reopened_round", 0), 1))
    add["open" if not settled else "settled"] = 1
    if doc.get("reopened_round"):
        add["reopened"] = 1
    seconds = handling_seconds(doc)
    if seconds is not None:
        add["handling.count"] = 1
        add["handling.seconds"] = seconds
        add[f"handling.{bucket_of(seconds)}"] = 1
    if doc.get("overdue"):
        add["overdue"] = 1
    for clock in (doc.get("clocks") or {}).values():
        owner = _key(clock.get("owner") or "none")
        if clock.get("owner_kind") == "merchant":  # its reply and rectifications: the merchant's scorecard (R7.5)
            add[f"sla_merchant.{owner}.{clock['outcome']}"] += 1
            continue  # the merchant's record, not the department's that sent it the case
        department = doc.get("department") or clock.get("department") or "none"
        add[f"sla_department.{_key(department)}.{clock['outcome']}"] += 1
        if clock.get("owner_kind", "person") == "person":
            add[f"sla_handler.{owner}.{clock['outcome']}"] += 1
        else:  # a channel, service, role or (unowned) department: not a person's record
            add[f"sla_service.{_key(clock['clock'])}|{owner}.{clock['outcome']}"] += 1
    for answer in doc.get("answers", []):
        add["answers.satisfied" if answer["satisfied"] else "answers.dissatisfied"] += 1
        if doc.get("merchant_id"):
            add[f"merchant_answers.{_key(doc['merchant_id'])}.{'' if answer['satisfied'] else 'dis'}satisfied"] += 1
        for reason in answer["reasons"] if not answer["satisfied"] else ():
            add[f"reason.{_key(reason)}"] += 1
    if doc.get("closed_without_answer"):
        add["answers.closed_without_answer"] = 1
    _scorecards(doc, add, category)
    if doc.get("reached_directors"):
        add["reached_directors"] = 1
    if doc.get("risk_level") == "high":
        add["high_risk"] = 1
        if doc.get("reached_directors"):
            add["high_risk_reached_directors"] = 1


def _scorecards(doc, add, category):
    """R7.11: what the complaint adds to the scorecards of its owner and department (volume,
    resolved, resolved at first contact, reopened, escalated, overdue, answers), and to the
    cost of complaints: compensation by category and merchant, remedies by type, and what
    the cases reopened cost."""
    answers = doc.get("answers", [])
    rounds = doc.get("remedies", {})
    first_contact = bool(rounds.get("1", {}).get("spot")) and not doc.get("reopened_round")
    card = {
        "complaints": 1,
        "resolved": 1 if doc.get("resolved_at") else 0,
        "first_contact": 1 if first_contact else 0,
        "reopened": 1 if doc.get("reopened_round") else 0,
        "escalated": 1 if doc.get("escalated_to") else 0,
        "overdue": 1 if doc.get("overdue") else 0,
        "satisfied": sum(a["satisfied"] for a in answers),
        "dissatisfied": sum(not a["satisfied"] for a in answers),
    }
    for scope, key in (("card_handler", doc.get("owner_id") or "none"), ("card_department", doc.get("department"))):
        for name, n in card.items():
            if n:
                add[f"{scope}.{_key(key or 'none')}.{name}"] += n
    fen = sum(r["fen"] for r in rounds.values())
    if fen:
        add["cost.fen"] += fen
        add[f"cost.category.{_key(category)}"] += fen
        add[f"cost.merchant.{_key(doc.get('merchant_id') or '-')}"] += fen
        if doc.get("reopened_round"):
            add["cost.reopened_fen"] += fen
    for r in rounds.values():
        for remedy in r["types"]:
            add[f"cost.remedy.{_key(remedy)}"] += 1


def delta(before, after):
    """{tally_id: {path: change}} moving the tallies from `before`'s contributions to `after`'s."""
    old, new = contributions(before or {}), contributions(after)
    moves = {}
    for tally in set(old) | set(new):
        change = Counter(new.get(tally, {}))
        change.subtract(old.get(tally, {}))
        change = {path: n for path, n in change.items() if n}
        if change:
            moves[tally] = change
    return moves


def tally_id(period, mall_id):
    return f"{period}|{mall_id}"


def _key(text):
    """A value as a Mongo field name (no dots, no leading $; `|` separates parts)."""
    return str(text).replace("%", "%25").replace(".", "%2E").replace("$", "%24").replace("|", "%7C")


def _unkey(key):
    return key.replace("%7C", "|").replace("%24", "$").replace("%2E", ".").replace("%25", "%")


# --- the report ---------------------------------------------------------------------------


def build_report(kind, period, mall_id, tallies, actions, malls=(), proposed=0, library_reviews=(), surveys=()):
    """The report of one period from its tally documents (one per mall; several summed
    for the whole chain), the improvement actions still open, how many proposals for
    systemic patterns wait for an analysis (`proposed`), the malls' monthly reviews of
    the case library in the period's months (R7.14) and the satisfaction surveys of the
    period's months (R7.12). Pure: same tallies, same report."""
    by_mall = {t["mall_id"]: t.get("counts", {}) for t in tallies}
    total = _sum(by_mall.values())
    registered = total.get("registered", 0)
    answers = total.get("answers", {})
    answered = answers.get("satisfied", 0) + answers.get("dissatisfied", 0)
    report = {
        "kind": kind,
        "period": period,
        "mall_id": mall_id,
        "malls": sorted(by_mall) if mall_id is None else [mall_id],
        "counts": {
            name: total.get(name, 0) for name in ("received", "rejected", "registered", "resolved", "open", "reopened")
        },
        "categories": _shares(total.get("category", {}), registered, "category"),
        "handling_time": handling_summary(total.get("handling", {})),
        "overdue": {"count": total.get("overdue", 0), "share": _share(total.get("overdue", 0), registered)},
        "satisfaction": {
            "answered": answered,
            "satisfied": answers.get("satisfied", 0),
            "dissatisfied": answers.get("dissatisfied", 0),
            "share": _share(answers.get("satisfied", 0), answered),
            "closed_without_answer": answers.get("closed_without_answer", 0),
            "target": SATISFACTION_TARGET,
            "meets_target": answered > 0 and answers.get("satisfied", 0) / answered >= SATISFACTION_TARGET,
            "reasons": _ranked(total.get("reason", {}), "reason"),
        },
        "top_problems": _top_problems(by_mall),
        "merchants": _merchants(by_mall),
        "merchant_scorecard": _merchant_scorecard(by_mall),
        "sla": {
            "departments": _compliance(total.get("sla_department", {}), "department"),
            "handlers": _compliance(total.get("sla_handler", {}), "handler"),
            "services": _service_compliance(total.get("sla_service", {})),
        },
        "management": {
            "high_risk": total.get("high_risk", 0),
            "high_risk_reached_directors": total.get("high_risk_reached_directors", 0),
            "high_risk_share_reached_directors": _share(
                total.get("high_risk_reached_directors", 0), total.get("high_risk", 0)
            ),
            "reached_directors": total.get("reached_directors", 0),
            "directors": list(DIRECTORS),
        },
        "actions": {
            "open": len(actions),
            "overdue": sum(1 for a in actions if a.get("overdue")),
            "proposed": proposed,
            "items": actions,
        },
        "scorecards": {
            "handlers": _cards(total.get("card_handler", {}), total.get("sla_handler", {}), "handler"),
            "departments": _cards(total.get("card_department", {}), total.get("sla_department", {}), "department"),
            "malls": _mall_cards(by_mall),
        },
        "cost": _cost(total.get("cost", {}), by_mall),
        "incidents": _incidents(total.get("incidents", {})),
        "library_reviews": _library_reviews(library_reviews),
        "surveys": _surveys(surveys),
        "notes": NOTES,
    }
    return report


CARD = ("complaints", "resolved", "first_contact", "reopened", "escalated", "overdue", "satisfied", "dissatisfied")


def _card(counts, sla):
    """One scorecard's row: the counts, and the rates HR reads (of complaints; satisfaction
    of answers; SLA compliance of the clocks met or breached)."""
    row = {name: counts.get(name, 0) for name in CARD}
    met, breached = sla.get("met", 0), sla.get("breached", 0)
    return {
        **row,
        "sla_met": met,
        "sla_breached": breached,
        "sla_compliance": _share(met, met + breached),
        "first_contact_rate": _share(row["first_contact"], row["complaints"]),
        "reopen_rate": _share(row["reopened"], row["complaints"]),
        "escalation_rate": _share(row["escalated"], row["complaints"]),
        "satisfaction": _share(row["satisfied"], row["satisfied"] + row["dissatisfied"]),
    }


def _cards(cards, sla, name):
    """R7.11 (seed 001: 建立奖励和/或惩罚体系; seed 004: 将服务质量与绩效挂钩): a month's scorecard per
    handler or department, the most complaints first."""
    rows = [{name: _unkey(key), **_card(counts, sla.get(key, {}))} for key, counts in cards.items()]
    # a complaint's card moves when it is routed on: the one it left keeps a zero
    return sorted((r for r in rows if r["complaints"]), key=lambda r: (-r["complaints"], r[name]))


def _mall_cards(by_mall):
    rows = []
    for mall, counts in by_mall.items():
        cards = counts.get("card_department", {})
        summed = {name: sum(c.get(name, 0) for c in cards.values()) for name in CARD}
        sla = {o: sum(v.get(o, 0) for v in counts.get("sla_department", {}).values()) for o in ("met", "breached")}
        rows.append({"mall_id": mall, **_card(summed, sla)})
    return sorted(rows, key=lambda r: r["mall_id"])


def _cost(cost, by_mall):
    """R7.11 (seed 001: 问题没有解决所带来的开销可以量化): compensation paid (fen) by mall, category
    and merchant, remedies given by type (returns and exchanges among them), and what the
    cases that were reopened cost."""
    return {
        "total_fen": cost.get("fen", 0),
        "reopened_fen": cost.get("reopened_fen", 0),
        "malls": sorted(
            ({"mall_id": m, "fen": c.get("cost", {}).get("fen", 0)} for m, c in by_mall.items()),
            key=lambda r: (-r["fen"], r["mall_id"]),
        ),
        "categories": _ranked_fen(cost.get("category", {}), "category"),
        "merchants": sorted(
            (
                {"mall_id": m, "merchant_id": _unkey(k), "fen": n}
                for m, c in by_mall.items()
                for k, n in c.get("cost", {}).get("merchant", {}).items()
                if n and k != "-"
            ),
            key=lambda r: (-r["fen"], r["mall_id"], r["merchant_id"]),
        ),
        "remedies": _ranked(cost.get("remedy", {}), "remedy"),
    }


def _ranked_fen(counts, name):
    return sorted(({name: _unkey(k), "fen": n} for k, n in counts.items() if n), key=lambda r: (-r["fen"], r[name]))


def _incidents(counts):
    """R7.10 (seed 003: 每季度進行不良事件和客戶反饋的匯總分析): the adverse events reported in the
    period, by type, and each step's share in time; the quarter's report is the quarterly summary."""
    steps = {
        step: {
            "count": counts.get(step, 0),
            "in_time": counts.get(f"{step}_in_time", 0),
            "share_in_time": _share(counts.get(f"{step}_in_time", 0), counts.get(step, 0)),
        }
        for step in ("forwarded", "handled", "told")
    }
    return {
        "reported": counts.get("reported", 0),
        "dismissed": counts.get("dismissed", 0),
        "types": _ranked(counts.get("type", {}), "type"),
        **steps,
        "compensation_fen": counts.get("compensation_fen", 0),
    }


def _library_reviews(reviews):
    """R7.14 (seed 002: 每月更新客诉案例库): each mall's review of each month, done or due."""
    items = [
        {
            "mall_id": r["mall_id"],
            "month": r["month"],
            "done": r.get("done_at") is not None,
            "candidates": r["candidates"],
            "added": r.get("added", 0),
            "passed": r.get("passed", 0),
            "done_by": r.get("done_by"),
        }
        for r in reviews
    ]
    return {
        "done": sum(i["done"] for i in items),
        "due": sum(not i["done"] for i in items),
        "added": sum(i["added"] for i in items),
        "items": items,
    }


def _survey_row(found):
    sent = sum(1 for s in found if s.get("sent") or s.get("answered"))  # an answer overtaking its sending
    answered = sum(1 for s in found if s.get("answered"))
    satisfied = sum(1 for s in found if s.get("satisfied"))
    return {
        "sent": sent,
        "answered": answered,
        "satisfied": satisfied,
        "response_rate": _share(answered, sent),
        "satisfaction": _share(satisfied, answered),
    }


def _surveys(found):
    """R7.12 (seed 003: 定期進行客戶滿意度調查): the periodic surveys, by mall and channel, apart
    from the revisits' satisfaction."""
    groups = {}
    for survey in found:
        groups.setdefault((survey["mall_id"], survey["channel"]), []).append(survey)
    items = [
        {"mall_id": mall_id, "channel": channel, **_survey_row(group)}
        for (mall_id, channel), group in sorted(groups.items())
    ]
    return {**_survey_row(found), "items": items}


NOTES = {
    "period": "complaints received in the period (mall's local time); their later outcomes count in that period",
    "shares": "categories, overdue: of registered complaints; satisfaction: of the customers' answers "
    "(every answer counts: a dissatisfied answer stays dissatisfied after a later satisfied one); "
    "cases closed without an answer (the customer could not be reached) are counted apart",
    "handling_time": "received -> first resolution; p90_hours is the upper bound of the histogram bucket that "
    "holds the 90th percentile (buckets in hours: " + ", ".join(str(b) for b in HANDLING_BUCKETS if b) + ", over 720)",
    "merchant_rate": "a merchant's complaints / all registered complaints at its mall in the period",
    "surveys": "R7.12 the periodic satisfaction surveys of the period's months (customers sampled, by channel, "
    "from those whose cases closed in the month, asked once it was over), by mall and the complaint's channel: "
    "sent, answered, satisfied (the revisits' satisfied_from), apart from the revisits' `satisfaction`",
    "library_reviews": "each mall's monthly review of the case library for the period's months: done, or announced "
    "and not done yet; added: candidate cases put into the library",
    "merchant_scorecard": "R7.5 each merchant at its mall: its complaints (and their rate), its SLA compliance "
    "(its replies to the cases sent to it and the rectifications given to it, met by their deadline) and the "
    "satisfaction of its complaints' customers; ranked by most complaints, then lowest compliance, then lowest "
    "satisfaction (no figure yet: after those with one)",
    "sla": "each clock of a complaint counted once, when its outcome is final (met when stopped in time, "
    "breached when its deadline passed, cancelled when its obligation lapsed: counted in neither), under "
    "the complaint's current department and the clock's owner; handlers are people, the clocks a channel, "
    "a service, a role or an unowned department keeps are in `services` by clock and owner; a merchant's "
    "clocks count on its scorecard (merchant_scorecard) only",
    "reached_directors": "escalated to, or approved by, operations_director or legal",
    "scorecards": "per handler (the complaint's current owner), department and mall: complaints received in the "
    "period; first_contact: settled on the spot and never reopened; rates of complaints, satisfaction of answers, "
    "sla_compliance of the clocks met or breached (the handler's own clocks)",
    "incidents": "adverse events reported in the period (mall's local time), by type; forwarded, handled, told: "
    "the steps taken and how many within their deadlines (told: the regional manager telling the customer, R7.10)",
    "cost": "compensation in fen of every round's resolution of the period's complaints, by mall, category and "
    "merchant; remedies: how many of each type were given; reopened_fen: what the complaints that were reopened cost",
}


def handling_summary(handling):
    count = handling.get("count", 0)
    buckets = [{"le_hours": bound, "count": handling.get(_bucket_name(bound), 0)} for bound in HANDLING_BUCKETS]
    return {
        "resolved": count,
        "average_hours": round(handling.get("seconds", 0) / count / 3600, 2) if count else None,
        "p90_hours": p90_bound([b["count"] for b in buckets]) if count else None,
        "buckets": buckets,
    }


def p90_bound(counts):
    """The upper bound (hours) of the bucket holding the 90th percentile; None for 'over'."""
    rank, seen = math.ceil(0.9 * sum(counts)), 0
    for bound, n in zip(HANDLING_BUCKETS, counts, strict=False):  # counts has the "over" bucket last
        seen += n
        if seen >= rank:
            return bound
    return None


def _sum(docs):
    total = {}
    for doc in docs:
        _add_into(total, doc)
    return total


def _add_into(total, doc):
    for name, value in doc.items():
        if isinstance(value, dict):
            _add_into(total.setdefault(name, {}), value)
        else:
            total[name] = total.get(name, 0) + value


def _share(part, whole):
    return round(part / whole, 4) if whole else None


def _shares(counts, whole, name):
    rows = [{name: _unkey(k), "count": n, "share": _share(n, whole)} for k, n in counts.items() if n]
    return sorted(rows, key=lambda r: (-r["count"], r[name]))


def _ranked(counts, name):
    return sorted(({name: _unkey(k), "count": n} for k, n in counts.items() if n), key=lambda r: (-r["count"], r[name]))


def _top_problems(by_mall):
    rows = []
    for mall, counts in by_mall.items():
        for key, n in counts.get("problem", {}).items():
            if n:
                category, area, merchant = (_unkey(part) for part in key.split("|"))
                rows.append(
                    {
                        "category": category,
                        "mall_id": mall,
                        "area": None if area == "-" else area,
                        "merchant_id": None if merchant == "-" else merchant,
                        "count": n,
                    }
                )
    rows.sort(key=lambda r: (-r["count"], r["category"], r["mall_id"], r["area"] or "", r["merchant_id"] or ""))
    return rows[:TOP_PROBLEMS]


def _merchants(by_mall):
    rows = []
    for mall, counts in by_mall.items():
        whole = counts.get("registered", 0)
        for key, n in counts.get("merchant", {}).items():
            if n:
                rows.append(
                    {
                        "mall_id": mall,
                        "merchant_id": _unkey(key),
                        "complaints": n,
                        "mall_complaints": whole,
                        "rate": _share(n, whole),
                    }
                )
    return sorted(rows, key=lambda r: (-(r["rate"] or 0), r["mall_id"], r["merchant_id"]))


def _merchant_scorecard(by_mall):
    """R7.5 rows per (mall, merchant), ranked: the merchant held to our time and quality standards."""
    rows = []
    for mall, counts in by_mall.items():
        complaints, clocks, answers = (counts.get(k, {}) for k in ("merchant", "sla_merchant", "merchant_answers"))
        for key in sorted(set(complaints) | set(clocks) | set(answers)):
            met, breached, cancelled = (clocks.get(key, {}).get(o, 0) for o in ("met", "breached", "cancelled"))
            satisfied, dissatisfied = (answers.get(key, {}).get(o, 0) for o in ("satisfied", "dissatisfied"))
            n = complaints.get(key, 0)
            if not (n or met or breached or cancelled or satisfied or dissatisfied):
                continue
            rows.append(
                {
                    "mall_id": mall,
                    "merchant_id": _unkey(key),
                    "complaints": n,
                    "rate": _share(n, counts.get("registered", 0)),
                    "sla": {
                        "met": met,
                        "breached": breached,
                        "cancelled": cancelled,
                        "compliance": _share(met, met + breached),
                    },
                    "satisfaction": {
                        "satisfied": satisfied,
                        "dissatisfied": dissatisfied,
                        "share": _share(satisfied, satisfied + dissatisfied),
                    },
                }
            )

    def worst_first(row):
        compliance, satisfied = row["sla"]["compliance"], row["satisfaction"]["share"]
        return (
            -row["complaints"],
            compliance is None,
            compliance or 0,
            satisfied is None,
            satisfied or 0,
            row["mall_id"],
            row["merchant_id"],
        )

    return [{"rank": i, **row} for i, row in enumerate(sorted(rows, key=worst_first), 1)]


def _compliance(counts, name):
    rows = []
    for key, outcomes in counts.items():
        met, breached, cancelled = (outcomes.get(o, 0) for o in ("met", "breached", "cancelled"))
        if met or breached or cancelled:
            rows.append(
                {
                    name: _unkey(key),
                    "met": met,
                    "breached": breached,
                    "cancelled": cancelled,
                    "compliance": _share(met, met + breached),
                }
            )
    return sorted(rows, key=lambda r: (r["compliance"] is None, r["compliance"] or 0, r[name]))


def _service_compliance(counts):
    """Rows per (clock, owner) of the clocks no person owns."""
    rows = []
    for row in _compliance(counts, "key"):
        clock, owner = row.pop("key").split("|", 1)
        rows.append({"clock": clock, "owner": owner, **row})
    return rows
