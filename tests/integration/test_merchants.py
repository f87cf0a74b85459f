"""R7.5, merchants held to our time and quality standards, across the whole path: the six
services on the real broker and store, notify mailing the merchant at the SMTP stand-in. A
tenant's complaint is triaged to merchant relations, sent to the merchant with a deadline,
the merchant signs in with its own key, sees only its case (the customer masked), replies
with its evidence, the copy of its reply is on the case, and the merchant's scorecard in the
monthly report counts the complaint and its met deadline. Another merchant's key reads no
case of it and no staff endpoint; once merchant relations takes the case back, the merchant's
own key reads it no more."""

import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from mallcare_cli.examples import desk_complaint
from tests.helpers import api_key, staff, wait_for
from tests.integration.test_gateways import standins

TEA_SHOP, FRUIT_SHOP = "T-233", "T-17"
TEA_SHOP_MAIL = "t233@yidiandian.example"  # its contact in malls.yml
CUSTOMER_PHONE = "13912348888"
HANDLER = staff("E3501")  # merchant relations at sh-xujiahui


@pytest.fixture
def outside(tmp_path):
    with standins(tmp_path) as started:
        yield started


@pytest.fixture
def system(services, policy_dir, outside):
    """The six, notify's gateways pointed at the stand-ins."""
    outside.point_notify_here(policy_dir)
    return services(settings={"notify": {"POLICY_DIR": str(policy_dir)}})


def tea_shop_complaint(system, words="奶茶店店员态度恶劣，还少找我20块钱"):
    """A customer's complaint at the desk about the tea shop tenant, its case open."""
    body = desk_complaint(
        channel_ref=f"desk-{uuid.uuid4().hex[:12]}",
        customer={"name": "李女士", "phone": CUSTOMER_PHONE},
        location={"area": "2F drinks", "merchant_id": TEA_SHOP},
        product=None,
        order_no=None,
        staff_involved=[],
        description=words,
        demands={"fact": "店员态度恶劣，少找20元", "expectation": "退还20元并道歉"},
    )
    with system.case_opened():
        registered = system.web["intake"].post("/complaints", json=body, headers=staff("D3001"))
    assert registered.status_code == 201, registered.text
    number = registered.json()["number"]
    case = wait_for(lambda: (c := system.web["resolution"].get(f"/cases/{number}")).status_code == 200 and c.json())
    assert (case["department"], case["merchant_id"]) == ("merchant_relations", TEA_SHOP)
    return number


def send_to_merchant(system, number):
    sent = system.web["resolution"].post(
        f"/cases/{number}/merchant-request",
        headers=HANDLER,
        json={"note": "请提供当班收银记录与监控截图，并给顾客最终答复"},
    )
    assert sent.status_code == 200, sent.text
    return sent.json()


