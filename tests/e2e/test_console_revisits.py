"""Issue 20: the revisit caller's working day, end to end in headless Chromium. Two complaints
settled at Xujiahui's desk (through the services' APIs) wait in the desk clerk's revisit worklist:
each with its mall, category, channel and way in words, its due time with an SLA mark, the
attempts so far and the next try. The clerk reveals the first customer's full number (intake's
audited read, for a purpose chosen from the list: the audit log holds it), records a dissatisfied
answer with reason tags (a missing score is refused at its field): the card says the case reopens,
resolution reopens it, and the month's report counts the reasons. In English the clerk records an
unanswered call on the second: its attempt, and the retry feedback schedules. All from the
keyboard where a clerk would use it. Then (R7.14, seed 002: 每月更新客诉案例库) the supervisor
closes the reopened case, and the month's review of the case library lists it as a candidate,
reopened and with a dissatisfied customer; the supervisor adds it with its lessons (a lesson is
required) and cannot finish a month that has not ended.
Screenshots: test-artifacts/console/console_revisits/ (gitignored)."""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import requests
from selenium.webdriver.common.keys import Keys

from mallcare_cli.examples import desk_complaint
from tests.e2e.conftest import Console, quietly
from tests.helpers import SPOT_REFUND, wait_for

CALLER = "D3001"  # Xujiahui's desk clerk 许静, who makes the revisit calls
SUPERVISOR = "E3011"  # Xujiahui's supervisor: closes a reopened case, reviews the library's month


def test_the_revisit_caller_reveals_records_and_the_case_reopens(console, browser):
    phone = f"137{uuid.uuid4().int % 10**8:08d}"
    first, second = _settled(console, phone), _settled(console, f"136{uuid.uuid4().int % 10**8:08d}")
    _walk(Console(browser, console), console, first, second, phone)


def _token(url, staff_id):
    return {
        "Authorization": "Bearer "
        + requests.post(url + "/login", json={"staff_id": staff_id}, timeout=10).json()["token"]
    }


def _get(url, staff_id, path, **query):
    answer = requests.get(f"{url}/api/{path}", params=query, headers=_token(url, staff_id), timeout=20)
    return answer.json() if answer.status_code == 200 else None


def _settled(url, phone):
    """A complaint registered at Xujiahui's desk and settled there on the spot; back once
    feedback has scheduled its revisit."""
    desk = _token(url, CALLER)
    body = desk_complaint(channel_ref=f"e2e-{uuid.uuid4().hex}", customer={"name": "周女士", "phone": phone})
    sent = requests.post(url + "/api/intake/complaints", json=body, headers=desk, timeout=20)
    assert sent.status_code == 201, sent.text
    number = sent.json()["number"]
    wait_for(lambda: _get(url, CALLER, f"resolution/cases/{number}"), timeout=30)  # opened by events after triage
    settled = requests.post(
        f"{url}/api/resolution/cases/{number}/spot-resolution", json=SPOT_REFUND, headers=desk, timeout=20
    )
    assert settled.status_code == 200, settled.text
    wait_for(lambda: number in _worklist(url), timeout=30)
    return number


def _worklist(url):
    return {r["complaint_no"]: r for r in _get(url, CALLER, "feedback/revisits", mall_id="sh-xujiahui")["items"]}


