"""Issues 9 and 20: the ops dashboard end to end in headless Chromium. The chain's
operations director (E0901, malls ["*"]) sees the chain: open / at risk / breached from
analytics' live report, the open-by-stage chart and the malls ranked by breached, then at
risk. A complaint registered at Chaoyang's desk (through the console's API, as the desk
page sends it) raises the chain's open count; a click on Chaoyang's row opens that mall.
The month's report opens as a page with its charts drawn, and downloads as a CSV and as a
spreadsheet for the monthly meeting, in Chinese and in English.
Screenshots go to test-artifacts/console/console_dashboard.../ (gitignored)."""

import base64
import csv
import io
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import requests
from selenium.webdriver.common.keys import Keys

from mallcare_cli.examples import desk_complaint
from tests.e2e.conftest import WAIT, Console, code_words_in, open_report, quietly


def test_the_chain_view_counts_a_new_complaint_and_opens_a_mall(console, browser, tmp_path):
    _walk(Console(browser, console), console, tmp_path)


def _walk(c, url, downloads):
    c.login("E0901", "dashboard")  # the chain's operations director: the chain view first
    assert c.el("#dash-mall").get_attribute("value") == ""
    c.wait.until(lambda d: quietly(lambda _: c.kpi("open_cases") is not None, d))
    before = c.kpi("open_cases")
    malls = [tr.get_attribute("data-mall") for tr in c.driver.find_elements(c.By.CSS_SELECTOR, "#dash-malls tbody tr")]
    assert {"sh-xujiahui", "bj-chaoyang", "gz-tianhe"} <= set(malls)  # every mall, ranked
    assert c.kpi("at_risk") is not None and c.kpi("breached") is not None
    c.shot("chain-before")

    # Chaoyang's desk registers a complaint (the desk page's own call, through the console)
    token = requests.post(url + "/login", json={"staff_id": "D4001"}, timeout=10).json()["token"]
    body = desk_complaint(
        mall_id="bj-chaoyang",
        channel_ref=f"desk-{uuid.uuid4().hex[:10]}",
        customer={"name": "李先生", "phone": f"139{uuid.uuid4().int % 10**8:08d}"},
        description="二楼电梯口地面湿滑，差点摔倒",
        location={"area": "fresh produce", "merchant_id": "B-101", "merchant_name": "盒马鲜生"},  # Chaoyang's
    )
    sent = requests.post(
        url + "/api/intake/complaints", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15
    )
    assert sent.status_code == 201, sent.text

    # the chain's open count goes up once analytics has the complaint's acknowledgement clock
    c.until(lambda: (c.kpi("open_cases") or 0) > before, "#dash-refresh")
    chaoyang = c.el('#dash-malls tr[data-mall="bj-chaoyang"]')
    assert int(chaoyang.find_elements(c.By.TAG_NAME, "td")[2].text) >= 1
    stages = [
        tr.get_attribute("data-stage")
        for tr in c.driver.find_elements(c.By.CSS_SELECTOR, "#dash-stages tr[data-stage]")
    ]
    assert "acknowledgement" in stages  # the open-by-stage chart
    assert c.el('#dash-stages tr[data-stage="acknowledgement"] th').text == "告知顾客"
    c.driver.execute_script("arguments[0].scrollIntoView()", c.el("#dash-stages"))
    c.shot("chain-after")

    # a click on Chaoyang's row: the picker switches to that mall, its own view
    c.click('#dash-malls tr[data-mall="bj-chaoyang"]')
    c.wait.until(lambda d: c.el("#dash-mall").get_attribute("value") == "bj-chaoyang")
    c.wait.until(
        lambda d: quietly(
            lambda _: not d.find_elements(c.By.CSS_SELECTOR, "#dash-malls") and (c.kpi("open_cases") or 0) >= 1, d
        )
    )
    assert "null" not in c.el("#dash-body").text
    c.el('#dash-stages tr[data-stage="acknowledgement"]')
    c.shot("mall-view")

    # the month's report as a page: its charts drawn, the whole page shown, the mall and stages in words
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    report = open_report(c, "图表: 投诉类型占比")
    assert report["lang"] == "zh-CN" and "月度报告" in report["text"] and "北京朝阳店" in report["text"]
    assert not code_words_in(report["text"], "zh")
    c.shot("monthly-report")

    # the downloads for the monthly meeting, as Chromium saves them
    c.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    c.click("#dash-csv")
    rows = list(csv.reader(io.StringIO(_saved(downloads / f"mallcare-bj-chaoyang-{month}.csv").decode("utf-8-sig"))))
    assert rows[0] == ["期间", "范围", "部分", "项目", "指标", "数值"]
    received = next(r for r in rows if r[2] == "概况" and r[4] == "受理")
    assert received[:2] == [month, "北京朝阳店"] and int(received[5]) >= 1
    assert not code_words_in(" ".join(" ".join(r) for r in rows), "zh")
    c.el("#dash-xlsx").send_keys(Keys.ENTER)  # from the keyboard too
    book = openpyxl.load_workbook(io.BytesIO(_saved(downloads / f"mallcare-bj-chaoyang-{month}.xlsx")))
    assert book.sheetnames[:2] == ["概况", "投诉类型占比"]
    summary = {row[0]: row[1] for row in book["概况"].iter_rows(values_only=True)}
    assert summary["范围"] == "北京朝阳店" and summary["受理"] >= 1 and summary["期间"] == month

    # in English the stages have English names (the page renders again, the chain first)
    c.click("#lang")
    c.wait.until(lambda d: quietly(lambda _: c.el("h1").text.startswith("Operations dashboard"), d))
    assert c.el('#dash-stages tr[data-stage="acknowledgement"] th').text == "Acknowledgement"
    c.shot("chain-english")
    report = open_report(c, "Chart: Share by category")
    assert report["lang"] == "en" and "Monthly report" in report["text"] and "Beijing Chaoyang" in report["text"]
    assert not code_words_in(report["text"], "en")
    c.shot("monthly-report-english")
    c.choose("#dash-kind", "quarterly")
    c.click("#dash-xlsx")
    quarter = f"{month[:4]}-Q{(int(month[5:]) + 2) // 3}"
    book = openpyxl.load_workbook(io.BytesIO(_saved(downloads / f"mallcare-chain-{quarter}.xlsx")))
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    assert summary["Period"] == quarter and summary["Scope"].startswith("Whole chain") and summary["Received"] >= 1

    # on a tablet the dashboard and the report fit the width (the charts scale down)
    c.driver.set_window_size(768, 1024)
    open_report(c, "Chart: Share by category")
    assert c.driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert c.driver.execute_script(
        "const page = document.querySelector('#dash-report').contentDocument.documentElement;"
        "return page.scrollWidth <= page.clientWidth"
    )
    c.shot("monthly-report-tablet")

    # the report page on its own (as saved or mailed): axe-core finds nothing serious in it either
    token = requests.post(url + "/login", json={"staff_id": "E0901"}, timeout=10).json()["token"]
    page = requests.get(
        url + "/api/analytics/reports/monthly.html",
        params={"period": month, "mall_id": "bj-chaoyang", "lang": "zh"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    c.driver.get("data:text/html;charset=utf-8;base64," + base64.b64encode(page.content).decode())
    assert "北京朝阳店" in c.driver.find_element(c.By.TAG_NAME, "body").text
    assert not c.accessibility()


def _saved(path):
    """A download's bytes once Chromium has finished writing it."""
    deadline = time.monotonic() + WAIT
    while not path.exists() or path.with_name(path.name + ".crdownload").exists():
        assert time.monotonic() < deadline, (
            f"{path.name} not downloaded: {sorted(p.name for p in path.parent.iterdir())}"
        )
        time.sleep(0.2)
    return path.read_bytes()
