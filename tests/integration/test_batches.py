"""R7.6, product batches checked and the result published, across the whole path: the six
services on the real broker and store. Two customers complain of the same batch of yoghurt;
triage reads its batch code, resolution opens one check of that batch that both cases join;
procurement/QC holds and inspects it, the store manager gives the result and publishes it;
both cases then show the result on their timelines, and the mall's public notice page, served
by intake over HTTP, lists it in Chinese and in English, and notify tells both customers."""

import uuid

from mallcare_cli.examples import desk_complaint
from tests.helpers import page_of, staff, wait_for

BATCH = "SHXJH-LOT-20261201"
QC, CUSTOMER_SERVICE, STORE_MANAGER = staff("E3101"), staff("E3001"), staff("E3091")


def yoghurt_complaint(system, name, phone):
    """A customer's complaint at the desk about the supermarket's yoghurt, its case open."""
    body = desk_complaint(
        channel_ref=f"desk-{uuid.uuid4().hex[:12]}",
        customer={"name": name, "phone": phone},
        location={"area": "B1 dairy"},
        product={"brand": "光明", "model": "原味酸奶 200g"},
        staff_involved=[],
        description="这批酸奶胀袋了，批号20261201",
        demands={"fact": "酸奶胀袋", "expectation": "退款"},
    )
    with system.case_opened():
        registered = system.web["intake"].post("/complaints", json=body, headers=staff("D3001"))
    assert registered.status_code == 201, registered.text
    number = registered.json()["number"]
    return wait_for(lambda: (c := system.web["resolution"].get(f"/cases/{number}")).status_code == 200 and c.json())


def step(system, name, who, **body):
    done = system.web["resolution"].post(f"/batch-checks/{BATCH}/{name}", headers=who, json=body)
    assert done.status_code == 200, done.text
    return done.json()


def test_two_complaints_of_one_batch_make_one_check_whose_result_reaches_both_and_the_notice(system):
    """R7.6, seed 002: 核查同批次商品并公示结果."""
    first = yoghurt_complaint(system, "王女士", "13811110001")
    second = yoghurt_complaint(system, "陈先生", "13811110002")
    assert first["category"].startswith("product.") and second["category"].startswith("product.")
    assert first["batch_check_no"] == second["batch_check_no"] == BATCH
    assert first["product"] == {"barcode": None, "batch": "20261201"}

    resolution = system.web["resolution"]
    check = resolution.get(f"/batch-checks/{BATCH}", headers=QC).json()
    assert (check["state"], check["complaint_nos"]) == ("open", [first["complaint_no"], second["complaint_no"]])
    listed = resolution.get("/batch-checks", params={"complaint_no": second["complaint_no"]}, headers=QC).json()
    assert [c["number"] for c in listed["items"]] == [BATCH]

    notices = system.web["intake"].get("/portal/SHXJH/notices")
    assert "目前没有需要公示的核查结果" in page_of(notices, 200)

    refused = resolution.post(f"/batch-checks/{BATCH}/hold", headers=CUSTOMER_SERVICE, json={"note": "已下架"})
    assert refused.status_code == 403, refused.text  # the policy gives the hold to procurement/QC
    step(system, "hold", QC, note="货架和仓库共下架该批次酸奶42袋，封存待检")
    step(system, "inspection", QC, finding="抽检6袋，4袋胀袋，菌落总数超标")
    bad = resolution.post(
        f"/batch-checks/{BATCH}/result", headers=STORE_MANAGER, json={"verdict": "unsafe", "action": "back_on_shelf"}
    )
    assert bad.status_code == 422 and set(bad.json()["fields"]) == {"summary"}
    bad = resolution.post(
        f"/batch-checks/{BATCH}/result",
        headers=STORE_MANAGER,
        json={"verdict": "unsafe", "action": "back_on_shelf", "summary": "可以继续销售"},
    )
    assert bad.status_code == 422 and "withdrawn" in bad.json()["fields"]["action"][0]  # unsafe goods stay off sale
    step(
        system,
        "result",
        STORE_MANAGER,
        verdict="unsafe",
        action="returned_to_supplier",
        summary="该批次酸奶胀袋，菌落总数超标，已全部下架并退回供应商",
    )
    published = step(system, "publication", STORE_MANAGER)
    assert published["state"] == "published"

    # every case of the batch shows the result on its timeline
    for case in (first, second):
        number = case["complaint_no"]

        def noted(number=number):
            timeline = resolution.get(f"/cases/{number}/timeline").json()["timeline"]
            return [e for e in timeline if e["action"] == "batch_result"]

        [entry] = wait_for(noted)
        assert entry["detail"]["batch_check_no"] == BATCH
        assert (entry["detail"]["verdict"], entry["detail"]["batch_action"]) == ("unsafe", "returned_to_supplier")

    # a complaint of the batch after the publication joins the check and has the result at once
    third = yoghurt_complaint(system, "张女士", "13811110003")
    assert third["batch_check_no"] == BATCH
    [late] = [e for e in third["timeline"] if e["action"] == "batch_result"]
    assert late["detail"]["summary"] == "该批次酸奶胀袋，菌落总数超标，已全部下架并退回供应商"
    assert resolution.get(f"/batch-checks/{BATCH}", headers=QC).json()["complaint_nos"][-1] == third["complaint_no"]

    # and each customer of the batch is told (notify, on the channel of their complaint)
    for case in (first, second):
        number = case["complaint_no"]

        def told(number=number):
            items = system.web["notify"].get("/messages", params={"complaint_no": number}).json()["items"]
            return [m for m in items if m["kind"] == "batch_result"]

        [message] = wait_for(told)
        assert message["ref"] == BATCH

    # the mall's public notice lists it, in Chinese and in English, with no complaint or customer on it
    zh = page_of(system.web["intake"].get("/portal/SHXJH/notices"), 200)
    assert "20261201" in zh and "不合格" in zh and "已退回供应商" in zh and "菌落总数超标" in zh
    en = page_of(system.web["intake"].get("/portal/SHXJH/notices", params={"lang": "en"}), 200, lang="en")
    assert "Product batch checks" in en and "Unsafe" in en and "Returned to the supplier" in en
    for page in (zh, en):
        assert first["complaint_no"] not in page and "13811110001" not in page and "王女士" not in page
