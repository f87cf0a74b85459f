"""Issue 19: notify's gateways send for real, to the stand-ins (`python -m standins`, run here
as its own process on free ports): an SMTP relay requiring STARTTLS and AUTH, Alibaba Cloud's
SMS API, the WeChat official-account API and the app's webhook receiver. Each gateway gets
its message through with Chinese text intact, and tells a refusal that retrying cannot cure
(Refused) from an outage, a timeout or a rate limit (Temporary)."""

import itertools
import json
import secrets
import socket
import ssl
import subprocess
import sys
import traceback
import uuid
from contextlib import contextmanager

import eventlet
import pytest
import requests
import yaml

from notify.gateways import Outgoing, Refused, Temporary, gateway_from
from standins.mail import certificate_by_cryptography, certificate_by_openssl
from tests.helpers import ROOT, free_ports, wait_for

TIMEOUT = 1.0  # the gateways' timeout here; the stand-ins' slow mode waits longer
SLOW_SECONDS = 4
CREDENTIALS = {
    "aliyun_sms": {"access_key_id": "LTAI5tStandIn", "access_key_secret": "aliyun-secret-甲"},
    "wechat": {"appid": "wx3f1c2e9b7a6d5c4b", "secret": "wechat-secret-0123456789abcdef"},
    "webhook": {"secret": "webhook-secret-for-the-app"},
    "smtp": {"user": "notify@mall.example", "password": "smtp-password-1"},
}
COMPLAINT = "SHXJH-20261123-0010"
TEXT = "您好，您在徐家汇店的投诉（停车场收费重复扣款）已受理，我们将在24小时内回复。"


