"""Issue 9: the web console end to end in headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium; no browser download). All five services and the
console run as their own processes, as scripts/run.sh starts them, on the real broker and
store. The test registers a complaint at the service desk, works it as a handler to
resolution, records a satisfied revisit and sees the ops dashboard's numbers change.
Screenshots of each step go to test-artifacts/console/ (gitignored)."""
import os
import time
import uuid

import pytest
import requests
from nameko.testing.utils import find_free_port

from tests.conftest import ROOT, start_service, stop_services

SERVICES = ("triage", "analytics", "resolution", "feedback", "intake")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts" / "console"
WAIT = 30   # seconds any one step may take (events cross the broker between services)


@pytest.fixture
def console(rabbit_config, mongo_uri, secrets_file, tmp_path):
    """The five services and the console, each its own process; the console's URL."""
    run = uuid.uuid4().hex[:8]
    processes, ports = {}, {name: find_free_port() for name in (*SERVICES, "console")}
    console_sees = {f"CONSOLE_{s.upper()}_URL": f"http://127.0.0.1:{ports[s]}" for s in SERVICES}
    for name in (*SERVICES, "console"):
        processes[name] = start_service(name, ports[name], run, tmp_path, amqp_uri=rabbit_config["AMQP_URI"],
                                        mongo_uri=mongo_uri, secrets_file=secrets_file, **console_sees)
    url = f"http://127.0.0.1:{ports['console']}"
    try:
        deadline = time.monotonic() + 90
        for name in (*SERVICES, "console"):
            while not _healthy(f"http://127.0.0.1:{ports[name]}/health"):
                assert processes[name].poll() is None and time.monotonic() < deadline, \
                    f"{name} did not become healthy:\n" + (tmp_path / f"{name}.log").read_text()[-3000:]
                time.sleep(0.2)
        yield url
    finally:
        stop_services(processes.values())


