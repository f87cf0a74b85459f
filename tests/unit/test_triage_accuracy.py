"""R2.1, R2.4, R7.4 (issue 16): triage grades the labelled corpus as a service-desk lead
would. The tuning part (tests/data/triage_corpus/tuning.jsonl, the lines the rules were
tuned on and the second opinion learned from) must reach attribute >= 97%, sub-type >= 90%,
risk level >= 95% and at most 1% false review meetings. The held-out part (heldout.jsonl,
lines neither saw) meets the sub-type and risk targets, not the attribute and false-meeting
ones (docs/benchmarks.md, fourth round): it must not fall below where it was first measured,
so a change that reads unseen wording worse fails. A failure lists the worst misses. The
figures come from bench/triage_accuracy.py, the same code that prints them."""

import importlib.util

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("triage_accuracy", ROOT / "bench" / "triage_accuracy.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

HELD_OUT_FLOOR = {k: v for k, v in bench.HELD_OUT_FIRST.items() if k != "false_meetings"}


@pytest.fixture(scope="module")
def policy():
    return bench.load_policy_dir(ROOT / "deploy" / "policy", "triage.yml", bench.load_policy)


def shortfalls_of(part, policy, **bar):
    path = bench.PARTS[part]
    if not path.exists():
        pytest.skip(f"{path.name} is not in this checkout")
    figures, misses = bench.score(bench.read_lines(path), policy)
    short = bench.shortfalls(figures, **bar)
    # the worst misses first: a wrong attribute, then a false review meeting, then the rest
    order = ["attribute", "review_meeting", "sub_type", "risk_level", "department"]
    misses.sort(key=lambda m: min(order.index(w) for w in m[1]))
    return short, f"{part}: {'; '.join(short)}\n" + "\n".join(bench.describe_miss(*m) for m in misses[:15])


def test_the_tuning_part_meets_the_targets(policy):
    short, report = shortfalls_of("tuning", policy)
    assert not short, report


def test_the_held_out_part_reads_unseen_wording_no_worse_than_when_first_measured(policy):
    short, report = shortfalls_of(
        "held-out", policy, targets=HELD_OUT_FLOOR, max_false_meetings=bench.HELD_OUT_FIRST["false_meetings"]
    )
    assert not short, report
