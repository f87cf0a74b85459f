"""The complaint mailbox (R7.2): each mall's mailbox is read over IMAP, and each new mail is a
complaint on the `email` channel, or, when it answers one of our messages, a reply on the
complaint it answers.

- One replica reads (the service's `mailboxes` lease). It keeps one connection a mailbox
  from one round to the next; a round takes the unseen mails, then waits for news: in IDLE
  where the server offers it (a new mail is taken at once), else until the next round.
- A mail is taken, then marked \\Seen, never deleted or moved: the mailbox stays the record
  of what came in. Its `Message-ID` (a digest of the mail without one) is the complaint's
  channel_ref, so a mail read again, after a crash between the two, is the same complaint.
- New complaint: the sender's address and name are the customer's, subject and text the
  description (an HTML-only mail read as text), the time the server received it the
  received_at. Files come along up to MAX_FILE_BYTES each (MAX_FILES a mail) in intake's
  `attachments` collection, referenced from the complaint; a bigger one is listed, not
  kept, and a mail over MAX_MAIL_BYTES is taken from its header alone.
- Reply: notify's mails carry the Message-ID `<{complaint_no}.{kind}.{round}@notify.mallcare>`,
  which a reply names in In-Reply-To or References; failing that, a subject tag such as
  `[SHXJH-20261123-0010]`. The reply goes onto that complaint (`replies`), and a
  `customer_replied` event puts it on the case's timeline (none for a rejected complaint,
  which has no case). A named complaint that does not exist: the mail is a new complaint.
"""

import email
import email.policy
import hashlib
import html
import imaplib
import logging
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from html.parser import HTMLParser

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from mallcare_common.auth import MissingSecret
from mallcare_common.contracts import CUSTOMER_REPLIED, build_event
from mallcare_common.inputs import as_text
from mallcare_common.personal import mask_text

from .schemas import CustomerIn

log = logging.getLogger(__name__)

MAX_MAIL_BYTES = 32 * 1024 * 1024
MAX_FILE_BYTES = 8 * 1024 * 1024  # a store document holds 16 MiB at most
MAX_FILES = 10
MAX_DESCRIPTION = 5000  # intake's limit for a description
MAX_EVENT_TEXT = 2000
MAX_REF = 128  # intake's limit for a channel_ref
IMAP_TIMEOUT = 60  # seconds an IMAP command may take; a round's wait is shorter
WAIT_SECONDS = 20  # a round's wait for news: config MALLCARE.MAILBOX_WAIT_SECONDS

OUR_MESSAGE = re.compile(
    r"<(?P<number>[A-Z0-9]{2,8}-\d{8}-\d{4,})\.(?P<kind>[A-Za-z0-9_-]+)\.(?P<round>\d+)"
    r"@notify\.mallcare>"
)
SUBJECT_TAG = re.compile(r"\[(?P<number>[A-Z0-9]{2,8}-\d{8}-\d{4,})\]")
# Where a reply's quote of the mail it answers starts (what mail clients write above it).
QUOTE_START = re.compile(
    r"^(-{2,}\s*(Original Message|原始邮件)\s*-{2,}|On .{5,200} wrote:|在.{5,200}写道[:：])\s*$", re.MULTILINE
)
TOO_LARGE = "（这封邮件有 {size} 字节，超过了系统能读取的大小：正文和附件请在投诉邮箱中查看。）"


@dataclass
class File:
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Mail:
    ref: str  # the channel_ref: Message-ID, or a digest of the mail
    sender: str | None  # the address, when it is one
    sender_name: str | None
    subject: str
    text: str
    files: list[File] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # message ids it answers (In-Reply-To, References)
    ours: bool = False  # one of our own messages (a copy that landed here)


# --- reading a mail ------------------------------------------------------------------------


