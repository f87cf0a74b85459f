"""R5.5, R6.2: the alert rules and the Grafana dashboard watch the metrics the services
really expose, and compose deploys them.

R5.5 asks that response-time and quality standards are monitored and deviations
corrected; R6.2 asks for Prometheus metrics on SLA breaches and the service health that
explains them. This module checks the ops side of that, without Prometheus or Grafana
running (there is no Docker engine in CI):

- deploy/prometheus/alerts.yml: every expression parses and type-checks (promql-parser,
  pinned in requirements-dev.txt, so this runs everywhere); every alert has a severity, a
  summary, a description and a runbook pointer to a section of docs/runbook.md; the
  annotations only use labels the expression keeps. promtool (Debian's `prometheus`
  package, which scripts/test.sh installs as it does Chromium) also runs `promtool check
  config`, `check rules` and the rule unit tests in deploy/prometheus/alerts_test.yml.
- Every metric named in a rule or a dashboard query is declared in services/ (found by
  reading the prometheus_client declarations there), with the labels the query matches
  on and used as its type allows (rate/increase only on counters and histogram parts),
  so renaming a metric or a label in the code breaks this test.
- deploy/grafana/: the dashboard has the panels ops need, each query filtered by the
  mall variable where the metric has a mall; provisioning points at the compose
  Prometheus and at the path the dashboard is mounted on.
- docker-compose.yml mounts all of it, read-only, and Grafana's password must be supplied.

The checks are functions that return the problems they find; each is also run on a
deliberately broken copy, to show it can fail.
"""

import ast
import copy
import json
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import promql_parser
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "mallcare.yml"
DASHBOARD = GRAFANA / "dashboards" / "mallcare-sla.json"
RUNBOOK = ROOT / "docs" / "runbook.md"
README = ROOT / "README.md"

# What ops must be told about (the list; docs/runbook.md explains each).
REQUIRED_ALERTS = {
    # alert: (metric it watches, labels it is reported by, shortest acceptable `for`)
    "MallcareSlaBreachRateHigh": ("mallcare_sla_breaches_total", {"mall_id"}, None),
    "MallcareSlaAtRiskBacklog": ("mallcare_sla_clocks_at_risk", {"mall_id"}, "10m"),
    "MallcareSatisfactionLow": ("mallcare_satisfaction_ratio", {"mall_id"}, "30m"),
    "MallcareServiceDown": ("up", {"job", "instance"}, "1m"),
    "MallcareDeadLettersWaiting": ("mallcare_dead_letters", set(), "5m"),
    "MallcareOutboxStuck": ("mallcare_outbox_pending", {"service", "collection"}, "10m"),
}
SEVERITIES = {"critical", "warning"}

# Dashboard panels: title -> (series it must query, the labels it is broken down by).
REQUIRED_PANELS = {
    "SLA compliance per mall": ("mallcare_sla_clocks_ended_total", {"mall_id"}),
    "SLA compliance per department": ("mallcare_sla_clocks_ended_total", {"department"}),
    "SLA breaches by clock": ("mallcare_sla_breaches_total", {"clock"}),
    "Open clocks by stage": ("mallcare_sla_clocks_open", {"clock"}),
    "Clocks at risk by stage": ("mallcare_sla_clocks_at_risk", {"clock"}),
    "Satisfaction per mall vs 85% target": ("mallcare_satisfaction_ratio", {"mall_id"}),
    "Complaints registered by channel": ("mallcare_intake_complaints_total", {"channel"}),
    "Dead letters waiting": ("mallcare_dead_letters", set()),
    "Breach detection lag p95 (last hour)": ("mallcare_sla_detection_lag_seconds_bucket", set()),
}
SLA_OUTCOMES = ("met", "met_late", "breached")

# Grafana's built-in variables, replaced by a plausible value before parsing.
GRAFANA_INTERVALS = ("$__rate_interval", "$__range", "$__interval")


