"""The operator's command (issue 8), the console script `mallcare` of this package.

Most commands wrap a module's own command (deadletters, auth, analytics.rebuild,
<service>.retention) and pass the rest of the line to it. A service's modules are
imported only inside the command that needs them, so a command loads only what it uses.
"""

import argparse
import getpass
import importlib
import ipaddress
import json
import os
import random
import sys
import uuid
import warnings
from collections import Counter
from datetime import timedelta
from functools import partial
from urllib.parse import quote, unquote, urlparse

import requests

# nameko imports eventlet, which warns on every start: noise for an operator
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from mallcare_common import auth, deadletters, retention  # noqa: E402
from mallcare_common.labels import load_labels  # noqa: E402
from mallcare_common.malls import load_registry  # noqa: E402
from mallcare_common.messaging import DEAD_LETTER_QUEUE  # noqa: E402
from mallcare_common.policy import InvalidPolicy, _flatten, load_policy_dir, read_policy_file  # noqa: E402

from .examples import desk_complaint  # noqa: E402

SERVICES = ("intake", "triage", "resolution", "feedback", "analytics", "notify")
PORTS = {"intake": 8001, "triage": 8002, "resolution": 8003, "feedback": 8004, "analytics": 8005, "notify": 8007}
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"  # as the services' config.yml
TIMEOUT = 5  # seconds per HTTP call: status must answer even when a host hangs
SEED_LIMIT = 2000  # complaints per seed run: demo data, not a load test (bench/ is)
ADMIN_TOKEN_LIFETIME = timedelta(minutes=5)
# Demo complaints: one per kind of problem, so triage routes them to different departments.
SEED_SAMPLES = (
    {"description": "上午买的草莓有三分之一发霉了", "emotion": "angry"},
    {"description": "收银员态度很差，还吼了我", "emotion": "angry", "anger_score": 5},
    {"description": "二楼洗手间很脏，有异味", "emotion": "calm", "anger_score": 2},
    {"description": "促销价没有生效，结账时多扣了钱", "emotion": "anxious", "anger_score": 3},
)


USAGE = """commands:
  mallcare status [--json]                      services' /health and stores, queues, dead letters
  mallcare deadletters list|show|replay|purge   = python -m mallcare_common.deadletters
  mallcare rebuild analytics [--config C]       = python -m analytics.rebuild (analytics stopped)
  mallcare policy validate [DIR]                every policy file through its service's own loader
  mallcare policy reload [--service S]          POST /policy/reload on the running services, as admin
  mallcare token|api-key|secrets|keys ...       = python -m mallcare_common.auth
  mallcare retention run|dry-run --service intake|resolution [--config C]
                                                = python -m <service>.retention [--dry-run]
  mallcare seed --malls N --complaints M        demo complaints over HTTP to intake on this machine

exit codes: 0 ok; 1 a check failed (a service or the broker down, dead letters waiting, a policy
invalid, a request refused); 2 usage. Service URLs: --url SERVICE=URL, else MALLCARE_<SERVICE>_URL,
else http://127.0.0.1:8001-8005 (intake, triage, resolution, feedback, analytics; as scripts/run.sh).
Tokens for policy reload and seed are signed with the sign-on's SIGNING_KEY (MALLCARE_SIGNING_KEY,
or the file MALLCARE_SECRETS_FILE names): for development, where this machine holds it."""


class Failed(Exception):
    """A check or a request failed: exit 1 with the message."""


# --- mallcare status ---------------------------------------------------------------------------


def service_urls(given=()):
    """service -> base URL: --url service=URL, else MALLCARE_<SERVICE>_URL, else run.sh's port."""
    urls = {
        name: os.environ.get(f"MALLCARE_{name.upper()}_URL", f"http://127.0.0.1:{PORTS[name]}") for name in SERVICES
    }
    for pair in given:
        name, _, url = pair.partition("=")
        if name not in urls or not url:
            raise argparse.ArgumentTypeError(
                f"--url {pair}: expected SERVICE=URL, SERVICE one of " + ", ".join(SERVICES)
            )
        urls[name] = url
    return {name: url.rstrip("/") for name, url in urls.items()}


def check_service(name, url):
    """What the service's /health says (its store included), or why it did not answer."""
    row = {"service": name, "url": url, "health": "down", "store": "-"}
    try:
        response = requests.get(f"{url}/health", timeout=TIMEOUT)
        body = response.json()
        row.update(health=body.get("status", f"HTTP {response.status_code}"), store=body.get("store", "-"))
    except requests.RequestException as exc:
        row["error"] = type(exc).__name__
    except ValueError:  # something else answers on that port
        row.update(health=f"HTTP {response.status_code}", error="not a mallcare /health answer")
    return row