def read_mail(raw: bytes, too_large: int | None = None) -> Mail:
    """The mail `raw` (RFC 5322 bytes; its header alone when it was `too_large` bytes)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # what the default policy makes
    name, address = parseaddr(str(message.get("From", "")))
    message_id = str(message.get("Message-ID", "")).strip()
    text = TOO_LARGE.format(size=too_large) if too_large else _body_text(message)
    return Mail(
        ref=_ref(message_id, raw),
        sender=_address(address),
        sender_name=as_text(name)[:64] or None,
        subject=as_text(str(message.get("Subject", ""))).strip(),
        text=text,
        files=[] if too_large else _files(message),
        names=" ".join(str(message.get(h, "")) for h in ("In-Reply-To", "References")).split(),
        ours=bool(OUR_MESSAGE.fullmatch(message_id)),
    )


def _ref(message_id: str, raw: bytes) -> str:
    if message_id and len(message_id) <= MAX_REF and as_text(message_id) == message_id:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode() if message_id else raw).hexdigest()


def _address(address: str) -> str | None:
    """The sender's address if intake takes it as an e-mail (a complaint without one is
    refused by review for want of a contact, and kept)."""
    return address.lower() if address and not CustomerIn().validate({"email": address}) else None


def _body_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError):  # a charset Python does not know: read what can be read
        content = (body.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    content = content.replace("\r\n", "\n")  # as it travelled: lines end in CRLF
    if body.get_content_subtype() == "html":
        content = html_text(content)
    return as_text(content).strip()


def _files(message: EmailMessage) -> list[File]:
    return [
        File(
            filename=as_text(part.get_filename() or "")[:200] or None,
            content_type=part.get_content_type(),
            data=part.get_payload(decode=True) or b"",
        )
        for part in list(message.iter_attachments())[:MAX_FILES]
    ]


class _Text(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "section"}
    HIDDEN = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """An HTML mail as the text a reader sees: no tags, scripts or styles; a line per block."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in html.unescape("".join(parser.parts)).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def answered(mail: Mail) -> tuple[str, str | None] | None:
    """(complaint number, `<kind>.<round>` of our message it answers, or None when only the
    subject's tag names it) for a reply to one of our messages; None for a new mail."""
    for name in reversed(mail.names):  # In-Reply-To first, then the newest of References
        ours = OUR_MESSAGE.fullmatch(name)
        if ours:
            return ours["number"], f"{ours['kind']}.{ours['round']}"
    tag = SUBJECT_TAG.search(mail.subject)
    return (tag["number"], None) if tag else None


def reply_text(mail: Mail) -> str:
    """The reply's subject and its own words: the quote of our message below them left out."""
    own = QUOTE_START.split(mail.text, maxsplit=1)[0]
    own = "\n".join(line for line in own.splitlines() if not line.startswith(">")).strip()
    return f"{mail.subject}\n\n{own}".strip()[:MAX_DESCRIPTION]


# --- what a mail becomes --------------------------------------------------------------------


def complaint(mail: Mail, mall_id: str, received_at: datetime) -> dict:
    """The complaint a new mail registers (intake's ComplaintIn)."""
    customer = {"email": mail.sender, "name": mail.sender_name} if mail.sender else {}
    description = f"{mail.subject}\n\n{mail.text}".strip()
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - 1] + "…"
    return {
        "mall_id": mall_id,
        "channel": "email",
        "channel_ref": mail.ref,
        "received_at": received_at.isoformat(),
        "customer": customer,
        "description": description or "-",
    }


def files_kept(number: str, mail: Mail, now: datetime) -> list[dict]:
    """The `attachments` documents of `mail`'s files for complaint `number`: ids from the
    mail's reference, so reading the mail again keeps each once; a file over MAX_FILE_BYTES
    is listed without its content."""
    stem = f"{number}.{hashlib.sha256(mail.ref.encode()).hexdigest()[:10]}"
    return [
        {
            "_id": f"{stem}.{i}",
            "complaint_no": number,
            "filename": f.filename,
            "content_type": f.content_type,
            "size": len(f.data),
            "stored": len(f.data) <= MAX_FILE_BYTES,
            "stored_at": now,
            **({"data": f.data} if len(f.data) <= MAX_FILE_BYTES else {}),
        }
        for i, f in enumerate(mail.files, 1)
    ]


def reference(file: dict) -> dict:
    """What the complaint records of a kept file."""
    return {"id": file["_id"], **{k: file[k] for k in ("filename", "content_type", "size", "stored")}}


def take(mail: Mail, mall_id: str, received_at: datetime | None, *, now: datetime, store, register, apply_reply) -> str:
    """A new mail registers its complaint (`register(complaint)` gives it), a reply goes onto
    the complaint it answers (`apply_reply(number, decide)`, unit_of_work.change's); the
    files are kept in `store`. The complaint's number."""
    received_at = min(received_at or now, now)  # the server's clock may run ahead of ours
    named = answered(mail)
    # a reply names a complaint of this mall's only: a number is easy to guess, and another
    # mall's staff must not read what a stranger wrote to this mailbox on their case
    if named and store.exists(named[0], mall_id):
        number, replied_to = named
        files = files_kept(number, mail, now)
        store.keep_files(files)
        apply_reply(number, reply_change(mail, replied_to, files, received_at))
        return number
    doc, _ = register(complaint(mail, mall_id, received_at))
    files = files_kept(doc["_id"], mail, now)
    store.keep_files(files)
    store.attach(doc["_id"], [reference(f) for f in files])
    return doc["_id"]


