"""R7.2 (seed 000: 需在商場內顯眼位置張貼投訴渠道的相關信息) without a service: who may see a
complaint on the status page (its number with the phone it was filed with), the progress a
customer sees from intake's record and the case, what the complaint form registers, its
words escaped, and the poster's QR code read back by a decoder apart from the encoder."""

import io
import re
from base64 import b64decode
from datetime import datetime, timedelta, timezone

import pytest
import zxingcpp
from PIL import Image

from intake import portal, poster, progress
from intake.policy import load_policy
from mallcare_common.policy import load_policy_dir
from tests.conftest import POLICY_DIR

BASE = "https://service.example-mall.cn"
T0 = datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai


@pytest.fixture(scope="module")
def policy():
    return load_policy_dir(POLICY_DIR, "intake.yml", load_policy)


@pytest.fixture
def mall(policy):
    return policy.malls["sh-xujiahui"]


def complaint(**changes):
    return {
        "_id": "SHXJH-20261206-0012",
        "mall_id": "sh-xujiahui",
        "status": "registered",
        "received_at": T0,
        "acknowledgement": None,
        "rejection": None,
        "ack_due_at": T0 + timedelta(minutes=30),
        "customer": {"name": "王女士", "phone": "13712345678"},
        "description": "上午买的草莓有三分之一发霉了，请回电13712345678",
        **changes,
    }


def entry(action, minutes):
    return {"action": action, "at": (T0 + timedelta(minutes=minutes)).isoformat(), "detail": {}}


@pytest.mark.parametrize("typed", ["13712345678", "137 1234 5678", "+86 137-1234-5678", "86 13712345678"])
def test_the_phone_the_complaint_was_filed_with_opens_it_however_it_is_typed(typed):
    """R7.2, seed 000: the customer follows their own complaint by its number and their phone."""
    assert progress.owns(complaint(), typed)


@pytest.mark.parametrize("typed", ["13712345679", "13812345678", "5678", "", "1371234"])
def test_another_phone_or_a_part_of_it_opens_nothing(typed):
    """R7.2, seed 000: no one else's data: a wrong or partial phone is no proof."""
    assert not progress.owns(complaint(), typed)


def test_a_complaint_without_a_phone_or_anonymised_opens_to_nobody():
    """R7.2, seed 000: a WeChat complaint (an OpenID, no phone) or one anonymised by retention."""
    assert not progress.owns(complaint(customer={"wechat_openid": "oX3k9q9Zw1"}), "13712345678")
    assert not progress.owns(complaint(customer={}), "13712345678")


def test_the_progress_a_customer_sees_follows_the_case_in_their_words():
    """R7.2, seed 000: 您的投诉进度: received, told, passed to the department, investigated (three
    findings are one step), the time promised; the staff's own steps are not shown."""
    told = {"acknowledged_at": T0 + timedelta(minutes=3), "acknowledged_by": "notify", "method": "sms"}
    case = {
        "state": "investigating",
        "owner_id": "E3501",
        "expected_resolution": {"expected_by": (T0 + timedelta(days=2)).isoformat()},
        "timeline": [
            entry("opened", 1),
            entry("reassigned", 2),
            entry("finding", 30),
            entry("note", 31),
            entry("finding", 40),
            entry("time_promised", 45),
            entry("finding", 50),
        ],
    }
    seen = progress.progress(complaint(status="acknowledged", acknowledgement=told), case)
    assert seen["stage"] == "investigating" and seen["rejection"] is None
    assert [(s["step"], s["at"] - T0) for s in seen["steps"]] == [
        ("received", timedelta(0)),
        ("routed", timedelta(minutes=1)),
        ("acknowledged", timedelta(minutes=3)),
        ("investigating", timedelta(minutes=30)),
        ("promised", timedelta(minutes=45)),
        ("investigating", timedelta(minutes=50)),
    ]
    assert seen["promised_by"] == T0 + timedelta(days=2)


def test_before_its_case_and_without_an_owner_the_page_says_so():
    """R7.2, seed 000: at night nobody is on shift: the department has it, nobody is named yet."""
    assert progress.progress(complaint(), None)["stage"] == "received"
    case = {"state": "open", "owner_id": None, "timeline": [entry("opened", 1)], "expected_resolution": None}
    assert progress.progress(complaint(), case)["stage"] == "routed"
    assert progress.progress(complaint(), {**case, "owner_id": "E3501"})["stage"] == "assigned"


def test_a_resolved_case_promises_nothing_more_and_a_rejection_says_why():
    """R7.2, seed 000: a settled complaint, and one kept but not taken up (a duplicate)."""
    case = {
        "state": "resolved",
        "owner_id": "D3001",
        "expected_resolution": {"expected_by": (T0 + timedelta(days=1)).isoformat()},
        "timeline": [entry("opened", 1), entry("spot_settled", 5), entry("task_done", 6)],
    }
    seen = progress.progress(complaint(), case)
    assert seen["stage"] == "resolved" and seen["promised_by"] is None
    assert [s["step"] for s in seen["steps"]] == ["received", "routed", "resolved"]
    duplicate = complaint(
        status="rejected", rejection={"reason": "duplicate", "detail": "", "duplicate_of": "SHXJH-20261206-0003"}
    )
    assert progress.progress(duplicate, None) == {
        "stage": "rejected",
        "steps": [{"step": "received", "at": T0}],
        "promised_by": None,
        "rejection": "duplicate",
    }