def _walk(c, url, first, second, phone):
    c.login(CALLER, "revisits")
    card = f'section[data-complaint="{first}"]'
    c.el(card)
    facts = c.el(f"{card} dl.facts").text
    for words in (
        "商品质量问题",
        "服务台",
        "电话回访",
        "待回访",
        "0 / 3",
    ):  # category, channel, way, status, attempts in words
        assert words in facts, (words, facts)
    assert "上海徐家汇店" in c.el(f"{card} h2").text
    assert c.el(f"{card} h2 a").get_attribute("href").endswith(f"#/case/{first}")
    assert c.el(f"{card} [data-sla]").get_attribute("data-sla") == "ok"
    revisit = _worklist(url)[first]
    assert c.el(f"{card} [data-next-attempt]").get_attribute("data-next-attempt") == revisit["next_attempt_at"]
    due = datetime.fromisoformat(revisit["due_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert due.strftime("%H:%M") in facts  # the mall's time, whatever the browser's zone
    masked = c.el(f'{card} [data-contact="masked"]').text
    assert masked.endswith(phone[-4:]) and phone not in masked
    c.shot("worklist")

    # The full number, from the keyboard: the purpose chosen, Tab to the button, Enter.
    purpose = c.el(f'{card} [data-path="purpose"]')
    c.Select(purpose).select_by_value("revisit_call")
    purpose.send_keys(Keys.TAB)
    c.driver.switch_to.active_element.send_keys(Keys.ENTER)
    link = c.el(f"{card} a[data-tel]")
    assert (link.text, link.get_attribute("href")) == (phone, f"tel:{phone}")
    assert c.driver.switch_to.active_element == link  # focus follows, to dial at once
    assert "回访" in c.el(f"{card} [data-revealed]").text
    c.shot("number-revealed")
    # the caller's own read; notify's reads of the contact, when it sends during the mall's hours, are audited too
    audited = _get(url, "L9001", "intake/audit", mall_id="sh-xujiahui")["items"]
    [read] = [a for a in audited if a["number"] == first and not a["user"].startswith("service:")]
    assert (read["user"], read["purpose"], read["subject"]) == (CALLER, "回访", "complaint")

    # Reached but no score: refused at the score field; then the answer, dissatisfied, with reasons.
    form = f"{card} form[data-record]"
    c.choose(f'{form} [data-path="outcome"]', "reached")
    c.click(f"{form} button[type=submit]")
    assert c.text(f'{form} [data-error-for="score"]')
    assert c.el(f'{form} [data-path="score"]').get_attribute("aria-invalid") == "true"
    c.choose(f'{form} [data-path="score"]', "2")
    for reason in ("slow", "communication"):
        c.click(f'{form} [data-reason="{reason}"]')
    c.type(f'{form} [data-path="comment"]', "退款到账太慢，也没人告诉我进度")
    c.click(f"{form} button[type=submit]")
    c.el(f'{card} [data-outcome-next="dissatisfied"]')
    assert "重新打开" in c.text(f"{card} [data-outcome-next]")
    assert c.el(f'{card} [data-answer="dissatisfied"]').text.count("处理太慢") == 1
    assert "已接通" in c.el(f"{card} table.attempts").text and "许静" in c.el(f"{card} table.attempts").text
    c.shot("dissatisfied-recorded")

    # Resolution reopens the case; the month's report counts the reasons.
    wait_for(lambda: (_get(url, "E3011", f"resolution/cases/{first}") or {}).get("state") == "reopened", timeout=30)
    period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")

    def reasons():
        report = _get(url, "E3011", "analytics/reports/monthly", period=period, mall_id="sh-xujiahui") or {}
        return {r["reason"]: r["count"] for r in report.get("satisfaction", {}).get("reasons", [])}

    assert wait_for(lambda: reasons() or None, timeout=30) == {"slow": 1, "communication": 1}

    # In English: the second customer does not answer; the attempt and the retry are shown.
    c.click("#lang")
    c.wait.until(lambda d: quietly(lambda _: c.el("h1").text == "Revisit worklist", d))
    assert not c.driver.find_elements(c.By.CSS_SELECTOR, card)  # answered: off the worklist
    card = f'section[data-complaint="{second}"]'
    assert "Phone call" in c.el(f"{card} dl.facts").text
    form = f"{card} form[data-record]"
    c.choose(f'{form} [data-path="outcome"]', "no_answer")
    assert not c.el(f'{form} [data-path="note"]').get_attribute("aria-invalid")
    c.type(f'{form} [data-path="note"]', "voicemail")
    c.el(f'{form} [data-path="note"]').send_keys(Keys.ENTER)  # Enter sends the form
    assert c.el(f'{card} [data-outcome-next="retry"]').text.startswith("Not reached")
    attempt = c.el(f'{card} table.attempts tr[data-outcome="no_answer"]').text
    assert "No answer" in attempt and "D3001" in attempt and "voicemail" in attempt
    retry = _worklist(url)[second]
    assert retry["status"] == "retry" and retry["next_attempt_at"] == retry["scheduled_at"]
    assert c.el(f"{card} [data-next-attempt]").get_attribute("data-next-attempt") == retry["next_attempt_at"]
    assert "1 / 3" in c.el(f"{card} dl.facts").text and "To try again" in c.el(f"{card} dl.facts").text
    c.shot("no-answer-english")

    # On a tablet (768x1024, upright) the card fits without sideways scrolling.
    c.driver.set_window_size(768, 1024)
    c.driver.execute_script("arguments[0].scrollIntoView()", c.el(card))
    wide = c.driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide[0] <= wide[1] + 1, wide
    c.shot("tablet-english")
    _library_review(c, url, first)


def _library_review(c, url, first):
    closing = requests.post(
        f"{url}/api/resolution/cases/{first}/closure",
        json={"reason": "顾客表示不再追究，主管结案"},
        headers=_token(url, SUPERVISOR),
        timeout=20,
    )
    assert closing.status_code == 200, closing.text
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")

    def candidates():
        review = _get(url, SUPERVISOR, f"feedback/library/reviews/{month}", mall_id="sh-xujiahui") or {}
        return {x["complaint_no"]: x for x in review.get("candidates", [])}

    assert wait_for(lambda: candidates().get(first), timeout=30)["reasons"] == ["reopened", "dissatisfied"]
    c.driver.set_window_size(1280, 900)
    c.login(SUPERVISOR, "library")
    c.click("#library-review-link")
    c.el("#review-pick")
    c.driver.get(f"{url}/#/library/review/sh-xujiahui/{month}")
    row = f'#review-candidates tr[data-number="{first}"]'
    assert "Reopened, Dissatisfied at a revisit" in c.el(row).text
    c.shot("library-review")
    c.click(f"{row} button.add")  # no lessons: refused at the field
    c.wait.until(lambda d: quietly(lambda _: c.el(f'{row} [data-path="lessons"]').get_attribute("aria-invalid"), d))
    c.type(f'{row} [data-path="lessons"]', "复开原因：第一次只退款未解释原因；经验：退款时说明原因并当场确认满意。")
    c.click(f"{row} button.add")
    c.wait.until(lambda d: quietly(lambda _: "Added to the library" in c.el(f"{row} td.decision").text, d))
    entry = _get(url, SUPERVISOR, f"feedback/library/{first}")
    assert entry["lessons"].startswith("复开原因") and entry["automatic"] is False
    c.click("#review-finish")  # the month has not ended: refused, and said why
    c.wait.until(lambda d: quietly(lambda _: f"{month} has not ended" in c.el("#toast").text, d))
    c.shot("library-review-added")
