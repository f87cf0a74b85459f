"""The customer's own pages (R7.2; seed 000: 顯眼位置張貼投訴渠道的相關信息), reached from the QR
code on each mall's poster (intake.poster): a mall's complaint form, the web channel, at
`/portal/<mall code>`, the page that thanks the customer with their complaint's number, and
the status page at `/portal/status`, where the number and the phone the complaint was filed
with show its progress (intake.progress). In simplified Chinese (`?lang=en`: English), laid
out for a phone, plain forms without script (mallcare_common.pages: no script may run, no
frame hold them, no Referer leave them).

Nobody signs in: the number with its phone is the proof, and a wrong pair is answered as an
unknown number is. What a page shows of a complaint is masked as every read masks it.

Pure: the service passes in what a page shows and sends the Response; every value is
escaped here."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from mallcare_common.auth import TooManyRequests
from mallcare_common.malls import Mall
from mallcare_common.pages import HTML_LANG, PHONE_STYLE, Pages, Words
from mallcare_common.personal import mask_phone
from mallcare_common.web import request_id, status_of


TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "switch": "English",
        "title": "投诉与建议",
        "intro": "请告诉我们发生了什么。网上投诉在营业时间 {minutes} 分钟内确认受理，我们会用您留下的手机号码联系您。",
        "required": "（必填）",
        "optional": "（选填）",
        "description": "发生了什么？",
        "description.hint": "例如：上午在生鲜区买的草莓有三分之一发霉了。",
        "expectation": "您希望我们怎么处理？",
        "merchant": "在哪家店铺？",
        "merchant.none": "不确定，或不在列表中",
        "floor": "（{floor}层）",
        "place": "具体位置",
        "place.hint": "例如：B1 生鲜区称重台",
        "when": "大约什么时间发生的？",
        "name": "您的称呼",
        "name.hint": "例如：王女士",
        "phone": "手机号码",
        "phone.hint": "只用于联系您，以及您查询进度时核对身份。",
        "send": "提交投诉",
        "follow": "已经投诉过？查询处理进度",
        "problem": "请检查标出的内容。",
        "problem.description": "请写下发生了什么（最多 5000 字）。",
        "problem.expectation": "您的诉求最多 2000 字。",
        "problem.merchant": "请从列表中选择店铺。",
        "problem.place": "位置最多 64 字。",
        "problem.when": "请填写发生的日期和时间，不能晚于现在。",
        "problem.name": "称呼最多 64 字。",
        "problem.phone": "请填写正确的手机号码，我们用它联系您。",
        "problem.ref": "这个表单已失效，请重新提交。",
        "thanks.title": "投诉已受理",
        "thanks.number": "您的投诉编号",
        "thanks.keep": "我们会在 {due} 前通过短信告知您已受理。请记下这个编号：凭编号和手机号码可以随时查询处理进度。",
        "noted.title": "留言已收到",
        "rejected.duplicate": "这件投诉与您此前提交的 {duplicate_of} 相同，我们正在处理，无需重复提交。",
        "rejected.insufficient_information": "内容还不足以受理。请再提交一次，"
        "写明发生了什么、在哪家店铺或哪个区域、大约什么时间。",
        "rejected.out_of_scope": "这件事发生在受理期限以前，我们无法受理。如有疑问，请到服务台咨询。",
        "status.title": "查询投诉进度",
        "status.intro": "请输入投诉编号和投诉时留下的手机号码。",
        "number": "投诉编号",
        "number.hint": "例如：SHXJH-20261206-0012",
        "look": "查询",
        "problem.number": "请填写投诉编号。",
        "not_found": "找不到这件投诉。请核对投诉编号和手机号码。",
        "progress.title": "投诉进度",
        "about": "{mall} · 投诉编号 {number}",
        "now": "目前进展",
        "contact": "联系电话",
        "promised": "承诺处理完成时间",
        "steps": "处理经过",
        "again": "查询其他投诉",
        "new": "提交新的投诉",
        "stage.received": "已收到您的投诉，正在安排处理。",
        "stage.acknowledged": "已受理，正在安排专人处理。",
        "stage.routed": "已转交负责部门，正在安排专人处理。",
        "stage.assigned": "已安排专人负责处理。",
        "stage.investigating": "正在调查核实。",
        "stage.answered": "处理方案已提出。",
        "stage.reviewing": "您对方案有异议，正在由上级复核。",
        "stage.carrying_out": "您已接受处理方案，正在落实。",
        "stage.resolved": "已处理完毕，我们会回访您是否满意。",
        "stage.closed": "已结案。感谢您的耐心。",
        "stage.reopened": "已重新处理。",
        "stage.rejected": "未受理。",
        "step.received": "收到投诉",
        "step.acknowledged": "告知已受理",
        "step.routed": "转交负责部门",
        "step.investigating": "开始调查核实",
        "step.promised": "告知预计处理时间",
        "step.answered": "答复处理方案",
        "step.accepted": "您接受了处理方案",
        "step.reviewing": "您提出异议，上级复核",
        "step.resolved": "处理完毕",
        "step.closed": "结案",
        "step.reopened": "重新处理",
        "partial": "部分进度暂时无法显示，请稍后再查。",
        "time": "{t:%Y年%-m月%-d日} {t:%H:%M}",
        "unknown.title": "找不到这个页面",
        "unknown": "找不到这家商场的投诉页面。请扫描商场海报上的二维码。",
        "busy.title": "请稍后再试",
        "busy": "您的操作太频繁了，请 {seconds} 秒后再试。",
        "too_large.title": "内容太长",
        "too_large": "您填写的内容太长了，请缩短后重新提交。",
        "unreadable.title": "无法读取您的内容",
        "unreadable": "您填写的内容无法读取，请返回重新提交。",
        "unavailable.title": "暂时无法处理",
        "unavailable": "系统繁忙，请稍后再试。参考编号：{reference}",
    },
    "en": {
        "switch": "中文",
        "title": "Complaints and suggestions",
        "intro": "Tell us what happened. We confirm a complaint made here within {minutes} minutes of opening "
        "hours and reach you on the mobile number you give.",
        "required": " (required)",
        "optional": " (optional)",
        "description": "What happened?",
        "description.hint": "For example: a third of the strawberries I bought this morning were mouldy.",
        "expectation": "What would you like us to do?",
        "merchant": "Which shop?",
        "merchant.none": "Not sure, or not listed",
        "floor": " (floor {floor})",
        "place": "Where exactly?",
        "place.hint": "For example: B1, fresh produce scales",
        "when": "When did it happen, roughly?",
        "name": "Your name",
        "name.hint": "For example: Ms Wang",
        "phone": "Mobile number",
        "phone.hint": "Only to reach you, and to check it is you when you follow your complaint.",
        "send": "Send complaint",
        "follow": "Complained already? Follow your complaint",
        "problem": "Please check what is marked.",
        "problem.description": "Please tell us what happened (at most 5,000 characters).",
        "problem.expectation": "What you would like takes at most 2,000 characters.",
        "problem.merchant": "Please choose a shop from the list.",
        "problem.place": "Where takes at most 64 characters.",
        "problem.when": "Please give the date and time it happened, not later than now.",
        "problem.name": "A name takes at most 64 characters.",
        "problem.phone": "Please give a mobile number we can reach you on.",
        "problem.ref": "This form has expired; please send it again.",
        "thanks.title": "We have your complaint",
        "thanks.number": "Your complaint number",
        "thanks.keep": "We will text you by {due} to confirm we are on it. Please note this number: with it "
        "and your mobile number you can follow your complaint.",
        "noted.title": "We have your message",
        "rejected.duplicate": "This is the complaint you sent before as {duplicate_of}; we are on it, "
        "there is no need to send it again.",
        "rejected.insufficient_information": "We need a little more to act on it. Please send it again and "
        "say what happened, in which shop or area, and roughly when.",
        "rejected.out_of_scope": "This happened too long ago for us to take it up. Please ask at the service "
        "desk if in doubt.",
        "status.title": "Follow your complaint",
        "status.intro": "Enter your complaint number and the mobile number you gave with it.",
        "number": "Complaint number",
        "number.hint": "For example: SHXJH-20261206-0012",
        "look": "Show progress",
        "problem.number": "Please give your complaint number.",
        "not_found": "We cannot find this complaint. Please check the complaint number and the mobile number.",
        "progress.title": "Your complaint",
        "about": "{mall} · complaint {number}",
        "now": "Where it stands",
        "contact": "Mobile number",
        "promised": "We promised to finish by",
        "steps": "What has happened",
        "again": "Follow another complaint",
        "new": "Make a new complaint",
        "stage.received": "We have your complaint and are passing it on.",
        "stage.acknowledged": "Confirmed; someone is being put in charge of it.",
        "stage.routed": "Passed to the department in charge; someone there will take it up.",
        "stage.assigned": "Someone is in charge of your complaint.",
        "stage.investigating": "We are looking into what happened.",
        "stage.answered": "We have proposed how to put it right.",
        "stage.reviewing": "You disagreed with our proposal; a senior colleague is reviewing it.",
        "stage.carrying_out": "You accepted our proposal; we are carrying it out.",
        "stage.resolved": "Done; we will ask you whether you are satisfied.",
        "stage.closed": "Closed. Thank you for your patience.",
        "stage.reopened": "We are handling it again.",
        "stage.rejected": "Not taken up.",
        "step.received": "Complaint received",
        "step.acknowledged": "Told you we have it",
        "step.routed": "Passed to the department in charge",
        "step.investigating": "Started looking into it",
        "step.promised": "Told you when to expect a result",
        "step.answered": "Proposed how to put it right",
        "step.accepted": "You accepted the proposal",
        "step.reviewing": "You disagreed; review by a senior colleague",
        "step.resolved": "Done",
        "step.closed": "Closed",
        "step.reopened": "Handled again",
        "partial": "Part of the progress cannot be shown just now; please look again later.",
        "time": "{t:%-d %b %Y}, {t:%H:%M}",
        "unknown.title": "Page not found",
        "unknown": "We cannot find this mall's complaint page. Please scan the QR code on the mall's poster.",
        "busy.title": "Please try again shortly",
        "busy": "Too many tries from here; please try again in {seconds} seconds.",
        "too_large.title": "Too long",
        "too_large": "What you sent is too long. Please shorten it and send it again.",
        "unreadable.title": "What you sent could not be read",
        "unreadable": "What you sent could not be read. Please go back and send it again.",
        "unavailable.title": "Please try again shortly",
        "unavailable": "We cannot take this just now. Please try again in a few minutes. Reference: {reference}",
    },
}

STYLE = (
    PHONE_STYLE + "label{display:block;margin:1rem 0 .25rem;font-weight:600}label span{font-weight:400;color:#52606d}"
    "input,select,textarea{width:100%;padding:.6rem;font:inherit;border:1px solid #7b8794;border-radius:.4rem;"
    "background:#fff;color:inherit}"
    "[aria-invalid=true]{border-color:#9b1c1c}"
    ".hint{margin:.2rem 0 0;color:#52606d;font-size:.85rem}.problem{margin:.2rem 0 0;color:#9b1c1c;font-size:.9rem}"
    ".number{display:block;margin:.25rem 0 1rem;font-size:1.5rem;font-weight:700;letter-spacing:.03em}"
    ".stage{padding:.75rem;border-radius:.4rem;background:#e3f0fa;font-weight:600}"
    "dl{margin:1rem 0}dt{color:#52606d;font-size:.9rem}dd{margin:0 0 .75rem}"
    "h2{margin:1.25rem 0 .4rem;font-size:1.1rem}"
    "ol{margin:.5rem 0;padding-left:1.25rem}li{margin:.4rem 0}time{display:block;color:#52606d;font-size:.85rem}"
    ".links{margin-top:1.5rem}.links a{display:block;margin:.5rem 0}"
)
PAGES = Pages(STYLE)


def portal_link(base: str, mall: Mall, lang: str = "zh") -> str:
    """A mall's complaint page on the public address `base` (web.public_base_url), by the
    mall's code (the one its complaint numbers start with): what the poster's QR code
    encodes (in Chinese; the page switches to English)."""
    return f"{base}/portal/{mall.code}" + ("?lang=en" if lang == "en" else "")


def status_link(base: str, lang: str, number: str | None = None) -> str:
    query = {**({"number": number} if number else {}), **({"lang": lang} if lang == "en" else {})}
    return f"{base}/portal/status" + (f"?{urlencode(query)}" if query else "")


def prefill(number: str) -> str:
    """A number for the look-up's field from the address (the thank-you page's link): what
    looks like one, else nothing."""
    return number if re.fullmatch(r"[A-Za-z0-9-]{5,40}", number) else ""


def respond(status: int, html: str) -> Response:
    return PAGES.respond(status, html)


def form(
    base: str,
    lang: str,
    mall: Mall,
    ack_minutes: int,
    ref: str,
    entered: Mapping[str, str] | None = None,
    problems: Collection[str] = (),
) -> str:
    """The complaint form of `mall`; `entered` and `problems` (the form's fields refused)
    when it comes back refused, with what the customer wrote."""
    text, entered = Words(TEXT, lang), entered or {}
    action = f"{base}/portal/{mall.code}/complaints" + ("?lang=en" if lang == "en" else "")
    shops = f'<option value="">{text("merchant.none")}</option>' + "".join(
        f'<option value="{escape(m["id"])}"{" selected" if entered.get("merchant") == m["id"] else ""}>'
        f"{escape(m['name'])}{text('floor', floor=m['floor']) if m.get('floor') else ''}</option>"
        for m in mall.merchants
    )
    fields = {
        "description": f'<textarea id="description" name="description" rows="5" maxlength="5000" required'
        f"{_described('description', problems, hint=True)}>{escape(entered.get('description', ''))}</textarea>",
        "expectation": f'<textarea id="expectation" name="expectation" rows="2" maxlength="2000"'
        f"{_described('expectation', problems)}>{escape(entered.get('expectation', ''))}</textarea>",
        "merchant": f'<select id="merchant" name="merchant"{_described("merchant", problems)}>{shops}</select>',
        "place": _input("place", "text", entered, problems, 'maxlength="64"', hint=True),
        "when": _input("when", "datetime-local", entered, problems),
        "name": _input("name", "text", entered, problems, 'maxlength="64" autocomplete="name"', hint=True),
        "phone": _input("phone", "tel", entered, problems, 'required autocomplete="tel" inputmode="tel"', hint=True),
    }
    body = "".join(
        f'<label for="{name}">{text(name)}<span>{text("required" if name in ("description", "phone") else "optional")}'
        f"</span></label>{control}"
        + (f'<p class="hint" id="hint-{name}">{text(name + ".hint")}</p>' if f"{name}.hint" in TEXT[lang] else "")
        + (f'<p class="problem" id="problem-{name}">{text("problem." + name)}</p>' if name in problems else "")
        for name, control in fields.items()
    )
    return PAGES.page(
        lang,
        f"{TEXT[lang]['title']} · {mall_name(mall, lang)}",
        "portal-form",
        _switch(portal_link(base, mall, _other(lang)), lang)
        + f'<h1>{text("title")}</h1><p class="about">{escape(mall_name(mall, lang))}</p>'
        + (_alert(text("problem.ref" if set(problems) == {"ref"} else "problem")) if problems else "")
        + f"<p>{text('intro', minutes=ack_minutes)}</p>"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="ref" value="{escape(ref)}">{body}'
        f'<button type="submit">{text("send")}</button></form>'
        f'<p class="links"><a href="{escape(status_link(base, lang))}">{text("follow")}</a></p>',
    )


def thanks(base: str, lang: str, mall: Mall, complaint: Mapping[str, Any]) -> str:
    """The answer to a complaint sent from the form: its number, and when we confirm it; a
    complaint kept but not taken up (a duplicate, too little to act on) says why."""
    text, number = Words(TEXT, lang), complaint["_id"]
    rejection = complaint.get("rejection")
    if rejection:
        title = TEXT[lang]["noted.title"]
        what = text(f"rejected.{rejection['reason']}", duplicate_of=rejection.get("duplicate_of") or "")
    else:
        title = TEXT[lang]["thanks.title"]
        what = text("thanks.keep", due=when(complaint["ack_due_at"], mall, lang))
    return PAGES.page(
        lang,
        title,
        "portal-thanks",
        f'<h1>{escape(title)}</h1><p class="about">{escape(mall_name(mall, lang))}</p>'
        f'<p>{text("thanks.number")}<strong class="number" id="number">{escape(number)}</strong></p>'
        f"<p>{what}</p>"
        f'<p class="links"><a href="{escape(status_link(base, lang, number))}">{text("status.title")}</a>'
        f'<a href="{escape(portal_link(base, mall, lang))}">{text("new")}</a></p>',
    )


def lookup(base: str, lang: str, number: str = "", problems: Collection[str] = (), not_found: bool = False) -> str:
    """The status look-up: the number (filled in from the thank-you page) and the phone;
    `problems` the fields refused, `not_found` when no complaint has that number and phone."""
    text = Words(TEXT, lang)
    action = f"{base}/portal/status" + ("?lang=en" if lang == "en" else "")
    entered = {"number": number}
    body = "".join(
        f'<label for="{name}">{text(name)}</label>{control}<p class="hint" id="hint-{name}">{text(name + ".hint")}</p>'
        + (f'<p class="problem" id="problem-{name}">{text("problem." + name)}</p>' if name in problems else "")
        for name, control in (
            ("number", _input("number", "text", entered, problems, 'required autocapitalize="characters"', hint=True)),
            ("phone", _input("phone", "tel", {}, problems, 'required autocomplete="tel" inputmode="tel"', hint=True)),
        )
    )
    return PAGES.page(
        lang,
        TEXT[lang]["status.title"],
        "portal-lookup",
        _switch(status_link(base, _other(lang), number or None), lang)
        + f"<h1>{text('status.title')}</h1>"
        + (_alert(text("not_found")) if not_found else _alert(text("problem")) if problems else "")
        + f"<p>{text('status.intro')}</p>"
        f'<form method="post" action="{escape(action)}">{body}<button type="submit">{text("look")}</button></form>',
    )


def status(
    base: str, lang: str, mall: Mall, complaint: Mapping[str, Any], seen: Mapping[str, Any], partial: bool
) -> str:
    """The complaint's progress (`seen`: intake.progress.progress) for its own customer: the
    stage, the steps with when on the mall's clock, the time promised and the phone, masked
    (not the text: the number says which complaint it is). `partial`: the case could not be
    read just now."""
    text, number = Words(TEXT, lang), complaint["_id"]
    stage = seen["stage"]
    now = text(f"stage.{stage}")
    if seen["rejection"]:
        duplicate_of = (complaint.get("rejection") or {}).get("duplicate_of") or ""
        now += " " + text(f"rejected.{seen['rejection']}", duplicate_of=duplicate_of)
    facts = [("contact", mask_phone(complaint["customer"]["phone"]))]
    if seen["promised_by"] is not None:
        facts.append(("promised", when(seen["promised_by"], mall, lang)))
    steps = "".join(
        f'<li data-step="{step["step"]}"><time>{escape(when(step["at"], mall, lang))}</time>'
        f"{text('step.' + step['step'])}</li>"
        for step in seen["steps"]
    )
    return PAGES.page(
        lang,
        TEXT[lang]["progress.title"],
        "portal-status",
        f"<h1>{text('progress.title')}</h1>"
        f'<p class="about">{text("about", mall=mall_name(mall, lang), number=number)}</p>'
        f'<h2>{text("now")}</h2><p class="stage" data-stage="{stage}">{now}</p>'
        + (f'<p class="alert">{text("partial")}</p>' if partial else "")
        + "<dl>"
        + "".join(f'<dt>{text(key)}</dt><dd id="{key}">{escape(value)}</dd>' for key, value in facts)
        + f'</dl><h2>{text("steps")}</h2><ol id="steps">{steps}</ol>'
        f'<p class="links"><a href="{escape(status_link(base, lang))}">{text("again")}</a>'
        f'<a href="{escape(portal_link(base, mall, lang))}">{text("new")}</a></p>',
    )


def refusal(request: Request, exc: BaseException) -> Response:
    """web.http's error_page for the portal's routes: what the method raised, as a page in
    the request's language (404 an unknown mall, 413 too long, 429 with Retry-After, a 4xx it could not
    read, 5xx try again with the reference the log has)."""
    lang, status_code = ("en" if request.args.get("lang") == "en" else "zh"), status_of(exc)[0]
    seconds = exc.retry_after if isinstance(exc, TooManyRequests) else 0
    if status_code >= 500:
        reason = "unavailable"
    else:
        reason = {404: "unknown", 413: "too_large", 429: "busy"}.get(status_code, "unreadable")
    text = Words(TEXT, lang)
    html = PAGES.page(
        lang,
        TEXT[lang][f"{reason}.title"],
        "portal-refused",
        f"<h1>{text(f'{reason}.title')}</h1>"
        f'<p data-reason="{reason}">{text(reason, reference=request_id(request), seconds=seconds)}</p>',
    )
    return PAGES.respond(status_code, html, {"Retry-After": str(seconds)} if seconds else None)


def complaint(entered: Mapping[str, str], mall: Mall) -> dict[str, Any]:
    """What a form sent (PortalFormIn, loaded) registers: a complaint on the web channel,
    the time it happened read on the mall's clock."""
    merchant = next((m for m in mall.merchants if m["id"] == entered.get("merchant")), None)
    location = {"merchant_id": merchant["id"], "merchant_name": merchant["name"]} if merchant else {}
    if entered.get("place"):
        location["area"] = entered["place"]
    found: dict[str, Any] = {
        "mall_id": mall.id,
        "channel": "web",
        "channel_ref": f"portal:{entered['ref']}",
        "customer": {k: entered[k] for k in ("name", "phone") if entered.get(k)},
        "location": location,
        "description": entered["description"],
        "demands": {"expectation": entered["expectation"]} if entered.get("expectation") else {},
    }
    if entered.get("when"):
        found["incident_time"] = datetime.fromisoformat(entered["when"]).replace(tzinfo=mall.calendar.zone).isoformat()
    return found


