#!/usr/bin/env bash
# Sets up and runs the whole system on this machine: .venv with pinned
# requirements, RabbitMQ (started, or installed and started, if none answers),
# one embedded MongoDB-wire store per service unless MONGO_URI is set, the six
# services, the web console (:8006), the gateways' stand-ins (a mail catcher and the SMS,
# WeChat and app APIs notify sends through, :8090 and :2525), and one demo complaint.
# Ctrl-C stops everything it started.
# Logs: .run/logs/<service>.log (JSON lines); the last 5 runs' in .run/logs/previous/<stamp>/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(triage analytics resolution feedback notify intake)   # subscribers first: intake publishes mandatory
declare -A WEB_PORT=([intake]=8001 [triage]=8002 [resolution]=8003 [feedback]=8004 [analytics]=8005 [notify]=8007)
declare -A STORE_PORT=([intake]=27101 [triage]=27102 [resolution]=27103 [feedback]=27104 [analytics]=27105
                       [notify]=27107)
# The gateways' credentials as the stand-ins take them (python -m standins --help); a mall's
# real ones go into the secrets file or the environment instead (README.md).
export MALLCARE_SMS_ACCESS_KEY_SECRET=${MALLCARE_SMS_ACCESS_KEY_SECRET:-standin-secret}
export MALLCARE_WECHAT_APP_SECRET=${MALLCARE_WECHAT_APP_SECRET:-standin-secret}
export MALLCARE_APP_WEBHOOK_SECRET=${MALLCARE_APP_WEBHOOK_SECRET:-standin-secret}
SERVICE_PIDS=()
STORE_PIDS=()
# nameko's command line sets off two notices as it starts (pkg_resources', eventlet's), before
# logging is set up: without this they are the only lines of a service log that are not JSON.
export PYTHONWARNINGS="ignore::Warning:nameko.cli.main,ignore::Warning:nameko.cli.commands"
# Where the answer links sent to customers lead (feedback serves the page), and the customer's
# own pages (intake's /portal/..., the posters' QR codes): each service itself here; a chain
# sets its public address, whose reverse proxy passes /answers to feedback and /portal/ to intake.
PUBLIC_BASE_URL_SET=${MALLCARE_PUBLIC_BASE_URL:-}
export MALLCARE_PUBLIC_BASE_URL=${MALLCARE_PUBLIC_BASE_URL:-http://127.0.0.1:${WEB_PORT[feedback]}}

stop() {  # pids...: TERM, then KILL whatever is still there after 20 s (each stops in a few seconds)
  local pid i alive
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || break
    sleep 0.1
  done
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      say "killed, still there 20 s after SIGTERM: $(ps -o args= -p "$pid" || echo "pid $pid")"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

stop_all() {
  trap - INT TERM EXIT
  say "stopping"
  stop "${SERVICE_PIDS[@]}"   # services first: they finish their workers and close their store clients
  stop "${STORE_PIDS[@]}"
  stop_broker_if_started
  say "stopped"
}

ensure_venv
ensure_broker
ensure_secrets
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT
keep_previous_logs "$RUN_DIR/logs" 5
mkdir -p "$RUN_DIR/logs"
cd "$ROOT"

# What notify "sends" lands here: http://127.0.0.1:8090/ lists it (deploy/policy/notify.yml points there).
"$VENV/bin/python" -m standins --http-port 8090 --smtp-port 2525 --state-dir "$RUN_DIR/standins" \
  >"$RUN_DIR/logs/standins.log" 2>&1 &
SERVICE_PIDS+=($!)
wait_port 127.0.0.1 8090 30 "the gateways' stand-ins"

for svc in "${SERVICES[@]}"; do
  if [ -n "${MONGO_URI:-}" ]; then
    store_uri=$MONGO_URI
  else
    if port_open 127.0.0.1 "${STORE_PORT[$svc]}"; then
      say "port ${STORE_PORT[$svc]} is taken: is another 'scripts/run.sh' running?"; exit 1
    fi
    start_store "$svc" "${STORE_PORT[$svc]}"
    STORE_PIDS+=("$(cat "$RUN_DIR/store-$svc.pid")")
    wait_port 127.0.0.1 "${STORE_PORT[$svc]}" 60 "the $svc store"
    store_uri="mongodb://127.0.0.1:${STORE_PORT[$svc]}/"
  fi
  upper=${svc^^}
  public=$MALLCARE_PUBLIC_BASE_URL
  [ "$svc" = intake ] && public=${PUBLIC_BASE_URL_SET:-http://127.0.0.1:${WEB_PORT[intake]}}
  env MONGO_URI="$store_uri" "${upper}_WEB_ADDRESS=127.0.0.1:${WEB_PORT[$svc]}" MALLCARE_PUBLIC_BASE_URL="$public" \
    "$VENV/bin/nameko" run --config "services/$svc/config.yml" "$svc.service:${svc^}Service" >"$RUN_DIR/logs/$svc.log" 2>&1 &
  SERVICE_PIDS+=($!)
  "$VENV/bin/python" scripts/demo.py wait "http://127.0.0.1:${WEB_PORT[$svc]}/health" ||
    { say "$svc did not become healthy; last lines of .run/logs/$svc.log:"; tail -20 "$RUN_DIR/logs/$svc.log"; exit 1; }
  say "$svc is up on http://127.0.0.1:${WEB_PORT[$svc]}"
done

# The web console (issue 9): pages and a same-origin proxy to the six; no store of its own.
# The demo sign-in (no password) is on here, where the console listens on this machine only.
env CONSOLE_WEB_ADDRESS=127.0.0.1:8006 CONSOLE_DEMO_LOGIN="${CONSOLE_DEMO_LOGIN:-true}" "$VENV/bin/nameko" run --config services/console/config.yml console.service \
  >"$RUN_DIR/logs/console.log" 2>&1 &
SERVICE_PIDS+=($!)
"$VENV/bin/python" scripts/demo.py wait "http://127.0.0.1:8006/health" ||
  { say "console did not become healthy; last lines of .run/logs/console.log:"; tail -20 "$RUN_DIR/logs/console.log"; exit 1; }
say "console is up on http://127.0.0.1:8006"

"$VENV/bin/python" scripts/demo.py complaint || say "the demo complaint did not get through; see .run/logs/"

cat <<EOT

  mallcare is running. Every call is signed in: make a staff token (signed with the development
  sign-on key in .run/secrets.yml; the services verify it with .run/jwks.json) with
    export MALLCARE_SECRETS_FILE=$MALLCARE_SECRETS_FILE
    TOKEN=\$(.venv/bin/python -m mallcare_common.auth token --user E3501 --role handler --mall sh-xujiahui)
    curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8003/cases?mall_id=sh-xujiahui
  (a chain analyst: --user A7001 --role analyst --mall '*'; channel keys: ... auth api-key --help)
  Web console            http://127.0.0.1:8006   (sign in as D3001 desk, E3501 handler, E3011 supervisor;
                                                    demo sign-in, no password, on here only: it stands in for the
                                                    chain's sign-on; off by default, docs/security.md)
  Where to look (each with that header; health and metrics need none):
    everything at once     .venv/bin/mallcare status   (services, stores, queues, dead letters; mallcare --help)
    complaints (HTTP API)  http://127.0.0.1:8001/complaints
    triage's record        http://127.0.0.1:8002/assessments/<number>
    cases (handler queue)  http://127.0.0.1:8003/cases?mall_id=sh-xujiahui   case: /cases/<number>
    revisits (worklist)    http://127.0.0.1:8004/revisits?mall_id=sh-xujiahui   library: /library
    answer page            a revisit's answer_link (app, WeChat, SMS complaints): $MALLCARE_PUBLIC_BASE_URL/answers?token=...
    customer's own page    http://127.0.0.1:8001/portal/SHXJH   (the mall's code; on a phone; progress: /portal/status)
    poster to print        http://127.0.0.1:8001/portal/SHXJH/poster   (its QR code leads to the page)
    messages to customers  http://127.0.0.1:8007/messages?complaint_no=<number>   failed: /messages/failed
    what was "sent"        http://127.0.0.1:8090/   (the stand-ins: e-mail, SMS, WeChat, app)
    a WeChat complaint     .venv/bin/python scripts/demo.py wechat '停车场收费机扣了我两次钱'
                             (posts it as WeChat's server would, signed, to intake's callback; the reply
                              carries the number, and notify's acknowledgement then shows on :8090)
    intake counts          http://127.0.0.1:8005/reports/intake
    monthly report         http://127.0.0.1:8005/reports/monthly.html?period=$(date -u +%Y-%m)   (also JSON, format=csv)
    metrics                http://127.0.0.1:800{1..5}/metrics, :8007/metrics   health: /health
    logs                   $RUN_DIR/logs/   (JSON lines: tail -f .run/logs/*.log; earlier runs in previous/)
    RabbitMQ UI            http://127.0.0.1:15672  (guest/guest, from this machine)
  Ctrl-C stops everything this script started.
EOT

wait -n "${SERVICE_PIDS[@]}" "${STORE_PIDS[@]}" || true
say "a process exited; see $RUN_DIR/logs/"
