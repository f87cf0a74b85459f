"""R2.1, R2.4, R3.2, R7.4 (issue 16, "done when"): the README's strawberry complaint,
recorded at the service desk as a clerk writes it ("草莓约1/3霉变，客户要求全额退款"),
goes through intake, triage and resolution on the real broker and store. It is graded
a product quality defect of low risk for procurement/QC (merchant relations when a tenant
sold it), the refund it asks for makes no second problem and no review meeting, and the
desk settles it on the spot."""

from mallcare_cli.examples import desk_complaint
from tests.helpers import settle_at_desk, staff

DESK, HANDLER = staff("D3001"), staff("E3501")
STRAWBERRIES = {
    "location": {"area": "生鲜区"},  # the mall's own supermarket
    "description": "12月5日16:10，生鲜区称重台，草莓约1/3霉变，客户要求全额退款。",
    "demands": {"fact": "草莓约1/3霉变", "expectation": "全额退款"},
    "emotion": "calm",
    "anger_score": 2,
}


def desk_records(system, **complaint):
    """The complaint's number and its assessment, once its case is open."""
    with system.case_opened():
        response = system.web["intake"].post("/complaints", headers=DESK, json=desk_complaint(**complaint))
    assert response.status_code == 201, response.text
    number = response.json()["number"]
    assessment = system.web["triage"].get(f"/assessments/{number}", headers=HANDLER)
    assert assessment.status_code == 200, assessment.text
    return number, assessment.json()


def test_the_strawberry_complaint_is_a_low_risk_quality_defect_settled_at_the_desk(system):
    web = system.web
    number, graded = desk_records(system, channel_ref="desk-strawberry-1", **STRAWBERRIES)
    assert (graded["category"], graded["category_source"], graded["category_confirmed"]) == (
        "product.quality_defect",
        "keywords",
        True,
    )
    assert (graded["risk_level"], graded["risk_reasons"], graded["urgency"]) == ("low", [], "routine")
    assert (graded["department"], graded["review_meeting"], graded["departments_involved"]) == (
        "procurement_qc",
        False,
        [],
    )
    assert graded["demand"] == {"multiple": None, "amount_fen": None, "price_fen": None, "mental_damages": False}

    settle_at_desk(system, number, DESK)
    case = web["resolution"].get(f"/cases/{number}", headers=HANDLER).json()
    assert case["state"] == "resolved" and case["category"] == "product.quality_defect"


def test_strawberries_a_tenant_sold_go_to_merchant_relations_without_a_meeting(system):
    _, graded = desk_records(
        system,
        channel_ref="desk-strawberry-2",
        **{**STRAWBERRIES, "location": {"area": "B1", "merchant_id": "T-17", "merchant_name": "鲜果坊"}},
    )
    assert (graded["category"], graded["risk_level"]) == ("product.quality_defect", "low")
    assert (graded["department"], graded["review_meeting"]) == ("merchant_relations", False)


def test_the_desks_note_of_the_customers_tone_reaches_the_handler_beside_emotion_and_anger(system):
    """R7.3, seed 002: 簡要記錄客戶語氣、態度. The clerk writes a line on how the customer
    spoke; the complaint keeps it, and the handler reads it on the assessment beside the
    emotion and the anger score, masked like the description (the customer's name and
    phone are not for every reader)."""
    note = "王女士语气很冲，说不退钱就打13812345678叫家人来"
    number, graded = desk_records(
        system,
        channel_ref="desk-tone-1",
        emotion="angry",
        anger_score=4,
        tone_note=note,
        **{k: v for k, v in STRAWBERRIES.items() if k not in ("emotion", "anger_score")},
    )
    masked = system.web["intake"].get(f"/complaints/{number}", headers=HANDLER).json()["tone_note"]
    assert "语气很冲，说不退钱就打" in masked and "13812345678" not in masked and "王女士" not in masked, masked
    assert graded["mood"] == {"emotion": "angry", "anger_score": 4, "tone_note": masked}