# Metrics declared in the code -----------------------------------------------------------

KINDS = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}


def declared_metrics(files):
    """{metric name as declared: (kind, label names or None when not literal)} for every
    prometheus_client Counter/Gauge/Histogram/Summary(...) with a literal name in files."""
    found = {}
    for path in files:
        for node in ast.walk(ast.parse(Path(path).read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if (
                func not in KINDS
                or not node.args
                or not isinstance(node.args[0], ast.Constant)
                or not isinstance(node.args[0].value, str)
            ):
                continue
            labels_node = (
                node.args[2]
                if len(node.args) > 2
                else next((k.value for k in node.keywords if k.arg == "labelnames"), None)
            )
            if labels_node is None:
                labels = set()
            else:
                try:
                    labels = set(ast.literal_eval(labels_node))
                except ValueError:
                    labels = None  # built at run time: not checked
            found[node.args[0].value] = (KINDS[func], labels)
    return found


def service_sources():
    return sorted((ROOT / "services").glob("*/*/*.py"))


def exposed_series(declared, target_labels):
    """{series name as Prometheus stores it: (kind of use, labels)}, following
    prometheus_client's naming (a counter gets _total, a histogram _bucket/_sum/_count)."""
    series = {"up": ("gauge", set(target_labels))}
    for name, (kind, labels) in declared.items():
        labels = None if labels is None else labels | target_labels
        if kind == "counter":
            base = name[: -len("_total")] if name.endswith("_total") else name
            series[base + "_total"] = ("counter", labels)
            series[base + "_created"] = ("gauge", labels)
        elif kind in ("histogram", "summary"):
            series[name + "_sum"] = ("counter", labels)
            series[name + "_count"] = ("counter", labels)
            series[name + "_created"] = ("gauge", labels)
            if kind == "histogram":
                series[name + "_bucket"] = ("counter", None if labels is None else labels | {"le"})
            else:
                series[name] = ("gauge", None if labels is None else labels | {"quantile"})
        else:
            series[name] = ("gauge", labels)
    return series


def target_labels(prometheus):
    """Labels every scraped series carries: job, instance, and the static-config labels
    that every target has (`service`)."""
    statics = [
        static.get("labels", {}) for job in prometheus["scrape_configs"] for static in job.get("static_configs", [])
    ]
    return {"job", "instance"} | set.intersection(*(set(labels) for labels in statics))


# PromQL -----------------------------------------------------------------------------------


def parse(expr):
    return promql_parser.parse(expr)


def selectors(node):
    found = []
    promql_parser.walk(node, lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None)
    return found


def selector_name(selector):
    if selector.name:
        return selector.name
    return next((m.value for m in selector.matchers.matchers if m.name == "__name__"), None)


def output_labels(node, series):
    """The labels an expression's result keeps (None: not known statically)."""
    if isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr)):
        return output_labels(node.expr, series)
    if isinstance(node, promql_parser.MatrixSelector):
        return output_labels(node.vector_selector, series)
    if isinstance(node, promql_parser.VectorSelector):
        return series.get(selector_name(node), (None, None))[1]
    if isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is None:
            return set()
        if node.modifier.type == promql_parser.AggModifierType.By:
            return set(node.modifier.labels)
        inner = output_labels(node.expr, series)
        return None if inner is None else inner - set(node.modifier.labels)
    if isinstance(node, promql_parser.BinaryExpr):
        if isinstance(node.lhs, promql_parser.NumberLiteral):
            return output_labels(node.rhs, series)
        return output_labels(node.lhs, series)
    if isinstance(node, promql_parser.Call):
        if node.func.name == "histogram_quantile":
            inner = output_labels(node.args[1], series)
            return None if inner is None else inner - {"le"}
        if node.func.name in ("vector", "time", "scalar"):
            return set()
        vectors = [
            arg for arg in node.args if not isinstance(arg, (promql_parser.NumberLiteral, promql_parser.StringLiteral))
        ]
        return output_labels(vectors[0], series) if vectors else set()
    return set()


