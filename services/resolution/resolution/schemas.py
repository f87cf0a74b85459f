"""What resolution's HTTP and RPC accept and return. Amounts go in as yuan (a
number or a string with at most two decimals) and come out as strings with two
decimals ("39.90"); inside they are integer fen."""

import decimal
from datetime import datetime

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from mallcare_common import audit
from mallcare_common.auth import STAFF_ROLES
from mallcare_common.contracts.resolution import (
    BATCH_VERDICTS,
    DECISION_BASES,
    DECISIONS,
    FINDING_SOURCES,
    MEDIATION_RESULTS,
    MEDIATORS,
    STATES,
)
from mallcare_common.openapi import Op
from mallcare_common.personal import MaskedCustomer, MaskedOut

from .policy import REMEDIES, fen

_id = dict(required=True, validate=validate.Length(min=1, max=20))
_text = dict(required=True, validate=validate.Length(min=1, max=2000))
_number = dict(required=True, strict=True, validate=validate.Range(min=1))
CONTACT_WAYS = ("desk", "phone", "sms", "app", "wechat", "email", "letter")


class _Yuan(fields.Decimal):
    """A yuan amount with at most two decimals (more is refused, not rounded)."""

    def _format_num(self, value):
        amount = decimal.Decimal(str(value))
        if amount.is_finite() and amount.as_tuple().exponent < -2:
            raise ValidationError("At most two decimals (fen).")
        return super()._format_num(value)


def _yuan(**kwargs):
    return _Yuan(places=2, validate=validate.Range(min=0, max=10_000_000), **kwargs)


class ActionIn(Schema):
    """Every action names who acts and may carry a request id: a retried request
    with the same id changes nothing and returns the case as it is."""

    by = fields.String(**_id, metadata={"description": "employee number (over HTTP: the X-Staff-Id header)"})
    request_id = fields.String(validate=validate.Length(min=1, max=64))


class FindingIn(ActionIn):
    source = fields.String(required=True, validate=validate.OneOf(FINDING_SOURCES))
    summary = fields.String(**_text)
    attachment_ref = fields.String(validate=validate.Length(max=200))


class PromiseIn(ActionIn):
    expected_by = fields.AwareDateTime(required=True)
    via = fields.String(required=True, validate=validate.OneOf(CONTACT_WAYS))


class NoteIn(ActionIn):
    """A note; a customer_contact note records that the handler spoke with the customer
    (the first response, R2.3) and says how."""

    kind = fields.String(required=True, validate=validate.OneOf(("customer_contact", "internal")))
    text = fields.String(**_text)
    via = fields.String(
        validate=validate.OneOf(CONTACT_WAYS),
        metadata={"description": "how the customer was contacted (customer_contact notes only)"},
    )

    @validates_schema
    def _via_with_contact(self, data, **kwargs):
        if data.get("kind") == "customer_contact" and "via" not in data:
            raise ValidationError("How was the customer contacted? (one of " + ", ".join(CONTACT_WAYS) + ")", "via")
        if data.get("kind") == "internal" and "via" in data:
            raise ValidationError("Only a customer_contact note says how the customer was contacted.", "via")


class ReviewMeetingIn(ActionIn):
    responsible_department = fields.String(required=True, validate=validate.Length(min=1, max=64))
    owner_id = fields.String(
        validate=validate.Length(min=1, max=20), metadata={"description": "who in that department takes the case on"}
    )
    decision = fields.String(**_text)
    attendees = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), required=True, validate=validate.Length(min=1, max=50)
    )


class RemedyIn(Schema):
    type = fields.String(required=True, validate=validate.OneOf(REMEDIES))
    amount = _yuan(required=True)
    note = fields.String(validate=validate.Length(max=500))

    @validates_schema
    def _apology_is_free(self, data, **kwargs):
        if data.get("type") == "apology_letter" and data.get("amount"):
            raise ValidationError("An apology letter has no amount.", "amount")

    @post_load
    def _to_fen(self, data, **kwargs):
        return {"type": data["type"], "amount_fen": fen(data["amount"]), "note": data.get("note")}


