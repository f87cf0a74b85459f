"""Classification of the problem, not the demand (R2.1, R7.4). The category comes from
the description and the factual demand, scored by the policy's weighted phrase rules
(negated phrases, the customer's own demands and what they praise count for nothing) and its context
rules; the expectation is read only for what is asked. A second problem of its own
(a strong phrase of another category, said with weight enough) is what can make a review
meeting, never a demand.
Pure: the policy's `classification` section in, a Reading out."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .demand import read_demand
from .text import Text

At = tuple[int, int, int]  # where a phrase is said: (text, clause, offset)


@dataclass(frozen=True)
class Reading:
    category: str | None
    source: str  # channel_form, keywords or none (contract's category_source)
    confidence: float | None  # None when the channel form named the category
    confirmed: bool
    problems: tuple[str, ...]  # categories with evidence of their own, in the order said
    demand: dict[str, Any] | None
    texts: tuple[Text, ...]  # description, fact, expectation as triage.text.Text

    def words(self, terms: Iterable[str], unless: Iterable[str] = ()) -> list[str]:
        """The terms said anywhere in the complaint, not negated nor inside a phrase of `unless`."""
        return sorted({w for t in self.texts for w in t.words(terms, unless)})


def dictionary(classification: Mapping[str, Any]) -> tuple[str, ...]:
    """Every phrase the tokenizer must keep whole: the rules' terms and the extra user words."""
    terms = {t for rule in classification["phrases"] for t in rule["terms"]}
    terms |= {t for rule in classification["context"] for group in (*rule["all"], *rule["also"]) for t in group}
    terms |= set(classification["negators"]) | set(classification["demand_markers"]) | set(classification["praise"])
    terms |= set(classification["user_words"])
    return tuple(sorted(terms))


def texts_of(complaint: Mapping[str, Any], c: Mapping[str, Any]) -> tuple[Text, ...]:
    """The description, the factual demand and the expectation as triage.text.Text."""
    demands = complaint.get("demands") or {}
    return tuple(Text(s, c) for s in (complaint.get("description"), demands.get("fact"), demands.get("expectation")))


def read(complaint: Mapping[str, Any], rules: Mapping[str, Any]) -> Reading:
    """The Reading of one complaint under the policy's rules and, where the policy has
    one, the learned second opinion."""
    c = rules["classification"]
    texts = texts_of(complaint, c)
    problem = texts[:2]
    scores, strongest, first = _score(problem, c)
    # problems of their own, in the order said; not what the customer waved aside ("排队的事无所谓")
    waived = _praised(problem, c)
    strong = sorted(
        (cat for cat in scores if strongest[cat] >= c["problem_weight"] and cat not in waived),
        key=lambda cat: first[cat],
    )
    problems = tuple(cat for cat in strong if scores[cat] >= c["problem_score"])
    opinion = c.get("second_opinion")
    if opinion and any(scores[cat] < opinion["sure_problem_score"] for cat in problems):
        # a weaker problem counts only where the model reads some clause as about it: a
        # complaint about a dirty bin that mentions flies is not also about flies in food
        told = _clause_readings(problem, opinion)
        problems = tuple(cat for cat in problems if scores[cat] >= opinion["sure_problem_score"] or cat in told)
    asked = "，".join([*(t.demand_text() for t in problem), texts[2].text])
    demand = read_demand(
        asked, "，".join(t.problem_text() for t in problem), [w for t in texts for w in t.words(c["mental_damages"])]
    )
    hint = complaint.get("category_hint")
    if hint and hint in categories(rules):
        return Reading(hint, "channel_form", None, True, _with_main(hint, problems), demand, texts)
    category, confidence = None, 0.0
    if scores:
        ranked = sorted(scores.items(), key=lambda kv: _rank(kv, strongest, c))
        if len({p.split(".")[0] for p in problems}) > 1:  # problems of different kinds: filed under the first said
            ranked.sort(key=lambda kv: kv[0] != problems[0])
        category, top = ranked[0]
        # a separate problem of another attribute is not a doubt about this one
        rivals = [s for cat, s in ranked[1:] if cat not in problems or cat.split(".")[0] == category.split(".")[0]]
        margin = top / (top + (rivals[0] if rivals else 0))
        confidence = round(margin * min(1.0, top / c["full_weight"]), 2)
    carried = False
    if c.get("second_opinion"):
        category, confidence, problems, carried = _second_opinion(category, confidence, problems, problem, c)
    if category is None:
        return Reading(None, "none", 0.0, False, (), demand, texts)
    return Reading(
        category,
        "keywords",
        confidence,
        not carried and confidence >= c["confidence_threshold"],
        _with_main(category, problems),
        demand,
        texts,
    )


def _clause_readings(texts: Iterable[Text], opinion: Mapping[str, Any]) -> set[str]:
    """The categories the model reads clauses as about (each clause's likeliest, at
    `min_probability` or more), read once for all of a complaint's weaker problems."""
    model, temperature = opinion["model"], opinion["temperature"]
    told: set[str] = set()
    for text in texts:
        for i in range(len(text.clauses)):
            chances = model.probabilities([text.clause_text(i)], temperature)
            likeliest = max(chances, key=chances.get)
            if chances[likeliest] >= opinion["min_probability"]:
                told.add(likeliest)
    return told


