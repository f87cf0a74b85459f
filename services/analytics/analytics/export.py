"""The report as files for the monthly meeting: a CSV (one long table: period, scope,
section, item, measure, value; UTF-8 with a byte-order mark so that Excel reads the Chinese)
and a spreadsheet (openpyxl: a sheet per section, headings bold and frozen, numbers as
numbers, shares as percentages). Both in the reader's language (`Words`), from the same
sections, so that they say the same thing."""

import csv
import io
import re
import unicodedata
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Font

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Share(float):
    """A share (0..1): a percentage in the spreadsheet, '12.5%' in the CSV."""


@dataclass(frozen=True)
class Section:
    key: str  # the TEXT key of its sheet's name and the CSV's section column
    headings: tuple[str, ...]  # TEXT keys
    rows: list[tuple]
    keys: int = 1  # how many leading columns name a row (the CSV's item)


CARD_HEADINGS = (
    "card_complaints",
    "card_resolved",
    "first_contact_rate",
    "reopen_rate",
    "escalation_rate",
    "overdue",
    "satisfied_share",
    "compliance",
)


SURVEY_HEADINGS = (
    "mall",
    "survey_channel",
    "survey_sent",
    "survey_answered",
    "survey_satisfied",
    "response_rate",
    "survey_satisfaction",
)


def survey_row(r):
    """A survey row's counts and shares (R7.12), after its mall and channel."""
    share = lambda v: None if v is None else Share(v)  # noqa: E731
    return r["sent"], r["answered"], r["satisfied"], share(r["response_rate"]), share(r["satisfaction"])


def card_row(r):
    """A scorecard's cells (R7.11), as HR reads them: counts and shares."""
    share = lambda v: None if v is None else Share(v)  # noqa: E731
    return (
        r["complaints"],
        r["resolved"],
        share(r["first_contact_rate"]),
        share(r["reopen_rate"]),
        share(r["escalation_rate"]),
        r["overdue"],
        share(r["satisfaction"]),
        share(r["sla_compliance"]),
    )


def yuan(fen):
    return round(fen / 100, 2)


