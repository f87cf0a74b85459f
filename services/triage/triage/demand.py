"""What the customer asks for, read for multiples and sums (R2.1, R3.4, R7.4), and
whether it is more than the law grants on the complaint's legal basis. Works on text
already normalised by triage.text (simplified, half-width, lower case). Pure."""

import re
from collections.abc import Mapping
from typing import Any

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_ENGLISH = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twenty": 20,
    "thirty": 30,
    "fifty": 50,
    "hundred": 100,
    "double": 2,
    "triple": 3,
    "twice": 2,
    "thrice": 3,
}
_NUM = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万]+)"
_WORD = r"(one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|fifty|hundred)"
_MULTIPLES = [
    re.compile(r"退一赔" + _NUM),
    re.compile(_NUM + r"\s*倍"),
    re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*(?:x|×|times)(?![a-z])"),
    re.compile(r"(?<![a-z])x\s*(\d+(?:\.\d+)?)(?![\d.])"),
    re.compile(rf"(?<![a-z]){_WORD}[\s-]*(?:times|fold)(?![a-z])"),
    re.compile(r"(?<![a-z])(double|triple)(?![a-z])"),
]
_DOUBLE = re.compile(r"双倍|翻倍|加倍")
_AMOUNTS = [
    re.compile(r"(?:¥|rmb|cny)\s*(\d+(?:,\d{3})*(?:\.\d+)?)\s*(万|k)?"),
    re.compile(_NUM + r"\s*(万|千)?\s*(?:元|块|圆|rmb|yuan|cny|kuai|quid)(?![a-z])"),
]
# a sum named as what something cost, also inside the demand ("50元的酸奶", "花了50元")
# or in brackets after what the multiple is of ("三倍货款（1299元）", "3x the price (1299 yuan)")
_PRICE_BEFORE = re.compile(
    r"(?:花了|价格|价值|售价|单价|标价|原价|买了|买的|货款|价款|货值|购价|购买价|商品价|paid|cost|costs|"
    r"bought it for|price|purchase price)\s*[(（]?\s*(?:共|约|为|是|of|was)?\s*$"
)
_PRICE_AFTER = re.compile(r"^\s*(?:的|一|买的|a |for a |for the )")


def number(token: str) -> float:
    """An Arabic, Chinese or English number: '20', '二十', '十', '两万', 'twenty'."""
    token = token.replace(",", "")
    if token in _ENGLISH:
        return _ENGLISH[token]
    try:
        return float(token)
    except ValueError:
        pass
    total, section, digit = 0, 0, None
    for ch in token:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch == "万":
            total, section, digit = (total + section + (digit or 0)) * 10000, 0, None
        else:
            section += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
    return total + section + (digit or 0)


def multiples(text: str) -> list[float]:
    found = [number(m.group(1)) for p in _MULTIPLES for m in p.finditer(text)]
    if _DOUBLE.search(text):
        found.append(2)
    return [f for f in found if f]


def amounts(text: str) -> list[tuple[int, bool]]:
    """(yen in fen, is it named as a price) for every sum in the text."""
    found: list[tuple[int, int, bool]] = []
    for pattern in _AMOUNTS:
        for m in pattern.finditer(text):
            value = number(m.group(1)) * {"万": 10000, "千": 1000, "k": 1000}.get(m.group(2), 1)
            priced = bool(_PRICE_BEFORE.search(text[: m.start()]) or _PRICE_AFTER.match(text[m.end() :]))
            found.append((m.start(), round(value * 100), priced))
    return [(fen, priced) for _, fen, priced in sorted(found)]


def read_demand(asked: str, problem: str, mental_damages: object) -> dict[str, Any] | None:
    """The parsed demand: `asked` is what the customer asks for, `problem` what happened
    (prices named there count as the price); None when nothing is asked."""
    if not asked.strip("， ") and not mental_damages:
        return None
    in_demand = amounts(asked)
    asked_sums = [fen for fen, priced in in_demand if not priced]
    prices = [fen for fen, priced in in_demand if priced] + [fen for fen, _ in amounts(problem)]
    found = multiples(asked)
    return {
        "multiple": max(found) if found else None,
        "amount_fen": max(asked_sums) if asked_sums else None,
        "price_fen": prices[0] if prices else None,
        "mental_damages": bool(mental_damages),
    }


def beyond_the_law(demand: Mapping[str, Any] | None, basis: Mapping[str, Any]) -> str | None:
    """Why the demand asks more than `basis` (a legal basis of the policy) grants, or None.

    The law grants a refund of the price plus `multiple` times it, at least `minimum` yuan;
    a multiple above the law's is beyond it whatever the sum comes to."""
    if not demand:
        return None
    if demand["mental_damages"]:
        return f"asks mental damages; {basis['label']} grants none"
    if demand["multiple"] and demand["multiple"] > basis["multiple"]:
        return f"asks {demand['multiple']:g}x; {basis['label']} grants {basis['multiple']:g}x"
    amount, price = demand["amount_fen"], demand["price_fen"]
    if amount is None:
        return None
    if price:
        most = price + max(price * basis["multiple"], basis["minimum"] * 100)
        if amount > most:
            return (
                f"asks {amount / 100:g} yuan on a {price / 100:g}-yuan price; {basis['label']} grants at most "
                f"{most / 100:g}"
            )
    elif amount > basis["minimum"] * 100:
        return f"asks {amount / 100:g} yuan, no price named; {basis['label']} grants {basis['minimum']:g} at least"
    return None
