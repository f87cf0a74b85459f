"""Triage's accuracy on the labelled corpus (issue 16; R2.1, R2.4, R7.4).

Runs triage's pure `rules.assess` over every line of each corpus part
(tests/data/triage_corpus/tuning.jsonl: the lines the rules were tuned on and the learned
second opinion was trained on; heldout.jsonl: lines neither saw) with the shipped policy
(deploy/policy) and model (triage/second_opinion.json), a fixed
`now` and a history that answers "earlier complaints by this customer" from the line's
`previous_complaints` (no recurrences, no load). A part whose file is absent is skipped.

Prints per part: accuracy of the attribute, the sub-type (the whole category) overall and
per sub-type, the risk level, the department; the false review-meeting rate (a meeting
where the label says none, over the lines labelled without one) and the missed meetings;
how many categories were only proposed (below the policy's confidence); then the misses. Ends with 4 summary
lines (targets: attribute >= 97%, sub-type
>= 90%, risk level >= 95%, false review meetings <= 1%).

    python bench/triage_accuracy.py [--misses N] [FILE.jsonl ...]

Files named on the command line are benched instead of the two parts. No services,
no broker: about 4 ms per complaint on one core.
"""

import argparse
import json
import platform
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(p) for p in sorted((ROOT / "services").iterdir()) if p.is_dir()]

