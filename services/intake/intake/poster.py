"""Each mall's poster (R7.2; seed 000: 需在商場內顯眼位置張貼投訴渠道的相關信息): one printable A4
page naming the mall and every way to complain there: the complaint page by the QR code
that encodes its address (intake.portal.portal_link), the hotline, the WeChat official
account, the service desk (intake.yml `portal.posters`); in simplified Chinese (`?lang=en`:
English, for a second poster beside it).

The QR code is made by segno (PyPI, pinned), at error correction level M (a poster may get
scuffed), as a PNG in the page itself (a data: image, the only image its CSP allows) whose
square modules stay square when printed larger (image-rendering: pixelated). Pure: the
service passes in the mall, its settings and the address."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import segno

from mallcare_common.malls import Mall
from mallcare_common.pages import Pages, Words

QR_SCALE = 10  # pixels a module: a version-4 code and its quiet zone make 410 px
STYLE = (
    "@page{size:A4 portrait;margin:12mm}*{box-sizing:border-box}"
    "body{margin:0;color:#102a43;background:#fff;"
    "font:16px/1.45 -apple-system,'PingFang SC','Noto Sans CJK SC','Microsoft YaHei',sans-serif}"
    "main{max-width:186mm;margin:0 auto;padding:8mm 6mm;text-align:center}"
    "h1{margin:0;font-size:2.6rem;letter-spacing:.08em}"
    ".mall{margin:.5rem 0 1.25rem;font-size:1.5rem}"
    ".qr{display:block;width:70mm;height:70mm;margin:0 auto;image-rendering:pixelated}"
    ".scan{margin:.75rem 0 0;font-size:1.3rem;font-weight:600}.url{margin:.25rem 0 1.5rem;font-size:.95rem;"
    "word-break:break-all;color:#334e68}"
    "ul{list-style:none;margin:0 auto;padding:0;max-width:150mm;text-align:left}"
    "li{display:flex;justify-content:space-between;gap:1rem;padding:.6rem 0;border-top:1px solid #bcccdc;"
    "font-size:1.15rem}li b{white-space:nowrap}li span{text-align:right}"
    ".promise{margin:1.5rem 0 0;font-size:1rem;color:#334e68}"
)
PAGES = Pages(STYLE, images="data:")


def qr_png(url: str) -> str:
    """The QR code of `url` as a PNG data: URI."""
    code = segno.make_qr(url, error="m")
    uri: str = code.png_data_uri(scale=QR_SCALE, border=4)
    return uri


TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "投诉与建议",
        "scan": "扫码投诉、查询处理进度",
        "online": "网上投诉",
        "online.how": "扫描上方二维码",
        "hotline": "客服热线",
        "wechat": "微信公众号",
        "wechat.how": "搜索「{name}」",
        "desk": "现场服务台",
        "desk.where": "服务台",
        "promise": "营业时间内，网上投诉 {minutes} 分钟内确认受理。",
        "qr": "二维码：{url}",
    },
    "en": {
        "title": "Complaints and suggestions",
        "scan": "Scan to complain or follow your complaint",
        "online": "Online",
        "online.how": "Scan the QR code above",
        "hotline": "Hotline",
        "wechat": "WeChat",
        "wechat.how": "Search for {name}",
        "desk": "In person",
        "desk.where": "Service desk",
        "promise": "Complaints made online are confirmed within {minutes} minutes in opening hours.",
        "qr": "QR code: {url}",
    },
}


def poster(mall: Mall, settings: Mapping[str, Any], url: str, ack_minutes: int, lang: str = "zh") -> str:
    """The poster of `mall`: `settings` its entry of intake.yml's posters (hotline, wechat,
    desk; each left off when absent), `url` its complaint page, `ack_minutes` how soon a
    complaint made there is confirmed in opening hours."""
    text = Words(TEXT, lang)
    ways = [(text("online"), text("online.how"))]
    if settings.get("hotline"):
        ways.append((text("hotline"), escape(settings["hotline"])))
    if settings.get("wechat"):
        ways.append((text("wechat"), text("wechat.how", name=settings["wechat"])))
    desk = settings.get("desk")
    ways.append((text("desk"), escape(desk[lang]) if desk else text("desk.where")))
    name = (mall.name_en or mall.name) if lang == "en" else mall.name
    return PAGES.page(
        lang,
        f"{TEXT[lang]['title']} · {name}",
        "poster",
        f'<h1>{text("title")}</h1><p class="mall">{escape(name)}</p>'
        f'<img class="qr" src="{qr_png(url)}" alt="{text("qr", url=url)}">'
        f'<p class="scan">{text("scan")}</p><p class="url" id="portal-url">{escape(url)}</p>'
        "<ul>" + "".join(f"<li><b>{way}</b><span>{how}</span></li>" for way, how in ways) + "</ul>"
        f'<p class="promise">{text("promise", minutes=ack_minutes)}</p>',
    )
