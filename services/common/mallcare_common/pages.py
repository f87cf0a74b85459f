"""Pages for customers on the public internet (feedback's answer page, intake's complaint
portal and its poster): plain server-made HTML in simplified Chinese (`?lang=en`: English),
no script at all, so they work with JavaScript off, and a Content-Security-Policy that
allows none: only the page family's own style sheet (by its hash), forms posted to this
origin, no frame may hold the page (clickjacking), no Referer leaves it, nothing cached.

Pure: a page module passes in its style, words and body; every value it shows is escaped
there (`Words`, html.escape)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape

from marshmallow import Schema, fields, validate
from werkzeug.wrappers import Response

HTML_LANG = {"zh": "zh-CN", "en": "en"}
# What every page for a phone has: the column, the language switch, the heading, the button,
# the alert; each family adds its own rules after it.
PHONE_STYLE = (
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f5f7fa;color:#1f2933;"
    "font:16px/1.5 -apple-system,'PingFang SC','Noto Sans CJK SC','Microsoft YaHei',sans-serif}"
    "main{max-width:32rem;min-height:100vh;margin:0 auto;padding:1rem 1.25rem 2rem;background:#fff}"
    ".lang{margin:0;text-align:right;font-size:.9rem}a{color:#1c6ea4}"
    "h1{margin:.5rem 0;font-size:1.4rem}.about{margin:0 0 .5rem;color:#52606d;font-size:.9rem}"
    "button{width:100%;margin-top:1.25rem;padding:.85rem;font:inherit;font-weight:600;color:#fff;"
    "background:#1c6ea4;border:0;border-radius:.5rem}"
    ".alert{padding:.75rem;border-radius:.4rem;background:#fde8e8;color:#9b1c1c}"
)


class PageLanguage(Schema):
    """A page's query: its language."""

    lang = fields.String(
        validate=validate.Length(max=16), metadata={"description": "en: English; otherwise simplified Chinese"}
    )


def language(args: Mapping[str, str]) -> str:
    """`lang=en` is English; anything else simplified Chinese."""
    return "en" if args.get("lang") == "en" else "zh"


class Pages:
    """A family of pages sharing one style sheet: their headers and their HTML shell.
    `images`: the CSP's img-src (the poster's QR code is a data: image), none without."""

    def __init__(self, style: str, images: str | None = None) -> None:
        self.style = style
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        self.csp = (
            f"default-src 'none'; style-src 'sha256-{digest}'"
            + (f"; img-src {images}" if images else "")
            + "; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
        self.headers = {
            "Content-Security-Policy": self.csp,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        }

    def respond(self, status: int, html: str, headers: Mapping[str, str] | None = None) -> Response:
        return Response(html, status=status, headers={**self.headers, **(headers or {})}, mimetype="text/html")

    def page(self, lang: str, title: str, name: str, body: str) -> str:
        """The whole page: `body` (HTML made with Words) in <main data-page=name>."""
        return (
            "<!doctype html>"
            f'<html lang="{HTML_LANG[lang]}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            f"<title>{escape(title)}</title><style>{self.style}</style></head>"
            f'<body><main data-page="{name}">{body}</main></body></html>'
        )


class Words:
    """A language's words (`text[lang]`), escaped, with their {placeholders} filled in."""

    def __init__(self, text: Mapping[str, Mapping[str, str]], lang: str) -> None:
        self.words = text[lang]

    def __call__(self, key: str, **values: object) -> str:
        return escape(self.words[key].format(**values))
