"""The report bench (bench/report_bench.py) builds a million complaints' read-model documents
with analytics' own reports.apply, from events it makes up. Analytics applies events as their
contracts load them; so each made-up event must already hold every field the contract
would add by default (the bench broke on its first complaint when
case_closed gained `without_answer`, and nothing said so until it was run)."""

import importlib.util
import sys

from marshmallow import missing

from mallcare_common.contracts import EVENT_TYPES
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))  # a bench script imports its neighbour `common`
try:
    spec = importlib.util.spec_from_file_location("report_bench", ROOT / "bench" / "report_bench.py")
    report_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report_bench)
finally:
    sys.path.remove(str(ROOT / "bench"))


class Recording(report_bench.Generator):
    """The bench's generator, folding each complaint's events twice: as the bench makes them,
    and with what their contracts would fill in; the two documents, by complaint number."""

    def __init__(self, seed):
        super().__init__(seed)
        self.folded = {}

    def _fold(self, number, events, clocks_):
        as_made = super()._fold(number, events, clocks_)
        self.folded[number] = (as_made, super()._fold(number, [filled_in(e) for e in events], clocks_))
        return as_made


def filled_in(event):
    """The event with the payload fields its contract defaults when a publisher leaves them out."""
    fields = EVENT_TYPES[event["event_type"]].payload().fields
    defaults = {
        name: field.load_default() if callable(field.load_default) else field.load_default
        for name, field in fields.items()
        if field.load_default is not missing
    }
    return {**event, "payload": {**defaults, **event["payload"]}}


def test_the_report_bench_folds_its_events_as_analytics_would_after_their_contracts():
    """The bench gives only the fields analytics reads; what the contracts would add must not
    change the read model it builds (nor be needed to build it)."""
    generator = Recording(seed=7)
    for _ in range(400):
        generator.complaint()
    assert len(generator.folded) == 400
    for number, (as_made, with_defaults) in generator.folded.items():
        assert as_made == with_defaults, number
