"""R2.1, R2.2, R2.4, R7.4 (issue 16, findings 1, 2, 3 and 9): complaints graded as a
service-desk lead would. The category comes from the problem, never from what the
customer asks for; everyday, traditional, negated and English wording is read; high
risk is urgent whatever recurs; a demand above the law is flagged with why."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mallcare_common.policy import load_policy_dir
from tests.conftest import POLICY_DIR
from triage import rules
from triage.policy import load_policy

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(scope="module")
def policy():
    return load_policy_dir(POLICY_DIR, "triage.yml", load_policy)


class History:
    def __init__(self, recurrences=0):
        self.recurrences = recurrences

    def count_by_customer(self, ref, since):
        return 0

    def count_recurrences(self, mall_id, merchant_id, category, since, until):
        return self.recurrences

    def open_load(self, mall_id):
        return {}


def grade(policy, description, expectation=None, fact=None, history=None, **overrides):
    complaint = {
        "mall_id": "sh-xujiahui",
        "channel": "desk",
        "description": description,
        "demands": {"fact": fact, "expectation": expectation},
        "customer": {"ref": "c1", "member_tier": "regular"},
        "location": {},
        "anger_score": 3,
        "category_hint": None,
        "received_at": MONDAY_10,
        **overrides,
    }
    return rules.assess(complaint, policy, MONDAY_10, history or History())


# --- finding 1: a demand never becomes a second problem ------------------------------------


@pytest.mark.parametrize(
    "description,expectation,category",
    [
        ("草莓约1/3霉变，客户要求全额退款", None, "product.quality_defect"),
        ("过期酸奶要求退款", None, "product.expired"),
        ("酸奶过期了", "退款", "product.expired"),
        ("上午买的草莓有三分之一发霉了", "full refund plus the same in goods", "product.quality_defect"),
        ("买的鸡蛋回家发现碎了好几个", "要求退货", "product.damaged"),
        ("面包里有头发", "换货或者赔偿", "product.quality_defect"),
    ],
)
def test_a_product_complaint_asking_a_refund_is_one_product_problem(policy, description, expectation, category):
    got = grade(policy, description, expectation)
    assert got["category"] == category
    assert (got["department"], got["review_meeting"], got["departments_involved"]) == ("procurement_qc", False, [])
    assert got["risk_level"] == "low"


def test_a_passing_word_of_another_department_is_no_second_problem(policy):
    got = grade(policy, "排队的时候发现酸奶过期了", "退款")
    assert (got["category"], got["review_meeting"]) == ("product.expired", False)


@pytest.mark.parametrize(
    "description,merchant,category,department",
    [
        ("我有糖尿病，订的是无糖可乐，送来的全是含糖的", None, "logistics.wrong_delivery", "logistics"),
        (
            "VIP会员用会员卡储值余额付款，显示支付失败，改用微信付了，储值卡余额也被扣了",
            None,
            "payment.failed_payment",
            "finance",
        ),
        ("生日券明明还没到期，收银说已经过期了不给用", None, "rules.membership_rights", "customer_service"),
        ("在三楼面馆吃面，碗里有一只苍蝇", "T-31", "product.quality_defect", "merchant_relations"),
        ("2樓冷氣壞咗成日，熱到死", None, "environment.facility_failure", "facilities"),
        ("收银装袋时没检查，回家发现杯子有裂纹", None, "product.damaged", "procurement_qc"),
        ("收银员人很好，但是牛奶是酸的", None, "product.quality_defect", "procurement_qc"),
        (
            "The cashier was friendly and helpful, but the bread had green fuzz all over it",
            None,
            "product.quality_defect",
            "procurement_qc",
        ),
        (
            "客户在服务台排了十分钟队，反映三楼扶梯停了，排队的事无所谓",
            None,
            "environment.facility_failure",
            "facilities",
        ),
    ],
)
def test_a_word_of_another_kind_in_passing_is_no_problem_of_its_own(
    policy, description, merchant, category, department
):
    """尿 in 糖尿病, a stored-value card that fails to pay, a coupon the till calls expired,
    a fly in a tenant's food, a Cantonese broken air-con, the till that bagged a cracked cup."""
    got = grade(policy, description, location={"merchant_id": merchant})
    assert (got["category"], got["department"], got["review_meeting"]) == (category, department, False)


def test_two_parties_problems_in_the_complaint_itself_make_a_review_meeting(policy):
    got = grade(policy, "买的花瓶包装破损，瓶口也裂了，结账时收银员态度还很恶劣，翻白眼", "退货并道歉")
    assert got["review_meeting"] and got["departments_involved"] == ["customer_service", "procurement_qc"]
    assert got["category"] == "product.damaged"


