// Ops dashboard per mall or for the whole chain: this month's counts, what is open now, at risk or
// breached (by stage, and per mall for the chain), satisfaction against the 85% target, top problems,
// merchant ranking. All from analytics: the monthly report, the intake counts and the live report
// (GET /reports/live: the SLA clocks still running, counted by the policy's at-risk share). The month's
// and the quarter's report open as analytics' page, and download as CSV or Excel, in the reader's language.
import { api, mallZone, every, apiBlob, apiText, categoryName, h, label, lang, mallName, merchantName, select, session, t, toast,
         when } from "./core.js";

// The month as the mall counts it, on its own clock (the chain's first mall's for the chain view).
const period = (mall) => new Intl.DateTimeFormat("en-CA", { timeZone: mallZone(mall), year: "numeric", month: "2-digit" })
  .format(new Date()).slice(0, 7);
const quarter = (month) => `${month.slice(0, 4)}-Q${Math.ceil(Number(month.slice(5)) / 3)}`;
const periodOf = (kind) => (kind === "monthly" ? period() : quarter(period()));

let timer;

export async function render(main) {
  const me = session();
  const chainWide = me.malls.includes("*");
  const options = [...(chainWide ? [["", t("chain")]] : []),
                   ...me.malls.filter((m) => m !== "*").map((m) => [m, mallName(m)])];
  const picker = select(options);
  picker.id = "dash-mall";
  const body = h("div", { id: "dash-body", "aria-live": "polite" });
  const refresh = h("button", { type: "button", id: "dash-refresh" }, t("refresh"));
  const scope = () => (picker.value ? { mall_id: picker.value } : {});
  // The monthly and quarterly report pages analytics renders, in a frame that runs no script. It is
  // shown once its page has loaded, as tall as that page (no scrollbar within a scrollbar), so the
  // report reads as part of this page; same origin (still no scripts) so that its height can be read.
  const report = h("iframe", { id: "dash-report", sandbox: "allow-same-origin", title: t("dash.report"), hidden: true,
                               style: "width:100%;border:1px solid #cbd5e0;background:#fff" });
  report.addEventListener("load", () => {
    const page = report.contentDocument;
    if (!page || !page.body || !report.srcdoc) return;
    report.hidden = false;
    report.style.height = "0";   // measured from nothing, so that a shorter report shrinks the frame
    report.style.height = `${page.documentElement.scrollHeight + 4}px`;
    report.setAttribute("data-ready", report.dataset.kind);
    report.scrollIntoView();
  });
  const showReport = async (kind) => {
    report.removeAttribute("data-ready");
    try {
      const html = await apiText("analytics", `reports/${kind}.html`, { period: periodOf(kind), lang: lang(), ...scope() });
      report.dataset.kind = kind;
      report.title = `${t(`dash.${kind}`)} ${periodOf(kind)}`;
      report.srcdoc = html;
    } catch (e) { toast(`${t("failed")}: ${e.message}`); }
  };
  // The report as a file for the monthly meeting: fetched signed in, saved under the mall's and period's name.
  const kind = select([["monthly", `${t("dash.monthly")} ${periodOf("monthly")}`],
                       ["quarterly", `${t("dash.quarterly")} ${periodOf("quarterly")}`]]);
  kind.id = "dash-kind";
  const download = async (format, button) => {
    button.disabled = true;
    try {
      const covered = periodOf(kind.value);
      const blob = await apiBlob("analytics", `reports/${kind.value}`, { period: covered, format, lang: lang(), ...scope() });
      const link = h("a", { href: URL.createObjectURL(blob),
                            download: `mallcare-${picker.value || "chain"}-${covered}.${format}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (e) { toast(`${t("failed")}: ${e.message}`); } finally { button.disabled = false; }
  };
  const saveAs = (format, text) => {
    const button = h("button", { type: "button", class: "secondary", id: `dash-${format}` }, text);
    button.addEventListener("click", () => download(format, button));
    return button;
  };
  main.append(h("h1", {}, `${t("dash.title")} · ${period()}`),
    h("p", {}, h("label", { for: "dash-mall", class: "inline" }, t("mall"), picker), " ", refresh, " ",
      h("button", { type: "button", class: "secondary", id: "dash-monthly", onclick: () => showReport("monthly") },
        t("dash.monthly")), " ",
      h("button", { type: "button", class: "secondary", id: "dash-quarterly", onclick: () => showReport("quarterly") },
        t("dash.quarterly"))),
    h("p", {}, h("label", { for: "dash-kind", class: "inline" }, t("dash.download"), kind), " ",
      saveAs("csv", t("dash.csv")), " ", saveAs("xlsx", t("dash.xlsx"))),
    body, report);
  const load = () => fill(body, picker).catch((e) => body.replaceChildren(h("p", { class: "error" }, e.message)));
  picker.addEventListener("change", load);
  refresh.addEventListener("click", load);
  clearInterval(timer);
  timer = every(30000, () => document.body.contains(body) && load());
  await load();
}

// The stages a complaint waits in, in the order they come (the SLA clocks' names).
const STAGES = ["acknowledgement", "first_response", "review_meeting", "merchant_reply", "resolution", "promised",
  "re_review", "execution", "rectification", "revisit", "incident_forwarding", "incident_handling", "incident_communication"];

// A mall the picker does not list yet (a chain-wide session lists no mall of its own): add it.
function offer(picker, mall) {
  if (![...picker.options].some((o) => o.value === mall)) picker.append(h("option", { value: mall }, mallName(mall)));
}

async function fill(body, picker) {
  const mall = picker.value;
  const query = { period: period(mall), ...(mall ? { mall_id: mall } : {}) };
  const [{ data: report }, { data: intake }, { data: live }] = await Promise.all([
    api("analytics", "reports/monthly", { query }),
    api("analytics", "reports/intake", { query: mall ? { mall_id: mall } : {} }),
    api("analytics", "reports/live", { query: mall ? { mall_id: mall } : {} }),
  ]);
  if (!mall) live.by_mall.forEach((r) => offer(picker, r.mall_id));   // every mall of the chain
  const s = report.satisfaction || {};
  const kpi = (key, value, label) => h("div", { class: "kpi", "data-kpi": key }, h("b", { class: "value" }, value ?? "—"),
    label || t(`dash.${key}`));
  const share = s.share === null || s.share === undefined ? "—" : `${Math.round(s.share * 1000) / 10}%`;
  const registeredByChannel = {};
  (intake.rows || []).filter((r) => r.event_type === "complaint_registered")
    .forEach((r) => { registeredByChannel[r.channel] = (registeredByChannel[r.channel] || 0) + r.count; });
  // a problem or a merchant names its mall only in the chain view
  const where = (m) => (mall ? "" : ` · ${mallName(m)}`);
  body.replaceChildren(...[
    h("div", { class: "kpis" },
      kpi("received", report.counts.received), kpi("registered", report.counts.registered),
      kpi("resolved", report.counts.resolved),
      kpi("open_cases", live.open), kpi("at_risk", live.at_risk), kpi("breached", live.breached),
      kpi("satisfied", s.satisfied), kpi("satisfaction", share, `${t("dash.satisfaction")}${s.meets_target ? " ✓" : ""}`)),
    h("p", { class: "note", id: "dash-as-of" }, `${t("dash.as_of")} ${when(live.as_of, mall)}`),
    h("h2", {}, t("dash.stages")), stages(live.by_stage),
    mall ? null : h("h2", {}, t("dash.malls")),
    mall ? null : malls(live.by_mall, (m) => { offer(picker, m); picker.value = m; picker.dispatchEvent(new Event("change")); }),
    h("h2", {}, t("dash.intake")), bars("dash-intake", Object.entries(registeredByChannel).map(([c, n]) =>
      [label("channel", c) || "—", n])),
    h("h2", {}, t("dash.top")), bars("dash-top", (report.top_problems || []).slice(0, 8).map((p) =>
      [[categoryName(p.category), p.merchant_id ? merchantName(p.mall_id, p.merchant_id) : p.area].filter(Boolean).join(" · ")
        + where(p.mall_id), p.count])),
    h("h2", {}, t("dash.merchants")), bars("dash-merchants", (report.merchants || []).slice(0, 8).map((m) =>
      [merchantName(m.mall_id, m.merchant_id) + where(m.mall_id), m.complaints])),
  ].filter(Boolean));   // the chain's table only in the chain view
}

// Open clocks by stage: one bar each, its at-risk and breached parts coloured.
function stages(rows) {
  if (!rows.length) return h("p", { id: "dash-stages", "data-empty": "" }, t("dash.none_open"));
  const order = (r) => (STAGES.indexOf(r.stage) + 1 || 99);
  const top = Math.max(...rows.map((r) => r.open), 1), px = (n) => `width:${Math.round((n / top) * 300)}px`;
  return h("figure", { id: "dash-stages", class: "chart" },
    h("table", {}, [...rows].sort((a, b) => order(a) - order(b)).map((r) =>
      h("tr", { "data-stage": r.stage },
        h("th", { scope: "row" }, label("clock", r.stage)),
        h("td", {}, h("span", { class: "bar stack", role: "img",
                                "aria-label": `${r.open} · ${t("dash.at_risk")} ${r.at_risk} · ${t("dash.breached")} ${r.breached}` },
          h("span", { class: "bar breached", style: px(r.breached) }), h("span", { class: "bar risk", style: px(r.at_risk) }),
          h("span", { class: "bar", style: px(r.open - r.at_risk - r.breached) })),
          ` ${r.open}`, r.at_risk ? ` · ${t("dash.at_risk")} ${r.at_risk}` : "",
          r.breached ? ` · ${t("dash.breached")} ${r.breached}` : "")))),
    h("figcaption", {}, h("span", { class: "bar breached legend" }), t("dash.breached"), " ",
      h("span", { class: "bar risk legend" }), t("dash.at_risk"), " ", h("span", { class: "bar legend" }), t("sla.ok")));
}

// The chain's malls, most breached first, then most at risk (analytics ranks them); a row opens that mall.
function malls(rows, open) {
  if (!rows.length) return h("p", { id: "dash-malls", "data-empty": "" }, t("dash.none_open"));
  return h("table", { id: "dash-malls" },
    h("thead", {}, h("tr", {}, ["#", t("mall"), t("dash.open_cases"), t("dash.at_risk"), t("dash.breached")]
      .map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r, i) => h("tr", { "data-mall": r.mall_id, class: "clickable", tabindex: "0",
                                               onclick: () => open(r.mall_id),
                                               onkeydown: (e) => (e.key === "Enter" ? open(r.mall_id) : null) },
      h("td", {}, String(i + 1)), h("td", {}, mallName(r.mall_id)), h("td", {}, String(r.open)),
      h("td", {}, String(r.at_risk)), h("td", {}, String(r.breached))))));
}

function bars(id, rows) {
  if (!rows.length) return h("p", { id, "data-empty": "" }, "—");
  const top = Math.max(...rows.map(([, v]) => v), 1);
  return h("table", { id }, rows.map(([name, value]) => h("tr", {}, h("td", {}, name),
    h("td", {}, h("span", { class: "bar", style: `width:${Math.round((value / top) * 300)}px` }), ` ${value}`))));
}
