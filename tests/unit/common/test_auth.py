"""Tokens, signing keys, identities, channel keys, rate limits and the access policy, without a broker."""

import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import yaml
from marshmallow import ValidationError

from mallcare_common import auth
from mallcare_common.policy import InvalidPolicy
from tests.conftest import POLICY_DIR

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
SIGN_ON_KEY = auth.new_signing_key("sign-on", "unit")
SIGN_ON = auth.SigningKey(SIGN_ON_KEY)
NOTIFY_KEY = auth.new_signing_key("service:notify", "unit")
TRIAGE_KEY = auth.new_signing_key("service:triage", "unit")  # triage has no scopes in access.yml


def principal(role="handler", malls=("sh-xujiahui",), user="E3501"):
    access = auth.load_access(POLICY_DIR / "access.yml")
    return auth.Principal(user, role, tuple(malls), permissions=auth.permissions_of(access, role))


def key_set(tmp_path, *private_keys, clock=None):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [auth.SigningKey(k).public() for k in private_keys]}), encoding="utf-8")
    return auth.KeySet(str(path), max_age=60, **({"monotonic": clock} if clock else {})), path


def access_for(tmp_path, monkeypatch, service="notify", api_keys=(), **secrets):
    """An Access provider as `service` starts it: access.yml, the JWKS, its own key."""
    _, jwks = key_set(tmp_path, SIGN_ON_KEY, NOTIFY_KEY, TRIAGE_KEY)
    secrets_file = tmp_path / "secrets.yml"
    content = {"JWKS": str(jwks), "SERVICE_KEY_NOTIFY": NOTIFY_KEY, "API_KEYS": list(api_keys), **secrets}
    secrets_file.write_text(yaml.safe_dump(content), encoding="utf-8")
    monkeypatch.setenv("MALLCARE_SECRETS_FILE", str(secrets_file))
    access = auth.Access()
    config = {"MALLCARE": {"POLICY_DIR": str(POLICY_DIR)}}
    access.container = type("Container", (), {"config": config, "service_name": service})()
    access.setup()
    return access


def test_a_staff_token_carries_user_role_and_malls_and_names_the_sign_ons_key(tmp_path):
    keys, _ = key_set(tmp_path, SIGN_ON_KEY)
    token = auth.issue_token(SIGN_ON, "E3501", "handler", ["sh-xujiahui"])
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "sign-on@unit", "typ": "JWT"}
    identity, claims = auth.verify_token(keys, token)
    assert identity == "sign-on"
    assert auth.staff_claims(claims) == ("E3501", "handler", ("sh-xujiahui",))


def _hs256_with(secret, kid="sign-on@unit"):
    claims = {"iss": "mallcare", "sub": "A0001", "role": "admin", "malls": ["*"], "exp": 4102444800}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "invalid token"),  # forged signature
        # a key of one's own, named as the sign-on's
        (
            lambda t: auth.issue_token(
                auth.SigningKey(auth.new_signing_key("sign-on", "unit")), "E3501", "handler", ["sh-xujiahui"]
            ),
            "invalid token",
        ),
        (lambda t: _hs256_with("a-subscribers-api-key-secret-of-32-bytes"), "invalid token"),  # HS256: never
        (lambda t: _hs256_with("x" * 32, kid="tests"), "not signed by a key"),
        (
            lambda t: auth.issue_token(SIGN_ON, "E3501", "handler", ["sh-xujiahui"], now=NOW - timedelta(days=2)),
            "token expired",
        ),
        (
            lambda t: jwt.encode(
                {"iss": "mallcare", "sub": "E3501", "role": "handler", "malls": ["sh-xujiahui"], "exp": 4102444800},
                None,
                algorithm="none",
                headers={"kid": "sign-on@unit"},
            ),
            "invalid token",
        ),  # unsigned
        (lambda t: auth.issue_token(SIGN_ON, "E3501", "chairman", ["sh-xujiahui"]), "role or malls missing"),
        (lambda t: auth.issue_token(SIGN_ON, "E3501", "service", ["*"]), "role or malls missing"),
        (lambda t: auth.issue_token(SIGN_ON, "E3501", "handler", []), "role or malls missing"),
        (lambda t: "not-a-token", "invalid token"),
    ],
)
def test_forged_expired_and_incomplete_tokens_are_refused(tmp_path, make, message):
    keys, _ = key_set(tmp_path, SIGN_ON_KEY)
    token = make(auth.issue_token(SIGN_ON, "E3501", "handler", ["sh-xujiahui"]))
    with pytest.raises(auth.Unauthenticated, match=message):
        auth.staff_claims(auth.verify_token(keys, token)[1])


