"""R4.4, R6.3 and issue 7 (personal data): masking for events, logs and ordinary reads;
scrubbing free text; what retention leaves of a customer."""

import pytest

from marshmallow import fields

from mallcare_common.personal import (
    ANONYMISED,
    MaskedOut,
    anonymise_text,
    anonymised_customer,
    mask_contact,
    mask_email,
    mask_name,
    mask_phone,
    mask_text,
    masked_customer,
    scrub,
)


@pytest.mark.parametrize(
    "phone,masked",
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("021 6488 1234", "021****1234"),
        ("12345", "****"),
    ],
)
def test_a_phone_shows_its_first_three_and_last_four_digits(phone, masked):
    assert mask_phone(phone) == masked


def test_an_email_shows_its_first_letter_and_domain():
    assert mask_email("zhang.san@example.com") == "z***@example.com"


def test_the_contact_is_the_phone_first_then_the_email_then_the_wechat_openid_then_none():
    assert mask_contact({"phone": "13812345678", "email": "w@example.com"}) == "138****5678"
    assert mask_contact({"email": "wang@example.com", "wechat_openid": "oX3kTq1Lm9Zw0000q9Zw"}) == "w***@example.com"
    assert mask_contact({"wechat_openid": "oX3kTq1Lm9Zw0000q9Zw"}) == "oX3k****q9Zw"
    assert mask_contact({"member_id": "M001"}) is None


def test_a_wechat_openid_is_personal_data_like_a_phone():
    customer = {"wechat_openid": "oX3kTq1Lm9Zw0000q9Zw", "member_tier": "gold"}
    assert masked_customer(customer) == {
        "name_masked": None,
        "contact_masked": "oX3k****q9Zw",
        "reachable_by": ["wechat_openid"],
        "member_tier": "gold",
    }
    assert anonymised_customer(customer) == {"member_tier": "gold", "wechat_openid": ANONYMISED}
    assert masked_customer(anonymised_customer(customer))["contact_masked"] == ANONYMISED
    assert mask_text("我的微信号是 oX3kTq1Lm9Zw0000q9Zw", customer) == "我的微信号是 [contact]"


@pytest.mark.parametrize(
    "name,masked", [("王女士", "王**"), ("Zhang San", "Z********"), ("李", "李*"), (None, None), ("", None)]
)
def test_a_name_keeps_its_first_character(name, masked):
    assert mask_name(name) == masked


def test_the_masked_customer_says_how_to_reach_them_but_not_the_way_itself():
    customer = {
        "name": "王女士",
        "phone": "13812345678",
        "email": "wang@example.com",
        "member_id": "M001",
        "member_tier": "gold",
    }
    view = masked_customer(customer)
    assert view == {
        "name_masked": "王**",
        "contact_masked": "138****5678",
        "reachable_by": ["phone", "email", "member_id"],
        "member_tier": "gold",
    }
    for raw in ("女士", "13812345678", "wang@", "M001"):
        assert raw not in str(view)
    assert masked_customer(None) == {
        "name_masked": None,
        "contact_masked": None,
        "reachable_by": [],
        "member_tier": None,
    }


def test_an_anonymised_customer_keeps_only_the_tier_and_markers():
    customer = {"name": "王女士", "phone": "13812345678", "social_handle": "wx_wang", "member_tier": "gold"}
    assert anonymised_customer(customer) == {
        "member_tier": "gold",
        "name": ANONYMISED,
        "phone": ANONYMISED,
        "social_handle": ANONYMISED,
    }
    assert anonymised_customer({}) == {}
    assert anonymised_customer(anonymised_customer(customer)) == anonymised_customer(customer)  # idempotent
    assert masked_customer(anonymised_customer(customer)) == {
        "name_masked": ANONYMISED,
        "contact_masked": ANONYMISED,
        "reachable_by": [],
        "member_tier": "gold",
    }


def test_anonymised_text_loses_the_customers_own_name_and_handle_too():
    customer = {"name": "王女士", "phone": "13812345678", "social_handle": "wx_wang"}
    text = {"fact": "王女士说草莓发霉了，电话13812345678，微信 wx_wang", "points": ["王女士不接受"], "n": 3}
    assert anonymise_text(text, customer) == {
        "fact": "[name]说草莓发霉了，电话[phone]，微信 [anonymised]",
        "points": ["[name]不接受"],
        "n": 3,
    }
    assert anonymise_text("no names here", {"name": "王"}) == "no names here"  # one character is no name
    once = anonymise_text(text, customer)
    assert anonymise_text(once, anonymised_customer(customer)) == once


