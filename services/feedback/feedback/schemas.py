"""What feedback's HTTP and RPC accept and return."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mallcare_common.pages import PageLanguage
from mallcare_common.personal import MaskedOut

_text = dict(validate=validate.Length(max=2000))
_reasons = fields.List(
    fields.String(validate=validate.Length(min=1, max=40)), load_default=list, validate=validate.Length(max=10)
)


class AttemptIn(Schema):
    """A staff member's call or message: reached (with the answer), no answer, or a wrong number."""

    by = fields.String(
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "employee number (over HTTP: the X-Staff-Id header)"},
    )
    outcome = fields.String(required=True, validate=validate.OneOf(("reached", "no_answer", "wrong_number")))
    score = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    reasons = _reasons
    comment = fields.String(**_text)
    note = fields.String(**_text)

    @validates_schema
    def _answer_when_reached(self, data, **kwargs):
        if data.get("outcome") == "reached" and "score" not in data:
            raise ValidationError("A reached customer's answer needs a score (1-5).", "score")
        if data.get("outcome") != "reached" and "score" in data:
            raise ValidationError("Only a reached customer gives a score.", "score")
        if data.get("outcome") != "reached" and data.get("reasons"):
            raise ValidationError("Only a reached customer gives reasons.", "reasons")


class LinkAnswerIn(Schema):
    """The customer's answer through the link sent by SMS or app message (no login)."""

    token = fields.String(required=True, validate=validate.Length(min=10, max=500))
    score = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))
    reasons = _reasons
    comment = fields.String(**_text)


class AnswerFormIn(LinkAnswerIn):
    """The answer page's form (application/x-www-form-urlencoded): the answer through the link,
    its score as a form sends it, as text."""

    score = fields.Integer(required=True, validate=validate.Range(min=1, max=5))


class AnswerPageQuery(PageLanguage):
    token = fields.String(
        required=True, validate=validate.Length(max=500), metadata={"description": "the answer link's token"}
    )


