"""What intake accepts and returns (R1.1, R1.3). Unknown fields are refused, every
text has a length limit, and a field that should be a string refuses an object,
which also stops Mongo operator injection ({"$gt": ""}) at the edge."""

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from mallcare_common.calendar import as_stored
from mallcare_common.openapi import Op
from mallcare_common import audit, inputs
from mallcare_common.contracts.intake import CHANNELS
from mallcare_common.pages import PageLanguage
from mallcare_common.personal import MaskedCustomer, MaskedOut, mask_email

MEMBER_TIERS = ("none", "regular", "silver", "gold", "platinum", "vip", "corporate", "key_account")
EMOTIONS = ("calm", "anxious", "upset", "angry", "furious")
TIME_BANDS = ("early_morning", "morning", "noon", "afternoon", "evening", "night")
STATUSES = ("registered", "acknowledged", "rejected")


def _text(max_len, **kwargs):
    return fields.String(validate=validate.Length(max=max_len), **kwargs)


class _NullMeansAbsent(Schema):
    """Many JSON clients send null for a value they do not have: null in an optional field
    reads as the field left out (its default, nothing stored), and the documents say the
    field is nullable. A required field still refuses null."""

    def on_bind_field(self, field_name, field_obj):
        field_obj.allow_none = field_obj.allow_none or not field_obj.required

    @pre_load
    def _drop_nulls(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        return {k: v for k, v in data.items() if v is not None or k not in self.fields or self.fields[k].required}


PHONE = validate.Regexp(r"^\+?[0-9][0-9 -]{5,19}$", error="Not a phone number.")


class CustomerIn(_NullMeansAbsent):
    name = _text(64)
    phone = fields.String(validate=PHONE)
    email = fields.Email(validate=validate.Length(max=254))
    member_id = _text(32)
    member_tier = fields.String(validate=validate.OneOf(MEMBER_TIERS))
    social_handle = _text(64)
    # the customer at the mall's official account (WeChat's callback sets it; intake.wechat)
    wechat_openid = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_-]{6,64}$", error="Not a WeChat OpenID."))


class LocationIn(_NullMeansAbsent):
    area = _text(64)  # e.g. fresh produce, checkout
    merchant_id = _text(32)
    merchant_name = _text(128)
    store = _text(128)


class ProductIn(_NullMeansAbsent):
    barcode = fields.String(validate=validate.Regexp(r"^[0-9]{8,14}$", error="Barcode is 8-14 digits."))
    brand = _text(64)
    model = _text(64)


class DemandsIn(_NullMeansAbsent):
    fact = _text(2000)  # the factual complaint: "1/3 of the strawberries mouldy"
    expectation = _text(2000)  # what the customer wants: "full refund plus the same in goods"


class ComplaintIn(_NullMeansAbsent):
    mall_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    channel_ref = fields.String(validate=validate.Length(min=1, max=128))
    received_at = inputs.AwareDateTime()
    customer = fields.Nested(CustomerIn, load_default=dict)
    location = fields.Nested(LocationIn, load_default=dict)
    incident_time = inputs.AwareDateTime()
    incident_time_band = fields.String(validate=validate.OneOf(TIME_BANDS))
    staff_involved = fields.List(
        fields.String(validate=validate.Regexp(r"^[A-Za-z0-9-]{1,20}$", error="Not an employee number.")),
        validate=validate.Length(max=20),
        load_default=list,
    )
    product = fields.Nested(ProductIn)
    order_no = _text(64)
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    demands = fields.Nested(DemandsIn, load_default=dict)
    emotion = fields.String(validate=validate.OneOf(EMOTIONS))
    anger_score = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    # R7.3 (seed 002: 簡要記錄客戶語氣、態度): a line in the clerk's words, beside emotion and anger
    tone_note = _text(200)
    category_hint = _text(64)

    @post_load
    def _as_stored(self, data, **kwargs):
        return {k: as_stored(v) if k in ("received_at", "incident_time") else v for k, v in data.items()}