def sections(report, w):
    c, h, s, m, a = (
        report["counts"],
        report["handling_time"],
        report["satisfaction"],
        report["management"],
        report["actions"],
    )
    share = lambda v: None if v is None else Share(v)  # noqa: E731
    summary = [
        *((name, c[name]) for name in ("received", "rejected", "registered", "resolved", "open", "reopened")),
        ("average_hours", h["average_hours"]),
        ("p90_hours", h["p90_hours"]),
        ("overdue", report["overdue"]["count"]),
        ("overdue_title", share(report["overdue"]["share"])),
        ("answered", s["answered"]),
        ("satisfied", s["satisfied"]),
        ("dissatisfied", s["dissatisfied"]),
        ("satisfied_share", share(s["share"])),
        ("closed_without_answer", s["closed_without_answer"]),
        *((name, m[name]) for name in ("high_risk", "high_risk_reached_directors", "reached_directors")),
        ("high_risk_share_reached_directors", share(m["high_risk_share_reached_directors"])),
        ("actions_open", a["open"]),
        ("actions_overdue", a["overdue"]),
        ("actions_proposed", a["proposed"]),
        ("cost_total_yuan", yuan(report["cost"]["total_fen"])),
        ("cost_reopened_yuan", yuan(report["cost"]["reopened_fen"])),
        ("incidents_reported", report["incidents"]["reported"]),
        ("incidents_dismissed", report["incidents"]["dismissed"]),
        ("incidents_compensation_yuan", yuan(report["incidents"]["compensation_fen"])),
        ("library_reviews_done", report["library_reviews"]["done"]),
        ("library_reviews_due", report["library_reviews"]["due"]),
        ("surveys_sent", report["surveys"]["sent"]),
        ("surveys_answered", report["surveys"]["answered"]),
        ("surveys_satisfied", report["surveys"]["satisfied"]),
    ]

    def outcomes(r):
        return r["met"], r["breached"], r["cancelled"], share(r["compliance"])

    outcome = ("met", "breached", "cancelled", "compliance")
    return [
        Section("summary", ("metric", "value"), [(w(k), v) for k, v in summary]),
        Section(
            "categories",
            ("category", "count", "share"),
            [(w.code("category", r["category"]), r["count"], share(r["share"])) for r in report["categories"]],
        ),
        Section("time_taken", ("bucket", "count"), [(w.bucket(b["le_hours"]), b["count"]) for b in h["buckets"]]),
        Section(
            "reasons", ("reason", "count"), [(w.code("reason_tag", r["reason"]), r["count"]) for r in s["reasons"]]
        ),
        Section(
            "top_problems",
            ("category", "mall", "area", "merchant", "count"),
            [w.problem(r) for r in report["top_problems"]],
            keys=4,
        ),
        Section(
            "merchant_rate",
            ("mall", "merchant", "complaints", "mall_complaints", "rate"),
            [
                (
                    w.mall(r["mall_id"]),
                    w.merchant(r["mall_id"], r["merchant_id"]),
                    r["complaints"],
                    r["mall_complaints"],
                    share(r["rate"]),
                )
                for r in report["merchants"]
            ],
            keys=2,
        ),
        Section(
            "merchant_scorecard",
            (
                "rank",
                "mall",
                "merchant",
                "complaints",
                "rate",
                *outcome,
                "satisfied",
                "dissatisfied",
                "satisfied_share",
            ),
            [
                (
                    r["rank"],
                    w.mall(r["mall_id"]),
                    w.merchant(r["mall_id"], r["merchant_id"]),
                    r["complaints"],
                    share(r["rate"]),
                    *outcomes(r["sla"]),
                    r["satisfaction"]["satisfied"],
                    r["satisfaction"]["dissatisfied"],
                    share(r["satisfaction"]["share"]),
                )
                for r in report["merchant_scorecard"]
            ],
            keys=3,
        ),
        Section(
            "sla_departments",
            ("department", *outcome),
            [(w.code("department", r["department"]), *outcomes(r)) for r in report["sla"]["departments"]],
        ),
        Section(
            "sla_handlers", ("handler", *outcome), [(r["handler"], *outcomes(r)) for r in report["sla"]["handlers"]]
        ),
        Section(
            "sla_others",
            ("clock", "owner", *outcome),
            [(w.code("clock", r["clock"]), w.owner(r["owner"]), *outcomes(r)) for r in report["sla"]["services"]],
            keys=2,
        ),
        Section(
            "actions",
            ("action_id", "mall", "problem", "root_cause", "action", "owner_id", "due_date", "overdue"),
            [
                (
                    x["action_id"],
                    w.mall(x["mall_id"]),
                    x["problem"]["summary"],
                    x["root_cause"],
                    x["action"],
                    x["owner_id"],
                    x["due_date"],
                    w("overdue") if x["overdue"] else "",
                )
                for x in a["items"]
            ],
        ),
        *(
            Section(
                f"scorecard_{scope}",
                (heading, *CARD_HEADINGS),
                [(name(r[key]), *card_row(r)) for r in report["scorecards"][f"{scope}s"]],
            )
            for scope, key, heading, name in (
                ("handler", "handler", "handler", lambda x: w("unassigned") if x == "none" else x),
                (
                    "department",
                    "department",
                    "department",
                    lambda d: w("unassigned") if d == "none" else w.code("department", d),
                ),
                ("mall", "mall_id", "mall", w.mall),
            )
        ),
        Section(
            "cost_categories",
            ("category", "yuan"),
            [(w.code("category", r["category"]), yuan(r["fen"])) for r in report["cost"]["categories"]],
        ),
        Section(
            "cost_merchants",
            ("mall", "merchant", "yuan"),
            [
                (w.mall(r["mall_id"]), w.merchant(r["mall_id"], r["merchant_id"]), yuan(r["fen"]))
                for r in report["cost"]["merchants"]
            ],
            keys=2,
        ),
        Section(
            "cost_remedies",
            ("remedy", "count"),
            [(w.code("remedy", r["remedy"]), r["count"]) for r in report["cost"]["remedies"]],
        ),
        Section(
            "incident_steps",
            ("incident_step", "count", "in_time", "share"),
            [
                (w(f"incident_{step}"), r["count"], r["in_time"], share(r["share_in_time"]))
                for step, r in ((k, report["incidents"][k]) for k in ("forwarded", "handled", "told"))
            ],
        ),
        Section(
            "incident_types",
            ("incident_type", "count"),
            [(w.code("incident_type", r["type"]), r["count"]) for r in report["incidents"]["types"]],
        ),
        Section(
            "library_reviews",
            ("mall", "month", "review_status", "candidates", "added", "passed"),
            [
                (
                    w.mall(r["mall_id"]),
                    r["month"],
                    w("review_done") if r["done"] else w("review_due"),
                    r["candidates"],
                    r["added"],
                    r["passed"],
                )
                for r in report["library_reviews"]["items"]
            ],
            keys=2,
        ),
        Section(
            "surveys",
            SURVEY_HEADINGS,
            [
                (w.mall(r["mall_id"]), w.code("channel", r["channel"]), *survey_row(r))
                for r in report["surveys"]["items"]
            ],
            keys=2,
        ),
    ]


