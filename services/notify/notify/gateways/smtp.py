"""E-mail through an SMTP relay (smtplib): STARTTLS and AUTH when configured, a text part
with an HTML alternative, and a Message-ID that names the complaint, so that a customer's
reply (In-Reply-To, References) can be matched to it."""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from . import Outgoing, Receipt, Refused, Temporary

# Base64 or quoted-printable bodies: Chinese text passes relays that do not speak 8BITMIME.
POLICY = SMTP.clone(cte_type="7bit")
ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")


def message_id(message: Outgoing) -> str:
    """Our Message-ID header: <SHXJH-20261123-0010.acknowledgement.1@notify.mallcare>."""
    return f"<{message.message_id.replace(':', '.')}@notify.mallcare>"


@dataclass(kw_only=True)
class Smtp:
    host: str
    sender: str
    port: int | None = None  # 587 with STARTTLS, else 25
    starttls: bool = False
    ca_file: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10
    name: str = field(default="smtp", init=False)

    def __post_init__(self) -> None:
        if not f"{self.user or ''}{self.password or ''}".isascii():
            raise ValueError("the SMTP user and password must be ASCII: smtplib sends AUTH in ASCII")

    @property
    def relay(self) -> tuple[str, int]:
        return self.host, self.port or (587 if self.starttls else 25)

    def compose(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage(policy=POLICY)
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate()
        mail["Message-ID"] = message_id(message)
        mail["X-Mallcare-Complaint"] = message.complaint_no
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def send(self, message: Outgoing) -> Receipt:
        if not ADDRESS.fullmatch(message.to):
            raise Refused(f"not an e-mail address: {message.to!r}")
        mail = self.compose(message)
        host, port = self.relay
        try:
            with smtplib.SMTP(host, port, timeout=self.timeout) as relay:
                if self.starttls:
                    relay.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if self.user:
                    relay.login(self.user, self.password or "")
                relay.send_message(mail)
        except smtplib.SMTPRecipientsRefused as refused:
            code, reply = refused.recipients[message.to]
            raise by_code(code, reply) from refused
        except smtplib.SMTPResponseException as error:  # greeting, AUTH, MAIL FROM or DATA answered an error
            raise by_code(error.smtp_code, error.smtp_error) from error
        except smtplib.SMTPNotSupportedError as error:
            raise Refused(f"{host}:{port} does not support what the settings ask: {error}") from error
        except OSError as error:  # refused, timed out, dropped, TLS failed
            raise Temporary(f"{host}:{port}: {error!r}") from error
        return Receipt(self.name, str(mail["Message-ID"]))


def by_code(code: int, reply: bytes | str) -> Temporary | Refused:
    """4xx is transient in SMTP (RFC 5321 4.2.1), 5xx permanent."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return Temporary(f"SMTP {code} {text}") if code < 500 else Refused(f"SMTP {code} {text}")
