"""R7.12, seed 003: 定期進行客戶滿意度調查，收集客戶意見 (customer satisfaction surveyed
periodically): each mall surveys a sample of the customers whose cases closed in the month
gone, drawn by channel in proportion, the same draw for the same round, each customer once,
only customers an SMS or app message reaches (they answer by the link); the round starts by
itself on the policy's day or by hand, once; the monthly report counts the surveys apart
from the revisits. The sampling rules as plain functions, then feedback's worker against
the real store (as in test_library_review.py) and analytics' report of what it published."""

import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from analytics.service import AnalyticsService
from feedback import answer_page, surveys
from feedback.service import FeedbackService
from mallcare_common.contracts import feedback as feedback_events
from mallcare_common.errors import Conflict
from mallcare_common.web import REQUEST_ID
from tests.unit.analytics.test_reports import closed, event
from tests.unit.feedback.conftest import assert_valid

SH = ZoneInfo("Asia/Shanghai")
NOV_20 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
DEC_3 = datetime(2026, 12, 3, 1, 0, tzinfo=timezone.utc)  # 09:00 on the policy's day
WAYS = {"desk": "sms", "hotline": "sms", "web": "sms", "email": "sms", "app": "app_message", "wechat": "app_message"}
RULES = {"sample_per_mall": 6, "ways": WAYS}


def kept(number, channel, contact, ref):
    """What feedback keeps of a complaint (masked contact, intake's pseudonymous reference)."""
    return {"_id": number, "mall_id": "sh-xujiahui", "channel": channel, "contact_masked": contact, "customer_ref": ref}


def month_of_customers():
    """November at one mall: (closures, complaints). 5 customers closed by the desk, 3 by the
    web form, 4 by the app (one of them, c1, came to the desk first: the app case is their
    latest); 3 more no SMS or app message reaches (an e-mail address alone, no contact)."""
    found = [
        *(kept(f"D{n}", "desk", f"139****000{n}", f"c{n}") for n in range(1, 7)),
        *(kept(f"W{n}", "web", f"137****100{n}", f"w{n}") for n in range(1, 4)),
        *(kept(f"A{n}", "app", None, f"a{n}") for n in range(1, 4)),
        kept("A9", "app", None, "c1"),
        kept("X1", "web", "l***@example.com", "x1"),  # an e-mail address alone: no SMS
        kept("X2", "hotline", "l***@example.com", "x2"),
        kept("X3", "app", None, None),  # no contact at all
    ]
    closures = [{"_id": c["_id"], "closed_at": NOV_20 + timedelta(hours=i)} for i, c in enumerate(found)]
    return closures, {c["_id"]: c for c in found}


def test_the_sample_is_spread_over_the_channels_in_proportion_each_customer_once():
    closures, complaints = month_of_customers()
    drawn = surveys.sample("SHXJH-SVY-2026-11", closures, complaints, RULES)
    # reachable customers: desk 5 (c2-c6), web 3, app 4 (a1-a3 and c1): 6 places in proportion
    # 2.5 / 1.5 / 2 -> 2, 1, 2 and the one left to the larger of the two equal remainders
    assert Counter(d["channel"] for d in drawn) == {"desk": 3, "web": 1, "app": 2}
    customers = [complaints[d["complaint_no"]]["customer_ref"] for d in drawn]
    assert len(customers) == len(set(customers)) == 6
    assert "D1" not in {d["complaint_no"] for d in drawn}  # c1 stands by their latest case, A9
    assert {d["way"] for d in drawn if d["channel"] == "app"} == {"app_message"}
    assert {d["way"] for d in drawn if d["channel"] != "app"} == {"sms"}