def reply_change(mail: Mail, replied_to: str | None, files: list[dict], received_at: datetime):
    """unit_of_work's decision that adds the reply to its complaint (once per mail) with
    its customer_replied event (none for a rejected complaint: it has no case)."""

    def decide(doc, now):
        if any(reply["ref"] == mail.ref for reply in doc.get("replies") or ()):
            return None
        customer = doc.get("customer") or {}
        reply = {
            "ref": mail.ref,
            "channel": "email",
            "received_at": received_at,
            "replied_to": replied_to,
            "from_customer": bool(mail.sender) and mail.sender == (customer.get("email") or "").lower(),
            "sender": mail.sender,
            "text": reply_text(mail),
            "attachments": [reference(f) for f in files],
        }
        events = (
            []
            if doc["status"] == "rejected"
            else [
                build_event(
                    CUSTOMER_REPLIED,
                    mall_id=doc["mall_id"],
                    complaint_no=doc["_id"],
                    occurred_at=now,
                    payload={
                        "channel": "email",
                        "received_at": received_at.isoformat(),
                        "replied_to": replied_to,
                        "from_customer": reply["from_customer"],
                        "attachments": len(files),
                        "text": mask_text(reply["text"][:MAX_EVENT_TEXT], customer),
                    },
                )
            ]
        )
        return {"$push": {"replies": reply}}, events

    return decide


# --- the IMAP side --------------------------------------------------------------------------


class Connection:
    """One mailbox, logged in with its folder selected."""

    def __init__(self, settings: dict, password: str) -> None:
        self.settings = settings
        host, port, security = settings["host"], settings.get("port"), settings["security"]
        if security == "tls":
            self.imap = imaplib.IMAP4_SSL(
                host, port or 993, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT
            )
        else:
            self.imap = imaplib.IMAP4(host, port or 143, timeout=IMAP_TIMEOUT)
            if security == "starttls":
                self.imap.starttls(ssl.create_default_context())
        try:
            self.imap.login(settings["user"], password)
            self.idle = b"IDLE" in _ok(self.imap.capability())[0].upper().split()
            _ok(self.imap.select(_quoted(settings["folder"])))
        except (imaplib.IMAP4.error, OSError):
            self.imap.shutdown()  # refused (a wrong password, no such folder): no socket left open
            raise

    def unseen(self) -> list[bytes]:
        return _ok(self.imap.uid("SEARCH", None, "UNSEEN"))[0].split()

    def fetch(self, uid: bytes) -> tuple[Mail, datetime | None]:
        """The mail and when the server received it (INTERNALDATE)."""
        head = _ok(self.imap.uid("FETCH", uid, "(RFC822.SIZE INTERNALDATE)"))[0]
        size = re.search(rb"RFC822\.SIZE (\d+)", head)
        internal = re.search(rb'INTERNALDATE "([^"]+)"', head)
        too_large = int(size[1]) if size and int(size[1]) > MAX_MAIL_BYTES else None
        part = "BODY.PEEK[HEADER]" if too_large else "BODY.PEEK[]"
        raw = next(item[1] for item in _ok(self.imap.uid("FETCH", uid, f"({part})")) if isinstance(item, tuple))
        received = datetime.strptime(internal[1].decode().strip(), "%d-%b-%Y %H:%M:%S %z") if internal else None
        return read_mail(raw, too_large), received

    def mark_seen(self, uid: bytes) -> None:
        _ok(self.imap.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)"))

    def wait(self, seconds: float) -> bool:
        """IDLE (RFC 2177) up to `seconds`: True when the server told of a new mail. A reader
        takes the server's lines while this waits, and DONE ends the IDLE; so no read is
        cut short by a timeout, which would leave imaplib's buffered reader unusable."""
        tag = self.imap._new_tag()  # imaplib has no IDLE before Python 3.14: the command by hand
        reader = None
        try:
            self.imap.send(tag + b" IDLE\r\n")
            news = Event()
            while not (line := self._line()).startswith(b"+"):
                if line.startswith(tag):
                    raise imaplib.IMAP4.error(f"IDLE refused: {line!r}")
            reader = eventlet.spawn(self._read_until, tag, news)
            reader.link(lambda _: news.ready() or news.send(False))  # a failed read wakes the wait too
            with eventlet.Timeout(seconds, False):
                news.wait()
            self.imap.send(b"DONE\r\n")
            return reader.wait()
        finally:
            self.imap.tagged_commands.pop(tag, None)
            if reader is not None:
                reader.kill()  # the wait was cut short (the service killed): no reader left behind

    def _read_until(self, tag: bytes, news: Event) -> bool:
        told = False
        while not (line := self._line()).startswith(tag):
            if re.match(rb"\* \d+ EXISTS", line) and not news.ready():
                told = True
                news.send(True)
        if b" OK" not in line:
            raise imaplib.IMAP4.error(f"IDLE ended with {line!r}")
        return told

    def _line(self) -> bytes:
        line = self.imap.readline()
        if not line:
            raise imaplib.IMAP4.abort("the server closed the connection")
        return line

    def close(self) -> None:
        try:
            self.imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass  # gone already: nothing to close

    def abandon(self) -> None:
        """Close the connection without a word: a round may still be reading from it."""
        try:
            self.imap.sock.close()
        except OSError:
            pass  # gone already


