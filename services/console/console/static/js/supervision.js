// Supervisor's page: proposals waiting for my role's approval with their compliance figures (R3.5),
// re-reviews due after an objection (R3.6), and correcting a grading or reassigning an owner with the
// reason (triage; the case follows by triage's events).
import { api, may, staffName, keepMarks, categoryOptions, categoryName, field, formBody, h, label, labelOptions, lang, mallName, mark, select, session, showErrors,
         slaMark, staff, t, toast, when } from "./core.js";

// The signed-in member's malls to ask for ([undefined]: the whole chain in one call).
// one query per mall of mine; a chain-wide member asks once, for every mall
const scopes = (me) => (me.malls.includes("*") ? [undefined] : me.malls);
const nameOf = (people, id) => staffName(people, id) || "—";
// An amount the services answer in yuan ("1039.90"), written as money in the reader's language.
const yuan = (amount) => (amount === null || amount === undefined ? "—"
  : new Intl.NumberFormat(lang() === "zh" ? "zh-CN" : "en-GB", { style: "currency", currency: "CNY" }).format(amount));

export async function render(main) {
  const me = session();
  const people = await staff();
  main.append(h("h1", {}, t("sup.title")));
  const approvals = h("section", { id: "approvals", "aria-labelledby": "approvals-h" });
  const reviews = h("section", { id: "re-reviews", "aria-labelledby": "re-reviews-h" });
  // legal approves high-risk proposals here too, but corrects no grading (access.yml)
  const grading = may("assessment.correct") ? h("section", { id: "grading", class: "card", "aria-labelledby": "grading-h" }) : null;
  main.append(approvals, reviews, grading || "");
  await Promise.all([showApprovals(approvals, me, people), showReviews(reviews, me, people),
                     grading && showGrading(grading, me, people)]);
}

async function casesOf(me, query) {
  const answers = await Promise.all(scopes(me).map((mall) => api("resolution", "cases", { query: { ...query, mall_id: mall } })
    .then((r) => r.data.items || []).catch(() => [])));
  return answers.flat();
}

// R3.5: the proposals whose least senior possible approver is my role, with what they grant
// against the law and the caps; approving is the service's decision, its refusal is shown.
async function showApprovals(section, me, people) {
  const cases = await casesOf(me, { awaiting_approval_by: me.role });
  // tabindex: after an approval the list is drawn again and the focus goes back to its heading
  section.replaceChildren(h("h2", { id: "approvals-h", tabindex: "-1" }, t("sup.approvals")));
  if (!cases.length) { section.append(h("p", { id: "approvals-none" }, t("sup.approvals_none"))); return; }
  for (const c of cases) {
    const p = c.proposals[c.proposals.length - 1];
    const check = p.compliance || {};
    const error = h("p", { class: "error", role: "alert", id: `approve-error-${c.complaint_no}` });
    const button = h("button", { type: "button", id: `approve-${c.complaint_no}`, "data-approve": c.complaint_no },
      t("sup.approve"));
    button.addEventListener("click", async () => {
      button.disabled = true; error.textContent = "";
      try {
        await api("resolution", `cases/${encodeURIComponent(c.complaint_no)}/approval`,
          { method: "POST", body: { proposal_no: p.no } });
        toast(t("sup.approved"));
        await showApprovals(section, me, people);
        section.querySelector("h2").focus();
      } catch (e) {
        error.textContent = `${t("sup.refused")}: ${e.message}`;
        button.disabled = false;
      }
    });
    const figures = [
      [t("check.total"), yuan(check.total)],
      [t("check.compensation"), yuan(check.compensation)],
      [t("check.statutory_total"), yuan(check.statutory_total)],
      [t("check.statutory_compensation"), yuan(check.statutory_compensation)],
      [t("check.demand_above_statutory"), check.demand_above_statutory ? t("yes") : t("no")],
      [t("check.breach"), (check.breaches || []).length ? t("yes") : t("no")],
      p.cap_override_reason ? [t("sup.override_reason"), p.cap_override_reason] : null,
    ].filter(Boolean);
    section.append(h("article", { class: "card", "data-number": c.complaint_no, "aria-labelledby": `approval-${c.complaint_no}` },
      h("h3", { id: `approval-${c.complaint_no}` },
        h("a", { href: `#/case/${encodeURIComponent(c.complaint_no)}` }, c.complaint_no),
        ` · ${mallName(c.mall_id)} · ${categoryName(c.category)} · ${label("risk_level", c.risk_level)}`),
      h("p", {}, `${t("decision")}: ${label("decision", p.decision)} · ${t("sup.proposed_by")}: `,
        `${nameOf(people, p.proposed_by)} · ${when(p.proposed_at, c.mall_id)}`),
      h("p", {}, `${t("sup.remedies")}: `,
        (p.remedies || []).map((r) => `${label("remedy", r.type)} ${yuan(r.amount)}`).join("；") || "—"),
      h("table", { class: "figures", "data-figures": c.complaint_no },
        h("caption", {}, t("sup.figures")),
        h("tbody", {}, figures.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v))))),
      (p.reasons || []).length ? h("ul", {}, p.reasons.map((r) => h("li", {}, r))) : null,
      h("p", {}, button), error));
  }
}

