"""Issue 7 (personal data), without a broker or a store: a full read needs
customer.contact for the mall and a purpose, is refused once anonymised, and is
recorded before it is answered; retention counts calendar months and records
every run, dry runs too."""

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from mallcare_common import audit, auth, retention
from mallcare_common.web import Gone
from tests.conftest import POLICY_DIR

UTC = timezone.utc
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
COMPLAINT = {"_id": "SHXJH-20261123-0001", "mall_id": "sh-xujiahui", "customer": {"phone": "13812345678"}}


def principal(role="handler", malls=("sh-xujiahui",), user="E3501"):
    access = auth.load_access(POLICY_DIR / "access.yml")
    return auth.Principal(user, role, tuple(malls), permissions=auth.permissions_of(access, role))


class Collection:
    def __init__(self):
        self.docs = []

    def insert_one(self, doc):
        self.docs.append(doc)


def store():
    return SimpleNamespace(audit_log=Collection(), retention_runs=Collection())


def read(db, caller, doc=COMPLAINT, purpose="call back about the refund"):
    return audit.full_read(
        db,
        caller,
        service="intake",
        subject="complaint",
        doc=doc,
        purpose_args={"purpose": purpose},
        now=NOW,
        request_id="req-1",
        permission="customer.contact",
    )


def test_a_full_read_is_recorded_with_who_why_when_and_the_request():
    db = store()
    record = read(db, principal())
    assert db.audit_log.docs == [record]
    assert {k: v for k, v in record.items() if k != "_id"} == {
        "at": NOW,
        "service": "intake",
        "user": "E3501",
        "role": "handler",
        "mall_id": "sh-xujiahui",
        "subject": "complaint",
        "number": "SHXJH-20261123-0001",
        "purpose": "call back about the refund",
        "request_id": "req-1",
    }


@pytest.mark.parametrize(
    "caller",
    [
        principal("admin", ["*"], "A0001"),  # admins read no customer data
        principal("analyst", ["*"], "A7001"),
        principal("handler", ["bj-chaoyang"], "E4001"),
    ],
)  # another mall's handler
def test_without_customer_contact_for_the_mall_nothing_is_read_or_recorded(caller):
    db = store()
    with pytest.raises(auth.Forbidden):
        read(db, caller)
    assert db.audit_log.docs == []


@pytest.mark.parametrize("purpose", ["", "   ", None, "x" * 201])
def test_a_read_without_a_purpose_is_refused_with_a_field_message(purpose):
    db = store()
    with pytest.raises(ValidationError) as error:
        audit.full_read(
            db,
            principal(),
            service="intake",
            subject="complaint",
            doc=COMPLAINT,
            purpose_args={} if purpose is None else {"purpose": purpose},
            now=NOW,
            request_id="r",
            permission="customer.contact",
        )
    assert "purpose" in error.value.messages and db.audit_log.docs == []


def test_an_anonymised_record_is_gone():
    db = store()
    with pytest.raises(Gone, match="anonymised on 2026-11-01"):
        read(db, principal(), doc={**COMPLAINT, "anonymised_at": datetime(2026, 11, 1, tzinfo=UTC)})
    assert db.audit_log.docs == []


@pytest.mark.parametrize(
    "now,months,expected",
    [
        (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), 24, datetime(2024, 11, 30, 10, 0, tzinfo=UTC)),
        (datetime(2026, 3, 31, 10, 0, tzinfo=UTC), 1, datetime(2026, 2, 28, 10, 0, tzinfo=UTC)),  # shorter month
        (datetime(2026, 3, 31, 10, 0, tzinfo=UTC), 25, datetime(2024, 2, 29, 10, 0, tzinfo=UTC)),  # leap year
        (datetime(2026, 1, 15, 0, 0, tzinfo=UTC), 13, datetime(2024, 12, 15, 0, 0, tzinfo=UTC)),
    ],
)
def test_retention_counts_calendar_months(now, months, expected):
    assert retention.months_before(now, months) == expected


def test_every_run_is_recorded_with_its_cutoff_and_counts():
    db, seen = store(), []

    def anonymise(db_, cutoff, now, dry_run):
        seen.append((cutoff, now, dry_run))
        return {"candidates": 3, "anonymised": 0 if dry_run else 3}

    record = retention.run(db, "intake", anonymise, now=NOW, months=24, dry_run=True, by="A0001")
    assert seen == [(datetime(2024, 11, 30, 10, 0, tzinfo=UTC), NOW, True)]
    assert db.retention_runs.docs == [record]
    assert (record["candidates"], record["anonymised"], record["dry_run"], record["by"]) == (3, 0, True, "A0001")
    public = retention.public(record)
    assert public["closed_before"] == "2024-11-30T10:00:00+00:00" and public["run_id"] == record["_id"]