COUNTER_FUNCTIONS = {"rate", "increase", "irate", "resets"}


def promql_problems(where, expr, series):
    """Parse errors, metrics not declared in the code, labels they do not have, and
    counter functions applied to what is not a counter."""
    try:
        tree = parse(expr)
    except ValueError as exc:
        return [f"{where}: does not parse: {exc}: {expr!r}"]
    problems = []
    for selector in selectors(tree):
        name = selector_name(selector)
        if name not in series:
            problems.append(f"{where}: {name} is not declared in services/ (renamed?)")
            continue
        labels = series[name][1]
        if labels is None:
            continue
        for matcher in selector.matchers.matchers:
            if matcher.name != "__name__" and matcher.name not in labels:
                problems.append(f"{where}: {name} has no label {matcher.name} (it has {sorted(labels)})")

    def check_call(node):
        if isinstance(node, promql_parser.Call) and node.func.name in COUNTER_FUNCTIONS:
            for selector in selectors(node.args[0]):
                kind = series.get(selector_name(selector), ("counter",))[0]
                if kind != "counter":
                    problems.append(
                        f"{where}: {node.func.name}() over {selector_name(selector)}, a {kind}, not a counter"
                    )
        if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
            names = {selector_name(s) for s in selectors(node.args[1])}
            if not all(name.endswith("_bucket") for name in names) or "le" not in (
                output_labels(node.args[1], series) or set()
            ):
                problems.append(f"{where}: histogram_quantile() needs _bucket series kept by le")

    promql_parser.walk(tree, check_call)
    return problems


# Alert rules ---------------------------------------------------------------------------------

TEMPLATE = re.compile(r"{{(.*?)}}", re.S)
TEMPLATE_OK = re.compile(
    r'\s*\$(labels\.(?P<label>\w+)|value)(\s*\|\s*(printf "%[.0-9]*[dfgs]"|humanize\w*|title|toUpper))?\s*'
)