def test_a_problem_said_apart_stays_its_own_beside_a_broken_facility(policy):
    """The broken gate takes the place of a product reading only where it is said."""
    got = grade(policy, "超市买的面条有股馊味，另外你们停车场道闸又坏了")
    assert got["review_meeting"] and got["departments_involved"] == ["facilities", "procurement_qc"]
    assert got["category"] == "product.quality_defect"


# --- finding 2: everyday wording, traditional characters, negation, English -----------------


@pytest.mark.parametrize(
    "description,category",
    [
        ("牛奶有股臭味", "product.quality_defect"),
        ("手机用了两天就坏了", "product.quality_defect"),
        ("买到假货了", "product.quality_defect"),
        ("收银员多收了我20块", "service.operating_error"),
        ("盒饭都馊了", "product.quality_defect"),
        ("青菜叶子都发黄了", "product.quality_defect"),
        ("孩子吃了你们的蛋糕吐了", "product.quality_defect"),
        ("收银员扫了两次", "service.operating_error"),
        ("电梯里有臭味", "environment.hygiene"),
        ("电梯里漏水", "environment.facility_failure"),
        ("酸奶没有过期，但是里面有异物", "product.quality_defect"),
        ("牛奶過期了", "product.expired"),
        ("麵包變質了", "product.quality_defect"),
        ("收銀員態度很差", "service.bad_attitude"),
        ("不是质量问题，是收银员态度不好", "service.bad_attitude"),
        ("ＤＯＵＢＬＥ　ＳＣＡＮＮＥＤ at the till", "service.operating_error"),
        ("The yogurt was not expired but it smelled bad", "product.quality_defect"),
        ("the milk was expierd", "product.expired"),
        ("rude cashir shouted at me", "service.bad_attitude"),
    ],
)
def test_everyday_wording_is_read(policy, description, category):
    got = grade(policy, description)
    assert (got["category"], got["category_confirmed"]) == (category, True)
    assert not got["review_meeting"]


def test_a_weak_hint_is_proposed_but_left_for_a_person_to_confirm(policy):
    got = grade(policy, "包装有点问题")
    assert got["category"] == "product.damaged" and got["category_source"] == "keywords"
    assert not got["category_confirmed"] and got["category_confidence"] < 0.6


def test_a_negated_harm_is_no_safety_risk(policy):
    assert grade(policy, "草莓发霉了，还好没吃，没有拉肚子")["risk_level"] == "low"


# --- finding 3: high risk is urgent, recurrence a flag beside it ----------------------------


def test_the_fifth_food_poisoning_of_a_month_is_urgent_and_systemic(policy):
    got = grade(policy, "昨天在熟食区买的卤肉，全家吃了食物中毒", history=History(recurrences=4))
    assert (got["urgency"], got["systemic"], got["recurrences"]) == ("urgent", True, 5)
    assert got["resolution_due_at"] == MONDAY_10 + timedelta(hours=12)  # 24 h x 0.5 for high risk


def test_a_recurring_routine_problem_keeps_its_routine_deadline(policy):
    once = grade(policy, "价签和收银价不一致")
    fifth = grade(policy, "价签和收银价不一致", history=History(recurrences=4))
    assert (fifth["urgency"], fifth["systemic"]) == ("routine", True) and not once["systemic"]
    assert fifth["resolution_due_at"] == once["resolution_due_at"]


# --- finding 9: demands read for multiples and sums, held against the law --------------------


def test_the_food_poisoning_complaint_is_a_product_problem_for_procurement_with_safety(policy):
    got = grade(policy, "在你们超市买的熟食，全家吃了食物中毒，上吐下泻去了医院", "赔偿医药费")
    assert (got["category"], got["department"]) == ("product.quality_defect", "procurement_qc")
    assert got["risk_level"] == "high" and "safety" in {r["reason"] for r in got["risk_reasons"]}
    assert got["urgency"] == "urgent"


def beyond(got):
    return next((r for r in got["risk_reasons"] if r["reason"] == "beyond_statutory"), None)