def test_a_token_just_past_its_expiry_is_accepted_within_the_clock_skew_leeway(tmp_path):
    keys, _ = key_set(tmp_path, SIGN_ON_KEY)
    token = auth.issue_token(
        SIGN_ON,
        "E3501",
        "handler",
        ["sh-xujiahui"],
        lifetime=timedelta(seconds=1),
        now=datetime.now(timezone.utc) - timedelta(seconds=10),
    )
    assert auth.verify_token(keys, token)[1]["sub"] == "E3501"


def test_a_rotation_is_seen_as_soon_as_the_jwks_file_changes(tmp_path):
    clock = {"t": 0.0}
    keys, path = key_set(tmp_path, SIGN_ON_KEY, clock=lambda: clock["t"])
    old = auth.issue_token(SIGN_ON, "E3501", "handler", ["sh-xujiahui"])
    assert auth.verify_token(keys, old)[0] == "sign-on"
    fresh_key = auth.new_signing_key("sign-on", "unit-2")
    fresh = auth.issue_token(auth.SigningKey(fresh_key), "E3501", "handler", ["sh-xujiahui"])
    # step 1: the new key's public half joins the JWKS (keys add: a new file in its place)
    auth.write_jwks(str(path), {"keys": [auth.SigningKey(k).public() for k in (SIGN_ON_KEY, fresh_key)]})
    clock["t"] += auth.KeySet.STAT_SECONDS  # the file's status is looked at once a second at most
    assert auth.verify_token(keys, fresh)[0] == auth.verify_token(keys, old)[0] == "sign-on"  # both, during it
    # step 3: the old key leaves the JWKS; its tokens are refused as soon as the change is seen
    auth.write_jwks(str(path), {"keys": [auth.SigningKey(fresh_key).public()]})
    clock["t"] += auth.KeySet.STAT_SECONDS
    with pytest.raises(auth.Unauthenticated, match="not signed by a key"):
        auth.verify_token(keys, old)
    assert auth.verify_token(keys, fresh)[0] == "sign-on"
    # a file gone for a moment, or one that cannot be read, keeps the last keys read
    path.unlink()
    clock["t"] += auth.KeySet.STAT_SECONDS
    assert auth.verify_token(keys, fresh)[0] == "sign-on"
    path.write_text("{not json")
    clock["t"] += auth.KeySet.STAT_SECONDS
    assert auth.verify_token(keys, fresh)[0] == "sign-on"


def test_tokens_naming_unknown_keys_cost_a_status_look_not_a_read(tmp_path, monkeypatch):
    clock = {"t": 0.0}
    keys, _ = key_set(tmp_path, SIGN_ON_KEY, clock=lambda: clock["t"])
    keys.current()
    reads = []
    monkeypatch.setattr(keys, "_read", lambda: reads.append(1) or b"{}")
    stranger = auth.SigningKey(auth.new_signing_key("sign-on", "not-ours"))
    for n in range(100):
        clock["t"] = n * 0.5
        with pytest.raises(auth.Unauthenticated, match="not signed by a key"):
            auth.verify_token(keys, auth.issue_token(stranger, "A0001", "admin", ["*"]))
    assert reads == []  # the file did not change: it is not read again


def test_a_jwks_with_a_private_key_in_it_is_not_taken(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [json.loads(SIGN_ON_KEY)]}), encoding="utf-8")
    keys = auth.KeySet(str(path))
    with pytest.raises(auth.Unauthenticated, match="not signed by a key"):
        auth.verify_token(keys, auth.issue_token(SIGN_ON, "E3501", "handler", ["sh-xujiahui"]))