def runbook_anchors():
    """GitHub's anchors for the headings of docs/runbook.md."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def rules(doc):
    return [rule for group in doc["groups"] for rule in group["rules"]]


def rule_problems(doc, series, anchors):
    problems = []
    names = [rule.get("alert") for rule in rules(doc)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{name}: defined twice")
    for rule in rules(doc):
        name = rule.get("alert") or rule.get("record")
        problems += promql_problems(name, rule["expr"], series)
        if "alert" not in rule:
            continue
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity label must be one of {sorted(SEVERITIES)}")
        for key in ("summary", "description", "runbook_url"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: no {key} annotation")
        runbook = str(annotations.get("runbook_url", ""))
        path, _, anchor = runbook.partition("#")
        if runbook and (path != "docs/runbook.md" or anchor not in anchors):
            problems.append(f"{name}: runbook_url {runbook} is not a heading of docs/runbook.md")
        try:
            kept = output_labels(parse(rule["expr"]), series)
        except ValueError:
            kept = None
        for key, text in annotations.items():
            for expression in TEMPLATE.findall(str(text)):
                used = TEMPLATE_OK.fullmatch(expression)
                if not used:
                    problems.append(f"{name}: {key} has a template promtool may refuse: {{{{{expression}}}}}")
                elif used.group("label") and kept is not None and used.group("label") not in kept:
                    problems.append(
                        f"{name}: {key} shows $labels.{used.group('label')}, "
                        f"which the expression does not keep ({sorted(kept)})"
                    )
    return problems


def required_alert_problems(doc, series):
    problems = []
    by_name = {rule.get("alert"): rule for rule in rules(doc)}
    for name, (metric, kept, shortest) in REQUIRED_ALERTS.items():
        rule = by_name.get(name)
        if rule is None:
            problems.append(f"{name}: missing")
            continue
        tree = parse(rule["expr"])
        if metric not in {selector_name(s) for s in selectors(tree)}:
            problems.append(f"{name}: does not watch {metric}")
        labels = output_labels(tree, series)
        if labels is None or not kept <= labels or (not kept and labels):
            problems.append(f"{name}: reported by {labels}, expected {sorted(kept) or 'nothing'}")
        if shortest and seconds(rule.get("for", "0s")) < seconds(shortest):
            problems.append(f"{name}: for {rule.get('for', '0s')}, expected at least {shortest}")
    return problems


def seconds(duration):
    return promql_parser.parse_duration(duration).total_seconds()


# Dashboard ----------------------------------------------------------------------------------


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def grafana_to_promql(expr, variables):
    for name in GRAFANA_INTERVALS:
        expr = expr.replace(name, "5m")
    for name in variables:  # a marker that still parses as a regex
        expr = re.sub(r"\$(\{" + name + r"\}|" + name + r"\b)", f"__var_{name}__", expr)
    return expr


def dashboard_problems(dashboard, series, datasource_uid):
    problems = []
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    mall = variables.get("mall")
    query = json.dumps((mall or {}).get("query"))
    if not mall or "label_values" not in query or "mall_id" not in query:
        problems.append("no template variable `mall` listing the mall_id values")
    elif not (mall.get("multi") and mall.get("includeAll") and mall.get("allValue") == ".*"):
        problems.append("the mall variable must allow several malls and All (.*)")
    if dashboard.get("uid") != "mallcare-sla":
        problems.append("dashboard uid changed: links to it break")
    by_title = {}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        by_title[panel["title"]] = panel
        for source in [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]:
            if source is not None and source.get("uid") != datasource_uid:
                problems.append(f"{panel['title']}: datasource {source} is not the provisioned {datasource_uid}")
        if not panel.get("targets"):
            problems.append(f"{panel['title']}: no query")
        for target in panel.get("targets", []):
            promql = grafana_to_promql(target["expr"], variables)
            leftover = re.findall(r"\$\{?\w+", promql)
            if leftover:
                problems.append(f"{panel['title']}: unknown variable {leftover}")
            problems += promql_problems(panel["title"], promql, series)
            try:
                tree = parse(promql)
            except ValueError:
                continue
            for selector in selectors(tree):
                labels = series.get(selector_name(selector), (None, None))[1] or set()
                if "mall_id" in labels and not any(
                    m.name == "mall_id" and str(m.op).endswith(".Re") and m.value == "__var_mall__"
                    for m in selector.matchers.matchers
                ):
                    problems.append(f'{panel["title"]}: {selector_name(selector)} not filtered by mall_id=~"$mall"')
    for title, (metric, broken_down_by) in REQUIRED_PANELS.items():
        panel = by_title.get(title)
        if panel is None:
            problems.append(f"panel {title!r} missing")
            continue
        trees = [parse(grafana_to_promql(t["expr"], variables)) for t in panel["targets"]]
        if not any(metric in {selector_name(s) for s in selectors(tree)} for tree in trees):
            problems.append(f"{title}: does not query {metric}")
        if not any(output_labels(tree, series) == broken_down_by for tree in trees):
            problems.append(f"{title}: not broken down by {sorted(broken_down_by) or 'nothing'}")
    for title in ("SLA compliance per mall", "SLA compliance per department"):
        if title in by_title:
            problems += compliance_problems(title, by_title[title], variables)
    satisfaction = by_title.get("Satisfaction per mall vs 85% target")
    if satisfaction:
        defaults = satisfaction["fieldConfig"]["defaults"]
        steps = [step.get("value") for step in defaults.get("thresholds", {}).get("steps", [])]
        if 0.85 not in steps or "line" not in defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", ""):
            problems.append("satisfaction: no line at the 85% target")
    return problems


def compliance_problems(title, panel, variables):
    """met / (met + met_late + breached), from mallcare_sla_clocks_ended_total."""
    tree = parse(grafana_to_promql(panel["targets"][0]["expr"], variables))
    while isinstance(tree, promql_parser.ParenExpr):
        tree = tree.expr
    if not isinstance(tree, promql_parser.BinaryExpr) or str(tree.op) != "/":
        return [f"{title}: not a ratio"]

    def outcomes(side):
        kept = set()
        for selector in selectors(side):
            matchers = [m for m in selector.matchers.matchers if m.name == "outcome"]
            for outcome in SLA_OUTCOMES + ("other",):
                if all(matches(m, outcome) for m in matchers):
                    kept.add(outcome)
        return kept

    problems = []
    if outcomes(tree.lhs) != {"met"}:
        problems.append(f"{title}: numerator counts {sorted(outcomes(tree.lhs))}, not only met")
    if not set(SLA_OUTCOMES) <= outcomes(tree.rhs):
        problems.append(f"{title}: denominator counts {sorted(outcomes(tree.rhs))}, not met, met_late and breached")
    return problems


def matches(matcher, value):
    op = str(matcher.op)
    if op.endswith("NotEqual"):
        return value != matcher.value
    if op.endswith("NotRe"):
        return not re.fullmatch(matcher.value, value)
    if op.endswith("Re"):
        return bool(re.fullmatch(matcher.value, value))
    return value == matcher.value


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alerts():
    return yaml.safe_load(ALERTS.read_text())


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def declared():
    return declared_metrics(service_sources())


@pytest.fixture(scope="module")
def series(declared, prometheus):
    return exposed_series(declared, target_labels(prometheus))


@pytest.fixture(scope="module")
def datasource():
    return yaml.safe_load(DATASOURCES.read_text())["datasources"][0]


def mounts(compose, service):
    """{container path: (source, read-only)} of a service's bind mounts."""
    found = {}
    for volume in compose["services"][service].get("volumes", []):
        parts = volume.split(":")
        if parts[0].startswith("."):
            found[parts[1]] = (parts[0], parts[2:] == ["ro"])
    return found


