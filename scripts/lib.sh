# Shared by scripts/run.sh and scripts/test.sh: virtualenv, RabbitMQ, embedded store.
# Sourced, not run. Everything it starts is recorded so the caller can stop it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
RUN_DIR="$ROOT/.run"
export AMQP_URI="${AMQP_URI:-amqp://guest:guest@127.0.0.1:5672/}"
STARTED_BROKER=0

say() { printf '\033[1m[mallcare]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

port_open() {  # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_port() {  # host port seconds what
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    port_open "$1" "$2" && return 0
    sleep 0.2
  done
  say "$4 did not answer on $1:$2 within $3 s"; return 1
}

ensure_venv() {
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.11 python3.12 python3; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python=$candidate; break
      fi
    done
  fi
  [ -n "$python" ] || { say "Python 3.11 or newer is needed (apt-get install python3)"; exit 1; }
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv in .venv with $python"
    "$python" -m venv "$VENV" 2>/dev/null || {
      as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
      "$python" -m venv "$VENV"
    }
  fi
  local stamp="$VENV/.mallcare-requirements"
  local want
  want=$(cat "$ROOT"/requirements*.txt "$ROOT"/services/*/pyproject.toml "$ROOT"/sdk/*/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing pinned requirements into .venv"
    (cd "$ROOT" && "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt)
    echo "$want" > "$stamp"
  fi
}

amqp_host() { "$VENV/bin/python" -c 'import os,urllib.parse as u; print(u.urlparse(os.environ["AMQP_URI"]).hostname or "127.0.0.1")'; }
amqp_port() { "$VENV/bin/python" -c 'import os,urllib.parse as u; print(u.urlparse(os.environ["AMQP_URI"]).port or 5672)'; }

ensure_broker() {  # starts a local RabbitMQ (installing it if needed) unless one answers
  local host port
  host=$(amqp_host); port=$(amqp_port)
  if ! port_open "$host" "$port"; then
    case "$host" in 127.*|localhost) ;; *) say "RabbitMQ at $host:$port does not answer"; exit 1;; esac
    if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
      say "installing RabbitMQ (Debian package rabbitmq-server)"
      as_root apt-get update -qq
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq rabbitmq-server >/dev/null
      # the package may start it as a system service; use it if it did
    fi
    if ! port_open "$host" "$port"; then
      say "starting RabbitMQ"
      as_root env PATH="$PATH:/usr/sbin" rabbitmq-server -detached
      STARTED_BROKER=1
    fi
    wait_port "$host" "$port" 90 RabbitMQ
  fi
  # The management plugin gives ops the UI and the tests their per-test vhosts.
  if [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ]; then
    if ! port_open 127.0.0.1 15672; then
      say "enabling the RabbitMQ management plugin"
      as_root env PATH="$PATH:/usr/sbin" rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
      wait_port 127.0.0.1 15672 60 "RabbitMQ management"
    fi
  fi
}

ensure_test_tools() {  # Debian packages the tests use: chromium and chromium-driver (the console's e2e test),
  # a CJK font for its screenshots, prometheus for promtool (the alert rules' unit tests) and
  # dovecot-imapd, the IMAP server the complaint mailbox's tests start (tests/integration/dovecot.py)
  local missing=() lean=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
  command -v promtool >/dev/null || lean+=(prometheus)   # only its promtool is used; it is not started
  [ -x /usr/sbin/dovecot ] || lean+=(dovecot-imapd)      # run by the tests as their own process, not as a system service
  command -v npm >/dev/null || lean+=(nodejs npm)        # npm installs axe-core, the e2e tests' accessibility check
  if [ $((${#missing[@]} + ${#lean[@]})) -gt 0 ]; then
    say "installing ${missing[*]} ${lean[*]} (Debian packages) for the tests"
    as_root apt-get update -qq || say "apt-get update failed"
    [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null ||
      say "could not install ${missing[*]}: tests/e2e will fail and say so"
    [ ${#lean[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
      "${lean[@]}" >/dev/null || say "could not install ${lean[*]}: the promtool and mailbox tests will fail and say so"
  fi
  # axe-core at the version tests/e2e/axe/package-lock.json pins, from the npm registry
  [ -f "$ROOT/tests/e2e/axe/node_modules/axe-core/axe.min.js" ] ||
    (cd "$ROOT/tests/e2e/axe" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    say "could not install axe-core with npm: tests/e2e will fail and say so"
}

stop_broker_if_started() {
  if [ "$STARTED_BROKER" = 1 ]; then
    say "stopping the RabbitMQ we started"
    as_root env PATH="$PATH:/usr/sbin" rabbitmqctl stop >/dev/null 2>&1 || true
  fi
}

ensure_secrets() {  # .run/secrets.yml (mode 600), made once with random secrets and keys; never in the repo
  local file="${MALLCARE_SECRETS_FILE:-$RUN_DIR/secrets.yml}"
  local jwks
  jwks="$(dirname "$file")/jwks.json"
  if [ ! -f "$file" ]; then
    mkdir -p "$(dirname "$file")"
    say "writing new random secrets and signing keys to $file (their public keys: $jwks)"
    (umask 077 && "$VENV/bin/python" -m mallcare_common.auth secrets --jwks "$jwks" >"$file")
  elif ! grep -q '^SIGNING_KEY:' "$file" || ! grep -q '^JWKS:' "$file" || [ ! -f "$jwks" ]; then
    # a file of a release before signing keys, or its JWKS gone: add what it lacks, keep the rest
    say "adding signing keys to $file (kept as $file.bak; their public keys: $jwks)"
    (umask 077 && "$VENV/bin/python" -m mallcare_common.auth secrets --jwks "$jwks" --complete "$file" >/dev/null)
  fi
  # The demo's WeChat official account (sh-xujiahui's in deploy/policy/intake.yml) signs its
  # calls with this token (32 letters and digits, WeChat's most); scripts/demo.py wechat does.
  if ! grep -q '^WECHAT_TOKEN_SH_XUJIAHUI:' "$file"; then
    echo "WECHAT_TOKEN_SH_XUJIAHUI: $("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')" >>"$file"
  fi
  export MALLCARE_SECRETS_FILE="$file"
}

keep_previous_logs() {  # dir [runs]: moves dir/*.log into dir/previous/<stamp>/, keeping the last `runs` (5)
  local dir=$1 runs=${2:-5} stamp target newest
  newest=$(ls -t "$dir"/*.log 2>/dev/null | head -1) || true
  [ -n "$newest" ] || return 0
  stamp=$(date -u -r "$newest" +%Y%m%dT%H%M%SZ)   # when that run last wrote
  target="$dir/previous/$stamp"
  while [ -e "$target" ]; do target="$target+"; done
  mkdir -p "$target"
  mv "$dir"/*.log "$target/"
  # without a trailing slash: "...Z+/" would sort before "...Z/" ('+' < '/'), the newer run first
  ls -1d "$dir"/previous/* | sort | head -n "-$runs" | xargs -r -d '\n' rm -rf --
}

start_store() {  # name port -> starts secantusd-py with its data in .run/data/name
  mkdir -p "$RUN_DIR/data/$1" "$RUN_DIR/logs"
  # --standalone: pymongo then sends no retryable-write envelope, whose replies the store
  # keeps 30 minutes and walks on every write (its write-rate cliff; bench/store_probe.py)
  "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$2" --storage-path "$RUN_DIR/data/$1" \
    --log-level WARNING --standalone >"$RUN_DIR/logs/store-$1.log" 2>&1 &
  echo $! >"$RUN_DIR/store-$1.pid"
}
