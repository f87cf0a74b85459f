"""The HTTP stand-ins (werkzeug): Alibaba Cloud SMS at /aliyun/, the WeChat official-account API
under /wechat, the app's webhook receiver at /webhook, and the control and listing routes."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import math
import re
import secrets
import threading
import time
import uuid
from base64 import b64encode
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .state import State

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

PHONE = re.compile(r"1\d{10}|00\d{6,20}")  # mainland mobile, or 00 + country code + number
OPENID = re.compile(r"[A-Za-z0-9_-]{28}")
CLOCK_SKEW = timedelta(minutes=15)  # how far Aliyun lets a request's Timestamp be from its clock
WEBHOOK_TOLERANCE = 300  # seconds a webhook signature stays good


def reply(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, content_type="application/json; charset=utf-8")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    """Aliyun's RPC string to sign, as its documentation builds it."""
    canonical = urlencode(sorted(params.items()), quote_via=quote, safe="-_.~")
    return "&".join((method, quote("/", safe=""), quote(canonical, safe="-_.~")))


@dataclass
class Credentials:
    aliyun_key_id: str
    aliyun_key_secret: str
    wechat_appid: str
    wechat_secret: str
    wechat_token_seconds: int
    webhook_secret: str


@dataclass
class WeChatTokens:
    """The access tokens given, each with when it expires (time.monotonic)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    expiry: dict[str, float] = field(default_factory=dict)

    def issue(self, seconds: int) -> str:
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.expiry[token] = time.monotonic() + seconds
        return token

    def expire_all(self) -> None:
        with self.lock:
            self.expiry = dict.fromkeys(self.expiry, 0.0)

    def check(self, token: str) -> dict[str, Any] | None:
        """WeChat's error for `token`, or None when it is good."""
        with self.lock:
            expires = self.expiry.get(token)
        if expires is None:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if time.monotonic() >= expires:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None


class StandIns:
    def __init__(self, state: State, credentials: Credentials) -> None:
        self.state = state
        self.credentials = credentials
        self.tokens = WeChatTokens()
        self.nonces: set[str] = set()
        self.nonces_lock = threading.Lock()
        self.routes = Map(
            [
                Rule("/", endpoint="page", methods=["GET"]),
                Rule("/_sent", endpoint="sent", methods=["GET"]),
                Rule("/_control", endpoint="control", methods=["GET", "POST"]),
                Rule("/aliyun/", endpoint="aliyun_sms", methods=["GET", "POST"]),
                Rule("/wechat/cgi-bin/token", endpoint="wechat_token", methods=["GET"]),
                Rule("/wechat/cgi-bin/message/custom/send", endpoint="wechat_send", methods=["POST"]),
                Rule("/webhook", endpoint="webhook", methods=["POST"]),
            ]
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.answer(Request(environ))(environ, start_response)

    def answer(self, request: Request) -> Response:
        try:
            endpoint, _ = self.routes.bind_to_environ(request.environ).match()
        except HTTPException as error:
            return error.get_response()
        target = {"aliyun_sms": "sms", "wechat_token": "wechat", "wechat_send": "wechat", "webhook": "webhook"}.get(
            endpoint
        )
        if target:
            mode = self.state.mode(target)
            if mode == "slow":
                time.sleep(self.state.slow_seconds)
            if mode == "down":
                return Response("service unavailable", 503)
        response: Response = getattr(self, endpoint)(request)
        return response

    # -- control and listing --------------------------------------------------------------

    def control(self, request: Request) -> Response:
        if request.method == "POST":
            order = request.get_json(force=True, silent=True) or {}
            if order.get("target") == "wechat" and order.get("expire_tokens"):
                self.tokens.expire_all()
            else:
                try:
                    self.state.set_mode(order.get("target", ""), order.get("mode", ""), order.get("code"))
                except ValueError as error:
                    return reply({"error": str(error)}, 400)
        with self.tokens.lock:
            issued = len(self.tokens.expiry)
        return reply({"modes": self.state.modes(), "wechat_tokens_issued": issued})

    def sent(self, request: Request) -> Response:
        return reply(self.state.sent())

    def page(self, request: Request) -> Response:
        rows = "\n".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(value or '')}</td>"
                for value in (
                    entry["at"][:19].replace("T", " "),
                    entry["channel"],
                    entry["to"],
                    entry["subject"],
                    entry["text"],
                )
            )
            + "</tr>"
            for entry in reversed(self.state.sent())
        )
        page = f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>What was sent</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border-bottom:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}} td:last-child{{white-space:pre-wrap}}</style></head>
