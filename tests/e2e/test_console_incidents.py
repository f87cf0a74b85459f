"""Issue 20, R3.9, R7.10 (seed 003: 包括時間、地點; 詢問客戶意見，確認處理方案; 區域經理需及時將處理結果
反饋給客戶): adverse events on the console, end to end in headless Chromium.
The desk clerk reports one on the page with when and where it happened (field-level errors
first); the store manager finds it
in the mall's list with its 24-hour countdown, reads the customer's contact for a purpose and
verifies and forwards it; the regional manager picks the mall, records the plan the customer
turned down and the one they agreed (the handling waits for it), handles it within 48 hours
and records that the customer was told, within its deadline. An action the service refuses shows its reason. The
states are checked through resolution's API too. Screenshots in Chinese and English:
test-artifacts/console/console_incidents/ (gitignored)."""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import requests
from selenium.webdriver.common.keys import Keys

from tests.e2e.conftest import Console, quietly

MALL = "sh-xujiahui"
CLERK, STORE_MANAGER, REGIONAL_MANAGER = "D3001", "E3091", "R7001"  # deploy/policy/resolution.yml staff


def test_console_incidents(console, browser):
    c = Console(browser, console)
    phone = f"139{uuid.uuid4().int % 10**8:08d}"

    # The desk clerk reports it; without a description or what was done, each field says so.
    c.login(CLERK, "incidents")
    assert not _rows(c, "#incident-list-section")  # a clerk reports but does not read incidents (access.yml)
    c.choose('#incident-form [data-path="type"]', "food_safety")
    c.click("#incident-submit")
    assert c.text('#incident-form [data-error-for="description"]')
    assert c.text('#incident-form [data-error-for="suggested_handling"]')
    assert c.text('#incident-form [data-error-for="occurred_at"]') and c.text(
        '#incident-form [data-error-for="place.area"]'
    )
    c.driver.execute_script(  # a datetime-local field is typed as the browser's own widget wants: set it
        "arguments[0].value = arguments[1]",
        c.el('#incident-form [data-path="occurred_at"]'),
        datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M"),
    )
    c.type('#incident-form [data-path="place.area"]', "美食广场B2")
    c.type('#incident-form [data-path="description"]', "顾客在档口食用凉皮后腹痛")
    c.type('#incident-form [data-path="customer.name"]', "王女士")
    c.type('#incident-form [data-path="customer.phone"]', phone)
    c.type('#incident-form [data-path="suggested_handling"]', "已陪同顾客就医，档口暂停售卖凉皮，留样待检")
    c.click("#incident-submit")
    number = c.text("#incident-number")
    assert c.el("#incident-reported [data-state]").get_attribute("data-state") == "reported"
    assert "剩余" in c.text("#incident-reported .mark")
    _shot(c, "#incident-reported", "clerk-reported-zh")

    sm, rm = _token(c.url, STORE_MANAGER), _token(c.url, REGIONAL_MANAGER)
    reported = _incident(c.url, sm, number)
    assert reported["state"] == "reported" and reported["reported_by"] == CLERK and reported["type"] == "food_safety"
    assert reported["place"] == {"area": "美食广场B2", "merchant_id": None}
    assert abs((_at(reported["occurred_at"]) - _at(reported["reported_at"])).total_seconds()) < 120
    assert _at(reported["forward_due_at"]) > _at(reported["reported_at"])
    other = _report(c.url, sm, "扶梯扶手夹伤儿童手指")  # dismissed behind the page's back below
    refused = _act(c.url, _token(c.url, "E3001"), number, "verification", 403, confirmed=True, note="属实")
    assert "store_manager" in refused["message"]  # the service decides: a handler does not verify

    # The store manager: the mall's list, states in words and the 24-hour countdown.
    c.login(STORE_MANAGER, "incidents")
    row = f'#incident-list tr[data-number="{number}"]'
    assert c.el(row).get_attribute("data-state") == "reported"
    assert c.text(f"{row} td.state") == "已上报"
    assert c.el(f"{row} .mark").get_attribute("data-sla") == "ok" and "剩余" in c.text(f"{row} .mark")
    _shot(c, "#incident-list", "list-store-manager-zh")
    c.click("#lang")
    c.wait.until(lambda d: quietly(lambda _: c.el(f"{row} td.state").text == "Reported", d))
    assert "left" in c.text(f"{row} .mark")
    _shot(c, "#incident-list", "list-store-manager-en")
    c.click("#lang")
    c.wait.until(lambda d: quietly(lambda _: c.el(f"{row} td.state").text == "已上报", d))

    # Opened: the customer's contact for a stated purpose (audited), and only the verification to do.
    c.click(f"{row} a")
    _state(c, "reported")
    assert not _rows(c, "#handling-form") and not _rows(c, "#communication-form")
    c.click("#incident-contact-show")
    assert phone in c.text("#incident-contact")
    c.click("#incident-forward")  # no note: refused at the field
    assert c.text('#verification-form [data-error-for="note"]')
    c.type('#verification-form [data-path="note"]', "已调阅监控并询问档口，情况属实")
    c.act("#incident-forward")
    _state(c, "forwarded")
    assert "区域经理" in c.text("#incident-waiting")  # the handling waits for the regional manager
    assert c.el("#incident-step .mark").get_attribute("data-sla") == "ok"
    _shot(c, "#incident-step", "forwarded-store-manager-zh")

    # An incident dismissed meanwhile: the page's forwarding is refused, with the service's reason.
    c.driver.get(f"{c.url}/#/incidents/{other}")
    _state(c, "reported")
    _act(c.url, sm, other, "verification", 200, confirmed=False, note="核实为顾客自行操作不当")
    c.type('#verification-form [data-path="note"]', "情况属实")
    c.click("#incident-forward")
    assert "dismissed" in c.text("#incident-refused")

    # The regional manager, of three malls, picks this one; handles it, then tells the customer.
    c.login(REGIONAL_MANAGER, "incidents")
    c.choose("#f-inc-list-mall_id", MALL)
    row = f'#incident-list tr[data-number="{number}"]'
    assert c.text(f"{row} td.state") == "已核实转交" and "剩余" in c.text(f"{row} .mark")
    assert not _rows(c, '#incident-list tr[data-number="%s"]' % other)  # not finished only, by default
    c.click(f"{row} a")
    _state(c, "forwarded")
    assert not _rows(c, "#verification-form")
    assert "美食广场B2" in c.text("#incident-when-where")
    assert not _rows(c, "#handling-form") and c.text("#incident-plan-first")  # the customer is asked first
    c.type('#agreement-form [data-path="plan"]', "赔偿200元")
    c.choose('#agreement-form [data-path="via"]', "phone")
    c.type('#agreement-form [data-path="note"]', "顾客认为金额太低")
    c.act("#incident-not-agreed")
    c.wait.until(lambda d: quietly(lambda _: len(_rows(c, "#incident-agreements tbody tr")) == 1, d))
    assert not _rows(c, "#handling-form")
    c.type('#agreement-form [data-path="plan"]', "赔偿500元，档口整改并公示")
    c.choose('#agreement-form [data-path="via"]', "phone")
    c.act("#incident-agreed")
    c.el("#handling-form")
    assert [r.get_attribute("data-agreed") for r in _rows(c, "#incident-agreements tbody tr")] == ["false", "true"]
    _shot(c, "#incident-agreements", "plan-agreed-regional-manager-zh")
    c.type('#handling-form [data-path="outcome"]', "档口食材过期，责令整改并赔偿")
    c.click("#incident-handle")  # no improvements: refused at the field
    assert c.text('#handling-form [data-error-for="improvements"]')
    c.type('#handling-form [data-path="improvements"]', "档口每日开市前检查食材效期\n美食广场每周抽检")
    c.type('#handling-form [data-path="compensation"]', "500")
    c.act("#incident-handle")
    _state(c, "handled")
    c.choose('#communication-form [data-path="via"]', "phone")
    c.type('#communication-form [data-path="note"]', "电话告知处理结果、改进措施和500元补偿，顾客同意")
    c.el("#incident-tell").send_keys(Keys.ENTER)  # from the keyboard
    _state(c, "communicated")
    assert "电话" in c.text("#incident-communication")
    assert "500.00" in c.text("#incident-handling")
    _shot(c, "#incident-timeline", "communicated-regional-manager-zh")
    c.click("#lang")
    c.wait.until(lambda d: quietly(lambda _: c.el("#incident-state").text == "Customer told", d))
    _shot(c, "#incident-handling", "communicated-regional-manager-en")
    c.click("#lang")

    # The list by state: the finished one under "customer told".
    c.click('#nav a[href="#/incidents"]')
    c.choose("#f-inc-list-state", "communicated")
    c.wait.until(lambda d: quietly(lambda _: c.el(f"{row} td.state").text == "已告知顾客", d))
    assert len(_rows(c, "#incident-list-section")) == 1  # the list of the state chosen, not also the one before
    _shot(c, "#incident-list", "list-communicated-zh")

    # On a tablet held upright, the list and the incident fit without scrolling sideways.
    c.driver.set_window_size(768, 1024)
    _fits(c, "list-tablet")
    c.click(f"{row} a")
    _state(c, "communicated")
    _fits(c, "incident-tablet")

    # The service says the same.
    done = _incident(c.url, rm, number)
    assert done["state"] == "communicated"
    assert done["verification"]["by"] == STORE_MANAGER and done["verification"]["confirmed"] is True
    assert done["verification"]["within_deadline"] is True
    assert done["regional_manager_id"] == REGIONAL_MANAGER
    assert done["handling"]["by"] == REGIONAL_MANAGER and done["handling"]["within_deadline"] is True
    assert done["handling"]["compensation"] == "500.00" and len(done["handling"]["improvements"]) == 2
    assert done["communication"]["via"] == "phone" and done["communication"]["by"] == REGIONAL_MANAGER
    assert done["communication"]["within_deadline"] is True and done["communicate_due_at"]
    assert [a["agreed"] for a in done["agreements"]] == [False, True]
    assert _incident(c.url, rm, other)["state"] == "dismissed"