class _Decision(ActionIn):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    reasons = fields.List(
        fields.String(validate=validate.Length(min=1, max=1000)),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "why: the law, the customer's expectation, compromise, fairness"},
    )
    bases = fields.List(
        fields.String(validate=validate.OneOf(DECISION_BASES)),
        load_default=list,
        validate=validate.Length(max=len(DECISION_BASES)),
        metadata={"description": "R7.9: what the decision rests on, one or more of " + ", ".join(DECISION_BASES)},
    )
    remedies = fields.List(fields.Nested(RemedyIn), required=True, validate=validate.Length(max=20))
    legal_basis = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "a key of the policy's statutory rules, e.g. food_safety"},
    )
    promotion = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "R7.8: how the goods were sold, a kind of the policy's promotion rules (promotion, "
            "clearance, gift); none: at the usual price"
        },
    )
    price = _yuan(metadata={"description": "price paid for the goods involved"})
    demanded_amount = _yuan(metadata={"description": "what the customer asked for, in money"})

    @post_load
    def _to_fen(self, data, **kwargs):
        for name, target in (("price", "price_fen"), ("demanded_amount", "demanded_fen")):
            if name in data:
                data[target] = fen(data.pop(name))
        return data


class ProposalIn(_Decision):
    cap_override_reason = fields.String(
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "needed for remedies above the caps; only a cap_override role can approve them"},
    )


class SpotResolutionIn(_Decision):
    summary = fields.String(**_text)
    text = fields.String(validate=validate.Length(max=2000))
    signature_ref = fields.String(validate=validate.Length(min=1, max=100))


class ProposalRef(ActionIn):
    proposal_no = fields.Integer(**_number)


class SignOffIn(ProposalRef):
    """R7.7: a high-risk case's lead signs off the answer before the customer gets it."""

    note = fields.String(validate=validate.Length(max=2000))


class ReplyIn(ProposalRef):
    oral = fields.Boolean(required=True, metadata={"description": "the answer was given orally"})
    text = fields.String(validate=validate.Length(max=4000))


class ObjectionIn(ProposalRef):
    points = fields.List(
        fields.String(validate=validate.Length(min=1, max=1000)), required=True, validate=validate.Length(min=1, max=20)
    )


class ReferralIn(ActionIn):
    """R7.9: the case goes to a third party (or the third party tells us it has it)."""

    mediator = fields.String(required=True, validate=validate.OneOf(MEDIATORS))
    reference = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "the third party's own number, e.g. 12315's"}
    )
    referred_at = fields.AwareDateTime(metadata={"description": "when it was referred (default: now); not later"})
    note = fields.String(validate=validate.Length(max=2000))


class MediationOutcomeIn(ActionIn):
    referral_id = fields.Integer(**_number)
    result = fields.String(required=True, validate=validate.OneOf(MEDIATION_RESULTS))
    decided_at = fields.AwareDateTime(
        metadata={"description": "when the third party decided (default: now); not before the referral"}
    )
    summary = fields.String(**_text)
    amount = _yuan(metadata={"description": "what was agreed or awarded, in money"})

    @post_load
    def _to_fen(self, data, **kwargs):
        if "amount" in data:
            data["amount_fen"] = fen(data.pop("amount"))
        return data


class EscalationIn(ActionIn):
    reason = fields.String(required=True, validate=validate.OneOf(("manual", "breach")))
    note = fields.String(validate=validate.Length(max=2000))


class TaskDoneIn(ActionIn):
    task_id = fields.Integer(**_number)
    note = fields.String(validate=validate.Length(max=2000))
    signature_ref = fields.String(validate=validate.Length(min=1, max=100))


class SummaryIn(ActionIn):
    summary = fields.String(**_text)