def test_a_services_key_signs_only_its_own_calls_with_its_scopes_never_a_staff_role(tmp_path, monkeypatch):
    access = access_for(tmp_path, monkeypatch)
    notify_key = auth.SigningKey(NOTIFY_KEY)
    # what notify sends: its own identity, with the scopes access.yml lists
    caller = access.from_token(auth.issue_token(notify_key, "service:notify", "service", ["*"]))
    assert (caller.user, caller.kind, caller.chain_wide) == ("service:notify", "service", True)
    assert caller.permissions == {
        "case.read", "complaint.read", "customer.notify", "staff.notify", "revisit.read", "survey.read"
    }  # fmt: skip
    # a leaked service key used to mint a staff token: the claims do not make it staff
    with pytest.raises(auth.Unauthenticated, match="service:notify's key signed a token for A0001"):
        access.from_token(auth.issue_token(notify_key, "A0001", "admin", ["*"]))
    minted = access.from_token(auth.issue_token(notify_key, "service:notify", "admin", ["*"]))
    assert minted.kind == "service" and not minted.may("case.act") and not minted.may("audit.read")
    # nor another service's identity, and a service access.yml lists no scopes for signs nothing
    with pytest.raises(auth.Unauthenticated):
        access.from_token(auth.issue_token(notify_key, "service:intake", "service", ["*"]))
    with pytest.raises(auth.Unauthenticated, match="service:triage signs no tokens here"):
        access.from_token(auth.issue_token(auth.SigningKey(TRIAGE_KEY), "service:triage", "service", ["*"]))
    # the service's own calls carry its key
    assert access.from_token(access_gate(access).service_token()).user == "service:notify"


def access_gate(access):
    return auth.Gate(access, type("Worker", (), {"data": {}})(), None)


def test_a_service_access_yml_gives_no_scopes_has_no_key_to_call_with(tmp_path, monkeypatch):
    access = access_for(tmp_path, monkeypatch, service="triage")
    with pytest.raises(auth.MissingSecret, match="no scopes in access.yml"):
        access_gate(access).service_token()


def test_a_service_started_with_another_services_key_does_not_start(tmp_path, monkeypatch):
    with pytest.raises(auth.MissingSecret, match="is service:notify@unit's key"):
        access_for(tmp_path, monkeypatch, service="intake", SERVICE_KEY_INTAKE=NOTIFY_KEY)


def test_a_subscribers_key_reads_what_its_scopes_say_at_its_malls_only(tmp_path, monkeypatch):
    entry = {"id": "loyalty", "identity": "subscriber:loyalty", "sha256": auth.key_digest("k")}
    access = access_for(tmp_path, monkeypatch, api_keys=[entry])
    loyalty = access.from_api_key("loyalty.k")
    assert (loyalty.user, loyalty.kind, loyalty.malls) == (
        "subscriber:loyalty",
        "subscriber",
        ("sh-xujiahui", "bj-chaoyang"),
    )
    loyalty.require("case.read", "bj-chaoyang")
    with pytest.raises(auth.Forbidden):
        loyalty.require("case.read", "gz-tianhe")
    for staff_only in ("complaint.read", "customer.contact", "case.act", "audit.read", "report.read"):
        with pytest.raises(auth.Forbidden):
            loyalty.require(staff_only, "sh-xujiahui")
    unlisted = {"id": "bi-team", "identity": "subscriber:bi-team", "sha256": auth.key_digest("k")}
    with pytest.raises(RuntimeError, match="identities access.yml does not list: subscriber:bi-team"):
        access_for(tmp_path, monkeypatch, api_keys=[unlisted])


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


def test_an_identitys_scopes_must_be_permissions_and_service_is_no_role(tmp_path):
    policy = yaml.safe_load((POLICY_DIR / "access.yml").read_text(encoding="utf-8"))
    for change, message in (
        (lambda p: p["identities"]["subscriber:loyalty"]["scopes"].append("case.everything"), "case.everything"),
        (lambda p: p["permissions"]["case.read"].append("service"), "permissions.case.read.value"),
        (lambda p: p["identities"].update({"loyalty": {"scopes": []}}), "identities"),
    ):
        changed = yaml.safe_load(yaml.safe_dump(policy))
        change(changed)
        (tmp_path / "access.yml").write_text(yaml.safe_dump(changed), encoding="utf-8")
        with pytest.raises(InvalidPolicy, match=message):
            auth.load_access(tmp_path / "access.yml")