from mallcare_common.policy import load_policy_dir  # noqa: E402
from triage import rules  # noqa: E402
from triage.policy import load_policy  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "triage_corpus"
PARTS = {"tuning": CORPUS / "tuning.jsonl", "held-out": CORPUS / "heldout.jsonl"}
TARGETS = {"attribute": 0.97, "sub_type": 0.90, "risk_level": 0.95}
MAX_FALSE_MEETINGS = 0.01
# The held-out part (held7-* and held8-*, 300 lines) as first measured, untuned, on 2026-12-05
# with policy 2026-12-05.5 and model c94de337ae61 (commit c81ccad): sub-type and risk level
# meet the targets, the attribute and false review meetings do not (docs/benchmarks.md). A
# floor, so that a change that reads unseen wording worse fails; raise it, never lower it.
HELD_OUT_FIRST = {"attribute": 286 / 300, "sub_type": 283 / 300, "risk_level": 289 / 300, "false_meetings": 5 / 278}
NOW = datetime(2026, 12, 3, 16, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


class LineHistory:
    """History look-ups answered from the corpus line itself."""

    def __init__(self, previous):
        self.previous = previous

    def count_by_customer(self, ref, since):
        return self.previous

    def count_recurrences(self, mall_id, merchant_id, category, since, until):
        return 0

    def open_load(self, mall_id):
        return {}


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def complaint_of(line):
    c = line["complaint"]
    return {
        "mall_id": "sh-xujiahui",
        "channel": c["channel"],
        "description": c["description"],
        "demands": c.get("demands") or {},
        "location": c.get("location") or {},
        "customer": {"ref": line["id"], "member_tier": (c.get("customer") or {}).get("member_tier", "none")},
        "anger_score": c.get("anger_score"),
        "category_hint": None,
        "received_at": NOW,
    }


def score(lines, policy):
    """The figures of one part, and its misses (line, what was wrong, got, expected)."""
    n = len(lines)
    right = Counter()
    per_sub = defaultdict(lambda: [0, 0])
    expected_no_meeting = expected_meeting = false_meetings = missed_meetings = 0
    unconfirmed = unconfirmed_right = 0
    misses = []
    for line in lines:
        want = line["expected"]
        got = rules.assess(
            complaint_of(line), policy, NOW, LineHistory(line["complaint"].get("previous_complaints") or 0)
        )
        category = got["category"] or "none.none"
        checks = {
            "attribute": category.split(".")[0] == want["category"].split(".")[0],
            "sub_type": category == want["category"],
            "risk_level": got["risk_level"] == want["risk_level"],
            "department": got["department"] == want["department"],
        }
        right.update(k for k, ok in checks.items() if ok)
        if not got["category_confirmed"]:
            unconfirmed += 1
            unconfirmed_right += checks["sub_type"]
        per_sub[want["category"]][0] += 1
        per_sub[want["category"]][1] += checks["sub_type"]
        if want["review_meeting"]:
            expected_meeting += 1
            missed_meetings += not got["review_meeting"]
        else:
            expected_no_meeting += 1
            false_meetings += got["review_meeting"]
        wrong = [k for k, ok in checks.items() if not ok]
        if got["review_meeting"] != want["review_meeting"]:
            wrong.append("review_meeting")
        if wrong:
            misses.append((line, wrong, got))
    figures = {k: right[k] / n for k in ("attribute", "sub_type", "risk_level", "department")}
    figures.update(
        n=n,
        per_sub={k: v[1] / v[0] for k, v in sorted(per_sub.items())},
        per_sub_n={k: v[0] for k, v in per_sub.items()},
        false_meetings=false_meetings / expected_no_meeting if expected_no_meeting else 0.0,
        false_meetings_n=false_meetings,
        missed_meetings=missed_meetings,
        expected_meetings=expected_meeting,
        unconfirmed=unconfirmed,
        unconfirmed_right=unconfirmed_right,
    )
    return figures, misses


def shortfalls(figures, targets=TARGETS, max_false_meetings=MAX_FALSE_MEETINGS):
    """What falls below the targets (or another bar), in words (empty when all are met)."""
    short = [f"{k} {figures[k]:.1%} < {t:.1%}" for k, t in targets.items() if figures[k] < t]
    if figures["false_meetings"] > max_false_meetings:
        short.append(f"false review meetings {figures['false_meetings']:.1%} > {max_false_meetings:.1%}")
    return short


def describe_miss(line, wrong, got):
    want, c = line["expected"], line["complaint"]
    text = " / ".join(
        filter(
            None,
            [
                c["description"].replace("\n", " "),
                (c.get("demands") or {}).get("fact"),
                (c.get("demands") or {}).get("expectation"),
            ],
        )
    )
    return (
        f"{line['id']} [{', '.join(wrong)}] got {got['category']} {got['risk_level']} {got['department']}"
        f"{' meeting' if got['review_meeting'] else ''} {[r['reason'] for r in got['risk_reasons']]}; "
        f"want {want['category']} {want['risk_level']} {want['department']}"
        f"{' meeting' if want['review_meeting'] else ''} {want['risk_reasons']}: {text[:160]}"
    )


def report(name, figures, misses, show):
    print(f"\n== {name}: {figures['n']} complaints")
    for k in ("attribute", "sub_type", "risk_level", "department"):
        print(f"  {k:<12} {figures[k]:7.1%}")
    print(
        f"  false review meetings {figures['false_meetings']:.1%} ({figures['false_meetings_n']}), "
        f"missed {figures['missed_meetings']} of {figures['expected_meetings']}"
    )
    print(
        f"  proposed for a person to confirm (below the confidence threshold): {figures['unconfirmed']}, "
        f"of which right {figures['unconfirmed_right']}"
    )
    print("  per sub-type:")
    for sub, acc in figures["per_sub"].items():
        print(f"    {sub:<32} {acc:7.1%}  (n={figures['per_sub_n'][sub]})")
    if misses and show:
        print(f"  misses ({len(misses)}, first {min(show, len(misses))}):")
        for miss in misses[:show]:
            print("    " + describe_miss(*miss))


def summary(name, figures):
    if figures is None:
        return f"{name}: absent"
    short = shortfalls(figures)
    return (
        f"{name} (n={figures['n']}): attribute {figures['attribute']:.1%}, sub-type {figures['sub_type']:.1%}, "
        f"risk {figures['risk_level']:.1%}, department {figures['department']:.1%}, false meetings "
        f"{figures['false_meetings']:.1%}, missed {figures['missed_meetings']}/{figures['expected_meetings']}"
        f" -- {'meets targets' if not short else 'BELOW: ' + '; '.join(short)}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--misses", type=int, default=30, help="misses to list per part")
    args = parser.parse_args(argv)
    policy = load_policy_dir(ROOT / "deploy" / "policy", "triage.yml", load_policy)
    parts = {p.stem: p for p in args.files} if args.files else PARTS
    print(
        f"triage accuracy, policy {policy.version}, {platform.node()} {platform.processor() or platform.machine()},"
        f" {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )
    results = {}
    for name, path in parts.items():
        if not path.exists():
            results[name] = None
            continue
        figures, misses = score(read_lines(path), policy)
        results[name] = figures
        report(name, figures, misses, args.misses)
    names = list(results)[:2] if len(results) >= 2 else [*results, "-"]
    print()
    print(summary(names[0], results.get(names[0])))
    print(summary(names[1], results.get(names[1])) if names[1] != "-" else "(one part)")
    print("targets: attribute >= 97%, sub-type >= 90%, risk level >= 95%, false review meetings <= 1%")
    met = [n for n, f in results.items() if f is not None and not shortfalls(f)]
    below = [n for n, f in results.items() if f is not None and shortfalls(f)]
    print(f"verdict: met by {', '.join(met) or 'none'}; below in {', '.join(below) or 'none'}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
