"""R7.5 on the case page, in headless Chromium: merchant relations sends a tenant's case to its
merchant with the note of what it wants, the merchant (its own key, through the API) replies
with its evidence, and the case page shows the copy of its reply and the evidence in Chinese
and English; merchant relations takes it back. Screenshots: test-artifacts/console/console_merchants/."""

import requests

from tests.e2e.conftest import Console, desk_case
from tests.e2e.test_console_day import both
from tests.helpers import api_key


def test_console_merchants(console, browser):
    """R7.5, seed 001: 要求最终回复的复印件; seed 002: 誰管理、誰舉證、誰整改."""
    c = Console(browser, console)
    number = desk_case(
        console, "奶茶店店员态度恶劣，还少找我20块钱", {"area": "2F drinks", "merchant_id": "T-233"}, "李女士", "139"
    )

    c.login("E3501", "queue")
    c.driver.get(f"{console}/#/case/{number}")
    c.el("#merchant")
    assert "一点点奶茶" in c.el("#merchant").text  # the merchant by its name
    c.click("#merchant-send")  # no note: refused, said at the field
    assert c.text('#merchant-form [data-error-for="note"]')
    c.type('#merchant-form [data-path="note"]', "请提供当班收银记录与监控截图，并给顾客最终答复")
    c.act("#merchant-send")
    awaiting = c.el('#merchant-requests li[data-status="awaiting"]')
    assert "待商户答复" in awaiting.text and "请提供当班收银记录" in awaiting.text

    merchant = {"Authorization": "ApiKey " + api_key("t233-sh")["X-Api-Key"]}
    replied = requests.post(
        f"{console}/api/resolution/merchant/cases/{number}/reply",
        headers=merchant,
        json={
            "reply": "经查监控，少找20元属实，已向顾客致歉并退还20元。",
            "evidence": [{"ref": "oss://t233/cctv-1610.mp4", "description": "收银台监控"}],
        },
        timeout=20,
    )
    assert replied.status_code == 200, replied.text
    c.driver.refresh()
    answer = c.el('#merchant-requests li[data-status="replied"]')
    assert "商户已答复" in answer.text and "已向顾客致歉并退还20元" in answer.text
    assert "收银台监控 · oss://t233/cctv-1610.mp4" in answer.text
    assert "商户答复及证据" in c.el("#timeline").text  # the timeline's entry in words
    both(c, "merchant-replied", '#merchant-requests li[data-status="replied"]')

    c.type('#merchant-takeback-form [data-path="reason"]', "答复已收到，由招商部回复顾客")
    c.act("#merchant-takeback")
    assert "已收回" in c.el('#merchant-requests li[data-request="1"]').text
    assert not c.driver.find_elements(c.By.CSS_SELECTOR, "#merchant-takeback-form")
    gone = requests.get(f"{console}/api/resolution/merchant/cases/{number}", headers=merchant, timeout=10)
    assert gone.status_code == 404  # the merchant's access ended
    c.shot("merchant-taken-back")
