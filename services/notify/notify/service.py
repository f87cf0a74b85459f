"""Notify: every message that leaves the system for a customer (R1.2, R3.2, R3.3, R3.7,
R4.1, R7.1), each tracked until a gateway accepted it or it finally failed.

Events make messages: intake's complaint_registered the acknowledgement, resolution's
time_promised the expected time, case_proposed the written answer (with the appeal
route when it differs from what the customer asked), execution_task_done each executed
remedy, feedback's revisit_scheduled (by SMS or app) the revisit request with its answer
link; resolution's merchant_reply_requested (R7.5) a message to the merchant a tenant's case
was sent to, at its contact in the mall registry, with the link to the case on resolution's
merchant API. One message per complaint, kind and ref, however often an event comes again.

A message goes by the channel the complaint came in on (the policy's routes), when the
mall's quiet hours allow, through that channel's gateway (notify.gateways). The contact
is read from intake at each attempt through its audited read for `customer.notify`, and
kept nowhere: not in the message, its events or the log. A gateway that is down
(Temporary) is tried again with back-off by a leased timer; a refusal, or the last
attempt, ends in message_failed, which resolution puts on the case's timeline and staff
list at GET /messages/failed. message_sent tells intake (an acknowledgement meets its
clock) and resolution (the timeline).

Two kinds go to staff, not the customer (R7.7, R7.13): resolution's case_lead_assigned tells a
high-risk case's operations or legal lead, by e-mail at work in the mall's language, read
from resolution's staff directory at each attempt (`staff_contact`, for `staff.notify`);
analytics' report_issued gives a member of a mall's management or a department's head the
month's report (or their department's part), likewise.
R7.6: a published batch check's result goes to every customer who complained of the batch.
"""

import logging
from datetime import timedelta

import eventlet
from nameko.exceptions import RemoteError
from nameko.rpc import RpcProxy
from prometheus_client import Counter

from mallcare_common.base import Service
from mallcare_common.contracts import COMPLAINT_REGISTERED, read_event
from mallcare_common.contracts import analytics as report_events
from mallcare_common.contracts import feedback as revisit_events
from mallcare_common.contracts import resolution as case_events
from mallcare_common.messaging import event_handler, outbox_dispatcher, publish_pending
from mallcare_common.mongo import leased_timer
from mallcare_common.openapi import Op
from mallcare_common.operations import operation
from mallcare_common.policy import PolicyFiles
from mallcare_common.rpc import ask
from mallcare_common.unit_of_work import write

from . import rules
from .gateways import GatewayError, Outgoing, Refused
from .policy import load_policy
from .schemas import FailedQuery, MessageList, MessageOut, MessagesQuery
from .senders import Gateways
from .storage import Messages

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "mallcare_notify_messages_total",
    "Message attempts' outcomes by mall, channel and kind: sent, retry (failed for now), failed "
    "(for good), held (quiet hours), cancelled.",
    ["mall_id", "channel", "kind", "outcome"],
)

SEND_INTERVAL = 5  # seconds between looks for messages due (a retry, the end of quiet hours, a revisit)
SEND_SECONDS = 30  # a gateway's send given up after this (each gateway has its own, shorter, timeout)
DUE_BATCH = 100  # messages one look attempts at most
NOT_SEEN_PAUSE = 2  # seconds before an event about a complaint not seen anywhere yet is retried


class ComplaintNotSeenYet(Exception):
    """An event about a complaint notify cannot find, here or at intake: retried."""