def promtool():
    """promtool's path; the alert rules' unit tests run in every test run, never skipped."""
    found = shutil.which("promtool")
    assert found, "promtool is not on PATH: scripts/test.sh installs Debian's prometheus package for it"
    return found


# (a) the rules ----------------------------------------------------------------------------------


def test_the_code_declares_the_metrics_ops_watch(declared):
    """The scan of services/ finds the SLA metrics with their labels (if it found nothing,
    every later check would be vacuous)."""
    assert declared["mallcare_sla_breaches_total"] == (
        "counter",
        {"mall_id", "clock", "category", "risk_level", "department"},
    )
    assert declared["mallcare_sla_clocks_ended_total"] == ("counter", {"mall_id", "clock", "department", "outcome"})
    assert declared["mallcare_dead_letters"] == ("gauge", set())
    assert declared["mallcare_sla_detection_lag_seconds"][0] == "histogram"
    assert declared["mallcare_outbox_pending"] == ("gauge", {"service", "collection"})


def test_scrape_targets_carry_the_labels_alerts_show(prometheus):
    assert target_labels(prometheus) >= {"job", "instance", "service"}


def test_prometheus_loads_the_rules_file(prometheus):
    assert prometheus["rule_files"] == ["alerts.yml"]
    assert (PROMETHEUS_DIR / prometheus["rule_files"][0]).is_file()


def test_alert_rules_are_valid_and_complete(alerts, series):
    assert rule_problems(alerts, series, runbook_anchors()) == []


def test_every_required_alert_is_there(alerts, series):
    assert required_alert_problems(alerts, series) == []


