"""R7.6 on the case page, in headless Chromium: a complaint of a yoghurt batch shows the check of
its batch; procurement/QC takes the goods off the shelf and records the inspection, the form of
each step shown to them only while it is theirs; the store manager gives the result and
publishes it, and the case's timeline shows it, in Chinese and English. Screenshots:
test-artifacts/console/console_batches/."""

from tests.e2e.conftest import Console, desk_case
from tests.e2e.test_console_day import both


def test_console_batches(console, browser):
    """R7.6, seed 002: 核查同批次商品并公示结果."""
    c = Console(browser, console)
    number = desk_case(console, "这批酸奶胀袋了，批号20261201", {"area": "B1 dairy"}, "王女士")

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
