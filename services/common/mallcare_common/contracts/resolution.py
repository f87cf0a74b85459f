"""Events published by resolution: the life of a case (R3.1-R3.8) and of a store's
adverse-event report (R3.9). Amounts are integer fen (1 yuan = 100 fen); staff by
employee number; every deadline a task sets is in the event that sets it, so that
the SLA clocks can be started from events alone. No customer data beyond a masked
contact."""

from typing import Any

from marshmallow import Schema, fields, validate

from .envelope import EventType, FreeText

STATES = (
    "open",
    "investigating",
    "proposed",
    "accepted",
    "objected",
    "escalated",
    "executing",
    "resolved",
    "closed",
    "reopened",
)
DECISIONS = ("upheld", "partly_upheld", "not_upheld")
FINDING_SOURCES = ("records", "cctv", "staff_interview", "supplier_qc_report", "site_inspection", "customer")
ESCALATION_REASONS = ("objection", "breach", "manual")
# R7.9 (seed 001): what a decision rests on, and the third parties a case may go to
DECISION_BASES = (
    "legal_liability",
    "customer_expectation",
    "compromise",
    "market_effect",
    "fairness",
    "third_party_arbitration",
)
MEDIATORS = ("12315", "consumer_association", "arbitration")
MEDIATION_RESULTS = ("settled", "not_settled", "withdrawn", "award")

_when: dict[str, Any] = dict(required=True, format="iso")
_due = fields.AwareDateTime(**_when)
_by = fields.String(required=True, metadata={"description": "employee number, or the service that acted"})
_fen = fields.Integer(required=True, validate=validate.Range(min=0))


class CaseOpened(Schema):
    category = fields.String(allow_none=True, required=True)
    risk_level = fields.String(required=True)
    department = fields.String(required=True)
    owner_id = fields.String(allow_none=True, required=True)
    level_role = fields.String(required=True, metadata={"description": "the level the case is handled at"})
    resolution_due_at = fields.AwareDateTime(**_when)
    review_meeting_due_at = fields.AwareDateTime(
        allow_none=True,
        required=True,
        format="iso",
        metadata={"description": "set when the complaint is a cross-department dispute (R2.4)"},
    )
    convenor_id = fields.String(allow_none=True, required=True)
    policy_version = fields.String(required=True)


class CaseLeadAssigned(Schema):
    lead_id = fields.String(
        allow_none=True, required=True, metadata={"description": "null when no one of the role works at the mall"}
    )
    lead_role = fields.String(required=True, metadata={"description": "operations_director or legal, by policy"})
    because = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "the risk reasons or category that chose the role (empty: the policy's default)"},
    )
    previous_lead_id = fields.String(allow_none=True, required=True)
    category = fields.String(allow_none=True, required=True)
    owner_id = fields.String(allow_none=True, required=True, metadata={"description": "who works the case"})


class InvestigationNoted(Schema):
    finding_id = fields.Integer(required=True)
    source = fields.String(required=True, validate=validate.OneOf(FINDING_SOURCES))
    by = _by


class ReviewMeetingDecided(Schema):
    responsible_department = fields.String(required=True)
    owner_id = fields.String(
        allow_none=True,
        load_default=None,
        metadata={"description": "the owner the meeting named; triage makes the assessment agree"},
    )
    departments_involved = fields.List(fields.String(), required=True)
    due_at = _due
    within_deadline = fields.Boolean(required=True)
    by = _by


class ProposalApproved(Schema):
    proposal_no = fields.Integer(required=True)
    approver_role = fields.String(required=True)
    total_fen = _fen
    cap_override = fields.Boolean(required=True)
    by = _by


