"""R7.2, the mailbox's side without a server: what a mail says, which complaint a reply
answers, and what a new mail or a reply becomes."""

from datetime import datetime, timezone
from email.message import EmailMessage

from intake import mailbox

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)


def raw(subject="草莓发霉", body="三分之一发霉了", sender="王女士 <Wang.Li@Example.com>", **headers):
    message = EmailMessage()
    message["From"] = sender
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def test_a_new_mail_is_a_complaint_from_its_sender():
    mail = mailbox.read_mail(raw(Message_ID="<a1@example.com>"))
    assert mailbox.answered(mail) is None
    assert mailbox.complaint(mail, "sh-xujiahui", NOW) == {
        "mall_id": "sh-xujiahui",
        "channel": "email",
        "channel_ref": "<a1@example.com>",
        "received_at": NOW.isoformat(),
        "customer": {"email": "wang.li@example.com", "name": "王女士"},
        "description": "草莓发霉\n\n三分之一发霉了",
    }


def test_a_sender_that_is_no_address_leaves_the_complaint_without_a_contact():
    mail = mailbox.read_mail(raw(sender="undisclosed-recipients:;", Message_ID="<a2@example.com>"))
    assert mailbox.complaint(mail, "sh-xujiahui", NOW)["customer"] == {}


def test_a_mail_without_a_usable_message_id_is_known_by_its_digest():
    plain = raw()
    assert mailbox.read_mail(plain).ref == mailbox.read_mail(plain).ref
    assert mailbox.read_mail(plain).ref.startswith("sha256:")
    long_id = "<" + "x" * 200 + "@example.com>"
    assert mailbox.read_mail(raw(Message_ID=long_id)).ref.startswith("sha256:")


def test_html_is_read_as_the_text_a_reader_sees():
    markup = (
        "<html><head><title>t</title><style>p{color:red}</style></head><body><h1>投诉</h1>"
        "<div>电梯&nbsp;门<b>夹手</b></div><script>alert('x')</script><ul><li>一</li><li>二</li></ul></body></html>"
    )
    assert mailbox.html_text(markup) == "投诉\n\n电梯 门夹手\n\n一\n\n二"


def test_a_reply_names_its_complaint_by_our_message_id_or_its_subject_tag():
    ours = "<SHXJH-20261205-0010.answer.2@notify.mallcare>"
    reply = mailbox.read_mail(raw(subject="Re: 您的投诉", In_Reply_To=ours, References=f"<other@x> {ours}"))
    assert mailbox.answered(reply) == ("SHXJH-20261205-0010", "answer.2")
    tagged = mailbox.read_mail(raw(subject="补充 [SHXJH-20261205-0011] 照片", References="<unrelated@example.com>"))
    assert mailbox.answered(tagged) == ("SHXJH-20261205-0011", None)
    copy = mailbox.read_mail(raw(Message_ID=ours))
    assert copy.ours  # our own mail, landed in the mailbox: no complaint


def test_a_reply_keeps_its_own_words_not_the_quote_of_ours():
    reply = mailbox.read_mail(
        raw(
            subject="Re: 投诉",
            body="退款还没到账。\n> 您好\n\n------------------ 原始邮件 "
            "------------------\n发件人: 商场客服\n您的投诉已受理",
        )
    )
    assert mailbox.reply_text(reply) == "Re: 投诉\n\n退款还没到账。"


def test_a_reply_is_added_once_with_its_event_unless_the_complaint_was_rejected():
    mail = mailbox.read_mail(raw(subject="Re: 投诉", body="退款还没到账，王女士", Message_ID="<r@example.com>"))
    files = mailbox.files_kept("SHXJH-20261205-0010", mail, NOW)
    decide = mailbox.reply_change(mail, "ack.1", files, NOW)
    complaint = {
        "_id": "SHXJH-20261205-0010",
        "mall_id": "sh-xujiahui",
        "status": "registered",
        "customer": {"name": "王女士", "email": "wang.li@example.com"},
    }
    update, [event] = decide(complaint, NOW)
    reply = update["$push"]["replies"]
    assert (reply["from_customer"], reply["replied_to"], reply["text"]) == (
        True,
        "ack.1",
        "Re: 投诉\n\n退款还没到账，王女士",
    )
    assert event["event_type"] == "customer_replied" and event["payload"]["text"] == "Re: 投诉\n\n退款还没到账，[name]"
    assert decide({**complaint, "replies": [reply]}, NOW) is None  # the mail read again
    assert decide({**complaint, "status": "rejected"}, NOW)[1] == []  # no case to tell


def test_a_big_file_is_listed_not_kept_and_a_huge_mail_is_read_from_its_header():
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-ID"] = "a@example.com", "照片", "<f@example.com>"
    message.set_content("见附件")
    message.add_attachment(b"x" * (mailbox.MAX_FILE_BYTES + 1), maintype="image", subtype="png", filename="大.png")
    message.add_attachment(b"small", maintype="text", subtype="plain", filename="小.txt")
    big, small = mailbox.files_kept("N-1", mailbox.read_mail(message.as_bytes()), NOW)
    assert (big["stored"], "data" in big, small["stored"], small["data"]) == (False, False, True, b"small")
    assert big["_id"] != small["_id"] and big["_id"].startswith("N-1.")
    header = message.as_bytes().split(b"\n\n")[0] + b"\n\n"
    huge = mailbox.read_mail(header, too_large=40_000_000)
    assert huge.files == [] and "40000000" in huge.text
