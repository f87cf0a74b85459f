"""Issue 19, the answer page, on the real broker and store: the revisit's answer link is
absolute (the chain's public address) and opens a page in simplified Chinese (English with
lang=en) with 1-5 stars, the policy's reason tags and a comment, a plain form without
script; its answer goes the way of POST /answers (the case closes or reopens), once; forged,
expired, used and ended links each get their page in the language asked for, with the
status a client can read (403, 410, 409). Every page forbids scripts, frames and the
Referer that would carry the token elsewhere. In Chromium on a phone: tests/e2e/test_answer_page.py."""

import re
import uuid
from datetime import datetime, timezone

import pytest
import requests

from feedback import rules
from mallcare_cli.examples import desk_complaint
from tests.helpers import page_of, settle_at_desk, staff, wait_for

DESK, SUPERVISOR = staff("D3001"), staff("E3011")


@pytest.fixture
def link(system):
    """An app complaint settled at the desk: its revisit asks by app message, with the link."""
    with system.case_opened():
        number = (
            system.web["intake"]
            .post("/complaints", json=desk_complaint(channel="app", channel_ref=f"app-{uuid.uuid4().hex[:8]}"))
            .json()["number"]
        )
    settle_at_desk(system, number, DESK)
    revisit = system.web["feedback"].get(f"/revisits/{number}-R1").json()
    assert revisit["way"] == "app_message"
    return Link(system, number, revisit["answer_link"])


class Link:
    def __init__(self, system, number, url):
        self.system, self.number, self.url = system, number, url
        self.base = system.config["feedback"]["MALLCARE"]["PUBLIC_BASE_URL"]
        self.token = url.split("token=", 1)[1]

    def open(self, token=None, **params):
        """GET the page, as the link is or with another token."""
        return requests.get(self.base + "/answers", params={"token": token or self.token, **params}, timeout=10)

    def send(self, lang=None, token=None, **form):
        """POST the page's form (as a browser sends it: application/x-www-form-urlencoded)."""
        return requests.post(
            self.base + "/answers/form",
            params={"lang": lang} if lang else None,
            data={"token": token or self.token, **form},
            timeout=10,
        )

    def case(self):
        return self.system.web["resolution"].get(f"/cases/{self.number}").json()

    def revisit(self):
        return self.system.web["feedback"].get(f"/revisits/{self.number}-R1").json()


def refusal(html):
    """(title, reason, the sentence) of a refusal page."""
    title = re.search(r"<h1>(.*?)</h1>", html).group(1)
    reason, sentence = re.search(r'<p data-reason="(\w+)">(.*?)</p>', html).groups()
    return title, reason, sentence


def test_the_link_opens_a_chinese_page_with_stars_the_reason_tags_and_a_comment(system, link):
    assert link.url.startswith(link.base + "/answers?token=") and link.base.startswith("http://")
    html = page_of(requests.get(link.url, timeout=10), 200)
    assert "服务回访" in html and "上海徐家汇店" in html and link.number in html
    assert re.findall(r'name="score" value="(\d)" required', html) == ["5", "4", "3", "2", "1"]
    tags = system.web["feedback"].get("/policy").json()["reason_tags"]
    assert re.findall(r'name="reasons" value="(\w+)"', html) == list(tags)  # what POST /answers takes
    assert "处理太慢" in html and tags["slow"]["zh"] == "处理太慢"
    assert '<textarea id="comment" name="comment"' in html
    assert f'<form method="post" action="{link.base}/answers/form">' in html
    assert f'<input type="hidden" name="token" value="{link.token}">' in html

    english = page_of(link.open(lang="en"), 200, "en")
    assert "How did we do?" in english and "It took too long" in english and "处理太慢" not in english
    assert f'action="{link.base}/answers/form?lang=en"' in english
    assert f'href="{link.base}/answers?token={link.token}"' in english  # back to Chinese
    assert f'href="{link.base}/answers?token={link.token}&amp;lang=en"' in html


def test_a_five_star_answer_closes_the_case_and_the_link_answers_once(system, link):
    thanks = page_of(link.send(score="5", comment="很快 <b>谢谢</b>"), 200)
    assert "谢谢您的反馈。" in thanks
    wait_for(lambda: link.case()["state"] == "closed")
    assert link.case()["closure"]["reason"] == "customer satisfied (score 5)"
    answer = link.revisit()["answer"]
    assert (answer["by"], answer["via"], answer["score"], answer["comment"]) == (
        "customer",
        "link",
        5,
        "很快 <b>谢谢</b>",
    )
    assert link.revisit()["answer_link"] is None  # answered: nothing more to send

    assert "谢谢您的反馈。" in page_of(link.send(score="5", comment="很快 <b>谢谢</b>"), 200)  # sent twice
    assert refusal(page_of(link.send(score="1"), 409))[:2] == ("您已回答过了", "answered")
    assert refusal(page_of(link.send(comment="no stars"), 409))[:2] == ("您已回答过了", "answered")  # not the form
    assert refusal(page_of(link.open(), 409))[:2] == ("您已回答过了", "answered")
    assert refusal(page_of(link.open(lang="en"), 409, "en"))[:2] == ("You have answered already", "answered")
    json_answer = system.web["feedback"].post("/answers", json={"token": link.token, "score": 1})
    assert json_answer.status_code == 409 and json_answer.json()["error"] == "CONFLICT"
    assert link.revisit()["answer"]["score"] == 5