class CaseProposed(Schema):
    proposal_no = fields.Integer(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    remedy_types = fields.List(fields.String(), required=True)
    total_fen = _fen
    statutory_total_fen = fields.Integer(
        allow_none=True,
        required=True,
        metadata={"description": "what the law grants for this case; null when no legal basis applies"},
    )
    demand_above_statutory = fields.Boolean(required=True)
    oral = fields.Boolean(required=True, metadata={"description": "the answer was given orally (recorded)"})
    appeal_stated = fields.Boolean(required=True)
    level_role = fields.String(required=True)
    by = _by


class _Task(Schema):
    task_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    due_at = _due


class CaseAccepted(Schema):
    proposal_no = fields.Integer(required=True)
    tasks = fields.List(fields.Nested(_Task), required=True)
    by = _by


class CaseObjected(Schema):
    proposal_no = fields.Integer(required=True)
    points = fields.List(FreeText(), required=True)
    by = _by


class CaseEscalated(Schema):
    reason = fields.String(required=True, validate=validate.OneOf(ESCALATION_REASONS))
    from_role = fields.String(required=True)
    to_role = fields.String(required=True)
    to_staff_id = fields.String(allow_none=True, required=True)
    re_review_due_at = fields.AwareDateTime(
        allow_none=True, required=True, format="iso", metadata={"description": "R3.6: set when a customer objected"}
    )
    by = _by


class ExecutionTaskDone(Schema):
    task_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    due_at = _due
    done_at = fields.AwareDateTime(**_when)
    within_deadline = fields.Boolean(required=True)
    by = _by


class CaseResolved(Schema):
    spot = fields.Boolean(required=True, metadata={"description": "resolved on the spot at the desk (R3.2)"})
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    remedy_types = fields.List(fields.String(), required=True)
    total_fen = _fen
    round = fields.Integer(required=True, metadata={"description": "1, then one more per reopening"})
    category = fields.String(allow_none=True, required=True)
    risk_level = fields.String(required=True)
    department = fields.String(required=True)
    owner_id = fields.String(allow_none=True, required=True)
    channel = fields.String(required=True, metadata={"description": "the complaint's channel (revisits follow it)"})
    by = _by


class CaseReopened(Schema):
    reason = FreeText(required=True)
    round = fields.Integer(required=True)
    resolution_due_at = _due
    by = _by


class CaseClosed(Schema):
    reason = FreeText(required=True)
    without_answer = fields.Boolean(
        load_default=False,
        metadata={"description": "closed by rule because the customer could not be reached after the revisit"},
    )
    by = _by


class CaseReferred(Schema):
    referral_id = fields.Integer(required=True)
    mediator = fields.String(required=True, validate=validate.OneOf(MEDIATORS))
    referred_at = fields.AwareDateTime(**_when)
    by = _by


class MediationConcluded(Schema):
    referral_id = fields.Integer(required=True)
    mediator = fields.String(required=True, validate=validate.OneOf(MEDIATORS))
    result = fields.String(required=True, validate=validate.OneOf(MEDIATION_RESULTS))
    referred_at = fields.AwareDateTime(**_when)
    decided_at = fields.AwareDateTime(**_when)
    amount_fen = fields.Integer(
        allow_none=True, required=True, metadata={"description": "what was agreed or awarded, if money"}
    )
    by = _by


class CustomerContacted(Schema):
    via = fields.String(required=True, metadata={"description": "how: desk, phone, sms, app, wechat, email, letter"})
    by = _by


class TimePromised(Schema):
    expected_by = fields.AwareDateTime(**_when)
    via = fields.String(required=True)
    beyond_deadline = fields.Boolean(required=True, metadata={"description": "later than the resolution deadline"})
    by = _by


class RectificationDue(Schema):
    rectification_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    owner_id = fields.String(allow_none=True, required=True)
    merchant_id = fields.String(
        allow_none=True,
        load_default=None,
        metadata={"description": "R7.5: the merchant who manages the thing at fault rectifies it (owner_id is null)"},
    )
    due_at = _due


class RectificationDone(Schema):
    rectification_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    due_at = _due
    done_at = fields.AwareDateTime(**_when)
    within_deadline = fields.Boolean(required=True)
    by = _by


class _Place(Schema):
    area = fields.String(required=True)
    merchant_id = fields.String(allow_none=True, load_default=None)


class MerchantReplyRequested(Schema):
    request_id = fields.Integer(required=True, metadata={"description": "1, then one more each time it is sent"})
    merchant_id = fields.String(required=True, metadata={"description": "the tenant, as the mall registry lists it"})
    due_at = _due
    by = _by


class MerchantReplied(Schema):
    request_id = fields.Integer(required=True)
    merchant_id = fields.String(required=True)
    due_at = _due
    replied_at = fields.AwareDateTime(**_when)
    within_deadline = fields.Boolean(required=True)
    evidence = fields.Integer(required=True, metadata={"description": "how many pieces of evidence came with it"})
    by = _by


class MerchantTakenBack(Schema):
    request_id = fields.Integer(required=True)
    merchant_id = fields.String(required=True)
    awaiting = fields.Boolean(required=True, metadata={"description": "taken back before the merchant replied"})
    reason = FreeText(required=True)
    by = _by


class IncidentReported(Schema):
    type = fields.String(required=True)
    occurred_at = fields.AwareDateTime(
        format="iso", allow_none=True, load_default=None, metadata={"description": "when it happened (R7.10)"}
    )
    place = fields.Nested(_Place, allow_none=True, load_default=None, metadata={"description": "where (R7.10)"})
    contact_masked = fields.String(allow_none=True, required=True)
    forward_due_at = _due
    related_complaint_no = fields.String(allow_none=True, required=True)
    by = _by


class IncidentForwarded(Schema):
    regional_manager_id = fields.String(allow_none=True, required=True)
    forward_due_at = _due
    within_deadline = fields.Boolean(required=True)
    handling_due_at = _due
    by = _by


class IncidentDismissed(Schema):
    reason = FreeText(required=True)
    by = _by


class IncidentHandled(Schema):
    handling_due_at = _due
    within_deadline = fields.Boolean(required=True)
    compensation_fen = _fen
    communicate_due_at = fields.AwareDateTime(
        format="iso",
        allow_none=True,
        load_default=None,
        metadata={"description": "by when the regional manager tells the customer (R7.10)"},
    )
    by = _by


class IncidentCommunicated(Schema):
    within_deadline = fields.Boolean(load_default=None, allow_none=True, metadata={"description": "R7.10"})
    by = _by


# R7.6 (seed 002: 核查同批次商品并公示结果) the check of a product batch; complaint_no carries
# the check's number (SHXJH-LOT-20261201)
BATCH_STEPS = ("hold", "inspect", "result")
BATCH_VERDICTS = ("safe", "unsafe")


class _BatchKey(Schema):
    barcode = fields.String(allow_none=True, required=True)
    batch = fields.String(allow_none=True, required=True)


class BatchCheckOpened(Schema):
    product = fields.Nested(_BatchKey, required=True)
    first_complaint_no = fields.String(required=True)
    hold_due_at = _due
    by = _by


class BatchCheckStepDone(Schema):
    step = fields.String(required=True, validate=validate.OneOf(BATCH_STEPS))
    due_at = _due
    within_deadline = fields.Boolean(required=True)
    next_due_at = fields.AwareDateTime(
        allow_none=True, required=True, format="iso", metadata={"description": "the next step's deadline"}
    )
    verdict = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(BATCH_VERDICTS), metadata={"description": "result"}
    )
    action = fields.String(
        allow_none=True, load_default=None, metadata={"description": "result: what was done with the batch"}
    )
    by = _by


