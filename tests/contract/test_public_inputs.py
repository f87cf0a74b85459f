"""Issue 23, field limits: everything a caller without a staff token may send (the customer's
pages and links, a channel's or merchant's key) is bounded in its marshmallow schema, so no
text is longer and no list holds more than the schema says (422 naming the field beyond):
every text field has a length, a pattern or a set of values, every list a most items."""

import pytest
from marshmallow import fields, validate

from mallcare_common.auth import load_access
from mallcare_common.openapi import KEY_ROLES, documented_operations
from scripts.openapi import SERVICES, service_class
from tests.helpers import POLICY_DIR

PERMISSIONS = load_access(POLICY_DIR / "access.yml")["permissions"]
LIMITING = (validate.OneOf, validate.Regexp, validate.Equal)


def public(op):
    """Whether a caller without a staff token may call the operation."""
    return op.permission is None or bool(set(PERMISSIONS.get(op.permission, [])) & set(KEY_ROLES))


def most(field):
    """The field's largest length or item count its validators allow (None: unbounded)."""
    limits = [v.max if v.equal is None else v.equal for v in field.validators if isinstance(v, validate.Length)]
    return min((n for n in limits if n is not None), default=None)


def unbounded(schema, path=""):
    """The dotted names of a schema's input fields without a bound."""
    found = []
    for name, field in schema.fields.items():
        where = f"{path}{field.data_key or name}"
        if field.dump_only:
            continue
        if isinstance(field, fields.Nested):
            found += unbounded(field.schema, where + ".")
        elif isinstance(field, fields.List):
            if most(field) is None:
                found.append(where)
            inner = field.inner
            if isinstance(inner, fields.Nested):
                found += unbounded(inner.schema, where + "[].")
            elif isinstance(inner, fields.String) and most(inner) is None and not _limited(inner):
                found.append(where + "[]")
        elif isinstance(field, (fields.Dict, fields.Raw)) and not isinstance(field, fields.String):
            found.append(where)
        elif isinstance(field, fields.String) and most(field) is None and not _limited(field):
            found.append(where)
    return found


def _limited(field):
    # intake's _Channels takes only channel names, each once (its own check)
    return any(isinstance(v, LIMITING) for v in field.validators) or type(field).__name__ == "_Channels"


@pytest.mark.parametrize("name", SERVICES)
def test_every_field_the_public_may_send_is_bounded(name):
    problems = {
        f"{op.method} {op.path} ({kind})": found
        for op in documented_operations(service_class(name))
        if public(op)
        for kind, schema in (("body", op.body), ("form", op.form), ("query", op.query))
        if schema is not None and (found := unbounded(schema()))
    }
    assert not problems, f"give these a validate.Length (or OneOf, Regexp): {problems}"


def test_the_check_finds_an_unbounded_text_and_list():
    from marshmallow import Schema

    class Loose(Schema):
        note = fields.String()
        tags = fields.List(fields.String(validate=validate.Length(max=10)))
        kept = fields.String(validate=validate.Length(max=10))

    assert unbounded(Loose()) == ["note", "tags"]
