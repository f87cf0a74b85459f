"""The web console's own service (issue 9): its pages, the demo sign-in and the proxy's
edges. The whole walk through the pages is tests/e2e/test_console_day.py."""

import http.client
import json
import os
import signal
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.service import UPSTREAM_NAMES, ConsoleService
from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.auth import KeySet, SigningKey, issue_token, new_signing_key, staff_claims, verify_token
from tests.helpers import (
    POLICY_DIR,
    SECRETS,
    SIGNING_KEY,
    bearer,
    free_port,
    free_ports,
    sampled,
    staff,
    start_service,
    stop_services,
    wait_for,
)
from tests.integration.test_input_gate import barrage


@pytest.fixture
def console(container_factory, rabbit_config, secrets_file):
    def start(**mallcare):
        nowhere = f"http://127.0.0.1:{free_port()}"  # no service answers there
        config = {
            "AMQP_URI": rabbit_config["AMQP_URI"],
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "MALLCARE": {
                "POLICY_DIR": str(POLICY_DIR),
                **SECRETS,
                "SECRETS_FILE": secrets_file,
                "UPSTREAMS": {s: nowhere for s in UPSTREAM_NAMES},
                **mallcare,
            },
        }
        container = container_factory(ConsoleService, config)
        container.start()
        return "http://" + config["WEB_SERVER_ADDRESS"]

    return start


