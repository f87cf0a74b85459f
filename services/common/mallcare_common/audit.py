"""The audit log of full reads of personal data (issue 7).

A full customer record (name, phone, e-mail), and the record's free text as the
customer told it (every other read masks it: personal.MaskedOut), leave a service only
through an authorised read: the caller needs `customer.contact` for the record's mall and
states a purpose, and the service that answers writes who, in what role, for which
mall and record, why, when and under which request id into its own `audit_log`
collection - before it answers, so that no read goes unrecorded. Staff with
`audit.read` list the log per mall (`GET /audit`, RPC `audit_log`).
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate
from nameko.extensions import DependencyProvider
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from . import inputs
from .auth import Gate, Principal
from .calendar import as_stored
from .openapi import Op
from .operations import operation
from .personal import MaskedOut
from .web import REQUEST_ID, Gone


class PurposeIn(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=200))

    def load(self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = super().load(data, **kwargs)
        if not loaded["purpose"].strip():
            raise ValidationError({"purpose": ["Say why you need the customer's contact."]})
        return loaded


class AuditQuery(Schema):
    mall_id = fields.String(validate=validate.Length(min=1, max=64))
    user = fields.String(validate=validate.Length(min=1, max=64))
    since = inputs.AwareDateTime()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AuditOut(MaskedOut):
    free_text = ("purpose",)  # why, not who: a phone written into it is masked like any text

    id = fields.String(attribute="_id")
    at = fields.AwareDateTime()
    service = fields.String()
    user = fields.String()
    role = fields.String()
    mall_id = fields.String()
    subject = fields.String(metadata={"description": "complaint or incident"})
    number = fields.String()
    purpose = fields.String()
    request_id = fields.String()


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditOut), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


def full_read_op(path: str, subject: str, customer: type[Schema], text: dict[str, fields.Field[Any]]) -> Op:
    """The documented form of a service's audited full read: GET <path>?purpose=...; `text`:
    the record's free-text fields, as told (every other read shows them masked)."""
    out = Schema.from_dict(
        {
            "number": fields.String(required=True),
            "mall_id": fields.String(required=True),
            "customer": fields.Nested(customer, required=True),
            **text,
            "audit_id": fields.String(required=True, metadata={"description": "its audit_log entry"}),
        },
        name=f"{subject.title()}CustomerOut",
    )
    return Op(
        "GET",
        path,
        f"The {subject}'s customer and its text as told ({', '.join(text)}), unmasked, for a "
        "stated purpose; every read is audited. 410 once anonymised by retention.",
        "customer.contact",
        query=PurposeIn,
        responses={200: out},
        errors=(410,),
    )


def indexes(db: Database[dict[str, Any]]) -> None:
    db.audit_log.create_index([("mall_id", ASCENDING), ("at", DESCENDING)])
    db.audit_log.create_index([("user", ASCENDING), ("at", DESCENDING)])
    db.audit_log.create_index([("at", DESCENDING)])


def full_read(
    db: Database[dict[str, Any]],
    caller: Principal,
    *,
    service: str,
    subject: str,
    doc: Mapping[str, Any],
    purpose_args: Mapping[str, Any],
    now: datetime,
    request_id: str,
    permission: str,
) -> dict[str, Any]:
    """Check, then record, a full read of `doc`'s customer; returns the audit record.
    Forbidden without `permission` (staff's `customer.contact`, notify's `customer.notify`)
    for the mall, ValidationError without a purpose, Gone when retention has anonymised
    the record (nothing left to read)."""
    caller.require(permission, doc["mall_id"])
    purpose = PurposeIn().load(purpose_args)["purpose"].strip()
    if doc.get("anonymised_at"):
        raise Gone(f"{subject} {doc['_id']} was anonymised on {doc['anonymised_at']:%Y-%m-%d} (retention)")
    record = {
        "_id": uuid.uuid4().hex,
        "at": now,
        "service": service,
        "user": caller.user,
        "role": caller.role,
        "mall_id": doc["mall_id"],
        "subject": subject,
        "number": doc["_id"],
        "purpose": purpose,
        "request_id": request_id,
    }
    db.audit_log.insert_one(record)
    return record


def query_log(db: Database[dict[str, Any]], caller: Principal, args: Mapping[str, Any]) -> dict[str, Any]:
    """A page of the log, newest first; a caller sees the malls in their scope only."""
    args = AuditQuery().load(args)
    selector: dict[str, Any] = {}
    mall_id = caller.list_mall("audit.read", args.get("mall_id"))
    if mall_id:
        selector["mall_id"] = mall_id
    if args.get("user"):
        selector["user"] = args["user"]
    if args.get("since"):
        selector["at"] = {"$gte": as_stored(args["since"])}
    total = db.audit_log.count_documents(selector)
    items = (
        db.audit_log.find(selector)
        .sort([("at", DESCENDING), ("_id", ASCENDING)])
        .skip((args["page"] - 1) * args["per_page"])
        .limit(args["per_page"])
    )
    return {
        "items": AuditOut(many=True).dump(items),
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


class AuditLog(DependencyProvider):
    """Workers get `full_read(db, caller, subject=, doc=, purpose_args=, now=, permission=)`: `full_read`
    above with this service's name and the request's id (the HTTP answer's X-Request-Id, or
    the RPC call's id). Declaring it gives the service AuditReads (base.Service)."""

    def get_dependency(self, worker_ctx: Any) -> Callable[..., dict[str, Any]]:
        request_id = worker_ctx.data.get(REQUEST_ID) or worker_ctx.call_id or uuid.uuid4().hex
        return partial(full_read, service=self.container.service_name, request_id=request_id)


class AuditReads:
    """GET /audit and RPC audit_log, for a service that declares an AuditLog dependency."""

    needs: ClassVar[Mapping[str, type]] = {"audit": AuditLog}
    # as the service's workers see them
    store: Any
    access: Gate

    @operation(
        Op(
            "GET",
            "/audit",
            "A page of the audit log of full customer reads, newest first.",
            "audit.read",
            query=AuditQuery,
            responses={200: AuditPage},
        )
    )
    def audit_log(self, query: dict[str, Any]) -> dict[str, Any]:
        return query_log(self.store.db, self.access.caller(), query)
