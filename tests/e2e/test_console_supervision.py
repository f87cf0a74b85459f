"""Issue 20: the supervisor's pages, end to end in headless Chromium. A handler's proposal above
their authority (a 500-yuan refund; a handler may grant 200) waits on the supervisor's page with
its compliance figures in words and yuan, and is approved from there; one escalated meanwhile
above the supervisor's level is refused with the service's reason. The customer objects to the
approved answer: the case is due for re-review, with its countdown. The supervisor corrects a
complaint's category and gives it another owner, each with the reason, and records a 5-Why
analysis with its improvement action, then closes it with the evidence. Every step is checked
through the services' APIs. Screenshots in Chinese and English:
test-artifacts/console/console_supervision.../ (gitignored)."""

import uuid
from datetime import date, timedelta

import requests

from tests.helpers import wait_for

from tests.e2e.conftest import Console, quietly

MALL, HANDLER, SUPERVISOR = "sh-xujiahui", "E3001", "E3011"


def test_console_supervision(console, browser):
    _walk(Console(browser, console), Api(console))


class Api:
    """The services' HTTP APIs through the console, as a member of staff."""

    def __init__(self, url):
        self.url, self.tokens = url, {}

    def _headers(self, staff_id):
        if staff_id not in self.tokens:
            answer = requests.post(self.url + "/login", json={"staff_id": staff_id}, timeout=10)
            self.tokens[staff_id] = answer.json()["token"]
        return {"Authorization": f"Bearer {self.tokens[staff_id]}"}

    def get(self, staff_id, path, **params):
        answer = requests.get(f"{self.url}/api/{path}", params=params, headers=self._headers(staff_id), timeout=20)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, staff_id, path, body, expect=(200, 201)):
        answer = requests.post(f"{self.url}/api/{path}", json=body, headers=self._headers(staff_id), timeout=20)
        assert answer.status_code in expect, answer.text
        return answer.json()

    def register(self, description):
        return self.post(
            SUPERVISOR,
            "intake/complaints",
            {
                "mall_id": MALL,
                "channel": "desk",
                "channel_ref": f"e2e-{uuid.uuid4().hex}",
                "customer": {"name": "周女士", "phone": f"137{uuid.uuid4().int % 10**8:08d}"},
                "location": {"area": "home_appliances"},
                "description": description,
            },
        )["number"]

    def case(self, number):
        answer = requests.get(
            f"{self.url}/api/resolution/cases/{number}", headers=self._headers(SUPERVISOR), timeout=20
        )
        return answer.json() if answer.status_code == 200 else None

    def propose_refund(self, number, amount):
        """The handler's finding and a proposal refunding `amount` yuan of an item of that price."""
        self.post(HANDLER, f"resolution/cases/{number}/findings", {"source": "records", "summary": "售出记录属实"})
        return self.post(
            HANDLER,
            f"resolution/cases/{number}/proposals",
            {
                "decision": "upheld",
                "price": amount,
                "reasons": ["商品使用一次即故障，质检确认"],
                "remedies": [{"type": "refund", "amount": amount}],
            },
        )


