"""Events published by feedback (R4.1-R4.4): revisits after a resolution, the
customer's answer, and the case library. Resolution consumes the answers: a
dissatisfied customer reopens the case, a satisfied one closes it."""

from marshmallow import Schema, fields, validate

from .envelope import EventType, FreeText

CONTACT_WAYS = ("phone_call", "sms", "app_message")


class RevisitScheduled(Schema):
    revisit_id = fields.String(required=True, metadata={"example": "SHXJH-20261123-0042-R1"})
    round = fields.Integer(required=True, metadata={"description": "the case's round (1, then one per reopening)"})
    way = fields.String(required=True, validate=validate.OneOf(CONTACT_WAYS))
    scheduled_at = fields.AwareDateTime(required=True, format="iso")
    due_at = fields.AwareDateTime(required=True, format="iso", metadata={"description": "24 h after resolution"})
    beyond_deadline = fields.Boolean(
        required=True, metadata={"description": "quiet hours left no allowed time before the deadline"}
    )


class _Answer(Schema):
    revisit_id = fields.String(required=True)
    score = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=5),
        metadata={"description": "1 very dissatisfied .. 5 very satisfied"},
    )
    by = fields.String(required=True, metadata={"description": "employee number, or `customer` for a link answer"})


class CustomerSatisfied(_Answer):
    pass


class CustomerDissatisfied(_Answer):
    reasons = fields.List(
        FreeText(), required=True, metadata={"description": "reason tags, e.g. compensation_unclear, slow, attitude"}
    )


class RevisitDone(Schema):
    revisit_id = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(("answered", "unreachable")))
    attempts = fields.Integer(required=True)
    score = fields.Integer(allow_none=True, required=True)
    within_deadline = fields.Boolean(required=True)
    by = fields.String(required=True)


class RevisitOverdue(Schema):
    revisit_id = fields.String(required=True)
    due_at = fields.AwareDateTime(required=True, format="iso")


class RevisitCancelled(Schema):
    revisit_id = fields.String(required=True)
    reason = fields.String(required=True, metadata={"example": "case reopened"})


class CaseArchived(Schema):
    category = fields.String(allow_none=True, required=True)
    risk_level = fields.String(required=True)
    automatic = fields.Boolean(required=True, metadata={"description": "archived for its high risk, not by a person"})
    by = fields.String(required=True)


def _month() -> fields.String:
    return fields.String(
        required=True, validate=validate.Regexp(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"), metadata={"example": "2026-11"}
    )


class LibraryReviewDue(Schema):
    month = _month()
    candidates = fields.Integer(required=True, metadata={"description": "closed cases of the month worth a look"})


class LibraryReviewed(Schema):
    month = _month()
    candidates = fields.Integer(required=True)
    added = fields.Integer(required=True, metadata={"description": "candidates put into the library"})
    passed = fields.Integer(required=True, metadata={"description": "candidates looked at and left out"})
    by = fields.String(required=True)


SURVEY_WAYS = ("sms", "app_message")  # a survey is answered by its link: never a call


class SurveySent(Schema):
    survey_id = fields.String(required=True, metadata={"example": "SHXJH-SVY-2026-11-007"})
    month = _month()
    channel = fields.String(
        required=True, metadata={"description": "the channel of the complaint the customer was sampled by (stratum)"}
    )
    way = fields.String(required=True, validate=validate.OneOf(SURVEY_WAYS))
    link_expires_at = fields.AwareDateTime(required=True, format="iso")


class SurveyAnswered(Schema):
    survey_id = fields.String(required=True)
    month = _month()
    channel = fields.String(required=True)
    score = fields.Integer(required=True, validate=validate.Range(min=1, max=5), metadata={"description": "1-5 stars"})
    satisfied = fields.Boolean(required=True, metadata={"description": "score at or above satisfied_from"})


def _event(name: str, schema: type[Schema], summary: str) -> EventType:
    return EventType(name, "feedback", 1, schema, summary)


REVISIT_SCHEDULED = _event(
    "revisit_scheduled",
    RevisitScheduled,
    "A revisit was scheduled after a resolution, outside the mall's quiet hours (R4.1).",
)
CUSTOMER_SATISFIED = _event(
    "customer_satisfied", CustomerSatisfied, "A revisit found the customer satisfied; resolution closes the case."
)
CUSTOMER_DISSATISFIED = _event(
    "customer_dissatisfied",
    CustomerDissatisfied,
    "A revisit found the customer not satisfied; resolution reopens the case (R4.2).",
)
REVISIT_DONE = _event("revisit_done", RevisitDone, "A revisit ended: answered, or unreachable after the last attempt.")
REVISIT_OVERDUE = _event("revisit_overdue", RevisitOverdue, "A revisit passed its 24-hour deadline unanswered.")
REVISIT_CANCELLED = _event(
    "revisit_cancelled",
    RevisitCancelled,
    "An open revisit was cancelled (the case was reopened or closed); its clock stops.",
)
CASE_ARCHIVED = _event(
    "case_archived", CaseArchived, "A case went into the case library (R4.4), without personal data."
)

LIBRARY_REVIEW_DUE = _event(
    "library_review_due",
    LibraryReviewDue,
    "A mall's monthly review of the case library is due (R7.14): the month gone, once per mall and month;"
    " complaint_no carries the review's number, e.g. SHXJH-LIB-2026-11.",
)
LIBRARY_REVIEWED = _event(
    "library_reviewed",
    LibraryReviewed,
    "A mall reviewed the month's candidate cases for the case library (R7.14);"
    " complaint_no carries the review's number.",
)

SURVEY_SENT = _event(
    "survey_sent",
    SurveySent,
    "A customer sampled for a mall's periodic satisfaction survey (R7.12) is sent its link by SMS or app message;"
    " complaint_no is the complaint they were sampled by (its case closed in `month`), which notify reaches them by.",
)
SURVEY_ANSWERED = _event(
    "survey_answered",
    SurveyAnswered,
    "A customer answered a satisfaction survey through its link (R7.12); counted apart from revisits,"
    " it neither closes nor reopens a case.",
)

EVENTS = (
    REVISIT_SCHEDULED,
    CUSTOMER_SATISFIED,
    CUSTOMER_DISSATISFIED,
    REVISIT_DONE,
    REVISIT_OVERDUE,
    REVISIT_CANCELLED,
    CASE_ARCHIVED,
    LIBRARY_REVIEW_DUE,
    LIBRARY_REVIEWED,
    SURVEY_SENT,
    SURVEY_ANSWERED,
)
