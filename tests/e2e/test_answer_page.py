"""Issue 19: the customer answers the revisit on their phone. An app complaint settled at
the desk gets a revisit by app message with its answer link; the link, opened in Chromium
as a phone (390 CSS pixels wide, JavaScript off), shows the page in Chinese; the customer
gives 5 stars and a comment and sends the form; the page thanks them, the link then says it
was answered, and a supervisor sees the case closed in the console (resolution closes it on
customer_satisfied). Screenshots: test-artifacts/console/answer_page/ (gitignored)."""

import uuid

import requests

from mallcare_cli.examples import desk_complaint
from tests.e2e.conftest import Console, Phone, phone_shot
from tests.helpers import SPOT_REFUND, staff, wait_for

GOLD, GREY = "rgba(240, 180, 41, 1)", "rgba(203, 210, 217, 1)"  # a star lit and not (answer_page.STYLE)


def test_answer_page(console, phone, browser):
    link, number = _revisit_link(console)
    customer, desktop = Phone(phone, console), Console(browser, console)
    phone.get("data:text/html,<p id=js>off</p><script>document.getElementById('js').textContent = 'on'</script>")
    assert customer.text("#js") == "off"  # the phone runs no script

    phone.get(link)
    customer.el('main[data-page="answer-form"]')
    assert phone.find_element(customer.By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert customer.text("h1") == "服务回访" and number in customer.text(".about")
    # laid out for the phone: the page fits its width, the button spans it
    assert customer.el("main").size["width"] <= 390 and customer.el("button[type=submit]").size["width"] > 300
    star = 'label[for="score-{}"] span[aria-hidden]'
    assert customer.el(star.format(1)).value_of_css_property("color") == GREY  # the style sheet the CSP allows
    phone_shot(customer, desktop, "answer-page")

    customer.click('label[for="score-5"]')
    customer.type("#comment", "退款很快，谢谢")
    assert phone.find_element(customer.By.ID, "score-5").is_selected()
    assert {customer.el(star.format(n)).value_of_css_property("color") for n in range(1, 6)} == {GOLD}
    phone_shot(customer, desktop, "five-stars")
    customer.click("button[type=submit]")
    customer.el('main[data-page="answer-thanks"]')
    assert customer.text("h1") == "谢谢您的反馈。"
    phone_shot(customer, desktop, "thanks")

    phone.get(link)  # the link answers once
    assert customer.text('main[data-page="answer-refused"] h1') == "您已回答过了"
    phone_shot(customer, desktop, "answered-already")

    supervisor = desktop
    supervisor.login("E3011", "dashboard")
    browser.get(f"{console}/#/case/{number}")
    supervisor.until(lambda: supervisor.el("#case-state").get_attribute("data-state") == "closed")
    assert supervisor.el("#case-state").text == "已关闭" and "顾客回访表示满意" in supervisor.el("#closure").text
    supervisor.shot("case-closed")


def _revisit_link(url):
    """An app complaint settled at the desk through the console's API; (its answer link, number)."""
    desk = staff("D3001")
    registered = requests.post(
        url + "/api/intake/complaints",
        headers=desk,
        timeout=20,
        json=desk_complaint(channel="app", channel_ref=f"e2e-{uuid.uuid4().hex}"),
    )
    assert registered.status_code == 201, registered.text
    number = registered.json()["number"]
    wait_for(lambda: requests.get(f"{url}/api/resolution/cases/{number}", headers=desk, timeout=10).ok, timeout=30)
    settled = requests.post(
        f"{url}/api/resolution/cases/{number}/spot-resolution", headers=desk, json=SPOT_REFUND, timeout=20
    )
    assert settled.status_code == 200, settled.text
    revisit = wait_for(
        lambda: (
            (r := requests.get(f"{url}/api/feedback/revisits/{number}-R1", headers=desk, timeout=10)).ok and r.json()
        ),
        timeout=30,
    )
    assert revisit["way"] == "app_message"
    return revisit["answer_link"], number