class AcknowledgementIn(_NullMeansAbsent):
    acknowledged_by = fields.String(validate=validate.Length(min=1, max=64))  # ignored: the caller is recorded
    method = fields.String(
        required=True,
        validate=validate.OneOf(("in_person", "phone", "sms", "app_message", "wechat_message", "email", "auto_reply")),
    )
    acknowledged_at = inputs.AwareDateTime()

    @post_load
    def _as_stored(self, data, **kwargs):
        if "acknowledged_at" in data:
            data["acknowledged_at"] = as_stored(data["acknowledged_at"])
        return data


class ListQuery(Schema):
    mall_id = _text(64)
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    status = fields.String(validate=validate.OneOf(STATUSES))
    received_from = inputs.AwareDateTime()
    received_to = inputs.AwareDateTime()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))

    @validates_schema
    def _range(self, data, **kwargs):
        if "received_from" in data and "received_to" in data and data["received_from"] > data["received_to"]:
            raise ValidationError("received_from is after received_to.", "received_from")


class _Channels(fields.String):
    """Channels named in one query value, comma-separated (`hotline,web`): a query string's
    repeated key would keep only its first value on the way in."""

    def _deserialize(self, value, attr, data, **kwargs):
        named = super()._deserialize(value, attr, data, **kwargs).split(",")
        channels = list(dict.fromkeys(c.strip() for c in named if c.strip()))
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown or not channels:
            raise ValidationError(f"Name channels from: {', '.join(CHANNELS)}.")
        return channels


