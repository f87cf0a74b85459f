"""Analytics' own data: `events`, every event it received, keyed by event id (the
rebuildable base of every read model); `labels`, each complaint's category, risk
and department as triage last graded them; `clocks`, one per deadline (see
clocks.py), with the outbox of the SLA events; `tallies`, satisfied and
dissatisfied answers per mall (the gauge). For the reports (reports.py):
`complaints`, one read-model document per complaint; `report_tallies`, running
counts per (month or quarter, mall); `actions`, improvement actions (R5.3) and the
proposals for systemic patterns (`proposal_claims`: one per pattern and window). The
first two are rebuilt from `events` and the clocks' outcomes (rebuild.py).

Every write to a clock counts its `version` up: settling a clock and the sweep's
reports are compare-and-sets on it (mallcare_common.unit_of_work), so a clock
stopped, moved or reassigned since they read it is not reported or settled as read.

`tallies` also keeps, per mall and clock, how many clocks run (`open`) and how many of
those the sweep has flagged at risk or breached (`at_risk`): the gauges, moved by the
writes that change them (`_count_clocks`), never counted over the open clocks. A clock
counts as open from the start that created it running until the stop that stopped it,
and as at risk from the sweep's flag (`at_risk_reported`, which a breach sets too) until
that stop. A tally moves right after its clock's write, like the reports' tallies: a
process dying between the two leaves it one off."""

import uuid
from collections import Counter, defaultdict

from pymongo import ASCENDING, InsertOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from mallcare_common.contracts import EVENT_TYPES
from mallcare_common.mongo import MongoDatabase, Store, duplicates
from mallcare_common.unit_of_work import with_outbox

from . import clocks, reports

INTAKE_EVENTS = [name for name, event in EVENT_TYPES.items() if event.source == "intake"]
OPEN = {"stopped_at": None, "due_at": {"$ne": None}}
NOT_SETTLED = {
    "outcome": None,
    "at_risk_reported": False,
    "breach_reported": False,
}  # a new clock's, start or stop first
WRITES_KEPT = 5  # a complaint keeps the tokens of its last bulk writes (`_change_all`)
KNOWN_TALLIES: set[tuple[str, str]] = set()  # (database, tally) this process has seen made (`_inc`)


def _tally_keys(tally):
    period, mall_id = tally.split("|", 1)
    return {"period": period, "mall_id": mall_id}


def _moves(before, after):
    """The tallies' moves from one complaint's change, as {(tally, path): n}."""
    return Counter(
        {(tally, path): n for tally, changes in reports.delta(before, after).items() for path, n in changes.items()}
    )


def due(now):
    """The sweep's query for breaches, answered from the (stopped_at, breach_reported, due_at) index."""
    return {"stopped_at": None, "breach_reported": False, "due_at": {"$lte": now}}


def past_risk_point(now):
    """The sweep's query for warnings. A breach flags a clock at risk too, so the query names
    neither deadline nor breach and rides the (stopped_at, at_risk_reported, at_risk_at)
    prefix of its index (the embedded store scans the collection for a second range). One
    overdue but not yet flagged breached gets no warning (`pass_over_risks`)."""
    return {"stopped_at": None, "at_risk_reported": False, "at_risk_at": {"$lte": now}}


