"""The WeChat official account's message callback (R7.2): what a customer writes to a mall's
account becomes a complaint on the `wechat` channel, the customer known by their OpenID.

WeChat's server calls the URL set as the account's server configuration (服务器配置),
`/channels/wechat/<mall id>`, in plain-text mode (明文模式):
- GET with `signature`, `timestamp`, `nonce` and `echostr` when the URL is set: the
  answer is `echostr` if the signature is right;
- POST for each message, with the same three query parameters and the message as XML.
The signature is the SHA-1 of the account's token, `timestamp` and `nonce`, sorted and
joined: only WeChat and the mall know the token. WeChat waits 5 seconds for the answer
and tries again, three times in all, with the same MsgId: the MsgId (with the account)
is the complaint's channel_ref, so a retry finds the complaint the first one made.

The answer is a passive reply (被动回复): a text the customer sees at once, here the
complaint's number. Only text becomes a complaint: a picture, a voice message or a
location alone says nothing staff could act on, and the customer is asked, at once, to
write what happened instead of waiting for a complaint that is refused later. A new
follower is welcomed and told how to complain; other events get WeChat's "success"
(nothing to show).
"""

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from mallcare_common.auth import Forbidden
from mallcare_common.inputs import as_text
from mallcare_common.web import MalformedBody

MAX_BODY_BYTES = 16 * 1024  # a text message is at most 2,048 characters
MAX_DESCRIPTION = 5000  # intake's limit for a description
OPENID = re.compile(r"[A-Za-z0-9_-]{6,64}")
SUCCESS = "success"  # WeChat's "received, nothing to show"

REGISTERED = "您好，您的投诉已受理，编号 {number}。我们会尽快核实处理，并告诉您结果；查询进度时请提供这个编号。"
DUPLICATE = "您好，这条投诉与您此前提交的 {duplicate_of} 相同，我们正在处理，无需重复提交。"
TOO_LITTLE = (
    "您好，留言已收到（编号 {number}），但内容还不足以受理投诉。请用文字告诉我们：发生了什么、"
    "在哪家店铺或哪个区域、大约什么时间。"
)
OTHER = "您好，留言已收到（编号 {number}），工作人员会尽快与您联系。"
TEXT_ONLY = "您好，目前我们只能受理文字投诉。请用文字告诉我们：发生了什么、在哪家店铺或哪个区域、大约什么时间。"
WELCOME = (
    "欢迎关注{mall}！如需投诉或反映问题，请直接在这里用文字告诉我们发生了什么、在哪家店铺、大约什么时间，"
    "我们会回复您受理编号。"
)


def signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode("utf-8")).hexdigest()


FRESH_SECONDS = 300  # a signed query older (or newer) than this is refused: it may be a replay


def check_signature(token: str, args: Any, now: datetime) -> None:
    """Forbidden unless the query's `signature` is WeChat's for `token` (a query's MultiDict or
    dict) and its `timestamp` is within FRESH_SECONDS of `now`: the signature does not cover
    the body, so a signed query seen once (a proxy's log) must not serve again later."""
    expected = signature(token, args.get("timestamp", ""), args.get("nonce", ""))
    if not hmac.compare_digest(expected.encode(), args.get("signature", "").encode("utf-8")):
        raise Forbidden("not signed with the mall's WeChat token")
    try:
        age = abs(now.timestamp() - int(args.get("timestamp", "")))
    except ValueError:
        raise Forbidden("the signed timestamp is not a number") from None
    if age > FRESH_SECONDS:
        raise Forbidden(f"the signed timestamp is {int(age)} s away from now (at most {FRESH_SECONDS})")


def read_message(body: bytes) -> dict[str, str]:
    """The message's fields by tag. A DTD or an entity is refused before anything is
    expanded (defusedxml), and so is anything but WeChat's flat <xml> message."""
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise MalformedBody(f"not a WeChat message: {exc}") from None
    message = {child.tag: as_text(child.text or "") for child in root}
    missing = [tag for tag in ("ToUserName", "FromUserName", "CreateTime", "MsgType") if not message.get(tag)]
    if root.tag != "xml" or missing:
        raise MalformedBody(f"not a WeChat message: no {', '.join(missing) or '<xml>'}")
    if not OPENID.fullmatch(message["FromUserName"]) or not message["CreateTime"].isdigit():
        raise MalformedBody("not a WeChat message: FromUserName is no OpenID or CreateTime no time")
    if message["MsgType"] == "text" and not message.get("MsgId", "").isdigit():
        raise MalformedBody("not a WeChat message: a text message without its MsgId")
    return message


def complaint(message: dict[str, str], mall_id: str, now: datetime) -> dict[str, Any]:
    """The complaint a text message registers (intake's ComplaintIn)."""
    sent = datetime.fromtimestamp(int(message["CreateTime"]), timezone.utc)
    return {
        "mall_id": mall_id,
        "channel": "wechat",
        "channel_ref": f"{message['ToUserName']}:{message['MsgId']}",  # MsgIds are the account's own
        "received_at": min(sent, now).isoformat(),
        "customer": {"wechat_openid": message["FromUserName"]},
        "description": message.get("Content", "").strip()[:MAX_DESCRIPTION] or "-",
    }


def answer(doc: dict[str, Any]) -> str:
    """What the customer is told about the complaint their message registered (or found)."""
    rejection = doc.get("rejection") or {}
    if rejection.get("reason") == "duplicate":
        return DUPLICATE.format(duplicate_of=rejection["duplicate_of"])
    if rejection.get("reason") == "insufficient_information":
        return TOO_LITTLE.format(number=doc["_id"])
    return (OTHER if rejection else REGISTERED).format(number=doc["_id"])


def take(
    message: dict[str, str],
    mall_id: str,
    mall_name: str,
    now: datetime,
    register: Callable[[dict[str, Any]], dict[str, Any]],
) -> str | None:
    """The text to answer `message` with (None: nothing to show); a text message is
    registered with `register(complaint)` first, which gives the stored complaint."""
    if message["MsgType"] == "text":
        return answer(register(complaint(message, mall_id, now)))
    if message["MsgType"] == "event":
        return WELCOME.format(mall=mall_name) if message.get("Event") == "subscribe" else None
    return TEXT_ONLY


def reply(message: dict[str, str], text: str, now: datetime) -> str:
    """The passive reply's XML: `text` to the sender, from the account written to."""
    return (
        "<xml>"
        f"<ToUserName>{_cdata(message['FromUserName'])}</ToUserName>"
        f"<FromUserName>{_cdata(message['ToUserName'])}</FromUserName>"
        f"<CreateTime>{int(now.timestamp())}</CreateTime>"
        f"<MsgType>{_cdata('text')}</MsgType>"
        f"<Content>{_cdata(text)}</Content>"
        "</xml>"
    )


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
