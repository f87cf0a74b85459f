"""R4.1: customers asked by SMS or app message answer through a link with no login;
the token (revisit id and expiry, HMAC-signed) is the proof. A forged or malformed
token is refused, an expired one is gone (the mall calls instead), and the same
answer sent twice is recognised as the one recorded."""

import base64
from datetime import datetime, timedelta, timezone

import pytest

from feedback import rules

SECRET = "test-link-secret"
REVISIT = "SHXJH-20261123-0042-R1"
EXPIRES = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
BEFORE = EXPIRES - timedelta(hours=1)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def token():
    return rules.sign_link(SECRET, REVISIT, EXPIRES)


def test_a_signed_link_reads_back_as_its_revisit(token):
    assert rules.read_link(SECRET, token, BEFORE) == REVISIT


def test_the_token_fits_in_a_url(token):
    body, mac = token.split(".")
    assert "=" not in token and "+" not in token and "/" not in token
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode() == f"{REVISIT}|{int(EXPIRES.timestamp())}"


def test_each_revisit_and_expiry_has_its_own_token(token):
    assert rules.sign_link(SECRET, REVISIT.replace("R1", "R2"), EXPIRES) != token
    assert rules.sign_link(SECRET, REVISIT, EXPIRES + timedelta(seconds=1)) != token
    assert rules.sign_link(SECRET, REVISIT, EXPIRES) == token


def test_an_expiry_in_another_time_zone_is_the_same_moment(token):
    assert rules.sign_link(SECRET, REVISIT, EXPIRES.astimezone(timezone(timedelta(hours=8)))) == token


# --- forged and malformed ------------------------------------------------------------------------


def _refused(token, now=BEFORE, secret=SECRET):
    with pytest.raises(rules.LinkRefused, match="not valid"):
        rules.read_link(secret, token, now)


def test_another_revisit_in_the_body_is_refused(token):
    _, mac = token.split(".")
    other = b64(f"{REVISIT.replace('R1', 'R2')}|{int(EXPIRES.timestamp())}".encode())
    _refused(f"{other}.{mac}")


def test_a_later_expiry_in_the_body_is_refused(token):
    _, mac = token.split(".")
    later = b64(f"{REVISIT}|{int(EXPIRES.timestamp()) + 86400 * 30}".encode())
    _refused(f"{later}.{mac}", now=EXPIRES + timedelta(days=2))


def test_a_changed_mac_is_refused(token):
    body, mac = token.split(".")
    _refused(f"{body}.{mac[:-3]}abc")
    _refused(f"{body}.{b64(bytes(32))}")
    _refused(f"{body}.{mac[:-2]}")  # truncated


def test_a_token_signed_with_another_key_is_refused(token):
    _refused(rules.sign_link("not-the-secret", REVISIT, EXPIRES))
    _refused(token, secret="rotated-secret")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "..",
        "abc.",
        ".abc",
        "a.b.c",
        "not-a-token-at-all",
        "!!!!.????",
        "ééé.ààà",
        b64(b"no separator in the body") + ".abc",
        b64(b"R1|not-a-number") + ".abc",
        b64(b"\xff\xfe\xfd|123") + ".abc",  # not UTF-8
        "%%%.%%%",
    ],
)
def test_garbage_is_refused_not_an_error(garbage):
    _refused(garbage)


def test_a_forged_token_that_has_also_expired_is_refused_not_gone():
    forged = rules.sign_link("not-the-secret", REVISIT, EXPIRES)
    _refused(forged, now=EXPIRES + timedelta(days=1))


@pytest.mark.parametrize("expiry", ["99999999999999999999", "-99999999999999999999"])
def test_a_forged_token_with_an_absurd_expiry_is_refused(expiry):
    _refused(b64(f"{REVISIT}|{expiry}".encode()) + ".abc")


# --- expiry -------------------------------------------------------------------------------------


def test_the_link_is_valid_up_to_its_expiry_second_and_gone_right_after(token):
    assert rules.read_link(SECRET, token, EXPIRES) == REVISIT
    assert rules.read_link(SECRET, token, EXPIRES - timedelta(microseconds=1)) == REVISIT
    with pytest.raises(rules.LinkExpired, match="expired"):
        rules.read_link(SECRET, token, EXPIRES + timedelta(microseconds=1))
    with pytest.raises(rules.LinkExpired):
        rules.read_link(SECRET, token, EXPIRES + timedelta(seconds=1))


def test_an_expired_link_tells_the_customer_the_mall_will_call(token):
    with pytest.raises(rules.LinkExpired) as gone:
        rules.read_link(SECRET, token, EXPIRES + timedelta(days=3))
    assert "call" in str(gone.value)


def test_expired_is_not_refused(token):
    """A genuine but late link is Gone (410), not Forbidden (403): they are different exceptions."""
    assert not issubclass(rules.LinkExpired, rules.LinkRefused)
    assert not issubclass(rules.LinkRefused, rules.LinkExpired)


# --- the same answer sent again -----------------------------------------------------------------

RECORDED = {"score": 2, "reasons": ["slow", "attitude"], "comment": "退款两天才到"}


@pytest.mark.parametrize(
    "request_,same",
    [
        ({"score": 2, "reasons": ["slow", "attitude"], "comment": "退款两天才到"}, True),
        ({"score": 2, "reasons": ["attitude", "slow"], "comment": "退款两天才到"}, True),  # order does not matter
        ({"score": 3, "reasons": ["slow", "attitude"], "comment": "退款两天才到"}, False),
        ({"score": 2, "reasons": ["slow"], "comment": "退款两天才到"}, False),
        ({"score": 2, "reasons": ["slow", "attitude", "other"], "comment": "退款两天才到"}, False),
        ({"score": 2, "reasons": ["slow", "attitude"], "comment": "退款三天才到"}, False),
        ({"score": 2, "reasons": ["slow", "attitude"]}, False),  # comment left out
    ],
)
def test_same_answer_compares_score_reasons_in_any_order_and_comment(request_, same):
    assert rules.same_answer(RECORDED, request_) is same


def test_an_answer_without_reasons_or_comment_matches_one_recorded_without_them():
    recorded = {"score": 5, "reasons": [], "comment": None}
    assert rules.same_answer(recorded, {"score": 5})
    assert not rules.same_answer(recorded, {"score": 5, "comment": "很快"})
    assert not rules.same_answer(recorded, {"score": 5, "reasons": ["other"]})