def management_url(amqp_uri, given=None):
    """The RabbitMQ management API: given, else the broker's host on :15672."""
    return (given or f"http://{urlparse(amqp_uri).hostname or '127.0.0.1'}:15672").rstrip("/")


def vhost_of(amqp_uri):
    path = urlparse(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def is_mallcare_queue(name):
    """Handler queues (evt-<publisher>-<event>--<service>.<method>), RPC queues and the dead
    letters; not the RPC reply queues of clients (rpc.reply-...), which come and go."""
    return name.startswith(("evt-", "rpc-")) or name == DEAD_LETTER_QUEUE


def read_queues(amqp_uri, management):
    """mallcare's queues of AMQP_URI's vhost: name, messages, consumers. The management API
    takes the AMQP credentials unless its URL carries its own."""
    amqp = urlparse(amqp_uri)
    credentials = (
        None
        if urlparse(management).username
        else (unquote(amqp.username or "guest"), unquote(amqp.password or "guest"))
    )
    response = requests.get(
        f"{management}/api/queues/{quote(vhost_of(amqp_uri), safe='')}",
        params={"columns": "name,messages,consumers"},
        auth=credentials,
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    # the counts are as of the broker's last statistics tick (every 5 s by default)
    return sorted(
        (
            {"queue": q["name"], "messages": q.get("messages", 0), "consumers": q.get("consumers", 0)}
            for q in response.json()
            if is_mallcare_queue(q["name"])
        ),
        key=lambda q: q["queue"],
    )


def collect_status(urls, amqp_uri, management):
    report = {
        "services": [check_service(name, url) for name, url in urls.items()],
        "broker": {"management": management, "vhost": vhost_of(amqp_uri)},
        "queues": [],
    }
    try:
        report["queues"] = read_queues(amqp_uri, management)
    except (requests.RequestException, ValueError) as exc:
        report["broker"]["error"] = f"{type(exc).__name__}: {exc}"
    report["dead_letters"] = sum(q["messages"] for q in report["queues"] if q["queue"] == DEAD_LETTER_QUEUE)
    report["problems"] = problems(report)
    return report


def problems(report):
    """What makes status fail (exit 1), one sentence each."""
    found = [
        f"{s['service']} at {s['url']}: "
        + (f"{s['health']} ({s['error']})" if s.get("error") else f"health {s['health']}, store {s['store']}")
        for s in report["services"]
        if (s["health"], s["store"]) != ("ok", "ok")
    ]
    if report["broker"].get("error"):
        found.append(f"RabbitMQ management API at {report['broker']['management']}: {report['broker']['error']}")
    if report["dead_letters"]:
        found.append(f"{report['dead_letters']} dead letter(s) wait in {DEAD_LETTER_QUEUE}: mallcare deadletters list")
    return found


def table(header, rows):
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in [header, *rows]
    )


def render_status(report):
    services = table(
        ("SERVICE", "URL", "HEALTH", "STORE"),
        [(s["service"], s["url"], s["health"], s["store"]) for s in report["services"]],
    )
    broker = report["broker"]
    queues = (
        table(
            ("QUEUE", "MESSAGES", "CONSUMERS"), [(q["queue"], q["messages"], q["consumers"]) for q in report["queues"]]
        )
        if report["queues"]
        else "no mallcare queues"
        if not broker.get("error")
        else "queues unknown"
    )
    verdict = "\n".join(f"! {p}" for p in report["problems"]) if report["problems"] else "all ok"
    return (
        f"{services}\n\nRabbitMQ {broker['management']} vhost {broker['vhost']}\n{queues}\n\n"
        f"dead letters: {report['dead_letters']}\n{verdict}\n"
    )


def status(args):
    report = collect_status(
        {name: url for name, url in service_urls(args.url).items() if name in (args.service or SERVICES)},
        args.amqp_uri,
        management_url(args.amqp_uri, args.management_url),
    )
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else render_status(report))
    return 1 if report["problems"] else 0


# --- mallcare policy ---------------------------------------------------------------------------


def validate_policies(policy_dir):
    """(file, version or None, [messages]) for malls.yml, access.yml and each service's file,
    each read with the loader its service starts with."""
    results = []

    def check(filename, read):
        try:
            loaded = read()
            results.append((filename, loaded["version"] if isinstance(loaded, dict) else loaded.version, []))
        except InvalidPolicy as exc:
            results.append((filename, None, _flatten(exc.messages)))

    check("malls.yml", lambda: read_policy_file(os.path.join(policy_dir, "malls.yml"), load_registry))
    if results[0][1] is None:  # every service's policy needs the registry: nothing more to check
        return results
    check("access.yml", lambda: auth.load_access(os.path.join(policy_dir, "access.yml")))
    check("labels.yml", lambda: read_policy_file(os.path.join(policy_dir, "labels.yml"), load_labels))
    for name in SERVICES:
        load = importlib.import_module(f"{name}.policy").load_policy
        check(f"{name}.yml", partial(load_policy_dir, policy_dir, f"{name}.yml", load))
    return results