<body><h1>What was sent</h1><p>Every message the stand-ins received, newest first.</p>
<table><tr><th>at (UTC)</th><th>channel</th><th>to</th><th>subject</th><th>text</th></tr>
{rows}
</table></body></html>"""
        return Response(page, content_type="text/html; charset=utf-8")

    # -- Alibaba Cloud SMS: SendSms, 2017-05-25 --------------------------------------------

    def aliyun_sms(self, request: Request) -> Response:
        params = {key: value for key, value in request.values.items()}
        given = params.pop("Signature", "")
        request_id = str(uuid.uuid4()).upper()

        def error(status: int, code: str, message: str) -> Response:
            return reply(
                {"RequestId": request_id, "HostId": "dysmsapi.aliyuncs.com", "Code": code, "Message": message}, status
            )

        if params.get("AccessKeyId") != self.credentials.aliyun_key_id:
            return error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        signed = string_to_sign(request.method, params)
        key = f"{self.credentials.aliyun_key_secret}&".encode()
        if not hmac.compare_digest(given, b64encode(hmac.new(key, signed.encode(), hashlib.sha1).digest()).decode()):
            return error(
                400,
                "SignatureDoesNotMatch",
                f"Specified signature is not matched with our calculation. server string to sign is:{signed}",
            )
        try:
            stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return error(400, "MissingTimestamp", "Timestamp is mandatory for this action, in yyyy-MM-ddTHH:mm:ssZ.")
        if abs(datetime.now(UTC) - stamp) > CLOCK_SKEW:
            return error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        with self.nonces_lock:
            if params.get("SignatureNonce", "") in self.nonces:
                return error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self.nonces.add(params.get("SignatureNonce", ""))
        if params.get("Action") != "SendSms" or params.get("Version") != "2017-05-25":
            return error(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        ok = {"RequestId": request_id, "Code": "OK", "Message": "OK"}
        if self.state.mode("sms") == "refuse":
            code = self.state.refusal("sms", "isv.MOBILE_NUMBER_ILLEGAL")
            return reply({**ok, "Code": code, "Message": f"stand-in refusing: {code}"})
        if not all(PHONE.fullmatch(number) for number in params.get("PhoneNumbers", "").split(",")):
            return reply({**ok, "Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"})
        try:
            variables = json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return reply({**ok, "Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法，只接受字符串值"})
        text = "".join(str(value) for value in variables.values())
        shown = f"【{params.get('SignName', '')}】{text}"
        biz_id = f"{secrets.randbelow(10**15):015d}^{secrets.randbelow(10**10):010d}"
        self.state.record(
            "sms",
            params.get("PhoneNumbers", ""),
            text,
            message_id=params.get("OutId"),
            provider_id=biz_id,
            template_code=params.get("TemplateCode"),
            shown=shown,
            segments=1 if len(shown) <= 70 else math.ceil(len(shown) / 67),
        )
        return reply({**ok, "BizId": biz_id})

    # -- WeChat official account ----------------------------------------------------------

    def wechat_token(self, request: Request) -> Response:
        if request.args.get("grant_type") != "client_credential":
            return reply({"errcode": 40002, "errmsg": "invalid grant_type"})
        if request.args.get("appid") != self.credentials.wechat_appid:
            return reply({"errcode": 40013, "errmsg": "invalid appid"})
        if request.args.get("secret") != self.credentials.wechat_secret:
            return reply({"errcode": 40125, "errmsg": "invalid appsecret"})
        seconds = self.credentials.wechat_token_seconds
        return reply({"access_token": self.tokens.issue(seconds), "expires_in": seconds})

    def wechat_send(self, request: Request) -> Response:
        refused = self.tokens.check(request.args.get("access_token", ""))
        if refused:
            return reply(refused)
        body = request.get_data(as_text=True)
        if "\\u" in body:
            return reply(
                {
                    "errcode": 40033,
                    "errmsg": "invalid charset. please check your request, if include \\uxxxx will create fail!",
                }
            )
        try:
            message = json.loads(body)
            openid, text = message["touser"], message["text"]["content"]
        except (ValueError, KeyError, TypeError):
            return reply({"errcode": 44002, "errmsg": "empty post data"})
        if message.get("msgtype") != "text":
            return reply({"errcode": 40008, "errmsg": "invalid message type"})
        if not OPENID.fullmatch(openid):
            return reply({"errcode": 40003, "errmsg": "invalid openid"})
        if self.state.mode("wechat") == "refuse":
            code = self.state.refusal("wechat", 45015)
            return reply({"errcode": code, "errmsg": "response out of time limit or subscription is canceled"})
        self.state.record("wechat", openid, text)
        return reply({"errcode": 0, "errmsg": "ok"})

    # -- the chain's app ------------------------------------------------------------------

    def webhook(self, request: Request) -> Response:
        body = request.get_data()
        fields = dict(
            part.split("=", 1) for part in request.headers.get("X-Mallcare-Signature", "").split(",") if "=" in part
        )
        try:
            at = int(fields.get("t", ""))
        except ValueError:
            return reply({"error": "no signature"}, 401)
        expected = hmac.new(self.credentials.webhook_secret.encode(), f"{at}.".encode() + body, hashlib.sha256)
        if not hmac.compare_digest(fields.get("v1", ""), expected.hexdigest()):
            return reply({"error": "bad signature"}, 401)
        if abs(time.time() - at) > WEBHOOK_TOLERANCE:
            return reply({"error": "signature too old"}, 401)
        if self.state.mode("webhook") == "refuse":
            return reply({"error": "no such user in the app"}, self.state.refusal("webhook", 410))
        try:
            message = json.loads(body)
            to, text = message["to"], message["text"]
        except (ValueError, KeyError, TypeError):
            return reply({"error": "a JSON object with to and text"}, 400)
        self.state.record(
            "app", to, text, message_id=message.get("message_id"), complaint_no=message.get("complaint_no")
        )
        return reply({"received": message.get("message_id")})
