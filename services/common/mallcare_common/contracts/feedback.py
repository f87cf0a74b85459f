"""Events published by feedback (R4.1-R4.2). Declared here, ahead of the feedback
service itself, because resolution consumes them: a dissatisfied customer reopens
the case, a satisfied one closes it."""
from marshmallow import Schema, fields, validate

from .envelope import EventType


class _Answer(Schema):
    revisit_id = fields.String(required=True)
    score = fields.Integer(required=True, validate=validate.Range(min=1, max=5),
                           metadata={"description": "1 very dissatisfied .. 5 very satisfied"})
    by = fields.String(required=True, metadata={"description": "employee number, or `customer` for a link answer"})


class CustomerSatisfied(_Answer):
    pass


class CustomerDissatisfied(_Answer):
    reasons = fields.List(fields.String(), required=True, metadata={
        "description": "reason tags, e.g. compensation_unclear, slow, attitude"})


CUSTOMER_SATISFIED = EventType("customer_satisfied", "feedback", 1, CustomerSatisfied,
                               "A revisit found the customer satisfied; resolution closes the case.")
CUSTOMER_DISSATISFIED = EventType("customer_dissatisfied", "feedback", 1, CustomerDissatisfied,
                                  "A revisit found the customer dissatisfied; resolution reopens the case (R4.2).")
