"""R7.2: the mall's complaint mailbox, read over IMAP by the running intake from a real
server (dovecot, tests/integration/dovecot.py). Mails as Chinese customers' clients send
them (UTF-8 and GB2312, quoted-printable and base64, HTML only, with a file) each become
one complaint, however often they are read; a reply to one of our mails goes onto its
complaint and the case's timeline, not into a new complaint."""

import base64
from email.message import EmailMessage
from email.utils import formatdate

import pytest

from mallcare_cli.examples import desk_complaint
from tests.helpers import staff, wait_for
from tests.integration.dovecot import Dovecot

MALL = "sh-xujiahui"
RECEIPT = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"  # a small JPEG-like file


@pytest.fixture
def start_intake(services, mailbox_settings):
    def start(**kwargs):
        system = services("intake", settings={"intake": mailbox_settings(**kwargs)})
        client = system.web["intake"]
        client.db = system.db("intake")
        return client

    return start


def mail(message_id, subject, sender="王女士 <wang.li@example.com>", **headers):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "tousu-sh@example.cn"
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def utf8_quoted_printable():
    message = mail("<m1-utf8@example.com>", "草莓发霉投诉")
    message.set_content(
        "今天上午在B1佳农水果买的草莓，三分之一发霉了。\n要求退款。", charset="utf-8", cte="quoted-printable"
    )
    raw = message.as_bytes()
    assert b"quoted-printable" in raw and b"=?utf-8?" in raw
    return raw


