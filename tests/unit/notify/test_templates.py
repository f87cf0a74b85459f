"""R3.2, R3.3, R3.6, R3.7, R4.1, R7.1: what the customer reads, from the policy's templates
per mall and language (zh, en): plain text within the provider's length for SMS, a
subject, text and HTML for e-mail; the answer with its remedies, and the appeal route
only where the answer differs from what the customer asked. The templates are policy
data: a broken one, one too long for an SMS, or one reaching out of its sandbox is
refused when the file loads."""

import copy

import pytest
import yaml
from marshmallow import ValidationError

from notify import rules
from notify.policy import load_policy
from tests.conftest import POLICY_DIR
from tests.unit.notify.conftest import MONDAY_10, complaint

APPEAL = "如对处理结果有异议，您可在收到答复后 7 天内向本商场运营总监提出复核申请（服务台或客服热线）。"


def case(
    decision="partly_upheld", appeal=APPEAL, reasons=("草莓约1/3霉变属实，按售价退款",), text="很抱歉给您带来不便。"
):
    """A case as resolution.get_case answers it (amounts as yuan strings)."""
    return {
        "proposals": [
            {
                "no": 1,
                "decision": decision,
                "reasons": list(reasons),
                "remedies": [
                    {"type": "refund", "amount": "39.90", "note": None},
                    {"type": "apology_letter", "amount": "0.00", "note": None},
                ],
                "sent": {"text": text, "appeal_procedure": appeal},
            }
        ],
        "tasks": [{"id": 1, "kind": "refund", "amount": "39.90"}, {"id": 2, "kind": "voucher", "amount": "50.00"}],
    }


def rendered(policy, kind, channel, language="zh", mall_id="sh-xujiahui", detail=None, **read):
    number = f"{'SHXJH' if mall_id == 'sh-xujiahui' else 'BJCY'}-20261123-0042"
    msg = rules.new_message(
        kind, "1", {**complaint("email", mall_id, language), "_id": number}, policy, MONDAY_10, detail=detail or {}
    )
    return rules.render(msg, channel, rules.context(msg, policy, **read), policy)


def test_the_acknowledgement_by_email_has_a_subject_a_text_and_its_html(policy):
    mail = rendered(policy, "acknowledgement", "email", detail={"received_at": MONDAY_10})
    assert mail.subject == "您的投诉已受理（SHXJH-20261123-0042）"
    assert "我们已于11月23日 10:00收到您的投诉，编号 SHXJH-20261123-0042。" in mail.text  # mall time
    assert mail.text.endswith("上海徐家汇店客服中心")
    assert "<p>我们已于11月23日 10:00收到您的投诉，编号 SHXJH-20261123-0042。" in mail.html
    english = rendered(policy, "acknowledgement", "email", "en", detail={"received_at": MONDAY_10})
    assert english.subject == "Your complaint SHXJH-20261123-0042 has been received"
    assert "We received your complaint on 23 Nov 10:00" in english.text and '<html lang="en">' in english.html


def test_the_answer_states_decision_reasons_remedies_and_the_appeal_route_when_it_differs(policy):
    mail = rendered(policy, "answer", "email", detail={"proposal_no": 1}, case=case())
    assert "我们的答复是：部分支持您的诉求。" in mail.text
    assert "- 草莓约1/3霉变属实，按售价退款" in mail.text
    assert "- 退款：39.90 元" in mail.text and "- 致歉信\n" in mail.text  # no amount for a letter
    assert "很抱歉给您带来不便。" in mail.text and APPEAL in mail.text
    upheld = rendered(policy, "answer", "email", detail={"proposal_no": 1}, case=case("upheld", appeal=None))
    assert "支持您的诉求" in upheld.text and "复核" not in upheld.text
    sms = rendered(policy, "answer", "sms", detail={"proposal_no": 1}, case=case())
    assert sms.text == (
        "您的投诉SHXJH-20261123-0042答复：部分支持您的诉求，退款39.90元、致歉信。理由：草莓约1/3霉变属实，按售价退款。"
        "如有异议，可在7天内经服务台或客服热线申请复核。"
    )
    english = rendered(policy, "answer", "sms", "en", detail={"proposal_no": 1}, case=case())
    assert english.text.startswith(
        "Your complaint SHXJH-20261123-0042 is partly upheld: refund CNY 39.90, letter of apology."
    )
    assert english.text.endswith("If you disagree, ask for a review within 7 days at the service desk or hotline.")


