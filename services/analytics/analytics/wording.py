"""The report in its reader's language (zh or en): the code words it holds (categories,
reasons, departments, clocks, channels, roles) in the words of deploy/policy/labels.yml,
malls and merchants by their names from the mall registry, and the report's own headings.
The page (html_report), the CSV and the spreadsheet (export) all speak through `Words`."""

from .reports import SATISFACTION_TARGET

LANGUAGES = ("zh", "en")

# The report's own text (not code words: those come from labels.yml).
TEXT = {
    "monthly": ("月度报告", "Monthly report"),
    "quarterly": ("季度报告", "Quarterly report"),
    "half_year": ("半年度方案评估报告", "Half-year review report"),
    "chain": ("全连锁", "Whole chain"),
    "period": ("期间", "Period"),
    "scope": ("范围", "Scope"),
    "counts": ("投诉数量与结果", "Counts and outcomes"),
    "received": ("受理", "Received"),
    "rejected": ("驳回", "Rejected"),
    "registered": ("登记", "Registered"),
    "resolved": ("已解决", "Resolved"),
    "open": ("未结", "Open"),
    "reopened": ("重开", "Reopened"),
    "categories": ("投诉类型占比", "Share by category"),
    "category": ("类型", "Category"),
    "count": ("次数", "Count"),
    "share": ("占比", "Share"),
    "handling": ("处理时长（受理至首次解决）", "Handling time (received to first resolution)"),
    "average_hours": ("平均（小时）", "Average (hours)"),
    "p90_hours": ("P90（小时，所在区间上限）", "P90 (hours, upper bound of its bucket)"),
    "bucket": ("时长区间", "Time taken"),
    "within": ("≤ {n} 小时", "≤ {n} h"),
    "over": ("> 720 小时", "> 720 h"),
    "overdue": ("超时", "Overdue"),
    "overdue_title": ("超时占比", "Share overdue"),
    "satisfaction": (
        f"满意度（目标 {SATISFACTION_TARGET:.0%}）",
        f"Satisfaction (target {SATISFACTION_TARGET:.0%})",
    ),
    "satisfied_share": ("满意率", "Satisfied"),
    "answered": ("回访答复", "Answered"),
    "satisfied": ("满意", "Satisfied answers"),
    "dissatisfied": ("不满意", "Dissatisfied"),
    "closed_without_answer": ("未能联系而结案", "Closed without an answer"),
    "reasons": ("不满意原因", "Reasons for dissatisfaction"),
    "reason": ("原因", "Reason"),
    "top_problems": ("高频问题 Top 10", "Recurring problems, top 10"),
    "mall": ("门店", "Mall"),
    "area": ("区域", "Area"),
    "merchant": ("商户", "Merchant"),
    "merchants": (
        "商户投诉率（商户投诉 / 门店全部投诉）",
        "Merchant complaint rate (its complaints / all at its mall)",
    ),
    "merchant_scorecard": ("商户考核（投诉、时限、满意度）", "Merchant scorecard"),
    "rank": ("排名", "Rank"),
    "complaints": ("投诉", "Complaints"),
    "mall_complaints": ("门店投诉", "Complaints at the mall"),
    "rate": ("投诉率", "Rate"),
    "sla_departments": ("SLA 达标率：部门", "SLA compliance per department"),
    "sla_handlers": ("SLA 达标率：处理人", "SLA compliance per handler"),
    "sla_services": ("SLA 达标率：渠道、服务与角色", "SLA compliance of channel, service and role clocks"),
    "department": ("部门", "Department"),
    "handler": ("处理人（工号）", "Handler (staff no.)"),
    "clock": ("环节", "Stage"),
    "owner": ("负责方", "Kept by"),
    "met": ("达标", "Met"),
    "breached": ("超时", "Breached"),
    "cancelled": ("取消", "Cancelled"),
    "compliance": ("达标率", "Compliance"),
    "management": ("管理层摘要", "Management summary"),
    "high_risk": ("高风险", "High-risk"),
    "high_risk_reached_directors": ("其中到达总监", "of which reached directors"),
    "high_risk_share_reached_directors": ("到达总监占比", "Share reaching directors"),
    "reached_directors": ("到达总监（全部）", "All reaching directors"),
    "actions": ("未完成改进措施", "Open improvement actions"),
    "actions_open": ("进行中", "Open"),
    "actions_overdue": ("已逾期", "Overdue"),
    "actions_proposed": ("待分析", "Proposed"),
    "scorecard_handler": ("处理人绩效", "Scorecard: handlers"),
    "scorecard_department": ("部门绩效", "Scorecard: departments"),
    "scorecard_mall": ("门店绩效", "Scorecard: malls"),
    "card_complaints": ("投诉量", "Complaints"),
    "unassigned": ("未分配", "Unassigned"),
    "card_resolved": ("已解决", "Resolved"),
    "first_contact_rate": ("首次接触解决率", "First-contact resolution"),
    "reopen_rate": ("重开率", "Reopen rate"),
    "escalation_rate": ("升级率", "Escalation rate"),
    "cost": ("投诉成本", "The cost of complaints"),
    "cost_total_yuan": ("补偿总额（元）", "Compensation paid (yuan)"),
    "cost_reopened_yuan": ("重开案件补偿（元）", "Paid on reopened cases (yuan)"),
    "cost_categories": ("补偿金额（按类别）", "Compensation by category"),
    "cost_merchants": ("补偿金额（按商户）", "Compensation by merchant"),
    "cost_remedies": ("补救措施（按类型）", "Remedies by type"),
    "yuan": ("金额（元）", "Amount (yuan)"),
    "remedy": ("补救措施", "Remedy"),
    "incidents": ("不良事件", "Adverse events"),
    "incidents_reported": ("不良事件（上报）", "Adverse events reported"),
    "incidents_dismissed": ("不良事件（核实不属实）", "Adverse events dismissed"),
    "incidents_compensation_yuan": ("不良事件补偿（元）", "Adverse events: compensation (yuan)"),
    "incident_steps": ("不良事件处理时效", "Adverse events: steps in time"),
    "incident_types": ("不良事件类型", "Adverse events by type"),
    "incident_step": ("环节", "Step"),
    "incident_type": ("类型", "Type"),
    "incident_forwarded": ("店长核实转交（24小时）", "Verified and forwarded (24 h)"),
    "incident_handled": ("区域经理处置（48小时）", "Handled by the regional manager (48 h)"),
    "incident_told": ("处理结果告知顾客", "Result told to the customer"),
    "in_time": ("按时", "In time"),
    "library_reviews": ("客诉案例库月度更新", "Case library: monthly reviews"),
    "library_reviews_done": ("案例库月度更新（已完成）", "Library reviews done"),
    "library_reviews_due": ("案例库月度更新（待完成）", "Library reviews due"),
    "surveys": ("顾客满意度调查（定期抽样）", "Satisfaction surveys (sampled)"),
    "surveys_sent": ("满意度调查（已发出）", "Surveys sent"),
    "surveys_answered": ("满意度调查（已答复）", "Surveys answered"),
    "surveys_satisfied": ("满意度调查（满意）", "Surveys satisfied"),
    "survey_channel": ("投诉渠道", "Complaint channel"),
    "survey_sent": ("已发出", "Sent"),
    "survey_answered": ("已答复", "Answered"),
    "survey_satisfied": ("满意", "Satisfied"),
    "response_rate": ("答复率", "Response rate"),
    "survey_satisfaction": ("满意率", "Satisfied share"),
    "month": ("月份", "Month"),
    "review_status": ("状态", "Status"),
    "review_done": ("已完成", "Done"),
    "review_due": ("待完成", "Due"),
    "candidates": ("候选案例", "Candidates"),
    "added": ("已入库", "Added"),
    "passed": ("未入库", "Passed over"),
    "action_id": ("编号", "No."),
    "problem": ("问题", "Problem"),
    "root_cause": ("根因", "Root cause"),
    "action": ("措施", "Action"),
    "owner_id": ("负责人（工号）", "Owner (staff no.)"),
    "due_date": ("截止", "Due"),
    "summary": ("概况", "Summary"),
    # the spreadsheet's sheet names (31 characters at most)
    "time_taken": ("处理时长", "Handling time"),
    "merchant_rate": ("商户投诉率", "Merchant complaint rate"),
    "sla_others": ("SLA 达标率：渠道与服务", "SLA of channels and services"),
    "section": ("部分", "Section"),
    "item": ("项目", "Item"),
    "metric": ("指标", "Measure"),
    "value": ("数值", "Value"),
    "none": ("无", "None"),
    "no_data": ("无数据", "No data"),
    "chart": ("图表", "Chart"),
}

