"""The live SLA picture (issue 9's ops dashboard) as a plain function: what is open now,
at risk and breached, per stage and per mall, from the clocks still running. No I/O
and no clock of its own: the caller passes the running clocks and `now`.

A running clock is in one state at `now`: breached once its deadline has passed
(`due_at <= now`), at risk from its at-risk point until then (`at_risk_at <= now <
due_at`, the point the policy's `at_risk_share` set when the clock started), on time
before. `by_stage` counts clocks: one row per clock name, the stage the complaint waits
in. The totals and `by_mall` count complaints (and adverse-event reports, which have
clocks too): a complaint with several clocks running counts once, in the state of its
worst clock (breached, then at risk), so `open` is what the desk would count as open
and `at_risk + breached <= open`.
"""

STATES = ("on_time", "at_risk", "breached")
_WORST = {state: rank for rank, state in enumerate(STATES)}


def state_of(clock, now):
    """on_time, at_risk or breached: a running clock (with `at_risk_at` and `due_at`) at `now`."""
    if clock["due_at"] <= now:
        return "breached"
    if clock["at_risk_at"] <= now:
        return "at_risk"
    return "on_time"


def _row(**keys):
    return {**keys, "open": 0, "at_risk": 0, "breached": 0}


def _add(row, state):
    row["open"] += 1
    if state != "on_time":
        row[state] += 1


def satisfaction(answers, mall_id=None):
    """Every answer customers gave so far (a dissatisfied one stays counted after a later
    satisfied one), from the tallies `mallcare_satisfaction_ratio` reads: {mall: (satisfied,
    answered)}, for one mall or the chain."""
    picked = [counts for mall, counts in answers.items() if mall_id in (None, mall)]
    satisfied, answered = sum(s for s, _ in picked), sum(a for _, a in picked)
    return {
        "answered": answered,
        "satisfied": satisfied,
        "dissatisfied": answered - satisfied,
        "share": round(satisfied / answered, 4) if answered else None,
    }


def live_report(running, now, shares, mall_id=None, malls=(), answers=None):
    """The live report over `running` clocks (dicts with mall_id, complaint_no, clock,
    at_risk_at, due_at), for one mall or the chain (mall_id None). `shares`: the policy's
    at-risk share per clock name, answered as is so that a screen marks a deadline by the
    same rule. `malls`: the malls `by_mall` lists even with nothing open (the registry's).
    `answers`: the answer tallies for `satisfaction`."""
    stages, worst = {}, {}
    for c in running:
        if mall_id is not None and c["mall_id"] != mall_id:
            continue
        state = state_of(c, now)
        _add(stages.setdefault(c["clock"], _row(stage=c["clock"])), state)
        key = (c["mall_id"], c["complaint_no"])
        worst[key] = max(worst.get(key, "on_time"), state, key=_WORST.__getitem__)
    totals = _row()
    by_mall = {m: _row(mall_id=m) for m in malls if mall_id is None or m == mall_id}
    for (mall, _), state in worst.items():
        _add(totals, state)
        _add(by_mall.setdefault(mall, _row(mall_id=mall)), state)
    order = {name: i for i, name in enumerate(shares)}
    return {
        "as_of": now,
        "mall_id": mall_id,
        **totals,
        "by_stage": sorted(stages.values(), key=lambda r: (order.get(r["stage"], len(order)), r["stage"])),
        # the malls that need attention first: most breached, then most at risk, then most open
        "by_mall": sorted(by_mall.values(), key=lambda r: (-r["breached"], -r["at_risk"], -r["open"], r["mall_id"])),
        "at_risk_share": dict(shares),
        "satisfaction": satisfaction(answers or {}, mall_id),
    }