def test_a_tenants_complaint_goes_to_the_merchant_and_comes_back_with_its_reply_and_evidence(system, outside):
    """R7.5, seed 001: 要求最终回复的复印件; 把时间、质量标准运用到…其他企业或代理的答复上;
    seed 002: 谁管理、谁举证、谁整改."""
    number = tea_shop_complaint(system)
    case = send_to_merchant(system, number)
    [request] = case["merchant_requests"]
    assert (request["merchant_id"], request["status"], case["merchant_access"]) == (TEA_SHOP, "awaiting", TEA_SHOP)

    # the merchant's contact gets the case by mail, with the link to it
    [mail] = wait_for(lambda: outside.received(TEA_SHOP_MAIL))
    assert mail["subject"].startswith(f"顾客投诉转办：{number}")
    assert f"/merchant/cases/{number}" in mail["text"] and "一点点奶茶" in mail["text"]
    assert CUSTOMER_PHONE not in mail["text"]

    # the merchant signs in with its own key: its one case, the customer masked
    merchant = api_key("t233-sh")
    listed = system.web["resolution"].get("/merchant/cases", headers=merchant)
    assert listed.status_code == 200, listed.text
    assert [c["complaint_no"] for c in listed.json()["items"]] == [number]
    seen = system.web["resolution"].get(f"/merchant/cases/{number}", headers=merchant)
    assert seen.status_code == 200, seen.text
    complaint = seen.json()["complaint"]
    assert complaint["description"] == "奶茶店店员态度恶劣，还少找我20块钱"
    assert (complaint["customer"]["name_masked"], complaint["customer"]["contact_masked"]) == ("李**", "139****8888")
    assert CUSTOMER_PHONE not in seen.text and "李女士" not in seen.text
    assert "timeline" not in seen.json() and "proposals" not in seen.json()  # our own handling is ours

    replied = system.web["resolution"].post(
        f"/merchant/cases/{number}/reply",
        headers=merchant,
        json={
            "reply": "经查监控，店员找零少找20元属实，已向顾客致歉并退还20元，当班店员已停岗培训。",
            "evidence": [
                {"ref": "oss://t233/cctv-1205-1610.mp4", "description": "收银台监控"},
                {"ref": "oss://t233/refund-receipt.jpg", "description": "退款凭证"},
            ],
            "by": "E3501",  # a body cannot speak for staff: the key is who replied
        },
    )
    assert replied.status_code == 200, replied.text
    [answered] = replied.json()["requests"]
    assert (answered["status"], answered["reply"]["within_deadline"], answered["reply"]["by"]) == (
        "replied",
        True,
        "key:t233-sh",
    )

    # the copy of its reply and its evidence are on the case's timeline, and so is its mail
    timeline = system.web["resolution"].get(f"/cases/{number}/timeline").json()["timeline"]
    [entry] = [e for e in timeline if e["action"] == "merchant_replied"]
    assert (entry["role"], entry["detail"]["merchant_id"]) == ("merchant", TEA_SHOP)
    assert entry["detail"]["text"].startswith("经查监控，店员找零少找20元属实")
    assert [e["ref"] for e in entry["detail"]["evidence"]] == [
        "oss://t233/cctv-1205-1610.mp4",
        "oss://t233/refund-receipt.jpg",
    ]
    wait_for(
        lambda: [
            e
            for e in system.web["resolution"].get(f"/cases/{number}/timeline").json()["timeline"]
            if e["action"] == "merchant_message_sent" and e["detail"]["kind"] == "merchant_request"
        ]
    )

    # analytics: the merchant's reply clock met, and its scorecard counts it
    def reply_clock():
        clocks = system.web["analytics"].get(f"/clocks/{number}").json()["clocks"]
        return [c for c in clocks if c["clock"] == "merchant_reply" and c.get("outcome")]

    [clock] = wait_for(reply_clock)
    assert (clock["outcome"], clock["owner"]) == ("met", TEA_SHOP)
    month = datetime.now(timezone.utc).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")

    def scorecard_row():
        report = system.web["analytics"].get("/reports/monthly", params={"period": month, "mall_id": "sh-xujiahui"})
        rows = [r for r in report.json()["merchant_scorecard"] if r["merchant_id"] == TEA_SHOP]
        return rows and rows[0]["sla"]["met"] and rows[0]

    row = wait_for(scorecard_row)
    assert (row["complaints"], row["sla"]["met"], row["sla"]["breached"], row["sla"]["compliance"]) == (1, 1, 0, 1.0)
    page = system.web["analytics"].get("/reports/monthly.html", params={"period": month, "mall_id": "sh-xujiahui"})
    assert "商户考核" in page.text and "一点点奶茶" in page.text


def test_a_merchants_key_reads_only_its_own_cases_while_they_are_with_it_and_no_staff_endpoint(system):
    """R7.5, seed 002: 谁管理、谁举证 (the merchant's own cases only); merchant relations takes a
    case back and the merchant's access ends."""
    number = tea_shop_complaint(system, words="奶茶店店員態度惡劣，還少找我20塊錢")
    send_to_merchant(system, number)
    other, own = api_key("t17-sh"), api_key("t233-sh")
    resolution, intake, analytics = (system.web[name] for name in ("resolution", "intake", "analytics"))

    assert resolution.get("/merchant/cases", headers=other).json()["items"] == []
    assert resolution.get(f"/merchant/cases/{number}", headers=other).status_code == 404
    refused = resolution.post(
        f"/merchant/cases/{number}/reply", headers=other, json={"reply": "不是我们", "evidence": [{"ref": "x"}]}
    )
    assert refused.status_code == 404
    for service, path in (
        (resolution, f"/cases/{number}"),
        (resolution, "/cases"),
        (intake, f"/complaints/{number}"),
        (intake, f"/complaints/{number}/customer?purpose=call"),
        (analytics, "/reports/live"),
    ):
        assert service.get(path, headers=own).status_code == 403, path
    bad = resolution.post(f"/merchant/cases/{number}/reply", headers=own, json={"reply": "已处理", "evidence": []})
    assert bad.status_code == 422 and "evidence" in bad.json()["fields"]

    taken = resolution.post(
        f"/cases/{number}/merchant-takeback", headers=HANDLER, json={"reason": "商户逾期未答复，由招商部直接处理"}
    )
    assert taken.status_code == 200, taken.text
    assert (taken.json()["merchant_requests"][-1]["status"], taken.json()["merchant_access"]) == ("taken_back", None)
    assert resolution.get(f"/merchant/cases/{number}", headers=own).status_code == 404
    assert resolution.get("/merchant/cases", headers=own).json()["items"] == []
    timeline = resolution.get(f"/cases/{number}/timeline").json()["timeline"]
    # the mail to the merchant is on the timeline too, when notify has sent it (its own timing)
    steps = [e["action"] for e in timeline if e["action"].startswith("merchant")]
    assert [a for a in steps if not a.startswith("merchant_message")] == [
        "merchant_request",
        "merchant_taken_back",
    ]
