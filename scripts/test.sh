#!/usr/bin/env bash
# Runs the whole test suite against a real RabbitMQ and the real store.
# Sets up .venv, starts RabbitMQ if none answers; the tests start the embedded
# MongoDB-wire server themselves unless MONGO_URI points at a mongod. Installs Debian's
# chromium and chromium-driver if missing (tests/e2e drives the web console with them),
# prometheus for promtool (the alert rules' unit tests) and dovecot-imapd (the mailbox tests' IMAP server).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -k calendar
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_venv
ensure_broker
ensure_test_tools
trap stop_broker_if_started EXIT
cd "$ROOT"
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
[ $status = 5 ] && say "pytest collected no tests: that is a failure here"
exit $status