def gb2312_base64():
    def word(text):
        return "=?gb2312?B?" + base64.b64encode(text.encode("gb2312")).decode() + "?="

    body = base64.encodebytes("停车场收费机扣了我两次钱，请退还多扣的一次。".encode("gb2312"))
    return (
        f"From: {word('张先生')} <zhang@example.net>\r\nTo: tousu-sh@example.cn\r\n"
        f"Subject: {word('停车收费投诉')}\r\nDate: {formatdate()}\r\nMessage-ID: <m2-gb2312@example.net>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="gb2312"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + body


def html_only():
    message = mail("<m3-html@example.org>", "电梯安全", sender="li.na@example.org")
    message.set_content(
        "<html><head><style>p {color: red}</style></head><body><p>三楼电梯门夹到了孩子的手</p>"
        "<p>请尽快检修&amp;回复</p><script>alert('x')</script></body></html>",
        subtype="html",
    )
    return message.as_bytes()


def with_a_file():
    message = mail("<m4-file@example.com>", "收银多收钱", sender="zhao@example.com")
    message.set_content("收银员多收了我二十元，小票见附件。")
    message.add_attachment(RECEIPT, maintype="image", subtype="jpeg", filename="小票.jpg")
    return message.as_bytes()


def email_complaints(intake):
    return {
        c["channel_ref"]: c
        for c in intake.get("/complaints", params={"channel": "email", "per_page": 50}).json()["items"]
    }


def _all_four_with_the_file(intake):
    found = email_complaints(intake)
    return len(found) == 4 and found["<m4-file@example.com>"].get("attachments") and found


def test_each_mail_is_one_complaint_however_often_it_is_read(dovecot, start_intake):
    for raw in (utf8_quoted_printable(), gb2312_base64(), html_only(), with_a_file()):
        dovecot.append(raw)
    intake = start_intake()
    # the four registered, and the file kept (stored just after its complaint: a list between the two lacks it)
    found = wait_for(lambda: _all_four_with_the_file(intake))

    strawberries = found["<m1-utf8@example.com>"]
    assert strawberries["status"] == "registered" and strawberries["mall_id"] == MALL
    assert strawberries["description"] == "草莓发霉投诉\n\n今天上午在B1佳农水果买的草莓，三分之一发霉了。\n要求退款。"
    assert strawberries["customer"] == {
        "name_masked": "王**",
        "contact_masked": "w***@example.com",
        "reachable_by": ["email"],
        "member_tier": None,
    }
    parking = found["<m2-gb2312@example.net>"]
    assert parking["description"] == "停车收费投诉\n\n停车场收费机扣了我两次钱，请退还多扣的一次。"
    assert parking["customer"]["name_masked"] == "张**"
    lift = found["<m3-html@example.org>"]
    assert lift["description"] == "电梯安全\n\n三楼电梯门夹到了孩子的手\n\n请尽快检修&回复"  # a paragraph a line
    receipt = found["<m4-file@example.com>"]
    assert receipt["description"] == "收银多收钱\n\n收银员多收了我二十元，小票见附件。"
    [file] = receipt["attachments"]
    assert (file["filename"], file["content_type"], file["size"], file["stored"]) == (
        "小票.jpg",
        "image/jpeg",
        len(RECEIPT),
        True,
    )
    url = f"/complaints/{receipt['number']}/attachments/{file['id']}"
    assert intake.get(url, headers=staff("D3001")).status_code == 422  # no purpose, no file
    got = intake.get(url, params={"purpose": "check the receipt"}, headers=staff("D3001"))
    assert got.status_code == 200 and got.content == RECEIPT
    assert got.headers["Content-Type"] == "image/jpeg"
    assert [
        entry["purpose"]
        for entry in intake.get("/audit", headers=staff("L9001"), params={"mall_id": MALL}).json()["items"]
    ] == ["check the receipt"]

    assert dovecot.unseen() == [] and dovecot.count() == 4  # marked seen, none deleted
    dovecot.mark_all_unseen()  # as if read again after a crash
    wait_for(lambda: dovecot.unseen() == [])
    assert len(email_complaints(intake)) == 4
    assert intake.db.attachments.count_documents({}) == 1


@pytest.mark.parametrize("idle", [True, False], ids=["idle", "polled"])
def test_a_mail_that_comes_later_is_taken_on_a_server_with_or_without_idle(idle, start_intake):
    server = Dovecot(idle=idle)
    try:
        # In IDLE a round waits 10 s for news after it took what was there: a second mail
        # taken well within that came by IDLE, not by the next round.
        intake = start_intake(server=server, wait_seconds=10 if idle else 1)
        server.append(utf8_quoted_printable())
        wait_for(lambda: email_complaints(intake))
        server.append(gb2312_base64())
        wait_for(lambda: len(email_complaints(intake)) == 2, timeout=5)
        assert server.unseen() == []
    finally:
        server.stop()


def test_a_reply_to_our_mail_goes_on_its_complaint_and_its_case_timeline(dovecot, services, mailbox_settings):
    system = services(settings={"intake": mailbox_settings()})
    web = system.web
    dovecot.append(utf8_quoted_printable())
    [complaint] = wait_for(lambda: list(email_complaints(web["intake"]).values()))
    number = complaint["number"]
    wait_for(lambda: web["resolution"].get(f"/cases/{number}").ok)

    reply = mail(
        "<r1@example.com>",
        f"Re: 您的投诉 {number} 已受理",
        In_Reply_To=f"<{number}.ack.1@notify.mallcare>",
        References=f"<{number}.ack.1@notify.mallcare>",
    )
    reply.set_content("退款还没有到账，请尽快处理。\n\n在 2026年12月5日 10:00，商场客服 写道：\n> 您的投诉已受理\n")
    dovecot.append(reply.as_bytes())
    tagged = mail("<r2@example.com>", f"补充 [{number}] 小票照片", sender="someone.else@example.net")
    tagged.set_content("这是我家人的投诉，补充说明：购买时间是上午十点。")
    dovecot.append(tagged.as_bytes())

    def both(found):
        return found if len(found) == 2 else None

    replies = wait_for(lambda: both(web["intake"].get(f"/complaints/{number}").json().get("replies") or []))
    assert [(r["replied_to"], r["from_customer"], r["sender"]) for r in replies] == [
        ("ack.1", True, "w***@example.com"),
        (None, False, "s***@example.net"),
    ]
    assert replies[0]["text"] == f"Re: 您的投诉 {number} 已受理\n\n退款还没有到账，请尽快处理。"
    assert len(email_complaints(web["intake"])) == 1  # no complaint of their own

    on_timeline = wait_for(
        lambda: both(
            [
                entry
                for entry in web["resolution"].get(f"/cases/{number}").json()["timeline"]
                if entry["action"] == "customer_replied"
            ]
        )
    )
    assert [(e["by"], e["detail"]["replied_to"], e["detail"]["from_customer"]) for e in on_timeline] == [
        ("intake", "ack.1", True),
        ("intake", None, False),
    ]
    assert "退款还没有到账" in on_timeline[0]["detail"]["text"]

    # another mall's number names nothing in this mailbox (numbers are easy to guess): a
    # stranger's mail naming it is a complaint of this mall's own, and the other case is untouched
    other = web["intake"].post("/complaints", json=desk_complaint(mall_id="bj-chaoyang", channel_ref="bj-1"))
    other = other.json()["number"]
    stranger = mail("<r3@example.com>", f"Re: [{other}] 我也有话说", sender="stranger@example.org")
    stranger.set_content("把北京那家店的投诉写进上海的邮箱里。")
    dovecot.append(stranger.as_bytes())
    mine = wait_for(lambda: email_complaints(web["intake"]).get("<r3@example.com>"))
    assert mine["mall_id"] == MALL and mine["number"] != other
    assert not web["intake"].get(f"/complaints/{other}").json().get("replies")