def _walk(c, api):
    # Setup through the APIs: three complaints, opened as cases by triage's events.
    approve = api.register("电饭煲用了一次就不能加热了，要求退款")
    refuse = api.register("吸尘器充不进电，要求退款")
    regrade = api.register("包装有点问题")
    # setup, not a figure: in a full run the services share one store with every other test
    wait_for(lambda: all(api.case(n) for n in (approve, refuse, regrade)), timeout=90)
    for number in (approve, refuse):
        proposal = api.propose_refund(number, "500")["proposals"][-1]
        assert (proposal["status"], proposal["approver_role"]) == ("awaiting_approval", "supervisor")

    # The supervisor's approvals: each proposal's figures in words and yuan.
    c.login(SUPERVISOR, "supervision")
    card = f'#approvals article[data-number="{approve}"]'
    figures = c.text(f'{card} [data-figures="{approve}"]')
    assert "方案合计" in figures and "¥500.00" in figures and "法定合计" in figures
    assert "超出上限" in figures and "否" in figures
    assert "退款 ¥500.00" in c.text(card) and "张伟" in c.text(card)  # the handler, by name
    c.el(f'#approvals article[data-number="{refuse}"]')
    c.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", c.el(card))
    c.shot("approvals-zh")

    # Escalated twice meanwhile, the other one is now above the supervisor: the service refuses.
    for _ in range(2):
        api.post(SUPERVISOR, f"resolution/cases/{refuse}/escalation", {"reason": "manual"})
    c.click(f"#approve-{refuse}")
    assert "escalated above" in c.text(f"#approve-error-{refuse}")
    assert api.case(refuse)["proposals"][-1]["status"] == "awaiting_approval"

    c.click(f"#approve-{approve}")
    c.until(lambda: not c.driver.find_elements(c.By.CSS_SELECTOR, card))
    approved = api.case(approve)["proposals"][-1]
    assert approved["status"] == "approved" and approved["approvals"][0]["by"] == SUPERVISOR
    # gone from the list, and the refused one too: it now waits for the store manager
    waiting = api.get(SUPERVISOR, "resolution/cases", mall_id=MALL, awaiting_approval_by="supervisor")["items"]
    assert not {approve, refuse} & {c["complaint_no"] for c in waiting}

    # The customer objects to the approved answer: a re-review is due, with its countdown.
    api.post(HANDLER, f"resolution/cases/{approve}/reply", {"proposal_no": 1, "oral": False, "text": "退款 500 元"})
    api.post(HANDLER, f"resolution/cases/{approve}/objection", {"proposal_no": 1, "points": ["还要补偿来回路费"]})
    c.driver.refresh()
    row = f'#re-review-list tr[data-number="{approve}"]'
    assert "钱芳" in c.text(row)  # the supervisor named for the re-review
    assert c.el(f"{row} [data-sla]").get_attribute("data-sla") in ("ok", "risk")
    c.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", c.el(row))
    c.shot("re-reviews-zh")

    # Correct a category, then give the complaint another owner, each with the reason.
    c.choose("#f-grading-complaint_no", regrade)
    c.choose('#correct-form [data-path="field"]', "category")
    c.choose('#correct-form [data-path="value"]', "product.damaged")
    c.click("#correct-submit")  # no reason: refused, said at the field
    assert c.text('#correct-form [data-error-for="reason"]')
    c.type('#correct-form [data-path="reason"]', "看过照片，外包装压坏")
    c.click("#correct-submit")
    assert "商品破损" in c.text('#grading-result[data-field="category"]')
    assessment = api.get(SUPERVISOR, f"triage/assessments/{regrade}")
    assert (assessment["category"], assessment["category_source"]) == ("product.damaged", "corrected")
    assert assessment["history"][-1]["reason"] == "看过照片，外包装压坏"

    c.choose('#reassign-form [data-path="owner_id"]', "E3002")
    c.type('#reassign-form [data-path="reason"]', "李娜熟悉该商户")
    c.click("#reassign-submit")
    assert "李娜" in c.text('#grading-result[data-field="owner"]')
    assessment = api.get(SUPERVISOR, f"triage/assessments/{regrade}")
    assert assessment["owner"]["id"] == "E3002" and assessment["history"][-1]["reason"] == "李娜熟悉该商户"
    c.wait.until(lambda d: (api.case(regrade) or {}).get("owner_id") == "E3002")  # the case follows
    c.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", c.el("#grading"))
    c.shot("grading-zh")

    # Improvement action: the 5 Whys, root cause, action, owner and due date; then done with evidence.
    c.click('#nav a[href="#/actions"]')
    c.el('main[data-page="actions"]')
    problem = f"小家电退货集中{uuid.uuid4().hex[:6]}"
    c.type('#action-form [data-path="problem.summary"]', problem)
    c.choose('#action-form [data-path="problem.category"]', "product.quality_defect")
    whys = ["加热失灵", "温控元件坏", "批次来料不良", "来料未抽检", "抽检标准缺失"]
    for i, why in enumerate(whys):
        c.type(f"#why-{i + 1}", why)
    c.type('#action-form [data-path="action"]', "小家电来料逐批抽检")
    c.choose('#action-form [data-path="owner_id"]', SUPERVISOR)
    due = (date.today() + timedelta(days=14)).isoformat()
    c.driver.execute_script("arguments[0].value = arguments[1]", c.el('#action-form [data-path="due_date"]'), due)
    c.click("#action-submit")  # no root cause: refused, said at the field
    assert c.text('#action-form [data-error-for="root_cause"]')
    c.type('#action-form [data-path="root_cause"]', "采购标准未规定小家电来料抽检")
    c.click("#action-submit")
    row = c.wait.until(
        lambda d: quietly(
            lambda _: next(
                (r for r in d.find_elements(c.By.CSS_SELECTOR, "#action-list tbody tr") if problem in r.text), None
            ),
            d,
        )
    )
    action_id = row.get_attribute("data-action-id")
    assert row.get_attribute("data-status") == "open" and "钱芳" in row.text
    recorded = api.get(SUPERVISOR, f"analytics/actions/{action_id}")
    assert recorded["whys"] == whys and recorded["owner_id"] == SUPERVISOR and recorded["due_date"] == due
    c.shot("actions-zh")

    done = f'#action-list tr[data-action-id="{action_id}"]'
    c.type(f'{done} [data-path="evidence"]', "抽检记录表 2026-12 第一批")
    c.click(f'{done} [data-done="{action_id}"]')
    c.until(lambda: c.el(done).get_attribute("data-status") == "done")
    closed = api.get(SUPERVISOR, f"analytics/actions/{action_id}")
    assert closed["status"] == "done" and closed["evidence"] == "抽检记录表 2026-12 第一批"

    # An action past its due date is marked overdue (analytics works it out by the mall's today).
    late = api.post(
        SUPERVISOR,
        "analytics/actions",
        {
            "mall_id": MALL,
            "problem": {"summary": "试衣间灯坏"},
            "whys": ["灯管老化"],
            "root_cause": "无定期巡检",
            "action": "每周巡检灯具",
            "owner_id": SUPERVISOR,
            "due_date": (date.today() - timedelta(days=2)).isoformat(),
        },
    )["action_id"]
    c.driver.refresh()
    assert c.text(f'#action-list tr[data-action-id="{late}"][data-status="overdue"] [data-overdue]') == "已逾期"
    c.choose("#f-imp-filter-status", "overdue")
    c.until(lambda: [r.get_attribute("data-action-id") for r in _rows(c, "#action-list tbody tr")] == [late])
    c.choose("#f-imp-filter-status", "")
    c.el(done)

    # The same pages in English.
    c.click("#lang")
    c.el('main[data-page="actions"]')
    assert c.el(f"{done} .mark").text == "Done"
    c.shot("actions-en")
    c.click('#nav a[href="#/supervision"]')
    assert "Re-reviewer" in c.text("#re-review-list thead")
    c.shot("supervision-en")

    # Both pages fit a tablet upright without sideways scrolling.
    c.driver.set_window_size(768, 1024)
    for page in ("supervision", "actions"):
        c.driver.get(f"{c.url}/#/{page}")
        c.el(f'main[data-page="{page}"]')
        wide, seen = c.driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide <= seen + 1, f"{page} is {wide}px wide on a {seen}px tablet"
    c.shot("actions-tablet")


def _rows(c, css):
    return c.driver.find_elements(c.By.CSS_SELECTOR, css)
