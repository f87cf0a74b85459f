"""R7.6 (seed 002: 核查同批次商品并公示结果): a mall's public notice page of batch checks, as
intake.notices makes it from resolution's published results."""

from datetime import datetime, timezone

import pytest

from intake import notices
from intake.policy import load_policy
from mallcare_common.policy import load_policy_dir
from tests.conftest import POLICY_DIR

BASE = "https://service.example-mall.cn"
PUBLISHED = datetime(2026, 12, 6, 7, 30, tzinfo=timezone.utc)  # 15:30 in Shanghai


@pytest.fixture(scope="module")
def mall():
    return load_policy_dir(POLICY_DIR, "intake.yml", load_policy).malls["sh-xujiahui"]


def notice(**changes):
    return {
        "number": "SHXJH-LOT-20261201",
        "product": {"barcode": None, "batch": "20261201"},
        "verdict": "unsafe",
        "action": "returned_to_supplier",
        "summary": "该批次酸奶胀袋，已全部下架并退回供应商 <b>",
        "published_at": PUBLISHED,
        **changes,
    }


def test_the_notice_lists_each_published_result_in_the_customers_language(mall):
    """R7.6, seed 002: 公示结果 (the goods, the verdict, what was done, when, on the mall's clock;
    what staff wrote shown as text, never as markup)."""
    zh = notices.page(
        BASE,
        "zh",
        mall,
        [
            notice(),
            notice(
                number="SHXJH-EAN-6901234567892",
                verdict="safe",
                action="back_on_shelf",
                product={"barcode": "6901234567892", "batch": None},
            ),
        ],
    )
    assert '<html lang="zh-CN">' in zh and "<script" not in zh
    assert "批号</dt><dd>20261201" in zh and "商品条码</dt><dd>6901234567892" in zh
    assert "不合格" in zh and "已退回供应商" in zh and "合格" in zh and "恢复销售" in zh
    assert "2026年12月6日 15:30" in zh
    assert "&lt;b&gt;" in zh and "退回供应商 <b>" not in zh
    assert f'href="{BASE}/portal/SHXJH/notices?lang=en"' in zh  # the switch to English

    en = notices.page(BASE, "en", mall, [notice(action="recalled_by_the_maker")])
    assert '<html lang="en">' in en and "Unsafe" in en and "Batch</dt><dd>20261201" in en
    assert "6 Dec 2026, 15:30" in en
    assert "recalled_by_the_maker" in en  # an action added to the policy since shows by its code


def test_nothing_published_says_so(mall):
    """R7.6, seed 002: 公示结果 (a mall with no result yet)."""
    assert "目前没有需要公示的核查结果" in notices.page(BASE, "zh", mall, [])
    assert "No results to publish" in notices.page(BASE, "en", mall, [])