class NotifyService(Service):
    name = "notify"

    store = Messages()
    policy = PolicyFiles("notify.yml", load_policy)
    dispatch = outbox_dispatcher()
    gateway = Gateways()
    intake = RpcProxy("intake")
    resolution = RpcProxy("resolution")
    feedback = RpcProxy("feedback")

    # --- events: each one a message ----------------------------------------------------------

    @event_handler(COMPLAINT_REGISTERED.source, COMPLAINT_REGISTERED.name)
    def handle_complaint_registered(self, body):
        """R1.2, R7.1: the acknowledgement, by the channel the complaint came in on, within
        its deadline (quiet hours give way to it)."""
        event = read_event(body, COMPLAINT_REGISTERED)
        payload, policy = event["payload"], self.policy.current
        language = rules.language_of(
            payload["description"], policy.language(event["mall_id"]), policy.rules["languages"]
        )
        complaint = self.store.keep_complaint(
            event["complaint_no"],
            event["mall_id"],
            payload["channel"],
            language,
            reachable=payload["customer"]["ref"] is not None,
        )
        self._new(
            "acknowledgement",
            "1",
            complaint,
            deadline=payload["ack_due_at"],
            detail={"received_at": payload["received_at"]},
        )

    @event_handler(case_events.TIME_PROMISED.source, case_events.TIME_PROMISED.name)
    def handle_time_promised(self, body):
        """R3.2: the time the handler promised; a later promise is a message of its own."""
        event = read_event(body, case_events.TIME_PROMISED)
        expected_by = event["payload"]["expected_by"]
        self._new(
            "promise", rules.promise_ref(expected_by), self._complaint(event), detail={"expected_by": expected_by}
        )

    @event_handler(case_events.CASE_PROPOSED.source, case_events.CASE_PROPOSED.name)
    def handle_case_proposed(self, body):
        """R3.3, R3.6: the answer in writing, its text read from the case when it goes."""
        event = read_event(body, case_events.CASE_PROPOSED)
        number = event["payload"]["proposal_no"]
        self._new("answer", str(number), self._complaint(event), detail={"proposal_no": number})

    @event_handler(case_events.EXECUTION_TASK_DONE.source, case_events.EXECUTION_TASK_DONE.name)
    def handle_execution_task_done(self, body):
        """R3.7: each remedy carried out (a refund, a voucher), not the mall's own tasks."""
        event = read_event(body, case_events.EXECUTION_TASK_DONE)
        task = event["payload"]
        if task["kind"] in self.policy.current.rules["execution_kinds"]:
            self._new("execution", str(task["task_id"]), self._complaint(event), detail={"task_id": task["task_id"]})

    @event_handler(case_events.MERCHANT_REPLY_REQUESTED.source, case_events.MERCHANT_REPLY_REQUESTED.name)
    def handle_merchant_reply_requested(self, body):
        """R7.5: the merchant is told of the tenant's case sent to it and by when it must reply."""
        event = read_event(body, case_events.MERCHANT_REPLY_REQUESTED)
        sent = event["payload"]
        self._new(
            "merchant_request",
            str(sent["request_id"]),
            self._complaint(event),
            channel=self.policy.current.rules["merchants"]["channel"],
            deadline=sent["due_at"],
            detail={"merchant_id": sent["merchant_id"], "due_at": sent["due_at"]},
        )

    @event_handler(case_events.BATCH_RESULT_PUBLISHED.source, case_events.BATCH_RESULT_PUBLISHED.name)
    def handle_batch_result_published(self, body):
        """R7.6: every customer who complained of the batch is told the result of its check."""
        event = read_event(body, case_events.BATCH_RESULT_PUBLISHED)
        result = event["payload"]
        detail = {**result["product"], "summary": result["summary"]}
        for number in result["complaint_nos"]:
            complaint = self._complaint({**event, "complaint_no": number})
            self._new("batch_result", event["complaint_no"], complaint, detail=detail)

    @event_handler(revisit_events.REVISIT_SCHEDULED.source, revisit_events.REVISIT_SCHEDULED.name)
    def handle_revisit_scheduled(self, body):
        """R4.1: a revisit by SMS or app message is a message with the answer link, sent at
        the time feedback scheduled it (a phone call is staff's)."""
        event = read_event(body, revisit_events.REVISIT_SCHEDULED)
        revisit = event["payload"]
        if revisit["way"] not in ("sms", "app_message"):
            return
        self._new(
            "revisit",
            str(revisit["round"]),
            self._complaint(event),
            not_before=revisit["scheduled_at"],
            deadline=revisit["due_at"],
            by_sms=revisit["way"] == "sms",
            detail={"revisit_id": revisit["revisit_id"]},
        )

    @event_handler(revisit_events.SURVEY_SENT.source, revisit_events.SURVEY_SENT.name)
    def handle_survey_sent(self, body):
        """R7.12: a periodic satisfaction survey with its link, by SMS or app message, within
        the quiet hours' rules (no deadline overrides them)."""
        event = read_event(body, revisit_events.SURVEY_SENT)
        survey = event["payload"]
        self._new(
            "survey",
            survey["month"],
            self._complaint(event),
            by_sms=survey["way"] == "sms",
            detail={"survey_id": survey["survey_id"]},
        )

    @event_handler(case_events.CASE_LEAD_ASSIGNED.source, case_events.CASE_LEAD_ASSIGNED.name)
    def handle_case_lead_assigned(self, body):
        """R7.7: a high-risk case's lead is told at once; a mall with no one of the role on
        record has nobody to tell (the case's timeline says so)."""
        event = read_event(body, case_events.CASE_LEAD_ASSIGNED)
        lead = event["payload"]
        if lead["lead_id"] is None:
            return
        policy = self.policy.current
        complaint = {
            **self._complaint(event),
            "reachable": True,  # the lead is, whatever the customer left
            "language": policy.language(event["mall_id"]),
        }
        self._new(
            "lead",
            lead["lead_id"],
            complaint,
            channel=rules.STAFF_CHANNEL,
            detail={"staff_id": lead["lead_id"], "role": lead["lead_role"]},
        )

    @event_handler(report_events.REPORT_ISSUED.source, report_events.REPORT_ISSUED.name)
    def handle_report_issued(self, body):
        """R7.13: the month's report, or a department's part of it, to a member of the mall's
        management or a department's head, by e-mail at work in the mall's language: its
        figures and the link to the page. One message per copy (its part and recipient)."""
        event = read_event(body, report_events.REPORT_ISSUED)
        issued, policy = event["payload"], self.policy.current
        report = {
            "_id": event["complaint_no"],  # the report's number: SHXJH-RPT-2026-11
            "mall_id": event["mall_id"],
            "channel": None,
            "reachable": True,
            "language": policy.language(event["mall_id"]),
        }
        self._new(
            "report",
            issued["delivery_id"].split(":", 1)[1],
            report,
            channel=rules.STAFF_CHANNEL,
            detail={k: issued[k] for k in ("staff_id", "role", "part", "department", "period", "link", "figures")},
        )

    @event_handler(revisit_events.REVISIT_CANCELLED.source, revisit_events.REVISIT_CANCELLED.name)
    def handle_revisit_cancelled(self, body):
        """The case was reopened or closed before the request went: it is not sent."""
        event = read_event(body, revisit_events.REVISIT_CANCELLED)
        self._cancel_revisit(event["payload"]["revisit_id"], "revisit cancelled: " + event["payload"]["reason"])

    @event_handler(revisit_events.REVISIT_DONE.source, revisit_events.REVISIT_DONE.name)
    def handle_revisit_done(self, body):
        """The customer answered (staff reached them by phone) before the request went."""
        event = read_event(body, revisit_events.REVISIT_DONE)
        self._cancel_revisit(event["payload"]["revisit_id"], "revisit done: " + event["payload"]["outcome"])

    @leased_timer(SEND_INTERVAL, lease="send", ttl=timedelta(seconds=3 * SEND_INTERVAL))
    def send_due(self, lease):
        """Every message due (a retry, the end of the quiet hours, a revisit's time), in one
        replica at a time; the lease is renewed through a backlog."""
        for message in self.store.due(self.clock(), DUE_BATCH):
            if not lease.held(self.clock()):
                return
            self._attempt(message)

    # --- staff: the messages of a complaint, and those that failed ----------------------------

    @operation(
        Op(
            "GET",
            "/messages",
            "The messages to the customer about a complaint, in the order made: kind, "
            "channel, status and each attempt (never the contact).",
            "message.read",
            query=MessagesQuery,
            responses={200: MessageList},
        )
    )
    def complaint_messages(self, query):
        caller = self.access.caller()
        query = MessagesQuery().load(query)
        items = self.store.of_complaint(query["complaint_no"])
        caller.require("message.read", items[0]["mall_id"] if items else None)
        return {"items": MessageOut(many=True).dump(items)}

    @operation(
        Op(
            "GET",
            "/messages/failed",
            "Messages that finally failed, the latest first: a person follows each up.",
            "message.read",
            query=FailedQuery,
            responses={200: MessageList},
        )
    )
    def failed_messages(self, query):
        caller = self.access.caller()
        query = FailedQuery().load(query)
        mall_id = caller.list_mall("message.read", query.get("mall_id"))
        return {"items": MessageOut(many=True).dump(self.store.failed(mall_id, query["limit"]))}

    # --- a message's life ---------------------------------------------------------------------

    def _new(self, kind, ref, complaint, *, by_sms=False, channel=None, **settings):
        """The message once (a redelivered event finds it), tried at once when it is due."""
        message = rules.new_message(
            kind,
            ref,
            complaint,
            self.policy.current,
            self.clock(),
            channel=channel or ("sms" if by_sms else None),
            **settings,
        )
        if message is None or not self.store.insert_new(self.store.messages, message):
            return
        if message["next_attempt_at"] <= self.clock():
            self._attempt(message)

    def _attempt(self, message):
        """Claim the message (compare-and-set: one attempt at a time, whoever else looks),
        send it, and write the outcome with its event."""
        claimed = write(self.store.messages, message, {"$set": rules.claim(self.clock())}, [], self.clock())
        if claimed is None:
            return  # another worker or replica took it
        changes, out = self._send(claimed)
        now = self.clock()
        updated = write(self.store.messages, claimed, {"$set": changes}, out, now)
        if updated is None:
            log.warning(
                "%s: changed during its attempt; its outcome (%s) was not written", claimed["_id"], changes["status"]
            )
            return
        outcome = (
            "held"
            if len(updated["attempts"]) == len(claimed["attempts"]) and changes["status"] == "retry"
            else updated["status"]
        )
        MESSAGES.labels(updated["mall_id"], updated["channel"] or updated["route"], updated["kind"], outcome).inc()
        log.info(
            "%s: %s by %s after %d attempt(s)",
            updated["_id"],
            outcome,
            updated["channel"] or "no channel",
            len(updated["attempts"]),
        )
        publish_pending(self.store.messages, self.dispatch, self.name, now, [updated])

    def _send(self, message):
        """One attempt: (changes, events). Never raises for another service's or a gateway's
        fault: those are retried; a refusal or the last attempt fails the message."""
        policy = self.policy.current
        try:
            contact = self._contact(message, policy)
        except RemoteError as exc:
            if exc.exc_type == "Gone":  # anonymised by retention: nobody to tell any more
                return rules.failed(message, None, None, "contact_gone", exc.value, self.clock())
            if exc.exc_type == "NotFound" and "staff_id" in message["detail"]:  # left the directory
                return rules.failed(message, None, None, "no_contact", exc.value, self.clock())
            return rules.temporary(message, None, None, f"intake: {exc.exc_type}: {exc.value}", policy, self.clock())
        except Exception as exc:  # intake did not answer: tried again later
            return rules.temporary(message, None, None, f"intake: {exc}", policy, self.clock())
        channel = contact and rules.channel_for(message["route"], contact, policy.rules["fallback"])
        if not channel:
            return rules.failed(
                message,
                None,
                None,
                "no_contact",
                f"the {'merchant' if message['kind'] in rules.MERCHANT_KINDS else 'customer'} has no contact "
                f"a {message['route']} message can go to",
                self.clock(),
            )
        later = rules.held(message, channel, policy, self.clock())
        if later is not None:  # a fallback channel in its quiet hours
            return later, []
        try:
            values = self._values(message, policy, contact)
            rendered = None if values is None else rules.render(message, channel, values, policy)
        except Exception as exc:  # the case or revisit could not be read, or a text not made: tried again later
            return rules.temporary(message, channel, None, f"{type(exc).__name__}: {exc}", policy, self.clock())
        if rendered is None:
            return rules.moot(f"the {message['kind']} is no longer open", self.clock()), []
        outgoing = Outgoing(
            message_id=message["_id"],
            channel=channel,
            to=contact[rules.CONTACTS[channel]],
            text=rendered.text,
            subject=rendered.subject,
            html=rendered.html,
            complaint_no=message["complaint_no"],
        )
        name = policy.gateway(message["mall_id"], channel)["kind"]
        try:
            with eventlet.Timeout(SEND_SECONDS):
                receipt = self.gateway(policy.gateway(message["mall_id"], channel)).send(outgoing)
        except Refused as exc:
            return rules.failed(message, channel, name, "refused", str(exc), self.clock())
        except (GatewayError, eventlet.Timeout) as exc:  # Temporary, or a gateway that hung
            return rules.temporary(message, channel, name, str(exc) or "timed out", policy, self.clock())
        except Exception as exc:  # a fault in a gateway or its settings (a secret not set): an operator's, retried
            log.warning("%s: gateway %s failed: %s", message["_id"], name, type(exc).__name__)
            return rules.temporary(message, channel, name, f"{type(exc).__name__}: {exc}", policy, self.clock())
        return rules.accepted(message, channel, receipt.gateway, receipt.provider_id, self.clock())

    def _contact(self, message, policy):
        """Where the message goes, read now: a merchant's contact from the mall registry (R7.5),
        a lead's work address from resolution's staff directory (R7.7), else the customer's
        contact through intake's audited read."""
        if message["kind"] in rules.MERCHANT_KINDS:
            return rules.merchant_contact(message, policy)
        staff_id = message["detail"].get("staff_id")
        if staff_id:
            staff = ask(self.access, self.resolution.staff_contact, staff_id)
            return {"email": staff["email"], "name": staff["name"]}
        return ask(
            self.access,
            self.intake.complaint_contact,
            message["complaint_no"],
            {"purpose": f"notify {message['kind']}"},
        )["customer"]

    def _values(self, message, policy, contact):
        """What the message's templates are given, with the case, revisit or survey it needs
        read now (the text as it stands when it goes); None for a revisit or survey no longer open."""
        if message["kind"] in rules.STAFF_KINDS:
            return rules.context({**message, "detail": {**message["detail"], "name": contact["name"]}}, policy)
        if message["kind"] in ("answer", "execution"):
            case = ask(self.access, self.resolution.get_case, message["complaint_no"])
            return rules.context(message, policy, case=case)
        if message["kind"] == "revisit":
            revisit = ask(self.access, self.feedback.get_revisit, message["detail"]["revisit_id"])
            if revisit["answer_link"] is None:
                return None
            return rules.context(message, policy, revisit=revisit)
        if message["kind"] == "survey":
            survey = ask(self.access, self.feedback.get_survey, message["detail"]["survey_id"])
            return None if survey["answer_link"] is None else rules.context(message, policy, survey=survey)
        return rules.context(message, policy)

    def _cancel_revisit(self, revisit_id, reason):
        for message in self.store.open_revisit_messages(revisit_id):
            now = self.clock()
            changes = rules.cancelled(message, reason, now)
            if changes is not None and write(self.store.messages, message, {"$set": changes}, [], now) is not None:
                MESSAGES.labels(message["mall_id"], message["route"], message["kind"], "cancelled").inc()

    def _complaint(self, event):
        """What notify keeps of the event's complaint; from intake when its registration came
        before notify's queue existed (or is still on its way)."""
        number = event["complaint_no"]
        complaint = self.store.complaint(number)
        if complaint is not None:
            return complaint
        try:
            record = ask(self.access, self.intake.get_complaint, number)
        except Exception as exc:  # not at intake either, or intake did not answer: retried
            eventlet.sleep(NOT_SEEN_PAUSE)
            raise ComplaintNotSeenYet(f"{number}: not seen, and intake did not give it: {exc!r}") from exc
        policy = self.policy.current
        language = rules.language_of(
            record["description"], policy.language(record["mall_id"]), policy.rules["languages"]
        )
        return self.store.keep_complaint(
            number, record["mall_id"], record["channel"], language, reachable=bool(record["customer"]["reachable_by"])
        )
