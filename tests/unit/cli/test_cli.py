"""`mallcare` (mallcare_cli.cli) without the infrastructure: where it looks for the
services and the broker, what makes `status` fail and how it shows it, usage errors
(exit 2), and the auth commands it passes on. The commands that reach running services
and the broker are tested in tests/integration/test_cli.py."""

import jwt
import pytest

from mallcare_cli import cli
from mallcare_common import auth

SIGNING_KEY = auth.new_signing_key("sign-on", "unit")


def report(services=(("intake", "ok", "ok"),), queues=(), broker_error=None):
    built = {
        "services": [
            {"service": name, "url": f"http://127.0.0.1:{cli.PORTS[name]}", "health": health, "store": store}
            for name, health, store in services
        ],
        "broker": {"management": "http://127.0.0.1:15672", "vhost": "/"},
        "queues": [
            {"queue": name, "messages": messages, "consumers": consumers} for name, messages, consumers in queues
        ],
    }
    if broker_error:
        built["broker"]["error"] = broker_error
    built["dead_letters"] = sum(q["messages"] for q in built["queues"] if q["queue"] == "mallcare.dead-letters")
    built["problems"] = cli.problems(built)
    return built


def test_service_urls_default_to_run_sh_ports_then_env_then_flags(monkeypatch):
    monkeypatch.delenv("MALLCARE_TRIAGE_URL", raising=False)
    monkeypatch.setenv("MALLCARE_INTAKE_URL", "http://10.0.0.5:9001/")
    urls = cli.service_urls(["analytics=http://127.0.0.1:18005"])
    assert urls == {
        "intake": "http://10.0.0.5:9001",
        "triage": "http://127.0.0.1:8002",
        "resolution": "http://127.0.0.1:8003",
        "feedback": "http://127.0.0.1:8004",
        "analytics": "http://127.0.0.1:18005",
        "notify": "http://127.0.0.1:8007",
    }
    with pytest.raises(Exception, match="SERVICE=URL"):
        cli.service_urls(["billing=http://x"])


def test_the_broker_is_read_where_amqp_uri_points():
    assert cli.vhost_of("amqp://guest:guest@127.0.0.1:5672/") == "/"
    assert cli.vhost_of("amqp://u:p@rabbit:5672/nameko_test_ab") == "nameko_test_ab"
    assert cli.vhost_of("amqp://u:p@rabbit:5672/%2Fprod") == "/prod"
    assert cli.management_url("amqp://u:p@rabbit:5672/x") == "http://rabbit:15672"
    assert cli.management_url("amqp://u:p@rabbit:5672/x", "https://mq.example/") == "https://mq.example"
    assert [
        cli.is_mallcare_queue(q)
        for q in (
            "evt-intake-complaint_registered--triage.handle_complaint_registered",
            "rpc-intake",
            "mallcare.dead-letters",
            "rpc.reply-intake-1f2e",
            "billing",
        )
    ] == [True, True, True, False, False]


def test_status_fails_on_a_service_down_a_store_unreachable_the_broker_unread_or_dead_letters():
    assert report(queues=[("mallcare.dead-letters", 0, 0), ("rpc-intake", 0, 1)])["problems"] == []
    down = report(services=[("intake", "ok", "ok"), ("triage", "down", "-")])
    down["services"][1]["error"] = "ConnectionError"
    assert cli.problems(down) == ["triage at http://127.0.0.1:8002: down (ConnectionError)"]
    assert report(services=[("resolution", "degraded", "unreachable")])["problems"] == [
        "resolution at http://127.0.0.1:8003: health degraded, store unreachable"
    ]
    assert report(broker_error="HTTPError: 401")["problems"] == [
        "RabbitMQ management API at http://127.0.0.1:15672: HTTPError: 401"
    ]
    waiting = report(queues=[("mallcare.dead-letters", 2, 0)])
    assert waiting["dead_letters"] == 2 and waiting["problems"] == [
        "2 dead letter(s) wait in mallcare.dead-letters: mallcare deadletters list"
    ]