def test_serves_the_pages_and_nothing_outside_them(console):
    url = console()
    page = requests.get(url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'lang="zh-CN"' in page.text
    script = requests.get(url + "/static/js/desk.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert requests.get(url + "/static/../service.py", timeout=10).status_code == 404
    assert requests.get(url + "/static/%2e%2e/service.py", timeout=10).status_code == 404
    assert requests.get(url + "/static/%00", timeout=10).status_code == 404  # found by the barrage's hypothesis
    assert requests.get(url + "/static/" + "a" * 5000, timeout=10).status_code == 404


def test_demo_sign_in_signs_a_token_for_a_member_of_staff_only(console, secrets_file):
    url = console(DEMO_LOGIN="true")
    signed = requests.post(url + "/login", json={"staff_id": "e3501"}, timeout=10)
    assert signed.status_code == 200
    body = signed.json()
    with open(secrets_file, encoding="utf-8") as handle:
        keys = KeySet(json.load(handle)["JWKS"])
    assert staff_claims(verify_token(keys, body["token"])[1]) == ("E3501", "handler", ("sh-xujiahui",))
    assert (body["role"], body["name"]) == ("handler", "周洁")
    assert requests.post(url + "/login", json={"staff_id": "X9999"}, timeout=10).status_code == 401
    assert requests.post(url + "/login", data="{", timeout=10).status_code == 400
    staff = requests.get(url + "/staff", timeout=10).json()["items"]
    assert {"id": "D3001", "name": "许静", "role": "desk_staff", "malls": ["sh-xujiahui"]} in staff


def test_sign_ins_from_one_address_are_limited_and_a_big_body_refused_unread(console):
    """Issue 23: the console's open routes count per client address; a signed-in member of
    staff is not counted (many share a mall's address); a body over the limit is 413."""
    url = console(DEMO_LOGIN="true", PER_ADDRESS_PER_MINUTE="2")
    assert requests.post(url + "/login", json={"staff_id": "X" * 70000}, timeout=10).status_code == 413
    assert requests.post(url + "/login", json={"staff_id": "X9999"}, timeout=10).status_code == 401
    over = requests.post(url + "/login", json={"staff_id": "E3501"}, timeout=10)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
    signed_in = bearer("E3011", "supervisor", ["sh-xujiahui"])
    assert requests.get(url + "/session", headers=signed_in, timeout=10).status_code == 200


def test_demo_sign_in_is_off_unless_turned_on_and_the_directory_is_for_signed_in_staff_only(console):
    """Issue 23: off by default, so that a deployment has no password-less sign-in by accident."""
    url = console(SIGN_ON_URL="https://sso.example.com/login")
    assert requests.post(url + "/login", json={"staff_id": "E3501"}, timeout=10).status_code == 404
    assert requests.get(url + "/staff", timeout=10).status_code == 401  # no names to strangers
    signed_in = bearer("E3011", "supervisor", ["sh-xujiahui"])
    assert "E3501" in {m["id"] for m in requests.get(url + "/staff", headers=signed_in, timeout=10).json()["items"]}
    assert requests.get(url + "/sign-in", timeout=10).json() == {
        "demo": False,
        "sign_on_url": "https://sso.example.com/login",
    }
    assert requests.get(console(DEMO_LOGIN="true") + "/sign-in", timeout=10).json() == {
        "demo": True,
        "sign_on_url": None,
    }


def test_the_console_publishes_the_public_keys_tokens_are_verified_with(console):
    published = requests.get(console() + "/.well-known/jwks.json", timeout=10).json()["keys"]
    assert SigningKey(SIGNING_KEY).kid in {key["kid"] for key in published}
    assert all(key["alg"] == "EdDSA" and "d" not in key for key in published)  # no private half


def test_a_console_listening_beyond_this_machine_will_not_start_with_the_demo_sign_in_on(
    container_factory, rabbit_config, secrets_file
):
    """Issue 23: anyone who reaches :8006 would sign in as legal L9001 and read full contacts."""

    def start(**mallcare):
        config = {
            "AMQP_URI": rabbit_config["AMQP_URI"],
            "WEB_SERVER_ADDRESS": f"0.0.0.0:{free_port()}",
            "MALLCARE": {
                "POLICY_DIR": str(POLICY_DIR),
                "SECRETS_FILE": secrets_file,
                "UPSTREAMS": {s: "http://127.0.0.1:9" for s in UPSTREAM_NAMES},
                "DEMO_LOGIN": "true",
                **mallcare,
            },
        }
        container = container_factory(ConsoleService, config)
        container.start()
        return config["WEB_SERVER_ADDRESS"].replace("0.0.0.0", "http://127.0.0.1")

    with pytest.raises(RuntimeError, match="anyone who reaches it could sign in as any member of staff"):
        start()
    with pytest.raises(RuntimeError, match="CONSOLE_DEMO_LOGIN_EXPOSED"):
        start(DEMO_LOGIN_EXPOSED="yes")  # a flag that does not name the risk is no consent
    url = start(DEMO_LOGIN_EXPOSED="anyone-who-reaches-the-console-signs-in-as-any-staff")
    assert requests.get(url + "/sign-in", timeout=10).json()["demo"] is True


def test_a_token_from_the_sign_on_says_who_signed_in_and_a_bad_one_is_refused(console):
    url = console(DEMO_LOGIN="false")
    before = {
        outcome: sampled(url, "mallcare_console_sign_ins_total", how="sign_on", outcome=outcome)
        for outcome in ("ok", "refused")
    }
    who = requests.get(url + "/session", headers=bearer("E3011", "supervisor", ["sh-xujiahui"]), timeout=10)
    assert who.status_code == 200
    body = who.json()
    assert {k: body[k] for k in ("user", "name", "role", "malls")} == {
        "user": "E3011",
        "name": "钱芳",
        "role": "supervisor",
        "malls": ["sh-xujiahui"],
    }
    # what the pages may offer, from access.yml and resolution.yml's case permissions
    assert {"case.read", "assessment.assign", "close_or_reopen"} <= set(body["may"])
    assert not {"review_meeting", "policy.reload"} & set(body["may"])
    forged = issue_token(SigningKey(new_signing_key("sign-on", "tests")), "E3011", "supervisor", ["*"])
    for headers in ({"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic x"}, {}):
        refused = requests.get(url + "/session", headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"] == "UNAUTHENTICATED"
    assert sampled(url, "mallcare_console_sign_ins_total", how="sign_on", outcome="ok") == before["ok"] + 1
    assert sampled(url, "mallcare_console_sign_ins_total", how="sign_on", outcome="refused") == before["refused"] + 3


def test_the_proxy_knows_only_the_six_and_says_when_one_is_down(console):
    url = console()
    assert requests.get(url + "/api/secrets/x", timeout=10).status_code == 404
    down = requests.get(url + "/api/intake/complaints", timeout=20)
    assert down.status_code == 503 and down.json()["error"] == "UNAVAILABLE"
    health = requests.get(url + "/health", timeout=20)
    assert health.status_code == 503 and health.json()["upstreams"]["intake"] == "unreachable"
    assert requests.get(url + "/health/live", timeout=10).json() == {"service": "console", "status": "ok"}
    assert sampled(url, "mallcare_console_requests_total", upstream="intake", status="503") >= 1


def test_the_pages_get_the_complaints_text_masked_as_the_service_answers_it(console, container_factory, service_config):
    config = service_config("intake")
    container_factory(IntakeService, config).start()
    intake = "http://" + config["WEB_SERVER_ADDRESS"]
    url = console(UPSTREAMS={name: intake for name in UPSTREAM_NAMES})
    number = requests.post(
        intake + "/complaints",
        headers=staff("D3001"),
        timeout=10,
        json=desk_complaint(description="王女士的草莓发霉了，请回电13912345678或发邮件wang@example.com"),
    ).json()["number"]
    for reader in (bearer(), staff("R7001"), staff("E3501")):
        shown = requests.get(f"{url}/api/intake/complaints/{number}", headers=reader, timeout=10)
        assert (
            shown.status_code == 200
            and shown.json()["description"] == "[name]的草莓发霉了，请回电[phone]或发邮件[e-mail]"
        )


def test_the_console_answers_a_barrage_with_4xx_and_passes_the_services_refusals_on(
    console, container_factory, service_config
):
    """Issue 17, the sixth service: the console's own body (the demo sign-in) goes through the
    input gate, the proxy passes a service's refusal on as it came, and no path, query, body or
    header of a hostile client gets a 5xx from the console itself."""
    config = service_config("intake")
    container_factory(IntakeService, config).start()
    intake = "http://" + config["WEB_SERVER_ADDRESS"]
    url = console(DEMO_LOGIN="true", UPSTREAMS={name: intake for name in UPSTREAM_NAMES})
    headers = {**staff("D3001"), "Content-Type": "application/json"}
    for name, raw, status, named in barrage({}, "staff_id"):
        answer = requests.post(url + "/login", data=raw, headers={"Content-Type": "application/json"}, timeout=10)
        assert answer.status_code == status, (name, answer.text)
        assert named in (answer.json().get("fields") or {}) or named in answer.json()["message"], (name, answer.text)
    for name, raw, status, named in barrage(desk_complaint(), "description"):
        passed = requests.post(url + "/api/intake/complaints", data=raw, headers=headers, timeout=10)
        direct = requests.post(intake + "/complaints", data=raw, headers=headers, timeout=10)
        assert (passed.status_code, passed.json()) == (direct.status_code, direct.json()), name
        body = passed.json()
        assert passed.status_code == status and (named in (body.get("fields") or {}) or named in body["message"]), (
            name,
            passed.text,
        )

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        path=st.text(min_size=1, max_size=40),
        query=st.text(max_size=40),
        body=st.binary(max_size=200),
        method=st.sampled_from(["GET", "POST"]),
        prefix=st.sampled_from(["/api/intake/", "/api/", "/static/", "/"]),
        token=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    )
    def no_5xx(path, query, body, method, prefix, token):
        answer = requests.request(
            method,
            url + prefix + quote(path, safe="/"),
            params={"q": query},
            data=body,
            headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
            timeout=10,
        )
        assert answer.status_code < 500, (method, prefix + path, answer.status_code, answer.text[:300])

    no_5xx()
    assert requests.get(url + "/health/live", timeout=10).status_code == 200


def test_the_console_process_stops_on_sigterm_within_seconds_and_logs_json_lines(rabbit_config, secrets_file, tmp_path):
    """As scripts/run.sh starts and stops it (it ignored SIGTERM, idle, and run.sh killed it after 20 s)."""
    [port] = free_ports(1)
    console = start_service(
        "console",
        port,
        "console",
        tmp_path,
        amqp_uri=rabbit_config["AMQP_URI"],
        mongo_uri="",
        secrets_file=secrets_file,
    )
    try:

        def live():
            try:
                return requests.get(f"http://127.0.0.1:{port}/health/live", timeout=2)
            except requests.ConnectionError:
                return None

        answer = wait_for(live, timeout=60)
        console.send_signal(signal.SIGTERM)
        assert console.wait(timeout=10) == 0
    finally:
        stop_services([console])
    lines = [json.loads(text) for text in (tmp_path / "console.log").read_text().splitlines()]
    [line] = [line for line in lines if line.get("request_id") == answer.headers["X-Request-Id"]]
    assert (line["route"], line["status"], line["level"]) == ("/health/live", 200, "INFO")
    assert any(line["message"] == "stopping services: console" for line in lines)


class Recorder(BaseHTTPRequestHandler):
    """A service as the console sees it: it answers every request with its path and body,
    noting who asked from where (server.seen), keeps the connection open (HTTP/1.1), and
    hangs up without an answer on a path starting /hang-up (once only on /hang-up-once)."""

    protocol_version = "HTTP/1.1"

    def handle(self):
        self.server.connections.add(self.connection)
        try:
            super().handle()
        finally:
            self.server.connections.discard(self.connection)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        first = self.path not in [path for _, path, _, _ in self.server.seen]
        self.server.seen.append((self.command, self.path, self.client_address, body))
        if self.path.startswith("/hang-up") and (first or not self.path.startswith("/hang-up-once")):
            self.close_connection = True
            return
        answer = json.dumps({"path": self.path, "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

    @staticmethod
    def hang_up_idle(server):
        """Close every connection the service kept open, as a restarted service would have."""
        for connection in list(server.connections):
            connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen, server.connections = [], set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    Recorder.hang_up_idle(server)
    server.server_close()


def tcp_nodelay(local, remote):
    """TCP_NODELAY of this process's TCP socket from `local` to `remote` (host, port): the
    services run in the test's process, their sockets found through /proc (Linux)."""

    def address(field):
        host, port = field.split(":")
        return socket.inet_ntoa(struct.pack("<I", int(host, 16))), int(port, 16)

    lines = open("/proc/net/tcp").read().splitlines()[1:]
    ends = {f"socket:[{f[9]}]": (address(f[1]), address(f[2])) for f in (line.split() for line in lines)}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        if ends.get(target) == (local, remote):
            with socket.socket(fileno=os.dup(int(fd))) as sock:
                return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    raise AssertionError(f"no socket from {local} to {remote}")


def browser_at(url):
    """A browser's kept-alive connection to the console, as the staff member E3011."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)

    def call(method, path, body=None):
        connection.request(method, path, body=body, headers=staff("E3011"))
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())

    return connection, call


def test_the_proxy_keeps_its_connection_to_a_service_and_neither_end_waits_on_nagle(console, recorder):
    """Issue 21: one kept-alive connection to a service for call after call (there was one
    per call), TCP_NODELAY on it and on the connections the console accepts (an answer over
    16 KiB waited about 40 ms for a delayed ACK), and a POST after the service closed the
    idle connection goes out on a new one."""
    service = recorder.server_address
    url = console(UPSTREAMS={name: "http://%s:%d" % service for name in UPSTREAM_NAMES})
    browser, call = browser_at(url)
    assert call("GET", "/api/intake/complaints?mall_id=sh-xujiahui&status=open&status=closed") == (
        200,
        {"path": "/complaints?mall_id=sh-xujiahui&status=open&status=closed", "body": ""},
    )
    assert call("GET", "/api/intake/complaints/C%201") == (200, {"path": "/complaints/C%201", "body": ""})
    [first, second] = [source for _, _, source, _ in recorder.seen]
    assert first == second  # the same port at the console's end: one connection
    assert tcp_nodelay(first, service) == 1  # the console's own connection to the service
    parts = urlsplit(url)
    assert tcp_nodelay((parts.hostname, parts.port), browser.sock.getsockname()) == 1  # one it accepted

    Recorder.hang_up_idle(recorder)
    assert call("POST", "/api/intake/complaints", b'{"a": 1}') == (200, {"path": "/complaints", "body": '{"a": 1}'})
    [(method, path, source, body)] = recorder.seen[2:]
    assert (method, path, body) == ("POST", "/complaints", b'{"a": 1}') and source != first


def test_a_call_the_service_hung_up_on_is_tried_again_once_if_a_get_and_never_if_a_post(console, recorder):
    """A POST the service may have acted on is not sent twice: the console answers 503."""
    url = console(UPSTREAMS={name: "http://%s:%d" % recorder.server_address for name in UPSTREAM_NAMES})
    _, call = browser_at(url)
    assert call("POST", "/api/resolution/hang-up", b"{}") == (
        503,
        {"error": "UNAVAILABLE", "message": "resolution did not answer"},
    )
    assert call("GET", "/api/resolution/hang-up-once") == (200, {"path": "/hang-up-once", "body": ""})
    assert call("GET", "/api/resolution/hang-up")[0] == 503
    assert [(method, path) for method, path, _, _ in recorder.seen] == [
        ("POST", "/hang-up"),
        ("GET", "/hang-up-once"),
        ("GET", "/hang-up-once"),
        ("GET", "/hang-up"),
        ("GET", "/hang-up"),
    ]
