"""Issue 9: the ops dashboard's live view, end to end in headless Chromium. The chain's
operations director (E0901, malls ["*"]) sees the chain: open / at risk / breached from
analytics' live report, the open-by-stage chart and the malls ranked by breached, then at
risk. A complaint registered at Chaoyang's desk (through the console's API, as the desk
page sends it) raises the chain's open count; a click on Chaoyang's row opens that mall.
Screenshots go to test-artifacts/console/console_dashboard.../ (gitignored)."""

import uuid

import requests

from mallcare_cli.examples import desk_complaint
from tests.e2e.conftest import Console, quietly


def test_the_chain_view_counts_a_new_complaint_and_opens_a_mall(console, browser):
    _walk(Console(browser, console), console)


def _walk(c, url):
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

    # in English the stages have English names (the page renders again, the chain first)
    c.click("#lang")
    c.wait.until(lambda d: quietly(lambda _: c.el("h1").text.startswith("Operations dashboard"), d))
    assert c.el('#dash-stages tr[data-stage="acknowledgement"] th').text == "Acknowledgement"
    c.shot("chain-english")
