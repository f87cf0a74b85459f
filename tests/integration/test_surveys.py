"""R7.12, seed 003: 定期進行客戶滿意度調查，收集客戶意見 (customer satisfaction surveyed
periodically, beside the revisits), on the real broker and store with all six services and
notify's gateways pointed at the protocol stand-ins: a customer whose case closed in
November is drawn in the mall's survey round started on 3 December, gets the survey's link by
SMS, answers it on the page the link opens, once; the case stays closed, and the monthly
report counts the survey apart from the revisit's answer. The sampling rules:
tests/unit/feedback/test_surveys.py."""

import re
import time
from datetime import timedelta

import pytest
import requests

from mallcare_cli.examples import desk_complaint
from mallcare_common.calendar import as_stored
from tests.helpers import handled, settle_at_desk, staff, wait_for
from tests.integration.test_gateways import phone, standins
from tests.unit.notify.conftest import MONDAY_10

DESK = staff("D3001")


@pytest.fixture
def outside(tmp_path):
    with standins(tmp_path) as started:
        yield started


@pytest.fixture
def system(services, policy_dir, outside, shift):
    """The six services on clocks that move from Monday 23 November 10:00 in Shanghai,
    feedback's and notify's on by `shift` (the survey round's day), notify's gateways at the stand-ins."""
    outside.point_notify_here(policy_dir)
    started = time.monotonic()
    moving = lambda: as_stored(MONDAY_10 + timedelta(seconds=time.monotonic() - started))  # noqa: E731
    shifted = lambda: moving() + shift["by"]  # noqa: E731
    return services(
        clocks={
            "triage": moving,
            "resolution": moving,
            "intake": moving,
            "analytics": moving,
            "feedback": shifted,
            "notify": shifted,
        },
        settings={"notify": {"POLICY_DIR": str(policy_dir)}},
    )


def test_a_customer_of_last_month_gets_the_survey_by_sms_answers_once_and_is_counted_apart(system, outside, shift):
    web, to = system.web, phone()
    with system.case_opened():
        number = web["intake"].post("/complaints", json=desk_complaint(customer={"name": "王女士", "phone": to}))
        number = number.json()["number"]
    settle_at_desk(system, number, DESK)
    with handled(system.containers["feedback"], "handle_case_closed", number):
        reached = web["feedback"].post(
            f"/revisits/{number}-R1/attempts", headers=DESK, json={"outcome": "reached", "score": 5}
        )
        assert reached.status_code == 200, reached.text

    shift["by"] = timedelta(days=10)  # Thursday 3 December, the policy's day: November's round
    started = web["feedback"].post("/surveys/rounds", json={"mall_id": "sh-xujiahui", "month": "2026-11"})
    assert started.status_code == 201, started.text
    assert [(d["complaint_no"], d["way"]) for d in started.json()["sample"]] == [(number, "sms")]

    text = wait_for(
        lambda: [m["text"] for m in outside.received(to) if "评价本商场的投诉处理" in m["text"]], timeout=30
    )[0]
    assert text.startswith("【上海徐家汇店】您上月的投诉已处理完毕。诚邀您评价本商场的投诉处理")
    link = re.search(r"https?://\S+/answers\?token=\S+", text).group(0)

    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "顾客满意度调查" in page.text
    assert 'name="reasons"' not in page.text  # the general question: stars and a comment
    token = link.split("token=", 1)[1]
    form = f"{link.split('/answers?', 1)[0]}/answers/form"
    answered = requests.post(form, data={"token": token, "score": "4", "comment": "處理得很及時，謝謝"}, timeout=10)
    assert answered.status_code == 200 and "谢谢您参加调查" in answered.text, answered.text
    again = requests.post(form, data={"token": token, "score": "1"}, timeout=10)
    assert again.status_code == 409 and 'data-reason="answered"' in again.text

    def counted():
        report = web["analytics"].get("/reports/monthly", params={"period": "2026-11", "mall_id": "sh-xujiahui"})
        surveys = report.json()["surveys"]
        return surveys["answered"] == 1 and report.json()

    report = wait_for(counted, timeout=20)
    assert [(r["channel"], r["sent"], r["answered"], r["satisfied"]) for r in report["surveys"]["items"]] == [
        ("desk", 1, 1, 1)
    ]
    assert report["satisfaction"]["answered"] == 1  # the revisit's answer alone
    assert web["resolution"].get(f"/cases/{number}").json()["state"] == "closed"  # a survey reopens nothing
    kinds = [m["kind"] for m in web["notify"].get("/messages", params={"complaint_no": number}).json()["items"]]
    assert kinds.count("survey") == 1
