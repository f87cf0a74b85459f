"""Complaint text made comparable (R2.1, R7.4): full-width and case folded, traditional
characters read as simplified (OpenCC t2s), English typos mended, then cut into clauses
and words by jieba with the policy's own dictionary, so that a phrase can be found with
whether it is negated ("没有过期", "not expired") and whether it is what the customer
asks for rather than what happened ("客户要求全额退款"). Pure: no I/O beyond loading
the two libraries' dictionaries once per process, and nothing of the web or messaging edge."""

import re
import unicodedata
import warnings
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import opencc

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # jieba 0.42 imports the deprecated pkg_resources
    import jieba

jieba.setLogLevel(60)  # no "Building prefix dict" chatter in service logs
_T2S = opencc.OpenCC("t2s")
# clause breaks: punctuation, and the spaces customers type between Chinese phrases instead of it
_BREAK = re.compile(r"[，。！？!?；;、\n\r\t]+|(?<!\d)[,.](?!\d)|…+|~+|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_CONTRACTION = re.compile(r"n['’]t\b")
_ASCII_WORD = re.compile(r"[a-z0-9]")

Token = tuple[str, int]  # a word and where it starts in its part of the text


def normalise(text: str | None, typos: Mapping[str, str] | None = None, folds: dict[int, str] | None = None) -> str:
    """Full-width to half-width (NFKC), case folded, traditional to simplified, the policy's
    character folds (OpenCC keeps 帐 and 著 where mainland text writes 账 and 着), typos mended."""
    text = _T2S.convert(unicodedata.normalize("NFKC", text or "").casefold())
    if folds:
        text = text.translate(folds)
    text = _CONTRACTION.sub(" not", text)
    for wrong, right in (typos or {}).items():
        text = re.sub(rf"\b{re.escape(wrong)}\b", right, text)
    return text


@lru_cache(maxsize=4)
def tokenizer(words: tuple[str, ...]) -> Any:
    """One jieba tokenizer per dictionary (a tuple of words), built once per process."""
    tk = jieba.Tokenizer()
    tk.initialize()
    for word in words:
        if not _ASCII_WORD.match(word):
            tk.add_word(word, freq=20000)
    return tk


def prepare(dictionary: tuple[str, ...], terms: Iterable[str]) -> None:
    """Build the tokenizer and the terms' patterns now (at service start, on a policy reload)
    rather than at the first complaint, which would wait about a second for them."""
    tokenizer(dictionary)
    for term in terms:
        _pattern(term)


@dataclass(frozen=True)
class Hit:
    term: str
    negated: bool
    demand: bool  # inside what the customer asks for, not what happened
    at: tuple[int, int]  # (clause, offset): where it is said, to tell which problem came first
    end: int  # offset after it in its clause, to tell a phrase inside a longer one


class Text:
    """One piece of a complaint, normalised and cut into clauses of (word, start) tokens."""

    def __init__(self, raw: str | None, language: Mapping[str, Any]) -> None:
        self.language = language
        self.text = normalise(raw, language["typos"], _folds(language["folds"]))
        tk = tokenizer(language["dictionary"])
        self.phrases = _phrases(language["dictionary"])
        self.clauses: list[tuple[str, list[Token]]] = []
        for part in _BREAK.split(self.text):
            tokens = [(w, s) for w, s, _ in tk.tokenize(part) if w.strip()]
            for clause in _split_on(tokens, set(language["clause_breaks"])):
                if clause:
                    self.clauses.append((part, clause))
        # clauses that praise ("收银员人很好", "the staff were friendly"): a passing mention, no problem
        self.praised = {h.at[0] for h in self.hits(language["praise"]) if not h.negated}

    def hits(self, terms: Iterable[str], words_only: bool = False) -> list[Hit]:
        """Every occurrence of each normalised term, with its negation and demand marks.
        With `words_only`, a one-character term counts only as a word of its own or inside a
        phrase of the policy (not 尿 in 糖尿病, 酸 in 酸奶; 臭 in 有臭味): for the category; risk
        and legal words ("酒" in 假酒) count anywhere."""
        found = []
        for term in terms:
            if _normal(term) not in self.text:  # most of the policy's terms are not said at all
                continue
            pattern = _pattern(term)
            for i, (part, tokens) in enumerate(self.clauses):
                lo, hi = tokens[0][1], tokens[-1][1] + len(tokens[-1][0])
                inside: Container[int] = self._inside_words(tokens) if words_only and len(term) == 1 else ()
                for m in pattern.finditer(part, lo, hi):
                    if m.start() in inside:
                        continue
                    found.append(
                        Hit(
                            term,
                            self._negated(tokens, m.start()),
                            self._demand(tokens, m.start()),
                            (i, m.start()),
                            m.end(),
                        )
                    )
        return found

    def words(self, terms: Iterable[str], unless: Iterable[str] = ()) -> list[str]:
        """The terms found, not negated (in problems and demands alike), nor said inside a
        phrase of `unless`."""
        covers = [(h.at, h.end) for h in self.hits(unless)]
        return sorted(
            {
                h.term
                for h in self.hits(terms)
                if not h.negated and not any(c == h.at[0] and s <= h.at[1] and h.end <= e for (c, s), e in covers)
            }
        )

    def demand_text(self) -> str:
        """What the customer asks for: clauses from their demand marker on, and whole
        clauses that name a remedy ("退一赔十", "20倍赔偿") without a marker."""
        markers, remedies = self.language["demand_markers"], self.language["remedy_words"]
        parts = []
        for part, tokens in self.clauses:
            end = tokens[-1][1] + len(tokens[-1][0])
            at = next((s for w, s in tokens if w in markers), None)
            if at is None and any(r in part[tokens[0][1] : end] for r in remedies):
                at = tokens[0][1]
            if at is not None:
                parts.append(part[at:end])
        return "，".join(parts)

    def clause_text(self, i: int) -> str:
        """The normalised text of clause `i`, as said (a demand in it included)."""
        part, tokens = self.clauses[i]
        return part[tokens[0][1] : tokens[-1][1] + len(tokens[-1][0])]

    def problem_text(self) -> str:
        """The clauses with what the customer asks for cut off: where prices are named."""
        markers = self.language["demand_markers"]
        parts = []
        for part, tokens in self.clauses:
            at = next((s for w, s in tokens if w in markers), tokens[-1][1] + len(tokens[-1][0]))
            parts.append(part[tokens[0][1] : at])
        return "，".join(parts)

    def _inside_words(self, tokens: list[Token]) -> set[int]:
        """Offsets in a longer word that is not one of the policy's phrases (糖尿病, 倒霉, 酸奶;
        not 有臭味)."""
        return {s + k for w, s in tokens if len(w) > 1 and w not in self.phrases for k in range(len(w))}

    def _negated(self, tokens: list[Token], start: int) -> bool:
        window, negators = self.language["negation_window"], self.language["negators"]
        before = [w for w, s in tokens if s < start]
        # a negator glued to the term inside one token ("未过期" as one word) counts as well
        inside = next((w[: start - s] for w, s in tokens if s < start < s + len(w)), "")
        return any(w in negators for w in before[-window:]) or any(inside.endswith(n) for n in negators)

    def _demand(self, tokens: list[Token], start: int) -> bool:
        return any(w in self.language["demand_markers"] for w, s in tokens if s < start)


def _split_on(tokens: list[Token], breaks: set[str]) -> Iterator[list[Token]]:
    clause: list[Token] = []
    for token in tokens:
        if token[0] in breaks:
            yield clause
            clause = []
        else:
            clause.append(token)
    yield clause


@lru_cache(maxsize=4)
def _phrases(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalise(w) for w in words)


def _folds(folds: Mapping[str, str]) -> dict[int, str]:
    return _fold_table(tuple(sorted(folds.items())))


@lru_cache(maxsize=4)
def _fold_table(pairs: tuple[tuple[str, str], ...]) -> dict[int, str]:
    return str.maketrans(dict(pairs))


@lru_cache(maxsize=8192)
def _normal(term: str) -> str:
    return normalise(term)


@lru_cache(maxsize=8192)
def _pattern(term: str) -> re.Pattern[str]:
    """A policy term as a pattern on normalised text; English terms match whole words."""
    term = _normal(term)
    escaped = re.escape(term)
    if _ASCII_WORD.match(term[:1]):
        escaped = rf"(?<![a-z]){escaped}"
    if _ASCII_WORD.match(term[-1:]):
        escaped = rf"{escaped}(?![a-z])"
    return re.compile(escaped)
