"""The chain's mall registry: ids, short codes, time zones, opening hours, closed days,
and each mall's merchants (the tenants the service desk picks from).

Policy is data: the registry is a versioned YAML file (deploy/policy/malls.yml),
validated at load so that a broken file is refused with field-level messages.
Chain-wide defaults apply to every mall unless the mall overrides them.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from os import PathLike
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates

from .calendar import WEEKDAYS, BusinessCalendar, parse_hours


class Hours(fields.Field[tuple[time, time]]):
    """ "HH:MM-HH:MM", loaded as (from, to)."""

    def _deserialize(
        self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> tuple[time, time]:
        if isinstance(value, str):
            try:
                return parse_hours(value)
            except ValueError:
                pass
        raise ValidationError("Expected opening hours as HH:MM-HH:MM.")


class _Timezone(fields.String):
    def _deserialize(self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        name = super()._deserialize(value, attr, data, **kwargs)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"Unknown time zone {name!r}.") from exc
        return name


def week_field(**kwargs: Any) -> fields.Dict:
    """weekday -> "HH:MM-HH:MM" (opening hours, shift patterns)."""
    return fields.Dict(keys=fields.String(validate=validate.OneOf(WEEKDAYS)), values=Hours(), **kwargs)


class _MerchantContactSchema(Schema):
    """Who at the merchant answers our complaints about them (R7.5): notify mails them the case."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    email = fields.Email(required=True)
    phone = fields.String(validate=validate.Regexp(r"^\+?[0-9 -]{7,20}$"))


class _MerchantSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=32))  # as complaints carry it
    name = fields.String(required=True, validate=validate.Length(min=1, max=128))
    floor = fields.String(validate=validate.Length(max=16))
    area = fields.String(validate=validate.Length(max=64))
    contact = fields.Nested(_MerchantContactSchema)


class _MallSchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{1,40}$"))
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9]{2,8}$"))
    name = fields.String(required=True)
    name_en = fields.String(validate=validate.Length(min=1, max=128))  # the console's English; `name` otherwise
    timezone = _Timezone()
    opening_hours = week_field()
    closed_dates = fields.List(fields.Date(), load_default=list)
    merchants = fields.List(fields.Nested(_MerchantSchema), load_default=list)

    @validates("merchants")
    def _unique_merchants(self, merchants: list[dict[str, Any]], **kwargs: Any) -> None:
        ids = [m["id"] for m in merchants]
        if len(ids) != len(set(ids)):
            raise ValidationError("Merchant ids must be unique within a mall.")


class _DefaultsSchema(Schema):
    timezone = _Timezone(required=True)
    opening_hours = week_field(required=True)


class _RegistrySchema(Schema):
    version = fields.String(required=True)
    chain = fields.String(required=True)
    defaults = fields.Nested(_DefaultsSchema, required=True)
    malls = fields.List(fields.Nested(_MallSchema), required=True, validate=validate.Length(min=1))

    @validates("malls")
    def _unique(self, malls: list[dict[str, Any]], **kwargs: Any) -> None:
        for key in ("id", "code"):
            values = [m[key] for m in malls]
            if len(values) != len(set(values)):
                raise ValidationError(f"Mall {key}s must be unique.")


@dataclass(frozen=True)
class Mall:
    id: str
    code: str
    name: str
    calendar: BusinessCalendar
    name_en: str | None = None
    merchants: tuple[dict[str, Any], ...] = ()  # {id, name, floor?, area?, contact?}, as the registry lists them

    def merchant(self, merchant_id: str | None) -> dict[str, Any] | None:
        """The registry's entry of one of the mall's merchants (None when it lists no such one)."""
        return next((m for m in self.merchants if m["id"] == merchant_id), None)


@dataclass(frozen=True)
class MallRegistry:
    version: str
    chain: str
    malls: dict[str, Mall]

    def get(self, mall_id: str) -> Mall | None:
        return self.malls.get(mall_id)

    def __getitem__(self, mall_id: str) -> Mall:
        """A mall known to be in the registry (KeyError otherwise)."""
        return self.malls[mall_id]

    def __contains__(self, mall_id: object) -> bool:
        return mall_id in self.malls


def load_registry(data: Any) -> MallRegistry:
    """Build the registry from parsed YAML; raises marshmallow.ValidationError."""
    doc = _RegistrySchema().load(data)
    defaults = doc["defaults"]
    malls: dict[str, Mall] = {}
    for m in doc["malls"]:
        calendar = BusinessCalendar(
            timezone=m.get("timezone", defaults["timezone"]),
            opening_hours=m.get("opening_hours", defaults["opening_hours"]),
            closed_dates=frozenset(m["closed_dates"]),
        )
        malls[m["id"]] = Mall(
            id=m["id"],
            code=m["code"],
            name=m["name"],
            calendar=calendar,
            name_en=m.get("name_en"),
            merchants=tuple(m["merchants"]),
        )
    return MallRegistry(version=doc["version"], chain=doc["chain"], malls=malls)


def load_registry_file(path: str | PathLike[str]) -> MallRegistry:
    with open(path, encoding="utf-8") as handle:
        return load_registry(yaml.safe_load(handle))