class WorklistQuery(Schema):
    mall_id = fields.String(
        validate=validate.Length(max=64),
        metadata={
            "description": "default: the caller's mall (every mall, chain-wide); staff of several malls name one"
        },
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class ArchiveIn(Schema):
    by = fields.String(required=True, validate=validate.Length(min=1, max=20))
    complaint_no = fields.String(required=True, validate=validate.Length(min=1, max=40))
    lessons = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class LessonsIn(Schema):
    by = fields.String(required=True, validate=validate.Length(min=1, max=20))
    lessons = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class LibraryQuery(Schema):
    category = fields.String(validate=validate.Length(max=64))
    mall_id = fields.String(validate=validate.Length(max=64))
    merchant_id = fields.String(validate=validate.Length(max=64))
    risk_level = fields.String(validate=validate.OneOf(("low", "medium", "high")))
    q = fields.String(validate=validate.Length(min=1, max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class _Attempt(Schema):
    at = fields.AwareDateTime()
    by = fields.String()
    outcome = fields.String()
    note = fields.String(allow_none=True)


class _Answer(Schema):
    at = fields.AwareDateTime()
    by = fields.String()
    score = fields.Integer()
    satisfied = fields.Boolean()
    reasons = fields.List(fields.String())
    comment = fields.String(allow_none=True)
    via = fields.String()


class RevisitOut(MaskedOut):
    # the staff's notes and the customer's comment (feedback holds no customer name: patterns only)
    free_text = ("attempts", "answer")

    revisit_id = fields.String(attribute="_id")
    complaint_no = fields.String()
    mall_id = fields.String()
    round = fields.Integer()
    status = fields.String(metadata={"description": "scheduled, retry, answered, unreachable, cancelled"})
    way = fields.String(allow_none=True)
    channel = fields.String()
    contact_masked = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    risk_level = fields.String()
    resolved_at = fields.AwareDateTime()
    scheduled_at = fields.AwareDateTime(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    beyond_deadline = fields.Boolean()
    attempts = fields.List(fields.Nested(_Attempt))
    next_attempt_at = fields.AwareDateTime(
        allow_none=True,
        metadata={
            "description": "when the next call or message is due (after an unanswered one: its retry); "
            "null once the revisit has ended"
        },
    )
    max_attempts = fields.Integer(
        metadata={"description": "the attempts the mall's policy makes before the customer counts as unreachable"}
    )
    answer = fields.Nested(_Answer, allow_none=True)
    answer_link = fields.String(
        allow_none=True,
        metadata={
            "description": "to send by SMS or app message: the answer page on the chain's public address "
            "(MALLCARE_PUBLIC_BASE_URL), while the revisit is open"
        },
    )
    link_expires_at = fields.AwareDateTime(allow_none=True)
    policy_version = fields.String()


class _Step(Schema):
    at = fields.AwareDateTime()
    role = fields.String()
    action = fields.String()
    state = fields.String()


class LibraryOut(Schema):
    complaint_no = fields.String(attribute="_id")
    mall_id = fields.String()
    category = fields.String(allow_none=True)
    risk_level = fields.String()
    merchant_id = fields.String(allow_none=True)
    area = fields.String(allow_none=True)
    channel = fields.String()
    problem = fields.Dict()
    process = fields.Method("_process")
    outcome = fields.String(allow_none=True)
    rounds = fields.Integer()
    lessons = fields.String(allow_none=True)
    lessons_pending = fields.Boolean()
    archived_at = fields.AwareDateTime()
    automatic = fields.Boolean()

    def _process(self, entry):
        steps = entry.get("process")
        return None if steps is None else [{**s, **_Step().dump(s)} for s in steps]


class RevisitList(Schema):
    items = fields.List(fields.Nested(RevisitOut), required=True)


class LibraryList(Schema):
    items = fields.List(fields.Nested(LibraryOut), required=True, metadata={"description": "without process"})


class AnswerOut(Schema):
    revisit_id = fields.String(required=True)
    complaint_no = fields.String(required=True)
    score = fields.Integer(required=True)
    satisfied = fields.Boolean(required=True)
    message = fields.String(required=True, metadata={"description": "the thanks shown to the customer"})


# --- the library's monthly review (R7.14) -----------------------------------------------------

_month = fields.String(
    required=True, validate=validate.Regexp(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", error="A month as 2026-11.")
)


class ReviewMonth(Schema):
    """The month in the path."""

    month = _month


class ReviewQuery(Schema):
    mall_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ReviewDecisionIn(Schema):
    """One candidate added to the library (with its lessons) or passed over (with a reason)."""

    by = fields.String(required=True, validate=validate.Length(min=1, max=20))
    mall_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    complaint_no = fields.String(required=True, validate=validate.Length(min=1, max=40))
    decision = fields.String(required=True, validate=validate.OneOf(("add", "pass")))
    lessons = fields.String(validate=validate.Length(min=1, max=4000))
    reason = fields.String(validate=validate.Length(min=1, max=500))

    @validates_schema
    def _lessons_to_add(self, data, **kwargs):
        if data["decision"] == "add" and not data.get("lessons"):
            raise ValidationError({"lessons": ["A case goes into the library with its lessons."]})


class ReviewDoneIn(Schema):
    by = fields.String(required=True, validate=validate.Length(min=1, max=20))
    mall_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class _Decision(Schema):
    decision = fields.String()
    reason = fields.String(allow_none=True)
    by = fields.String()
    at = fields.AwareDateTime()


class ReviewCandidate(Schema):
    complaint_no = fields.String()
    category = fields.String(allow_none=True)
    risk_level = fields.String(allow_none=True)
    rounds = fields.Integer()
    closed_at = fields.AwareDateTime()
    reasons = fields.List(fields.String(), metadata={"description": "reopened, dissatisfied, risk_<level>"})
    decision = fields.Nested(_Decision, allow_none=True)


class ReviewOut(Schema):
    review_no = fields.String(metadata={"example": "SHXJH-LIB-2026-11"})
    mall_id = fields.String()
    month = fields.String()
    candidates = fields.List(fields.Nested(ReviewCandidate))
    undecided = fields.Integer()
    reminded_at = fields.AwareDateTime(allow_none=True)
    done_at = fields.AwareDateTime(allow_none=True)
    done_by = fields.String(allow_none=True)


# --- periodic satisfaction surveys (R7.12) ----------------------------------------------------


class SurveyRoundIn(Schema):
    """A mall's survey round of a month's closed cases, started by hand (it starts by itself on
    the policy's day of the next month)."""

    by = fields.String(required=True, validate=validate.Length(min=1, max=20))
    mall_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    month = _month


class _Drawn(Schema):
    complaint_no = fields.String()
    channel = fields.String()
    way = fields.String()


class SurveyRoundOut(Schema):
    round_no = fields.String(attribute="_id", metadata={"example": "SHXJH-SVY-2026-11"})
    mall_id = fields.String()
    month = fields.String(metadata={"description": "the month whose closed cases' customers are surveyed"})
    sample = fields.List(fields.Nested(_Drawn), metadata={"description": "the customers drawn, by channel"})
    by_channel = fields.Method("_by_channel", metadata={"description": "how many were drawn from each channel"})
    started_at = fields.AwareDateTime()
    started_by = fields.String()

    def _by_channel(self, round_):
        counts: dict[str, int] = {}
        for drawn in round_["sample"]:
            counts[drawn["channel"]] = counts.get(drawn["channel"], 0) + 1
        return counts


class _SurveyAnswer(Schema):
    at = fields.AwareDateTime()
    score = fields.Integer()
    satisfied = fields.Boolean()
    comment = fields.String(allow_none=True)


class SurveyOut(Schema):
    survey_id = fields.String(attribute="_id", metadata={"example": "SHXJH-SVY-2026-11-007"})
    round_no = fields.String()
    mall_id = fields.String()
    month = fields.String()
    complaint_no = fields.String()
    channel = fields.String()
    way = fields.String()
    status = fields.String(metadata={"description": "sent, answered"})
    sent_at = fields.AwareDateTime()
    link_expires_at = fields.AwareDateTime()
    answer = fields.Nested(_SurveyAnswer, allow_none=True)
    answer_link = fields.String(
        allow_none=True,
        metadata={"description": "to send by SMS or app message while it takes an answer (null after)"},
    )


class SurveyFormIn(Schema):
    """The survey page's form: the stars on the mall's complaint handling and a comment."""

    token = fields.String(required=True, validate=validate.Length(min=10, max=500))
    score = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(**_text)
