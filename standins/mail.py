"""The SMTP stand-in (aiosmtpd): AUTH when a user is given, STARTTLS with a self-signed
certificate made at start when asked, each mail received recorded."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import subprocess
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .state import State

HOSTNAME = "localhost"  # the name the certificate is for (with 127.0.0.1)


class Mailbox:
    """aiosmtpd's handler: the modes at MAIL and RCPT, the mail kept at DATA."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        mode = self.state.mode("smtp")
        if mode == "slow":
            await asyncio.sleep(self.state.slow_seconds)
        if mode == "down":
            return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.state.mode("smtp") == "refuse":
            code = int(self.state.refusal("smtp", 550))
            return f"{code} {code // 100}.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = message_from_bytes(envelope.original_content or b"", policy=default)
        assert isinstance(mail, EmailMessage)
        text, html = mail.get_body(("plain",)), mail.get_body(("html",))
        self.state.record(
            "email",
            ", ".join(envelope.rcpt_tos),
            as_shown(text),
            str(mail["Subject"] or ""),
            html=as_shown(html) if html is not None else None,
            sender=str(mail["From"]),
            message_id=str(mail["Message-ID"]),
            complaint_no=str(mail["X-Mallcare-Complaint"] or ""),
            tls=session.ssl is not None,
            authenticated=bool(session.authenticated),
        )
        return "250 2.0.0 Message accepted for delivery"


def as_shown(part: object) -> str:
    """A text part's content as a mail program shows it: line ends as in Python, without the
    line end MIME puts after the last line."""
    if not isinstance(part, EmailMessage):
        return ""
    return str(part.get_content()).replace("\r\n", "\n").removesuffix("\n")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its key, written to `directory`: made with
    the cryptography package where it is installed, else with the openssl command."""
    try:
        return certificate_by_cryptography(directory)
    except ImportError:
        return certificate_by_openssl(directory)


def certificate_by_cryptography(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTNAME)])
    now = datetime.datetime.now(datetime.UTC)
    subject_key = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(subject_key, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(subject_key), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HOSTNAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def certificate_by_openssl(directory: Path) -> tuple[Path, Path]:
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key_file),
            "-out",
            str(cert_file),
            "-days",
            "2",
            "-subj",
            f"/CN={HOSTNAME}",
            "-addext",
            f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert_file, key_file


def smtp_server(
    state: State, host: str, port: int, user: str | None, password: str | None, starttls: bool
) -> Controller:
    """The relay, not yet started: AUTH required when `user` is given (after STARTTLS when that
    is offered), STARTTLS required when `starttls`."""
    options: dict[str, Any] = {"server_hostname": HOSTNAME}
    if starttls:
        cert_file, key_file = self_signed_certificate(state.directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        options.update(tls_context=context, require_starttls=True)
    if user is not None:

        def authenticator(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
        ) -> AuthResult:
            good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
                user.encode(),
                (password or "").encode(),
            )
            return AuthResult(success=good, handled=False)  # not handled: aiosmtpd answers 535

        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=starttls)
    return Controller(Mailbox(state), hostname=host, port=port, **options)