def test_secrets_come_from_config_the_environment_or_the_secrets_file_and_must_be_long(tmp_path, monkeypatch):
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(
        yaml.safe_dump({"ANSWER_LINK_SECRET": "f" * 32, "WECHAT_TOKEN_SH": "e" * 32}), encoding="utf-8"
    )
    # a secret a policy names has no line in config.yml: MALLCARE_<name> before the file
    monkeypatch.setenv("MALLCARE_WECHAT_TOKEN_SH", "d" * 32)
    assert auth.read_secret({"MALLCARE": {"SECRETS_FILE": str(secrets_file)}}, "WECHAT_TOKEN_SH") == "d" * 32
    assert auth.read_secret({"MALLCARE": {"ANSWER_LINK_SECRET": "c" * 32}}, "ANSWER_LINK_SECRET") == "c" * 32
    assert (
        auth.read_secret(
            {"MALLCARE": {"ANSWER_LINK_SECRET": "", "SECRETS_FILE": str(secrets_file)}}, "ANSWER_LINK_SECRET"
        )
        == "f" * 32
    )
    # a Compose or Kubernetes secret: a file of its own, named by MALLCARE_<name>_FILE
    (tmp_path / "signing_key").write_text(SIGN_ON_KEY + "\n", encoding="utf-8")
    monkeypatch.setenv("MALLCARE_SIGNING_KEY_FILE", str(tmp_path / "signing_key"))
    assert auth.read_secret({"MALLCARE": {}}, "SIGNING_KEY") == SIGN_ON_KEY
    with pytest.raises(RuntimeError, match="not set"):
        auth.read_secret({"MALLCARE": {}}, "CUSTOMER_REF_SECRET")
    with pytest.raises(RuntimeError, match="shorter than 32 bytes"):
        auth.read_secret({"MALLCARE": {"ANSWER_LINK_SECRET": "dev-only-not-secret"}}, "ANSWER_LINK_SECRET")


def test_the_keys_file_keeps_only_digests_and_refuses_a_bad_entry(tmp_path):
    secrets_file = tmp_path / "secrets.yml"
    entry = {"id": "wechat-sh", "mall_id": "sh-xujiahui", "channel": "wechat", "sha256": auth.key_digest("k")}
    secrets_file.write_text(yaml.safe_dump({"API_KEYS": [entry]}), encoding="utf-8")
    keys = auth.read_api_keys({"MALLCARE": {"SECRETS_FILE": str(secrets_file)}})
    assert keys["wechat-sh"]["per_minute"] == 120 and "k" not in keys["wechat-sh"].values()
    secrets_file.write_text(yaml.safe_dump({"API_KEYS": [{**entry, "sha256": "plain-text-key"}]}), encoding="utf-8")
    with pytest.raises(RuntimeError, match="sha256"):
        auth.read_api_keys({"MALLCARE": {"SECRETS_FILE": str(secrets_file)}})


def test_a_merchants_key_signs_in_that_one_merchant_and_no_token_can(tmp_path, monkeypatch):
    """R7.5, seed 002: 谁管理、谁举证 (a merchant answers for its own cases, signed in as itself)."""
    entry = {"id": "t233-sh", "mall_id": "sh-xujiahui", "merchant_id": "T-233", "sha256": auth.key_digest("k")}
    access = access_for(tmp_path, monkeypatch, api_keys=[entry])
    merchant = access.from_api_key("t233-sh.k")
    assert (merchant.role, merchant.kind, merchant.malls, merchant.merchant) == (
        "merchant",
        "merchant",
        ("sh-xujiahui",),
        "T-233",
    )
    assert merchant.permissions == {"merchant.case"}  # nothing of the staff's
    with pytest.raises(auth.Forbidden):
        merchant.require("case.read", "sh-xujiahui")
    with pytest.raises(auth.Unauthenticated, match="role or malls missing"):
        access.from_token(auth.issue_token(SIGN_ON, "T-233", "merchant", ["sh-xujiahui"]))
    both = {**entry, "channel": "wechat"}
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(yaml.safe_dump({"API_KEYS": [both]}), encoding="utf-8")
    with pytest.raises(RuntimeError, match="a channel's \\(channel\\), a merchant's"):
        auth.read_api_keys({"MALLCARE": {"SECRETS_FILE": str(secrets_file)}})


