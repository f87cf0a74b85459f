"""Tokens, channel keys, rate limits and the access policy, without a broker."""

from datetime import datetime, timedelta, timezone

import jwt
import pytest
import yaml
from marshmallow import ValidationError

from mallcare_common import auth
from mallcare_common.policy import InvalidPolicy
from tests.conftest import POLICY_DIR

SECRET = "s" * 32
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def principal(role="handler", malls=("sh-xujiahui",), user="E3501"):
    access = auth.load_access(POLICY_DIR / "access.yml")
    return auth.Principal(user, role, tuple(malls), permissions=auth.permissions_of(access, role))


def test_a_token_carries_user_role_and_malls():
    token = auth.issue_token(SECRET, "E3501", "handler", ["sh-xujiahui"])
    assert auth.read_token(SECRET, token) == ("E3501", "handler", ("sh-xujiahui",))


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "invalid token"),  # forged signature
        (lambda t: auth.issue_token("x" * 32, "E3501", "handler", ["sh-xujiahui"]), "invalid token"),  # other secret
        (
            lambda t: auth.issue_token(SECRET, "E3501", "handler", ["sh-xujiahui"], now=NOW - timedelta(days=2)),
            "token expired",
        ),
        (
            lambda t: jwt.encode(
                {
                    "iss": "mallcare",
                    "sub": "E3501",
                    "role": "handler",
                    "malls": ["sh-xujiahui"],
                    "exp": int((datetime.now(timezone.utc) + timedelta(hours=1)).timestamp()),
                },
                None,
                algorithm="none",
            ),
            "invalid token",
        ),  # unsigned
        (lambda t: auth.issue_token(SECRET, "E3501", "chairman", ["sh-xujiahui"]), "role or malls missing"),
        (lambda t: auth.issue_token(SECRET, "E3501", "handler", []), "role or malls missing"),
        (lambda t: "not-a-token", "invalid token"),
    ],
)
def test_forged_expired_and_incomplete_tokens_are_refused(tamper, message):
    token = tamper(auth.issue_token(SECRET, "E3501", "handler", ["sh-xujiahui"]))
    with pytest.raises(auth.Unauthenticated, match=message):
        auth.read_token(SECRET, token)


def test_a_token_just_past_its_expiry_is_accepted_within_the_clock_skew_leeway():
    token = auth.issue_token(
        SECRET,
        "E3501",
        "handler",
        ["sh-xujiahui"],
        lifetime=timedelta(seconds=1),
        now=datetime.now(timezone.utc) - timedelta(seconds=10),
    )
    assert auth.read_token(SECRET, token)[0] == "E3501"


def test_permissions_follow_the_role_and_the_malls():
    handler = principal()
    handler.require("case.act", "sh-xujiahui")
    with pytest.raises(auth.Forbidden, match="may not case.act at bj-chaoyang"):
        handler.require("case.act", "bj-chaoyang")
    with pytest.raises(auth.Forbidden, match=r"E3501 \(handler\) may not report.read"):
        handler.require("report.read")
    analyst = principal("analyst", ["*"], "A7001")
    analyst.require("report.read", "gz-tianhe")
    with pytest.raises(auth.Forbidden):
        analyst.require("complaint.read", "gz-tianhe")  # aggregates, not complaints


def test_list_queries_are_kept_to_the_callers_malls():
    assert principal().list_mall("case.read") == "sh-xujiahui"
    assert principal("admin", ["*"]).list_mall("case.read") is None  # the whole chain
    assert principal("admin", ["*"]).list_mall("case.read", "gz-tianhe") == "gz-tianhe"
    with pytest.raises(auth.Forbidden):
        principal().list_mall("case.read", "gz-tianhe")
    with pytest.raises(ValidationError) as error:
        principal("legal", ["sh-xujiahui", "gz-tianhe"]).list_mall("case.read")
    assert "gz-tianhe" in error.value.messages["mall_id"][0]


def test_the_rate_limit_is_a_bucket_per_key_with_a_retry_after():
    clock = {"t": 0.0}
    limiter = auth.RateLimiter(monotonic=lambda: clock["t"])
    for _ in range(3):
        limiter.take("wechat-sh", 3)
    with pytest.raises(auth.TooManyRequests) as refused:
        limiter.take("wechat-sh", 3)
    assert refused.value.retry_after == 20  # one request comes back every 60/3 s
    limiter.take("app-bj", 3)  # other keys have their own bucket
    clock["t"] = 20.0
    limiter.take("wechat-sh", 3)
    with pytest.raises(auth.TooManyRequests):
        limiter.take("wechat-sh", 3)


