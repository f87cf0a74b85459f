"""R2.2, R2.5, R3.4, R3.5, R3.6, R3.9, R5.3, R7.4: the shipped policy files agree with each
other: every handler triage can assign a case to is known to resolution in the same
department (so they can act on it), every mall has a duty supervisor as its fallback,
every mall has someone for each level a case can be escalated to and for each task
resolution hands out (review meeting, incident verification and handling, rectification
owners), analytics proposes improvements over triage's systemic window, and triage and
resolution read the same law."""

import pytest

from mallcare_common.policy import load_policy_dir
from resolution.policy import load_policy as load_resolution
from tests.helpers import POLICY_DIR
from triage.policy import load_policy as load_triage


@pytest.fixture(scope="module")
def triage():
    return load_policy_dir(POLICY_DIR, "triage.yml", load_triage)


@pytest.fixture(scope="module")
def resolution():
    return load_policy_dir(POLICY_DIR, "resolution.yml", load_resolution)


def test_every_handler_triage_assigns_can_act_in_resolution(triage, resolution):
    """Also in the same department, so a review meeting can name them (R2.4)."""
    for mall_id in triage.malls.malls:
        for handler in triage.roster(mall_id):
            staff = resolution.staff(handler.id)
            assert staff is not None, f"{handler.id} ({mall_id}) is not in resolution's staff directory"
            assert mall_id in staff.malls
            assert staff.department == handler.department, f"{handler.id} is in another department in resolution"
            if handler.department == "operations_director":
                assert staff.role == "operations_director"


@pytest.mark.parametrize("mall_id", ["sh-xujiahui", "bj-chaoyang", "gz-tianhe"])
def test_every_mall_has_a_duty_supervisor_as_fallback(triage, resolution, mall_id):
    """R2.5: what no department can take goes to a person who may decide on it."""
    fallback = triage.fallback(mall_id)
    assert fallback is not None and resolution.staff(fallback.id).role == "supervisor"


@pytest.mark.parametrize("mall_id", ["sh-xujiahui", "bj-chaoyang", "gz-tianhe"])
def test_every_mall_has_someone_for_each_level_and_task(resolution, mall_id):
    permissions = resolution.rules["permissions"]
    roles = {
        *resolution.rules["escalation"],
        permissions["review_meeting"][0],
        permissions["verify_incident"][0],
        permissions["handle_incident"][0],
        *(r["owner_role"] for r in resolution.rules["rectification"].values()),
    }
    missing = sorted(role for role in roles if resolution.first_staff(mall_id, role) is None)
    assert not missing, f"{mall_id} has nobody as {missing}"


def test_analytics_proposes_improvements_in_triages_systemic_window(triage):
    """R2.2, R5.3: one proposal per pattern and window, the window triage counts recurrences in."""
    from analytics.policy import load_policy as load_analytics

    analytics = load_policy_dir(POLICY_DIR, "analytics.yml", load_analytics)
    days = analytics.rules["improvement"]["proposal_window_days"]
    for mall_id in triage.malls.malls:
        assert triage.section(mall_id, "urgency")["systemic"]["window_days"] == days, mall_id


def test_what_triage_flags_as_beyond_the_law_is_what_resolution_grants(triage, resolution):
    """R7.4, issue 16 finding 9: triage's risk reason and resolution's compliance check read
    the same law: the same multiple and minimum on each legal basis."""
    bases = triage.rules["risk"]["beyond_statutory"]["legal_bases"]
    statutory = resolution.rules["statutory"]
    assert set(bases) == set(statutory)
    for name, basis in bases.items():
        assert (basis["multiple"], basis["minimum"]) == (statutory[name]["multiple"], statutory[name]["minimum"]), name
