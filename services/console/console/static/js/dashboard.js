// Ops dashboard per mall or for the whole chain: this month's counts, open cases at risk or
// breached, satisfaction against the 85% target, top problems, merchant ranking (analytics' reports).
import { api, apiText, h, select, session, slaMark, t, toast } from "./core.js";

// The month as the malls count it (all malls are in China Standard Time).
const period = () => new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit" })
  .format(new Date()).slice(0, 7);

let timer;

export async function render(main) {
  const me = session();
  const chainWide = me.malls.includes("*");
  const options = [...(chainWide ? [["", t("chain")]] : []), ...me.malls.filter((m) => m !== "*").map((m) => [m, m])];
  const picker = select(options);
  picker.id = "dash-mall";
  const body = h("div", { id: "dash-body", "aria-live": "polite" });
  const refresh = h("button", { type: "button", id: "dash-refresh" }, t("refresh"));
  // The monthly and quarterly report pages analytics renders, shown here in a sandboxed frame (no scripts).
  const report = h("iframe", { id: "dash-report", sandbox: "", title: "report", hidden: true,
                               style: "width:100%;height:70vh;border:1px solid #cbd5e0;background:#fff" });
  const showReport = async (kind) => {
    const month = period(), quarter = `${month.slice(0, 4)}-Q${Math.ceil(Number(month.slice(5)) / 3)}`;
    try {
      report.srcdoc = await apiText("analytics", `reports/${kind}.html`,
        { period: kind === "monthly" ? month : quarter, ...(picker.value ? { mall_id: picker.value } : {}) });
      report.hidden = false;
    } catch (e) { toast(`${t("failed")}: ${e.message}`); }
  };
  main.append(h("h1", {}, `${t("dash.title")} · ${period()}`),
    h("p", {}, h("label", { for: "dash-mall", class: "inline" }, t("mall"), picker), " ", refresh, " ",
      h("button", { type: "button", class: "secondary", id: "dash-monthly", onclick: () => showReport("monthly") },
        t("dash.monthly")), " ",
      h("button", { type: "button", class: "secondary", id: "dash-quarterly", onclick: () => showReport("quarterly") },
        t("dash.quarterly"))), body, report);
  const load = () => fill(body, picker.value).catch((e) => body.replaceChildren(h("p", { class: "error" }, e.message)));
  picker.addEventListener("change", load);
  refresh.addEventListener("click", load);
  clearInterval(timer);
  timer = setInterval(() => (document.body.contains(body) ? load() : clearInterval(timer)), 30000);
  await load();
}

async function fill(body, mall) {
  const query = { period: period(), ...(mall ? { mall_id: mall } : {}) };
  const [{ data: report }, { data: intake }, cases] = await Promise.all([
    api("analytics", "reports/monthly", { query }),
    api("analytics", "reports/intake", { query: mall ? { mall_id: mall } : {} }),
    mall ? api("resolution", "cases", { query: { mall_id: mall } }).then((r) => r.data.items || [])
      : Promise.resolve(null),
  ]);
  const marks = (cases || []).map((c) => slaMark(c.resolution_due_at, c.opened_at).kind);
  const s = report.satisfaction || {};
  const kpi = (key, value, label) => h("div", { class: "kpi", "data-kpi": key }, h("b", { class: "value" }, value ?? "—"),
    label || t(`dash.${key}`));
  const share = s.share === null || s.share === undefined ? "—" : `${Math.round(s.share * 1000) / 10}%`;
  const registeredByChannel = {};
  (intake.rows || []).filter((r) => r.event_type === "complaint_registered")
    .forEach((r) => { registeredByChannel[r.channel || "?"] = (registeredByChannel[r.channel || "?"] || 0) + r.count; });
  body.replaceChildren(
    h("div", { class: "kpis" },
      kpi("received", report.counts.received), kpi("registered", report.counts.registered),
      kpi("resolved", report.counts.resolved),
      cases ? kpi("open_cases", cases.length) : null,
      cases ? kpi("at_risk", marks.filter((m) => m === "risk").length) : null,
      cases ? kpi("breached", marks.filter((m) => m === "breached").length) : null,
      kpi("satisfied", s.satisfied), kpi("satisfaction", share, `${t("dash.satisfaction")}${s.meets_target ? " ✓" : ""}`)),
    h("h2", {}, t("dash.intake")), bars(Object.entries(registeredByChannel)),
    h("h2", {}, t("dash.top")), bars((report.top_problems || []).slice(0, 8).map((p) =>
      [`${p.category || p.problem || ""} ${p.merchant_id || ""}`.trim(), p.count ?? p.complaints ?? 0])),
    h("h2", {}, t("dash.merchants")), bars((report.merchants || []).slice(0, 8).map((m) =>
      [`${m.merchant_id || ""} ${m.mall_id || ""}`.trim(), m.complaints ?? m.count ?? 0])));
}

function bars(rows) {
  if (!rows.length) return h("p", {}, "—");
  const top = Math.max(...rows.map(([, v]) => v), 1);
  return h("table", {}, rows.map(([label, value]) => h("tr", {}, h("td", {}, label),
    h("td", {}, h("span", { class: "bar", style: `width:${Math.round((value / top) * 300)}px` }), ` ${value}`))));
}