def test_only_customers_an_sms_or_app_message_reaches_are_drawn():
    closures, complaints = month_of_customers()
    everyone = surveys.sample("SHXJH-SVY-2026-11", closures, complaints, {**RULES, "sample_per_mall": 100})
    assert sorted(d["complaint_no"] for d in everyone) == sorted(
        ["D2", "D3", "D4", "D5", "D6", "W1", "W2", "W3", "A1", "A2", "A3", "A9"]
    )
    assert surveys.way(kept("H1", "hotline", "139****0001", "h"), WAYS) == "sms"  # a call's customer gets an SMS
    assert surveys.way(kept("E1", "email", "l***@example.com", "e"), WAYS) is None


def test_the_same_round_draws_the_same_sample_whatever_order_the_cases_come_in():
    closures, complaints = month_of_customers()
    first = surveys.sample("SHXJH-SVY-2026-11", closures, complaints, RULES)
    shuffled = closures[:]
    random.Random(7).shuffle(shuffled)
    assert surveys.sample("SHXJH-SVY-2026-11", shuffled, complaints, RULES) == first
    # another round draws by its own order: over a year's rounds the desk's three are not always the same
    desk = {
        frozenset(d["complaint_no"] for d in surveys.sample(f"SHXJH-SVY-2026-{m:02d}", closures, complaints, RULES))
        for m in range(1, 13)
    }
    assert len(desk) > 1


def test_the_places_add_up_to_the_sample_and_a_small_month_is_asked_whole():
    assert surveys.allocate({"desk": 5, "web": 3, "app": 4}, 6) == {"desk": 3, "web": 1, "app": 2}
    assert sum(surveys.allocate({"desk": 17, "web": 9, "app": 4, "hotline": 1}, 30).values()) == 30
    assert surveys.allocate({"desk": 2, "app": 1}, 30) == {"desk": 2, "app": 1}


# --- the round, on feedback's worker and the real store --------------------------------------------


def registered(number, channel, contact, ref):
    return event(
        "complaint_registered",
        number,
        {
            "channel": channel,
            "received_at": NOV_20.isoformat(),
            "ack_due_at": (NOV_20 + timedelta(hours=1)).isoformat(),
            "customer": {"ref": ref, "contact_masked": contact},
            "location": {"area": "一楼生鲜区", "merchant_id": "T-17"},
            "staff_involved": [],
            "description": "草莓发霉",
            "demands": {"fact": "草莓发霉", "expectation": "退款"},
            "policy_version": "v",
        },
        NOV_20,
    )


def case(number):
    return {"complaint_no": number, "mall_id": "sh-xujiahui", "category": None, "risk_level": "low", "round": 1}


@pytest.fixture
def feedback(service_worker):
    worker = service_worker(FeedbackService, DEC_3)
    worker.resolution.get_case.side_effect = case
    worker.access.caller.return_value.user = "A0001"
    return worker


def sent(worker):
    return [e for e in worker.dispatch.events if e["event_type"] == "survey_sent"]


