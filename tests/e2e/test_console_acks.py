"""Issue 20: the acknowledgement queue of the hotline, web and social staff (R1.2), end to end
in headless Chromium. Complaints of Xujiahui on several channels and one of Chaoyang are
registered through intake's API; Xujiahui's desk clerk sees Xujiahui's only, the earliest
acknowledgement deadline first, each with its countdown (the desk's minute to the second),
narrows the list to a channel, sees
a new complaint come in, and acknowledges one from the keyboard: intake has it acknowledged
by phone, by the clerk, and the row is gone. Screenshots in Chinese and English:
test-artifacts/console/console_acks/ (gitignored)."""

import re
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import requests

from tests.e2e.conftest import Console, quietly

SHANGHAI = ZoneInfo("Asia/Shanghai")  # both malls' zone (deploy/policy/malls.yml)


def test_console_acks(console, browser):
    _walk(Console(browser, console))


def _token(url, staff_id):
    return requests.post(url + "/login", json={"staff_id": staff_id}, timeout=10).json()["token"]


def _register(url, token, channel, description, at=None, mall_id="sh-xujiahui"):
    """A complaint received at local time `at` yesterday (the mall open then), or now. The
    customer left a member number or a social handle only: notify has no way to tell them on
    its own, so the complaint waits for staff to acknowledge it."""
    body = {
        "mall_id": mall_id,
        "channel": channel,
        "channel_ref": f"{channel}-{uuid.uuid4().hex[:10]}",
        "customer": {"social_handle": f"@guest{uuid.uuid4().hex[:8]}"}
        if channel == "social"
        else {"member_id": f"M{uuid.uuid4().int % 10**8:08d}"},
        "description": description,
    }
    if at is not None:
        yesterday = datetime.now(SHANGHAI).date() - timedelta(days=1)
        body["received_at"] = datetime.combine(yesterday, time.fromisoformat(at), SHANGHAI).isoformat()
    sent = requests.post(
        url + "/api/intake/complaints", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15
    )
    assert sent.status_code == 201 and sent.json()["status"] == "registered", sent.text
    return sent.json()


def _numbers(c):
    return [tr.get_attribute("data-number") for tr in c.driver.find_elements(c.By.CSS_SELECTOR, "#acks tbody tr")]


def _fits(c):
    """The whole table shows at the laptop's 1280x800, with no scrolling sideways."""
    return c.driver.execute_script(
        "const l = document.getElementById('acks-list'); return l.scrollWidth <= l.clientWidth"
    )