def _healthy(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: install Debian's chromium and chromium-driver "
                    "(scripts/test.sh does: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,800", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    yield driver
    driver.quit()


class Console:
    """The steps a member of staff takes, each waiting for what the page shows next."""

    def __init__(self, driver, url):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.driver, self.url, self.By, self.ec, self.Select = driver, url, By, ec, Select
        self.wait = WebDriverWait(driver, WAIT)
        self.shots = 0

    def el(self, css):
        return self.wait.until(self.ec.visibility_of_element_located((self.By.CSS_SELECTOR, css)))

    def click(self, css):
        self.wait.until(self.ec.element_to_be_clickable((self.By.CSS_SELECTOR, css))).click()

    def type(self, css, text):
        field = self.el(css)
        field.clear()
        field.send_keys(text)

    def choose(self, css, value):
        self.Select(self.el(css)).select_by_value(value)

    def act(self, css):
        """Click an action button of the case page and wait for the page to show the new state."""
        button = self.el(css)
        button.click()
        self.wait.until(self.ec.staleness_of(button))

    def until(self, check, reload_css=None):
        """Wait until check() is truthy, reloading the page (or clicking reload_css) between tries."""
        def attempt(driver):
            value = check()
            if not value:
                if reload_css:
                    self.click(reload_css)
                else:
                    driver.refresh()
                time.sleep(0.5)
            return value
        return self.wait.until(lambda driver: _quietly(attempt, driver))

    def login(self, staff_id, page):
        self.driver.get(self.url + "/#/login")
        self.el('main[data-page="login"]')
        self.choose("#staff-id", staff_id)
        self.click("#login-submit")
        self.el('main[data-page]:not([data-page="login"])')       # the role's home page
        if not self.driver.find_elements(self.By.CSS_SELECTOR, f'main[data-page="{page}"]'):
            self.click(f'#nav a[href="#/{page}"]')
            self.el(f'main[data-page="{page}"]')

    def shot(self, name):
        self.shots += 1
        self.driver.save_screenshot(str(ARTIFACTS / f"{self.shots:02d}-{name}.png"))

    def kpi(self, key):
        text = self.el(f'[data-kpi="{key}"] .value').text
        return int(text) if text.isdigit() else None


def _quietly(attempt, driver):
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        return attempt(driver)
    except (StaleElementReferenceException, WebDriverException):
        return False


def test_desk_to_handler_to_revisit_to_dashboard(console, browser):
    c = Console(browser, console)
    try:
        _walk(c)
    except Exception:
        c.shot("failure")
        logs = browser.get_log("browser") if hasattr(browser, "get_log") else []
        print("browser console:", *logs, sep="\n  ")
        raise


def _walk(c):
    # The ops view before: this month's registered complaints and satisfied revisits at the mall.
    c.login("E3011", "dashboard")                   # supervisor of sh-xujiahui
    c.choose("#dash-mall", "sh-xujiahui")
    c.wait.until(lambda d: _quietly(lambda _: c.kpi("registered") is not None, d))
    registered = c.kpi("registered")
    satisfied = c.kpi("satisfied") or 0
    c.shot("dashboard-before")

    # The service desk registers a complaint with every R1.3 field and tells the customer.
    c.login("D3001", "desk")
    assert c.driver.find_element(c.By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    c.choose('[data-path="channel"]', "desk")
    c.type('[data-path="customer.name"]', "王女士")
    c.type('[data-path="customer.phone"]', f"139{uuid.uuid4().int % 10**8:08d}")
    c.type('[data-path="customer.member_id"]', "M001")
    c.choose('[data-path="customer.member_tier"]', "gold")
    c.type('[data-path="location.area"]', "fresh produce")
    c.type('[data-path="location.merchant_id"]', "T-17")
    c.choose('[data-path="incident_time_band"]', "morning")
    c.type('[data-path="staff_involved"]', "E1024")
    c.type('[data-path="product.barcode"]', "6901234567892")
    c.type('[data-path="product.brand"]', "佳农")
    c.type('[data-path="product.model"]', "草莓 500g")
    c.type('[data-path="order_no"]', "SO-778812")
    c.type('[data-path="description"]', "上午买的草莓有三分之一发霉了")
    c.type('[data-path="demands.fact"]', "1/3 of the strawberries mouldy")
    c.type('[data-path="demands.expectation"]', "full refund plus the same value in goods")
    c.choose('[data-path="emotion"]', "angry")
    c.type('[data-path="anger_score"]', "9")
    c.click("#desk-submit")
    assert "5" in c.el('[data-error-for="anger_score"]').text    # the service's message, next to the field
    c.type('[data-path="anger_score"]', "4")
    c.click("#desk-submit")
    number = c.el("#complaint-number").text
    assert number.startswith("SHXJH-")
    assert c.el("#ack-due").text
    c.click("#ack-button")
    c.el("#ack-done")
    c.shot("desk-registered")
    c.click("#desk-submit")                         # the same customer, the same words again
    assert number in c.el("#desk-ack.warn #rejection").text
    c.shot("desk-duplicate")
    c.driver.set_window_size(820, 1180)             # a tablet, upright
    c.shot("desk-tablet")
    c.driver.set_window_size(1280, 800)

    # The handler finds it in the queue and works it to resolution.
    c.login("E3501", "queue")
    c.until(lambda: c.driver.find_elements(c.By.CSS_SELECTOR, f'#queue tr[data-number="{number}"]'))
    c.el(f'#queue tr[data-number="{number}"] [data-sla]')
    c.shot("handler-queue")
    c.click(f'#queue tr[data-number="{number}"] a')
    c.el('main[data-page="case"] #case-number')
    c.choose('#findings-form [data-path="source"]', "cctv")
    c.type('#findings-form [data-path="summary"]', "camera 12: the box was weighed and sold this morning")
    c.act("#findings-form button[type=submit]")
    c.choose('#note-form [data-path="kind"]', "customer_contact")
    c.type('#note-form [data-path="text"]', "called the customer: refund and voucher offered")
    c.act("#note-form button[type=submit]")
    c.choose('#proposal-form [data-path="decision"]', "upheld")
    c.type('#proposal-form [data-path="price"]', "39.90")
    c.type('#proposal-form [data-path="demanded_amount"]', "79.80")
    c.type('#proposal-form [data-path="reasons"]', "a third of the fruit was mouldy")
    c.type("#remedy-refund", "39.90")
    c.type("#remedy-voucher", "39.90")
    c.click("#proposal-check")
    c.el("#check-result table")                      # the law and authority, shown before sending
    c.act("#proposal-submit")
    c.act("#reply")
    c.act("#accept")
    while c.driver.find_elements(c.By.CSS_SELECTOR, "#tasks button[data-task]"):
        c.act("#tasks button[data-task]")
    c.type("#f-resolve-summary", "refunded, voucher sent, batch off the shelf")
    c.click("#resolve")
    assert c.wait.until(lambda d: _quietly(
        lambda _: c.el("#case-state").get_attribute("data-state") == "resolved", d))
    assert len(c.driver.find_elements(c.By.CSS_SELECTOR, "#timeline tbody tr")) >= 6
    c.shot("case-resolved")

    # Feedback calls the customer back: reached, satisfied.
    c.login("E3002", "revisits")
    card = f'section[data-complaint="{number}"]'
    c.until(lambda: c.driver.find_elements(c.By.CSS_SELECTOR, card))
    c.choose(f'{card} [data-path="outcome"]', "reached")
    c.choose(f'{card} [data-path="score"]', "5")
    c.type(f'{card} [data-path="comment"]', "处理得很快")
    c.click(f"{card} button[type=submit]")
    c.el(f"{card} [data-recorded]")
    c.shot("revisit-recorded")

    # The dashboard's numbers move: one more registered complaint, one more satisfied revisit.
    c.login("E3011", "dashboard")
    c.choose("#dash-mall", "sh-xujiahui")
    c.until(lambda: (c.kpi("registered") or 0) > registered and (c.kpi("satisfied") or 0) > satisfied,
            "#dash-refresh")
    c.click("#lang")                                # the English switch
    assert c.el("h1").text.startswith("Operations dashboard")
    c.shot("dashboard-after")
    c.click("#dash-monthly")                        # analytics' monthly report page, in a frame
    frame = c.el("#dash-report")
    assert "<table" in frame.get_attribute("srcdoc")
    c.driver.execute_script("arguments[0].scrollIntoView()", frame)
    c.shot("monthly-report")
