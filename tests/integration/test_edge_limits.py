"""Issue 23, abuse limits on every public edge, on the real broker and store: one client
address gets so many requests a minute without a staff token (the channel intake, the
portal, the answer page), whichever key it uses; an address that presents too many wrong
keys gets 429 for its keys, the right one too; a merchant's key has its own rate; a body
over the limit is refused 413 on every service that takes one from the public, and a field
over its length 422 naming it. The limits are made small through each test's settings
(mallcare_common.limits; docs/runbook.md "Abuse limits")."""

import pytest
import requests
from prometheus_client import REGISTRY

from mallcare_cli.examples import desk_complaint
from tests.helpers import api_key, bearer, page_of

WECHAT, APP = api_key("wechat-sh"), api_key("app-bj")


def base(system, name):
    return system.web[name].base


def refused(service, edge, reason):
    """mallcare_refused_total of one service's route and reason, as /metrics has it."""
    labels = {"service": service, "edge": edge, "reason": reason}
    return REGISTRY.get_sample_value("mallcare_refused_total", labels) or 0.0


def complaint(ref, channel="wechat", mall="sh-xujiahui", **overrides):
    return desk_complaint(mall_id=mall, channel=channel, channel_ref=ref, **overrides)


def test_an_address_over_its_rate_on_the_channel_intake_gets_429_whichever_key_it_uses(services):
    system = services("intake", settings={"intake": {"PER_ADDRESS_PER_MINUTE": 3}})
    url, before = base(system, "intake") + "/complaints", refused("intake", "/complaints", "address")
    sent = [
        requests.post(url, headers=WECHAT, json=complaint("wx-1"), timeout=10),
        requests.post(url, headers=APP, json=complaint("app-1", "app", "bj-chaoyang"), timeout=10),
        requests.post(url, headers=WECHAT, json=complaint("wx-2"), timeout=10),
    ]
    assert [r.status_code for r in sent] == [201, 201, 201]
    over = requests.post(url, headers=APP, json=complaint("app-2", "app", "bj-chaoyang"), timeout=10)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
    assert over.json()["error"] == "TOO_MANY_REQUESTS"
    assert "this address is over 3 requests a minute" in over.json()["message"]
    # staff (through the console's one address) are not counted per address
    assert system.web["intake"].post("/complaints", json=complaint("wx-3")).status_code == 201
    assert system.db("intake").complaints.count_documents({}) == 4
    assert refused("intake", "/complaints", "address") == before + 1


def test_the_portals_status_page_refuses_an_address_over_its_rate_in_the_pages_language(services):
    system = services("intake", settings={"intake": {"PER_ADDRESS_PER_MINUTE": 2}})
    url = base(system, "intake") + "/portal/status"
    assert requests.get(url, timeout=10).status_code == 200
    assert requests.get(url, params={"lang": "en"}, timeout=10).status_code == 200
    busy = requests.get(url, timeout=10)
    assert "您的操作太频繁了" in page_of(busy, 429) and int(busy.headers["Retry-After"]) >= 1
    english = requests.get(url, params={"lang": "en"}, timeout=10)
    assert "Too many tries from here" in page_of(english, 429, "en")


def test_the_answer_page_refuses_an_address_over_its_rate_in_the_pages_language(services):
    system = services("feedback", settings={"feedback": {"PER_ADDRESS_PER_MINUTE": 2}})
    url = base(system, "feedback") + "/answers"
    assert [requests.get(url, params={"token": "forged-token-0"}, timeout=10).status_code for _ in range(2)] == [
        403,
        403,
    ]
    busy = requests.get(url, params={"token": "forged-token-0"}, timeout=10)
    assert 'data-reason="busy"' in page_of(busy, 429) and int(busy.headers["Retry-After"]) >= 1
    english = requests.post(url + "/form", params={"lang": "en"}, data={"token": "forged-token-0"}, timeout=10)
    assert "Too many tries from here" in page_of(english, 429, "en")
    assert refused("feedback", "/answers/form", "address") >= 1


