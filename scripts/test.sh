#!/usr/bin/env bash
# Runs the whole test suite against a real RabbitMQ and the real store.
# Sets up .venv, starts RabbitMQ if none answers; the tests start the embedded
# MongoDB-wire server themselves unless MONGO_URI points at a mongod. Installs Debian's
# chromium and chromium-driver if missing (tests/e2e drives the web console with them),
# prometheus for promtool (the alert rules' unit tests) and dovecot-imapd (the mailbox tests' IMAP server).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -k calendar; without any,
# the whole suite runs as two pytest processes side by side (below).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_venv
ensure_broker
ensure_test_tools
trap stop_broker_if_started EXIT
cd "$ROOT"
set +e
if [ $# -gt 0 ]; then
  "$VENV/bin/python" -m pytest "$@"
  status=$?
else
  # Half of the suite's time is spent waiting on the broker, the store, the services'
  # processes and the browser, so two pytest processes side by side, each with its own
  # embedded store, take 11 minutes where one takes 17 (on the 2-core CI machine). The
  # integration tests are about as long as the rest together. Each process hands out ports
  # of its own range (tests/helpers.py, free_ports). The second one's output follows the
  # first's.
  rest_log="$(mktemp)"
  # With job control on, the rest runs in a process group of its own where SIGINT is not
  # ignored (bash ignores it in a script's background jobs), so a Ctrl-C can be passed on
  # and its fixtures stop their services and stores.
  set -m
  MALLCARE_TEST_PORTS=26000-31999 "$VENV/bin/python" -m pytest -o cache_dir=.pytest_cache/rest \
    tests --ignore=tests/integration >"$rest_log" 2>&1 &
  rest=$!
  set +m
  trap 'kill -INT "$rest" 2>/dev/null' INT TERM
  MALLCARE_TEST_PORTS=20000-25999 "$VENV/bin/python" -m pytest -o cache_dir=.pytest_cache/integration tests/integration
  status=$?
  wait "$rest"
  rest_status=$?
  while [ $rest_status -gt 128 ] && kill -0 "$rest" 2>/dev/null; do  # a signal's trap ended the wait early
    wait "$rest"
    rest_status=$?
  done
  trap - INT TERM
  say "the tests outside tests/integration, run beside them:"
  cat "$rest_log"
  rm -f "$rest_log"
  [ $status = 0 ] && status=$rest_status
  [ $rest_status = 5 ] && status=5
fi
[ $status = 5 ] && say "pytest collected no tests: that is a failure here"
exit $status
