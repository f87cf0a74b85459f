"""Personal data: what may leave the service that holds it, and what is left of it
after the retention period.

- Events, logs, analytics and ordinary reads carry the masked customer
  (`masked_customer`) and text `scrub`bed of phones, e-mails, ID and member numbers.
- Every ordinary read shows free text masked (`mask_text`: `scrub`, and the customer's
  own name and contact where the record knows them), whoever reads: each service's
  output schema names its free-text fields (`MaskedOut.free_text`).
- The full customer, and the text as the customer told it, are read only through an
  authorised, audited read (audit.py).
- `anonymised_customer` and `anonymise_text` are what retention leaves behind.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import Schema, fields, post_dump

ANONYMISED = "[anonymised]"  # the marker that replaces a name, a contact or an identifier
NAME_MARKER = "[name]"  # the customer's own name where it appears in free text
CONTACT_MARKER = "[contact]"  # a contact of theirs no pattern finds (a social handle), in an ordinary read
# wechat_openid: the customer's OpenID at the mall's official account, which the account
# can message; personal data like a phone
CONTACT_WAYS = ("phone", "email", "member_id", "social_handle", "wechat_openid")


def mask_phone(phone: str) -> str:
    """138****5678: the first three and last four digits."""
    digits = re.sub(r"\D", "", phone)
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def mask_email(email: str) -> str:
    """z***@example.com: the first letter and the domain."""
    local, _, domain = email.partition("@")
    return local[:1] + "***@" + domain


def mask_openid(openid: str) -> str:
    """oX3k****q9Zw: the first and last four characters of a WeChat OpenID (28 of them)."""
    return openid[:4] + "****" + openid[-4:] if len(openid) >= 12 else "****"


def mask_contact(customer: Mapping[str, Any]) -> str | None:
    """Phone as 138****5678, e-mail as w***@example.com, a WeChat OpenID as oX3k****q9Zw;
    None without any of them."""
    if customer.get("phone"):
        return mask_phone(customer["phone"])
    if customer.get("email"):
        return mask_email(customer["email"])
    if customer.get("wechat_openid"):
        return mask_openid(customer["wechat_openid"])
    return None


def mask_name(name: str | None) -> str | None:
    """王** / Z***: the first character, one star for each of the others (at least one)."""
    if not name:
        return None
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1)


def masked_customer(customer: Mapping[str, Any] | None) -> dict[str, Any]:
    """What ordinary reads show of a customer: enough to recognise and route, no way to reach them."""
    customer = customer or {}
    live = {k: v for k, v in customer.items() if v != ANONYMISED}

    def gone(*keys: str) -> str | None:  # after retention: say so rather than mask the marker
        return ANONYMISED if any(customer.get(k) == ANONYMISED for k in keys) else None

    return {
        "name_masked": mask_name(live.get("name")) or gone("name"),
        "contact_masked": mask_contact(live) or gone("phone", "email", "wechat_openid"),
        "reachable_by": [way for way in CONTACT_WAYS if live.get(way)],
        "member_tier": customer.get("member_tier"),
    }


def anonymised_customer(customer: Mapping[str, Any] | None) -> dict[str, Any]:
    """The customer after retention: the tier stays (statistics), everything that names or reaches them goes."""
    customer = customer or {}
    kept = {"member_tier": customer["member_tier"]} if customer.get("member_tier") else {}
    return {**kept, **{key: ANONYMISED for key in ("name", *CONTACT_WAYS) if customer.get(key)}}


# ASCII classes throughout: Chinese text runs straight into numbers and addresses
# ("会员M00123投诉", "发至zhang@example.com谢谢"), and \w would count it as part of them.
_PERSONAL = [
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"), "[e-mail]"),
    (re.compile(r"(?<![0-9])\d{17}[\dXx](?![0-9A-Za-z])"), "[ID number]"),
    (re.compile(r"(?<!\d)(\+?86[- ]?)?1\d{2}[- ]?\d{4}[- ]?\d{4}(?!\d)"), "[phone]"),
    (re.compile(r"(?<!\d)\d{3,4}-\d{7,8}(?!\d)"), "[phone]"),
    (re.compile(r"(?<![A-Za-z0-9])M\d{3,}(?![A-Za-z0-9])"), "[member id]"),
]


def scrub(value: Any) -> Any:
    """Text (or lists and dicts of it) with phone numbers, e-mail addresses, ID and
    member numbers taken out."""
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    for pattern, replacement in _PERSONAL:
        value = pattern.sub(replacement, value)
    return value


def anonymise_text(value: Any, customer: Mapping[str, Any] | None = None) -> Any:
    """`scrub`, and the customer's own name and contact wherever the text repeats them
    (a name cannot be found by pattern, but the record knows it)."""
    return _replace_known(scrub(value), _known(customer, ANONYMISED))


def mask_text(value: Any, customer: Mapping[str, Any] | None = None) -> Any:
    """Free text (or lists and dicts of it) as every ordinary read shows it: `scrub`bed,
    and the customer's own name and contact replaced where the record knows them. A
    dict's identifiers (keys `id`, `..._id`, `..._no`) are not free text and stay."""
    return _masked(value, _known(customer, CONTACT_MARKER))