class ReasonIn(ActionIn):
    reason = fields.String(**_text)


class RectificationIn(ActionIn):
    kind = fields.String(required=True, validate=validate.Length(min=1, max=64))
    description = fields.String(**_text)
    owner_id = fields.String(**_id)
    working_days = fields.Integer(load_default=3, strict=True, validate=validate.Range(min=1, max=365))


class RectificationDoneIn(ActionIn):
    rectification_id = fields.Integer(**_number)
    evidence = fields.String(**_text)


# --- R7.5 a tenant's case with its merchant ----------------------------------------------------


class MerchantRequestIn(ActionIn):
    note = fields.String(
        **_text, metadata={"description": "what merchant relations asks of the merchant (evidence, a reply)"}
    )


class EvidenceIn(Schema):
    ref = fields.String(
        required=True,
        validate=validate.Length(min=1, max=300),
        metadata={"description": "where the file is kept (a reference: the file itself is not sent here)"},
    )
    description = fields.String(validate=validate.Length(max=500))


class _MerchantIn(Schema):
    """What a merchant sends, signed in with its key (`by` is the key, whatever the body says)."""

    by = fields.String(required=True, validate=validate.Length(min=1, max=80))
    request_id = fields.String(validate=validate.Length(min=1, max=64))


class MerchantReplyIn(_MerchantIn):
    reply = fields.String(
        required=True,
        validate=validate.Length(min=1, max=4000),
        metadata={"description": "the merchant's final reply: a copy is kept on the case"},
    )
    evidence = fields.List(
        fields.Nested(EvidenceIn),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "whoever manages the thing at fault gives the evidence (谁管理、谁举证)"},
    )


class MerchantRectificationDoneIn(_MerchantIn):
    rectification_id = fields.Integer(**_number)
    evidence = fields.String(**_text)


class MerchantCaseQuery(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class CaseQuery(Schema):
    mall_id = fields.String(validate=validate.Length(max=64))
    owner_id = fields.String(validate=validate.Length(max=20))
    department = fields.String(validate=validate.Length(max=64))
    level = fields.String(validate=validate.Length(max=64))
    state = fields.String(validate=validate.OneOf(STATES))
    awaiting_approval_by = fields.String(
        validate=validate.OneOf(STAFF_ROLES),
        metadata={
            "description": "only cases whose proposal awaits approval by this role: the least senior one that may "
            "approve it at the case's grading and level now"
        },
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class RectificationQuery(Schema):
    mall_id = fields.String(
        validate=validate.Length(max=64),
        metadata={
            "description": "default: the caller's mall (every mall, chain-wide); staff of several malls name one"
        },
    )
    status = fields.String(load_default="open", validate=validate.OneOf(("open", "done")))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


# --- adverse events (R3.9) ---------------------------------------------------------------------


class Contact(Schema):
    name = fields.String(validate=validate.Length(max=64))
    phone = fields.String(validate=validate.Regexp(r"^\+?[0-9 -]{7,20}$"))
    email = fields.Email()


class IncidentPlace(Schema):
    """Where it happened (seed 003: 時間、地點): the area of the mall, and the tenant if in one."""

    area = fields.String(required=True, validate=validate.Length(min=1, max=100))
    merchant_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))


class IncidentIn(ActionIn):
    mall_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = fields.AwareDateTime(required=True, metadata={"description": "when it happened (seed 003)"})
    place = fields.Nested(IncidentPlace, required=True)
    description = fields.String(**_text)
    customer = fields.Nested(Contact, required=True)
    suggested_handling = fields.String(**_text)
    related_complaint_no = fields.String(validate=validate.Length(min=1, max=40))


class VerificationIn(ActionIn):
    confirmed = fields.Boolean(required=True)
    note = fields.String(**_text)