def policy_validate(args):
    results = validate_policies(args.dir)
    width = max(len(os.path.join(args.dir, filename)) for filename, _, _ in results)
    for filename, version, messages in results:
        path = os.path.join(args.dir, filename)
        print(f"{'ok' if version else 'INVALID':<8} {path:<{width}}  {version or ''}".rstrip())
        for message in messages:
            print(f"         {message}")
    return 1 if any(version is None for _, version, _ in results) else 0


def admin_headers(token):
    """A given token, else a short-lived admin token signed here with the sign-on's SIGNING_KEY."""
    token = token or auth.issue_token(
        auth.SigningKey(auth.env_secret("SIGNING_KEY")),
        f"cli:{getpass.getuser()}",
        "admin",
        [auth.ALL_MALLS],
        ADMIN_TOKEN_LIFETIME,
    )
    return {"Authorization": f"Bearer {token}"}


def policy_reload(args):
    headers = admin_headers(args.token)
    failed = False
    for name, url in service_urls(args.url).items():
        if name not in (args.service or SERVICES):
            continue
        try:
            response = requests.post(f"{url}/policy/reload", headers=headers, timeout=TIMEOUT)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            print(f"{name:<10} {url}: no answer ({type(exc).__name__})")
            failed = True
            continue
        if response.status_code == 200:
            print(f"{name:<10} reloaded: version {body['version']}")
        else:
            print(f"{name:<10} refused ({response.status_code} {body.get('error')}): {body.get('message')}")
            failed = True
    return 1 if failed else 0


# --- mallcare seed ------------------------------------------------------------------------------