def test_the_status_table_lines_up_and_ends_with_the_verdict():
    lines = cli.render_status(
        report(
            services=[("intake", "ok", "ok"), ("resolution", "down", "-")],
            queues=[("mallcare.dead-letters", 1, 0), ("rpc-intake", 0, 12)],
        )
    ).splitlines()
    assert lines[:3] == [
        "SERVICE     URL                    HEALTH  STORE",
        "intake      http://127.0.0.1:8001  ok      ok",
        "resolution  http://127.0.0.1:8003  down    -",
    ]
    assert lines[5:8] == [
        "QUEUE                  MESSAGES  CONSUMERS",
        "mallcare.dead-letters  1         0",
        "rpc-intake             0         12",
    ]
    assert lines[-3:] == [
        "dead letters: 1",
        "! resolution at http://127.0.0.1:8003: health down, store -",
        "! 1 dead letter(s) wait in mallcare.dead-letters: mallcare deadletters list",
    ]
    assert cli.render_status(report()).endswith("dead letters: 0\nall ok\n")


def test_seed_writes_only_to_this_machine_unless_told():
    assert cli.is_loopback("http://127.0.0.1:8001") and cli.is_loopback("http://localhost:8001")
    assert cli.is_loopback("http://[::1]:8001")
    assert not cli.is_loopback("http://10.1.2.3:8001") and not cli.is_loopback("http://intake.prod:8001")


@pytest.mark.parametrize(
    "argv, says",
    [
        (["status", "--bogus"], "unrecognized arguments: --bogus"),
        (["status", "--url", "billing=http://x"], "SERVICE=URL"),
        (["seed", "--url", "intake=http://10.1.2.3:8001"], "add --allow-remote"),
        (["seed", "--malls", "2", "--complaints", "1001"], "at most 2000 complaints a run"),
        (["seed", "--malls", "4"], "malls.yml has 3 malls, 4 asked"),
        (["seed", "--complaints", "0"], "at least 1"),
        (["retention", "purge", "--service", "intake"], "invalid choice: 'purge'"),
        (["policy"], "required: action"),
    ],
)
def test_usage_errors_exit_2_and_say_why(argv, says, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2 and says in capsys.readouterr().err


def test_token_and_api_key_are_auths_own_commands(capsys, monkeypatch):
    monkeypatch.setenv("MALLCARE_SIGNING_KEY", SIGNING_KEY)
    assert cli.main(["token", "--user", "E3011", "--role", "supervisor", "--mall", "sh-xujiahui"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), auth.SigningKey(SIGNING_KEY).key.public_key(), ["EdDSA"])
    assert (claims["sub"], claims["role"], claims["malls"]) == ("E3011", "supervisor", ["sh-xujiahui"])
    assert cli.main(["api-key", "--id", "wechat-sh", "--mall", "sh-xujiahui", "--channel", "wechat"]) == 0
    assert capsys.readouterr().out.startswith("key (give to the channel, shown once): wechat-sh.")
    with pytest.raises(SystemExit):
        cli.main(["token", "--help"])
    assert capsys.readouterr().out.startswith("usage: mallcare token ")


def test_a_missing_secret_is_a_failed_command_not_a_traceback(capsys, monkeypatch):
    monkeypatch.delenv("MALLCARE_SIGNING_KEY", raising=False)
    monkeypatch.delenv("MALLCARE_SECRETS_FILE", raising=False)
    assert cli.main(["token", "--user", "E1", "--role", "admin", "--mall", "*"]) == 1
    assert capsys.readouterr().err.startswith("error: secret SIGNING_KEY is not set")


def test_seed_fails_with_a_message_when_the_registry_is_unreadable_or_intake_does_not_answer(
    capsys, monkeypatch, tmp_path
):
    from tests.helpers import free_port

    monkeypatch.setenv("MALLCARE_SIGNING_KEY", SIGNING_KEY)
    assert cli.main(["seed", "--policy-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path}/malls.yml is invalid: cannot be read")
    closed = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["seed", "--url", f"intake={closed}"]) == 1
    assert capsys.readouterr().err == f"error: intake at {closed} does not answer: ConnectionError\n"
