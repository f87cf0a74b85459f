"""R7.2 (seed 000: 需在商場內顯眼位置張貼投訴渠道的相關信息): a customer in the mall scans the
poster's QR code and complains on their phone, then follows the complaint. The poster, as
Chromium shows it to print, has a QR code that zxing-cpp reads back as the mall's page; the
page, opened in Chromium as a phone (390 CSS pixels wide, JavaScript off), takes the
complaint in Chinese and answers its number; the status page, with that number and the
phone, shows it received, then passed on once triage and resolution have it, then under
investigation once the handler records a finding. Screenshots:
test-artifacts/console/portal/ (gitignored)."""

import io
import time

import requests
import zxingcpp
from PIL import Image

from tests.e2e.conftest import WAIT, Console, Phone, phone_shot
from tests.helpers import staff

PHONE_NUMBER = "139 1234 5678"


def test_portal(console, phone, browser):
    """R7.2, seed 000: 需在商場內顯眼位置張貼投訴渠道的相關信息 -> the poster's QR code, the page on
    a phone, 「扶梯旁边的地面有很多水…」 registered, its progress followed by number and phone."""
    intake = console.services["intake"]  # its public address here (MALLCARE_PUBLIC_BASE_URL)
    customer, desktop = Phone(phone, console), Console(browser, console)

    browser.get(f"{intake}/portal/SHXJH/poster")
    desktop.el('main[data-page="poster"] img.qr')
    desktop.until(lambda: browser.execute_script("return document.querySelector('img.qr').complete"))
    desktop.shot("poster")
    seen = Image.open(io.BytesIO(browser.get_screenshot_as_png()))
    page = [code.text for code in zxingcpp.read_barcodes(seen)]
    assert page == [f"{intake}/portal/SHXJH"]  # what a phone's camera reads off the printed poster

    phone.get(page[0])
    customer.el('main[data-page="portal-form"]')
    assert customer.text("h1") == "投诉与建议" and customer.text(".about") == "上海徐家汇店"
    assert customer.el("main").size["width"] <= 390 and customer.el("button[type=submit]").size["width"] > 300
    phone_shot(customer, desktop, "complaint-form")
    customer.type("#description", "扶梯旁边的地面有很多水，没有警示牌，我女儿滑倒了，膝盖擦伤")
    customer.type("#expectation", "希望尽快放警示牌，并给个说法")
    customer.type("#place", "二楼 扶梯口")
    customer.type("#name", "陈女士")
    customer.type("#phone", PHONE_NUMBER)
    phone_shot(customer, desktop, "complaint-filled")
    customer.click("button[type=submit]")
    customer.el('main[data-page="portal-thanks"]')
    number = customer.text("#number")
    assert customer.text("h1") == "投诉已受理" and number.startswith("SHXJH-")
    phone_shot(customer, desktop, "complaint-number")

    customer.click(".links a")  # 查询投诉进度, the number filled in
    before = {"received", "acknowledged", "routed", "assigned"}  # triage and resolution may be quick
    assert _look(customer, desktop, number, "received", follow=False) in before
    assert customer.text("#contact") == "139****5678"

    case = _when(lambda: _case(console, number))
    stage = _until_stage(customer, desktop, number, {"routed", "assigned"}, "passed-on")
    assert stage == ("assigned" if case["owner_id"] else "routed")
    found = requests.post(
        f"{console}/api/resolution/cases/{number}/findings",
        headers=staff("E3501"),
        json={"source": "cctv", "summary": "camera 7: the floor by the escalator wet, no sign"},
        timeout=20,
    )
    assert found.status_code == 200, found.text
    _until_stage(customer, desktop, number, {"investigating"}, "investigating")
    assert customer.text('p.stage[data-stage="investigating"]') == "正在调查核实。"
    steps = [li.get_attribute("data-step") for li in phone.find_elements(customer.By.CSS_SELECTOR, "#steps li")]
    assert steps[0] == "received" and steps[-1] == "investigating" and "routed" in steps


def _look(customer, desktop, number, shot=None, follow=True):
    """One look-up on the status page's form (the number filled in, the phone typed): the
    stage the page shows. `follow`: open the look-up first (else it is open already)."""
    if follow:
        customer.driver.get(f"{customer.url.services['intake']}/portal/status?number={number}")
    customer.el('main[data-page="portal-lookup"]')
    assert customer.el("#number").get_attribute("value") == number
    customer.type("#phone", PHONE_NUMBER)
    if shot:
        phone_shot(customer, desktop, f"look-up-{shot}")
    customer.click("button[type=submit]")
    stage = customer.el('main[data-page="portal-status"] p.stage').get_attribute("data-stage")
    if shot:
        phone_shot(customer, desktop, f"progress-{shot}")
    return stage


def _until_stage(customer, desktop, number, stages, shot):
    """Look again until the stage is one of `stages`, every 4 s: within the 10 look-ups an
    address may make a minute (intake.yml); the page as it is then in the screenshots."""
    deadline = time.monotonic() + WAIT
    while (stage := _look(customer, desktop, number)) not in stages:
        assert time.monotonic() < deadline, f"{number}: still {stage}, not {stages}"
        time.sleep(4)
    phone_shot(customer, desktop, f"progress-{shot}")
    return stage


def _case(url, number):
    response = requests.get(f"{url}/api/resolution/cases/{number}", headers=staff("E3501"), timeout=10)
    return response.json() if response.ok else None


def _when(check):
    deadline = time.monotonic() + WAIT
    while not (value := check()):
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.5)
    return value