def is_loopback(url):
    host = urlparse(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def seed(args):
    if args.malls < 1 or args.complaints < 1:
        raise UsageError("--malls and --complaints: at least 1")
    if args.malls * args.complaints > SEED_LIMIT:
        raise UsageError(f"at most {SEED_LIMIT} complaints a run ({args.malls} x {args.complaints} asked)")
    intake = service_urls(args.url)["intake"]
    if not (args.allow_remote or is_loopback(intake)):
        raise UsageError(f"{intake} is not on this machine: seed writes demo data; add --allow-remote if you mean it")
    registry = read_policy_file(os.path.join(args.policy_dir, "malls.yml"), load_registry)
    if args.malls > len(registry.malls):
        raise UsageError(f"malls.yml has {len(registry.malls)} malls, {args.malls} asked")
    malls = list(registry.malls)[: args.malls]
    key, run, counts = auth.SigningKey(auth.env_secret("SIGNING_KEY")), uuid.uuid4().hex[:8], Counter()
    with requests.Session() as http:
        for mall in malls:
            desk = {"Authorization": "Bearer " + auth.issue_token(key, "seed", "desk_staff", [mall])}
            for i in range(args.complaints):
                body = desk_complaint(
                    mall_id=mall,
                    channel_ref=f"seed-{run}-{mall}-{i}",
                    customer={"name": "王女士", "phone": f"139{random.randrange(10**8):08d}"},
                    **SEED_SAMPLES[i % len(SEED_SAMPLES)],
                )
                try:
                    response = http.post(f"{intake}/complaints", json=body, headers=desk, timeout=TIMEOUT * 2)
                except requests.RequestException as exc:
                    raise Failed(f"intake at {intake} does not answer: {type(exc).__name__}") from exc
                counts[
                    mall, response.json()["status"] if response.status_code == 201 else f"HTTP {response.status_code}"
                ] += 1
                if response.status_code != 201:
                    print(f"{mall}: {response.status_code} {response.text[:200]}", file=sys.stderr)
    for mall in malls:
        print(
            f"{mall:<14} "
            + ", ".join(f"{n} {outcome}" for (m, outcome), n in sorted(counts.items(), key=str) if m == mall)
        )
    return 1 if any(outcome.startswith("HTTP") for _, outcome in counts) else 0


# --- commands that are another module's --------------------------------------------------------


def delegate_deadletters(args, rest):
    return deadletters.main(rest, prog="mallcare deadletters")


def delegate_auth(args, rest):
    auth.main([args.command, *rest], prog="mallcare")
    return 0


def delegate_rebuild(args, rest):
    return importlib.import_module("analytics.rebuild").main(rest)


def delegate_retention(args, rest):
    module = importlib.import_module(f"{args.service}.retention")
    return retention.command(
        args.service, module.anonymise, module.load_policy, (["--dry-run"] if args.action == "dry-run" else []) + rest
    )


class UsageError(Exception):
    """Arguments that parse but cannot be used: exit 2."""


def parser():
    top = argparse.ArgumentParser(
        prog="mallcare",
        description="Operate mallcare: check, repair, configure, seed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=USAGE,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="command")
    urls = argparse.ArgumentParser(add_help=False)
    urls.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="SERVICE=URL",
        help="a service's base URL (also MALLCARE_<SERVICE>_URL); repeat",
    )

    cmd = commands.add_parser("status", parents=[urls], help="services, stores, queues, dead letters; 1 if not ok")
    cmd.add_argument("--service", action="append", choices=SERVICES, help="only these (repeat); default all five")
    cmd.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), help="default: $AMQP_URI")
    cmd.add_argument(
        "--management-url",
        default=os.environ.get("RABBITMQ_MANAGEMENT_URL"),
        help="RabbitMQ management API (default $RABBITMQ_MANAGEMENT_URL, else the broker's host:15672)",
    )
    cmd.add_argument("--json", action="store_true", help="the report as JSON")
    cmd.set_defaults(run=status)

    for name, run, text in (
        ("deadletters", delegate_deadletters, "list, show, replay, purge dead letters"),
        ("token", delegate_auth, "a staff token signed with the sign-on's SIGNING_KEY (development)"),
        ("api-key", delegate_auth, "a new channel's, merchant's or subscriber's API key and its secrets-file entry"),
        ("secrets", delegate_auth, "new random secrets and signing keys, and their JWKS"),
        ("keys", delegate_auth, "a new signing key, and the JWKS file's keys, for a rotation"),
    ):
        # their own parser reads the rest, --help included
        commands.add_parser(name, add_help=False, help=f"{text} (mallcare {name} --help)").set_defaults(
            run=run, passes_on=True
        )
    cmd = commands.add_parser(
        "rebuild", add_help=False, help="rebuild analytics' read model from its stored events (analytics stopped)"
    )
    cmd.add_argument("what", choices=["analytics"])
    cmd.set_defaults(run=delegate_rebuild, passes_on=True)
    cmd = commands.add_parser("retention", help="anonymise what closed longer ago than retention_months")
    cmd.add_argument("action", choices=["run", "dry-run"], help="dry-run counts and changes nothing")
    cmd.add_argument("--service", required=True, choices=["intake", "resolution"])
    cmd.set_defaults(run=delegate_retention, passes_on=True)

    policy = commands.add_parser("policy", help="validate policy files, or reload them on running services")
    actions = policy.add_subparsers(dest="action", required=True, metavar="action")
    cmd = actions.add_parser("validate", help="every policy file with its service's loader; 1 if one is invalid")
    cmd.add_argument(
        "dir",
        nargs="?",
        default=os.environ.get("MALLCARE_POLICY_DIR", "deploy/policy"),
        help="default: $MALLCARE_POLICY_DIR or deploy/policy",
    )
    cmd.set_defaults(run=policy_validate)
    cmd = actions.add_parser("reload", parents=[urls], help="POST /policy/reload as admin; 1 if one refused")
    cmd.add_argument("--service", action="append", choices=SERVICES, help="only these (repeat); default all five")
    cmd.add_argument(
        "--token",
        default=os.environ.get("MALLCARE_TOKEN"),
        help="an admin token (default $MALLCARE_TOKEN, else one signed with SIGNING_KEY)",
    )
    cmd.set_defaults(run=policy_reload)

    cmd = commands.add_parser("seed", parents=[urls], help="demo complaints for N malls over HTTP to intake")
    cmd.add_argument("--malls", type=int, default=1, help="the first N malls of malls.yml (default 1)")
    cmd.add_argument("--complaints", type=int, default=10, help="per mall (default 10)")
    cmd.add_argument("--policy-dir", default=os.environ.get("MALLCARE_POLICY_DIR", "deploy/policy"))
    cmd.add_argument("--allow-remote", action="store_true", help="intake may be on another machine")
    cmd.set_defaults(run=seed)
    return top


def main(argv=None):
    top = parser()
    args, rest = top.parse_known_args(argv)
    if rest and not getattr(args, "passes_on", False):
        top.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args.run(args, rest) if getattr(args, "passes_on", False) else args.run(args)
    except (UsageError, argparse.ArgumentTypeError) as exc:
        top.error(str(exc))
    except (Failed, InvalidPolicy, RuntimeError) as exc:  # RuntimeError: a secret not set (auth.read_secret)
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
