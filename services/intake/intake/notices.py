"""A mall's public notice of product batch checks (R7.6; seed 002: 核查同批次商品并公示结果) at
`/portal/<mall code>/notices`: each batch whose check's result a store manager published
(resolution's batch-notices), the latest first: the goods by barcode and batch code, safe or
not, what was done with the batch, the result in the mall's words and when it was published.
Among the customer's own pages (intake.portal: the same style, no script, zh and en); no
complaint, customer or member of staff is on it.

Pure: the service passes in the mall and resolution's notices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from mallcare_common.malls import Mall
from mallcare_common.pages import Words

from .portal import PAGES, _switch, mall_name, portal_link, when

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "商品批次核查公示",
        "about": "{mall}对顾客反映问题的商品批次进行核查，结果公示如下。",
        "none": "目前没有需要公示的核查结果。",
        "barcode": "商品条码",
        "batch": "批号",
        "verdict": "核查结论",
        "verdict.safe": "合格",
        "verdict.unsafe": "不合格",
        "action": "处理措施",
        "published": "公示时间",
        "action.back_on_shelf": "恢复销售",
        "action.withdrawn": "已下架停售",
        "action.returned_to_supplier": "已退回供应商",
        "action.destroyed": "已销毁",
        "action.recalled": "已召回，已购顾客可凭小票退款",
        "complain": "对商品有疑问？在线投诉",
    },
    "en": {
        "title": "Product batch checks",
        "about": "{mall} checks every batch of goods customers report a problem with. The results:",
        "none": "No results to publish at the moment.",
        "barcode": "Barcode",
        "batch": "Batch",
        "verdict": "Result",
        "verdict.safe": "Safe",
        "verdict.unsafe": "Unsafe",
        "action": "What we did",
        "published": "Published",
        "action.back_on_shelf": "Back on sale",
        "action.withdrawn": "Withdrawn from sale",
        "action.returned_to_supplier": "Returned to the supplier",
        "action.destroyed": "Destroyed",
        "action.recalled": "Recalled: customers who bought it get a refund with their receipt",
        "complain": "A problem with something you bought? Complain online",
    },
}


def notices_link(base: str, mall: Mall, lang: str = "zh") -> str:
    return f"{base}/portal/{mall.code}/notices" + ("?lang=en" if lang == "en" else "")


def page(base: str, lang: str, mall: Mall, notices: Sequence[Mapping[str, Any]]) -> str:
    """The mall's notice page: its published batch results (resolution's, the latest first,
    `published_at` a datetime)."""
    text = Words(TEXT, lang)
    items = "".join(_notice(text, lang, mall, n) for n in notices) or f'<p id="none">{text("none")}</p>'
    return PAGES.page(
        lang,
        TEXT[lang]["title"],
        "portal-notices",
        _switch(notices_link(base, mall, "en" if lang == "zh" else "zh"), lang) + f"<h1>{text('title')}</h1>"
        f'<p class="about">{text("about", mall=mall_name(mall, lang))}</p>'
        f"{items}"
        f'<p class="links"><a href="{escape(portal_link(base, mall, lang))}">{text("complain")}</a></p>',
    )


def _notice(text: Words, lang: str, mall: Mall, notice: Mapping[str, Any]) -> str:
    product = notice["product"]
    action = notice["action"]
    # an action the policy added since these words were written is shown by its code
    said = text(f"action.{action}") if f"action.{action}" in TEXT[lang] else escape(action)
    facts = [(text(key), escape(product[key])) for key in ("barcode", "batch") if product.get(key)]
    facts += [
        (text("verdict"), f'<b data-verdict="{escape(notice["verdict"])}">{text("verdict." + notice["verdict"])}</b>'),
        (text("action"), said),
        (text("published"), escape(when(notice["published_at"], mall, lang))),
    ]
    return (
        f'<section class="notice" data-number="{escape(notice["number"])}"><dl>'
        + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
        + f"</dl><p>{escape(notice['summary'])}</p></section>"
    )