// R3.6: after an objection the case goes a level up with a re-review deadline; the earliest first.
async function showReviews(section, me, people) {
  const escalated = await casesOf(me, { state: "escalated" });
  const due = escalated.map((c) => ({ c, e: [...(c.escalations || [])].reverse().find((e) => e.re_review_due_at) }))
    .filter((x) => x.e).sort((a, b) => a.e.re_review_due_at.localeCompare(b.e.re_review_due_at));
  section.replaceChildren(h("h2", { id: "re-reviews-h" }, t("sup.re_reviews")));
  if (!due.length) { section.append(h("p", { id: "re-reviews-none" }, t("sup.re_reviews_none"))); return; }
  section.append(h("table", { id: "re-review-list" },
    h("thead", {}, h("tr", {}, [t("number"), t("mall"), t("category"), t("sup.level"), t("sup.reviewer"),
      t("sup.escalated_at"), t("sup.re_review_due"), t("sla")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, due.map(({ c, e }) => h("tr", { "data-number": c.complaint_no },
      h("td", {}, h("a", { href: `#/case/${encodeURIComponent(c.complaint_no)}` }, c.complaint_no)),
      h("td", {}, mallName(c.mall_id)), h("td", {}, categoryName(c.category)), h("td", {}, label("role", c.level)),
      h("td", {}, nameOf(people, e.to_staff_id)), h("td", {}, when(e.at, c.mall_id)),
      h("td", {}, when(e.re_review_due_at, c.mall_id)),
      h("td", { class: "sla", "data-due": e.re_review_due_at, "data-from": e.at },
        mark(slaMark(e.re_review_due_at, e.at))))))));
  // the countdowns run while the page is open
  clearInterval(ticker);   // the list is drawn again after an approval: one timer for what is shown
  ticker = keepMarks(section, "td.sla", 30000);
}

let ticker;

// Triage's open assessments of my malls: pick one, correct its category or risk level, or give it
// another owner, always with the reason. Triage decides; the case follows by its events.
async function showGrading(section, me, people) {
  const answers = await Promise.all(scopes(me).map((mall) => api("triage", "queue", { query: { mall_id: mall, limit: 500 } })
    .then((r) => r.data.items || []).catch(() => [])));
  const open = answers.flat();
  section.replaceChildren(h("h2", { id: "grading-h" }, t("sup.grading")));
  if (!open.length) { section.append(h("p", {}, t("sup.grading_none"))); return; }
  const picker = select(open.map((a) => [a.complaint_no,
    `${a.complaint_no} · ${categoryName(a.category) || "—"} · ${label("risk_level", a.risk_level)} · ${nameOf(people, a.owner && a.owner.id)}`]));
  const summary = h("div", { id: "picked", "aria-live": "polite" });
  const picked = () => open.find((a) => a.complaint_no === picker.value);
  const show = (a, entry) => summary.replaceChildren(...[
    h("p", {}, `${t("category")}: ${categoryName(a.category) || "—"} · ${t("risk")}: ${label("risk_level", a.risk_level)} · `,
      `${t("triage.department")}: ${label("department", a.department)} · ${t("owner")}: ${nameOf(people, a.owner && a.owner.id)} · `,
      h("a", { href: `#/case/${encodeURIComponent(a.complaint_no)}` }, t("sup.open_case"))),
    entry ? result(people, a, entry) : null].filter(Boolean));
  picker.addEventListener("change", () => { show(picked()); fillOwners(); });

  const which = select([["category", t("category")], ["risk_level", t("risk")]]);
  const value = select([]);
  const fillValues = () => value.replaceChildren(...(which.value === "risk_level" ? labelOptions("risk_level")
    : categoryOptions()).map(([v, words]) => h("option", { value: v }, words)));
  which.addEventListener("change", fillValues);
  fillValues();
  const correct = h("form", { class: "grid", id: "correct-form", novalidate: true },
    field("field", which, { scope: "correct", label: t("triage.field") }),
    field("value", value, { scope: "correct", label: t("triage.value") }),
    field("reason", h("input", { required: true }), { scope: "correct", label: t("reason") }),
    h("p", {}, h("button", { type: "submit", id: "correct-submit" }, t("triage.correct"))));

  const owner = select([]);
  const fillOwners = () => {
    const mall = picked().mall_id;
    const here = people.filter((p) => (p.malls || []).some((m) => m === mall || m === "*") && ["handler", "supervisor"].includes(p.role));
    owner.replaceChildren(h("option", { value: "" }, t("sup.choose")), ...here.map((p) => h("option", { value: p.id },
      `${p.name}（${label("role", p.role)}${p.department ? ` · ${label("department", p.department)}` : ""}）`)));
  };
  fillOwners();
  const reassign = h("form", { class: "grid", id: "reassign-form", novalidate: true },
    field("owner_id", owner, { scope: "reassign", label: t("triage.new_owner") }),
    field("reason", h("input", { required: true }), { scope: "reassign", label: t("reason") }),
    h("p", {}, h("button", { type: "submit", id: "reassign-submit" }, t("triage.reassign"))));

  const send = async (path, form) => {
    const a = picked();
    try {
      await api("triage", `assessments/${encodeURIComponent(a.complaint_no)}/${path}`, { method: "POST", body: formBody(form) });
      const { data } = await api("triage", `assessments/${encodeURIComponent(a.complaint_no)}`);
      Object.assign(a, data);
      showErrors(form, null);
      form.reset(); fillValues();
      show(a, (data.history || [])[data.history.length - 1]);
      toast(t("triage.sent"));
    } catch (e) { showErrors(form, e); }
  };
  correct.addEventListener("submit", (e) => { e.preventDefault(); send("corrections", correct); });
  reassign.addEventListener("submit", (e) => { e.preventDefault(); send("owner", reassign); });
  section.append(field("complaint_no", picker, { scope: "grading", label: t("sup.pick") }), summary,
    h("h3", {}, t("triage.correct")), correct, h("h3", {}, t("triage.reassign")), reassign);
  show(picked());
}

// What triage recorded (its history's last entry): who changed what from what to what, and why.
function result(people, a, entry) {
  const name = entry.field || (entry.action === "reassigned" ? "owner" : "");
  return h("p", { id: "grading-result", class: "note", "data-field": name },
    `${t("sup.recorded")}: ${when(entry.at, a.mall_id)} ${nameOf(people, entry.by)} · ${fieldName(name)}: `,
    `${valueOf(people, name, entry.old)} → ${valueOf(people, name, entry.new)} · ${t("reason")}: ${entry.reason || ""}`);
}

const fieldName = (name) => ({ category: t("category"), risk_level: t("risk"), owner: t("owner"), owner_id: t("owner"),
                                department: t("triage.department") }[name] || t("sup.change"));
function valueOf(people, name, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (name === "category") return categoryName(value);
  if (name === "risk_level") return label("risk_level", value);
  if (name === "department") return label("department", value);
  return nameOf(people, value);
}
