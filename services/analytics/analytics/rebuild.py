"""Rebuild the reports' read model: `python -m analytics.rebuild [--config services/analytics/config.yml]`.

Drops `complaints` and `report_tallies`, replays every stored event (oldest first)
through the same read-model code the live handlers use (storage.apply_event), then
the final outcome of every SLA clock as recorded in `clocks`. It reads the clocks and
never writes them: no SLA event is published again, no outbox is touched. Run it with
analytics stopped (events arriving during a rebuild may be counted twice or not at all).
Events stored before their payloads were kept cannot be replayed: they are counted
and skipped.
"""

import argparse
import os
import sys

import yaml
from nameko.cli.main import setup_yaml_parser
from pymongo import MongoClient

from mallcare_common.malls import load_registry_file

from . import reports
from .storage import EventLog, Events


def rebuild(db, malls):
    """Replay into database `db`; `malls`: the mall registry (time zones). Returns counts."""
    store = EventLog(db)
    store.drop_read_model()
    replayed = skipped = outcomes = 0
    for event in store.stored_events():
        if event["payload"] is None:
            skipped += 1
            continue
        store.apply_event(event, reports.zone_of(malls, event["mall_id"]))
        replayed += 1
    for clock, outcome in store.final_clocks():
        outcomes += store.apply_clock(clock, outcome) is not None
    return {"events": replayed, "skipped_without_payload": skipped, "clock_outcomes": outcomes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="services/analytics/config.yml")
    args = parser.parse_args(argv)
    setup_yaml_parser()  # ${ENV:default} in the config, as `nameko run` reads it
    with open(args.config, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    policy_dir = config.get("MALLCARE", {}).get("POLICY_DIR", "deploy/policy")
    client = MongoClient(config["MONGO_URI"], tz_aware=True)
    try:
        db = client[config.get("MONGO_DATABASE") or "analytics"]
        Events.read_model_indexes(db)
        print(rebuild(db, load_registry_file(os.path.join(policy_dir, "malls.yml"))))
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