def test_the_html_of_an_email_escapes_what_people_wrote(policy):
    mail = rendered(
        policy, "answer", "email", detail={"proposal_no": 1}, case=case(text='<script>alert("x")</script> & 草莓')
    )
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html and "&amp; 草莓" in mail.html
    assert '<script>alert("x")</script> & 草莓' in mail.text  # the text part is plain text


def test_an_execution_notice_names_the_remedy_and_its_amount(policy):
    assert (
        rendered(policy, "execution", "sms", detail={"task_id": 2}, case=case()).text
        == "您的投诉SHXJH-20261123-0042：代金券50.00元已办理，请留意查收。"
    )
    assert (
        rendered(policy, "execution", "app", "en", detail={"task_id": 1}, case=case()).text
        == "Complaint SHXJH-20261123-0042: your refund of CNY 39.90 has been made."
    )


def test_the_revisit_request_carries_its_link_and_until_when_it_is_valid(policy):
    link = "https://care.example.com/answers?token=" + "a" * 44 + "." + "b" * 43
    revisit = {"answer_link": link, "link_expires_at": "2026-11-26T04:00:00+00:00"}
    sms = rendered(policy, "revisit", "sms", detail={"revisit_id": "R"}, revisit=revisit)
    assert sms.text.endswith(link) and len(sms.text) <= policy.rules["sms_max_chars"]
    mail = rendered(policy, "revisit", "email", detail={"revisit_id": "R"}, revisit=revisit)
    assert "请在11月26日 12:00前点击以下链接评价" in mail.text and link in mail.html


def test_an_sms_too_long_is_sent_brief_and_cut_only_when_even_that_is_too_long(policy):
    limit = policy.rules["sms_max_chars"]
    long_reasons = ["草莓霉变属实，根据食品安全法及本商场规定，按售价全额退款，并对供应商进行处理" * 2] * 3
    brief = rendered(policy, "answer", "sms", detail={"proposal_no": 1}, case=case(reasons=long_reasons))
    assert len(brief.text) <= limit and "理由" not in brief.text and brief.text.endswith("申请复核。")
    full = rendered(policy, "answer", "wechat", detail={"proposal_no": 1}, case=case(reasons=long_reasons))
    assert len(full.text) > limit and "理由" in full.text  # WeChat takes it whole
    many = case()
    many["proposals"][0]["remedies"] = [{"type": "voucher", "amount": f"{n}.00", "note": None} for n in range(10, 40)]
    cut = rendered(policy, "answer", "sms", detail={"proposal_no": 1}, case=many)
    assert len(cut.text) == limit and cut.text.endswith("…")


def test_a_mall_may_have_its_own_wording(malls):
    data = yaml.safe_load((POLICY_DIR / "notify.yml").read_text(encoding="utf-8"))
    data["mall_overrides"]["bj-chaoyang"]["templates"] = {
        "zh": {"acknowledgement": {"short": "北京朝阳店已收到您的投诉{{ complaint_no }}。"}}
    }
    policy = load_policy(data, malls)
    assert (
        rendered(policy, "acknowledgement", "sms", mall_id="bj-chaoyang", detail={"received_at": MONDAY_10}).text
        == "北京朝阳店已收到您的投诉BJCY-20261123-0042。"
    )
    assert (
        rendered(policy, "acknowledgement", "sms", detail={"received_at": MONDAY_10}).text
        == "您的投诉已受理，编号SHXJH-20261123-0042。我们会尽快处理并与您联系。"
    )