def test_the_access_policy_names_only_known_roles(tmp_path):
    policy = yaml.safe_load((POLICY_DIR / "access.yml").read_text(encoding="utf-8"))
    policy["permissions"]["case.read"].append("chairman")
    (tmp_path / "access.yml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    with pytest.raises(InvalidPolicy) as error:
        auth.load_access(tmp_path / "access.yml")
    assert "access.yml is invalid: permissions.case.read.value" in str(error.value)


def test_secrets_come_from_config_the_environment_or_the_secrets_file_and_must_be_long(tmp_path, monkeypatch):
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(yaml.safe_dump({"TOKEN_SECRET": "f" * 32, "WECHAT_TOKEN_SH": "e" * 32}), encoding="utf-8")
    # a secret a policy names has no line in config.yml: MALLCARE_<name> before the file
    monkeypatch.setenv("MALLCARE_WECHAT_TOKEN_SH", "d" * 32)
    assert auth.read_secret({"MALLCARE": {"SECRETS_FILE": str(secrets_file)}}, "WECHAT_TOKEN_SH") == "d" * 32
    assert auth.read_secret({"MALLCARE": {"TOKEN_SECRET": "c" * 32}}, "TOKEN_SECRET") == "c" * 32
    assert (
        auth.read_secret({"MALLCARE": {"TOKEN_SECRET": "", "SECRETS_FILE": str(secrets_file)}}, "TOKEN_SECRET")
        == "f" * 32
    )
    with pytest.raises(RuntimeError, match="not set"):
        auth.read_secret({"MALLCARE": {}}, "ANSWER_LINK_SECRET")
    with pytest.raises(RuntimeError, match="shorter than 32 bytes"):
        auth.read_secret({"MALLCARE": {"TOKEN_SECRET": "dev-only-not-secret"}}, "TOKEN_SECRET")


def test_the_keys_file_keeps_only_digests_and_refuses_a_bad_entry(tmp_path):
    secrets_file = tmp_path / "secrets.yml"
    entry = {"id": "wechat-sh", "mall_id": "sh-xujiahui", "channel": "wechat", "sha256": auth.key_digest("k")}
    secrets_file.write_text(yaml.safe_dump({"API_KEYS": [entry]}), encoding="utf-8")
    keys = auth.read_api_keys({"MALLCARE": {"SECRETS_FILE": str(secrets_file)}})
    assert keys["wechat-sh"]["per_minute"] == 120 and "k" not in keys["wechat-sh"].values()
    secrets_file.write_text(yaml.safe_dump({"API_KEYS": [{**entry, "sha256": "plain-text-key"}]}), encoding="utf-8")
    with pytest.raises(RuntimeError, match="sha256"):
        auth.read_api_keys({"MALLCARE": {"SECRETS_FILE": str(secrets_file)}})


def test_the_command_issues_tokens_keys_and_secrets_files(capsys, monkeypatch):
    monkeypatch.setenv("MALLCARE_TOKEN_SECRET", SECRET)
    auth.main(["token", "--user", "E3011", "--role", "supervisor", "--mall", "sh-xujiahui", "--hours", "1"])
    assert auth.read_token(SECRET, capsys.readouterr().out.strip()) == ("E3011", "supervisor", ("sh-xujiahui",))
    auth.main(["api-key", "--id", "wechat-sh", "--mall", "sh-xujiahui", "--channel", "wechat"])
    shown, listed = capsys.readouterr().out.split("\n", 1)
    key = shown.rsplit(" ", 1)[1]
    assert yaml.safe_load(listed)["API_KEYS"][0]["sha256"] == auth.key_digest(key.partition(".")[2])
    auth.main(["secrets"])
    fresh = yaml.safe_load(capsys.readouterr().out)
    assert len(fresh["TOKEN_SECRET"]) == 64 and fresh["API_KEYS"] == []


def test_buckets_left_alone_a_minute_are_forgotten_so_endless_keys_keep_no_memory():
    """R7.2, seed 000 (顯眼位置張貼投訴渠道): the customer's pages are limited per client address,
    keys without end: a bucket idle for a minute is full again, and is dropped."""
    clock = {"t": 0.0}
    limiter = auth.RateLimiter(monotonic=lambda: clock["t"])
    for n in range(1500):
        limiter.take(f"lookups:10.0.{n // 256}.{n % 256}", 10)
    assert len(limiter.buckets) == 1500  # all within the minute: each still counts
    clock["t"] = 61.0
    for n in range(600):
        limiter.take(f"lookups:10.9.{n // 256}.{n % 256}", 10)
    assert len(limiter.buckets) < 1500 and "lookups:10.0.0.1" not in limiter.buckets
    limiter.take("submissions:10.9.0.0", 1, "an address's submissions")
    with pytest.raises(auth.TooManyRequests, match="^an address's submissions is over 1 requests a minute$"):
        limiter.take("submissions:10.9.0.0", 1, "an address's submissions")  # the address is not in the log
