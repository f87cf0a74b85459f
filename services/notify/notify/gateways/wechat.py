"""A WeChat official account's customer-service text message (/cgi-bin/message/custom/send),
with the account's access token (/cgi-bin/token) kept until shortly before it expires.

WeChat answers HTTP 200 with an `errcode` (its global return codes): 0 is sent; 45015 (the
customer has not written to the account within the last 48 hours), 43004 (not a follower),
40003 (not an OpenID of this account) and 45002 (text too long) will not change by retrying;
40001, 40014 and 42001 say the token is no longer good, so a new one is fetched once and the
message sent again; -1 (busy) and the rest are for later."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import Outgoing, Receipt, Refused, Temporary, http

TOKEN_REFUSED = {40001, 40014, 42001}
CUSTOMER_OUT_OF_REACH = {45015, 43004, 40003, 45002}
# What /cgi-bin/token answers for a wrong AppSecret, AppID or an address not on the account's
# IP whitelist: an operator must fix the settings first.
CREDENTIALS_REFUSED = {40001, 40013, 40125, 40164}


@dataclass(kw_only=True)
class WeChat:
    appid: str
    secret: str = field(repr=False)
    api: str = "https://api.weixin.qq.com"
    token_margin: float = 300
    timeout: float = 10
    name: str = field(default="wechat", init=False)
    # One token for every worker sending through this gateway: fetched by one at a time,
    # as each fetch replaces the account's previous token. The lock is made with the gateway,
    # so it is eventlet's green one once nameko has patched threading.
    _lock: threading.Lock = field(default_factory=lambda: threading.Lock(), init=False, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _renew_at: float = field(default=0.0, init=False, repr=False)

    def access_token(self, refused: str | None = None) -> str:
        """The kept token; a new one when there is none, it is about to expire, or WeChat
        refused it (`refused`) and no other worker has fetched a new one since."""
        with self._lock:
            if self._token is None or self._token == refused or time.monotonic() >= self._renew_at:
                answer = self._call(
                    "GET",
                    "/cgi-bin/token",
                    params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
                )
                if "access_token" not in answer:
                    error = Refused if answer.get("errcode") in CREDENTIALS_REFUSED else Temporary
                    raise error(f"WeChat gave no access token: {answer.get('errcode')} {answer.get('errmsg')}")
                self._token = str(answer["access_token"])
                self._renew_at = time.monotonic() + float(answer["expires_in"]) - self.token_margin
            return self._token

    def send(self, message: Outgoing) -> Receipt:
        token = self.access_token()
        answer = self._send_text(token, message)
        if answer.get("errcode") in TOKEN_REFUSED:
            answer = self._send_text(self.access_token(refused=token), message)
        errcode = answer.get("errcode")
        if errcode == 0:
            return Receipt(self.name, str(answer.get("msgid", message.message_id)))
        error = Refused if errcode in CUSTOMER_OUT_OF_REACH else Temporary
        raise error(f"WeChat {errcode} {answer.get('errmsg')}")

    def _send_text(self, token: str, message: Outgoing) -> dict[str, Any]:
        # Characters as they are: WeChat refuses \uXXXX escapes in a body (40033).
        body = json.dumps(
            {"touser": message.to, "msgtype": "text", "text": {"content": message.text}}, ensure_ascii=False
        )
        return self._call(
            "POST",
            "/cgi-bin/message/custom/send",
            params={"access_token": token},
            data=body.encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        return http.answer(http.request(method, f"{self.api.rstrip('/')}{path}", timeout=self.timeout, **options))
