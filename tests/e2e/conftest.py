"""The web console's end-to-end harness: the six services and the console as their own
processes (as scripts/run.sh starts them) on the real broker and store, Debian's headless
Chromium driven by Selenium (no browser download) as a desktop or as a customer's phone, and
the steps a member of staff takes.
Screenshots go to test-artifacts/console/ (gitignored)."""

import os
import re
import time
import uuid
from base64 import b64encode
from functools import cache

import pytest
import requests

from mallcare_common.labels import load_labels_file
from mallcare_common.malls import load_registry_file
from tests.helpers import ROOT, free_ports, start_service, stop_services, wait_for

SERVICES = ("triage", "analytics", "resolution", "feedback", "notify", "intake")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PHONE_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
ARTIFACTS = ROOT / "test-artifacts" / "console"
WAIT = 30  # seconds any one step may take (events cross the broker between services)
AXE = ROOT / "tests" / "e2e" / "axe" / "node_modules" / "axe-core" / "axe.min.js"  # npm, pinned in its package-lock


class Running(str):
    """The console's URL, and each service's own (`services`, by name: also its public
    address, where a customer's page is)."""

    services: dict[str, str]


@pytest.fixture
def console(rabbit_config, mongo_uri, secrets_file, tmp_path):
    """The six services and the console, each its own process; the console's URL (Running)."""
    run = uuid.uuid4().hex[:8]
    processes, ports = {}, dict(zip((*SERVICES, "console"), free_ports(len(SERVICES) + 1), strict=True))
    console_sees = {f"CONSOLE_{s.upper()}_URL": f"http://127.0.0.1:{ports[s]}" for s in SERVICES}
    for name in (*SERVICES, "console"):
        processes[name] = start_service(
            name,
            ports[name],
            run,
            tmp_path,
            amqp_uri=rabbit_config["AMQP_URI"],
            mongo_uri=mongo_uri,
            secrets_file=secrets_file,
            CONSOLE_DEMO_LOGIN="true",  # as scripts/run.sh: the walks sign in with the demo picker
            **console_sees,
        )
    url = Running(f"http://127.0.0.1:{ports['console']}")
    url.services = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
    try:
        deadline = time.monotonic() + 90
        for name in (*SERVICES, "console"):
            while not _healthy(f"http://127.0.0.1:{ports[name]}/health"):
                assert processes[name].poll() is None and time.monotonic() < deadline, (
                    f"{name} did not become healthy:\n" + (tmp_path / f"{name}.log").read_text()[-3000:]
                )
                time.sleep(0.2)
        yield url
    finally:
        stop_services(processes.values())


def _healthy(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Marks a test whose body failed, for the browser fixture's failure screenshot."""
    report = (yield).get_result()
    if report.when == "call":
        item.failed_at_call = report.failed


@pytest.fixture
def browser(request):
    """A desktop Chromium, 1280x800."""
    yield from _chromium(request, "browser", lambda options: options.add_argument("--window-size=1280,800"))


@pytest.fixture
def phone(request):
    """Chromium as a customer's phone: 390x844 CSS pixels at 3x (an iPhone 14's), touch, a
    mobile browser's user agent, and JavaScript off (a page that needs none must work so)."""

    def as_phone(options):
        options.add_experimental_option(
            "mobileEmulation",
            {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": True},
                "userAgent": PHONE_USER_AGENT,
            },
        )
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})

    yield from _chromium(request, "phone", as_phone)


