"""Retention for intake's complaints (issue 7):

    python -m intake.retention [--dry-run] [--config services/intake/config.yml]

A complaint whose case closed (resolution's case_closed; a reopening clears it)
more than retention_months ago is anonymised: the customer keeps only the member
tier, the pseudonymous reference and duplicate fingerprint go, and the free text
(description, demands, the events in its outbox) loses phones, e-mails, ID and
member numbers and the customer's own name, and so do the customer's replies; the
files that came with its mails are deleted (their names go). Mall, channel, times,
location, product, status and scores stay, so the statistics do not change. A
complaint already anonymised is not touched again.
"""

import sys

from mallcare_common import retention
from mallcare_common.personal import ANONYMISED, anonymise_text, anonymised_customer

from .policy import load_policy


def due(cutoff):
    """Complaints whose case closed at or before `cutoff` and that still hold personal data."""
    return {"case_state": "closed", "closed_at": {"$lte": cutoff}, "anonymised_at": None}


def anonymised(doc, now):
    """The `$set` that anonymises one complaint (a plain rule: no I/O)."""
    customer = doc.get("customer") or {}
    return {
        "customer": anonymised_customer(customer),
        "customer_ref": None,
        "fingerprint": None,
        "description": anonymise_text(doc["description"], customer),
        "tone_note": anonymise_text(doc.get("tone_note"), customer),
        "demands": anonymise_text(doc.get("demands") or {}, customer),
        "order_no": ANONYMISED if doc.get("order_no") else None,
        **({"attachments": _without_names(doc["attachments"])} if doc.get("attachments") else {}),
        **(
            {
                "replies": [
                    {
                        **reply,
                        "sender": None,
                        "text": anonymise_text(reply["text"], customer),
                        "attachments": _without_names(reply["attachments"]),
                    }
                    for reply in doc["replies"]
                ]
            }
            if doc.get("replies")
            else {}
        ),
        "outbox": [_anonymised_entry(entry, customer) for entry in doc.get("outbox", [])],
        "anonymised_at": now,
    }


def _without_names(files):
    """A complaint's file references once the files are deleted: a name may name the customer."""
    return [{**file, "filename": ANONYMISED if file.get("filename") else None, "stored": False} for file in files]


def _anonymised_entry(entry, customer):
    event = anonymise_text(entry["event"], customer)
    payload = event.get("payload") or {}
    if isinstance(payload.get("customer"), dict):  # complaint_registered: no reference, no masked contact
        payload["customer"] = {**payload["customer"], "ref": None, "contact_masked": None}
    if payload.get("order_no"):
        payload["order_no"] = ANONYMISED
    return {**entry, "event": event}


def anonymise(db, cutoff, now, dry_run):
    """Counts: complaints due, and those this run anonymised (0 in a dry run)."""
    candidates = anonymised_count = 0
    for doc in db.complaints.find(due(cutoff)):
        candidates += 1
        if not dry_run:
            # anonymised_at in the filter: two runs at once anonymise each complaint once
            result = db.complaints.update_one(
                {"_id": doc["_id"], "anonymised_at": None}, {"$set": anonymised(doc, now)}
            )
            anonymised_count += result.modified_count
            db.attachments.delete_many({"complaint_no": doc["_id"]})
    return {"candidates": candidates, "anonymised": anonymised_count}


if __name__ == "__main__":
    sys.exit(retention.command("intake", anonymise, load_policy))