def test_the_command_issues_tokens_keys_and_secrets_files(tmp_path, capsys, monkeypatch):
    jwks = tmp_path / "jwks.json"
    auth.main(["secrets", "--jwks", str(jwks)])
    fresh = yaml.safe_load(capsys.readouterr().out)
    assert len(fresh["CUSTOMER_REF_SECRET"]) == 64 and fresh["API_KEYS"] == [] and fresh["JWKS"] == str(jwks)
    published = json.loads(jwks.read_text())["keys"]
    assert sorted(k["kid"].partition("@")[0] for k in published) == sorted(
        ["sign-on"] + [f"service:{name}" for name in auth.SERVICES]
    )
    assert not any("d" in k for k in published)  # public halves only
    monkeypatch.setenv("MALLCARE_SIGNING_KEY", fresh["SIGNING_KEY"])
    auth.main(["token", "--user", "E3011", "--role", "supervisor", "--mall", "sh-xujiahui", "--hours", "1"])
    identity, claims = auth.verify_token(auth.KeySet(str(jwks)), capsys.readouterr().out.strip())
    assert (identity, auth.staff_claims(claims)) == ("sign-on", ("E3011", "supervisor", ("sh-xujiahui",)))
    # a rotation by hand: a new key, its public half in the JWKS, the old one out
    auth.main(["keys", "new", "sign-on"])
    (tmp_path / "new.json").write_text(capsys.readouterr().out)
    auth.main(["keys", "add", str(jwks), str(tmp_path / "new.json")])
    new_kid = auth.SigningKey((tmp_path / "new.json").read_text()).kid
    assert new_kid in capsys.readouterr().out and len(json.loads(jwks.read_text())["keys"]) == len(auth.SERVICES) + 2
    old_kid = auth.SigningKey(fresh["SIGNING_KEY"]).kid
    auth.main(["keys", "remove", str(jwks), old_kid])
    kids = [k["kid"] for k in json.loads(jwks.read_text())["keys"]]
    assert old_kid not in kids and new_kid in kids
    # a sign-on of the chain's own gives only its public key: that is added as it is
    theirs = {**auth.SigningKey(auth.new_signing_key("sign-on", "idp-1")).public(), "use": "sig"}
    (tmp_path / "theirs.json").write_text(json.dumps(theirs))
    auth.main(["keys", "add", str(jwks), str(tmp_path / "theirs.json")])
    assert theirs in json.loads(jwks.read_text())["keys"]
    (tmp_path / "rsa.json").write_text(json.dumps({"kty": "RSA", "kid": "sign-on@rsa", "n": "x", "e": "AQAB"}))
    for bad in (["keys", "new", "chairman"], ["keys", "add", str(jwks), str(tmp_path / "rsa.json")]):
        with pytest.raises(SystemExit):
            auth.main(bad)
    capsys.readouterr()
    # the directory form, for Compose's and Kubernetes' secrets: a file each, no sign-on key
    auth.main(["secrets", "--dir", str(tmp_path / "secrets")])
    assert not (tmp_path / "secrets" / "signing_key").exists()  # the sign-on's is the sign-on's
    assert (tmp_path / "secrets" / "service_key_notify").stat().st_mode & 0o077 == 0
    assert auth.SigningKey((tmp_path / "secrets" / "service_key_notify").read_text()).identity == "service:notify"
    public = json.loads((tmp_path / "secrets" / "public" / "jwks.json").read_text())["keys"]
    assert sorted(k["kid"].partition("@")[0] for k in public) == sorted(f"service:{n}" for n in auth.SERVICES)
    auth.main(["secrets", "--dir", str(tmp_path / "trial"), "--with-sign-on-key"])
    assert auth.SigningKey((tmp_path / "trial" / "signing_key").read_text()).identity == "sign-on"
    capsys.readouterr()
    auth.main(["api-key", "--id", "wechat-sh", "--mall", "sh-xujiahui", "--channel", "wechat"])
    shown, listed = capsys.readouterr().out.split("\n", 1)
    key = shown.rsplit(" ", 1)[1]
    assert yaml.safe_load(listed)["API_KEYS"][0]["sha256"] == auth.key_digest(key.partition(".")[2])
    auth.main(["api-key", "--id", "loyalty", "--subscriber", "subscriber:loyalty"])
    entry = yaml.safe_load(capsys.readouterr().out.split("\n", 1)[1])["API_KEYS"][0]
    assert entry["identity"] == "subscriber:loyalty" and "mall_id" not in entry
    with pytest.raises(SystemExit):
        auth.main(["api-key", "--id", "loyalty", "--subscriber", "subscriber:loyalty", "--mall", "sh-xujiahui"])