def masked_fields(
    record: Mapping[str, Any], names: Iterable[str], customer: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`record` (a dict) with its free-text fields `names` as ordinary reads show them."""
    return {**record, **{name: mask_text(record[name], customer) for name in names if record.get(name) is not None}}


def _known(customer: Mapping[str, Any] | None, contact_marker: str) -> list[tuple[str, str]]:
    """The customer's own name and contacts, longest first, with the marker each becomes."""
    known = [
        (v.strip(), NAME_MARKER if k == "name" else contact_marker)
        for k, v in (customer or {}).items()
        if k in ("name", *CONTACT_WAYS) and isinstance(v, str) and len(v.strip()) >= 2 and v != ANONYMISED
    ]
    return sorted(known, key=lambda pair: len(pair[0]), reverse=True)


_IDENTIFIER = re.compile(r"(^|_)(id|no)$")


def _masked(value: Any, known: list[tuple[str, str]]) -> Any:
    if isinstance(value, list):
        return [_masked(v, known) for v in value]
    if isinstance(value, dict):
        return {k: v if _IDENTIFIER.search(k) else _masked(v, known) for k, v in value.items()}
    return _replace_known(scrub(value), known)


def _replace_known(value: Any, known: list[tuple[str, str]]) -> Any:
    if isinstance(value, list):
        return [_replace_known(v, known) for v in value]
    if isinstance(value, dict):
        return {k: _replace_known(v, known) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    for text, marker in known:
        if text.isascii():  # a Latin name or handle as a word of its own: "Li", not the li of "Limited"
            value = re.sub(rf"(?<![A-Za-z0-9]){re.escape(text)}(?![A-Za-z0-9])", marker, value)
        else:
            value = value.replace(text, marker)
    return value


class MaskedCustomerOut(Schema):
    name_masked = fields.String(allow_none=True, metadata={"example": "王**"})
    contact_masked = fields.String(allow_none=True, metadata={"example": "138****5678"})
    reachable_by = fields.List(
        fields.String(),
        metadata={"description": "which of phone, email, member_id, social_handle, wechat_openid the record holds"},
    )
    member_tier = fields.String(allow_none=True)


class MaskedCustomer(fields.Nested):
    """An output field: the stored customer, dumped as its masked view (MaskedCustomerOut)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(MaskedCustomerOut, **kwargs)

    # marshmallow's Nested names its first parameter unlike Field's: an override matches only one
    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return super()._serialize(masked_customer(value), attr, obj, **kwargs)  # type: ignore[no-untyped-call]


class MaskedOut(Schema):
    """An output schema whose free-text fields (`free_text`: top-level field names; lists
    and dicts under them too) every dump shows masked (`mask_text`), the record's own
    customer taken out by name where the record holds one. What the customer told comes
    whole only from the audited read (audit.full_read)."""

    free_text: tuple[str, ...] = ()

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        many = self.many if many is None else many
        return super().dump(list(obj) if many else obj, many=many)  # a cursor: the hook reads each record again

    @post_dump(pass_original=True)
    def _mask_free_text(self, data: dict[str, Any], record: Any, **kwargs: Any) -> dict[str, Any]:
        return masked_fields(data, self.free_text, record.get("customer"))
