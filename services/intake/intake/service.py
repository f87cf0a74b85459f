"""Intake: takes complaints in from every channel (R1.1-R1.5).

HTTP for channels and the service desk, RPC with the same contract for internal
callers; every call names its caller (a channel's API key or a staff token) and is
checked against the caller's permission and malls. Each write stores the complaint and its event (outbox) in
one document;
the event is relayed to RabbitMQ right away and, if the broker is down, by the
relay timer later, so intake keeps accepting complaints during a broker outage.

Reads show the customer masked, and the description and demands with phones, e-mails,
ID and member numbers and the customer's name masked (personal.MaskedOut), to every
caller; the full record and text come only from
`GET /complaints/<number>/customer?purpose=...` (RPC `complaint_customer`), for
`customer.contact` at the complaint's mall, and each such read is audited (audit.py), as
is each read of a file that came with a mail (`/complaints/<number>/attachments/<id>`);
notify reads the contact alone, for a message to the customer, through its own audited
`GET /complaints/<number>/contact` (RPC `complaint_contact`, `customer.notify`). Notify's
message_sent of an acknowledgement acknowledges the complaint (R1.2, R7.1); `GET
/acknowledgements/waiting` lists the complaints still to acknowledge, the earliest deadline
first (the console's acknowledgement queue).

Two channels come in by themselves (R7.2), through the same register path as every other:
a mall's WeChat official account calls `/channels/wechat/<mall_id>` (intake.wechat), and
the malls' complaint mailboxes are read over IMAP by one replica (intake.mailbox). The web
channel is the customer's own page (R7.2, intake.portal), reached from the QR code on each
mall's poster (intake.poster): the complaint form, and the status page where the number and
the phone it was filed with show its progress (intake.progress, with the case as resolution
has it), each limited per client address; and the mall's notice of product batch checks
(R7.6, intake.notices: the results resolution published).
Resolution's case_closed/case_reopened tell intake when the retention period starts
(retention.py). `GET /malls` and `GET /malls/<mall_id>/merchants` list the caller's malls
and a mall's merchants from the mall registry (policy), for the console's pickers.
"""

import logging
from datetime import datetime, timedelta
from secrets import token_urlsafe

from marshmallow import ValidationError
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import RpcProxy
from prometheus_client import Counter
from werkzeug.wrappers import Response

from mallcare_common.audit import AuditLog
from mallcare_common.auth import Forbidden, NamedSecrets, Secret
from mallcare_common.base import Service
from mallcare_common.calendar import as_stored
from mallcare_common.contracts import read_event
from mallcare_common.contracts.notify import MESSAGE_SENT
from mallcare_common.contracts.resolution import CASE_CLOSED, CASE_REOPENED
from mallcare_common.messaging import event_handler, new_outbox, outbox_dispatcher, publish_pending
from mallcare_common.mongo import leased_timer
from mallcare_common.policy import PolicyFiles
from mallcare_common.openapi import Op
from mallcare_common.operations import Created, operation
from mallcare_common.pages import PageLanguage, language
from mallcare_common.retention import Retention
from mallcare_common.rpc import ask
from mallcare_common.unit_of_work import change
from mallcare_common.web import (
    AddressLimits,
    Conflict,
    NotFound,
    PublicBaseUrl,
    Unavailable,
    http,
    read_body,
    read_form,
)

from . import mailbox, notices, portal, poster, progress, rules, wechat
from .policy import load_policy
from .retention import anonymise as anonymise_complaints
from .schemas import (
    ATTACHMENT_READ,
    CONTACT_READ,
    CUSTOMER_READ,
    AcknowledgementIn,
    ComplaintIn,
    ComplaintList,
    ComplaintOut,
    CustomerIn,
    DemandsIn,
    ListQuery,
    MallList,
    MerchantList,
    PortalFormIn,
    StatusLookupIn,
    StatusPageQuery,
    WaitingQuery,
)
from .storage import Complaints

log = logging.getLogger(__name__)

COMPLAINTS = Counter(
    "mallcare_intake_complaints_total",
    "Complaint submissions by outcome (registered, rejected, resubmitted).",
    ["mall_id", "channel", "outcome"],
)


