"""The gateways notify sends customers' messages through: one per provider, each a blocking
`send` with an explicit timeout (green under nameko's eventlet: never asyncio here).

A gateway answers a `Receipt` or raises `Temporary` (retry later with back-off: the provider
is down, slow, rate-limited or answered 5xx) or `Refused` (retrying the same message cannot
help: the address or number is invalid, the customer cannot be reached on that channel, or
the provider rejected our own credentials or settings, which needs an operator first).

`gateway_from(settings)` builds one from a policy entry; `kind` picks the gateway and the
other keys are its settings (secrets already resolved; an unknown or missing key is a
TypeError):

- `smtp` (e-mail): `host`, `port` (587 with `starttls`, else 25), `sender` (the From
  address, display name allowed), `starttls` (false), `ca_file` (a PEM file of the
  certificates to trust instead of the system's), `user` and `password` (AUTH when `user`
  is set), `timeout` (seconds, 10).
- `aliyun_sms` (Alibaba Cloud SMS, SendSms of 2017-05-25): `access_key_id`,
  `access_key_secret`, `sign_name`, `template_code` (an approved template with one
  variable that takes the whole text), `template_param` (that variable's name, "text"),
  `endpoint` ("https://dysmsapi.aliyuncs.com/"), `region_id` ("cn-hangzhou"), `timeout` (10).
- `wechat` (an official account's customer-service text message): `appid`, `secret`,
  `api` ("https://api.weixin.qq.com"), `token_margin` (seconds before the access token's
  expiry at which a new one is fetched, 300), `timeout` (10).
- `webhook` (the chain's own app): `url`, `secret` (signs each request), `timeout` (10).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol


@dataclass(frozen=True)
class Outgoing:
    message_id: str  # ours, unique per message, e.g. "SHXJH-20261123-0010:acknowledgement:1"
    channel: str  # "sms" | "email" | "wechat" | "app"
    to: str  # phone, e-mail address, WeChat OpenID, or the app's user id
    text: str  # plain text (SMS body, e-mail text part, WeChat text)
    subject: str | None = None  # e-mail
    html: str | None = None  # e-mail HTML part
    complaint_no: str = ""  # for threading (e-mail Message-ID, webhook body)


@dataclass(frozen=True)
class Receipt:
    gateway: str  # "smtp", "aliyun_sms", "wechat", "webhook"
    provider_id: str  # the provider's message id (SMTP: the Message-ID we set)


class GatewayError(Exception):
    """A message not sent; the text says what the provider answered."""


class Temporary(GatewayError):
    """Down, timed out, 5xx or rate-limited: retry later with back-off."""


class Refused(GatewayError):
    """Permanent: an invalid number or address, a customer out of reach on this channel, a
    4xx that will not change, or our own credentials rejected."""


class Gateway(Protocol):
    name: str

    def send(self, message: Outgoing) -> Receipt: ...


def gateway_from(settings: dict[str, Any]) -> Gateway:
    """The gateway a policy entry {"kind": ..., **settings} describes."""
    from .aliyun_sms import AliyunSms
    from .smtp import Smtp
    from .webhook import Webhook
    from .wechat import WeChat

    kinds: dict[str, Callable[..., Gateway]] = {
        "smtp": Smtp,
        "aliyun_sms": AliyunSms,
        "wechat": WeChat,
        "webhook": Webhook,
    }
    options = dict(settings)
    kind = options.pop("kind")
    if kind not in kinds:
        raise ValueError(f"no gateway of kind {kind!r} (known: {', '.join(sorted(kinds))})")
    return kinds[kind](**options)