class HandlingIn(ActionIn):
    outcome = fields.String(**_text)
    improvements = fields.List(
        fields.String(validate=validate.Length(min=1, max=1000)), required=True, validate=validate.Length(min=1, max=20)
    )
    compensation = _yuan(load_default=0)

    @post_load
    def _to_fen(self, data, **kwargs):
        data["compensation_fen"] = fen(data.pop("compensation"))
        return data


class AgreementIn(ActionIn):
    """The handling plan put to the customer and whether they agreed (seed 003: 詢問客戶意見，確認處理方案)."""

    plan = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    agreed = fields.Boolean(required=True)
    via = fields.String(required=True, validate=validate.OneOf(CONTACT_WAYS))
    note = fields.String(validate=validate.Length(max=2000))


class CommunicationIn(ActionIn):
    via = fields.String(required=True, validate=validate.OneOf(CONTACT_WAYS))
    note = fields.String(validate=validate.Length(max=2000))


# --- batch checks (R7.6) -----------------------------------------------------------------------


class BatchHoldIn(ActionIn):
    note = fields.String(
        **_text, metadata={"description": "what was taken off the shelf, where and how much: 货架和仓库共下架42袋"}
    )


class BatchInspectionIn(ActionIn):
    finding = fields.String(**_text, metadata={"description": "what the inspection found"})
    attachment_ref = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "a report"})


class BatchResultIn(ActionIn):
    verdict = fields.String(required=True, validate=validate.OneOf(BATCH_VERDICTS))
    action = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z_]{1,40}$"),
        metadata={"description": "what was done with the batch: one resolution.yml's batch_checks.actions allows"},
    )
    summary = fields.String(
        **_text, metadata={"description": "the result as the mall's notice page and the batch's cases show it"}
    )