@pytest.mark.parametrize(
    "description,expectation,multiple,amount,price,why",
    [
        ("50元的酸奶过期了", "要求20倍赔偿", 20, None, 5000, "asks 20x; food safety law grants 10x"),
        ("酸奶过期了", "要求20倍价格退款", 20, None, None, "asks 20x; food safety law grants 10x"),
        ("买的T恤掉色", "退一赔十", 10, None, None, "asks 10x; consumer protection law grants 3x"),
        ("a 30 yuan bottle of juice was expired", "refund and 20 times compensation", 20, None, 3000, "asks 20x"),
        ("花了200元买的面包发霉了", "赔偿5万元", None, 5000000, 20000, "asks 50000 yuan on a 200-yuan price"),
        ("牛奶过期了", "赔偿精神损失费", None, None, None, "mental damages"),
    ],
)
def test_a_demand_above_the_law_is_flagged_with_why(policy, description, expectation, multiple, amount, price, why):
    got = grade(policy, description, expectation)
    assert got["demand"]["multiple"] == multiple and got["demand"]["amount_fen"] == amount
    assert got["demand"]["price_fen"] == price
    reason = beyond(got)
    assert reason and why in reason["detail"] and got["risk_level"] == "medium"


@pytest.mark.parametrize(
    "description,expectation",
    [
        ("50元的酸奶过期了", "要求退一赔十"),
        ("酸奶过期了", "要求10倍赔偿"),
        ("50元的酸奶过期了", "赔偿1000元"),
        ("买的耳机是假货", "退一赔三"),
        ("草莓发霉了", "全额退款"),
        ("衣服开线了", "换一件新的"),
        ("牛奶过期了", "给同等价值的商品"),
        ("收银员态度差", "道歉"),
    ],
)
def test_what_the_law_grants_is_not_beyond_it(policy, description, expectation):
    assert beyond(grade(policy, description, expectation)) is None


def test_a_price_in_brackets_inside_the_demand_is_the_price_not_a_sum_asked(policy):
    got = grade(policy, "宣传单写吸尘器续航60分钟，实际只有20分钟", "退货并按消保法赔偿三倍货款（1299元）")
    assert (got["demand"]["multiple"], got["demand"]["amount_fen"], got["demand"]["price_fen"]) == (3, None, 129900)
    assert beyond(got) is None and got["risk_level"] == "low"


@pytest.mark.parametrize(
    "description",
    [
        "The exit barrier at B2 would not lift for 40 minutes. I'm putting the video on my WeChat moments.",
        "停车场出口道闸坏了等了半小时，我已经拍了视频，要发到业主群里让大家评评理",
        "冷气坏咗成个下昼，我会放上网俾大家睇",
    ],
)
def test_a_threat_to_go_public_said_on_the_phone_is_media_exposure(policy, description):
    got = grade(policy, description, channel="hotline")
    assert got["risk_level"] == "high" and "media_exposure" in {r["reason"] for r in got["risk_reasons"]}


def test_a_persons_correction_confirms_a_proposed_category(policy):
    """R7.4: a category below the confidence threshold is only proposed; a correction by a
    person confirms it, and the event says so."""
    complaint = {
        "channel": "desk",
        "description": "包装有点问题",
        "demands": {},
        "location": {},
        "customer": {"ref": "c1", "member_tier": "regular"},
        "anger_score": 3,
        "category_hint": None,
        "received_at": MONDAY_10,
    }
    event = {"event_id": "e1", "complaint_no": "SHXJH-20261123-0001", "mall_id": "sh-xujiahui", "payload": complaint}
    proposed = rules.assess({**complaint, "mall_id": "sh-xujiahui"}, policy, MONDAY_10, History())
    doc, triaged = rules.new_assessment(event, proposed, MONDAY_10)
    assert not doc["category_confirmed"]
    assert triaged["payload"]["category_confirmed"] is False
    changes, entry, corrected = rules.reassessment(
        doc, "category", "product.damaged", "E3101", "seen the box", policy, MONDAY_10, History()
    )
    assert (changes["category"], changes["category_source"], changes["category_confirmed"]) == (
        "product.damaged",
        "corrected",
        True,
    )
    assert corrected["payload"]["category_confirmed"] is True and entry["old"] == "product.damaged"


# --- the second held-out part's misses, by cause (round 3) ----------------------------------


