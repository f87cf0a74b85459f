"""SMS through Alibaba Cloud's SendSms (API version 2017-05-25), signed the RPC way: HMAC-SHA1
with the AccessKey secret over the sorted, percent-encoded parameters
(https://help.aliyun.com/document_detail/101343.html).

Aliyun sends only approved templates: the text goes as the one variable of ours. What the
phone shows is 【sign name】 plus the text: up to 70 characters is one SMS, a longer one is
sent and billed in segments of 67, and 500 is the most the provider takes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from . import Outgoing, Receipt, Refused, Temporary, http

MAX_CHARS = 500
# Codes that waiting can cure: rate limits, the provider's own failures, an account to top up.
# Every other code is about the request (number, template, signature, parameters): Refused.
RETRY_LATER = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isv.DAY_LIMIT_CONTROL",
    "Throttling",
    "Throttling.User",
    "isp.SYSTEM_ERROR",
    "ServiceUnavailable",
    "InternalError",
    "isv.AMOUNT_NOT_ENOUGH",
    "isv.OUT_OF_SERVICE",
}


def percent_encode(value: str) -> str:
    """RFC 3986 over UTF-8: only A-Z a-z 0-9 - _ . ~ stay as they are (a space is %20)."""
    return quote(value, safe="-_.~")


def signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", method & %2F & encoded canonical query))."""
    canonical = "&".join(f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params))
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(kw_only=True)
class AliyunSms:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    sign_name: str
    template_code: str
    template_param: str = "text"
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"
    timeout: float = 10
    name: str = field(default="aliyun_sms", init=False)

    def params(self, message: Outgoing) -> dict[str, str]:
        """SendSms's parameters for `message`, signed."""
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.message_id,
            "PhoneNumbers": message.to,
            "RegionId": self.region_id,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": self.template_code,
            "TemplateParam": json.dumps({self.template_param: message.text}, ensure_ascii=False),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        return {**params, "Signature": signature("POST", params, self.access_key_secret)}

    def send(self, message: Outgoing) -> Receipt:
        length = len(f"【{self.sign_name}】{message.text}")
        if length > MAX_CHARS:
            raise Refused(f"{length} characters with the sign name: more than the {MAX_CHARS} one SMS may have")
        answer = http.answer(http.request("POST", self.endpoint, data=self.params(message), timeout=self.timeout))
        code = answer.get("Code")
        if code == "OK":
            return Receipt(self.name, str(answer["BizId"]))
        error = Temporary if code in RETRY_LATER or code is None else Refused
        raise error(f"SendSms {code}: {answer.get('Message')}")