class EventLog(Store):
    def __init__(self, db):
        super().__init__(db)
        self.events, self.clocks = db.events, db.clocks
        self.outboxes = (db.clocks, db.report_deliveries)

    def record(self, events, received_at):
        """Store each event once, in one write; the events to apply, in their order: those
        stored now, and those stored before whose applying did not finish (`applied` is set
        last, so a batch that failed half-way is applied again by the redelivery; every step
        of applying is idempotent but the satisfaction tallies). Duplicates in `events` count once."""
        unique = list({e["event_id"]: e for e in reversed(events)}.values())[::-1]
        if not unique:
            return []
        docs = [
            {
                "_id": e["event_id"],
                **{k: e[k] for k in ("event_type", "schema_version", "occurred_at", "mall_id", "complaint_no")},
                "channel": e["payload"].get("channel"),
                "received_at": received_at,
                "payload": reports.kept_payload(e["payload"]),
                "applied": False,
            }
            for e in unique
        ]
        inserted = {doc["_id"] for doc in self.insert_new_many(self.events, docs)}
        if len(inserted) == len(docs):
            return unique
        stored = {e["event_id"] for e in unique} - inserted
        # stored before without `applied` (before batches): applied then
        unfinished = {d["_id"] for d in self.events.find({"_id": {"$in": list(stored)}, "applied": False}, {"_id": 1})}
        return [e for e in unique if e["event_id"] not in stored or e["event_id"] in unfinished]

    def applied(self, events):
        self.events.update_many({"_id": {"$in": [e["event_id"] for e in events]}}, {"$set": {"applied": True}})

    def intake_counts(self, mall_id=None):
        """Events per mall, channel and type: the intake picture ops look at first."""
        match = {"event_type": {"$in": INTAKE_EVENTS}, **({"mall_id": mall_id} if mall_id else {})}
        rows = self.events.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": {"mall_id": "$mall_id", "event_type": "$event_type", "channel": "$channel"},
                        "count": {"$sum": 1},
                    }
                },
            ]
        )
        return sorted(
            ({**row["_id"], "count": row["count"]} for row in rows),
            key=lambda r: (r["mall_id"], r["event_type"], r["channel"] or ""),
        )

    # --- labels and tallies ---------------------------------------------------------------------

    def label(self, grades):
        """{complaint_no: {category, risk_level, department}} as triage last graded them."""
        if grades:
            self.db.labels.bulk_write(
                [UpdateOne({"_id": number}, {"$set": values}, upsert=True) for number, values in grades.items()]
            )

    def labels_of(self, complaint_no):
        return self.db.labels.find_one({"_id": complaint_no}) or {}

    def labels_of_many(self, numbers):
        """{complaint_no: labels} of those of `numbers` that triage has graded."""
        return {doc["_id"]: doc for doc in self.db.labels.find({"_id": {"$in": list(numbers)}})}

    def count_answer(self, mall_id, satisfied):
        """Running satisfied/dissatisfied counts of a mall; returns (satisfied, all)."""
        tally = self.db.tallies.find_one_and_update(
            {"_id": f"answers:{mall_id}"},
            {"$inc": {"satisfied" if satisfied else "dissatisfied": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return tally.get("satisfied", 0), tally.get("satisfied", 0) + tally.get("dissatisfied", 0)

    def answer_tallies(self):
        return {
            t["_id"].split(":", 1)[1]: (t.get("satisfied", 0), t.get("satisfied", 0) + t.get("dissatisfied", 0))
            for t in self.db.tallies.find({"_id": {"$gt": "answers:", "$lt": "answers;"}})
        }

    # --- the reports' read model ------------------------------------------------------------

    def apply_event(self, event, zone):
        return self.apply_events([event], lambda mall_id: zone)[event["complaint_no"]]

    def apply_events(self, events, zone_of):
        """Move the read model by `events` (in order); `zone_of(mall_id)`: the mall's time
        zone. Returns {complaint_no: document written}."""
        by_number: dict[str, list[dict]] = {}
        for event in events:
            by_number.setdefault(event["complaint_no"], []).append(event)

        def change(events):
            def apply(doc):
                for event in events:
                    doc = reports.apply(doc, event, zone_of(event["mall_id"]))
                return doc

            return apply

        return self._change_all({number: change(events) for number, events in by_number.items()})

    def apply_clock(self, clock, outcome):
        return self.apply_clocks([(clock, outcome)]).get(clock["complaint_no"])

    def apply_clocks(self, outcomes):
        """Move the read model by clocks' final outcomes ([(clock, outcome)]: met, breached,
        cancelled); an adverse event's clocks are not a complaint's. Returns {complaint_no: document}."""
        by_number: dict[str, list[tuple[dict, str]]] = {}
        for clock, outcome in outcomes:
            if clock["clock"] in reports.COMPLAINT_CLOCKS:
                by_number.setdefault(clock["complaint_no"], []).append((clock, outcome))

        def change(outcomes):
            def apply(doc):
                for clock, outcome in outcomes:
                    doc = reports.apply_clock(doc, clock, outcome)
                return doc

            return apply

        return self._change_all({number: change(outcomes) for number, outcomes in by_number.items()})

    def _change_all(self, changes):
        """Apply {complaint_no: change(document) -> next document}: one read of the complaints,
        one bulk write of their next documents (compare-and-set on `v`), and the tallies moved
        by the sum of the differences in one write. Events of one complaint arrive on several
        queues at once: a complaint written meanwhile (by another batch, a clock's outcome)
        is read again and written alone."""
        if not changes:
            return {}
        found = {d["_id"]: d for d in self.db.complaints.find({"_id": {"$in": list(changes)}})}
        token = uuid.uuid4().hex  # marks this write's documents, to tell which of them landed
        nexts = {}
        for number, change in changes.items():
            before = found.get(number)
            after = change(before or {"_id": number})
            after["v"] = before["v"] + 1 if before else 1
            after["writes"] = ((before or {}).get("writes", []) + [token])[-WRITES_KEPT:]
            nexts[number] = after
        writes = [
            ReplaceOne({"_id": n, "v": found[n]["v"]}, doc) if n in found else InsertOne(doc)
            for n, doc in nexts.items()
        ]
        try:
            result = self.db.complaints.bulk_write(writes, ordered=False)
            landed = result.matched_count + result.inserted_count == len(writes)
        except BulkWriteError as exc:
            duplicates(exc)
            landed = False
        if not landed:  # which did: those whose document carries the token
            mine = {
                d["_id"] for d in self.db.complaints.find({"_id": {"$in": list(nexts)}, "writes": token}, {"_id": 1})
            }
        moves: Counter[tuple[str, str]] = Counter()
        written = {}
        for number, after in nexts.items():
            if landed or number in mine:
                moves.update(_moves(found.get(number), after))
                written[number] = after
            else:
                written[number] = self._change(number, changes[number], moves)
        self._inc(moves)
        return written

    def _change(self, number, change, moves):
        """One complaint's next document, written alone (compare-and-set on `v`); its
        tallies' moves are added to `moves`."""
        for _ in range(50):
            before = self.db.complaints.find_one({"_id": number})
            after = change(before or {"_id": number})
            if before is None:
                if not self.insert_new(self.db.complaints, {**after, "v": 1}):
                    continue
            else:
                after["v"] = before["v"] + 1
                if not self.db.complaints.replace_one({"_id": number, "v": before["v"]}, after).matched_count:
                    continue
            moves.update(_moves(before, after))
            return after
        raise RuntimeError(f"complaint {number}: too many concurrent changes")

    def _inc(self, moves):
        """Move the tallies ({(tally, path): n}) in one write. A tally is made first (once a
        process), as two first upserts can race and the embedded store then writes neither."""
        by_tally: dict[str, dict[str, int]] = {}
        for (tally, path), n in moves.items():
            if n:
                by_tally.setdefault(tally, {})[f"counts.{path}"] = n
        if not by_tally:
            return
        new = [t for t in by_tally if (self.db.name, t) not in KNOWN_TALLIES]
        if new:
            try:
                self.db.report_tallies.insert_many(
                    [{"_id": t, **_tally_keys(t), "counts": {}} for t in new], ordered=False
                )
            except BulkWriteError as exc:
                duplicates(exc)
            KNOWN_TALLIES.update((self.db.name, t) for t in new)
        self.db.report_tallies.bulk_write(
            [
                UpdateOne({"_id": t}, {"$inc": inc, "$setOnInsert": _tally_keys(t)}, upsert=True)
                for t, inc in by_tally.items()
            ]
        )

    def tallies_of(self, period, mall_id=None):
        if mall_id:
            return list(self.db.report_tallies.find({"_id": reports.tally_id(period, mall_id)}))
        return list(self.db.report_tallies.find({"period": period}))

    def complaint(self, number):
        return self.db.complaints.find_one({"_id": number})

    def drop_read_model(self):
        self.db.complaints.drop()
        self.db.report_tallies.drop()
        KNOWN_TALLIES.difference_update({k for k in KNOWN_TALLIES if k[0] == self.db.name})
        Events.read_model_indexes(self.db)

    def stored_events(self):
        """Every stored event as an envelope, oldest first (the rebuild's input)."""
        for doc in self.events.find({}).sort("occurred_at", ASCENDING):
            yield {
                "event_id": doc["_id"],
                "event_type": doc["event_type"],
                "occurred_at": doc["occurred_at"],
                "mall_id": doc["mall_id"],
                "complaint_no": doc["complaint_no"],
                "payload": doc.get("payload"),
            }

    def final_clocks(self):
        """(clock, outcome) of every clock whose outcome is final, as `_settle` and the sweep counted them."""
        for clock in self.clocks.find({}, {"outbox": 0, "pending_events": 0}):
            if clock.get("breach_reported"):
                yield clock, "breached"
            elif clock.get("outcome") in ("met", "cancelled"):
                yield clock, clock["outcome"]

    # --- improvement actions (R5.3) ----------------------------------------------------------

    def add_action(self, doc):
        self.db.actions.insert_one(doc)
        return doc

    def action(self, action_id):
        return self.get(self.db.actions, action_id, "action")

    def adopt_action(self, action_id, changes):
        return self.db.actions.find_one_and_update(
            {"_id": action_id, "status": "proposed"}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    def count_actions(self, query):
        return self.db.actions.count_documents(query)

    def keep_library_reviews(self, events):
        """R7.14: each mall's monthly library review, as its announcement and its end tell
        it; the end's count of candidates is the last word, whichever comes first."""
        writes = []
        for e in events:
            p, where = e["payload"], {"mall_id": e["mall_id"], "month": e["payload"]["month"]}
            if e["event_type"] == "library_review_due":
                update = {
                    "$set": {**where, "due_at": e["occurred_at"]},
                    "$setOnInsert": {"candidates": p["candidates"]},
                }
            else:
                done = {k: p[k] for k in ("candidates", "added", "passed")}
                update = {"$set": {**where, **done, "done_at": e["occurred_at"], "done_by": p["by"]}}
            writes.append(UpdateOne({"_id": e["complaint_no"]}, update, upsert=True))
        if writes:
            self.db.library_reviews.bulk_write(writes, ordered=False)

    def library_reviews(self, months, mall_id):
        query = {"month": {"$in": list(months)}, **({"mall_id": mall_id} if mall_id else {})}
        return list(
            self.db.library_reviews.find(query, {"_id": 0}).sort([("month", ASCENDING), ("mall_id", ASCENDING)])
        )

    def keep_surveys(self, events):
        """R7.12: each satisfaction survey, as its sending and its answer tell it (either first)."""
        writes = []
        for e in events:
            p = e["payload"]
            seen = {"mall_id": e["mall_id"], "month": p["month"], "channel": p["channel"]}
            if e["event_type"] == "survey_sent":
                seen["sent"] = True
            else:
                seen.update(answered=True, satisfied=p["satisfied"], score=p["score"])
            writes.append(UpdateOne({"_id": p["survey_id"]}, {"$set": seen}, upsert=True))
        if writes:
            self.db.surveys.bulk_write(writes, ordered=False)

    def surveys(self, months, mall_id):
        """The surveys of the rounds of `months` (the months whose customers they asked)."""
        query = {"month": {"$in": list(months)}, **({"mall_id": mall_id} if mall_id else {})}
        return list(self.db.surveys.find(query, {"_id": 0}))

    # --- R7.13: the month's report issued to management and department heads; half-year reviews

    def reports_issued(self, number):
        """Whether every copy of a report (SHXJH-RPT-2026-11) has been issued."""
        return self.db.report_runs.find_one({"_id": number}) is not None

    def issue_report(self, doc):
        """A copy of a report with its event in its outbox, once: False when issued before."""
        return self.insert_new(self.db.report_deliveries, doc)

    def report_done(self, number, now):
        self.insert_new(self.db.report_runs, {"_id": number, "done_at": now})

    def deliveries(self, mall_id, period, limit):
        query = {**({"mall_id": mall_id} if mall_id else {}), **({"period": period} if period else {})}
        return list(
            self.db.report_deliveries.find(query, {"outbox": 0, "pending_events": 0})
            .sort([("period", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )

    def overdue_complaints(self, mall_id, month, department):
        """A department's complaints of a month that missed a handling deadline (the read model)."""
        query = {"mall_id": mall_id, "month": month, "department": department, "overdue": True}
        return [doc["_id"] for doc in self.db.complaints.find(query, {"_id": 1})]

    def tallies_of_months(self, months, mall_id=None):
        query = {"period": {"$in": list(months)}, **({"mall_id": mall_id} if mall_id else {})}
        return list(self.db.report_tallies.find(query))

    def add_review(self, review, found):
        """The review and its decisions' actions; False (nothing more written) when the mall's
        review of that half year is recorded already. The actions go first: their ids follow
        from the review, so a recording that died half-way is finished by its retry."""
        if self.db.reviews.find_one({"_id": review["_id"]}, {"_id": 1}):
            return False
        self.insert_new_many(self.db.actions, found)
        return self.insert_new(self.db.reviews, review)

    def review(self, review_id):
        return self.get(self.db.reviews, review_id, "review")

    def reviews(self, query, limit):
        return list(self.db.reviews.find(query).sort([("period", ASCENDING), ("_id", ASCENDING)]).limit(limit))

    def actions_by_id(self, ids):
        return list(self.db.actions.find({"_id": {"$in": list(ids)}}))

    def claim_proposal(self, pattern_key):
        """True for the first claim of a pattern's window (proposed once, also on redelivery)."""
        return self.insert_new(self.db.proposal_claims, {"_id": pattern_key})

    def join_proposal(self, pattern_key, complaint_nos, recurrences):
        """The complaints join their pattern, each once; the proposal keeps the highest
        recurrence. The complaints are documents of their own, not a list in the proposal:
        a burst of one pattern brings thousands, and each join would rewrite the list."""
        self.insert_new_many(
            self.db.pattern_members,
            [{"_id": f"{pattern_key}|{n}", "pattern_key": pattern_key, "complaint_no": n} for n in complaint_nos],
        )
        self.db.actions.update_one({"pattern_key": pattern_key}, {"$max": {"recurrences": recurrences}})

    def pattern_members(self, pattern_keys):
        """{pattern key: its complaints, sorted} for the actions proposed on those patterns."""
        members = defaultdict(list)
        for doc in self.db.pattern_members.find({"pattern_key": {"$in": list(pattern_keys)}}):
            members[doc["pattern_key"]].append(doc["complaint_no"])
        return {key: sorted(numbers) for key, numbers in members.items()}

    def pattern_complaints(self, mall_id, merchant_id, category, since, until):
        """The complaints of a pattern received in [since, until] (the read model)."""
        query = {
            "mall_id": mall_id,
            "category": category,
            "received_at": {"$gte": since, "$lte": until},
            **({"merchant_id": merchant_id} if merchant_id else {}),
        }
        return [doc["_id"] for doc in self.db.complaints.find(query, {"_id": 1}).limit(500)]

    def close_action(self, action_id, changes):
        return self.db.actions.find_one_and_update(
            {"_id": action_id, "status": "open"}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    def actions(self, query, limit):
        return list(self.db.actions.find(query).sort([("due_date", ASCENDING), ("_id", ASCENDING)]).limit(limit))

    # --- clocks ---------------------------------------------------------------------------------

    def start(self, op, share):
        return self.start_all([op], lambda clock: share)[0]

    def start_all(self, ops, share_of):
        """Start clocks (`share_of(clock)`: its at-risk share) in one write; the clocks as
        started, each stopped already when the event that ends it was applied first."""
        if not ops:
            return []
        writes = []
        for op in ops:
            f = dict(op.fields)
            if f["owner_kind"] is None:  # the case's handler: as the first round's clock names them
                first = self.clocks.find_one({"_id": clocks.clock_id(f["complaint_no"], "resolution")}) or {}
                f.update({k: first.get(k) for k in ("owner", "owner_kind", "department")})
            at_risk_at = clocks.at_risk_at(f["started_at"], f["due_at"], share_of(op.clock))
            writes.append(
                UpdateOne(
                    {"_id": op.clock_id},
                    {
                        "$set": {**f, "clock": op.clock, "at_risk_at": at_risk_at},
                        "$setOnInsert": {"stopped_at": None, **NOT_SETTLED},
                        "$inc": {"version": 1},
                    },
                    upsert=True,
                )
            )
        created = self.clocks.bulk_write(writes, ordered=False).upserted_ids
        # created running (a clock its stop created first stays stopped)
        self._count_clocks(Counter((ops[i].fields["mall_id"], ops[i].clock) for i in created), "open")
        started = {c["_id"]: c for c in self.clocks.find({"_id": {"$in": [op.clock_id for op in ops]}})}
        # Written first, read second: an end applied meanwhile either saw these clocks or is seen here.
        # By complaint number alone: with the event types beside a list of numbers the
        # embedded store reads every event instead of its (complaint_no) index.
        ends: dict[str, list[tuple[str, object]]] = {}
        for e in self.events.find(
            {"complaint_no": {"$in": sorted({c["complaint_no"] for c in started.values()})}},
            {"complaint_no": 1, "event_type": 1, "occurred_at": 1},
        ):
            if e["event_type"] in clocks.LATE_ENDS:
                ends.setdefault(e["complaint_no"], []).append((e["event_type"], e["occurred_at"]))
        late = [
            clocks.Stop(clock["_id"], *end)
            for clock in started.values()
            if clock["stopped_at"] is None and (end := clocks.late_end(clock, ends.get(clock["complaint_no"], [])))
        ]
        stopped = {clock["_id"]: clock for clock in self.stop_all(late)}
        return [stopped.get(op.clock_id, started[op.clock_id]) for op in ops]

    def stop_all(self, stops):
        """Apply `stops` (clocks.Stop, in order) in one write: each clock stopped once, by the
        first stop that reaches it, as if one at a time (`cancelled`: its obligation lapsed);
        a clock whose start has not arrived yet is created stopped. Returns the clocks this
        write stopped, and those stopped before but not settled yet, as they are now."""
        first: dict[str, clocks.Stop] = {}
        for stop in stops:
            first.setdefault(stop.clock_id, stop)
        if not first:
            return []
        ops = list(first.values())
        writes = [
            UpdateOne(
                {"_id": op.clock_id, "stopped_at": None},
                {
                    "$set": {"stopped_at": op.at, "cancelled": op.cancelled},
                    "$setOnInsert": {"due_at": None, **NOT_SETTLED},
                    "$inc": {"version": 1},
                },
                upsert=True,
            )
            for op in ops
        ]
        try:
            created, stopped_before = set(self.clocks.bulk_write(writes, ordered=False).upserted_ids), set()
        except BulkWriteError as exc:  # a clock stopped before (a redelivery) is a duplicate upsert
            stopped_before = duplicates(exc)
            created = {u["index"] for u in exc.details.get("upserted", [])}
        found = {c["_id"]: c for c in self.clocks.find({"_id": {"$in": list(first)}})}
        ran: Counter[tuple[str, str]] = Counter()  # clocks that ran, by (mall, clock): not flagged at risk
        ran_at_risk: Counter[tuple[str, str]] = Counter()  # and flagged
        result = []
        for i, op in enumerate(ops):
            clock = found.get(op.clock_id)
            if clock is None:
                continue
            if i in stopped_before:
                if clock.get("outcome") is None:  # stopped by a try that failed before settling it: settled now
                    result.append(clock)
                continue
            if i not in created and clock.get("due_at") is not None:
                # It ran. Its at_risk_reported is as it was before this stop: the sweep flags running clocks only.
                (ran_at_risk if clock["at_risk_reported"] else ran)[(clock["mall_id"], clock["clock"])] -= 1
            result.append(clock)
        self._count_clocks(ran, "open")
        self._count_clocks(ran_at_risk, "open", "at_risk")
        return result

    def stops_of_kind(self, complaint_no, clock, at):
        """Stops for the running clocks of a kind that started by `at` (a later one is not met by it)."""
        found = self.clocks.find({"complaint_no": complaint_no, "clock": clock, **OPEN}, {"_id": 1, "started_at": 1})
        return [clocks.Stop(doc["_id"], at) for doc in found if doc["started_at"] <= at]

    def closing(self, complaint_no, at):
        """A case closed at `at`: stops for its clocks running then, as `clocks.ending` says."""
        stops = []
        for doc in self.clocks.find({"complaint_no": complaint_no, **OPEN}, {"clock": 1, "started_at": 1}):
            how = clocks.ending(doc["clock"])
            if how and doc.get("started_at") and doc["started_at"] <= at:
                stops.append(clocks.Stop(doc["_id"], at, cancelled=how == "cancel"))
        return stops

    def settle_all(self, outcomes):
        """Write the outcomes of stopped clocks ([(clock as read, outcome)]) in one write, each
        only if the clock did not change since it was read (its version, as `change` does).
        Returns ([(clock as read, as written)], [clocks as read that changed meanwhile])."""
        if not outcomes:
            return [], []
        token = uuid.uuid4().hex  # marks this write's clocks, to tell which of them landed
        self.clocks.bulk_write(
            [
                UpdateOne(
                    {"_id": clock["_id"], "version": clock.get("version")},
                    {"$set": {"outcome": outcome, "settled_by": token}, "$inc": {"version": 1}},
                )
                for clock, outcome in outcomes
            ],
            ordered=False,
        )
        ids = [clock["_id"] for clock, _ in outcomes]
        landed = {c["_id"]: c for c in self.clocks.find({"_id": {"$in": ids}, "settled_by": token})}
        return (
            [(clock, landed[clock["_id"]]) for clock, _ in outcomes if clock["_id"] in landed],
            [clock for clock, _ in outcomes if clock["_id"] not in landed],
        )

    def promise(self, op, share):
        """A promised time (R3.2): moves the running promise unless it breached or is newer;
        otherwise a new promised clock."""
        f = op.start.fields
        for running in self.clocks.find({"complaint_no": op.complaint_no, "clock": "promised", **OPEN}):
            if running.get("promised_again_at", running["started_at"]) > f["started_at"]:
                return None  # an older promise delivered late: the newer one stands
            if not running["breach_reported"]:
                # update_one, then a read: the embedded store scans the collection for a find_one_and_update
                moved = self.clocks.update_one(
                    {"_id": running["_id"], "stopped_at": None, "breach_reported": False},
                    {
                        "$set": {
                            "due_at": f["due_at"],
                            "owner": f["owner"],
                            "promised_again_at": f["started_at"],
                            "at_risk_at": clocks.at_risk_at(running["started_at"], f["due_at"], share),
                        },
                        "$inc": {"version": 1},
                    },
                )
                if moved.matched_count:
                    return self.clocks.find_one({"_id": running["_id"]})
        return self.start(op.start, share)

    def triaged(self, complaint_no):
        """Whether the complaint's complaint_triaged has started its resolution clock."""
        clock = self.clocks.find_one({"_id": clocks.clock_id(complaint_no, "resolution")}, {"started_at": 1})
        return bool(clock and clock.get("started_at"))

    def reassign(self, op):
        self.clocks.update_many(
            {"complaint_no": op.complaint_no, "clock": {"$in": list(clocks.HANDLER_CLOCKS)}, **OPEN},
            {"$set": {"owner": op.owner, "owner_kind": "person", "department": op.department}, "$inc": {"version": 1}},
        )

    def move(self, op, share):
        clock = self.clocks.find_one({"_id": op.clock_id})
        if clock is None or clock.get("started_at") is None:
            return None
        self.clocks.update_one(
            {"_id": op.clock_id},
            {
                "$set": {
                    "due_at": op.due_at,
                    "department": op.department,
                    "at_risk_at": clocks.at_risk_at(clock["started_at"], op.due_at, share),
                },
                "$inc": {"version": 1},
            },
        )
        return self.clocks.find_one({"_id": op.clock_id})

    def reaching_risk(self, now, limit):
        """Running clocks past their at-risk point that the sweep has not flagged (see `past_risk_point`)."""
        return list(self.clocks.find(past_risk_point(now), {"outbox": 0}).limit(limit))

    def reaching_deadline(self, now, limit):
        """Running clocks past their deadline that the sweep has not flagged breached."""
        return list(self.clocks.find(due(now), {"outbox": 0}).limit(limit))

    def flag_breaches(self, found, now):
        """Flag `found` [(clock as read, its sla_breached)] breached in one bulk write;
        returns the pairs written (see `_flag`)."""
        return self._flag(found, now, {"breach_reported": True, "at_risk_reported": True}, "breach_event_id")

    def flag_risks(self, found, now):
        """Flag `found` [(clock as read, its sla_at_risk)] at risk in one bulk write."""
        return self._flag(found, now, {"at_risk_reported": True}, "at_risk_event_id")

    def _flag(self, found, now, flags, event_field):
        """Each clock's flags and its event, pushed to its outbox, in one write that is a
        compare-and-set on the version the sweep read: a clock written since (stopped,
        moved, flagged by another sweep or by `_settle`) is left as it is, for the next
        sweep to read again. Every flag is written once per clock, so each event is. All
        in one bulk write; which writes took is read back only when some did not."""
        if not found:
            return []
        result = self.clocks.bulk_write(
            [
                UpdateOne(
                    {"_id": clock["_id"], "version": clock["version"]},
                    with_outbox({"$set": {**flags, event_field: event["event_id"]}}, [event], now),
                )
                for clock, event in found
            ],
            ordered=False,
        )
        if result.matched_count < len(found):
            written = {
                c["_id"]: c.get(event_field)
                for c in self.clocks.find({"_id": {"$in": [c["_id"] for c, _ in found]}}, {event_field: 1})
            }
            found = [(c, e) for c, e in found if written.get(c["_id"]) == e["event_id"]]
        self._count_clocks(
            Counter((c["mall_id"], c["clock"]) for c, _ in found if not c["at_risk_reported"]), "at_risk"
        )
        return found

    def pass_over_risks(self, overdue):
        """Clocks past their deadline before a sweep saw their at-risk point: flagged at
        risk without a warning (their breach comes instead), so that the at-risk query
        does not find them again. Returns how many it flagged."""
        groups: dict[tuple[str, str], list[str]] = {}
        passed = 0
        for clock in overdue:
            groups.setdefault((clock["mall_id"], clock["clock"]), []).append(clock["_id"])
        for key, ids in groups.items():
            flagged = self.clocks.update_many(
                {"_id": {"$in": ids}, "stopped_at": None, "at_risk_reported": False},
                {"$set": {"at_risk_reported": True}, "$inc": {"version": 1}},
            )
            self._count_clocks({key: flagged.modified_count}, "at_risk")
            passed += flagged.modified_count
        return passed

    def _count_clocks(self, moves, *fields):
        """Move the running tallies behind the gauges: `moves` {(mall_id, clock): n} added to
        each of `fields` ("open", "at_risk"; None skipped)."""
        counted = [f for f in fields if f]
        for (mall_id, clock), n in moves.items():
            if not n or not counted:
                continue
            for _ in range(5):  # two first upserts of one tally can race (see mongo.next_sequence)
                try:
                    self.db.tallies.update_one(
                        {"_id": f"clocks:{mall_id}|{clock}"},
                        {"$inc": {f: n for f in counted}, "$setOnInsert": {"mall_id": mall_id, "clock": clock}},
                        upsert=True,
                    )
                    break
                except DuplicateKeyError:
                    continue
            else:
                raise RuntimeError(f"tally of {mall_id} {clock} clocks not updated")

    def clock_tallies(self):
        """{(mall_id, clock): (open, at risk)}: the running tallies the gauges show."""
        return {
            (t["mall_id"], t["clock"]): (t.get("open", 0), t.get("at_risk", 0))
            for t in self.db.tallies.find({"_id": {"$gt": "clocks:", "$lt": "clocks;"}})
        }

    def running_clocks(self):
        """The clocks still running (with a deadline), only the fields live.py counts. All
        malls: the query names only indexed fields (stopped_at, due_at); live.py picks a mall."""
        return self.clocks.find(
            OPEN, {"_id": 0, "mall_id": 1, "complaint_no": 1, "clock": 1, "at_risk_at": 1, "due_at": 1}
        )


class Events(MongoDatabase):
    def indexes(self, db):
        # The embedded store uses an index only when it holds every field a query names.
        db.events.create_index([("event_type", ASCENDING), ("mall_id", ASCENDING)])
        db.events.create_index([("complaint_no", ASCENDING)])
        db.events.create_index([("complaint_no", ASCENDING), ("event_type", ASCENDING)])
        db.clocks.create_index([("stopped_at", ASCENDING), ("breach_reported", ASCENDING), ("due_at", ASCENDING)])
        db.clocks.create_index(
            [
                ("stopped_at", ASCENDING),
                ("at_risk_reported", ASCENDING),
                ("at_risk_at", ASCENDING),
                ("due_at", ASCENDING),
            ]
        )
        db.clocks.create_index(
            [("complaint_no", ASCENDING), ("clock", ASCENDING), ("stopped_at", ASCENDING), ("due_at", ASCENDING)]
        )
        db.clocks.create_index([("stopped_at", ASCENDING), ("due_at", ASCENDING)])
        db.clocks.create_index([("pending_events", ASCENDING)])
        db.clocks.create_index([("_id", ASCENDING), ("version", ASCENDING)])  # unit_of_work's compare-and-set
        db.events.create_index([("occurred_at", ASCENDING)])
        db.actions.create_index([("mall_id", ASCENDING), ("status", ASCENDING)])
        db.actions.create_index([("status", ASCENDING)])
        db.actions.create_index([("pattern_key", ASCENDING)])
        db.pattern_members.create_index([("pattern_key", ASCENDING)])
        db.report_deliveries.create_index([("pending_events", ASCENDING)])  # the outbox relay's
        db.report_deliveries.create_index([("mall_id", ASCENDING), ("period", ASCENDING)])
        db.reviews.create_index([("mall_id", ASCENDING), ("period", ASCENDING)])
        self.read_model_indexes(db)

    @staticmethod
    def read_model_indexes(db):
        db.report_tallies.create_index([("period", ASCENDING)])
        db.complaints.create_index(  # a department's overdue complaints of a month (R7.13)
            [("mall_id", ASCENDING), ("month", ASCENDING), ("department", ASCENDING), ("overdue", ASCENDING)]
        )

    def wrap(self, db):
        return EventLog(db)
