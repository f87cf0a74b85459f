"""R7.6 on the case page, in headless Chromium: a complaint of a yoghurt batch shows the check of
its batch; procurement/QC takes the goods off the shelf and records the inspection, the form of
each step shown to them only while it is theirs; the store manager gives the result and
publishes it, and the case's timeline shows it, in Chinese and English. Screenshots:
test-artifacts/console/console_batches/."""

import uuid

import requests

from tests.e2e.conftest import Console
from tests.e2e.test_console_day import both
from tests.helpers import wait_for


def test_console_batches(console, browser):
    """R7.6, seed 002: 核查同批次商品并公示结果."""
    c = Console(browser, console)
    number = _yoghurt_complaint(console)

    c.login("E3101", "queue")  # procurement/QC
    c.driver.get(f"{console}/#/case/{number}")
    assert "待下架封存" in c.el("#batch-check").text and "20261201" in c.el("#batch-check").text
    c.click("#batch-send")  # nothing said of what was taken off: refused at the field
    assert c.text('#batch-form [data-error-for="note"]')
    c.type('#batch-form [data-path="note"]', "货架和仓库共下架该批次酸奶42袋，封存待检")
    c.act("#batch-send")
    assert c.el("#batch-next").get_attribute("data-step") == "inspect"
    c.type('#batch-form [data-path="finding"]', "抽检6袋，4袋胀袋，菌落总数超标")
    c.act("#batch-send")
    assert "已检验待结论" in c.el("#batch-state").text
    assert not c.driver.find_elements(c.By.CSS_SELECTOR, "#batch-form")  # the result is the store manager's
    both(c, "batch-inspected", "#batch-steps")

    c.login("E3091", "dashboard")  # the store manager
    c.driver.get(f"{console}/#/case/{number}")
    c.choose('#batch-form [data-path="verdict"]', "unsafe")
    c.choose('#batch-form [data-path="action"]', "returned_to_supplier")
    c.type('#batch-form [data-path="summary"]', "该批次酸奶胀袋，已全部下架并退回供应商")
    c.act("#batch-send")
    assert "不合格 · 退回供应商" in c.el("#batch-steps").text
    c.act("#batch-send")  # publish it
    assert "已公示" in c.el("#batch-state").text
    c.until(lambda: "同批次核查结果" in c.el("#timeline").text)  # the result on the case, from the event
    both(c, "batch-published", "#batch-check")


def _yoghurt_complaint(url):
    """A complaint at the desk about a batch of the supermarket's yoghurt, its case open."""
    token = requests.post(url + "/login", json={"staff_id": "D3001"}, timeout=10).json()["token"]
    signed_in = {"Authorization": f"Bearer {token}"}
    answer = requests.post(
        url + "/api/intake/complaints",
        headers=signed_in,
        json={
            "mall_id": "sh-xujiahui",
            "channel": "desk",
            "channel_ref": f"e2e-{uuid.uuid4().hex}",
            "customer": {"name": "王女士", "phone": f"138{uuid.uuid4().int % 10**8:08d}"},
            "location": {"area": "B1 dairy"},
            "description": "这批酸奶胀袋了，批号20261201",
        },
        timeout=20,
    )
    assert answer.status_code == 201, answer.text
    number = answer.json()["number"]
    wait_for(lambda: requests.get(f"{url}/api/resolution/cases/{number}", headers=signed_in, timeout=10).ok, timeout=30)
    return number
