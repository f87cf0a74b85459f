"""Issue 19 (R1.2, R7.1): a desk complaint gets no message; the desk prints a receipt slip
for the customer instead, and printing it is the acknowledgement, in person. The slip shows
the mall, the number and when it was received, and on paper nothing but the slip."""

import uuid

import requests

from mallcare_common.auth import issue_token
from tests.e2e.conftest import Console
from tests.helpers import TOKEN_SECRET


def test_the_desk_prints_a_receipt_slip_which_acknowledges_the_complaint(console, browser):
    c = Console(browser, console)
    c.login("D3001", "desk")
    c.choose('[data-path="channel"]', "desk")
    c.type('[data-path="customer.name"]', "陳先生")
    c.type('[data-path="customer.phone"]', f"139{uuid.uuid4().int % 10**8:08d}")
    c.type('[data-path="description"]', "二樓洗手間地滑，我差點跌倒，沒有任何警示牌")
    c.click("#desk-submit")
    number = c.el("#complaint-number").text
    # the browser's print dialog cannot be driven: count the calls instead
    c.driver.execute_script("window.print = () => { window.printed = (window.printed || 0) + 1; };")
    c.click("#receipt-button")
    assert c.el("#receipt-number").text == number
    assert c.el("#receipt h2").text == "上海徐家汇店"
    assert c.el("#receipt-received").text
    assert c.driver.execute_script("return window.printed") == 1
    c.el("#ack-done")  # the desk sees the customer told
    stored = requests.get(
        f"{c.url}/api/intake/complaints/{number}",
        timeout=10,
        headers={"Authorization": "Bearer " + issue_token(TOKEN_SECRET, "D3001", "desk_staff", ["sh-xujiahui"])},
    ).json()
    assert stored["acknowledgement"]["method"] == "in_person" and stored["acknowledgement"]["within_deadline"]
    # on paper: the slip alone
    c.shot("desk-receipt")
    c.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    find = c.driver.find_element
    paper = find(c.By.ID, "print-area")
    assert not find(c.By.TAG_NAME, "header").is_displayed() and not find(c.By.ID, "main").is_displayed()
    assert paper.is_displayed() and number in paper.text and "上海徐家汇店" in paper.text
    c.shot("desk-receipt-on-paper")
    c.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
