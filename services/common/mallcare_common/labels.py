"""The words staff read for the services' code words (deploy/policy/labels.yml), in every
language the console speaks, with the malls' and merchants' names and time zones from the
mall registry: what the console serves as GET /labels, so that no page shows
`product.quality_defect`, `sh-xujiahui` or `T-17` where a person expects words.

Policy is data: a broken file is refused at load with field-level messages."""

from os import PathLike
from typing import Any

from marshmallow import Schema, fields, validate

from .malls import MallRegistry
from .policy import read_policy_file

LANGUAGES = ("zh", "en")


class _WordsSchema(Schema):
    zh = fields.String(required=True, validate=validate.Length(min=1, max=80))
    en = fields.String(required=True, validate=validate.Length(min=1, max=80))


class _LabelsSchema(Schema):
    version = fields.String(required=True)
    groups = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z_]+$")),
        values=fields.Dict(
            keys=fields.String(validate=validate.Length(min=1, max=64)), values=fields.Nested(_WordsSchema)
        ),
        required=True,
    )


def load_labels(data: Any) -> dict[str, Any]:
    """{version, groups: {group: {code: {zh, en}}}} from parsed YAML; raises marshmallow.ValidationError."""
    loaded: dict[str, Any] = _LabelsSchema().load(data)
    return loaded


def load_labels_file(path: str | PathLike[str]) -> dict[str, Any]:
    """The file's labels; InvalidPolicy naming the file and the fields otherwise."""
    labels: dict[str, Any] = read_policy_file(path, load_labels)
    return labels


def served(labels: dict[str, Any], registry: MallRegistry) -> dict[str, Any]:
    """What GET /labels answers: the groups, and each mall's name in both languages (the
    Chinese name where the registry has no English one), its time zone and its merchants'
    names (merchant ids are the mall's own: T-17 at one mall is not T-17 at another)."""
    return {
        "version": labels["version"],
        "languages": list(LANGUAGES),
        "groups": labels["groups"],
        "malls": {
            mall.id: {
                "name": {"zh": mall.name, "en": mall.name_en or mall.name},
                "code": mall.code,
                "timezone": mall.calendar.timezone,
                "merchants": {m["id"]: m["name"] for m in mall.merchants},
            }
            for mall in registry.malls.values()
        },
    }
