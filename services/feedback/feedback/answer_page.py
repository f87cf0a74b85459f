"""The page the answer link opens (R4.1): a customer on a phone gives 1-5 stars, ticks the
reasons and writes a comment, in simplified Chinese (`?lang=en`: English). A satisfaction
survey's link (R7.12) opens the same page with its general question: stars on the mall's
complaint handling and a comment. One plain HTML
form, posted back with the token: no script at all, so it works with JavaScript off, and
the Content-Security-Policy allows none. The token is the proof (CSRF included: a page
that does not hold the link cannot post an answer for it); no page sends a Referer, so
the token stays out of other sites' logs; no page is cached.

Pure: the service passes in what a page shows and sends the Response; every value is
escaped here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from mallcare_common.auth import TooManyRequests
from mallcare_common.pages import HTML_LANG, PHONE_STYLE, Pages, Words
from mallcare_common.pages import language as language  # the service reads a page's language here
from mallcare_common.web import Gone, request_id, status_of

from .rules import AlreadyAnswered

COMMENT_MAX = 2000  # as LinkAnswerIn takes it

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "switch": "English",
        "title": "服务回访",
        "about": "{mall} · 投诉编号 {number}",
        "intro": "您的投诉已处理完毕。请告诉我们您对处理结果是否满意。",
        "stars": "您对处理结果满意吗？",
        "star": "{n} 星：{word}",
        "hint": "1 星 非常不满意 · 5 星 非常满意",
        "reasons": "哪些方面还不够好？（可多选，选填）",
        "comment": "其他意见（选填）",
        "send": "提交",
        "problem": "请检查您的回答。",
        "problem.score": "请选择 1 到 5 颗星。",
        "problem.comment": f"意见最多 {COMMENT_MAX} 字。",
        "problem.reasons": "请从列表中选择原因。",
        "thanks": "谢谢您的反馈。",
        "thanks.follow_up": "谢谢您的反馈，我们会尽快再次跟进。",
        "close": "您可以关闭此页面了。",
        "forged.title": "链接无效",
        "forged": "这个回访链接无效。请打开短信或消息中的完整链接。",
        "expired.title": "链接已过期",
        "expired": "这个回访链接已过期，商场会致电回访您。",
        "answered.title": "您已回答过了",
        "answered": "您已提交过这次回访的评价，谢谢！每个链接只能回答一次。",
        "closed.title": "回访已结束",
        "closed": "这次回访已结束，无需再回答。谢谢！",
        "unknown.title": "找不到回访",
        "unknown": "找不到这次回访。如有疑问，请联系商场服务台。",
        "unreadable.title": "无法读取您的回答",
        "unreadable": "您的回答无法读取，请返回重新提交。",
        "unavailable.title": "暂时无法处理",
        "unavailable": "系统繁忙，请稍后再试。参考编号：{reference}",
        "busy.title": "请稍后再试",
        "busy": "您的操作太频繁了，请 {seconds} 秒后再试。",
        "too_large.title": "内容太长",
        "too_large": "您提交的内容太长了，请缩短意见后重新提交。",
        "survey.title": "顾客满意度调查",
        "survey.intro": "我们定期邀请部分顾客评价本商场处理投诉的工作，您的意见将帮助我们改进服务。",
        "survey.stars": "您对本商场处理投诉的总体评价？",
        "survey.thanks": "谢谢您参加调查。",
        "survey_expired.title": "调查已结束",
        "survey_expired": "这份调查的链接已过期，无需再回答。谢谢您的关注！",
    },
    "en": {
        "switch": "中文",
        "title": "How did we do?",
        "about": "{mall} · complaint {number}",
        "intro": "We have finished handling your complaint. Please tell us whether you are satisfied.",
        "stars": "Are you satisfied with the outcome?",
        "star": "{n} of 5 stars: {word}",
        "hint": "1 star: very dissatisfied · 5 stars: very satisfied",
        "reasons": "What fell short? (tick any, optional)",
        "comment": "Anything else? (optional)",
        "send": "Send",
        "problem": "Please check your answer.",
        "problem.score": "Please choose 1 to 5 stars.",
        "problem.comment": f"A comment takes at most {COMMENT_MAX} characters.",
        "problem.reasons": "Please choose reasons from the list.",
        "thanks": "Thank you for your feedback.",
        "thanks.follow_up": "Thank you for your feedback. We will follow up with you again soon.",
        "close": "You may close this page.",
        "forged.title": "This link is not valid",
        "forged": "This answer link is not valid. Please open the whole link from your message.",
        "expired.title": "This link has expired",
        "expired": "This answer link has expired; the mall will call you instead.",
        "answered.title": "You have answered already",
        "answered": "You have answered this survey already. Thank you! Each link takes one answer.",
        "closed.title": "This survey is closed",
        "closed": "This survey is closed; no answer is needed. Thank you!",
        "unknown.title": "Survey not found",
        "unknown": "We cannot find this survey. Please ask the mall's service desk if in doubt.",
        "unreadable.title": "Your answer could not be read",
        "unreadable": "Your answer could not be read. Please go back and send it again.",
        "unavailable.title": "Please try again shortly",
        "unavailable": "We cannot take your answer just now. Please try again in a few minutes. Reference: {reference}",
        "busy.title": "Please try again shortly",
        "busy": "Too many tries from here; please try again in {seconds} seconds.",
        "too_large.title": "Too long",
        "too_large": "What you sent is too long. Please shorten your comment and send it again.",
        "survey.title": "Customer satisfaction survey",
        "survey.intro": "From time to time we ask some of our customers how well the mall handles complaints. "
        "Your answer helps us do better.",
        "survey.stars": "How well does the mall handle complaints, overall?",
        "survey.thanks": "Thank you for taking our survey.",
        "survey_expired.title": "This survey has ended",
        "survey_expired": "The link to this survey has expired; no answer is needed. Thank you!",
    },
}
STAR_WORDS = {
    "zh": ("非常不满意", "不满意", "一般", "满意", "非常满意"),
    "en": ("very dissatisfied", "dissatisfied", "so-so", "satisfied", "very satisfied"),
}

STYLE = (
    PHONE_STYLE + "fieldset{margin:1.25rem 0;padding:0;border:0}legend{margin-bottom:.5rem;font-weight:600}"
    ".stars{display:flex;flex-direction:row-reverse;justify-content:flex-end;gap:.25rem}"
    ".stars input{position:absolute;width:1px;height:1px;opacity:0}"
    ".stars label{padding:0 .1rem;font-size:2.6rem;line-height:1;color:#cbd2d9;cursor:pointer}"
    ".stars input:checked~label,.stars label:hover,.stars label:hover~label{color:#f0b429}"
    ".stars input:focus-visible+label{outline:2px solid #1c6ea4;outline-offset:2px}"
    ".hint{margin:.25rem 0 0;color:#52606d;font-size:.85rem}"
    ".reasons label{display:flex;align-items:center;gap:.6rem;padding:.55rem 0;border-bottom:1px solid #e4e7eb}"
    ".reasons input{width:1.25rem;height:1.25rem;flex:none}"
    "textarea{width:100%;padding:.5rem;font:inherit;border:1px solid #cbd2d9;border-radius:.4rem}"
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
)
PAGES = Pages(STYLE)


def answer_link(base: str, token: str, lang: str = "zh") -> str:
    """The page of `token` on the public address `base` (web.public_base_url)."""
    return f"{base}/answers?" + urlencode({"token": token, **({"lang": lang} if lang != "zh" else {})})


def thanks_message(lang: str, satisfied: bool) -> str:
    return TEXT[lang]["thanks" if satisfied else "thanks.follow_up"]


def respond(status: int, html: str, headers: Mapping[str, str] | None = None) -> Response:
    return PAGES.respond(status, html, headers)


def form(
    base: str,
    token: str,
    lang: str,
    mall: str,
    complaint_no: str,
    reasons: Mapping[str, Mapping[str, str]],
    entered: Mapping[str, Any] | None = None,
    problems: Mapping[str, Any] | None = None,
) -> str:
    """The answer form: `reasons` the policy's tags with their words; `entered` and `problems`
    (a ValidationError's messages) when it comes back refused, with what the customer chose."""
    text, entered = Words(TEXT, lang), entered or {}
    action = f"{base}/answers/form" + (f"?lang={lang}" if lang != "zh" else "")
    other = "en" if lang == "zh" else "zh"
    stars = _stars(lang, entered)
    ticks = "".join(
        f'<label><input type="checkbox" name="reasons" value="{escape(tag)}"'
        f"{_checked(tag in entered.get('reasons', ()))}>{escape(words[lang])}</label>"
        for tag, words in reasons.items()
    )
    return PAGES.page(
        lang,
        TEXT[lang]["title"],
        "answer-form",
        (
            f'<p class="lang"><a href="{escape(answer_link(base, token, other))}" hreflang="{HTML_LANG[other]}">'
            f"{text('switch')}</a></p>"
            f'<h1>{text("title")}</h1><p class="about">{text("about", mall=mall, number=complaint_no)}</p>'
            + (f'<p class="alert" role="alert" id="problem">{text(_problem(problems))}</p>' if problems else "")
            + f"<p>{text('intro')}</p>"
            f'<form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            f'<fieldset><legend>{text("stars")}</legend><div class="stars">{stars}</div>'
            f'<p class="hint">{text("hint")}</p></fieldset>'
            f'<fieldset class="reasons"><legend>{text("reasons")}</legend>{ticks}</fieldset>'
            f'<label for="comment">{text("comment")}</label>'
            f'<textarea id="comment" name="comment" rows="4" maxlength="{COMMENT_MAX}">'
            f"{escape(entered.get('comment', ''))}</textarea>"
            f'<button type="submit">{text("send")}</button></form>'
        ),
    )


def survey_form(
    base: str,
    token: str,
    lang: str,
    mall: str,
    entered: Mapping[str, Any] | None = None,
    problems: Mapping[str, Any] | None = None,
) -> str:
    """A satisfaction survey's form (R7.12): the general question, 1-5 stars, and a comment."""
    text, entered = Words(TEXT, lang), entered or {}
    action = f"{base}/answers/form" + (f"?lang={lang}" if lang != "zh" else "")
    other = "en" if lang == "zh" else "zh"
    return PAGES.page(
        lang,
        TEXT[lang]["survey.title"],
        "survey-form",
        (
            f'<p class="lang"><a href="{escape(answer_link(base, token, other))}" hreflang="{HTML_LANG[other]}">'
            f"{text('switch')}</a></p>"
            f'<h1>{text("survey.title")}</h1><p class="about">{escape(mall)}</p>'
            + (f'<p class="alert" role="alert" id="problem">{text(_problem(problems))}</p>' if problems else "")
            + f"<p>{text('survey.intro')}</p>"
            f'<form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            f'<fieldset><legend>{text("survey.stars")}</legend><div class="stars">{_stars(lang, entered)}</div>'
            f'<p class="hint">{text("hint")}</p></fieldset>'
            f'<label for="comment">{text("comment")}</label>'
            f'<textarea id="comment" name="comment" rows="4" maxlength="{COMMENT_MAX}">'
            f"{escape(entered.get('comment', ''))}</textarea>"
            f'<button type="submit">{text("send")}</button></form>'
        ),
    )


def survey_thanks(lang: str) -> str:
    text = Words(TEXT, lang)
    return PAGES.page(
        lang, TEXT[lang]["survey.title"], "answer-thanks", f"<h1>{text('survey.thanks')}</h1><p>{text('close')}</p>"
    )


def thanks(lang: str, satisfied: bool) -> str:
    text = Words(TEXT, lang)
    return PAGES.page(
        lang,
        TEXT[lang]["title"],
        "answer-thanks",
        f"<h1>{escape(thanks_message(lang, satisfied))}</h1><p>{text('close')}</p>",
    )


def refusal(request: Request, exc: BaseException) -> Response:
    """web.http's error_page for both routes: what the method raised, as a page in the
    request's language with the status status_of gives it (403 forged, 410 expired,
    409 answered already or closed, 404, 413 too long, 429 busy with Retry-After, 4xx
    unreadable, 5xx try again)."""
    lang, status = language(request.args), status_of(exc)[0]
    seconds = exc.retry_after if isinstance(exc, TooManyRequests) else 0
    if status >= 500:
        reason = "unavailable"
    elif isinstance(exc, AlreadyAnswered):
        reason = "answered"
    elif isinstance(exc, SurveyEnded):
        reason = "survey_expired"
    else:
        reason = {403: "forged", 410: "expired", 409: "closed", 404: "unknown", 413: "too_large", 429: "busy"}.get(
            status, "unreadable"
        )
    text = Words(TEXT, lang)
    return respond(
        status,
        PAGES.page(
            lang,
            TEXT[lang][f"{reason}.title"],
            "answer-refused",
            (
                f"<h1>{text(f'{reason}.title')}</h1>"
                f'<p data-reason="{reason}">{text(reason, reference=request_id(request), seconds=seconds)}</p>'
            ),
        ),
        {"Retry-After": str(seconds)} if seconds else None,
    )


class SurveyEnded(Gone):
    """A survey's link past its expiry (410): no call follows, unlike a revisit's."""


def _stars(lang: str, entered: Mapping[str, Any]) -> str:
    text = Words(TEXT, lang)
    return "".join(
        f'<input type="radio" id="score-{n}" name="score" value="{n}" required'
        f"{_checked(str(n) == entered.get('score'))}>"
        f'<label for="score-{n}"><span class="sr">{text("star", n=n, word=STAR_WORDS[lang][n - 1])}'
        '</span><span aria-hidden="true">★</span></label>'
        for n in range(5, 0, -1)
    )  # highest first: the row is reversed, so a checked star lights those below it


def _checked(yes: bool) -> str:
    return " checked" if yes else ""


def _problem(problems: Mapping[str, Any]) -> str:
    """The words for what the form got wrong, the field that matters most first."""
    field = next((f for f in ("score", "reasons", "comment") if f in problems), None)
    return f"problem.{field}" if field else "problem"


def form_answer(fields: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """A form's fields (web.read_form) as the answer takes them: one value each, `reasons`
    all of them; a field left empty (the comment) is left out."""
    chosen: dict[str, Any] = {
        name: values[0] for name, values in fields.items() if name != "reasons" and values and values[0] != ""
    }
    if fields.get("reasons"):
        chosen["reasons"] = list(fields["reasons"])
    return chosen
