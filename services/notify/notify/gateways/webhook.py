"""The chain's own app, told by a signed webhook: POST {message_id, complaint_no, to, text}
as JSON with `X-Mallcare-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
so the app can check that the body is ours and recent."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

from . import Outgoing, Receipt, Refused, Temporary, http


def signature_header(secret: str, body: bytes, at: int) -> str:
    digest = hmac.new(secret.encode(), str(at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


@dataclass(kw_only=True)
class Webhook:
    url: str
    secret: str = field(repr=False)
    timeout: float = 10
    name: str = field(default="webhook", init=False)

    def send(self, message: Outgoing) -> Receipt:
        body = json.dumps(
            {
                "message_id": message.message_id,
                "complaint_no": message.complaint_no,
                "to": message.to,
                "text": message.text,
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Mallcare-Signature": signature_header(self.secret, body, int(time.time())),
        }
        status = http.request("POST", self.url, data=body, headers=headers, timeout=self.timeout).status_code
        if 200 <= status < 300:
            return Receipt(self.name, message.message_id)
        error = Refused if 400 <= status < 500 and not http.transient(status) else Temporary
        raise error(f"{self.url} answered HTTP {status}")