def file_name(report, extension):
    """mallcare-<mall>-2026-12.xlsx (the chain: mallcare-chain-2026-Q4.csv)."""
    return f"mallcare-{report['mall_id'] or 'chain'}-{report['period']}.{extension}"


def to_csv(report, w):
    """One long table; text with a byte-order mark (Excel then reads it as UTF-8)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([w(k) for k in ("period", "scope", "section", "item", "metric", "value")])
    scope = (report["period"], w.scope(report))
    for section in sections(report, w):
        for row in section.rows:
            if section.key == "summary":
                writer.writerow([*scope, w("summary"), "", row[0], _csv_value(row[1])])
                continue
            item = _inert(" / ".join(str(v) for v in row[: section.keys]))
            for heading, value in zip(section.headings[section.keys :], row[section.keys :], strict=True):
                writer.writerow([*scope, w(section.key), item, w(heading), _csv_value(value)])
    return out.getvalue().encode("utf-8")


# What a spreadsheet reads as a formula when a cell starts with it. Text from customers (an
# area) and staff (a root cause, an action) goes into these files: it must stay text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value):
    """Text that starts like a formula, quoted as Excel's own "text" prefix does; all else as it is."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _csv_value(value):
    if value is None:
        return ""
    return f"{value * 100:.1f}%" if isinstance(value, Share) else _inert(value)


def to_xlsx(report, w):
    """The workbook's bytes: a sheet per section, its first row the headings."""
    book = Workbook()
    book.remove(book.active)
    for section in sections(report, w):
        sheet = book.create_sheet(_sheet_name(w(section.key)))
        sheet.append([w(k) for k in section.headings])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        if section.key == "summary":  # what and whose the figures are, first
            sheet.append([w("period"), report["period"]])
            sheet.append([w("scope"), w.scope(report)])
        for row in section.rows:
            sheet.append(list(row))
            for cell, value in zip(sheet[sheet.max_row], row, strict=True):
                if isinstance(value, Share):
                    cell.number_format = "0.0%"
                elif isinstance(value, str) and value.startswith(FORMULA_STARTS):
                    cell.data_type = "s"  # openpyxl took it for a formula: it is what someone wrote
        sheet.freeze_panes = "A2"
        for column in sheet.columns:
            width = max(_width(cell.value) for cell in column)
            sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 8), 60)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_name(title):
    """Excel's limits: 31 characters, none of []:*?/\\."""
    return re.sub(r"[\[\]:*?/\\]", " ", title)[:31]


def _width(value):
    """Columns wide enough for their text: a Chinese character takes two."""
    text = "" if value is None else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