class BatchCheckQuery(Schema):
    mall_id = fields.String(
        validate=validate.Length(max=64),
        metadata={
            "description": "default: the caller's mall (every mall, chain-wide); staff of several malls name one"
        },
    )
    state = fields.String(validate=validate.OneOf(("open", "held", "inspected", "concluded", "published")))
    complaint_no = fields.String(validate=validate.Length(min=1, max=40), metadata={"description": "its case's"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class IncidentQuery(Schema):
    mall_id = fields.String(
        validate=validate.Length(max=64),
        metadata={
            "description": "default: the caller's mall (every mall, chain-wide); staff of several malls name one"
        },
    )
    state = fields.String(validate=validate.OneOf(("reported", "forwarded", "dismissed", "handled", "communicated")))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


# --- what comes out ----------------------------------------------------------------------------


class Yuan(fields.Field):
    """Integer fen out as a yuan string with two decimals."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$"}, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{value / 100:.2f}"


class Plain(fields.Field):
    """Free-form detail (timeline entries) with times as ISO-8601."""

    def _serialize(self, value, attr, obj, **kwargs):
        return _plain(value)


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _Entry(Schema):
    seq = fields.Integer()
    at = fields.AwareDateTime()
    by = fields.String()
    role = fields.String()
    action = fields.String()
    state = fields.String()
    detail = Plain()


class _Remedy(Schema):
    type = fields.String()
    amount = Yuan(attribute="amount_fen")
    note = fields.String(allow_none=True)


class _Compliance(Schema):
    total = Yuan(attribute="total_fen")
    compensation = Yuan(attribute="compensation_fen")
    legal_basis = fields.String(allow_none=True)
    law = fields.String(allow_none=True)
    statutory_compensation = Yuan(attribute="statutory_compensation_fen")
    statutory_total = Yuan(attribute="statutory_total_fen", allow_none=True)
    demand_above_statutory = fields.Boolean()
    promotion = Plain(
        allow_none=True,
        metadata={"description": "R7.8: kind of sale, regulation, and the rules applied with their text"},
    )
    breaches = fields.List(fields.String())
    warnings = fields.List(fields.String())


class _Approval(Schema):
    by = fields.String()
    role = fields.String()
    at = fields.AwareDateTime()


class _Proposal(Schema):
    no = fields.Integer()
    status = fields.String()
    decision = fields.String()
    reasons = fields.List(fields.String())
    bases = fields.List(fields.String(), metadata={"description": "R7.9: what the decision rests on"})
    remedies = fields.List(fields.Nested(_Remedy))
    price = Yuan(attribute="price_fen", allow_none=True)
    demanded_amount = Yuan(attribute="demanded_fen", allow_none=True)
    compliance = fields.Nested(_Compliance)
    cap_override_reason = fields.String(allow_none=True)
    approver_role = fields.String(allow_none=True, metadata={"description": "the least senior role that may approve"})
    approvals = fields.List(fields.Nested(_Approval))
    signed_off = fields.Nested(
        _Approval,
        allow_none=True,
        metadata={"description": "R7.7: a high-risk case's lead signed the answer off (null: not yet, or not needed)"},
    )
    proposed_by = fields.String()
    proposed_at = fields.AwareDateTime()
    level = fields.String()
    round = fields.Integer()
    sent = Plain(allow_none=True)
    policy_version = fields.String()


class _Task(Schema):
    id = fields.Integer()
    kind = fields.String()
    amount = Yuan(attribute="amount_fen")
    due_at = fields.AwareDateTime()
    signature_required = fields.Boolean()
    done = Plain(allow_none=True)


class _Rectification(Schema):
    id = fields.Integer()
    kind = fields.String()
    owner_id = fields.String(allow_none=True)
    merchant_id = fields.String(allow_none=True, metadata={"description": "R7.5: the merchant rectifies it"})
    description = fields.String()
    due_at = fields.AwareDateTime()
    done = Plain(allow_none=True)


class CaseOut(MaskedOut):
    # what people wrote on the case (the customer's name is not here: the case never holds it)
    free_text = (
        "review_meeting",
        "findings",
        "proposals",
        "objections",
        "escalations",
        "tasks",
        "rectifications",
        "merchant_requests",
        "resolution",
        "closure",
        "referrals",
        "timeline",
    )

    complaint_no = fields.String(attribute="_id")
    mall_id = fields.String()
    state = fields.String()
    round = fields.Integer()
    level = fields.String(metadata={"description": "the role the case is handled at (escalation level)"})
    channel = fields.String()
    category = fields.String(allow_none=True)
    risk_level = fields.String()
    risk_reasons = fields.List(fields.String(), metadata={"description": "triage's, by name"})
    lead = Plain(
        allow_none=True,
        metadata={
            "description": "R7.7: a high-risk case's accountable lead beside its owner: staff_id, name, role, "
            "because (the risk reasons or category that chose the role), assigned_at"
        },
    )
    urgency = fields.String()
    demand = Plain(
        allow_none=True,
        metadata={
            "description": "what the customer asks as triage read it: multiple, amount_fen, price_fen, mental_damages"
        },
    )
    department = fields.String()
    owner_id = fields.String(allow_none=True)
    merchant_id = fields.String(allow_none=True, metadata={"description": "the tenant the complaint is about"})
    received_at = fields.AwareDateTime()
    opened_at = fields.AwareDateTime()
    first_response_due_at = fields.AwareDateTime()
    resolution_due_at = fields.AwareDateTime()
    review_meeting = Plain(allow_none=True)
    expected_resolution = Plain(allow_none=True)
    findings = Plain()
    proposals = fields.List(fields.Nested(_Proposal))
    objections = Plain()
    escalations = Plain()
    tasks = fields.List(fields.Nested(_Task))
    rectifications = fields.List(fields.Nested(_Rectification))
    merchant_requests = Plain(
        metadata={
            "description": "R7.5 each time the case was sent to its merchant: id, merchant_id, note, sent_at, "
            "sent_by, due_at, status (awaiting, replied, taken_back), reply (at, by, text, evidence, "
            "within_deadline: the copy kept of its final reply), taken_back (at, by, reason)"
        },
    )
    merchant_access = fields.String(
        allow_none=True, metadata={"description": "the merchant the case is with now (it reads and answers it)"}
    )
    product = Plain(allow_none=True, metadata={"description": "R7.6: barcode and batch code, as triage read them"})
    batch_check_no = fields.String(
        allow_none=True, metadata={"description": "R7.6: the check of the goods' batch (GET /batch-checks/<number>)"}
    )
    resolution = Plain(allow_none=True)
    closure = Plain(
        allow_none=True,
        metadata={"description": "at, by, reason, without_answer (closed by rule: the customer could not be reached)"},
    )
    closure_by_rule = Plain(
        allow_none=True,
        metadata={
            "description": "the revisit ended unreachable: revisit_id, attempts, noted_at, close_at (when the case "
            "closes without an answer unless the customer answers first)"
        },
    )
    referrals = Plain(
        metadata={
            "description": "R7.9: third-party mediation: id, mediator, reference, referred_at, note, outcome "
            "(result, decided_at, summary, amount_fen) or null"
        }
    )
    policy_version = fields.String()
    anonymised_at = fields.AwareDateTime(allow_none=True)
    timeline = fields.List(fields.Nested(_Entry))


class RectificationOut(MaskedOut, _Rectification):
    free_text = ("description", "done")

    complaint_no = fields.String()
    mall_id = fields.String()


class _Handling(Schema):
    at = fields.AwareDateTime()
    by = fields.String()
    outcome = fields.String()
    improvements = fields.List(fields.String())
    compensation = Yuan(attribute="compensation_fen")
    within_deadline = fields.Boolean()


class IncidentOut(MaskedOut):
    # the report and the staff's notes on it, the incident's customer taken out by name too;
    # the report whole: GET /incidents/<number>/customer (audited)
    free_text = (
        "description",
        "suggested_handling",
        "verification",
        "agreements",
        "handling",
        "communication",
        "timeline",
    )

    number = fields.String(attribute="_id")
    mall_id = fields.String()
    state = fields.String()
    type = fields.String()
    description = fields.String()
    customer = MaskedCustomer()  # the full record: GET /incidents/<number>/customer (audited)
    suggested_handling = fields.String()
    related_complaint_no = fields.String(allow_none=True)
    reported_at = fields.AwareDateTime()
    reported_by = fields.String()
    occurred_at = fields.AwareDateTime(allow_none=True)
    place = fields.Nested(IncidentPlace, allow_none=True)
    forward_due_at = fields.AwareDateTime()
    verification = Plain(allow_none=True)
    regional_manager_id = fields.String(allow_none=True)
    handling_due_at = fields.AwareDateTime(allow_none=True)
    agreements = fields.List(Plain(), metadata={"description": "plans put to the customer and their answers, in order"})
    handling = fields.Nested(_Handling, allow_none=True)
    communicate_due_at = fields.AwareDateTime(allow_none=True)
    communication = Plain(allow_none=True)
    policy_version = fields.String()
    anonymised_at = fields.AwareDateTime(allow_none=True)
    timeline = fields.List(fields.Nested(_Entry))


class BatchCheckOut(MaskedOut):
    """R7.6: a product batch's check: its goods, its complaints, each step as taken."""

    free_text = ("hold", "inspect", "result", "timeline")

    number = fields.String(attribute="_id")
    mall_id = fields.String()
    state = fields.String()
    product = Plain(metadata={"description": "barcode and batch code"})
    complaint_nos = fields.List(fields.String(), metadata={"description": "every complaint of the batch"})
    opened_at = fields.AwareDateTime()
    due_at = fields.AwareDateTime(allow_none=True, metadata={"description": "the next step's deadline"})
    hold = Plain(allow_none=True, metadata={"description": "at, by, note, within_deadline"})
    inspect = Plain(allow_none=True, metadata={"description": "at, by, finding, attachment_ref, within_deadline"})
    result = Plain(allow_none=True, metadata={"description": "at, by, verdict, action, summary, within_deadline"})
    published = Plain(allow_none=True, metadata={"description": "at, by, within_deadline"})
    next_step = Plain(
        allow_none=True,
        metadata={"description": "the step it waits for: step, due_at, roles, departments (who may take it)"},
    )
    policy_version = fields.String()
    timeline = fields.List(fields.Nested(_Entry))


class BatchCheckList(Schema):
    items = fields.List(fields.Nested(BatchCheckOut), required=True, metadata={"description": "without timeline"})


class BatchNoticeOut(Schema):
    number = fields.String(required=True)
    product = Plain(required=True)
    verdict = fields.String(required=True)
    action = fields.String(required=True)
    summary = fields.String(required=True)
    published_at = fields.AwareDateTime(required=True)


class BatchNoticeList(Schema):
    """R7.6: a mall's published batch results, the latest first: what its public notice page shows."""

    items = fields.List(fields.Nested(BatchNoticeOut), required=True)


class MerchantCaseOut(MaskedOut):
    """A case as its merchant reads it (R7.5): the complaint with the customer masked, our
    requests and its replies, its rectifications; nothing of the mall's own handling."""

    free_text = ("complaint", "requests", "rectifications")

    complaint_no = fields.String(attribute="_id")
    mall_id = fields.String()
    merchant_id = fields.String()
    state = fields.String()
    category = fields.String(allow_none=True)
    received_at = fields.AwareDateTime()
    requests = Plain(metadata={"description": "what we asked, by when, and the merchant's reply"})
    rectifications = fields.List(fields.Nested(_Rectification))
    complaint = Plain(
        allow_none=True,
        metadata={
            "description": "description, demands, customer (masked), location, incident_time, product, "
            "staff_involved as intake shows them (not in the list)"
        },
    )


class MerchantCaseList(Schema):
    items = fields.List(fields.Nested(MerchantCaseOut), required=True, metadata={"description": "without complaint"})


class StaffContactOut(Schema):
    """R7.7: where notify tells a member of staff (a high-risk case's lead) at work."""

    staff_id = fields.String(required=True, attribute="id")
    name = fields.String(required=True)
    role = fields.String(required=True)
    email = fields.String(required=True, allow_none=True, metadata={"description": "null: none on record"})


class CaseQueue(Schema):
    items = fields.List(fields.Nested(CaseOut), required=True, metadata={"description": "without timeline"})


class TimelineOut(Schema):
    complaint_no = fields.String(required=True)
    timeline = fields.List(fields.Nested(_Entry), required=True)


class RectificationList(Schema):
    items = fields.List(fields.Nested(RectificationOut), required=True)


class IncidentList(Schema):
    items = fields.List(
        fields.Nested(IncidentOut), required=True, metadata={"description": "without timeline and customer"}
    )


# One entrypoint serves every case action (and one every incident, merchant's and batch check's
# action); each action is
# its own documented operation because each takes its own body. tests/contract/test_openapi.py
# checks these against the ACTIONS tables of domain/actions.py and domain/incidents.py.
_CASE_ACTION = "/cases/<string:complaint_no>/<string:action>"
_INCIDENT_ACTION = "/incidents/<string:number>/<string:action>"
_MERCHANT_ACTION = "/merchant/cases/<string:complaint_no>/<string:action>"
_BATCH_ACTION = "/batch-checks/<string:number>/<string:action>"


def _actions(route, permission, answer):
    """The documented operation of each action one route serves (`route` with <string:action>):
    signed, answering `answer`, 409 when the state refuses it."""

    def operation(action, body, summary):
        return Op(
            "POST",
            route.replace("<string:action>", action),
            summary,
            permission,
            body=body,
            signed=True,
            responses={200: answer},
            errors=(409,),
            route=route,
        )

    return operation


_case_action = _actions(_CASE_ACTION, "case.act", CaseOut)
CASE_ACTIONS = [
    _case_action("findings", FindingIn, "Record an investigation finding (R3.1)."),
    _case_action("expected-resolution", PromiseIn, "Tell the customer when to expect a resolution (R3.2)."),
    _case_action("notes", NoteIn, "A note on the timeline (R3.10)."),
    _case_action("review-meeting", ReviewMeetingIn, "Record the review meeting's decision (R2.4)."),
    _case_action("proposals", ProposalIn, "Propose a resolution (R3.3, R3.4)."),
    _case_action("approval", ProposalRef, "Approve a proposal (R3.5)."),
    _case_action("sign-off", SignOffIn, "A high-risk case's lead signs off the answer to the customer (R7.7)."),
    _case_action("reply", ReplyIn, "Send the approved proposal to the customer (R3.3, R3.6)."),
    _case_action("acceptance", ProposalRef, "The customer accepts the proposal (R3.7)."),
    _case_action("objection", ObjectionIn, "The customer objects to the proposal (R3.6)."),
    _case_action("escalation", EscalationIn, "Move the case one level up."),
    _case_action("spot-resolution", SpotResolutionIn, "Settle the case at the desk (R3.2)."),
    _case_action("task-done", TaskDoneIn, "An execution task is done (R3.7)."),
    _case_action("resolution", SummaryIn, "Resolve the case."),
    _case_action("closure", ReasonIn, "Close the case (R4.2)."),
    _case_action("reopening", ReasonIn, "Reopen the case (R4.2)."),
    _case_action("rectifications", RectificationIn, "Add a rectification task (R3.8)."),
    _case_action("rectification-done", RectificationDoneIn, "A rectification task is done."),
    _case_action(
        "merchant-request", MerchantRequestIn, "Send a tenant's case to its merchant for its evidence and reply (R7.5)."
    ),
    _case_action("merchant-takeback", ReasonIn, "Take the case back from its merchant; its access ends (R7.5)."),
    _case_action("mediation", ReferralIn, "Refer the case to third-party mediation (R7.9)."),
    _case_action("mediation-outcome", MediationOutcomeIn, "Record a third-party mediation's outcome (R7.9)."),
]


_merchant_action = _actions(_MERCHANT_ACTION, "merchant.case", MerchantCaseOut)
MERCHANT_ACTIONS = [
    _merchant_action("reply", MerchantReplyIn, "The merchant's final reply with its evidence (R7.5)."),
    _merchant_action("rectification-done", MerchantRectificationDoneIn, "The merchant carried out its rectification."),
]


_batch_action = _actions(_BATCH_ACTION, "case.act", BatchCheckOut)
BATCH_ACTIONS = [
    _batch_action("hold", BatchHoldIn, "The batch's goods were taken off the shelf (R7.6)."),
    _batch_action("inspection", BatchInspectionIn, "What the batch's inspection found (R7.6)."),
    _batch_action("result", BatchResultIn, "The batch is safe or unsafe, and what was done with it (R7.6)."),
    _batch_action(
        "publication", ActionIn, "Publish the result on the mall's notice page and to every complaint of the batch."
    ),
]
_incident_action = _actions(_INCIDENT_ACTION, "incident.act", IncidentOut)
INCIDENT_ACTIONS = [
    _incident_action("verification", VerificationIn, "Confirm or dismiss the incident."),
    _incident_action(
        "agreement", AgreementIn, "Record the handling plan put to the customer and whether they agreed (R7.10)."
    ),
    _incident_action("handling", HandlingIn, "Record how the incident was handled (once the customer agreed a plan)."),
    _incident_action("communication", CommunicationIn, "Record that the customer was told."),
]
# The full read of an incident's customer (resolution.service.incident_customer).
INCIDENT_CUSTOMER_READ = audit.full_read_op(
    "/incidents/<string:number>/customer",
    "incident",
    Contact,
    {"description": fields.String(required=True), "suggested_handling": fields.String(required=True)},
)
