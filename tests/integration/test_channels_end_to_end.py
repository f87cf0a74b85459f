"""Issue 19, R1.2 and R7.2 across the whole path: all six services on the real broker and store,
notify sending to the protocol stand-ins (`python -m standins`, its own process) and intake
reading sh-xujiahui's complaint mailbox on a real IMAP server (dovecot). A customer's WeChat
message becomes a complaint and the customer gets its number back through the WeChat API,
which acknowledges it in time for intake and analytics; a customer's mail becomes a complaint
acknowledged by mail, and the customer's answer to that mail goes onto the complaint."""

import pytest

from tests.helpers import wait_for
from tests.integration.test_gateways import standins
from tests.integration.test_mailbox import mail
from tests.integration.test_wechat import OPENID, reply_of, send, text

ADDRESS = "wang.li@example.com"  # the sender of test_mailbox.mail


@pytest.fixture
def outside(tmp_path):
    with standins(tmp_path) as started:
        yield started


@pytest.fixture
def system(services, policy_dir, outside, mailbox_settings):
    """The six on their real clocks, notify's gateways pointed at the stand-ins, intake
    reading the test's mailbox."""
    outside.point_notify_here(policy_dir)
    return services(settings={"intake": mailbox_settings(), "notify": {"POLICY_DIR": str(policy_dir)}})


def complaint(system, number):
    return system.web["intake"].get(f"/complaints/{number}").json()


def on_channel(system, channel):
    return system.web["intake"].get("/complaints", params={"channel": channel}).json()["items"]


def acknowledged(system, number):
    """The complaint once notify's message has acknowledged it."""
    return wait_for(lambda: (c := complaint(system, number))["status"] == "acknowledged" and c)


@pytest.mark.parametrize(
    "words",
    ["你们超市卖的草莓有三分之一是烂的，我要退款", "你們超市賣的草莓有三分之一是爛的，我要退款"],
    ids=["simplified", "traditional"],
)
def test_a_wechat_message_is_a_complaint_acknowledged_through_the_wechat_api_in_time(system, outside, words):
    answered = reply_of(send(system.web["intake"], text(words, msg_id="24523612345670001")))
    [number] = [c["number"] for c in on_channel(system, "wechat")]
    assert f"编号 {number}" in answered["Content"]  # the passive reply, at once

    [sent] = wait_for(lambda: outside.received(OPENID))
    assert sent["channel"] == "wechat"
    assert sent["text"] == f"您的投诉已受理，编号{number}。我们会尽快处理并与您联系。"

    registered = acknowledged(system, number)
    assert (registered["channel"], registered["description"]) == ("wechat", words)
    ack = registered["acknowledgement"]
    assert (ack["acknowledged_by"], ack["method"], ack["within_deadline"]) == ("notify", "wechat_message", True)
    assert ack["message_id"] == f"{number}:acknowledgement:1"
    assert len(outside.received(OPENID)) == 1

    def acknowledgement_clock_stopped():
        clocks = system.web["analytics"].get(f"/clocks/{number}").json()["clocks"]
        return [c for c in clocks if c["clock"] == "acknowledgement" and c.get("outcome")]

    [clock] = wait_for(acknowledgement_clock_stopped)
    assert clock["outcome"] == "met"


def test_a_mail_is_a_complaint_acknowledged_by_smtp_and_the_answer_to_it_goes_onto_it(system, outside, dovecot):
    complaint_mail = mail("<CAF7k2vQ-strawberries@example.com>", "投诉：草莓发霉")
    complaint_mail.set_content("今天上午在B1佳农水果买的草莓，有三分之一发霉了，要求全额退款。")
    dovecot.append(complaint_mail.as_bytes())
    [registered] = wait_for(lambda: on_channel(system, "email"))
    number = registered["number"]
    assert registered["channel_ref"] == "<CAF7k2vQ-strawberries@example.com>"
    assert (
        registered["description"] == "投诉：草莓发霉\n\n今天上午在B1佳农水果买的草莓，有三分之一发霉了，要求全额退款。"
    )

    [sent] = wait_for(lambda: outside.received(ADDRESS))
    assert sent["channel"] == "email" and sent["subject"] == f"您的投诉已受理（{number}）"
    assert f"编号 {number}" in sent["text"]
    assert sent["message_id"] == f"<{number}.acknowledgement.1@notify.mallcare>"
    ack = acknowledged(system, number)["acknowledgement"]
    assert (ack["acknowledged_by"], ack["method"], ack["within_deadline"]) == ("notify", "email", True)

    # The customer answers our mail: their client names it in In-Reply-To and References.
    reply_mail = mail(
        "<CAF7k2vQ-reply@example.com>",
        f"Re: 您的投诉已受理（{number}）",
        In_Reply_To=sent["message_id"],
        References=f"<CAF7k2vQ-strawberries@example.com> {sent['message_id']}",
    )
    reply_mail.set_content("请问退款什么时候到账？\n\n在 2026年12月5日 10:00，商场客服中心 写道：\n> 尊敬的顾客：\n")
    dovecot.append(reply_mail.as_bytes())
    [reply] = wait_for(lambda: complaint(system, number).get("replies"))
    assert (reply["replied_to"], reply["from_customer"]) == ("acknowledgement.1", True)
    assert reply["text"] == f"Re: 您的投诉已受理（{number}）\n\n请问退款什么时候到账？"
    [entry] = wait_for(
        lambda: [
            e
            for e in system.web["resolution"].get(f"/cases/{number}").json()["timeline"]
            if e["action"] == "customer_replied"
        ]
    )
    assert (entry["detail"]["replied_to"], entry["detail"]["from_customer"]) == ("acknowledgement.1", True)
    assert "请问退款什么时候到账？" in entry["detail"]["text"]
    assert [c["number"] for c in on_channel(system, "email")] == [number]  # no complaint of its own
    assert len(outside.received(ADDRESS)) == 1