def _second_opinion(
    category: str | None, confidence: float, problems: tuple[str, ...], texts: Iterable[Text], c: Mapping[str, Any]
) -> tuple[str | None, float, tuple[str, ...], bool]:
    """(category, confidence, problems, carried) with the learned model's opinion weighed in: the
    rules vote for their category with their confidence times `rules_weight`, the model
    with its probability of each. A category the model carries against the rules takes
    the place of the rules' reading, which was a misreading, not a second problem; one the
    rules found a problem of its own anyway leaves them as they are (the first said is
    the category). With `rules_weight` below 1 a sure reading of the rules can be
    outvoted by a model surer still. What the model carries is never confirmed (half its
    probability is the confidence): the rules and the model disagreed, or the rules found
    nothing, so a person confirms. Below `min_probability` it has no opinion ("I want to
    talk to the manager")."""
    opinion = c["second_opinion"]
    weight = opinion["rules_weight"]
    chances = opinion["model"].probabilities([t.problem_text() for t in texts], opinion["temperature"])
    weighed = {cat: p + (weight * confidence if cat == category else 0) for cat, p in chances.items()}
    best = max(weighed, key=lambda cat: weighed[cat])
    if best == category or best in problems or chances[best] < opinion["min_probability"]:
        return category, confidence, problems, False
    return best, round(chances[best] / 2, 2), tuple(p for p in problems if p != category), True


def categories(rules: Mapping[str, Any]) -> set[str]:
    return {f"{a}.{s}" for a, subs in rules["taxonomy"].items() for s in subs}


def _score(texts: Sequence[Text], c: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float], dict[str, At]]:
    """Per category: the summed weight of its distinct phrases found in each text (a phrase
    inside a longer one of the same category counts once, as the longer with the weight of
    the stronger; the factual demand, a summary of what happened, confirms it once more), its
    strongest phrase, and where it was first said (text, clause, offset)."""
    scores: dict[str, float] = {}
    strongest: dict[str, float] = {}
    first: dict[str, At] = {}

    def found(terms: Iterable[str], words_only: bool = False) -> list[tuple[str, At, int]]:
        return [
            (h.term, (n, *h.at), h.end)
            for n, t in enumerate(texts)
            for h in t.hits(terms, words_only)
            if not h.negated and not h.demand and h.at[0] not in t.praised
        ]

    def add(cat: str, score: float, weight: float, ats: list[At]) -> None:
        scores[cat] = scores.get(cat, 0) + score
        strongest[cat] = max(strongest.get(cat, 0), weight)
        first[cat] = min([first.get(cat, (9, 0, 0)), *ats])

    # the context rules first: where each applies, and what it takes the place of there (in its
    # clause; everywhere for a rule `within: complaint`): a smell in the lift is not the lift's
    # failure, and a sour noodle soup said apart from the broken gate stays a problem of its own
    fired: list[tuple[Mapping[str, Any], list[At]]] = []
    instead: set[tuple[str, tuple[int, ...] | None]] = set()
    for rule in c["context"]:
        # every group said in one and the same clause (or anywhere, for a rule `within: complaint`),
        # and each group of `also` anywhere; its words count inside longer ones too (汤 in 羊肉汤)
        groups = [found(group) for group in rule["all"]]
        scope = 2 if rule["within"] == "clause" else 0
        clauses = set.intersection(*({at[:scope] for _, at, _ in g} for g in groups))
        if clauses and all(found(group) for group in rule["also"]):
            fired.append((rule, [at for g in groups for _, at, _ in g if at[:scope] in clauses]))
            instead |= {(other, clause if scope else None) for other in rule["instead_of"] for clause in clauses}

    def replaced(cat: str, at: At) -> bool:
        return (cat, None) in instead or (cat, at[:2]) in instead

    by_category: dict[str, list[tuple[float, str, At, int]]] = {}
    for rule in c["phrases"]:
        by_category.setdefault(rule["category"], []).extend(
            (rule["weight"], *hit)
            for hit in found(rule["terms"], words_only=True)
            if not replaced(rule["category"], hit[1])
        )
    for cat, hits in by_category.items():
        spans = [((n, i), start, end, weight) for weight, _, (n, i, start), end in hits]
        kept: dict[tuple[int, str], float] = {}
        for weight, term, (n, i, start), end in hits:
            inside = any(k == (n, i) and s <= start and end <= e and (s, e) != (start, end) for k, s, e, _ in spans)
            if not inside:  # the longer phrase, weighing as much as the strongest phrase inside it
                weight = max(w for k, s, e, w in spans if k == (n, i) and start <= s and e <= end)
                kept[n, term] = max(kept.get((n, term), 0), weight)
        if kept:
            add(cat, sum(kept.values()), max(kept.values()), [at for _, term, at, _ in hits if (at[0], term) in kept])
    for rule, ats in fired:
        ats = [at for at in ats if not replaced(rule["category"], at)]
        if ats:
            add(rule["category"], rule["weight"], rule["weight"], ats)
    return scores, strongest, first


def _praised(texts: Iterable[Text], c: Mapping[str, Any]) -> set[str]:
    """The categories named in a clause that praises or waves aside ("收银员人很好")."""
    return {
        rule["category"]
        for t in texts
        if t.praised
        for rule in c["phrases"]
        for h in t.hits(rule["terms"], words_only=True)
        if not h.negated and h.at[0] in t.praised
    }


def _rank(item: tuple[str, float], strongest: Mapping[str, float], c: Mapping[str, Any]) -> tuple[float, float, int]:
    cat, score = item
    order = next(i for i, r in enumerate([*c["phrases"], *c["context"]]) if r["category"] == cat)
    return (-score, -strongest[cat], order)


def _with_main(category: str, problems: tuple[str, ...]) -> tuple[str, ...]:
    """The problems in the order said, with the proposed category among them."""
    return problems if category in problems else (category, *problems)
