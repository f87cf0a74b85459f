"""What scripts/run.sh tells a new user to open leads somewhere: the customer's own page and
the poster are addressed by the mall's code (R7.2), not its id. run.sh printed
/portal/sh-xujiahui, a 404, when tried from a fresh clone on 2026-12-06."""

import re

from mallcare_common.malls import load_registry_file
from tests.helpers import POLICY_DIR, ROOT


def test_the_customer_pages_run_sh_points_to_name_a_malls_code():
    codes = {mall.code for mall in load_registry_file(POLICY_DIR / "malls.yml").malls.values()}
    printed = re.findall(r"127\.0\.0\.1:8001/portal/([^/\s]+)", (ROOT / "scripts" / "run.sh").read_text())
    assert printed, "run.sh no longer shows the customer's page"
    assert set(printed) <= codes, f"run.sh points to /portal/{set(printed) - codes} (not a mall code: 404)"
