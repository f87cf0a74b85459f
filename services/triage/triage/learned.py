"""The learned second opinion on a complaint's category (R2.1, R7.4): a naive Bayes model
over the characters and character pairs of the problem as told (what the customer asks
for cut off) and its English words and word pairs, trained from the labelled corpus.
Phrase rules know the words someone wrote into the policy; the model knows the wording
of every labelled complaint, so it reads what the rules miss ("翻白眼", "退款成功但未到账")
and the rules read what it blurs. `classify.read` weighs the two.

Pure: the model is data (a JSON file built by `python -m triage.learn`), nothing of the
web or messaging edge."""

import hashlib
import json
import math
from itertools import pairwise
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

_CJK = re.compile(r"[\u4e00-\u9fff]+")
_WORD = re.compile(r"[a-z][a-z']+")
MODEL_FILE = "second_opinion.json"


def features(problem_texts: Iterable[str]) -> set[str]:
    """The distinct features of normalised problem texts (triage.text.Text.problem_text())."""
    found: set[str] = set()
    for text in problem_texts:
        for run in _CJK.findall(text):
            found.update(run)
            found.update(run[i : i + 2] for i in range(len(run) - 1))
        words = _WORD.findall(text)
        found.update(f"w:{w}" for w in words)
        found.update(f"b:{a}_{b}" for a, b in pairwise(words))
    return found


@dataclass(frozen=True)
class Model:
    version: str
    categories: tuple[str, ...]
    log_prior: dict[str, float]  # category -> log P(category)
    log_seen: dict[str, dict[str, float]]  # category -> {feature: log P(feature | category)}
    log_unseen: dict[str, float]  # category -> log P(a known feature never seen with the category)
    vocabulary: frozenset[str]

    def probabilities(self, problem_texts: Iterable[str], temperature: float) -> dict[str, float]:
        """P(category | text), softened by `temperature` (naive Bayes is sure of itself far
        beyond what it knows: dividing the log-odds spreads the mass to be weighed)."""
        found = features(problem_texts)
        scores: dict[str, float] = {}
        for cat in self.categories:
            seen, unseen = self.log_seen[cat], self.log_unseen[cat]
            # summed in a fixed order: a set's order changes with the process's hash seed
            scores[cat] = self.log_prior[cat] + math.fsum(
                seen.get(f, unseen) for f in sorted(found) if f in self.vocabulary
            )
        top = max(scores.values())
        weights = {cat: math.exp((s - top) / temperature) for cat, s in scores.items()}
        total = sum(weights.values())
        return {cat: w / total for cat, w in weights.items()}


def train(examples: Iterable[tuple[Iterable[str], str]], alpha: float = 0.3, min_count: int = 2) -> dict[str, Any]:
    """The counts of a model: `examples` are (features, category) pairs. Features seen in
    fewer than `min_count` complaints are dropped (a name, a number: no evidence)."""
    examples = list(examples)
    if not examples:
        raise ValueError("No labelled complaints to learn from.")
    documents = Counter(cat for _, cat in examples)
    counts: dict[str, Counter[str]] = {cat: Counter() for cat in documents}
    total: Counter[str] = Counter()
    for found, cat in examples:
        counts[cat].update(found)
        total.update(found)
    kept = {f for f, n in total.items() if n >= min_count}
    data: dict[str, Any] = {
        "alpha": alpha,
        "documents": dict(sorted(documents.items())),
        "counts": {cat: dict(sorted((f, n) for f, n in c.items() if f in kept)) for cat, c in sorted(counts.items())},
        "vocabulary": len(kept),
    }
    data["version"] = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
    return data


def load(data: dict[str, Any]) -> Model:
    """A Model from the counts `train` wrote."""
    alpha, size = data["alpha"], data["vocabulary"]
    documents = data["documents"]
    all_documents = sum(documents.values())
    log_seen: dict[str, dict[str, float]] = {}
    log_unseen: dict[str, float] = {}
    vocabulary: set[str] = set()
    for cat, counts in data["counts"].items():
        denominator = math.log(sum(counts.values()) + alpha * size)
        log_seen[cat] = {f: math.log(n + alpha) - denominator for f, n in counts.items()}
        log_unseen[cat] = math.log(alpha) - denominator
        vocabulary |= counts.keys()
    return Model(
        data["version"],
        tuple(sorted(documents)),
        {cat: math.log(n / all_documents) for cat, n in documents.items()},
        log_seen,
        log_unseen,
        frozenset(vocabulary),
    )


def shipped() -> Model:
    """The model built from the corpus and shipped with the service."""
    return load(json.loads(resources.files("triage").joinpath(MODEL_FILE).read_text(encoding="utf-8")))
