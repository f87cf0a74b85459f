"""Triage's tallies against the real store: what two processes count together is exact,
whether a process knows a tally already (update_many) or meets it first (an upsert), and
a correction moves the count from the old category and handler to the new."""

from datetime import datetime, timezone

from triage.storage import AssessmentStore, Assessments, KnownKeys

AT = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def assessment(category, owner="E3501", merchant="T-17"):
    return {
        "mall_id": "sh-xujiahui",
        "merchant_id": merchant,
        "category": category,
        "triaged_at": AT,
        "owner": {"id": owner} if owner else None,
        "status": "open",
    }


def tallies(db):
    return {t["_id"]: t["n"] for t in db.tallies.find()}


def test_two_processes_count_every_assessment_once_and_a_correction_moves_it(started_store):
    db = started_store(Assessments, "triage").database
    stores = [AssessmentStore(db, KnownKeys()), AssessmentStore(db, KnownKeys())]  # two processes' own
    for n in range(5):
        stores[n % 2].count_change(None, assessment("product.quality_defect"))
    stores[0].count_change(assessment("product.quality_defect"), assessment("service.attitude", owner="E3502"))
    assert tallies(db) == {
        "mall:sh-xujiahui|product.quality_defect|2026-11-23": 4,
        "merchant:T-17|product.quality_defect|2026-11-23": 4,
        "mall:sh-xujiahui|service.attitude|2026-11-23": 1,
        "merchant:T-17|service.attitude|2026-11-23": 1,
        "load:sh-xujiahui|E3501": 4,
        "load:sh-xujiahui|E3502": 1,
    }
    assert stores[1].open_load("sh-xujiahui") == {"E3501": 4, "E3502": 1}