class Outside:
    """The stand-ins of one process: settings that reach them, their control, what they got."""

    def __init__(self, http_port, smtp_port, state_dir):
        self.http = f"http://127.0.0.1:{http_port}"
        self.smtp_port = smtp_port
        self.state_dir = state_dir

    def settings(self, kind, **overrides):
        where = {
            "smtp": {
                "host": "127.0.0.1",
                "port": self.smtp_port,
                "starttls": True,
                "sender": "徐家汇店顾客服务 <care@mall.example>",
                "ca_file": str(self.state_dir / "smtp-cert.pem"),
            },
            "aliyun_sms": {
                "endpoint": f"{self.http}/aliyun/",
                "sign_name": "某某商场",
                "template_code": "SMS_465100321",
            },
            "wechat": {"api": f"{self.http}/wechat"},
            "webhook": {"url": f"{self.http}/webhook"},
        }[kind]
        return {"kind": kind, **where, **CREDENTIALS[kind], "timeout": TIMEOUT, **overrides}

    def gateway(self, kind, **overrides):
        return gateway_from(self.settings(kind, **overrides))

    def point_notify_here(self, policy_dir):
        """Points the shipped gateways of notify's policy in `policy_dir` here (as shipped: no
        TLS, no AUTH, the stand-ins' default credentials, which the tests' SECRETS hold)."""
        notify_yml = policy_dir / "notify.yml"
        policy = yaml.safe_load(notify_yml.read_text(encoding="utf-8"))
        gateways = policy["gateways"]
        gateways["email"].update(port=self.smtp_port)
        gateways["sms"]["endpoint"] = f"{self.http}/aliyun/"
        gateways["wechat"]["api"] = f"{self.http}/wechat"
        gateways["app"]["url"] = f"{self.http}/webhook"
        notify_yml.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")

    def control(self, **order):
        answer = requests.post(f"{self.http}/_control", json=order, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def tokens_issued(self):
        """How many WeChat access tokens the stand-in has given so far."""
        return requests.get(f"{self.http}/_control", timeout=5).json()["wechat_tokens_issued"]

    def received(self, to):
        return [entry for entry in requests.get(f"{self.http}/_sent", timeout=5).json() if entry["to"] == to]


@contextmanager
def standins(state_dir, *options):
    """`python -m standins` on free ports with `options`, once it answers; stopped after."""
    http_port, smtp_port = free_ports(2)
    log = open(state_dir / "standins.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "standins",
            "--http-port",
            str(http_port),
            "--smtp-port",
            str(smtp_port),
            "--state-dir",
            str(state_dir),
            "--slow-seconds",
            str(SLOW_SECONDS),
            *options,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    outside = Outside(http_port, smtp_port, state_dir)

    def answers():
        assert process.poll() is None, (state_dir / "standins.log").read_text()
        try:
            return requests.get(f"{outside.http}/_sent", timeout=1).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(answers, timeout=30)
        yield outside
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("standins")
    given = {
        "--smtp-user": CREDENTIALS["smtp"]["user"],
        "--smtp-password": CREDENTIALS["smtp"]["password"],
        "--aliyun-access-key-id": CREDENTIALS["aliyun_sms"]["access_key_id"],
        "--aliyun-access-key-secret": CREDENTIALS["aliyun_sms"]["access_key_secret"],
        "--wechat-appid": CREDENTIALS["wechat"]["appid"],
        "--wechat-secret": CREDENTIALS["wechat"]["secret"],
        "--webhook-secret": CREDENTIALS["webhook"]["secret"],
    }
    with standins(state_dir, "--smtp-starttls", *itertools.chain.from_iterable(given.items())) as outside:
        yield outside


@pytest.fixture
def outside(started):
    """The stand-ins, every one answering normally when the test starts."""
    for target in ("sms", "wechat", "webhook", "smtp"):
        started.control(target=target, mode="ok")
    return started


def phone():
    return f"139{secrets.randbelow(10**8):08d}"


def openid():
    return "o" + secrets.token_urlsafe(30)[:27]


def email():
    return f"li.wei.{uuid.uuid4().hex[:8]}@example.cn"


def outgoing(channel, to, text=TEXT, **fields):
    return Outgoing(
        f"{COMPLAINT}:acknowledgement:{uuid.uuid4().hex[:6]}", channel, to, text, complaint_no=COMPLAINT, **fields
    )


# -- e-mail ---------------------------------------------------------------------------------


def test_an_email_goes_over_starttls_with_auth_and_names_the_complaint(outside):
    to = email()
    message = outgoing("email", to, subject=f"投诉 {COMPLAINT} 已受理", html=f"<p>{TEXT}</p>")
    receipt = outside.gateway("smtp").send(message)
    assert receipt.gateway == "smtp"
    assert receipt.provider_id == f"<{message.message_id.replace(':', '.')}@notify.mallcare>"
    [mail] = outside.received(to)
    assert (mail["subject"], mail["text"], mail["html"]) == (f"投诉 {COMPLAINT} 已受理", TEXT, f"<p>{TEXT}</p>")
    assert (mail["message_id"], mail["complaint_no"]) == (receipt.provider_id, COMPLAINT)
    assert mail["sender"] == "徐家汇店顾客服务 <care@mall.example>"
    assert mail["tls"] and mail["authenticated"]


def test_a_wrong_smtp_password_is_refused(outside):
    to = email()
    with pytest.raises(Refused, match="535"):
        outside.gateway("smtp", password="not-the-password").send(outgoing("email", to, subject="投诉"))
    assert outside.received(to) == []


def test_a_relay_that_requires_starttls_refuses_a_gateway_set_up_without_it(outside):
    with pytest.raises(Refused):
        outside.gateway("smtp", starttls=False).send(outgoing("email", email(), subject="投诉"))


def test_a_relay_whose_certificate_is_not_trusted_is_not_sent_to(outside):
    # the system's certificates only: the stand-in's own is self-signed
    with pytest.raises(Temporary, match="CERTIFICATE_VERIFY_FAILED"):
        outside.gateway("smtp", ca_file=None).send(outgoing("email", email(), subject="投诉"))


def test_a_recipient_the_relay_rejects_is_refused_and_greylisting_is_for_later(outside):
    outside.control(target="smtp", mode="refuse")
    with pytest.raises(Refused, match="550"):
        outside.gateway("smtp").send(outgoing("email", email(), subject="投诉"))
    outside.control(target="smtp", mode="refuse", code=450)
    with pytest.raises(Temporary, match="450"):
        outside.gateway("smtp").send(outgoing("email", email(), subject="投诉"))


@pytest.mark.parametrize("mode", ["down", "slow"])
def test_a_relay_down_or_too_slow_is_for_later(outside, mode):
    outside.control(target="smtp", mode=mode)
    with pytest.raises(Temporary):
        outside.gateway("smtp").send(outgoing("email", email(), subject="投诉"))


def test_a_relay_that_does_not_answer_at_all_is_for_later(outside):
    [closed] = free_ports(1)
    with pytest.raises(Temporary):
        outside.gateway("smtp", port=closed).send(outgoing("email", email(), subject="投诉"))


def test_what_is_not_an_email_address_is_refused_before_any_relay_is_asked(outside):
    with pytest.raises(Refused, match="not an e-mail address"):
        outside.gateway("smtp").send(outgoing("email", "li.wei@example.cn\r\nBcc: all@example.cn", subject="投诉"))


def test_a_plain_relay_takes_mail_without_tls_or_auth(tmp_path):
    with standins(tmp_path) as plain:
        to = email()
        plain.gateway("smtp", starttls=False, user=None, password=None, ca_file=None).send(
            outgoing("email", to, subject="投诉")
        )
        [mail] = plain.received(to)
        assert mail["text"] == TEXT and not mail["tls"] and not mail["authenticated"]


# -- SMS ------------------------------------------------------------------------------------


def test_an_sms_goes_with_a_valid_signature_and_arrives_as_the_phone_shows_it(outside):
    to = phone()
    message = outgoing("sms", to)
    receipt = outside.gateway("aliyun_sms").send(message)
    [sms] = outside.received(to)
    assert receipt.gateway == "aliyun_sms" and receipt.provider_id == sms["provider_id"]
    assert (sms["text"], sms["message_id"], sms["template_code"]) == (TEXT, message.message_id, "SMS_465100321")
    assert sms["shown"] == f"【某某商场】{TEXT}" and sms["segments"] == 1


def test_a_long_sms_is_sent_in_segments_and_one_over_500_characters_is_refused(outside):
    to = phone()
    outside.gateway("aliyun_sms").send(outgoing("sms", to, text="很" * 200))
    assert [sms["segments"] for sms in outside.received(to)] == [4]  # 206 characters with 【某某商场】: 67 each
    with pytest.raises(Refused, match="500"):
        outside.gateway("aliyun_sms").send(outgoing("sms", to, text="很" * 495))
    assert len(outside.received(to)) == 1


def test_an_invalid_mobile_number_is_refused(outside):
    with pytest.raises(Refused, match="isv.MOBILE_NUMBER_ILLEGAL"):
        outside.gateway("aliyun_sms").send(outgoing("sms", "1390000"))


@pytest.mark.parametrize(
    "settings, code",
    [
        ({"access_key_secret": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"access_key_id": "LTAI5tSomeoneElse"}, "InvalidAccessKeyId.NotFound"),
    ],
)
def test_wrong_aliyun_credentials_are_refused(outside, settings, code):
    to = phone()
    with pytest.raises(Refused, match=code):
        outside.gateway("aliyun_sms", **settings).send(outgoing("sms", to))
    assert outside.received(to) == []


def test_the_provider_refusing_a_number_is_refused_and_its_rate_limit_is_for_later(outside):
    outside.control(target="sms", mode="refuse")
    with pytest.raises(Refused, match="isv.MOBILE_NUMBER_ILLEGAL"):
        outside.gateway("aliyun_sms").send(outgoing("sms", phone()))
    outside.control(target="sms", mode="refuse", code="isv.BUSINESS_LIMIT_CONTROL")
    with pytest.raises(Temporary, match="isv.BUSINESS_LIMIT_CONTROL"):
        outside.gateway("aliyun_sms").send(outgoing("sms", phone()))


@pytest.mark.parametrize("mode", ["down", "slow"])
def test_the_sms_provider_down_or_too_slow_is_for_later(outside, mode):
    outside.control(target="sms", mode=mode)
    with pytest.raises(Temporary):
        outside.gateway("aliyun_sms").send(outgoing("sms", phone()))


# -- WeChat ---------------------------------------------------------------------------------


def test_a_wechat_message_goes_with_one_access_token_kept_for_the_next(outside):
    before = outside.tokens_issued()
    gateway, to = outside.gateway("wechat"), openid()
    first = outgoing("wechat", to)
    receipt = gateway.send(first)
    gateway.send(outgoing("wechat", to, text="第二条：工作人员将于今天下午致电您。"))
    assert (receipt.gateway, receipt.provider_id) == ("wechat", first.message_id)
    assert [entry["text"] for entry in outside.received(to)] == [TEXT, "第二条：工作人员将于今天下午致电您。"]
    assert outside.tokens_issued() == before + 1


def test_a_token_about_to_expire_is_replaced_before_it_is_used(outside):
    # a margin as long as the token's life: each token is near its end as soon as it is given
    before = outside.tokens_issued()
    gateway, to = outside.gateway("wechat", token_margin=7200), openid()
    gateway.send(outgoing("wechat", to))
    gateway.send(outgoing("wechat", to))
    assert len(outside.received(to)) == 2
    assert outside.tokens_issued() == before + 2


def test_an_expired_token_is_replaced_once_and_the_message_still_goes(outside):
    gateway, to = outside.gateway("wechat"), openid()
    gateway.send(outgoing("wechat", to))
    before = outside.control(target="wechat", expire_tokens=True)["wechat_tokens_issued"]
    gateway.send(outgoing("wechat", to, text="再次致歉。"))
    assert [entry["text"] for entry in outside.received(to)] == [TEXT, "再次致歉。"]
    assert outside.tokens_issued() == before + 1


def test_workers_sending_at_once_share_one_token(outside):
    before = outside.tokens_issued()
    gateway, to = outside.gateway("wechat"), openid()
    pool = eventlet.GreenPool()  # as nameko runs its workers
    receipts = list(pool.imap(gateway.send, [outgoing("wechat", to, text=f"第{n}条") for n in range(5)]))
    assert len(receipts) == 5 and len(outside.received(to)) == 5
    assert outside.tokens_issued() == before + 1
    # the token expired under them all: one of them fetches the next, the others use it
    outside.control(target="wechat", expire_tokens=True)
    receipts = list(pool.imap(gateway.send, [outgoing("wechat", to, text=f"第{n}条") for n in range(5, 10)]))
    assert len(receipts) == 5 and len(outside.received(to)) == 10
    assert outside.tokens_issued() == before + 2


@pytest.mark.parametrize("code", [45015, 43004])
def test_a_customer_out_of_reach_on_wechat_is_refused(outside, code):
    outside.control(target="wechat", mode="refuse", code=code)
    with pytest.raises(Refused, match=str(code)):
        outside.gateway("wechat").send(outgoing("wechat", openid()))


def test_what_is_not_an_openid_is_refused(outside):
    with pytest.raises(Refused, match="40003"):
        outside.gateway("wechat").send(outgoing("wechat", "13912345678"))


@pytest.mark.parametrize(
    "settings, code", [({"secret": "not-the-secret"}, 40125), ({"appid": "wx0000000000000000"}, 40013)]
)
def test_wrong_wechat_credentials_are_refused(outside, settings, code):
    with pytest.raises(Refused, match=str(code)):
        outside.gateway("wechat", **settings).send(outgoing("wechat", openid()))


@pytest.mark.parametrize("mode", ["down", "slow"])
def test_wechat_down_or_too_slow_is_for_later_and_the_error_names_no_secret(outside, mode):
    outside.control(target="wechat", mode=mode)
    with pytest.raises(Temporary) as raised:
        outside.gateway("wechat").send(outgoing("wechat", openid()))
    logged = "".join(traceback.format_exception(raised.value))  # as a log shows it, with its causes
    assert CREDENTIALS["wechat"]["secret"] not in logged


# -- the app's webhook ----------------------------------------------------------------------


def test_the_app_gets_a_signed_webhook_with_the_complaint(outside):
    message = outgoing("app", "app-user-8812")
    receipt = outside.gateway("webhook").send(message)
    assert (receipt.gateway, receipt.provider_id) == ("webhook", message.message_id)
    [hook] = outside.received("app-user-8812")
    assert (hook["text"], hook["message_id"], hook["complaint_no"]) == (TEXT, message.message_id, COMPLAINT)


def test_a_webhook_signed_with_another_secret_is_refused(outside):
    with pytest.raises(Refused, match="401"):
        outside.gateway("webhook", secret="not-the-secret").send(outgoing("app", "app-user-9"))
    assert outside.received("app-user-9") == []


@pytest.mark.parametrize("code, error", [(410, Refused), (404, Refused), (429, Temporary), (408, Temporary)])
def test_the_apps_answer_says_whether_to_try_again(outside, code, error):
    outside.control(target="webhook", mode="refuse", code=code)
    with pytest.raises(error, match=str(code)):
        outside.gateway("webhook").send(outgoing("app", "app-user-10"))


@pytest.mark.parametrize("mode", ["down", "slow"])
def test_the_app_down_or_too_slow_is_for_later(outside, mode):
    outside.control(target="webhook", mode=mode)
    with pytest.raises(Temporary):
        outside.gateway("webhook").send(outgoing("app", "app-user-11"))


# -- what the stand-ins show ----------------------------------------------------------------


def test_every_message_is_listed_in_the_state_dir_and_on_the_page(outside):
    to = phone()
    outside.gateway("aliyun_sms").send(outgoing("sms", to, text="<b>已退款</b> 请查收"))
    listed = requests.get(f"{outside.http}/_sent", timeout=5).json()
    assert json.loads((outside.state_dir / "sent.json").read_text(encoding="utf-8")) == listed
    assert listed[-1]["to"] == to and listed[-1]["channel"] == "sms"
    page = requests.get(f"{outside.http}/", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "&lt;b&gt;已退款&lt;/b&gt; 请查收" in page.text and to in page.text


@pytest.mark.parametrize("make", [certificate_by_openssl, certificate_by_cryptography])
def test_the_relays_certificate_made_either_way_is_trusted_for_localhost_and_127_0_0_1(tmp_path, make):
    if make is certificate_by_cryptography:
        pytest.importorskip("cryptography")
    cert_file, key_file = make(tmp_path)
    relay = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    relay.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))

    def greet(times):
        for _ in range(times):
            connection, _ = listener.accept()
            with relay.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"220 ready")

    greeter = eventlet.spawn(greet, 2)
    client = ssl.create_default_context(cafile=str(cert_file))
    for name in ("localhost", "127.0.0.1"):
        with client.wrap_socket(
            socket.create_connection(listener.getsockname(), timeout=5), server_hostname=name
        ) as tls:
            assert tls.recv(9) == b"220 ready"
    greeter.wait()
    listener.close()