def test_a_secrets_file_of_the_release_before_signing_keys_is_completed_not_replaced(tmp_path, capsys):
    """scripts/run.sh on a checkout that ran before: the answer links sent and the customer
    references keep working, the channels' keys and the mailbox passwords stay."""
    before = {
        "TOKEN_SECRET": "t" * 64,
        "CUSTOMER_REF_SECRET": "c" * 64,
        "ANSWER_LINK_SECRET": "a" * 64,
        "WECHAT_TOKEN_SH_XUJIAHUI": "w" * 32,
        "API_KEYS": [{"id": "wechat-sh", "mall_id": "sh-xujiahui", "channel": "wechat", "sha256": "0" * 64}],
    }
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump(before))
    jwks = tmp_path / "jwks.json"
    auth.main(["secrets", "--jwks", str(jwks), "--complete", str(path)])
    after = yaml.safe_load(path.read_text())
    assert {
        k: after[k] for k in ("CUSTOMER_REF_SECRET", "ANSWER_LINK_SECRET", "WECHAT_TOKEN_SH_XUJIAHUI", "API_KEYS")
    } == {k: before[k] for k in ("CUSTOMER_REF_SECRET", "ANSWER_LINK_SECRET", "WECHAT_TOKEN_SH_XUJIAHUI", "API_KEYS")}
    assert "TOKEN_SECRET" not in after and after["JWKS"] == str(jwks)
    assert path.stat().st_mode & 0o077 == 0  # it holds private keys now
    assert yaml.safe_load((tmp_path / "secrets.yml.bak").read_text()) == before
    keys = auth.KeySet(str(jwks))
    token = auth.issue_token(auth.SigningKey(after["SIGNING_KEY"]), "E3501", "handler", ["sh-xujiahui"])
    assert auth.verify_token(keys, token)[0] == "sign-on"
    # completing again changes no key (run.sh does it whenever the JWKS is gone)
    jwks.unlink()
    auth.main(["secrets", "--jwks", str(jwks), "--complete", str(path)])
    assert yaml.safe_load(path.read_text())["SIGNING_KEY"] == after["SIGNING_KEY"]
    assert auth.verify_token(auth.KeySet(str(jwks)), token)[0] == "sign-on"


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


def test_the_jwks_can_come_from_the_sign_ons_address_read_again_when_old_or_for_an_unknown_key():
    """MALLCARE_JWKS may be the https address the sign-on publishes its keys at (the console's
    /.well-known/jwks.json, or the chain's identity provider's); plain http only on this machine."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    published = {"document": json.dumps({"keys": [SIGN_ON.public()]}).encode(), "reads": 0}

    class Publish(BaseHTTPRequestHandler):
        def do_GET(self):
            published["reads"] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(published["document"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Publish)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    clock = {"t": 0.0}
    try:
        url = f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
        keys = auth.KeySet(url, max_age=300, monotonic=lambda: clock["t"])
        token = auth.issue_token(SIGN_ON, "E3501", "handler", ["sh-xujiahui"])
        assert auth.verify_token(keys, token)[0] == "sign-on" and published["reads"] == 1
        stranger = auth.issue_token(auth.SigningKey(auth.new_signing_key("sign-on", "x")), "A0001", "admin", ["*"])
        for n in range(50):  # unknown keys: one read every REFRESH_SECONDS at most
            clock["t"] = n * 0.1
            with pytest.raises(auth.Unauthenticated):
                auth.verify_token(keys, stranger)
        assert published["reads"] == 1
        clock["t"] = auth.KeySet.REFRESH_SECONDS
        with pytest.raises(auth.Unauthenticated):
            auth.verify_token(keys, stranger)
        assert published["reads"] == 2
        published["document"] = b'{"keys": []}'  # the key removed: refused once the copy is older than max_age
        clock["t"] = 299
        assert auth.verify_token(keys, token)[0] == "sign-on"
        clock["t"] = 310
        with pytest.raises(auth.Unauthenticated):
            auth.verify_token(keys, token)
    finally:
        server.shutdown()
    with pytest.raises(auth.MissingSecret, match="only https"):
        auth.KeySet("http://sign-on.example.cn/.well-known/jwks.json")
