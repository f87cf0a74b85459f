"""The answer page's pieces without a service: the link on the public address, the page
of a failure that is ours (503, with the reference staff find in the log), and text from
the policy escaped like any other."""

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from feedback import answer_page
from mallcare_common.mongo import StoreError
from mallcare_common.web import REQUEST_ID

BASE = "https://service.example-mall.cn"


def test_the_link_is_the_page_on_the_public_address_chinese_unless_asked():
    assert answer_page.answer_link(BASE, "abc.DEF-_") == f"{BASE}/answers?token=abc.DEF-_"
    assert answer_page.answer_link(BASE, "abc.DEF-_", "en") == f"{BASE}/answers?token=abc.DEF-_&lang=en"
    assert [answer_page.language(args) for args in ({}, {"lang": "en"}, {"lang": "fr"}, {"lang": "zh"})] == [
        "zh",
        "en",
        "zh",
        "zh",
    ]


def test_a_store_that_does_not_answer_is_a_page_asking_to_try_again_with_the_logs_reference():
    environ = EnvironBuilder(path="/answers", query_string="token=x&lang=en").get_environ()
    environ[REQUEST_ID] = "req-42"
    response = answer_page.refusal(Request(environ), StoreError("mongo:27017 timed out"))
    assert response.status_code == 503 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Please try again shortly" in html and "Reference: req-42" in html and "mongo" not in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_words_from_the_policy_and_the_registry_are_escaped():
    html = answer_page.form(
        BASE,
        "tok.en",
        "zh",
        "<i>徐家汇</i>",
        "SHXJH-1",
        {"rude": {"zh": "态度<b>差</b>", "en": "rude"}, '"x': {"zh": "引号", "en": "quote"}},
    )
    assert "&lt;i&gt;徐家汇&lt;/i&gt;" in html and "态度&lt;b&gt;差&lt;/b&gt;" in html
    assert 'value="&quot;x"' in html and "<i>" not in html and "<b>" not in html
