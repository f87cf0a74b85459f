"""The month's report sent to the people who act on it (R7.13, seed 004: 定期向商场管理层及相关部门反馈)
as plain functions.

From the policy's day of each month (the mall's calendar) the month before's report of
each mall goes, once, to its management (the roles analytics.yml names, from resolution's
staff directory) whole, and to each department's head (`head_of` in that directory) the
department's part: its complaints, resolved, overdue (and which), satisfaction and SLA
compliance. Each (report, part, recipient) is one delivery document whose _id says so
(SHXJH-RPT-2026-11:department:E3011): written once with its `report_issued` event in its
outbox, so a second tick, another replica or a restart finds it and sends nothing; notify
turns the event into an e-mail at work."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from mallcare_common.contracts import analytics as events
from mallcare_common.contracts import build_event

Doc = dict[str, Any]
OVERDUE_LISTED = 20  # a department's overdue complaints named in its mail; the page has them all


def month_due(local: date, send_on_day: int) -> str | None:
    """The month whose report goes out on the mall's `local` date: the one before, from the
    policy's day on (a day missed, by a restart say, is caught up later in the month)."""
    if local.day < send_on_day:
        return None
    return f"{local.year - 1}-12" if local.month == 1 else f"{local.year}-{local.month - 1:02d}"


def report_number(mall_code: str, month: str) -> str:
    """The number of a mall's month's report, the envelope's complaint_no: SHXJH-RPT-2026-11."""
    return f"{mall_code}-RPT-{month}"


def recipients(
    staff: Iterable[Mapping[str, Any]], management_roles: Sequence[str]
) -> list[tuple[Doc, str, str | None]]:
    """(member of staff, part, department) for each copy of the report: the management's
    whole report, and each department a person heads its part (a person may get both)."""
    found: list[tuple[Doc, str, str | None]] = []
    for member in staff:
        if member["role"] in management_roles:
            found.append((dict(member), "management", None))
        for department in member.get("head_of") or ():
            found.append((dict(member), "department", department))
    return found


def figures(report: Mapping[str, Any], department: str | None, overdue_cases: Sequence[str] = ()) -> Doc:
    """The part's summary: the whole mall's (department None) or one department's, from the
    report's scorecards (a department with no complaints in the month has zeros)."""
    if department is None:
        sla = report["sla"]["departments"]
        met, breached = sum(r["met"] for r in sla), sum(r["breached"] for r in sla)
        return {
            "complaints": report["counts"]["registered"],
            "resolved": report["counts"]["resolved"],
            "overdue": report["overdue"]["count"],
            "satisfaction": report["satisfaction"]["share"],
            "sla_compliance": round(met / (met + breached), 4) if met + breached else None,
            "overdue_cases": [],
        }
    card = next((r for r in report["scorecards"]["departments"] if r["department"] == department), None) or {}
    sla = next((r for r in report["sla"]["departments"] if r["department"] == department), None) or {}
    return {
        "complaints": card.get("complaints", 0),
        "resolved": card.get("resolved", 0),
        "overdue": card.get("overdue", 0),
        "satisfaction": card.get("satisfaction"),
        "sla_compliance": sla.get("compliance", card.get("sla_compliance")),
        "overdue_cases": sorted(overdue_cases)[:OVERDUE_LISTED],
    }


def link(page: str, month: str, mall_id: str) -> str:
    """The report's page for the month and mall (the page's language is the reader's choice)."""
    return f"{page}?{urlencode({'period': month, 'mall_id': mall_id})}"


def delivery(
    number: str,
    mall_id: str,
    month: str,
    recipient: tuple[Mapping[str, Any], str, str | None],
    part_figures: Doc,
    page_link: str,
    now: datetime,
) -> tuple[Doc, Doc]:
    """The delivery document (without its outbox) and its report_issued event."""
    member, part, department = recipient
    delivery_id = f"{number}:{part}:{member['staff_id']}" + (f":{department}" if department else "")
    payload = {
        "delivery_id": delivery_id,
        "period": month,
        "part": part,
        "department": department,
        "staff_id": member["staff_id"],
        "role": member["role"],
        "link": page_link,
        "figures": part_figures,
    }
    event = build_event(events.REPORT_ISSUED, mall_id=mall_id, complaint_no=number, occurred_at=now, payload=payload)
    doc = {"_id": delivery_id, "report_no": number, "mall_id": mall_id, "issued_at": now, **payload}
    return doc, event
