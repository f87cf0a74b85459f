"""Build the learned second opinion from labelled complaints (the corpus's JSONL format:
`complaint` with description and demands, `expected.category`):

    python -m triage.learn tests/data/triage_corpus/tuning.jsonl [--policy deploy/policy] [--out FILE]

Writes the model to the service's package (triage/second_opinion.json) unless --out says
where. The texts are read with the policy's own language rules (folds, typos, where a
demand begins), so rebuild the model when those change; tests/unit/triage/test_learned.py
fails when the shipped model is not what the corpus builds."""

import argparse
import json
import os
import sys
from pathlib import Path

from mallcare_common.policy import load_policy_dir

from . import classify, learned
from .policy import load_policy


def build(paths, classification):
    """The model's data from the labelled lines of `paths`, read under `classification`."""
    examples = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in filter(str.strip, f):
                labelled = json.loads(line)
                texts = classify.texts_of(labelled["complaint"], classification)[:2]
                examples.append((learned.features(t.problem_text() for t in texts), labelled["expected"]["category"]))
    return learned.train(examples)


def main(argv=None):
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("corpus", nargs="+", type=Path)
    args.add_argument("--policy", type=Path, default=Path(os.environ.get("MALLCARE_POLICY_DIR", "deploy/policy")))
    args.add_argument("--out", type=Path, default=Path(learned.__file__).with_name(learned.MODEL_FILE))
    opts = args.parse_args(argv)
    data = build(opts.corpus, policy_classification(opts.policy))
    opts.out.write_text(
        json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    print(
        f"{opts.out}: model {data['version']}, {sum(data['documents'].values())} complaints, "
        f"{data['vocabulary']} features",
        file=sys.stderr,
    )


def policy_classification(policy_dir):
    """The classification rules of the policy in `policy_dir` (its second opinion, the model
    being built, is left out)."""
    return load_policy_dir(policy_dir, "triage.yml", without_second_opinion).rules["classification"]


def without_second_opinion(data, malls):
    """The triage policy of `data` read by the phrase rules alone."""
    data["classification"]["second_opinion"] = None
    return load_policy(data, malls)


if __name__ == "__main__":
    main()
