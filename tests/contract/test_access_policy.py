"""Every permission the services check is in access.yml, and every permission there is
checked somewhere: a typo in either would refuse everyone or guard nothing."""

import re

from mallcare_common.auth import SERVICES, STAFF_ROLES, load_access
from tests.helpers import POLICY_DIR, ROOT

# caller.require("x", ...), caller.list_mall("x", ...), and the permission a helper is handed
CHECKED = re.compile(r"""(?:require\(\s*|list_mall\(\s*|permission=|_actor\([^()]*,\s*)["']([a-z_]+\.[a-z_]+)["']""")


def checked_permissions():
    found = set()
    for path in (ROOT / "services").rglob("*.py"):
        found |= set(CHECKED.findall(path.read_text(encoding="utf-8")))
    return found


def test_the_services_and_access_yml_name_the_same_permissions():
    granted = set(load_access(POLICY_DIR / "access.yml")["permissions"])
    checked = checked_permissions()
    assert checked - granted == set(), "checked in code but granted to nobody"
    assert granted - checked == set(), "granted in access.yml but never checked"


def test_every_staff_role_can_do_something_and_only_the_admin_reloads_policy():
    permissions = load_access(POLICY_DIR / "access.yml")["permissions"]
    for role in STAFF_ROLES:
        assert any(role in roles for roles in permissions.values()), role
    assert permissions["policy.reload"] == ["admin"]
    assert "admin" not in permissions["customer.contact"]  # a system administrator reads no customer data


def test_the_services_that_get_a_key_are_the_ones_access_yml_gives_scopes():
    """`mallcare secrets` makes a key for each service of auth.SERVICES; a service access.yml
    lists would not start without one, and a key for one it does not list would be a credential
    nobody needs (issue 23)."""
    identities = load_access(POLICY_DIR / "access.yml")["identities"]
    listed = {name.partition(":")[2] for name in identities if name.startswith("service:")}
    assert listed == set(SERVICES)
