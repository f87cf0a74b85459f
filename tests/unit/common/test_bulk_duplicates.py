"""mallcare_common.mongo.duplicates: a bulk insert's duplicate keys are redeliveries, which
the caller leaves out; any other refusal, or a write concern not met (the write is not known
to be journaled), must reach the caller as the error it is."""

import pytest
from pymongo.errors import BulkWriteError

from mallcare_common.mongo import DUPLICATE_KEY, duplicates


def refused(write_errors, concern_errors=()):
    return BulkWriteError({"writeErrors": list(write_errors), "writeConcernErrors": list(concern_errors)})


def test_duplicate_keys_are_the_positions_to_leave_out():
    exc = refused([{"index": 1, "code": DUPLICATE_KEY}, {"index": 3, "code": DUPLICATE_KEY}])
    assert duplicates(exc) == {1, 3}


@pytest.mark.parametrize(
    "exc",
    [
        refused([{"index": 0, "code": DUPLICATE_KEY}, {"index": 2, "code": 121}]),  # a validation refusal
        refused([], [{"code": 64, "errmsg": "waiting for replication timed out"}]),
        refused([{"index": 0, "code": DUPLICATE_KEY}], [{"code": 100, "errmsg": "journal"}]),
    ],
)
def test_any_other_refusal_or_an_unmet_write_concern_is_raised(exc):
    with pytest.raises(BulkWriteError):
        duplicates(exc)
