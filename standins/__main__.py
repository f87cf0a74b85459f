"""python -m standins --http-port 8090 --smtp-port 2525 --state-dir DIR [options]: runs every
stand-in until interrupted (SIGINT or SIGTERM)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from werkzeug.serving import make_server

from .mail import smtp_server
from .state import State
from .web import Credentials, StandIns


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m standins", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8090)
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--state-dir", type=Path, required=True, help="where sent.json and the certificate go")
    parser.add_argument("--slow-seconds", type=float, default=5, help="how long slow mode waits before answering")
    parser.add_argument("--smtp-user", help="require AUTH as this user")
    parser.add_argument("--smtp-password")
    parser.add_argument(
        "--smtp-starttls",
        action="store_true",
        help="offer and require STARTTLS, with a self-signed certificate (smtp-cert.pem)",
    )
    parser.add_argument("--aliyun-access-key-id", default="LTAIstandin")
    parser.add_argument("--aliyun-access-key-secret", default="standin-secret")
    parser.add_argument("--wechat-appid", default="wxstandin")
    parser.add_argument("--wechat-secret", default="standin-secret")
    parser.add_argument("--wechat-token-seconds", type=int, default=7200, help="expires_in of each access token")
    parser.add_argument("--webhook-secret", default="standin-secret")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    state = State(args.state_dir, args.slow_seconds)
    credentials = Credentials(
        args.aliyun_access_key_id,
        args.aliyun_access_key_secret,
        args.wechat_appid,
        args.wechat_secret,
        args.wechat_token_seconds,
        args.webhook_secret,
    )
    smtp = smtp_server(state, args.host, args.smtp_port, args.smtp_user, args.smtp_password, args.smtp_starttls)
    smtp.start()
    http = make_server(args.host, args.http_port, StandIns(state, credentials), threaded=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(
        f"standins: http://{args.host}:{args.http_port}/ smtp {args.host}:{args.smtp_port}, state in {args.state_dir}",
        flush=True,
    )
    stop.wait()
    http.shutdown()
    smtp.stop()


if __name__ == "__main__":
    main()
