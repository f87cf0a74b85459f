// Handler's queue: open cases of my malls, the earliest deadline first, with SLA countdowns and marks.
import { AT_RISK_SHARE, api, myMalls, keepMarks, categoryCell, categoryName, h, label, mallName, mark, rectificationText, session, slaMark,
         staff, staffName, t, when } from "./core.js";

// The at-risk share of the resolution deadline. A handler may not read reports (report.read in
// deploy/policy/access.yml leaves handler out), so the queue cannot ask analytics' live report for
// it: it uses the policy's default share, 0.8 of the allowed time (analytics.yml overrides it only
// for acknowledgements), the rule analytics counts at-risk clocks by. Change both together.
const RESOLUTION_SHARE = AT_RISK_SHARE;

export async function render(main) {
  const me = session();
  const malls = myMalls();
  const rows = [], rectifications = [], proposed = new Map();
  for (const mall of malls) {
    // triage's open assessments say which categories are only proposed (R7.4); the case does not
    const [{ data }, { data: tasks }, { data: assessed }] = await Promise.all([
      api("resolution", "cases", { query: { mall_id: mall } }),
      api("resolution", "rectifications", { query: { mall_id: mall } }),
      api("triage", "queue", { query: { mall_id: mall, limit: 500 } }).catch(() => ({ data: { items: [] } }))]);
    rows.push(...(data.items || []));
    rectifications.push(...(tasks.items || []).map((r) => ({ mall_id: mall, ...r })));
    for (const a of assessed.items || []) if (a.category_confirmed === false) proposed.set(a.complaint_no, a);
  }
  const category = (c) => {
    const a = proposed.get(c.complaint_no);
    return a && a.category === c.category ? categoryCell(categoryName(c.category), false, a.category_confidence)
      : categoryName(c.category);
  };
  const people = await staff();
  const who = (id) => staffName(people, id) || "—";
  // a handler of several malls sees which mall each row is, and each time with its zone's name
  const several = malls.length > 1;
  const at = (iso, mall) => when(iso, mall, { zone: several });
  const due = (c) => c.resolution_due_at || c.first_response_due_at || "9999";
  rows.sort((a, b) => due(a).localeCompare(due(b)));
  const mine = (c) => c.owner_id === me.user;
  const onlyMine = h("input", { type: "checkbox", id: "only-mine" });
  onlyMine.addEventListener("change", () => main.querySelectorAll("#queue tbody tr, #rectification-queue tbody tr").forEach((tr) => {
    tr.hidden = onlyMine.checked && !tr.classList.contains("mine");
  }));
  main.append(h("h1", {}, t("queue.title")),
    h("p", {}, h("label", { for: "only-mine", class: "inline" }, onlyMine, t("queue.only_mine"))),
    rows.length ? h("table", { id: "queue" },
    h("thead", {}, h("tr", {}, [t("number"), several ? t("mall") : null, t("state"), t("category"), t("risk"), t("owner"),
      t("due"), t("sla")].filter(Boolean).map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((c) => h("tr", { "data-number": c.complaint_no, class: mine(c) ? "mine" : null },
      h("td", {}, h("a", { href: `#/case/${encodeURIComponent(c.complaint_no)}` }, c.complaint_no)),
      several ? h("td", {}, mallName(c.mall_id)) : null,
      h("td", { "data-state": c.state }, label("case_state", c.state)), h("td", { class: "category" }, category(c)),
      h("td", {}, label("risk_level", c.risk_level)), h("td", { "data-owner": c.owner_id || "" }, who(c.owner_id)),
      h("td", {}, at(c.resolution_due_at || c.first_response_due_at, c.mall_id)),
      h("td", { class: "sla", "data-due": c.resolution_due_at || "", "data-from": c.opened_at || "" },
        mark(slaMark(c.resolution_due_at, c.opened_at, RESOLUTION_SHARE))))))) : h("p", {}, t("queue.empty")));
  // Rectification tasks outlive their case's resolution (R3.8): the open ones of my malls, earliest due first.
  rectifications.sort((a, b) => a.due_at.localeCompare(b.due_at));
  main.append(h("h2", {}, t("rect.open")), rectifications.length ? h("table", { id: "rectification-queue" },
    h("thead", {}, h("tr", {}, [t("number"), t("rect.kind"), t("rect.description"), t("rect.owner"), t("rect.due"),
      t("sla")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rectifications.map((r) => h("tr", { "data-number": r.complaint_no, "data-rectification": r.id,
                                                      class: r.owner_id === me.user ? "mine" : null },
      h("td", {}, h("a", { href: `#/case/${encodeURIComponent(r.complaint_no)}` }, r.complaint_no)),
      h("td", {}, label("rectification_kind", r.kind)), h("td", {}, rectificationText(r.description)), h("td", {}, who(r.owner_id)),
      h("td", {}, at(r.due_at, r.mall_id)),
      h("td", { class: "sla", "data-due": r.due_at, "data-from": "" }, mark(slaMark(r.due_at, null, RESOLUTION_SHARE)))))))
    : h("p", {}, t("rect.none")));
  // The countdowns run while the queue is open: each mark is worked out again every 30 s.
  keepMarks(main, "td.sla", 30000, RESOLUTION_SHARE);
}