def test_a_dissatisfied_answer_in_english_reopens_the_case_with_its_reasons(system, link):
    thanks = page_of(link.send("en", score="2", reasons=["slow", "communication"], comment="two days"), 200, "en")
    assert "We will follow up with you again soon." in thanks
    reopened = wait_for(lambda: (case := link.case())["state"] == "reopened" and case)
    assert reopened["timeline"][-1]["detail"]["reason"] == "customer dissatisfied (score 2): slow, communication"
    assert link.revisit()["answer"]["reasons"] == ["slow", "communication"]


def test_forged_expired_and_ended_links_each_get_their_page(system, link):
    forged = link.token[:-3] + ("abc" if not link.token.endswith("abc") else "xyz")
    assert refusal(page_of(link.open(forged), 403)) == (
        "链接无效",
        "forged",
        "这个回访链接无效。请打开短信或消息中的完整链接。",
    )
    assert refusal(page_of(link.open(forged, lang="en"), 403, "en"))[:2] == ("This link is not valid", "forged")
    assert refusal(page_of(link.send(token=forged, score="5"), 403))[1] == "forged"
    assert refusal(page_of(requests.get(link.base + "/answers", timeout=10), 403))[1] == "forged"  # no token

    secret = system.config["feedback"]["MALLCARE"]["ANSWER_LINK_SECRET"]
    expired = rules.sign_link(secret, f"{link.number}-R1", datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert refusal(page_of(link.open(expired), 410)) == (
        "链接已过期",
        "expired",
        "这个回访链接已过期，商场会致电回访您。",
    )
    assert refusal(page_of(link.send("en", token=expired, score="5"), 410, "en"))[:2] == (
        "This link has expired",
        "expired",
    )
    unknown = rules.sign_link(secret, "SHXJH-20000101-0001-R1", datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert refusal(page_of(link.open(unknown), 404))[1] == "unknown"

    # a supervisor closes the case before the customer answers: the revisit ends, and so does the link
    closed = system.web["resolution"].post(
        f"/cases/{link.number}/closure", headers=SUPERVISOR, json={"reason": "settled by phone"}
    )
    assert closed.status_code == 200, closed.text
    wait_for(lambda: link.revisit()["status"] == "cancelled")
    assert refusal(page_of(link.open(), 409))[:2] == ("回访已结束", "closed")
    assert refusal(page_of(link.send(score="5"), 409))[:2] == ("回访已结束", "closed")


def test_a_form_sent_without_stars_comes_back_as_filled_in_and_escaped(system, link):
    hostile = '</textarea><script>alert("token")</script>'
    html = page_of(link.send(reasons=["slow"], comment=hostile), 422)
    assert re.search(r'<p class="alert" role="alert" id="problem">请选择 1 到 5 颗星。</p>', html)
    assert ">&lt;/textarea&gt;&lt;script&gt;alert(&quot;token&quot;)&lt;/script&gt;</textarea>" in html
    assert 'value="slow" checked' in html and 'value="attitude">' in html
    assert f'name="token" value="{link.token}"' in html

    english = page_of(link.send("en", score="2", reasons=["rude_cashier"]), 422, "en")
    assert "Please choose reasons from the list." in english
    assert page_of(link.send(score="5", comment="x" * 2001), 422).count("意见最多 2000 字。") == 1
    assert link.revisit()["status"] == "scheduled"  # nothing recorded
    assert "谢谢您的反馈。" in page_of(link.send(score="4"), 200)


def test_a_form_the_service_cannot_read_gets_a_page_too(system, link):
    too_large = requests.post(
        link.base + "/answers/form", data={"token": link.token, "comment": "x" * 70000}, timeout=10
    )
    assert refusal(page_of(too_large, 413))[1] == "too_large"
    nul = page_of(link.send("en", score="5", comment="a\x00b"), 422, "en")
    assert refusal(nul)[:2] == ("Your answer could not be read", "unreadable")
    not_utf8 = requests.post(
        link.base + "/answers/form",
        data=b"token=" + link.token.encode() + b"&comment=%FF",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert refusal(page_of(not_utf8, 400))[1] == "unreadable"
    assert link.revisit()["status"] == "scheduled"
