"""The report as one HTML page a manager opens in a browser: tables and inline SVG bar
charts, no script, no stylesheet or font from elsewhere (it also works offline and
as an e-mail attachment). Takes the JSON report as it is served."""

from html import escape

KINDS = {"monthly": "月度报告 (Monthly report)", "quarterly": "季度报告 (Quarterly report)"}
STYLE = """
body{font-family:"PingFang SC","Microsoft YaHei",Arial,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:2px solid #2b6cb0;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#edf2f7}td.n{text-align:right}.kpi{display:inline-block;margin:0 1.5em .5em 0}
.kpi b{display:block;font-size:1.6em}.bad{color:#c53030}.good{color:#2f855a}.note{color:#666;font-size:.85em}
"""


def render(report, malls):
    """`malls`: the mall registry, for the malls' names."""
    name = (lambda m: getattr(malls.get(m), "name", m)) if malls else (lambda m: m)
    scope = (
        f"{escape(name(report['mall_id']))} ({escape(report['mall_id'])})"
        if report["mall_id"]
        else "全连锁 (Whole chain): " + escape(", ".join(name(m) for m in report["malls"]))
    )
    c, h, s, m = report["counts"], report["handling_time"], report["satisfaction"], report["management"]
    parts = [
        f"<h1>{KINDS[report['kind']]} {escape(report['period'])}</h1><p>{scope}</p>",
        "<h2>投诉数量与结果 (Counts and outcomes)</h2>",
        "".join(
            _kpi(label, c[key])
            for key, label in (
                ("received", "受理 Received"),
                ("rejected", "驳回 Rejected"),
                ("resolved", "已解决 Resolved"),
                ("open", "未结 Open"),
                ("reopened", "重开 Reopened"),
            )
        ),
        "<h2>投诉类型占比 (Share by category)</h2>",
        _bars([(r["category"], r["count"], _pct(r["share"])) for r in report["categories"]]),
        "<h2>处理时长 (Handling time: received → first resolution)</h2>",
        _kpi("平均 Average (h)", h["average_hours"])
        + _kpi("P90 (h, ≤ bucket bound)", h["p90_hours"] or ("> 720" if h["resolved"] else None)),
        _bars(
            [
                (f"≤ {b['le_hours']} h" if b["le_hours"] else "> 720 h", b["count"], str(b["count"]))
                for b in h["buckets"]
            ]
        ),
        f"<p class=note>{escape(report['notes']['handling_time'])}</p>",
        "<h2>超时占比 (Share overdue)</h2>",
        _kpi("超时 Overdue", report["overdue"]["count"]) + _kpi("占比 Share", _pct(report["overdue"]["share"])),
        "<h2>满意度 (Satisfaction, target 85%)</h2>",
        _kpi("满意率 Satisfied", _pct(s["share"]), "good" if s["meets_target"] else "bad")
        + _kpi("回访 Answered", s["answered"])
        + _kpi("不满意 Dissatisfied", s["dissatisfied"])
        + _kpi("未能联系而结案 Closed without an answer", s["closed_without_answer"]),
        _bars([(r["reason"], r["count"], str(r["count"])) for r in s["reasons"]], color="#c05621"),
        "<h2>高频问题 Top 10 (Recurring problems: category × mall × area × merchant)</h2>",
        _table(
            ("类型 Category", "门店 Mall", "区域 Area", "商户 Merchant", "次数 Count"),
            [
                (r["category"], name(r["mall_id"]), r["area"] or "-", r["merchant_id"] or "-", r["count"])
                for r in report["top_problems"]
            ],
        ),
        "<h2>商户投诉率 (Merchant complaint rate = merchant's complaints / all at its mall)</h2>",
        _bars(
            [(f"{name(r['mall_id'])} / {r['merchant_id']}", r["rate"], _pct(r["rate"])) for r in report["merchants"]]
        ),
        "<h2>SLA 达标率：部门 (SLA compliance per department)</h2>",
        _sla(report["sla"]["departments"], "department"),
        "<h2>SLA 达标率：处理人 (SLA compliance per handler)</h2>",
        _sla(report["sla"]["handlers"], "handler"),
        "<h2>SLA 达标率：渠道与服务 (SLA compliance of channel, service and role clocks)</h2>",
        _sla([{**r, "name": f"{r['clock']} / {r['owner']}"} for r in report["sla"]["services"]], "name"),
        "<h2>管理层摘要 (Management summary, R5.4)</h2>",
        _kpi("高风险 High-risk", m["high_risk"])
        + _kpi("其中到达总监 … reached directors", m["high_risk_reached_directors"])
        + _kpi("占比 Share", _pct(m["high_risk_share_reached_directors"]))
        + _kpi("到达总监(全部) All reaching directors", m["reached_directors"]),
        "<h2>未完成改进措施 (Open improvement actions)</h2>",
        _table(
            ("编号 Id", "门店 Mall", "问题 Problem", "根因 Root cause", "措施 Action", "负责人 Owner", "截止 Due"),
            [
                (
                    a["action_id"],
                    name(a["mall_id"]),
                    a["problem"]["summary"],
                    a["root_cause"],
                    a["action"],
                    a["owner_id"],
                    a["due_date"] + (" (逾期 overdue)" if a["overdue"] else ""),
                )
                for a in report["actions"]["items"]
            ],
        ),
    ]
    return (
        f"<!DOCTYPE html><html lang=zh><head><meta charset=utf-8><title>mallcare {escape(report['period'])}"
        f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )


def _pct(share):
    return "-" if share is None else f"{share * 100:.1f}%"


def _kpi(label, value, css=""):
    return f"<span class='kpi {css}'><b>{escape(str('-' if value is None else value))}</b>{escape(label)}</span>"


def _bars(rows, color="#2b6cb0", width=420):
    """A horizontal SVG bar per (label, value, text); bars scale to the largest value."""
    if not rows:
        return "<p class=note>无数据 (no data)</p>"
    top = max(v or 0 for _, v, _ in rows) or 1
    line, label_w = 22, 260
    bars = []
    for i, (label, value, text) in enumerate(rows):
        y, w = i * line, (value or 0) / top * width
        bars.append(
            f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end' font-size='12'>{escape(str(label))}"
            f"</text><rect x='{label_w}' y='{y + 3}' width='{w:.1f}' height='{line - 6}' fill='{color}'/>"
            f"<text x='{label_w + w + 4:.1f}' y='{y + 15}' font-size='12'>{escape(text)}</text>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{label_w + width + 80}' height='{len(rows) * line}' "
        f"role='img'>{''.join(bars)}</svg>"
    )


def _table(headings, rows):
    if not rows:
        return "<p class=note>无 (none)</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr>"
        + "".join(f"<td class=n>{v}</td>" if isinstance(v, (int, float)) else f"<td>{escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _sla(rows, name):
    return _bars(
        [
            (
                r[name],
                r["compliance"],
                f"{_pct(r['compliance'])} ({r['met']} met / {r['breached']} breached"
                + (f" / {r['cancelled']} cancelled)" if r["cancelled"] else ")"),
            )
            for r in rows
        ],
        color="#2f855a",
    )
