"""The envelope every mallcare event travels in, and the rules for building and reading it.

Producers build with `build_event`: the payload is validated against its schema
(unknown fields refused), its free text (`FreeText` fields) is scrubbed of phones,
e-mails, ID and member numbers, and the whole envelope is plain JSON (strings and
numbers only), so a subscriber that is not Nameko sees no kombu type wrappers.
Consumers read with `read_event`: a tolerant reader that ignores fields it does
not know, so a producer can add fields without breaking anyone.
"""

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from ..personal import scrub

SCRUBBED = "with phone numbers, e-mails, ID and member numbers replaced by [phone], [e-mail], [ID number], [member id]"


class FreeText(fields.String):
    """Text people wrote (the customer, or staff about them): build_event scrubs it, so no
    event carries a phone, e-mail, ID or member number in it."""

    def __init__(self, *, metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(metadata={"description": f"as written, {SCRUBBED}", **(metadata or {})}, **kwargs)


class InvalidEvent(Exception):
    """An event that does not match its contract; retrying it cannot help."""


@dataclass(frozen=True)
class EventType:
    name: str
    source: str  # the publishing service; nameko binds on (source, name)
    version: int
    payload: type[Schema]
    summary: str


class EnvelopeSchema(Schema):
    event_id = fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata={"description": "unique; de-duplicate on it"}
    )
    event_type = fields.String(required=True, metadata={"description": "also the routing key"})
    schema_version = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1), metadata={"description": "of the payload schema"}
    )
    occurred_at = fields.AwareDateTime(
        required=True, format="iso", metadata={"description": "when the state change happened (UTC)"}
    )
    mall_id = fields.String(required=True, metadata={"example": "sh-xujiahui"})
    complaint_no = fields.String(required=True, metadata={"example": "SHXJH-20261123-0042"})
    payload = fields.Dict(required=True, metadata={"description": "per event type, below"})


def build_event(
    event_type: EventType,
    *,
    mall_id: str,
    complaint_no: str,
    occurred_at: datetime,
    payload: dict[str, Any],
    event_id: str | None = None,
) -> dict[str, Any]:
    """A validated, JSON-ready envelope (dict of plain types)."""
    schema = event_type.payload(unknown=RAISE)
    errors = schema.validate(payload)
    if errors:
        raise InvalidEvent(f"{event_type.name} payload: {errors}")
    payload = _scrubbed(schema, payload)
    envelope = {
        "event_id": event_id or uuid.uuid4().hex,
        "event_type": event_type.name,
        "schema_version": event_type.version,
        "occurred_at": occurred_at.isoformat(),
        "mall_id": mall_id,
        "complaint_no": complaint_no,
        "payload": copy.deepcopy(payload),
    }
    errors = EnvelopeSchema().validate(envelope)
    if errors:
        raise InvalidEvent(f"{event_type.name} envelope: {errors}")
    return envelope


def _scrubbed(schema: Schema, payload: Mapping[str, Any]) -> dict[str, Any]:
    """`payload` with its FreeText fields (in nested schemas and lists too) scrubbed."""
    return {name: _scrubbed_value(schema.fields.get(name), value) for name, value in payload.items()}


def _scrubbed_value(field: fields.Field[Any] | None, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, FreeText):
        return scrub(value)
    if isinstance(field, fields.List):
        return [_scrubbed_value(field.inner, v) for v in value]
    if isinstance(field, fields.Nested) and isinstance(value, list):
        return [_scrubbed(field.schema, v) for v in value]
    if isinstance(field, fields.Nested):
        return _scrubbed(field.schema, value)
    return value


def read_event(body: Mapping[str, Any], event_type: EventType) -> dict[str, Any]:
    """Load an incoming envelope; payload datetimes come back as datetimes."""
    try:
        envelope: dict[str, Any] = EnvelopeSchema(unknown=EXCLUDE).load(body)
        if envelope["event_type"] != event_type.name:
            raise InvalidEvent(f"expected {event_type.name}, got {envelope['event_type']}")
        if envelope["schema_version"] != event_type.version:
            raise InvalidEvent(f"{event_type.name} version {envelope['schema_version']} is not {event_type.version}")
        envelope["payload"] = event_type.payload(unknown=EXCLUDE).load(envelope["payload"])
    except (ValidationError, TypeError) as exc:
        raise InvalidEvent(f"{event_type.name}: {getattr(exc, 'messages', exc)}") from exc
    return envelope