def _ok(answer: tuple) -> list:
    kind, data = answer
    if kind != "OK":
        raise imaplib.IMAP4.error(f"{kind}: {data!r}")
    return data


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MailboxTimer(Timer):
    """The mailbox round's timer: its interval is config MALLCARE.MAILBOX_WAIT_SECONDS. A
    round that waited in IDLE for that long is followed by the next at once; the first
    round starts with the service (mails waiting are taken then)."""

    def __init__(self, interval, eager=True, **kwargs):
        super().__init__(interval, eager=eager, **kwargs)

    def setup(self):
        self.interval = wait_seconds(self.container.config)
        super().setup()


def wait_seconds(config: dict) -> float:
    return float((config.get("MALLCARE") or {}).get("MAILBOX_WAIT_SECONDS", WAIT_SECONDS))


def lease_time(service) -> timedelta:
    """Three rounds: a replica that stops reading hands the mailboxes over within a minute."""
    return timedelta(seconds=3 * service.mailboxes.wait_seconds)


class Mailboxes(DependencyProvider):
    """The open connections, by mall, kept from round to round and closed when the service
    stops or another replica took the lease (`hand_over`). Workers get the provider."""

    def setup(self):
        self.open: dict[str, Connection] = {}
        self.wait_seconds = wait_seconds(self.container.config)

    def stop(self):
        self.close_all()

    def kill(self):
        for connection in self.open.values():
            connection.abandon()
        self.open.clear()

    def get_dependency(self, worker_ctx):
        return self

    def round(self, mailboxes: dict, secret, take, still_held) -> None:
        """One round over the mailboxes `mailboxes` (mall -> settings), side by side:
        `take(mall_id, mail, received_at)` for each unseen mail, then, in IDLE, for those that
        come while it waits; `still_held()` says whether this replica still holds the lease."""
        for mall_id in set(self.open) - set(mailboxes):  # no longer in the policy
            self.open.pop(mall_id).close()
        pool = eventlet.GreenPool()
        for mall_id, settings in mailboxes.items():
            pool.spawn(self._round_of, mall_id, settings, secret, take, still_held)
        pool.waitall()

    def _round_of(self, mall_id, settings, secret, take, still_held):
        try:
            connection = self._connection(mall_id, settings, secret)
            self._take_unseen(connection, mall_id, take)
            ends = time.monotonic() + self.wait_seconds  # the timer's next round is due then
            while connection.idle and (left := ends - time.monotonic()) > 0 and still_held():
                if connection.wait(left):
                    self._take_unseen(connection, mall_id, take)
        except (imaplib.IMAP4.error, OSError) as exc:  # OSError: refused, reset, TLS, timed out
            log.warning("mailbox of %s: %s; connecting again next round", mall_id, exc)
            self.drop(mall_id)
        except MissingSecret as exc:
            log.error("mailbox of %s not read: %s", mall_id, exc)
        except Exception:  # the store away, a mail we fail on: the other mailboxes go on
            log.exception("mailbox of %s: its unseen mails wait for the next round", mall_id)

    def _connection(self, mall_id, settings, secret) -> Connection:
        connection = self.open.get(mall_id)
        if connection is not None and connection.settings != settings:  # the policy changed it
            self.drop(mall_id)
            connection = None
        if connection is None:
            connection = self.open[mall_id] = Connection(settings, secret(settings["password"], min_bytes=1))
        return connection

    @staticmethod
    def _take_unseen(connection, mall_id, take):
        for uid in connection.unseen():
            mail, received_at = connection.fetch(uid)
            try:
                if not mail.ours:
                    take(mall_id, mail, received_at)
            except Exception:  # this mail (or the store) failed: it stays unseen, the next ones go on
                log.exception("mail %s of %s's mailbox not taken: tried again next round", uid.decode(), mall_id)
                continue
            connection.mark_seen(uid)

    def drop(self, mall_id):
        connection = self.open.pop(mall_id, None)
        if connection is not None:
            connection.close()

    def close_all(self):
        for mall_id in list(self.open):
            self.drop(mall_id)


def hand_over(service) -> None:
    """Another replica reads the mailboxes: close this one's connections."""
    service.mailboxes.close_all()