def _rows(c, css):
    return c.driver.find_elements(c.By.CSS_SELECTOR, css)


def _shot(c, css, name):
    """A screenshot with what the step is about in view."""
    c.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", c.el(css))
    c.shot(name)


def _fits(c, name):
    wide, seen = c.driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide <= seen + 1, f"{name}: {wide}px wide in a {seen}px window"
    c.shot(name)


def _state(c, state):
    return c.wait.until(lambda d: quietly(lambda _: c.el("#incident-state").get_attribute("data-state") == state, d))


def _at(iso):
    return datetime.fromisoformat(iso)


def _token(url, staff_id):
    return requests.post(url + "/login", json={"staff_id": staff_id}, timeout=10).json()["token"]


def _incident(url, token, number):
    answer = requests.get(
        f"{url}/api/resolution/incidents/{number}", headers={"Authorization": f"Bearer {token}"}, timeout=20
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _report(url, token, description):
    answer = requests.post(
        url + "/api/resolution/incidents",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "mall_id": MALL,
            "type": "injury",
            "occurred_at": datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(),
            "place": {"area": "一楼扶梯"},
            "description": description,
            "customer": {"name": "赵先生"},
            "suggested_handling": "已暂停该扶梯并送医",
            "request_id": f"e2e-{uuid.uuid4().hex}",
        },
        timeout=20,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["number"]


def _act(url, token, number, action, status, **body):
    answer = requests.post(
        f"{url}/api/resolution/incidents/{number}/{action}",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=20,
    )
    assert answer.status_code == status, answer.text
    return answer.json()