def _walk(c):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    sh, bj = _token(c.url, "D3001"), _token(c.url, "D4001")
    # registered in another order than their deadlines (30 minutes online, from receipt)
    live = _register(c.url, sh, "hotline", "电话里说停车场收费和告示不一致，多收了十元")  # due in the future
    web = _register(c.url, sh, "web", "网上订的蛋糕送到时已经压坏了", at="10:20")  # due 10:50 yesterday
    hotline = _register(c.url, sh, "hotline", "来电反映三楼洗手间没有纸巾", at="10:10")  # due 10:40
    social = _register(c.url, sh, "social", "微博上说试衣间排队一个小时没人管", at="10:00")  # due 10:30
    desk = _register(c.url, sh, "desk", "服务台：收银台找零少了五元")  # 1 minute, from now
    beijing = _register(c.url, bj, "hotline", "北京店电梯停运没有提示", at="10:05", mall_id="bj-chaoyang")
    expected = [social["number"], hotline["number"], web["number"], desk["number"], live["number"]]
    assert [x["ack_due_at"] for x in (social, hotline, web)] == sorted(x["ack_due_at"] for x in (social, hotline, web))

    c.login("D3001", "acks")
    c.wait.until(lambda d: quietly(lambda _: _numbers(c) == expected, d))  # the earliest deadline first
    assert beijing["number"] not in c.el("#main").text  # another mall's
    row = c.el(f'#acks tr[data-number="{hotline["number"]}"]')
    cells = [td.text for td in row.find_elements(c.By.TAG_NAME, "td")]
    assert cells[1].split("\n") == ["热线", "上海徐家汇店"]
    assert cells[2].endswith("10:10")  # the mall's own time
    assert row.find_element(c.By.CSS_SELECTOR, ".due").text.endswith("10:40")
    assert "来电反映三楼洗手间没有纸巾" in cells[4]
    assert c.el(f'#acks tr[data-number="{hotline["number"]}"] .countdown').text.startswith("已超时")
    countdown = f'#acks tr[data-number="{live["number"]}"] .countdown'
    assert c.text(countdown).startswith("剩余") and c.el(countdown).get_attribute("data-sla") != "breached"
    seconds = f'#acks tr[data-number="{desk["number"]}"] .countdown'  # the desk's minute, to the second
    first = c.text(seconds)
    assert re.fullmatch(r"(剩余|已超时) \d+分\d\d秒", first), first
    c.wait.until(lambda d: c.el(seconds).text != first)
    assert c.el(f'#acks tr[data-number="{desk["number"]}"] button').text == "当面告知"
    assert c.el(f'#acks tr[data-number="{social["number"]}"] button').text == "电话"  # the way that fits first
    assert c.el(f'#acks tr[data-number="{web["number"]}"] button').text == "短信"
    assert _fits(c)
    c.shot("queue")

    # only the social-media complaints, then all again; a new complaint comes in by itself
    c.click('input[name="channel"][value="social"]')
    c.wait.until(lambda d: quietly(lambda _: _numbers(c) == [social["number"]], d))
    c.click('input[name="channel"][value="social"]')
    c.wait.until(lambda d: quietly(lambda _: len(_numbers(c)) == 5, d))
    late = _register(c.url, sh, "web", "网站上的优惠券领取后无法使用", at="10:30")  # due 11:00 yesterday
    c.until(lambda: _numbers(c) == [*expected[:3], late["number"], *expected[3:]], "#acks-refresh")

    # the hotline complaint acknowledged from the keyboard: Tab from its number to its first button, Enter
    c.driver.execute_script("arguments[0].focus()", c.el(f'#acks tr[data-number="{hotline["number"]}"] a'))
    ActionChains(c.driver).send_keys(Keys.TAB).perform()
    focused = c.driver.switch_to.active_element
    assert focused.get_attribute("data-method") == "phone", focused.get_attribute("outerHTML")
    ActionChains(c.driver).send_keys(Keys.ENTER).perform()
    c.wait.until(lambda d: quietly(lambda _: hotline["number"] not in _numbers(c), d))
    assert hotline["number"] in c.text("#toast") and "电话" in c.text("#toast")
    # the keyboard stays in the queue: on the next complaint's first button
    assert c.driver.switch_to.active_element.get_attribute("data-method") == "sms"
    told = requests.get(
        f"{c.url}/api/intake/complaints/{hotline['number']}", headers={"Authorization": f"Bearer {sh}"}, timeout=10
    ).json()
    assert told["status"] == "acknowledged"
    assert (told["acknowledgement"]["method"], told["acknowledgement"]["acknowledged_by"]) == ("phone", "D3001")
    assert told["acknowledgement"]["within_deadline"] is False  # yesterday's, told today
    assert _numbers(c) == [social["number"], web["number"], late["number"], desk["number"], live["number"]]
    c.shot("acknowledged")

    # in English; then a channel with nothing waiting shows the empty state
    c.click("#lang")
    c.wait.until(lambda d: quietly(lambda _: c.el("h1").text == "Complaints to acknowledge", d))
    c.wait.until(lambda d: quietly(lambda _: len(_numbers(c)) == 5, d))
    row = c.el(f'#acks tr[data-number="{social["number"]}"]')
    assert row.find_elements(c.By.TAG_NAME, "td")[1].text.split("\n") == ["Social media", "Shanghai Xujiahui"]
    assert c.el(f'#acks tr[data-number="{social["number"]}"] .countdown').text.startswith("overdue by")
    assert c.text(countdown).endswith("left")
    assert _fits(c)
    c.shot("queue-english")
    c.driver.set_window_size(768, 1024)  # a tablet: the table scrolls within its box, the page does not
    assert c.driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    c.shot("queue-tablet")
    c.driver.set_window_size(1280, 800)
    c.click('input[name="channel"][value="email"]')
    assert c.text("#acks-empty").startswith("No complaint is waiting")
    c.shot("empty-english")