class IntakeService(Service):
    name = "intake"

    store = Complaints()
    policy = PolicyFiles("intake.yml", load_policy)
    dispatch = outbox_dispatcher()
    audit = AuditLog()
    retention = Retention(anonymise_complaints)
    customer_ref_secret = Secret("CUSTOMER_REF_SECRET")
    secrets = NamedSecrets()  # the WeChat tokens and mailbox passwords the policy names
    mailboxes = mailbox.Mailboxes()
    public_base_url = PublicBaseUrl()  # where customers open the portal: the posters' QR codes lead there
    address_limits = AddressLimits()  # the portal's submissions and look-ups per client address
    resolution = RpcProxy("resolution")  # the case's progress, for its customer's status page

    # --- events: when the case closed (retention) ------------------------------------------------

    @event_handler(CASE_CLOSED.source, CASE_CLOSED.name)
    def handle_case_closed(self, body):
        self._case_changed(read_event(body, CASE_CLOSED), "closed")

    @event_handler(CASE_REOPENED.source, CASE_REOPENED.name)
    def handle_case_reopened(self, body):
        self._case_changed(read_event(body, CASE_REOPENED), "reopened")

    @event_handler(MESSAGE_SENT.source, MESSAGE_SENT.name)
    def handle_message_sent(self, body):
        """R1.2, R7.1: notify's acknowledgement was accepted by its gateway: the complaint is
        acknowledged then, by notify, with the message (a clerk's earlier one stands)."""
        event = read_event(body, MESSAGE_SENT)
        if event["payload"]["kind"] != "acknowledgement":
            return
        doc = self.store.get(event["complaint_no"])
        now = self.clock()
        decided = rules.message_acknowledgement(
            doc, {**event["payload"], "accepted_at": as_stored(event["payload"]["accepted_at"])}, now
        )
        if decided is not None:
            self._record_acknowledgement(doc["_id"], *decided, now)

    @operation(
        Op(
            "POST",
            "/complaints",
            "Register a complaint (201); the same channel_ref again returns the first (200).",
            "complaint.register",
            body=ComplaintIn,
            responses={201: ComplaintOut, 200: ComplaintOut},
            errors=(409,),
        )
    )
    def register_complaint(self, data):
        """Register a complaint: 201 with the new complaint, 200 with the existing one
        when the same channel reference was submitted before, 422 with field messages."""
        complaint, created = self._register(self.access.caller(), data)
        return Created("complaint", ComplaintOut().dump(complaint), created)

    @operation(
        Op("GET", "/complaints/<string:number>", "One complaint.", "complaint.read", responses={200: ComplaintOut})
    )
    def get_complaint(self, number):
        caller = self.access.caller().require("complaint.read")  # before the look-up: a 404 would say it exists
        doc = self.store.get(number)
        caller.require("complaint.read", doc["mall_id"])
        return ComplaintOut().dump(doc)

    @operation(
        Op(
            "GET",
            "/complaints",
            "A page of complaints, newest first.",
            "complaint.read",
            query=ListQuery,
            responses={200: ComplaintList},
        )
    )
    def list_complaints(self, query):
        caller = self.access.caller()
        query = ListQuery().load(query)
        mall_id = caller.list_mall("complaint.read", query.pop("mall_id", None))
        if mall_id:
            query["mall_id"] = mall_id
        items, total = self.store.list(query)
        return {
            "items": ComplaintOut(many=True).dump(items),
            "total": total,
            "page": query["page"],
            "per_page": query["per_page"],
        }

    @operation(
        Op(
            "GET",
            "/acknowledgements/waiting",
            "Complaints the customer has not yet been told we have (R1.2), of the caller's malls (or the one "
            "named) and the channels named, the earliest acknowledgement deadline (ack_due_at) first.",
            "complaint.acknowledge",
            query=WaitingQuery,
            responses={200: ComplaintList},
        )
    )
    def waiting_acknowledgements(self, query):
        """The acknowledgement queue of the hotline, web and social staff (the console's #/acks)."""
        caller = self.access.caller()
        query = WaitingQuery().load(query)
        caller.require("complaint.acknowledge", query.get("mall_id"))
        if "mall_id" in query:
            malls = [query["mall_id"]]
        else:
            malls = None if caller.chain_wide else caller.malls
        channels = query.get("channels")
        if caller.channel:  # a channel's key acknowledges for its own channel only
            channels = [c for c in channels or [caller.channel] if c == caller.channel]
        items, total = self.store.waiting(malls, channels, query["page"], query["per_page"])
        return {
            "items": ComplaintOut(many=True).dump(items),
            "total": total,
            "page": query["page"],
            "per_page": query["per_page"],
        }

    @operation(
        Op(
            "GET",
            "/malls",
            "The caller's malls (every mall, chain-wide) with their codes and names.",
            "complaint.read",
            responses={200: MallList},
        )
    )
    def get_malls(self):
        """The malls the caller works at, with their names (the console's pickers)."""
        caller = self.access.caller()
        caller.require("complaint.read")
        malls = [m for m in self.policy.current.malls.malls.values() if caller.sees(m.id)]
        return MallList().dump({"items": malls})

    @operation(
        Op(
            "GET",
            "/malls/<string:mall_id>/merchants",
            "The mall's merchants, as the mall registry lists them (the service desk's merchant picker).",
            "complaint.read",
            responses={200: MerchantList},
        )
    )
    def get_merchants(self, mall_id):
        """The mall's merchants from the registry, for the desk's picker."""
        self.access.caller().require("complaint.read", mall_id)
        mall = self.policy.current.malls.get(mall_id)
        if mall is None:
            raise NotFound(f"no mall {mall_id}")
        return MerchantList().dump({"mall_id": mall_id, "items": mall.merchants})

    @operation(
        Op(
            "POST",
            "/complaints/<string:number>/acknowledgement",
            "Record that the customer was told (R1.2); repeating it returns the first record.",
            "complaint.acknowledge",
            body=AcknowledgementIn,
            responses={200: ComplaintOut},
            errors=(409,),
        )
    )
    def acknowledge_complaint(self, number, data):
        """Record that the customer was told (R1.2); repeating it returns the first record."""
        return ComplaintOut().dump(self._acknowledge(self.access.caller(), number, data))

    @operation(CUSTOMER_READ)
    def complaint_customer(self, number, query):
        """The full customer, audited: 403 without customer.contact, 422 without a purpose, 410 once anonymised."""
        caller = self.access.caller().require("complaint.read")  # before the look-up: a 404 would say it exists
        doc = self.store.get(number)
        caller.require("complaint.read", doc["mall_id"])
        audit_id = self._audited_read(caller, doc, query, permission="customer.contact")
        return {
            "number": number,
            "mall_id": doc["mall_id"],
            "customer": CustomerIn().dump(doc["customer"]),
            "description": doc["description"],
            "demands": DemandsIn().dump(doc["demands"]),
            "audit_id": audit_id,
        }

    @operation(CONTACT_READ)
    def complaint_contact(self, number, query):
        """The customer's contact for a message to them: notify's read (customer.notify),
        audited with the message's purpose; no text of the complaint."""
        caller = self.access.caller()
        doc = self.store.get(number)
        audit_id = self._audited_read(caller, doc, query, permission="customer.notify")
        return {
            "number": number,
            "mall_id": doc["mall_id"],
            "channel": doc["channel"],
            "customer": CustomerIn().dump(doc["customer"]),
            "audit_id": audit_id,
        }

    def _audited_read(self, caller, doc, query, permission):
        """The audit log's record of `caller`'s full read of complaint `doc` for the purpose in
        `query` (audit.full_read: refused without `permission`, a purpose, or once anonymised): its id."""
        record = self.audit(
            self.store.db,
            caller,
            subject="complaint",
            doc=doc,
            purpose_args=query,
            now=self.clock(),
            permission=permission,
        )
        return record["_id"]

    @http(ATTACHMENT_READ)
    def complaint_attachment(self, request, number, file_id):
        """A file that came with the complaint's mail, audited like the full customer read."""
        caller = self.access.caller(request)
        doc = self.store.get(number)
        caller.require("complaint.read", doc["mall_id"])
        file = self.store.file(number, file_id)
        self._audited_read(caller, doc, request.args.to_dict(), permission="customer.contact")
        if not file["stored"]:
            raise NotFound(f"{file_id} was over the size intake keeps: the mailbox has it")
        return Response(
            file["data"],
            mimetype=file["content_type"],
            headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"},
        )

    # --- the customer's own pages (R7.2, intake.portal): no login ---------------------------------

    @http(
        Op(
            "GET",
            "/portal/<string:mall_code>",
            "A mall's complaint page, by the mall's code, where its poster's QR code leads (the web "
            "channel): a form for a phone, in simplified Chinese (lang=en: English), without script. An "
            "unknown mall 404, a page.",
            query=PageLanguage,
            responses={status: "text/html" for status in (200, 404, 429, 503)},
        ),
        error_page=portal.refusal,
    )
    def portal_page(self, request, mall_code):
        mall, lang = self._portal_mall(mall_code), language(request.args)
        return portal.respond(200, self._portal_form(mall, lang, token_urlsafe(18)))

    @http(
        Op(
            "POST",
            "/portal/<string:mall_code>/complaints",
            "The complaint page's form: registers the complaint on the web channel (the same form "
            "again finds it) and answers a page with its number; the form again, saying what to fix (422); "
            "429 with Retry-After past the submissions an address may make a minute (intake.yml portal).",
            query=PageLanguage,
            form=PortalFormIn,
            responses={status: "text/html" for status in (200, 400, 404, 409, 413, 422, 429, 503)},
        ),
        error_page=portal.refusal,
    )
    def portal_complaint(self, request, mall_code):
        mall, lang = self._portal_mall(mall_code), language(request.args)
        self.address_limits(
            request, "submissions", self.policy.current.rules["portal"]["per_address_per_minute"]["submissions"]
        )
        entered = portal.form_fields(read_form(request))
        try:
            sent = self._portal_form_in(mall, entered)
            doc, _ = self._register(self.access.channel_adapter(mall.id, "web"), portal.complaint(sent, mall))
        except ValidationError as exc:  # the form again, as filled in
            problems = {portal.REGISTER_FIELDS.get(name, name) for name in exc.messages}
            ref = entered["ref"] if "ref" not in problems and "ref" in entered else token_urlsafe(18)
            return portal.respond(422, self._portal_form(mall, lang, ref, entered, problems))
        return portal.respond(200, portal.thanks(self.public_base_url, lang, mall, doc))

    @http(
        Op(
            "GET",
            "/portal/status",
            "The status look-up: the complaint's number (filled in from `number`) and the phone it "
            "was filed with, a form without script.",
            query=StatusPageQuery,
            responses={status: "text/html" for status in (200, 429, 503)},
        ),
        error_page=portal.refusal,
    )
    def portal_lookup(self, request):
        number = portal.prefill(request.args.get("number", ""))
        return portal.respond(200, portal.lookup(self.public_base_url, language(request.args), number))

    @http(
        Op(
            "POST",
            "/portal/status",
            "The status look-up's form: the complaint's progress for its own customer (the number and "
            "the phone it was filed with; a wrong pair is answered as an unknown number is, 404), "
            "masked; 429 with Retry-After past the look-ups an address may make a minute.",
            query=PageLanguage,
            form=StatusLookupIn,
            responses={status: "text/html" for status in (200, 400, 404, 413, 422, 429, 503)},
        ),
        error_page=portal.refusal,
    )
    def portal_status(self, request):
        lang, base = language(request.args), self.public_base_url
        self.address_limits(
            request, "lookups", self.policy.current.rules["portal"]["per_address_per_minute"]["lookups"]
        )
        entered = portal.form_fields(read_form(request))
        try:
            asked = StatusLookupIn().load(entered)
        except ValidationError as exc:
            return portal.respond(
                422, portal.lookup(base, lang, portal.prefill(entered.get("number", "")), exc.messages)
            )
        number = asked["number"].strip().upper()
        doc = self.store.find(number)
        if doc is None or not progress.owns(doc, asked["phone"]):
            return portal.respond(404, portal.lookup(base, lang, number, not_found=True))
        case, partial = self._case_of(doc)
        mall = self.policy.current.malls[doc["mall_id"]]
        return portal.respond(200, portal.status(base, lang, mall, doc, progress.progress(doc, case), partial))

    @http(
        Op(
            "GET",
            "/portal/<string:mall_code>/poster",
            "The mall's poster to print (A4; lang=en: in English): its name, the complaint page's QR "
            "code and address, the hotline, WeChat and the service desk (intake.yml portal.posters).",
            query=PageLanguage,
            responses={status: "text/html" for status in (200, 404, 429, 503)},
        ),
        error_page=portal.refusal,
    )
    def portal_poster(self, request, mall_code):
        mall, lang = self._portal_mall(mall_code), language(request.args)
        settings = self.policy.current.rules["portal"]["posters"].get(mall.id, {})
        minutes = self.policy.current.acknowledgement_rule(mall.id, "web")["minutes"]
        url = portal.portal_link(self.public_base_url, mall)
        return poster.PAGES.respond(200, poster.poster(mall, settings, url, minutes, lang))

    @http(
        Op(
            "GET",
            "/portal/<string:mall_code>/notices",
            "The mall's public notice of product batch checks (R7.6): each published result, the latest "
            "first, in simplified Chinese (lang=en: English), without script; 503 while resolution cannot "
            "be read; 429 with Retry-After past the look-ups an address may make a minute.",
            query=PageLanguage,
            responses={status: "text/html" for status in (200, 404, 429, 503)},
        ),
        error_page=portal.refusal,
    )
    def portal_notices(self, request, mall_code):
        mall, lang = self._portal_mall(mall_code), language(request.args)
        # each view asks resolution: counted with the status look-ups, against a flood from one address
        self.address_limits(
            request, "lookups", self.policy.current.rules["portal"]["per_address_per_minute"]["lookups"]
        )
        found = ask(self.access, self.resolution.batch_notices, mall.id)["items"]
        published = [{**n, "published_at": datetime.fromisoformat(n["published_at"])} for n in found]
        return portal.respond(200, notices.page(self.public_base_url, lang, mall, published))

    def _portal_mall(self, code):
        """The mall of a portal address (its code, in any case): NotFound, a page, for none."""
        mall = next((m for m in self.policy.current.malls.malls.values() if m.code == code.upper()), None)
        if mall is None:
            raise NotFound(f"no mall {code}")
        return mall

    @staticmethod
    def _portal_form_in(mall, entered):
        """The form's fields loaded (PortalFormIn), the shop one of the mall's: every problem at once."""
        problems = PortalFormIn().validate(entered)
        if entered.get("merchant") and entered["merchant"] not in {m["id"] for m in mall.merchants}:
            problems["merchant"] = ["Not one of the mall's merchants."]
        if problems:
            raise ValidationError(problems)
        return PortalFormIn().load(entered)

    def _portal_form(self, mall, lang, ref, entered=None, problems=()):
        minutes = self.policy.current.acknowledgement_rule(mall.id, "web")["minutes"]
        return portal.form(self.public_base_url, lang, mall, minutes, ref, entered, problems)

    def _case_of(self, doc):
        """The complaint's case as resolution has it (None before it opens, or for a complaint
        not taken up), and whether it could not be read just now (the page says so)."""
        if doc["status"] == "rejected":
            return None, False
        try:
            return ask(self.access, self.resolution.get_case, doc["_id"]), False
        except RemoteError as exc:
            if exc.exc_type == "NotFound":
                return None, False
            log.warning("%s: resolution's case not read for its status page: %s", doc["_id"], exc.exc_type)
        except (Unavailable, UnknownService) as exc:
            log.warning("%s: resolution's case not read for its status page: %s", doc["_id"], type(exc).__name__)
        return None, True

    # --- channels that come in by themselves (R7.2) --------------------------------------------

    @http(
        Op(
            "GET",
            "/channels/wechat/<string:mall_id>",
            "WeChat's check of the mall's callback URL: echostr back "
            "when the query is signed with the mall's official account token (403 otherwise).",
            responses={200: "text/plain"},
            errors=(403,),
        )
    )
    def wechat_url_check(self, request, mall_id):
        wechat.check_signature(self._wechat_token(mall_id), request.args, self.clock())
        return Response(request.args.get("echostr", ""), mimetype="text/plain")

    @http(
        Op(
            "POST",
            "/channels/wechat/<string:mall_id>",
            "A message to the mall's official account (plain-text "
            "mode, signed in the query): a text registers a complaint on the wechat channel (the same MsgId again "
            "finds it), answered by a passive reply with its number.",
            responses={200: ("application/xml", "text/plain")},
            errors=(400, 403, 413),
        )
    )
    def wechat_message(self, request, mall_id):
        wechat.check_signature(self._wechat_token(mall_id), request.args, self.clock())  # before the body is read
        message = wechat.read_message(read_body(request, wechat.MAX_BODY_BYTES))
        if message["ToUserName"] != self.policy.current.rules["wechat"][mall_id]["account"]:
            raise Forbidden(f"a message to {message['ToUserName']}, not to {mall_id}'s official account")
        caller, now = self.access.channel_adapter(mall_id, "wechat"), self.clock()
        text = wechat.take(
            message,
            mall_id,
            self.policy.current.malls.get(mall_id).name,
            now,
            lambda complaint: self._register(caller, complaint)[0],
        )
        if text is None:
            return Response(wechat.SUCCESS, mimetype="text/plain")
        return Response(wechat.reply(message, text, now), mimetype="application/xml")

    @leased_timer(
        mailbox.WAIT_SECONDS,
        lease="mailboxes",
        ttl=mailbox.lease_time,
        entrypoint=mailbox.MailboxTimer,
        otherwise=mailbox.hand_over,
    )
    def read_mailboxes(self, lease):
        """A round over the malls' complaint mailboxes (intake.mailbox)."""
        self.mailboxes.round(
            self.policy.current.rules["mailboxes"], self.secrets, self._take_mail, lambda: lease.held(self.clock())
        )

    def _take_mail(self, mall_id, mail, received_at):
        caller = self.access.channel_adapter(mall_id, "email")
        mailbox.take(
            mail,
            mall_id,
            received_at,
            now=self.clock(),
            store=self.store,
            register=lambda complaint: self._register(caller, complaint),
            apply_reply=lambda number, decide: change(
                self.store.complaints,
                number,
                decide,
                self.dispatch,
                self.name,
                self.clock,
                "complaint",
                f"{number} kept changing while a reply was added",
            ),
        )

    def _wechat_token(self, mall_id):
        account = self.policy.current.rules["wechat"].get(mall_id)
        if account is None:
            raise NotFound(f"no WeChat official account is set up for {mall_id}")
        return self.secrets(account["token"])

    def _register(self, caller, data):
        complaint = ComplaintIn().load(data)
        caller.require("complaint.register", complaint["mall_id"])
        if caller.channel and complaint["channel"] != caller.channel:
            raise Forbidden(f"{caller.user} submits for the {caller.channel} channel only")
        now, policy = self.clock(), self.policy.current
        rules.check_mall_and_times(complaint, policy.malls, now)
        channel_ref = complaint.get("channel_ref")
        mall = policy.malls.get(complaint["mall_id"])
        settings = policy.review(mall.id)
        received_at = complaint.get("received_at", now)
        ref = rules.customer_ref(self.customer_ref_secret, complaint["customer"])
        fp = rules.fingerprint(mall.id, ref, complaint["description"])
        duplicate_of = self.store.find_duplicate(fp, received_at - timedelta(hours=settings["duplicate_window_hours"]))
        local_day = mall.calendar.local(received_at).date()
        # Only now, with the whole complaint valid (input gate, schema, mall and times), is a
        # number taken: a refused body takes none. A resubmission (same channel_ref) is found
        # by the insert's unique index, not by a look-up first: its number is left unused.
        number = rules.complaint_number(mall.code, local_day, self.store.next_number(f"{mall.code}-{local_day}"))
        doc, event = rules.new_complaint(
            number,
            complaint,
            policy=policy,
            ref=ref,
            fp=fp,
            now=now,
            rejection=rules.review(complaint, settings, now, duplicate_of),
        )
        doc.update(new_outbox(event, now))
        try:
            self.store.insert(doc)
        except self.store.DuplicateChannelRef:
            if not channel_ref:
                raise
            existing = self.store.find_by_channel_ref(complaint["channel"], channel_ref)
            if existing["mall_id"] != mall.id:
                raise Conflict(f"channel_ref {channel_ref} was used for another mall's complaint") from None
            COMPLAINTS.labels(mall.id, complaint["channel"], "resubmitted").inc()
            return existing, False
        COMPLAINTS.labels(mall.id, doc["channel"], doc["status"]).inc()
        publish_pending(self.store.complaints, self.dispatch, self.name, now, [doc])
        return doc, True

    def _case_changed(self, event, state):
        at = as_stored(event["occurred_at"])

        def apply(doc, now):
            changes = rules.case_state_change(doc, state, at)
            return None if changes is None else ({"$set": changes}, [])

        change(
            self.store.complaints,
            event["complaint_no"],
            apply,
            self.dispatch,
            self.name,
            self.clock,
            "complaint",
            f"{event['complaint_no']} kept changing while {event['event_type']} was applied",
        )

    def _acknowledge(self, caller, number, data):
        ack = AcknowledgementIn().load(data)
        ack["acknowledged_by"] = caller.user  # who told the customer is who signed in, not what the body says
        doc = self.store.get(number)
        caller.require("complaint.acknowledge", doc["mall_id"])
        if doc["status"] == "rejected":
            raise Conflict(f"{number} was rejected ({doc['rejection']['reason']}); there is nothing to acknowledge")
        if doc["status"] == "acknowledged":
            return doc
        now = self.clock()
        return self._record_acknowledgement(number, *rules.acknowledgement(doc, ack, now), now)

    def _record_acknowledgement(self, number, record, event, now):
        """The first acknowledgement, with its event; one made concurrently stands if it was first."""
        updated = self.store.acknowledge(number, record, event, now)
        if updated is None:  # acknowledged concurrently: the first record stands
            return self.store.get(number)
        publish_pending(self.store.complaints, self.dispatch, self.name, now, [updated])
        return updated