@pytest.fixture
def shipped():
    return yaml.safe_load((POLICY_DIR / "notify.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "breaks, field, says",
    [
        (
            lambda d: d["languages"]["zh"]["templates"]["promise"].update(short="{{ expected_at }}"),
            "languages.zh.templates.promise.short",
            "'expected_at' is undefined",
        ),
        (
            lambda d: d["languages"]["en"]["templates"]["answer"].update(text="{% if decision %}"),
            "languages.en.templates.answer.text",
            "Template",
        ),
        (
            lambda d: d["languages"]["zh"]["templates"]["acknowledgement"].update(short="{{ mall.__class__.__mro__ }}"),
            "languages.zh.templates.acknowledgement.short",
            "unsafe",
        ),
        (
            lambda d: d["languages"]["zh"]["templates"]["revisit"].update(
                short="请您评价我们的处理" * 20 + "{{ link }}"
            ),
            "languages.zh.templates.revisit.short",
            "over sms_max_chars",
        ),
        (lambda d: d["languages"]["zh"]["templates"].pop("execution"), "languages.zh.templates", "Missing: execution"),
        (lambda d: d["routes"].pop("wechat"), "routes", "No route for: wechat"),
        (lambda d: d["gateways"].pop("app"), "gateways", "No gateway for: app"),
        (lambda d: d["mall_overrides"].update({"nowhere": {}}), "mall_overrides", "Unknown mall: nowhere"),
        (lambda d: d.update(default_language="fr"), "default_language", "No texts in: fr"),
        (lambda d: d["gateways"]["sms"].update(kind="carrier_pigeon"), "gateways", "Must be one of"),
    ],
)
def test_a_broken_policy_is_refused_naming_what_is_wrong(shipped, malls, breaks, field, says):
    data = copy.deepcopy(shipped)
    breaks(data)
    with pytest.raises(ValidationError) as refused:
        load_policy(data, malls)
    assert says in str(refused.value.messages.get(field) if field in refused.value.messages else refused.value.messages)


def test_the_shipped_policy_loads(policy):
    assert policy.public()["version"] == policy.version
    assert policy.quiet_hours("bj-chaoyang")["hours"] != policy.quiet_hours("sh-xujiahui")["hours"]
    assert policy.gateway("sh-xujiahui", "email")["kind"] == "smtp"
    assert set(policy.rules["languages"]) == {"zh", "en"}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_months_report_to_a_department_head_says_its_part_and_links_the_page(policy, language):
    """R7.13, seed 004: 定期向商场管理层及相关部门反馈 — the head of customer service reads their
    department's figures, its overdue complaints and the link to the month's report page, in
    the mall's language; the e-mail's header names the report, not a complaint."""
    link = "http://127.0.0.1:8005/reports/monthly.html?period=2026-11&mall_id=sh-xujiahui"
    detail = {
        "staff_id": "E3011",
        "role": "supervisor",
        "part": "department",
        "department": "customer_service",
        "period": "2026-11",
        "link": link,
        "name": "钱芳",  # read from the staff directory when it goes
        "figures": {
            "complaints": 3,
            "resolved": 3,
            "overdue": 1,
            "satisfaction": 0.6667,
            "sla_compliance": None,
            "overdue_cases": ["SHXJH-20261105-0003"],
        },
    }
    msg = rules.new_message(
        "report", "department:E3011:customer_service", {**complaint("email", language=language),
        "_id": "SHXJH-RPT-2026-11"}, policy, MONDAY_10, channel="email", detail=detail,
    )  # fmt: skip
    mail = rules.render(msg, "email", rules.context(msg, policy), policy)
    if language == "zh":
        assert mail.subject == "上海徐家汇店2026-11月度投诉报告：客服部"
        assert mail.text.startswith("钱芳：")
        assert "投诉 3 件，已解决 3 件，超时 1 件；顾客满意率 67%，时限达标率 —" in mail.text
        assert "超时的投诉：SHXJH-20261105-0003" in mail.text and "报告编号 SHXJH-RPT-2026-11" in mail.html
    else:
        assert mail.subject.endswith("2026-11: Customer service")
        assert "3 complaints, 3 resolved, 1 overdue; satisfaction 67%" in mail.text
        assert "report SHXJH-RPT-2026-11" in mail.html
    assert link in mail.text
    whole = rules.new_message(
        "report", "management:E3091", {**complaint("email", language=language), "_id": "SHXJH-RPT-2026-11"},
        policy, MONDAY_10, channel="email", detail={**detail, "department": None, "part": "management"},
    )  # fmt: skip
    assert "客服部" not in rules.render(whole, "email", rules.context(whole, policy), policy).subject