def test_thresholds_are_the_agreed_ones(alerts):
    by_name = {rule["alert"]: rule for rule in rules(alerts)}
    assert "0.85" in by_name["MallcareSatisfactionLow"]["expr"]
    assert "mallcare_revisit_answers_total" in by_name["MallcareSatisfactionLow"]["expr"]  # only where answers exist
    assert "[15m]" in by_name["MallcareSlaBreachRateHigh"]["expr"]
    assert re.search(r"\bup\s*==\s*0", by_name["MallcareServiceDown"]["expr"])


@pytest.mark.parametrize(
    "breakage, complaint",
    [
        (
            lambda doc: rules(doc)[0].__setitem__(
                "expr", "sum by (mall_id (increase(mallcare_sla_breaches_total[15m]))"
            ),
            "does not parse",
        ),
        (lambda doc: rules(doc)[0].__setitem__("expr", "rate(mallcare_sla_breaches_total) > 1"), "does not parse"),
        (lambda doc: rules(doc)[0]["labels"].pop("severity"), "severity"),
        (lambda doc: rules(doc)[1]["labels"].__setitem__("severity", "page-me"), "severity"),
        (lambda doc: rules(doc)[0]["annotations"].pop("summary"), "no summary"),
        (lambda doc: rules(doc)[0]["annotations"].__setitem__("runbook_url", "docs/runbook.md#nowhere"), "runbook"),
        (
            lambda doc: rules(doc)[0]["annotations"].__setitem__("summary", "{{ $labels.clock }} breached"),
            "does not keep",
        ),
        (
            lambda doc: rules(doc)[0]["annotations"].__setitem__("summary", '{{ $value | printf \\"%.0f\\" }}'),
            "template",
        ),
        (
            lambda doc: rules(doc)[0].__setitem__(
                "expr", "sum by (mall_id) (increase(mallcare_sla_breach_total[15m])) > 3"
            ),
            "not declared",
        ),
        (
            lambda doc: rules(doc)[0].__setitem__(
                "expr", 'sum by (mall_id) (increase(mallcare_sla_breaches_total{risk="high"}[15m])) > 3'
            ),
            "no label risk",
        ),
        (
            lambda doc: rules(doc)[1].__setitem__(
                "expr", "sum by (mall_id) (rate(mallcare_sla_clocks_at_risk[10m])) > 10"
            ),
            "not a counter",
        ),
        (lambda doc: doc["groups"][-1]["rules"].append(dict(rules(doc)[0])), "defined twice"),
    ],
    ids=[
        "syntax",
        "type",
        "no-severity",
        "unknown-severity",
        "no-summary",
        "dead-runbook-link",
        "label-aggregated-away",
        "escaped-quote-in-template",
        "renamed-metric",
        "unknown-label",
        "rate-of-a-gauge",
        "duplicate",
    ],
)
def test_rule_checks_reject_a_broken_copy(alerts, series, breakage, complaint):
    broken = copy.deepcopy(alerts)
    breakage(broken)
    problems = rule_problems(broken, series, runbook_anchors())
    assert any(complaint in problem for problem in problems), problems


@pytest.mark.parametrize(
    "breakage, complaint",
    [
        (lambda doc: doc["groups"][1]["rules"].pop(0), "MallcareServiceDown: missing"),
        (
            lambda doc: rules(doc)[0].__setitem__("expr", "sum (increase(mallcare_sla_breaches_total[15m])) > 3"),
            "reported by",
        ),
        (lambda doc: rules(doc)[3].__setitem__("for", "10s"), "at least 1m"),
    ],
    ids=["alert-removed", "not-per-mall", "fires-too-soon"],
)
def test_required_alert_check_rejects_a_broken_copy(alerts, series, breakage, complaint):
    broken = copy.deepcopy(alerts)
    breakage(broken)
    assert any(complaint in problem for problem in required_alert_problems(broken, series))


