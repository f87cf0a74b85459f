"""Issues 9 and 20: every page of the console fits a 1280x800 screen and a tablet (a 768x1024
one and a larger one, upright and on its side) without sideways scrolling, for the member of
staff who uses it. The harness is tests/e2e/conftest.py; a screenshot of each page at each size goes to
test-artifacts/console/<test>/."""

import requests

from mallcare_cli.examples import desk_complaint
from mallcare_common.auth import issue_token
from tests.helpers import SIGN_ON, wait_for
from tests.e2e.conftest import Console

SIZES = {"laptop": (1280, 800), "tablet": (768, 1024), "tablet-upright": (820, 1180), "tablet-side": (1180, 820)}
PAGES = [
    ("D3001", "desk"),
    ("D3001", "acks"),
    ("E3501", "queue"),
    ("E3501", "case"),
    ("E3501", "library"),
    ("E3011", "messages"),
    ("E3002", "revisits"),
    ("E3011", "dashboard"),
]


def test_every_page_fits_a_laptop_and_a_tablet(console, browser):
    number = _a_case(console)
    c = Console(browser, console)
    overflowing = []
    for staff_id, page in PAGES:
        c.login(staff_id, "queue" if page == "case" else page)
        if page == "case":
            c.driver.get(f"{console}/#/case/{number}")
            c.el('main[data-page="case"] #timeline')
        for size, (width, height) in SIZES.items():
            c.driver.set_window_size(width, height)
            c.el(f'main[data-page="{page}"]')
            wide = c.driver.execute_script(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            if wide[0] > wide[1] + 1:
                overflowing.append((page, size, wide))
            c.shot(f"{page}-{size}")
        c.driver.set_window_size(*SIZES["laptop"])
    assert not overflowing, f"pages wider than the screen (scroll width, screen width): {overflowing}"


def _a_case(console):
    """A complaint registered through the console's proxy, once resolution has opened its case."""

    def signed(staff_id, role):
        return {"Authorization": "Bearer " + issue_token(SIGN_ON, staff_id, role, ["sh-xujiahui"])}

    registered = requests.post(
        f"{console}/api/intake/complaints",
        json=desk_complaint(channel_ref="layout-1"),
        headers=signed("D3001", "desk_staff"),
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    number = registered.json()["number"]
    wait_for(
        lambda: (
            requests.get(
                f"{console}/api/resolution/cases/{number}", headers=signed("E3501", "handler"), timeout=10
            ).status_code
            == 200
        ),
        timeout=30,
    )
    return number