def _chromium(request, name, configure):
    """Headless Chromium, set up by `configure(options)`; screenshots in a folder per test
    (and per browser, `name`, when a test drives two)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} missing: install Debian's chromium and chromium-driver "
            "(scripts/test.sh does: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=zh-CN"):
        options.add_argument(flag)
    configure(options)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    folder = request.node.name.removeprefix("test_")
    if "browser" in request.fixturenames and "phone" in request.fixturenames:
        folder += f"/{name}"
    driver.artifacts = ARTIFACTS / folder  # a folder per test
    driver.artifacts.mkdir(parents=True, exist_ok=True)
    for old in driver.artifacts.glob("*.png"):
        old.unlink()
    yield driver
    if getattr(request.node, "failed_at_call", False):  # the page as it was, and what its scripts said
        driver.save_screenshot(str(driver.artifacts / "failure.png"))
        print("browser console:", *driver.get_log("browser"), sep="\n  ")
    driver.quit()
    if not any(driver.artifacts.iterdir()):  # a test that took no screenshot leaves no folder
        driver.artifacts.rmdir()


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

    def text(self, css):
        """The element's text once it has some (an error slot is visible, empty, before its message)."""
        return self.wait.until(lambda d: quietly(lambda _: self.el(css).text.strip(), d))

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

        return self.wait.until(lambda driver: quietly(attempt, driver))

    def login(self, staff_id, page):
        self.driver.get(self.url + "/#/login")
        self.el('main[data-page="login"]')
        self.choose("#staff-id", staff_id)
        self.click("#login-submit")
        self.el('main[data-page]:not([data-page="login"])')  # the role's home page
        if not self.driver.find_elements(self.By.CSS_SELECTOR, f'main[data-page="{page}"]'):
            self.click(f'#nav a[href="#/{page}"]')
            self.el(f'main[data-page="{page}"]')

    def shot(self, name):
        """A screenshot of what the user sees, and the two checks every page must pass there: no
        code word on screen (in the page's language) and no serious or critical axe-core finding."""
        self.shots += 1
        self.driver.save_screenshot(str(self.driver.artifacts / f"{self.shots:02d}-{name}.png"))
        language = self.driver.execute_script("return document.documentElement.lang")
        left = code_words_in(self.driver.execute_script("return document.body.innerText"), language)
        assert not left, f"{name}: code words on screen ({language}): {sorted(left)}"
        found = self.accessibility()
        assert not found, f"{name}: axe-core found serious or critical violations: {found}"

    def accessibility(self):
        """axe-core's serious and critical violations of the page as it is now (id, impact, help, where)."""
        if not AXE.is_file():
            pytest.fail(f"{AXE} missing: scripts/test.sh installs axe-core (npm ci in tests/e2e/axe)")
        self.driver.set_script_timeout(60)
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        violations = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then((r) => done(r.violations.map((v) => ("
            "{id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))))"
            ".catch((e) => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));"
        )
        return [v for v in violations if v["impact"] in ("serious", "critical")]

    def kpi(self, key):
        text = self.el(f'[data-kpi="{key}"] .value').text
        return int(text) if text.isdigit() else None


@cache
def _code_words():
    """The services' code words (every value labels.yml gives words for) and the malls' and
    merchants' ids, which a page names by their names."""
    labels = load_labels_file(ROOT / "deploy" / "policy" / "labels.yml")
    registry = load_registry_file(ROOT / "deploy" / "policy" / "malls.yml")
    codes = {code for words in labels["groups"].values() for code in words}
    ids = set(registry.malls) | {m["id"] for mall in registry.malls.values() for m in mall.merchants}
    return frozenset(codes), frozenset(ids)


def code_words_in(text, language):
    """The code words left in a page's rendered text. Everywhere: mall and merchant ids, snake_case
    or dotted words (`quality_defect`, `product.expired`) and the services' hyphenated codes
    (`review-meeting`; English's own re-review or e-mail are words). In Chinese also any code word
    at all (`low`, `open`, `routine`) and durations in English units (6d 23h)."""
    codes, ids = _code_words()
    found = set()
    for token in re.findall(r"[A-Za-z][A-Za-z0-9_.\-]*[A-Za-z0-9]|\b[a-z]\b", text):
        shaped = re.fullmatch(r"[a-z]+(?:[_.][a-z]+)+", token)
        if token in ids or shaped or (token in codes and (language.startswith("zh") or re.search(r"[_.\-]", token))):
            found.add(token)
    if language.startswith("zh"):
        found |= set(re.findall(r"\b\d+[dhm]\b", text))
    return found


# what the report's frame shows: each chart's name and drawn size, its bars, the page's text and height
FRAME = """
const frame = document.querySelector('#dash-report'), page = frame.contentDocument;
return {charts: [...page.querySelectorAll('svg')].map((svg) => {
          const box = svg.getBoundingClientRect();
          return {name: svg.getAttribute('aria-label'), width: box.width, height: box.height,
                  bars: [...svg.querySelectorAll('rect')].filter((r) => r.getBBox().width > 0).length};
        }),
        lang: page.documentElement.lang, text: page.body.innerText,
        tall: page.documentElement.scrollHeight, shown: frame.getBoundingClientRect().height};
"""


def open_report(c, *names):
    """The month's report once its frame has loaded and shows the charts `names`: each drawn (a
    size, a bar with a width), the whole report shown (no scrollbar inside the frame)."""
    deadline = time.monotonic() + WAIT
    while True:  # the category chart waits for triage to grade the complaint
        c.click("#dash-monthly")
        c.el('#dash-report[data-ready="monthly"]')
        report = c.driver.execute_script(FRAME)
        charts = {chart["name"]: chart for chart in report["charts"]}
        if all(name in charts for name in names) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(names) <= set(charts), charts
    for name in names:
        assert charts[name]["width"] > 300 and charts[name]["height"] > 0 and charts[name]["bars"] >= 1, charts
    assert report["shown"] >= report["tall"]
    return report


def quietly(attempt, driver):
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        return attempt(driver)
    except (StaleElementReferenceException, WebDriverException):
        return False


class Phone(Console):
    """The steps a customer takes on the `phone` (JavaScript off). Chromedriver's own clicks
    and typing wait for scripts of its own that never run there, so a tap and typed text go
    through the DevTools protocol, as a touch screen and a keyboard send them."""

    def click(self, css):
        self.el(css)  # there and visible, as Console waits
        node = self._node(css)
        self.driver.execute_cdp_cmd("DOM.scrollIntoViewIfNeeded", {"nodeId": node})
        quad = self.driver.execute_cdp_cmd("DOM.getContentQuads", {"nodeId": node})["quads"][0]  # in the viewport
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        for kind, points in (("touchStart", [{"x": x, "y": y}]), ("touchEnd", [])):
            self.driver.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    def type(self, css, text):
        self.click(css)
        self.driver.execute_cdp_cmd("Input.insertText", {"text": text})

    def _node(self, css):
        root = self.driver.execute_cdp_cmd("DOM.getDocument", {})["root"]["nodeId"]
        return self.driver.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": css})["nodeId"]


def phone_shot(customer, desktop, name):
    """The phone's screenshot, and the checks of every page: axe-core is a script and the phone
    runs none, so the page as the phone got it (its HTML, with its own style) is checked in the
    desktop browser, at the phone's width."""
    customer.shots += 1
    customer.driver.save_screenshot(str(customer.driver.artifacts / f"{customer.shots:02d}-{name}.png"))
    html = customer.driver.page_source
    desktop.driver.set_window_size(390, 844)
    desktop.driver.get("data:text/html;charset=utf-8;base64," + b64encode(html.encode("utf-8")).decode("ascii"))
    desktop.shot(f"phone-{name}")
    desktop.driver.set_window_size(1280, 800)


def desk_case(url, description, location, name, phone_prefix="138"):
    """A complaint registered at Xujiahui's desk (D3001) through the console's API, back once its case is open."""
    token = requests.post(url + "/login", json={"staff_id": "D3001"}, timeout=10).json()["token"]
    signed_in = {"Authorization": f"Bearer {token}"}
    answer = requests.post(
        url + "/api/intake/complaints",
        headers=signed_in,
        json={
            "mall_id": "sh-xujiahui",
            "channel": "desk",
            "channel_ref": f"e2e-{uuid.uuid4().hex}",
            "customer": {"name": name, "phone": f"{phone_prefix}{uuid.uuid4().int % 10**8:08d}"},
            "location": location,
            "description": description,
        },
        timeout=20,
    )
    assert answer.status_code == 201, answer.text
    number = answer.json()["number"]
    wait_for(lambda: requests.get(f"{url}/api/resolution/cases/{number}", headers=signed_in, timeout=10).ok, timeout=30)
    return number