class WaitingQuery(Schema):
    """The acknowledgement queue (R1.2): one mall of the caller's (all of them when left out)
    and the channels to show (all when left out)."""

    mall_id = _text(64)
    channels = _Channels(metadata={"description": "comma-separated channels", "example": "hotline,web,social"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class _AcknowledgementOut(Schema):
    acknowledged_at = fields.AwareDateTime()
    acknowledged_by = fields.String()
    method = fields.String()
    within_deadline = fields.Boolean()
    message_id = fields.String(
        allow_none=True,
        metadata={"description": "the message notify sent, when the acknowledgement was its (acknowledged_by notify)"},
    )


class _RejectionOut(Schema):
    reason = fields.String()
    detail = fields.String()
    duplicate_of = fields.String(allow_none=True)


class _AttachmentOut(Schema):
    id = fields.String(metadata={"description": "GET /complaints/<number>/attachments/<id>?purpose= (audited)"})
    filename = fields.String(allow_none=True)
    content_type = fields.String()
    size = fields.Integer(metadata={"description": "bytes"})
    stored = fields.Boolean(metadata={"description": "false: over the size intake keeps (the mailbox has it)"})


class _ReplyOut(Schema):
    received_at = fields.AwareDateTime()
    channel = fields.String()
    replied_to = fields.String(
        allow_none=True,
        metadata={"description": "which of our messages it answers (`<kind>.<round>`), if its headers say"},
    )
    from_customer = fields.Boolean(metadata={"description": "sent from the complaint's own e-mail address"})
    sender = fields.Function(
        lambda reply: mask_email(reply["sender"]) if reply.get("sender") else None,
        metadata={"example": "w***@example.com"},
    )
    text = fields.String()
    attachments = fields.List(fields.Nested(_AttachmentOut))


class ComplaintOut(MaskedOut):
    # whole: GET /complaints/<number>/customer (audited)
    free_text = ("description", "demands", "tone_note", "replies", "attachments")

    number = fields.String(attribute="_id")
    status = fields.String()
    mall_id = fields.String()
    channel = fields.String()
    channel_ref = fields.String(allow_none=True)
    received_at = fields.AwareDateTime()
    registered_at = fields.AwareDateTime()
    ack_due_at = fields.AwareDateTime(allow_none=True)
    acknowledgement = fields.Nested(_AcknowledgementOut, allow_none=True)
    rejection = fields.Nested(_RejectionOut, allow_none=True)
    customer = MaskedCustomer()  # the full record: GET /complaints/<number>/customer (audited)
    location = fields.Nested(LocationIn)
    incident_time = fields.AwareDateTime(allow_none=True)
    incident_time_band = fields.String(allow_none=True)
    staff_involved = fields.List(fields.String())
    product = fields.Nested(ProductIn, allow_none=True)
    order_no = fields.String(allow_none=True)
    description = fields.String()
    demands = fields.Nested(DemandsIn)
    emotion = fields.String(allow_none=True)
    anger_score = fields.Integer(allow_none=True)
    tone_note = fields.String(allow_none=True, metadata={"description": "the customer's tone and attitude, briefly"})
    category_hint = fields.String(allow_none=True)
    policy_version = fields.String()
    attachments = fields.List(
        fields.Nested(_AttachmentOut), metadata={"description": "files that came with it (e-mail)"}
    )
    replies = fields.List(
        fields.Nested(_ReplyOut),
        metadata={"description": "the customer's answers to our messages (e-mail replies), oldest first"},
    )
    closed_at = fields.AwareDateTime(allow_none=True, metadata={"description": "when its case closed (retention)"})
    anonymised_at = fields.AwareDateTime(allow_none=True)


class ComplaintList(Schema):
    items = fields.List(fields.Nested(ComplaintOut), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)


class MallOut(Schema):
    id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class MallList(Schema):
    items = fields.List(fields.Nested(MallOut), required=True)


class MerchantOut(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    floor = fields.String()
    area = fields.String()


class MerchantList(Schema):
    mall_id = fields.String(required=True)
    items = fields.List(fields.Nested(MerchantOut), required=True)


# The full read of a complaint's customer (intake.service.complaint_customer).
CUSTOMER_READ = audit.full_read_op(
    "/complaints/<string:number>/customer",
    "complaint",
    CustomerIn,
    {"description": fields.String(required=True), "demands": fields.Nested(DemandsIn)},
)

# A file that came with a complaint's mail (intake.mailbox): audited like the full read.
ATTACHMENT_READ = Op(
    "GET",
    "/complaints/<string:number>/attachments/<string:file_id>",
    "A file that came with the "
    "complaint's mail, as it came, for a stated purpose; every read is audited. 410 once anonymised "
    "by retention.",
    "customer.contact",
    query=audit.PurposeIn,
    responses={200: "application/octet-stream"},
    errors=(410,),
)


class ContactOut(Schema):
    number = fields.String(required=True)
    mall_id = fields.String(required=True)
    channel = fields.String(required=True)
    customer = fields.Nested(CustomerIn, required=True)
    audit_id = fields.String(required=True, metadata={"description": "its audit_log entry"})


# The customer's contact for a message to them (intake.service.complaint_contact): notify's own
# audited read, without the complaint's text.
CONTACT_READ = Op(
    "GET",
    "/complaints/<string:number>/contact",
    "The customer's contact, for a message to them "
    "(notify): no text of the complaint; every read is audited. 410 once anonymised by retention.",
    "customer.notify",
    query=audit.PurposeIn,
    responses={200: ContactOut},
    errors=(410,),
)


# --- the customer's own pages (intake.portal, R7.2): HTML forms, every field text --------------


class PortalFormIn(_NullMeansAbsent):
    """The complaint form of a mall's page (application/x-www-form-urlencoded); what it
    registers on the web channel. `ref` is the form's own id, made when the page was served:
    the same form sent twice (a double tap, the back button) finds the first complaint."""

    ref = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{16,64}$"))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    expectation = _text(2000)
    merchant = _text(32, metadata={"description": "one of the mall's merchants (GET /malls/<mall_id>/merchants)"})
    place = _text(64)
    when = fields.String(
        validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$", error="A local time, 2026-12-06T10:30."),
        metadata={"description": "when it happened, on the mall's clock (an input of type datetime-local)"},
    )
    name = _text(64)
    phone = fields.String(required=True, validate=PHONE)


class StatusLookupIn(Schema):
    """The status look-up's form: the complaint's number and the phone it was filed with."""

    number = fields.String(required=True, validate=validate.Regexp(r"^\s*[A-Za-z0-9-]{5,40}\s*$"))
    phone = fields.String(required=True, validate=PHONE)


class StatusPageQuery(PageLanguage):
    number = fields.String(
        validate=validate.Length(max=40), metadata={"description": "the number to fill in (from the thank-you page)"}
    )
