"""Issue 9: the console's own rules in JavaScript (SLA marks, form bodies, field errors,
words in both languages), unit-tested in the browser that runs them (Debian's headless
Chromium): the page imports its modules and the test calls them with fixed inputs. Only
the console runs; no service is asked."""

import time
import uuid

import pytest
import requests

from tests.helpers import free_ports, start_service, stop_services

HOUR = 3600_000  # ms


@pytest.fixture
def page(browser, rabbit_config, mongo_uri, secrets_file, tmp_path):
    port, closed = free_ports(2)
    nowhere = f"http://127.0.0.1:{closed}"
    console = start_service(
        "console",
        port,
        uuid.uuid4().hex[:8],
        tmp_path,
        amqp_uri=rabbit_config["AMQP_URI"],
        mongo_uri=mongo_uri,
        secrets_file=secrets_file,
        **{f"CONSOLE_{s}_URL": nowhere for s in ("INTAKE", "TRIAGE", "RESOLUTION", "FEEDBACK", "ANALYTICS")},
    )
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
        while not _live(url):
            assert console.poll() is None and time.monotonic() < deadline, (tmp_path / "console.log").read_text()
            time.sleep(0.2)
        browser.get(url + "/#/login")
        yield browser
    finally:
        stop_services([console])


def _live(url):
    try:
        return requests.get(url + "/health/live", timeout=2).ok
    except requests.RequestException:
        return False


def run(driver, module, body):
    """`body` (JS, with the module as `m`) in the page; its value, or the error it threw."""
    answer = driver.execute_async_script(f"""
        const done = arguments[arguments.length - 1];
        import("/static/js/{module}").then(async (m) => done({{value: await (async () => {{ {body} }})()}}))
          .catch((e) => done({{error: String(e && e.stack || e)}}));""")
    assert "error" not in answer, answer["error"]
    return answer["value"]


def test_sla_marks_follow_the_policys_at_risk_share(page):
    marks = run(
        page,
        "core.js",
        f"""
        const start = Date.parse("2026-12-01T00:00:00Z"), due = new Date(start + 10 * {HOUR}).toISOString();
        const at = (hours, share) => m.slaMark(due, new Date(start).toISOString(), share, start + hours * {HOUR}).kind;
        return [at(7.9), at(8), at(9.99), at(10), at(11), at(4.9, 0.5), at(5, 0.5), m.slaMark(null).kind];""",
    )
    assert marks == ["ok", "risk", "risk", "breached", "breached", "ok", "risk", "ok"]


def test_a_form_becomes_the_body_the_services_expect(page):
    body = run(
        page,
        "core.js",
        """
        const form = m.h("form", {},
          m.field("customer.phone", m.h("input", {value: " 13900000000 "})),
          m.field("anger_score", m.h("input", {type: "number", value: "4"})),
          m.field("staff_involved", m.h("input", {value: "E1024，E1025, E1026"})),
          m.field("product.brand", m.h("input", {value: "  "})));
        form.querySelector('[data-path="staff_involved"]').dataset.list = "";
        return m.formBody(form);""",
    )
    assert body == {
        "customer": {"phone": "13900000000"},
        "anger_score": 4,
        "staff_involved": ["E1024", "E1025", "E1026"],
    }


def test_field_errors_land_next_to_their_fields_and_focus_the_first(page):
    shown = run(
        page,
        "core.js",
        """
        const form = m.h("form", {}, m.field("customer.phone", m.h("input")), m.field("anger_score", m.h("input")));
        document.getElementById("main").append(form);
        m.showErrors(form, {body: {fields: {customer: {phone: ["Not a phone number."]},
                                            anger_score: ["Must be between 1 and 5."]}}});
        const slot = (p) => form.querySelector(`[data-error-for="${p}"]`).textContent;
        const result = [slot("customer.phone"), slot("anger_score"), document.activeElement.dataset.path,
                        form.querySelectorAll("[aria-invalid=true]").length];
        m.showErrors(form, null);                                 // a good answer clears them
        return [...result, slot("anger_score"), form.querySelectorAll("[aria-invalid]").length];""",
    )
    assert shown == ["Not a phone number.", "Must be between 1 and 5.", "customer.phone", 2, "", 0]


def test_every_word_is_there_in_chinese_and_in_english(page):
    missing = run(
        page,
        "i18n.js",
        """
        const zh = Object.keys(m.WORDS.zh), en = Object.keys(m.WORDS.en);
        return {en: zh.filter((k) => !(k in m.WORDS.en)), zh: en.filter((k) => !(k in m.WORDS.zh)),
                empty: [...zh, ...en].filter((k) => !m.WORDS.zh[k] || !m.WORDS.en[k])};""",
    )
    assert missing == {"en": [], "zh": [], "empty": []}


def test_a_time_typed_and_shown_on_the_malls_clock_whatever_the_browsers_zone(page):
    page.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    times = run(
        page,
        "core.js",
        """
        await m.loadLabels();
        const instant = m.mallTime("2026-12-06T15:30", "sh-xujiahui");   // Shanghai is UTC+8 all year
        const zoned = m.when("2026-12-06T07:30:00Z", "sh-xujiahui", {zone: true});
        return [instant, m.when(instant, "sh-xujiahui"), zoned];""",
    )
    assert times[0] == "2026-12-06T07:30:00.000Z"
    assert times[1] == "2026/12/06 15:30"
    assert times[2] == "2026/12/06 GMT+8 15:30"  # with the zone's name, for pages that mix malls


def test_a_timeline_steps_detail_reads_in_words(page):
    words = run(
        page,
        "core.js",
        """
        await m.loadLabels();
        return [m.stepDetail({source: "cctv", summary: "12号摄像头"}),
                m.stepDetail({decision: "partly_upheld", remedies: [{type: "refund", amount: "12.00"},
                                                                     {type: "voucher", amount: "5.00"}]}),
                m.stepDetail({kind: "product_hold", to_role: "store_manager", reason: "breach"}),
                m.staffName([{id: "E3001", name: "张伟"}], "E3001"), m.staffName([], "E9999")];""",
    )
    assert words == [
        "来源: 监控录像; 摘要: 12号摄像头",
        "结论: 部分成立; 补偿: 退款 12.00、代金券 5.00",
        "原因: 超时升级; 转交: 店长; 类型: 问题商品下架封存",
        "张伟",
        "E9999",
    ]


def test_a_pages_countdowns_stop_when_the_next_page_is_drawn(page):
    """Review found a queue's 30-second tick rewriting the incidents page's cells after the
    handler moved on: a page's timers run only while it is on screen (app.js stops them)."""
    ticks = run(
        page,
        "core.js",
        """
        // the console's own first page is drawn first (drawing a page stops the timers before it)
        while (!document.querySelector("main[data-page]")) await new Promise((r) => setTimeout(r, 50));
        const cell = document.createElement("td");
        cell.className = "sla"; cell.dataset.due = new Date(Date.now() + 3600000).toISOString();
        document.body.append(cell);
        let ticked = 0;
        m.every(20, () => { ticked += 1; });
        m.keepMarks(document.body, "td.sla", 20);
        await new Promise((r) => setTimeout(r, 120));
        const before = ticked, marked = cell.querySelector("[data-sla]") !== null;
        m.stopPageTimers();   // what app.js does before the next page renders
        cell.replaceChildren();
        await new Promise((r) => setTimeout(r, 120));
        return {before, after: ticked - before, marked, remarked: cell.childNodes.length};
        """,
    )
    assert ticks["before"] >= 2 and ticks["marked"]
    assert ticks["after"] == 0 and ticks["remarked"] == 0