def test_a_metric_renamed_in_the_code_breaks_the_check(tmp_path, alerts, prometheus):
    """Declared metrics come from the code itself: rename one there and the rules fail."""
    sources = service_sources()
    metrics_py = next(path for path in sources if "mallcare_dead_letters" in path.read_text())
    renamed = tmp_path / "metrics.py"
    renamed.write_text(metrics_py.read_text().replace('"mallcare_dead_letters"', '"mallcare_dlq_depth"'))
    series = exposed_series(
        declared_metrics([p for p in sources if p != metrics_py] + [renamed]), target_labels(prometheus)
    )
    problems = rule_problems(alerts, series, runbook_anchors())
    assert any("mallcare_dead_letters is not declared" in problem for problem in problems), problems


def test_promtool_accepts_the_config_and_rules():
    for args in (
        ["check", "config", PROMETHEUS.name],
        ["check", "rules", ALERTS.name],
        ["test", "rules", ALERTS_TEST.name],
    ):
        result = subprocess.run([promtool(), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_promtool_rule_tests_can_fail(tmp_path):
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    (tmp_path / ALERTS.name).write_text(ALERTS.read_text().replace("> 10\n", "> 20\n"))
    result = subprocess.run(
        [promtool(), "test", "rules", ALERTS_TEST.name], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "MallcareSlaAtRiskBacklog" in result.stdout + result.stderr


# (b) the dashboard -------------------------------------------------------------------------------


def test_dashboard_has_the_panels_ops_need(dashboard, series, datasource):
    assert dashboard_problems(dashboard, series, datasource["uid"]) == []


def test_dashboard_panels_do_not_overlap(dashboard):
    cells = {}
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        assert grid["x"] + grid["w"] <= 24
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


def find_panel(doc, title):
    return next(p for p in panels(doc) if p.get("title") == title)


@pytest.mark.parametrize(
    "breakage, complaint",
    [
        (lambda doc: doc["panels"].remove(find_panel(doc, "Dead letters waiting")), "'Dead letters waiting' missing"),
        (
            lambda doc: find_panel(doc, "Open clocks by stage")["targets"][0].__setitem__(
                "expr", "sum by (clock) (mallcare_sla_clocks_open)"
            ),
            "not filtered by",
        ),
        (
            lambda doc: find_panel(doc, "SLA breaches by clock")["targets"][0].__setitem__(
                "expr", 'sum by (clock) (increase(mallcare_sla_breach_total{mall_id=~"$mall"}[$__rate_interval]))'
            ),
            "not declared",
        ),
        (
            lambda doc: find_panel(doc, "SLA breaches by clock")["targets"][0].__setitem__(
                "expr", 'sum by (mall_id) (increase(mallcare_sla_breaches_total{mall_id=~"$mall"}[$__rate_interval]))'
            ),
            "not broken down by ['clock']",
        ),
        (
            lambda doc: find_panel(doc, "SLA compliance per mall")["targets"][0].__setitem__(
                "expr",
                find_panel(doc, "SLA compliance per mall")["targets"][0]["expr"].replace(
                    'outcome=~"met|met_late|breached"', 'outcome=~"met|breached"'
                ),
            ),
            "denominator",
        ),
        (
            lambda doc: find_panel(doc, "Satisfaction per mall vs 85% target")["fieldConfig"]["defaults"]["thresholds"][
                "steps"
            ][1].__setitem__("value", 0.8),
            "85%",
        ),
        (lambda doc: find_panel(doc, "Dead letters waiting").__setitem__("datasource", {"uid": "other"}), "datasource"),
        (lambda doc: doc["templating"].__setitem__("list", []), "template variable"),
        (
            lambda doc: find_panel(doc, "Dead letters waiting")["targets"][0].__setitem__(
                "expr", 'max(mallcare_dead_letters{mall_id=~"$malls"})'
            ),
            "unknown variable",
        ),
    ],
    ids=[
        "panel-removed",
        "no-mall-filter",
        "renamed-metric",
        "wrong-breakdown",
        "compliance-formula",
        "satisfaction-line",
        "datasource",
        "no-mall-variable",
        "unknown-variable",
    ],
)
def test_dashboard_check_rejects_a_broken_copy(dashboard, series, datasource, breakage, complaint):
    broken = copy.deepcopy(dashboard)
    breakage(broken)
    problems = dashboard_problems(broken, series, datasource["uid"])
    assert any(complaint in problem for problem in problems), problems


# (c) provisioning and compose ------------------------------------------------------------------


def test_grafana_datasource_is_the_compose_prometheus(compose, datasource):
    url = urlparse(datasource["url"])
    assert datasource["type"] == "prometheus" and datasource["access"] == "proxy" and datasource["isDefault"]
    assert url.hostname == "prometheus" and "prometheus" in compose["services"]
    published = {port.rsplit(":", 1)[-1] for port in compose["services"]["prometheus"]["ports"]}
    assert str(url.port) in published


def test_grafana_mounts_its_provisioning_read_only(compose):
    mounted = mounts(compose, "grafana")
    expected = {
        "/etc/grafana/provisioning/datasources/prometheus.yml": DATASOURCES,
        "/etc/grafana/provisioning/dashboards/mallcare.yml": PROVIDERS,
    }
    for target, source in expected.items():
        assert target in mounted, f"grafana does not mount {target}"
        assert (ROOT / mounted[target][0]).resolve() == source.resolve()
    for source, read_only in mounted.values():
        assert read_only, f"{source} is mounted writable"
        assert (ROOT / source).is_file(), f"{source} does not exist"


def test_every_dashboard_is_mounted_where_the_provider_looks(compose):
    provider = yaml.safe_load(PROVIDERS.read_text())["providers"][0]
    assert provider["type"] == "file"
    directory = PurePosixPath(provider["options"]["path"])
    mounted = {
        PurePosixPath(target): (ROOT / source).resolve() for target, (source, _) in mounts(compose, "grafana").items()
    }
    for dashboard_file in sorted((GRAFANA / "dashboards").glob("*.json")):
        assert mounted.get(directory / dashboard_file.name) == dashboard_file.resolve(), (
            f"{dashboard_file.name} is not mounted into {directory}"
        )
    home = compose["services"]["grafana"]["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home is None or PurePosixPath(home) in mounted


def test_grafana_image_pinned_port_and_password(compose):
    grafana = compose["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"]), grafana["image"]
    assert "3000:3000" in grafana["ports"]
    password = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    assert grafana["environment"]["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "grafana-data:/var/lib/grafana" in grafana["volumes"] and "grafana-data" in compose["volumes"]
    assert "prometheus" in grafana["depends_on"]


def test_prometheus_mounts_every_rules_file_beside_its_config(compose, prometheus):
    mounted = mounts(compose, "prometheus")
    config_dir = next(
        PurePosixPath(target).parent
        for target, (source, _) in mounted.items()
        if (ROOT / source).resolve() == PROMETHEUS.resolve()
    )
    for rule_file in prometheus["rule_files"]:
        target = str(config_dir / rule_file)
        assert target in mounted, f"compose does not mount {target}"
        source, read_only = mounted[target]
        assert read_only and (ROOT / source).resolve() == (PROMETHEUS_DIR / rule_file).resolve()


# (d) docs --------------------------------------------------------------------------------------


def test_runbook_explains_every_alert(alerts):
    text = RUNBOOK.read_text()
    assert "## Monitoring" in text
    monitoring = text.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    for rule in rules(alerts):
        assert f"### {rule['alert']}" in monitoring, f"docs/runbook.md has no section for {rule['alert']}"


def test_readme_names_every_secret_compose_needs(compose):
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert "GRAFANA_ADMIN_PASSWORD" in required
    readme = README.read_text()
    missing = sorted(name for name in required if name not in readme)
    assert not missing, f"README does not mention {missing}"
