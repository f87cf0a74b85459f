"""The report as one HTML page a manager opens in a browser: tables and inline SVG bar
charts, no script, no stylesheet or font from elsewhere (it also works offline and
as an e-mail attachment). Takes the JSON report as it is served, and speaks the reader's
language: code words, malls and merchants in words (wording.Words, from labels.yml)."""

from html import escape
from .export import CARD_HEADINGS, card_row

STYLE = """
body{font-family:"PingFang SC","Microsoft YaHei",Arial,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:2px solid #2b6cb0;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#edf2f7}td.n{text-align:right}.kpi{display:inline-block;margin:0 1.5em .5em 0}
.kpi b{display:block;font-size:1.6em}svg{max-width:100%;height:auto}
.bad{color:#c53030}.good{color:#2f855a}.note{color:#555;font-size:.85em}.wide{overflow-x:auto;max-width:100%}
"""


def render(report, w):
    """`w`: the reader's Words (wording.py): code words, malls and merchants in words."""
    c, h, s, m = report["counts"], report["handling_time"], report["satisfaction"], report["management"]
    sla = lambda r: (  # noqa: E731
        f"{_pct(r['compliance'])} ({w('met')} {r['met']} / {w('breached')} {r['breached']}"
        + (f" / {w('cancelled')} {r['cancelled']})" if r["cancelled"] else ")")
    )
    parts = [
        f"<h1>{escape(w(report['kind']))} {escape(report['period'])}</h1><p>{escape(w.scope(report))}</p>",
        _h2(w("counts")),
        "".join(_kpi(w(key), c[key]) for key in ("received", "rejected", "resolved", "open", "reopened")),
        _h2(w("categories")),
        _bars(
            w("categories"),
            [(w.code("category", r["category"]), r["count"], _pct(r["share"])) for r in report["categories"]],
            w,
        ),
        _h2(w("handling")),
        _kpi(w("average_hours"), h["average_hours"])
        + _kpi(w("p90_hours"), h["p90_hours"] or ("> 720" if h["resolved"] else None)),
        _bars(w("handling"), [(w.bucket(b["le_hours"]), b["count"], str(b["count"])) for b in h["buckets"]], w),
        _h2(w("overdue_title")),
        _kpi(w("overdue"), report["overdue"]["count"]) + _kpi(w("share"), _pct(report["overdue"]["share"])),
        _h2(w("satisfaction")),
        _kpi(
            w("satisfied_share"), _pct(s["share"]), "" if s["share"] is None else "good" if s["meets_target"] else "bad"
        )
        + _kpi(w("answered"), s["answered"])
        + _kpi(w("dissatisfied"), s["dissatisfied"])
        + _kpi(w("closed_without_answer"), s["closed_without_answer"]),
        _bars(
            w("reasons"),
            [(w.code("reason_tag", r["reason"]), r["count"], str(r["count"])) for r in s["reasons"]],
            w,
            color="#c05621",
        ),
        _h2(w("top_problems")),
        _table(
            [w(k) for k in ("category", "mall", "area", "merchant", "count")],
            [w.problem(r) for r in report["top_problems"]],
            w,
        ),
        _h2(w("merchants")),
        _bars(
            w("merchants"),
            [
                (f"{w.mall(r['mall_id'])} / {w.merchant(r['mall_id'], r['merchant_id'])}", r["rate"], _pct(r["rate"]))
                for r in report["merchants"]
            ],
            w,
        ),
        _h2(w("merchant_scorecard")),
        _table(
            [w(k) for k in ("rank", "mall", "merchant", "complaints", "rate", "compliance", "satisfied_share")],
            [
                (
                    r["rank"],
                    w.mall(r["mall_id"]),
                    w.merchant(r["mall_id"], r["merchant_id"]),
                    r["complaints"],
                    _pct(r["rate"]),
                    sla(r["sla"]),
                    _pct(r["satisfaction"]["share"]),
                )
                for r in report["merchant_scorecard"]
            ],
            w,
        ),
        _h2(w("sla_departments")),
        _bars(
            w("sla_departments"),
            [(w.code("department", r["department"]), r["compliance"], sla(r)) for r in report["sla"]["departments"]],
            w,
            color="#2f855a",
        ),
        _h2(w("sla_handlers")),
        _bars(
            w("sla_handlers"),
            [(r["handler"], r["compliance"], sla(r)) for r in report["sla"]["handlers"]],
            w,
            color="#2f855a",
        ),
        _h2(w("sla_services")),
        _bars(
            w("sla_services"),
            [
                (f"{w.code('clock', r['clock'])} / {w.owner(r['owner'])}", r["compliance"], sla(r))
                for r in report["sla"]["services"]
            ],
            w,
            color="#2f855a",
        ),
        _h2(w("management")),
        "".join(
            _kpi(w(key), _pct(m[key]) if key.endswith("share_reached_directors") else m[key])
            for key in ("high_risk", "high_risk_reached_directors", "high_risk_share_reached_directors")
        )
        + _kpi(w("reached_directors"), m["reached_directors"]),
        _h2(w("actions")),
        _table(
            [w(k) for k in ("action_id", "mall", "problem", "root_cause", "action", "owner_id", "due_date")],
            [
                (
                    a["action_id"],
                    w.mall(a["mall_id"]),
                    a["problem"]["summary"],
                    a["root_cause"],
                    a["action"],
                    a["owner_id"],
                    a["due_date"] + (f" ({w('overdue')})" if a["overdue"] else ""),
                )
                for a in report["actions"]["items"]
            ],
            w,
        ),
        *_scorecards(report, w),
        _h2(w("cost")),
        _kpi(w("cost_total_yuan"), f"{report['cost']['total_fen'] / 100:.2f}")
        + _kpi(w("cost_reopened_yuan"), f"{report['cost']['reopened_fen'] / 100:.2f}"),
        _bars(
            w("cost_categories"),
            [
                (w.code("category", r["category"]), r["fen"], f"{r['fen'] / 100:.2f}")
                for r in report["cost"]["categories"]
            ],
            w,
            color="#c05621",
        ),
        _table(
            [w(k) for k in ("mall", "merchant", "yuan")],
            [
                (w.mall(r["mall_id"]), w.merchant(r["mall_id"], r["merchant_id"]), f"{r['fen'] / 100:.2f}")
                for r in report["cost"]["merchants"]
            ],
            w,
        ),
        _table(
            [w("remedy"), w("count")],
            [(w.code("remedy", r["remedy"]), r["count"]) for r in report["cost"]["remedies"]],
            w,
        ),
        _h2(w("incidents")),
        _kpi(w("incidents_reported"), report["incidents"]["reported"])
        + _kpi(w("incidents_dismissed"), report["incidents"]["dismissed"])
        + _kpi(w("incidents_compensation_yuan"), f"{report['incidents']['compensation_fen'] / 100:.2f}"),
        _table(
            [w(k) for k in ("incident_step", "count", "in_time", "share")],
            [
                (w(f"incident_{k}"), r["count"], r["in_time"], _pct(r["share_in_time"]))
                for k, r in ((k, report["incidents"][k]) for k in ("forwarded", "handled", "told"))
            ],
            w,
        ),
        _table(
            [w("incident_type"), w("count")],
            [(w.code("incident_type", r["type"]), r["count"]) for r in report["incidents"]["types"]],
            w,
        ),
        _h2(w("library_reviews")),
        _table(
            [w(k) for k in ("mall", "month", "review_status", "candidates", "added", "passed")],
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
            w,
        ),
        _h2(w("surveys")),
        _table(
            [w(k) for k in ("mall", "survey_channel", "survey_sent", "survey_answered", "survey_satisfied")]
            + [w("response_rate"), w("survey_satisfaction")],
            [
                (
                    w.mall(r["mall_id"]),
                    w.code("channel", r["channel"]),
                    r["sent"],
                    r["answered"],
                    r["satisfied"],
                    _pct(r["response_rate"]),
                    _pct(r["satisfaction"]),
                )
                for r in report["surveys"]["items"]
            ],
            w,
        ),
    ]
    return (
        f"<!DOCTYPE html><html lang={'zh-CN' if w.lang == 'zh' else 'en'}><head><meta charset=utf-8>"
        f"<title>{escape(w(report['kind']))} {escape(report['period'])}</title><style>{STYLE}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>"
    )