def test_the_status_page_shows_the_phone_masked_and_times_on_the_malls_clock(mall):
    """R7.2, seed 000: personal data never shown in full; 10:00 in Shanghai, not 02:00 UTC."""
    doc = complaint()
    seen = progress.progress(doc, None)
    html = portal.status(BASE, "zh", mall, doc, seen, partial=True)
    assert "137****5678" in html and "13712345678" not in html and "王女士" not in html and "草莓" not in html
    assert "<time>2026年12月6日 10:00</time>收到投诉" in html
    assert "部分进度暂时无法显示" in html
    english = portal.status(BASE, "en", mall, doc, seen, partial=False)
    assert "<time>6 Dec 2026, 10:00</time>Complaint received" in english and "Shanghai Xujiahui" in english


def test_the_form_registers_a_web_complaint_with_the_time_on_the_malls_clock(mall):
    """R7.2, seed 000: the page is the web channel; 「昨晚八點在B1生鮮區」 is 20:00 in Shanghai."""
    sent = {
        "ref": "a" * 24,
        "description": "昨晚買的草莓三分之一發霉了",
        "expectation": "全額退款",
        "merchant": "T-17",
        "place": "B1 生鮮區",
        "when": "2026-12-05T20:00",
        "name": "陳先生",
        "phone": "+86 137 1234 5678",
    }
    assert portal.complaint(sent, mall) == {
        "mall_id": "sh-xujiahui",
        "channel": "web",
        "channel_ref": "portal:" + "a" * 24,
        "customer": {"name": "陳先生", "phone": "+86 137 1234 5678"},
        "location": {"merchant_id": "T-17", "merchant_name": "佳农水果", "area": "B1 生鮮區"},
        "description": "昨晚買的草莓三分之一發霉了",
        "demands": {"expectation": "全額退款"},
        "incident_time": "2026-12-05T20:00:00+08:00",
    }
    bare = portal.complaint({"ref": "b" * 24, "description": "The escalator stopped", "phone": "13712345678"}, mall)
    assert bare["location"] == {} and bare["demands"] == {} and "incident_time" not in bare


def test_what_the_customer_wrote_comes_back_escaped_with_its_problem_marked(mall):
    """R7.2, seed 000: a form sent back to fix keeps what was typed, escaped, the field marked."""
    hostile = '</textarea><script>alert("x")</script>'
    html = portal.form(BASE, "zh", mall, 30, "r" * 24, {"description": hostile, "phone": "12"}, {"phone"})
    assert "&lt;/textarea&gt;&lt;script&gt;" in html and "<script" not in html
    assert 'id="phone" name="phone" type="tel" value="12"' in html and 'aria-invalid="true"' in html
    assert '<p class="problem" id="problem-phone">请填写正确的手机号码，我们用它联系您。</p>' in html
    assert f'action="{BASE}/portal/SHXJH/complaints"' in html and "网上投诉在营业时间 30 分钟内确认受理" in html
    assert "佳农水果（B1层）" in html


def test_the_posters_qr_code_reads_back_as_the_malls_page(mall, policy):
    """R7.2, seed 000: 顯眼位置張貼投訴渠道: the poster's QR code, decoded by zxing-cpp, is the
    address of the mall's complaint page; the poster lists the hotline, WeChat and the desk."""
    url = portal.portal_link(BASE, mall)
    html = poster.poster(mall, policy.rules["portal"]["posters"]["sh-xujiahui"], url, 30)
    png = b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1))
    assert [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))] == [
        "https://service.example-mall.cn/portal/SHXJH"
    ]
    assert "021-6407 8800" in html and "搜索「上海徐家汇店顾客服务」" in html and "一楼中庭服务台" in html
    english = poster.poster(mall, {}, url, 30, "en")
    assert "Hotline" not in english and "Service desk" in english and "Shanghai Xujiahui" in english


def test_every_stage_step_and_word_reads_in_chinese_and_english():
    """R7.2, seed 000: the customer's pages in both languages, every stage and step in words."""
    for words in (portal.TEXT, poster.TEXT):
        assert words["zh"].keys() == words["en"].keys()
    stages = {*progress.CASE_STAGES.values(), "received", "acknowledged", "routed", "rejected"}
    steps = {*progress.CUSTOMER_STEPS.values(), "received", "acknowledged"}
    assert {f"stage.{s}" for s in stages} | {f"step.{s}" for s in steps} <= portal.TEXT["zh"].keys()
    assert {f"rejected.{r}" for r in ("duplicate", "insufficient_information", "out_of_scope")} <= portal.TEXT[
        "en"
    ].keys()
