"""The JSON answers: times as ISO 8601, whatever the answer holds."""
from datetime import date, datetime, timezone
from decimal import Decimal

from mallcare_common.web import json_response, jsonable


def test_times_in_answers_are_iso_8601():
    # found by the fuzz run: analytics' actions and clocks said "2026-12-03 11:48:23+00:00"
    at = datetime(2026, 12, 3, 11, 48, 23, 838000, tzinfo=timezone.utc)
    value = {"at": at, "day": date(2026, 12, 31), "amount": Decimal("39.90"), "nested": [{"at": at}]}
    assert jsonable(value) == {"at": "2026-12-03T11:48:23.838000+00:00", "day": "2026-12-31", "amount": "39.90",
                               "nested": [{"at": "2026-12-03T11:48:23.838000+00:00"}]}
    assert b'"2026-12-03T11:48:23.838000+00:00"' in json_response(200, value).get_data()