def _scorecards(report, w):
    """R7.11: the scorecards of handlers, departments and malls, a table each."""
    headings = [w(k) for k in CARD_HEADINGS]
    cell = lambda v: "-" if v is None else _pct(v) if isinstance(v, float) else v  # noqa: E731 (a Share is a float)
    parts = []
    for scope, key, heading, name in (
        ("handlers", "handler", "handler", lambda x: w("unassigned") if x == "none" else x),
        (
            "departments",
            "department",
            "department",
            lambda d: w("unassigned") if d == "none" else w.code("department", d),
        ),
        ("malls", "mall_id", "mall", w.mall),
    ):
        rows = [(name(r[key]), *(cell(v) for v in card_row(r))) for r in report["scorecards"][scope]]
        parts += [_h2(w(f"scorecard_{scope[:-1]}")), _table([w(heading), *headings], rows, w)]
    return parts


def _h2(text):
    return f"<h2>{escape(text)}</h2>"


def _pct(share):
    return "-" if share is None else f"{share * 100:.1f}%"


def _kpi(label, value, css=""):
    return f"<span class='kpi {css}'><b>{escape(str('-' if value is None else value))}</b>{escape(label)}</span>"


def _bars(title, rows, w, color="#2b6cb0", width=420):
    """A horizontal SVG bar per (label, value, text); bars scale to the largest value. Its
    accessible name is the chart's title."""
    if not rows:
        return f"<p class=note>{escape(w('no_data'))}</p>"
    top = max(v or 0 for _, v, _ in rows) or 1
    line, label_w = 22, 260
    bars = []
    for i, (label, value, text) in enumerate(rows):
        y, bar = i * line, (value or 0) / top * width
        bars.append(
            f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end' font-size='12'>{escape(str(label))}"
            f"</text><rect x='{label_w}' y='{y + 3}' width='{bar:.1f}' height='{line - 6}' fill='{color}'/>"
            f"<text x='{label_w + bar + 4:.1f}' y='{y + 15}' font-size='12'>{escape(text)}</text>"
        )
    size = f"{label_w + width + 80} {len(rows) * line}"  # the viewBox lets a narrow screen scale it down
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{label_w + width + 80}' height='{len(rows) * line}' "
        f"viewBox='0 0 {size}' "
        f"role='img' aria-label='{escape(w('chart'))}: {escape(title)}'>{''.join(bars)}</svg>"
    )


def _table(headings, rows, w):
    if not rows:
        return f"<p class=note>{escape(w('none'))}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr>"
        + "".join(f"<td class=n>{v}</td>" if isinstance(v, (int, float)) else f"<td>{escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    # a wide table (a scorecard's nine columns) scrolls inside its box on a tablet, not the page
    return f"<div class=wide tabindex=0><table><tr>{head}</tr>{body}</table></div>"