def test_a_round_is_drawn_once_by_hand_or_by_itself_and_counted_apart_from_revisits(feedback, service_worker):
    people = [("desk", "139****0001", "c1"), ("web", "137****0002", "c2"), ("app", None, "c3")]
    people += [("web", "l***@example.com", "c4"), ("desk", "139****0001", "c1")]  # e-mail alone; c1 again
    for n, (channel, contact, ref) in enumerate(people, start=1):
        number = f"SHXJH-20261120-{n:04d}"
        feedback.handle_complaint_registered(registered(number, channel, contact, ref))
        feedback.handle_case_closed(closed(number, NOV_20 + timedelta(hours=n)))

    with pytest.raises(Conflict, match="2026-12 is not over"):
        feedback.start_survey_round({"mall_id": "sh-xujiahui", "month": "2026-12"})
    with pytest.raises(ValidationError) as refused:
        feedback.start_survey_round({"mall_id": "sh-xujiahui", "month": "2026-13"})
    assert "month" in refused.value.messages

    started = feedback.start_survey_round({"mall_id": "sh-xujiahui", "month": "2026-11"})
    assert started.created and started.record["round_no"] == "SHXJH-SVY-2026-11"
    assert started.record["by_channel"] == {"desk": 1, "web": 1, "app": 1}
    assert started.record["started_by"] == "A0001"
    out = [assert_valid(e, feedback_events.SURVEY_SENT) for e in sent(feedback)]
    assert sorted((e["complaint_no"], e["payload"]["way"]) for e in out) == [
        ("SHXJH-20261120-0002", "sms"),
        ("SHXJH-20261120-0003", "app_message"),
        ("SHXJH-20261120-0005", "sms"),  # c1's latest case
    ]
    assert {e["payload"]["link_expires_at"] for e in out} == {DEC_3 + timedelta(days=7)}

    # again by hand, or the timer on the policy's day: the same round, nothing sent twice;
    # the timer starts the other malls' rounds (no closed cases there: nobody to ask)
    again = feedback.start_survey_round({"mall_id": "sh-xujiahui", "month": "2026-11"})
    assert not again.created and again.record == started.record
    feedback.start_survey_rounds()
    assert len(sent(feedback)) == 3
    assert {r["_id"]: len(r["sample"]) for r in feedback.store.rounds.find()} == {
        "SHXJH-SVY-2026-11": 3,
        "BJCY-SVY-2026-11": 0,
        "GZTH-SVY-2026-11": 0,
    }

    # the customers' answers, as the page records them; analytics counts them apart
    first, second = sorted(feedback.store.surveys.find(), key=lambda s: s["_id"])[:2]
    answered = []
    for survey, score in ((first, 5), (second, 2)):
        changes, out = surveys.answer(survey, {"score": score, "comment": "服務很好"}, 4, DEC_3)
        answered += [assert_valid(e, feedback_events.SURVEY_ANSWERED) for e in out]
        assert changes["answer"]["satisfied"] is (score >= 4)
    with pytest.raises(Conflict, match="answered already"):
        surveys.answer({**first, "status": "answered"}, {"score": 4}, 4, DEC_3)

    analytics = service_worker(AnalyticsService, DEC_3)
    told = [*reversed(answered), *sent(feedback), answered[0]]  # an answer first, one redelivered
    analytics.take_events([(e["event_type"], e) for e in told])
    report = analytics._report("monthly", "2026-11", "sh-xujiahui")
    assert {k: report["surveys"][k] for k in ("sent", "answered", "satisfied")} == {
        "sent": 3,
        "answered": 2,
        "satisfied": 1,
    }
    # the round's surveys are numbered by channel (app, desk, web): the app's 5 stars, the desk's 2
    assert {(r["channel"], r["sent"], r["answered"], r["satisfied"]) for r in report["surveys"]["items"]} == {
        ("app", 1, 1, 1),
        ("desk", 1, 1, 0),
        ("web", 1, 0, 0),
    }
    assert report["satisfaction"]["answered"] == 0  # not a revisit's answer


# --- the page a survey's link opens -----------------------------------------------------------------


def test_a_surveys_page_asks_the_general_question_and_an_ended_one_promises_no_call():
    """R7.12, seed 003: 定期進行客戶滿意度調查: the survey's own question in zh and en, no reason tags."""
    zh = answer_page.survey_form("https://care.example.com", "tok.en", "zh", "上海徐家汇店 <B1>")
    en = answer_page.survey_form("https://care.example.com", "tok.en", "en", "Shanghai Xujiahui")
    assert "您对本商场处理投诉的总体评价？" in zh and "上海徐家汇店 &lt;B1&gt;" in zh
    assert "How well does the mall handle complaints, overall?" in en
    assert 'name="reasons"' not in zh + en and zh.count('name="score"') == 5
    for lang, words in (("zh", "调查已结束"), ("en", "This survey has ended")):
        environ = EnvironBuilder(path="/answers", query_string=f"token=x&lang={lang}").get_environ()
        environ[REQUEST_ID] = "req-42"
        page = answer_page.refusal(Request(environ), answer_page.SurveyEnded("survey expired"))
        assert page.status_code == 410 and words in page.get_data(as_text=True)
        assert "call" not in page.get_data(as_text=True) and "致电" not in page.get_data(as_text=True)