# Where a clock's keeper (a channel, a role, a department or a service) finds its words.
OWNER_GROUPS = ("channel", "role", "department", "clock_keeper")


class Words:
    """`labels`: labels.yml as mallcare_common.labels loads it; `malls`: the mall registry."""

    def __init__(self, labels, malls, lang="zh"):
        self.groups, self.malls, self.lang = labels["groups"], malls, lang
        self._i = LANGUAGES.index(lang)

    def __call__(self, key, **values):
        return TEXT[key][self._i].format(**values)

    def code(self, group, code):
        """A code word in words; the code itself only where labels.yml has none (an old value)."""
        if code is None:
            return "-"
        return self.groups.get(group, {}).get(code, {}).get(self.lang, code)

    def owner(self, code):
        for group in OWNER_GROUPS:
            if code in self.groups.get(group, {}):
                return self.code(group, code)
        return code

    def problem(self, row):
        """A top problem's row in words, as the page and the files show it: category, mall, area,
        merchant, count."""
        return (
            self.code("category", row["category"]),
            self.mall(row["mall_id"]),
            row["area"] or "-",
            self.merchant(row["mall_id"], row["merchant_id"]),
            row["count"],
        )

    def mall(self, mall_id):
        mall = self.malls.get(mall_id) if self.malls else None
        if mall is None:
            return mall_id
        return mall.name_en or mall.name if self.lang == "en" else mall.name

    def merchant(self, mall_id, merchant_id):
        mall = self.malls.get(mall_id) if self.malls else None
        names = {m["id"]: m["name"] for m in mall.merchants} if mall else {}
        return "-" if merchant_id is None else names.get(merchant_id, merchant_id)

    def scope(self, report):
        if report["mall_id"]:
            return self.mall(report["mall_id"])
        return f"{self('chain')}: " + ", ".join(self.mall(m) for m in report["malls"])

    def bucket(self, le_hours):
        return self("within", n=le_hours) if le_hours else self("over")
