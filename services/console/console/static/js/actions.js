// Improvement actions (R5.3): a recurring problem's 5 Whys, its root cause, the action, its owner and
// due date, and done with the evidence. Analytics keeps them; triage's systemic patterns arrive as
// proposals waiting for their analysis.
import { api, merchantName, staffName, categoryOptions, categoryName, field, h, label, labelOptions, lang, mallName, myMalls, may, select, session, showErrors, staff, t,
         toast, when } from "./core.js";

const WHYS = 5;
const nameOf = (people, id) => staffName(people, id) || "—";
// A due date is a day of the mall's calendar (analytics works out overdue by the mall's own today):
// shown as that day, whatever the reader's zone.
const day = (date) => (date ? new Date(`${date}T00:00:00Z`).toLocaleDateString(lang() === "zh" ? "zh-CN" : "en-GB",
  { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" }) : "—");

export async function render(main, [status = ""] = []) {
  const me = session();
  const malls = myMalls();
  const people = await staff();
  const filter = select([["", t("imp.all")], ...labelOptions("action_status")], status);
  filter.addEventListener("change", () => { location.hash = `#/actions/${filter.value}`; });
  const answers = await Promise.all((me.malls.includes("*") ? [undefined] : malls).map((mall) =>
    api("analytics", "actions", { query: { mall_id: mall, status } }).then((r) => r.data.items || [])));
  const items = answers.flat().sort((a, b) => (a.due_date || "9999").localeCompare(b.due_date || "9999"));
  const again = () => { main.replaceChildren(); return render(main, [status]); };
  const writer = may("action.write");
  const several = malls.length > 1;   // the mall column only for those who see more than one

  const form = writer ? actionForm(malls, people, again) : null;
  main.append(h("h1", {}, t("imp.title")),
    h("p", {}, field("status", filter, { scope: "imp-filter", label: t("imp.status") })),
    items.length ? h("table", { id: "action-list" },
      h("thead", {}, h("tr", {}, [t("imp.id"), several ? t("mall") : null, t("imp.problem"), t("imp.root_cause"),
        t("imp.action"), t("owner"), t("imp.due"), t("imp.status")].filter(Boolean).map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, items.map((a) => h("tr", { "data-action-id": a.action_id, "data-status": a.overdue ? "overdue" : a.status },
        h("td", {}, a.action_id), several ? h("td", {}, mallName(a.mall_id)) : null,
        h("td", {}, problemText(a), a.problem.category ? ` (${categoryName(a.problem.category)})` : "",
          (a.whys || []).length ? h("ol", { class: "whys" }, a.whys.map((w) => h("li", {}, w))) : null,
          (a.complaint_nos || []).length ? h("p", { class: "note" }, `${t("imp.complaints")}: `,
            a.complaint_nos.map((no, i) => [i ? "、" : "", h("a", { href: `#/case/${encodeURIComponent(no)}` }, no)])) : null),
        h("td", {}, a.root_cause || "—"), h("td", {}, a.action || "—"), h("td", {}, nameOf(people, a.owner_id)),
        h("td", {}, day(a.due_date)),
        h("td", {}, a.overdue ? h("span", { class: "mark breached", "data-overdue": "" }, label("action_status", "overdue"))
          : h("span", { class: `mark ${{ done: "ok", proposed: "risk" }[a.status] || "unconfirmed"}` },
            label("action_status", a.status)),
          a.done_at ? h("p", { class: "note" }, `${when(a.done_at, a.mall_id)} ${nameOf(people, a.done_by)}: ${a.evidence}`)
            : null,
          writer ? rowAction(a, form, again) : null))))) : h("p", { id: "actions-none" }, t("imp.none")));
  if (form) main.append(h("section", { class: "card", "aria-labelledby": "action-form-h" },
    h("h2", { id: "action-form-h" }, t("imp.new")), form));
}

// An open action is closed with its evidence; a proposal (a systemic pattern) is analysed in the form.
function rowAction(a, form, again) {
  if (a.status === "open") {
    const done = h("form", { class: "inline", "data-done-for": a.action_id, novalidate: true },
      field("evidence", h("input", { required: true }), { scope: `done-${a.action_id}`, label: t("imp.evidence") }),
      h("button", { type: "submit", "data-done": a.action_id }, t("imp.done")));
    done.addEventListener("submit", (e) => {
      e.preventDefault();
      api("analytics", `actions/${encodeURIComponent(a.action_id)}/done`,
        { method: "POST", body: { evidence: done.querySelector("input").value.trim() } })
        .then(() => { toast(t("imp.closed")); return again(); }).catch((err) => showErrors(done, err));
    });
    return done;
  }
  if (a.status === "proposed") {
    return h("button", { type: "button", class: "secondary", "data-analyse": a.action_id, onclick: () => {
      form.querySelector('[data-path="mall_id"]').value = a.mall_id;
      form.querySelector('[data-path="mall_id"]').dispatchEvent(new Event("change"));
      form.querySelector('[data-path="problem.summary"]').value = problemText(a);
      form.querySelector('[data-path="problem.category"]').value = a.problem.category || "";
      form.dataset.proposal = a.action_id;
      form.querySelector('[data-path="whys"]').focus();
    } }, t("imp.analyse"));
  }
  return null;
}

function actionForm(malls, people, again) {
  const mall = select(malls.map((m) => [m, mallName(m)]));
  const owner = select([]);
  const fillOwners = () => owner.replaceChildren(h("option", { value: "" }, t("sup.choose")),
    ...people.filter((p) => (p.malls || []).some((m) => m === mall.value || m === "*"))
      .map((p) => h("option", { value: p.id }, `${p.name}（${label("role", p.role)}）`)));
  mall.addEventListener("change", fillOwners);
  fillOwners();
  const category = select([["", "—"], ...categoryOptions()]);
  const whys = Array.from({ length: WHYS }, (_, i) => h("input", { class: "why", id: `why-${i + 1}` }));
  const due = h("input", { type: "date" });
  const form = h("form", { class: "grid", id: "action-form", novalidate: true },
    field("mall_id", mall, { scope: "imp", label: t("mall") }),
    field("problem.summary", h("input"), { scope: "imp", label: t("imp.problem") }),
    field("problem.category", category, { scope: "imp", label: t("category") }),
    h("fieldset", { class: "wide", "aria-describedby": "f-imp-whys-err" }, h("legend", {}, t("imp.whys")),
      whys.map((input, i) => h("label", { for: input.id }, h("span", {}, `${t("imp.why")} ${i + 1}`), input)),
      h("span", { class: "error", id: "f-imp-whys-err", "data-error-for": "whys" })),
    field("root_cause", h("textarea"), { wide: true, scope: "imp", label: t("imp.root_cause") }),
    field("action", h("textarea"), { wide: true, scope: "imp", label: t("imp.action") }),
    field("owner_id", owner, { scope: "imp", label: t("owner") }),
    field("due_date", due, { scope: "imp", label: t("imp.due") }),
    h("p", {}, h("button", { type: "submit", id: "action-submit" }, t("imp.record"))));
  // the why-chain's first input carries the path its errors come back under
  whys[0].dataset.path = "whys";
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = (path) => form.querySelector(`[data-path="${path}"]`).value.trim();
    const body = {
      mall_id: value("mall_id"),
      problem: { summary: value("problem.summary"), ...(value("problem.category") ? { category: value("problem.category") } : {}) },
      whys: whys.map((w) => w.value.trim()).filter(Boolean),
      root_cause: value("root_cause"), action: value("action"), owner_id: value("owner_id"), due_date: due.value,
      ...(form.dataset.proposal ? { proposal_id: form.dataset.proposal } : {}),
    };
    for (const k of ["root_cause", "action", "owner_id", "due_date"]) if (!body[k]) delete body[k];
    if (!body.problem.summary) delete body.problem.summary;
    try {
      await api("analytics", "actions", { method: "POST", body });
      toast(t("imp.recorded"));
      await again();
    } catch (err) { showErrors(form, err); }
  });
  return form;
}

// A pattern analytics found (a proposed action) is told in words from its facts: the summary it
// stores is for logs and names codes (product.expired, T-17); what people wrote stays as written.
function problemText(a) {
  if (a.created_by !== "analytics" || !a.window) return a.problem.summary;
  const where = a.problem.merchant_id ? merchantName(a.mall_id, a.problem.merchant_id) : mallName(a.mall_id);
  return t("imp.pattern").replace("{category}", categoryName(a.problem.category)).replace("{where}", where)
    .replace("{count}", String(a.recurrences)).replace("{from}", a.window.from);
}