@pytest.mark.parametrize(
    "description,merchant,category,department,meeting",
    [
        # the tenant's staff blaming the customer for the tenant's goods: one party
        (
            "在T-36买的生日蛋糕打开盒子整个塌了，店员还说是我自己拿不好",
            "T-36",
            "product.damaged",
            "merchant_relations",
            False,
        ),
        # a birthday cake is no birthday gift of the membership
        ("订的生日蛋糕盒子压扁了，蛋糕塌了一半", None, "product.damaged", "procurement_qc", False),
        # praise in English names no problem
        (
            "The shelf label says 19.90 but I was charged 32.50. Cashier was nice about it.",
            None,
            "rules.price_dispute",
            "customer_service",
            False,
        ),
        # a promotion not honoured is a price dispute, not goods unlike their poster
        ("海报写全场8.8折，结账时生鲜不参加，海报上一个字没写", None, "rules.price_dispute", "customer_service", False),
        # a new appliance smelling of plastic is a quality defect
        ("电热水壶头一次烧水就一股刺鼻的塑料味", None, "product.quality_defect", "procurement_qc", False),
        # a leak reported for days that nobody came to fix is one facility problem
        (
            "天花板在滴水 接水的桶都满了 店员说报了物业好几天了 一直没人来修",
            None,
            "environment.facility_failure",
            "facilities",
            False,
        ),
        # a broken parking gate AND a double parking charge are two problems
        (
            "出场时道闸坏了抬不起来，等了半个小时；后来手机缴费又被扣了两次停车费",
            None,
            "environment.facility_failure",
            "operations_director",
            True,
        ),
        # the broken escalator nobody fixed, and a hotline nobody answered: two problems
        (
            "三楼扶梯坏了两天没人修，我打你们热线想报修，打了半个小时都没人接",
            None,
            "environment.facility_failure",
            "operations_director",
            True,
        ),
    ],
)
def test_what_the_second_held_out_part_missed_is_read_by_its_cause(
    policy, description, merchant, category, department, meeting
):
    got = grade(policy, description, location={"merchant_id": merchant})
    assert (got["category"], got["department"], got["review_meeting"]) == (category, department, meeting)


@pytest.mark.parametrize(
    "description",
    [
        "二楼洗手间洗手台上有呕吐物，一直没人清理",
        "地下停车场的柱子旁有人呕吐，臭了一整天都没人清",
        "There was vomit on the floor of the ladies' toilet all afternoon",
    ],
)
def test_vomit_seen_in_the_mall_is_hygiene_and_nobodys_harm(policy, description):
    got = grade(policy, description)
    assert (got["category"], got["risk_level"]) == ("environment.hygiene", "low")


def test_a_child_sick_after_eating_is_safety_whatever_else_was_seen(policy):
    got = grade(policy, "孩子吃了你们的面包就吐了，地上一滩呕吐物")
    assert got["risk_level"] == "high" and "safety" in [r["reason"] for r in got["risk_reasons"]]


@pytest.mark.parametrize(
    "description,category,department,meeting",
    [
        # staff blaming the customer for the goods is part of the goods' complaint
        ("买的鸡蛋回家发现碎了四个，收银员说是我自己装袋压的", "product.damaged", "procurement_qc", False),
        pytest.param(
            "买的T恤洗一次就缩水，导购说你自己洗错了",
            "product.quality_defect",
            "procurement_qc",
            False,
            marks=pytest.mark.xfail(
                strict=True,
                reason="known misread (docs/benchmarks.md, round 4): the "
                "second opinion outvotes the rules' quality defect (confidence 0.6, just "
                "confirmed) and proposes not_as_described, unconfirmed",
            ),
        ),
        # an appliance that stopped after days of use, and a clerk who shouted: two problems
        (
            "电饭煲用了三天不加热，售后说是我用法不对，态度还很差，一直吼我",
            "product.quality_defect",
            "operations_director",
            True,
        ),
    ],
)
def test_staff_blaming_the_customer_is_no_second_problem_but_shouting_is(
    policy, description, category, department, meeting
):
    got = grade(policy, description)
    assert (got["category"], got["department"], got["review_meeting"]) == (category, department, meeting)


@pytest.mark.xfail(
    strict=True,
    reason="known misread, seen trying the running system on 2026-12-05 (issue 16, "
    "blocked): 扣了我兩次錢 has 我 inside the phrase 扣了两次, so the rules find only "
    "the guard's attitude",
)
def test_a_pay_station_that_took_the_money_twice_is_payment_even_with_a_rude_guard_after(policy):
    """A social-media post in traditional Chinese and Cantonese: the first problem told is the
    double charge at the car park's pay station (payment, as in the policy's own notes)."""
    got = grade(
        policy,
        "停車場收費機扣了我兩次錢，保安態度還很差，叫我自己打電話問，真係離譜！",
        expectation="退還多收的停車費，保安道歉",
    )
    assert got["category"] == "payment.failed_payment"
