"""R7.2, WeChat's side without a server: what the callback reads from WeChat's XML (and
refuses), the complaint a text makes, and the passive reply it answers with."""

from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree

import pytest

from intake import wechat
from mallcare_common.web import MalformedBody

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)
OPENID = "oX3kTq1Lm9Zw-customer-0001"


def xml(content="草莓发霉了", kind="text", sent=NOW, **extra):
    fields = {
        "ToUserName": "gh_5a1c2e3f4b6d",
        "FromUserName": OPENID,
        "CreateTime": str(int(sent.timestamp())),
        "MsgType": kind,
        "Content": content,
        "MsgId": "24523612345678901",
        **extra,
    }
    return (
        "<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items() if v is not None) + "</xml>"
    ).encode()


def test_a_text_message_registers_a_complaint_of_its_account_and_openid():
    message = wechat.read_message(xml("  B1的草莓发霉了\n要求退款  "))
    complaint = wechat.complaint(message, "sh-xujiahui", NOW)
    assert complaint == {
        "mall_id": "sh-xujiahui",
        "channel": "wechat",
        "channel_ref": "gh_5a1c2e3f4b6d:24523612345678901",
        "received_at": NOW.isoformat(),
        "customer": {"wechat_openid": OPENID},
        "description": "B1的草莓发霉了\n要求退款",
    }


def test_a_message_time_ahead_of_ours_is_taken_as_now_and_a_long_text_is_cut():
    message = wechat.read_message(xml("霉" * 6000, sent=NOW + timedelta(minutes=9)))
    complaint = wechat.complaint(message, "sh-xujiahui", NOW)
    assert complaint["received_at"] == NOW.isoformat() and len(complaint["description"]) == 5000


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE xml [<!ENTITY a "x">]><xml><MsgType>text</MsgType><Content>&a;</Content></xml>',
        b'<!DOCTYPE xml SYSTEM "http://example.com/x.dtd"><xml></xml>',
        b"<xml><Content>unclosed",
        b"<note><ToUserName>gh_5a1c2e3f4b6d</ToUserName></note>",
        xml(FromUserName="<script>"),  # not an OpenID: never echoed into a reply
        xml(MsgId=None),  # a text without its MsgId could not be deduplicated
        xml(CreateTime="yesterday"),
    ],
    ids=["entity", "external dtd", "broken", "not wechat's", "no openid", "no msgid", "no time"],
)
def test_what_is_not_a_wechat_message_is_refused(body):
    with pytest.raises(MalformedBody):
        wechat.read_message(body)


def test_each_outcome_gets_its_words():
    registered = {"_id": "SHXJH-20261205-0001", "rejection": None}
    assert "编号 SHXJH-20261205-0001" in wechat.answer(registered)
    duplicate = {
        "_id": "SHXJH-20261205-0002",
        "rejection": {"reason": "duplicate", "duplicate_of": "SHXJH-20261205-0001"},
    }
    assert "SHXJH-20261205-0001" in wechat.answer(duplicate) and "重复" in wechat.answer(duplicate)
    vague = {"_id": "SHXJH-20261205-0003", "rejection": {"reason": "insufficient_information"}}
    assert "发生了什么" in wechat.answer(vague)


def test_the_reply_goes_back_to_the_sender_from_the_account_as_xml():
    message = wechat.read_message(xml())
    reply = ElementTree.fromstring(wechat.reply(message, "编号 X ]]> 好", NOW))
    assert {child.tag: child.text for child in reply} == {
        "ToUserName": OPENID,
        "FromUserName": "gh_5a1c2e3f4b6d",
        "CreateTime": str(int(NOW.timestamp())),
        "MsgType": "text",
        "Content": "编号 X ]]> 好",
    }


def test_only_text_is_registered():
    registered = []

    def register(complaint):
        registered.append(complaint)
        return {"_id": "SHXJH-20261205-0001", "rejection": None}

    def take(**fields):
        return wechat.take(wechat.read_message(xml(**fields)), "sh-xujiahui", "上海徐家汇店", NOW, register)

    assert "文字" in take(kind="voice", Content=None, MediaId="m1", Format="amr")
    assert "欢迎关注上海徐家汇店" in take(kind="event", Content=None, MsgId=None, Event="subscribe")
    assert take(kind="event", Content=None, MsgId=None, Event="CLICK") is None
    assert registered == []
    assert "SHXJH-20261205-0001" in take()
    assert len(registered) == 1