class BatchResultPublished(Schema):
    product = fields.Nested(_BatchKey, required=True)
    verdict = fields.String(required=True, validate=validate.OneOf(BATCH_VERDICTS))
    action = fields.String(required=True)
    summary = FreeText(required=True, metadata={"description": "the result as the mall's notice shows it"})
    complaint_nos = fields.List(fields.String(), required=True, metadata={"description": "the batch's complaints"})
    by = _by


def _event(name: str, schema: type[Schema], summary: str) -> EventType:
    return EventType(name, "resolution", 1, schema, summary)


CASE_OPENED = _event(
    "case_opened", CaseOpened, "Resolution opened a case for a triaged complaint (with a review meeting for a dispute)."
)
CASE_LEAD_ASSIGNED = _event(
    "case_lead_assigned",
    CaseLeadAssigned,
    "A high-risk case (at opening or once regraded) is led by the mall's operations or legal lead, who is "
    "told at once and signs off every answer to the customer (R7.7).",
)
INVESTIGATION_NOTED = _event(
    "investigation_noted", InvestigationNoted, "A finding was recorded on the case, with its source (R3.1)."
)
REVIEW_MEETING_DECIDED = _event(
    "review_meeting_decided",
    ReviewMeetingDecided,
    "The operations director's review meeting decided who is responsible (R2.4).",
)
PROPOSAL_APPROVED = _event(
    "proposal_approved", ProposalApproved, "Someone whose authority covers the remedies approved a proposal (R3.5)."
)
CASE_PROPOSED = _event(
    "case_proposed",
    CaseProposed,
    "The approved answer was given to the customer, with the appeal route when it differs (R3.3).",
)
CASE_ACCEPTED = _event(
    "case_accepted", CaseAccepted, "The customer accepted; the execution tasks and their deadlines are listed (R3.7)."
)
CASE_OBJECTED = _event(
    "case_objected", CaseObjected, "The customer objected to the answer; the points are listed (R3.6)."
)
CASE_ESCALATED = _event(
    "case_escalated",
    CaseEscalated,
    "The case went up a level: after an objection (re-review due in 2 h), a breach, or by hand.",
)
EXECUTION_TASK_DONE = _event(
    "execution_task_done", ExecutionTaskDone, "A remedy was carried out (refund, voucher, product sealed, ...) (R3.7)."
)
CASE_RESOLVED = _event("case_resolved", CaseResolved, "The case is resolved; a revisit follows (R4.1).")
CASE_REOPENED = _event(
    "case_reopened", CaseReopened, "A dissatisfied customer (or a supervisor) reopened the case (R4.2)."
)
CASE_REFERRED = _event(
    "case_referred",
    CaseReferred,
    "The case went to third-party mediation: 12315, a consumer association or arbitration (R7.9).",
)
MEDIATION_CONCLUDED = _event(
    "mediation_concluded",
    MediationConcluded,
    "The third party's outcome of a referral: settled, not settled, withdrawn or an award (R7.9).",
)
CUSTOMER_CONTACTED = _event(
    "customer_contacted", CustomerContacted, "A handler was in contact with the customer (the first response, R2.3)."
)
TIME_PROMISED = _event(
    "time_promised", TimePromised, "The customer was told when to expect a resolution (R3.2, R7.1); a clock keeps it."
)
CASE_CLOSED = _event(
    "case_closed", CaseClosed, "The case is closed: the customer is satisfied, or a supervisor closed it."
)
RECTIFICATION_DUE = _event(
    "rectification_due",
    RectificationDue,
    "An improvement the case calls for (training, procurement standard, maintenance) (R3.8).",
)
MERCHANT_REPLY_REQUESTED = _event(
    "merchant_reply_requested",
    MerchantReplyRequested,
    "Merchant relations sent a tenant's case to the merchant, who must reply with its evidence by due_at (R7.5).",
)
MERCHANT_REPLIED = _event(
    "merchant_replied",
    MerchantReplied,
    "The merchant gave its final reply and evidence; a copy is kept on the case (R7.5).",
)
MERCHANT_TAKEN_BACK = _event(
    "merchant_taken_back",
    MerchantTakenBack,
    "Merchant relations took the case back from the merchant, whose access to it ends (R7.5).",
)
RECTIFICATION_DONE = _event("rectification_done", RectificationDone, "A rectification task was done (R3.8).")
INCIDENT_REPORTED = _event(
    "incident_reported",
    IncidentReported,
    "A store reported an adverse event; complaint_no carries the incident number (R3.9).",
)
INCIDENT_FORWARDED = _event(
    "incident_forwarded",
    IncidentForwarded,
    "The store manager verified the incident and forwarded it to the regional manager.",
)
INCIDENT_DISMISSED = _event(
    "incident_dismissed", IncidentDismissed, "The store manager found the report was not an adverse event."
)
INCIDENT_HANDLED = _event(
    "incident_handled",
    IncidentHandled,
    "The regional manager decided the handling: outcome, improvements, compensation.",
)
INCIDENT_COMMUNICATED = _event(
    "incident_communicated",
    IncidentCommunicated,
    "The customer was told the outcome, the improvements and any compensation.",
)
BATCH_CHECK_OPENED = _event(
    "batch_check_opened",
    BatchCheckOpened,
    "A product complaint named a barcode or batch: its batch is checked (hold, inspect, result); later "
    "complaints of the batch join it; complaint_no carries the check's number (R7.6).",
)
BATCH_CHECK_STEP_DONE = _event(
    "batch_check_step_done",
    BatchCheckStepDone,
    "A step of a batch check was taken: the goods held, inspected, or the result given (R7.6).",
)
BATCH_RESULT_PUBLISHED = _event(
    "batch_result_published",
    BatchResultPublished,
    "A batch check's result was published on the mall's notice page and to every complaint of the batch (R7.6).",
)

EVENTS = (
    CASE_OPENED,
    CASE_LEAD_ASSIGNED,
    INVESTIGATION_NOTED,
    REVIEW_MEETING_DECIDED,
    PROPOSAL_APPROVED,
    CASE_PROPOSED,
    CASE_ACCEPTED,
    CASE_OBJECTED,
    CASE_ESCALATED,
    EXECUTION_TASK_DONE,
    CASE_RESOLVED,
    CASE_REOPENED,
    CASE_CLOSED,
    CASE_REFERRED,
    MEDIATION_CONCLUDED,
    CUSTOMER_CONTACTED,
    TIME_PROMISED,
    RECTIFICATION_DUE,
    RECTIFICATION_DONE,
    MERCHANT_REPLY_REQUESTED,
    MERCHANT_REPLIED,
    MERCHANT_TAKEN_BACK,
    INCIDENT_REPORTED,
    INCIDENT_FORWARDED,
    INCIDENT_DISMISSED,
    INCIDENT_HANDLED,
    INCIDENT_COMMUNICATED,
    BATCH_CHECK_OPENED,
    BATCH_CHECK_STEP_DONE,
    BATCH_RESULT_PUBLISHED,
)
