"""R7.2: a customer's WeChat message to the mall's official account becomes a complaint. The
running intake gets what WeChat's server sends (plain-text mode, signed in the query) and
answers as WeChat expects: echostr for the URL check, a passive XML reply with the
complaint number for a message; a wrong signature stores nothing; a retry of the same
MsgId is the same complaint."""

import hashlib
import time
import xml.etree.ElementTree as ElementTree

import pytest

from tests.helpers import SECRETS, staff

ACCOUNT = "gh_5a1c2e3f4b6d"  # sh-xujiahui's account in deploy/policy/intake.yml
TOKEN = SECRETS["WECHAT_TOKEN_SH_XUJIAHUI"]  # its token, as the tests' secrets hold it
OPENID = "oX3kTq1Lm9Zw_customer_000001"  # 28 characters, as WeChat makes them
URL = "/channels/wechat/sh-xujiahui"


@pytest.fixture
def intake(services):
    system = services("intake")
    client = system.web["intake"]
    client.db = system.db("intake")
    return client


def signed(token=TOKEN, **extra):
    """The query WeChat's server sends: SHA-1 of token, timestamp and nonce, sorted and joined."""
    timestamp, nonce = str(int(time.time())), "1514065378"
    digest = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return {"signature": digest, "timestamp": timestamp, "nonce": nonce, **extra}


def message(kind="text", to=ACCOUNT, **fields):
    body = "".join(f"<{tag}><![CDATA[{value}]]></{tag}>" for tag, value in fields.items())
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{body}</xml>"
    ).encode("utf-8")


def text(content, msg_id="24523612345678901"):
    return message(Content=content, MsgId=msg_id)


def send(intake, body, query=None):
    return intake.post(URL, params=query or signed(openid=OPENID), data=body, headers={"Content-Type": "text/xml"})


def reply_of(response):
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    root = ElementTree.fromstring(response.content)
    return {child.tag: child.text for child in root}


def test_wechat_checks_the_url_and_gets_its_echostr_back(intake):
    answer = intake.get(URL, params=signed(echostr="7317498329812345"))
    assert (answer.status_code, answer.text) == (200, "7317498329812345")
    forged = intake.get(URL, params=signed(token="not-the-token-" + "x" * 18, echostr="7317498329812345"))
    assert forged.status_code == 403 and "7317498329812345" not in forged.text


def test_a_text_message_is_a_complaint_and_the_reply_carries_its_number(intake):
    response = send(intake, text("B1佳农水果买的草莓有三分之一发霉了，要求退款"))
    reply = reply_of(response)
    assert (reply["ToUserName"], reply["FromUserName"], reply["MsgType"]) == (OPENID, ACCOUNT, "text")
    number = intake.get("/complaints", params={"channel": "wechat"}).json()["items"][0]["number"]
    assert f"编号 {number}" in reply["Content"] and "已受理" in reply["Content"]

    complaint = intake.get(f"/complaints/{number}").json()
    assert (complaint["status"], complaint["channel"], complaint["mall_id"]) == ("registered", "wechat", "sh-xujiahui")
    assert complaint["description"] == "B1佳农水果买的草莓有三分之一发霉了，要求退款"
    # the OpenID is personal data: masked in every read, whole only in the audited one
    assert complaint["customer"]["reachable_by"] == ["wechat_openid"]
    assert complaint["customer"]["contact_masked"] == "oX3k****0001"
    assert OPENID not in response.text.replace(f"<![CDATA[{OPENID}]]>", "") and OPENID not in str(complaint)
    full = intake.get(
        f"/complaints/{number}/customer", params={"purpose": "reply on WeChat"}, headers=staff("D3001")
    ).json()
    assert full["customer"] == {"wechat_openid": OPENID}


def test_wechat_retrying_the_same_message_makes_one_complaint(intake):
    first = reply_of(send(intake, text("停车场收费机扣了我两次钱", msg_id="24523600000000042")))
    again = reply_of(send(intake, text("停车场收费机扣了我两次钱", msg_id="24523600000000042")))
    assert again["Content"] == first["Content"]
    assert intake.db.complaints.count_documents({"channel": "wechat"}) == 1


def test_a_wrong_signature_is_refused_and_nothing_is_stored(intake):
    forged = signed(token="not-the-token-" + "x" * 18, openid=OPENID)
    response = send(intake, text("草莓发霉了，要求退款"), query=forged)
    assert response.status_code == 403
    unsigned = intake.post(URL, data=text("草莓发霉了，要求退款"))
    assert unsigned.status_code == 403
    to_another_account = send(intake, message(to="gh_0000aaaa1111", Content="草莓发霉了", MsgId="1"))
    assert to_another_account.status_code == 403
    # a signed query seen once (in a proxy's log) does not serve again ten minutes later
    stale = signed(openid=OPENID)
    stale["timestamp"] = str(int(stale["timestamp"]) - 600)
    stale["signature"] = hashlib.sha1("".join(sorted([TOKEN, stale["timestamp"], stale["nonce"]])).encode()).hexdigest()
    replayed = send(intake, text("草莓发霉了，要求退款"), query=stale)
    assert replayed.status_code == 403 and "timestamp" in replayed.json()["message"]
    assert intake.db.complaints.count_documents({}) == 0


def test_xml_with_entities_or_a_doctype_is_refused_unread(intake):
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<xml><ToUserName>gh_5a1c2e3f4b6d</ToUserName><FromUserName>oX3kTq1Lm9Zw_customer_000001</FromUserName>"
        b"<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>&b;</Content>"
        b"<MsgId>1</MsgId></xml>"
    )
    assert send(intake, laughs).status_code == 400
    assert send(intake, b"not xml at all").status_code == 400
    assert intake.db.complaints.count_documents({}) == 0


def test_what_is_not_text_is_answered_and_registers_nothing(intake):
    picture = reply_of(send(intake, message("image", PicUrl="http://mmbiz.qpic.cn/x", MediaId="m1", MsgId="7")))
    assert "文字" in picture["Content"]
    welcome = reply_of(send(intake, message("event", Event="subscribe")))
    assert "欢迎关注上海徐家汇店" in welcome["Content"]
    unfollowed = send(intake, message("event", Event="unsubscribe"))
    assert (unfollowed.status_code, unfollowed.text) == (200, "success")
    assert intake.db.complaints.count_documents({}) == 0


def test_too_little_to_act_on_is_kept_and_the_customer_asked_for_more(intake):
    reply = reply_of(send(intake, text("你好", msg_id="24523600000000077")))
    [kept] = intake.get("/complaints", params={"channel": "wechat"}).json()["items"]
    assert kept["rejection"]["reason"] == "insufficient_information"
    assert kept["number"] in reply["Content"] and "发生了什么" in reply["Content"]


def test_a_mall_without_an_account_has_no_callback(intake):
    response = intake.post("/channels/wechat/bj-chaoyang", params=signed(openid=OPENID), data=text("草莓发霉了"))
    assert response.status_code == 404