def form_fields(fields: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """A form's fields (web.read_form) as the schema takes them: the first value of each, one
    left empty left out."""
    return {name: values[0].strip() for name, values in fields.items() if values and values[0].strip()}


# The form's fields a ComplaintIn message is about (the rest it was given whole)
REGISTER_FIELDS = {"incident_time": "when", "customer": "phone", "description": "description", "location": "place"}


def when(at: datetime, mall: Mall, lang: str) -> str:
    """A time on the mall's clock, as people there write it."""
    return TEXT[lang]["time"].format(t=mall.calendar.local(at))


def mall_name(mall: Mall, lang: str) -> str:
    return (mall.name_en or mall.name) if lang == "en" else mall.name


def _other(lang: str) -> str:
    return "en" if lang == "zh" else "zh"


def _switch(href: str, lang: str) -> str:
    other = _other(lang)
    return f'<p class="lang"><a href="{escape(href)}" hreflang="{HTML_LANG[other]}">{TEXT[lang]["switch"]}</a></p>'


def _alert(message: str) -> str:
    return f'<p class="alert" role="alert" id="problem">{message}</p>'


def _described(name: str, problems: Collection[str], hint: bool = False) -> str:
    """The attributes tying a control to its hint and its problem (read out with it)."""
    ids = ([f"hint-{name}"] if hint else []) + ([f"problem-{name}"] if name in problems else [])
    return (f' aria-describedby="{" ".join(ids)}"' if ids else "") + (
        ' aria-invalid="true"' if name in problems else ""
    )


def _input(
    name: str,
    kind: str,
    entered: Mapping[str, str],
    problems: Collection[str],
    attributes: str = "",
    hint: bool = False,
) -> str:
    return (
        f'<input id="{name}" name="{name}" type="{kind}" value="{escape(entered.get(name, ""))}"'
        f"{' ' + attributes if attributes else ''}{_described(name, problems, hint)}>"
    )