def test_masked_text_loses_phones_emails_ids_and_the_customers_own_name_but_keeps_identifiers():
    customer = {"name": "王女士", "phone": "13812345678", "social_handle": "wx_wang"}
    text = {
        "note": "王女士说请回电139 1111 2222或wang@example.com，身份证11010119900307123X，会员M00123，微信wx_wang",
        "event_id": "a13912345678b",
        "owner_id": "M0042",
        "at": 3,
    }
    assert mask_text(text, customer) == {
        "note": "[name]说请回电[phone]或[e-mail]，身份证[ID number]，会员[member id]，微信[contact]",
        "event_id": "a13912345678b",
        "owner_id": "M0042",
        "at": 3,
    }
    assert mask_text(["王女士不接受"]) == ["王女士不接受"]  # no customer known: patterns only
    # a Latin name counts as a word of its own, in English or beside Chinese, not inside another word
    assert (
        mask_text("Li called: Limited Edition mug broken; Li先生, ask for Li.", {"name": "Li"})
        == "[name] called: Limited Edition mug broken; [name]先生, ask for [name]."
    )
    assert mask_text(mask_text(text, customer), customer) == mask_text(text, customer)


class _Out(MaskedOut):
    free_text = ("description", "notes")
    number = fields.String()
    description = fields.String()
    notes = fields.List(fields.Dict())
    contact = fields.String()


def test_an_output_schema_masks_the_free_text_it_names_and_nothing_else():
    record = {
        "number": "SH-13812345678",
        "description": "王女士请回电13812345678",
        "contact": "13812345678",
        "notes": [{"text": "王女士不在", "id": 13812345678}],
        "customer": {"name": "王女士"},
    }
    assert _Out().dump(record) == {
        "number": "SH-13812345678",
        "description": "[name]请回电[phone]",
        "contact": "13812345678",
        "notes": [{"text": "[name]不在", "id": 13812345678}],
    }
    assert _Out(many=True, exclude=("notes",)).dump(iter([record, {"description": None}])) == [
        {"number": "SH-13812345678", "description": "[name]请回电[phone]", "contact": "13812345678"},
        {"description": None},
    ]


# --- scrub (moved here from feedback, which uses it for the case library) -------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("13812345678", "[phone]"),
        ("请回电13812345678谢谢", "请回电[phone]谢谢"),
        ("电话 +86 138 1234 5678。", "电话 [phone]。"),
        ("+86-138-1234-5678", "[phone]"),
        ("+8613812345678", "[phone]"),
        ("86 13812345678", "[phone]"),
        ("138-1234-5678 or 139 8765 4321", "[phone] or [phone]"),
        ("座机 021-12345678 转 8", "座机 [phone] 转 8"),
        ("深圳 0755-1234567", "深圳 [phone]"),
        ("e-mail zhang.san+mall@example.com.cn, please", "e-mail [e-mail], please"),
        ("邮箱：w@example.com。", "邮箱：[e-mail]。"),
        ("ID 310101199001011234", "ID [ID number]"),
        ("身份证 31010119900101123X 已核对", "身份证 [ID number] 已核对"),
        ("31010119900101123x", "[ID number]"),
        ("member M001 called", "member [member id] called"),
        ("M00123, M9999", "[member id], [member id]"),
        ("M001 / 13812345678 / a@b.cn / 021-12345678", "[member id] / [phone] / [e-mail] / [phone]"),
    ],
)
def test_scrub_takes_out_personal_data(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "买了1/3公斤草莓，发霉了",
        "500g 只要39.90元",
        "2026年11月23日 10:00-22:00 营业",
        "2026",
        "投诉单 SHXJH-20261123-0042 已结案",
        "B1 层 3 号柜台, Room 1203, M1 escalator",
        "要求 10 倍赔偿 1039.90 元",
        "refund 25 + compensation 1000",
        "the customer was told at 15:30",
    ],
)
def test_scrub_leaves_ordinary_text_and_short_numbers_intact(text):
    assert scrub(text) == text


@pytest.mark.parametrize("empty", [None, ""])
def test_scrub_passes_nothing_through(empty):
    assert scrub(empty) == empty


@pytest.mark.parametrize(
    "text,expected", [("会员M00123投诉", "会员[member id]投诉"), ("会员号:M001的顾客", "会员号:[member id]的顾客")]
)
def test_scrub_takes_member_ids_out_of_chinese_text(text, expected):
    assert scrub(text) == expected


def test_scrub_keeps_the_chinese_words_around_an_email():
    assert scrub("请发邮件至zhang@example.com谢谢") == "请发邮件至[e-mail]谢谢"