def test_an_address_guessing_keys_is_refused_its_keys_the_right_one_too(services):
    system = services("intake", settings={"intake": {"REFUSED_KEYS_PER_MINUTE": 3}})
    url, before = base(system, "intake") + "/complaints", refused("intake", "/complaints", "refused_keys")
    guesses = [
        requests.get(url, headers={"X-Api-Key": f"wechat-sh.guess-{n}"}, timeout=10).status_code for n in range(3)
    ]
    assert guesses == [401, 401, 401]
    right = requests.get(url, headers=WECHAT, timeout=10)
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1
    assert "too many refused API keys from this address" in right.json()["message"]
    other_form = requests.get(url, headers={"Authorization": "ApiKey " + WECHAT["X-Api-Key"]}, timeout=10)
    assert other_form.status_code == 429
    # the address's customers and staff are not keys: the portal and a staff token still answer
    assert requests.get(base(system, "intake") + "/portal/status", timeout=10).status_code == 200
    assert requests.get(url, headers=bearer(), timeout=10).status_code == 200
    assert refused("intake", "/complaints", "refused_keys") == before + 2


def test_a_merchants_key_over_its_rate_gets_429(services):
    system = services("resolution")
    url, slow = base(system, "resolution") + "/merchant/cases", api_key("t17-sh-slow")
    assert [requests.get(url, headers=slow, timeout=10).status_code for _ in range(2)] == [200, 200]
    over = requests.get(url, headers=slow, timeout=10)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
    assert "API key t17-sh-slow is over 2 requests a minute" in over.json()["message"]
    assert requests.get(url, headers=api_key("t17-sh"), timeout=10).status_code == 200


@pytest.fixture
def public(services):
    """The services that take a body from the public, intake's body limit set lower."""
    return services("intake", "feedback", "resolution", settings={"intake": {"MAX_BODY_BYTES": 4096}})


def test_a_body_over_the_limit_is_refused_413_on_every_public_service(public):
    intake, feedback, resolution = (base(public, n) for n in ("intake", "feedback", "resolution"))
    before = refused("intake", "/complaints", "body")
    big = "长" * 2000  # 6,000 bytes: under 64 KiB, over intake's 4 KiB
    api = requests.post(intake + "/complaints", headers=WECHAT, json=complaint("wx-big", description=big), timeout=10)
    assert (api.status_code, api.json()["error"]) == (413, "BODY_TOO_LARGE")
    assert api.json()["message"] == "body over 4096 bytes"
    chunked = requests.post(
        intake + "/complaints",
        headers={**WECHAT, "Content-Type": "application/json"},
        data=(part for part in (b'{"description": "', big.encode(), b'"}')),  # no Content-Length
        timeout=10,
    )
    assert chunked.status_code == 400  # a body without its length is not read at all (werkzeug)
    form = requests.post(intake + "/portal/SHXJH/complaints", data={"description": big}, timeout=10)
    assert 'data-reason="too_large"' in page_of(form, 413)
    wechat = requests.post(
        intake + "/channels/wechat/sh-xujiahui", data=b"<xml>" + b"x" * 20000 + b"</xml>", timeout=10
    )
    assert wechat.status_code == 413
    answer = requests.post(feedback + "/answers", json={"token": "t" * 40, "comment": "x" * 70000}, timeout=10)
    assert answer.status_code == 413
    page = requests.post(feedback + "/answers/form", params={"lang": "en"}, data={"comment": "x" * 70000}, timeout=10)
    assert "What you sent is too long" in page_of(page, 413, "en")
    reply = requests.post(
        resolution + "/merchant/cases/SHXJH-20261206-0001/reply",
        headers=api_key("t17-sh"),
        json={"reply": "x" * 70000, "evidence": []},
        timeout=10,
    )
    assert reply.status_code == 413
    assert public.db("intake").complaints.count_documents({}) == 0
    assert refused("intake", "/complaints", "body") == before + 1


def test_a_field_over_its_length_or_count_gets_422_naming_it(public):
    intake, resolution = base(public, "intake"), base(public, "resolution")
    long_text = requests.post(
        intake + "/complaints", headers=WECHAT, json=complaint("wx-long", tone_note="急" * 201), timeout=10
    )
    assert long_text.status_code == 422 and list(long_text.json()["fields"]) == ["tone_note"]
    many = requests.post(
        intake + "/complaints",
        headers=WECHAT,
        json=complaint("wx-many", staff_involved=[f"E{n}" for n in range(21)]),
        timeout=10,
    )
    assert many.status_code == 422 and list(many.json()["fields"]) == ["staff_involved"]
    evidence = requests.post(
        resolution + "/merchant/cases/SHXJH-20261206-0001/reply",
        headers=api_key("t17-sh"),
        json={"reply": "已处理", "evidence": [{"ref": f"photo-{n}"} for n in range(21)]},
        timeout=10,
    )
    assert evidence.status_code == 422 and list(evidence.json()["fields"]) == ["evidence"]
    assert public.db("intake").complaints.count_documents({}) == 0
