"""Writes the generated part of docs/events.md from the event schemas in
mallcare_common.contracts, so the catalogue cannot drift from the code.

    .venv/bin/python scripts/event_catalogue.py          # rewrite docs/events.md
    .venv/bin/python scripts/event_catalogue.py --check  # exit 1 if it is stale (the tests do this)
"""

import sys
from pathlib import Path

from marshmallow import fields

from mallcare_common.contracts import EVENT_TYPES, EnvelopeSchema
from mallcare_common.contracts.envelope import FreeText

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"
BEGIN, END = "<!-- generated: begin -->", "<!-- generated: end -->"


def field_type(field):
    if isinstance(field, fields.Nested):
        return "object"
    if isinstance(field, fields.List):
        return f"list of {field_type(field.inner)}"
    if isinstance(field, fields.AwareDateTime):
        return "ISO-8601 time with offset"
    if isinstance(field, FreeText):
        return "scrubbed string"
    return {fields.String: "string", fields.Integer: "integer", fields.Boolean: "boolean", fields.Dict: "object"}.get(
        type(field), type(field).__name__.lower()
    )


def rows(schema, prefix=""):
    for name, field in schema().fields.items():
        notes = []
        if field.validate:
            choices = [getattr(v, "choices", None) for v in field.validators]
            notes += [", ".join(map(str, c)) for c in choices if c]
        if field.metadata.get("description"):
            notes.append(field.metadata["description"])
        if field.metadata.get("example"):
            notes.append(f"e.g. `{field.metadata['example']}`")
        required = "yes" if field.required else ("may be null" if field.allow_none else "no")
        yield f"| `{prefix}{name}` | {field_type(field)} | {required} | {'; '.join(notes)} |"
        if isinstance(field, fields.Nested):
            yield from rows(type(field.schema), f"{prefix}{name}.")


def generate():
    out = ["## Envelope", "", "| field | type | required | notes |", "|---|---|---|---|", *rows(EnvelopeSchema), ""]
    for event in EVENT_TYPES.values():
        out += [
            f"## `{event.name}` (version {event.version})",
            "",
            f"{event.summary}",
            "",
            f"Exchange `{event.source}.events` (topic, durable), routing key `{event.name}`.",
            "",
            "| payload field | type | required | notes |",
            "|---|---|---|---|",
            *rows(event.payload),
            "",
        ]
    return "\n".join(out)


def render(current):
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{generate()}\n{END}{tail}"


if __name__ == "__main__":
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if wanted == current else "docs/events.md is stale: run scripts/event_catalogue.py")
    DOC.write_text(wanted, encoding="utf-8")
