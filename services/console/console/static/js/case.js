// Case page: the case, its whole timeline, and the handler's actions from finding to resolution;
// triage's assessment (reassign, correct), the review meeting (R2.4), the time told to the customer,
// rectification tasks (R3.8), closing and reopening (R4.2), and putting it into the case library (R4.4);
// a tenant's case sent to its merchant and its reply with evidence, or taken back (R7.5);
// the check of the goods' batch the complaint named, and its next step for whoever takes it (R7.6).
import { AT_RISK_SHARE, api, categoryOptions, categoryCell, categoryName, field, formBody, h, label, labelIn, labelOptions, lines, listComma,
         mallName, mallTime, mallZone, mark, may, merchantName, rectificationText, remedies, remedyErrors, remedyInputs, select,
         session, showErrors, slaMark, staff, staffName, t, toast, when } from "./core.js";

const FINISHED = ["resolved", "closed"];

export async function render(main, [number]) {
  const no = encodeURIComponent(number);
  const [{ data: c }, assessment, people] = await Promise.all([
    api("resolution", `cases/${no}`),
    api("triage", `assessments/${no}`).then((r) => r.data).catch(() => null),
    staff()]);
  const again = () => { main.replaceChildren(); return render(main, [number]); };
  const act = (action, body, form) => api("resolution", `cases/${no}/${action}`,
    { method: "POST", body }).then(() => act.again()).catch((e) => form ? showErrors(form, e)
    : toast(`${t("failed")}: ${e.message}`));
  act.again = () => { toast(t("ok")); return again(); };
  const here = people.filter((p) => (p.malls || []).includes(c.mall_id) || (p.malls || []).includes("*"));
  const finished = FINISHED.includes(c.state);
  // the case's own mall's clock, whatever the reader's laptop is set to
  const at = (iso) => when(iso, c.mall_id);
  const who = (id) => staffName(people, id);
  const person = (id) => people.some((p) => p.id === id);   // else a service acted
  // owners are picked by name from the mall's staff (the services take the id)
  const staffPicker = (optional) => select([...(optional ? [["", ""]] : []), ...here.map((p) => [p.id,
    `${p.name} · ${label("role", p.role)}${p.department ? ` · ${label("department", p.department)}` : ""}`])]);
  const ctx = { c, act, at, who, person, staffPicker, people };

  main.append(
    h("h1", {}, `${t("case.title")} `, h("span", { id: "case-number" }, c.complaint_no), " · ",
      h("span", { id: "case-state", "data-state": c.state }, label("case_state", c.state))),
    h("section", { class: "card", id: "case-summary" }, h("p", {},
      `${t("mall")}: ${mallName(c.mall_id)} · ${t("category")}: ${categoryName(c.category)} · `,
      `${t("risk")}: ${label("risk_level", c.risk_level)} · `,
      h("span", { id: "case-owner", "data-owner": c.owner_id || "" }, `${t("owner")}: ${who(c.owner_id) || "—"}`),
      ` · ${t("due")}: `, h("span", { id: "case-due" }, at(c.resolution_due_at)), " ",
      // the policy's default at-risk share (0.8): handlers, who work this page, may not read the live report
      finished ? null : mark(slaMark(c.resolution_due_at, c.opened_at, AT_RISK_SHARE))),
      // R7.7: a high-risk case's accountable lead, beside the owner who works it
      c.lead ? h("p", { id: "case-lead", "data-lead": c.lead.staff_id || "" },
        `${t("lead")}: ${who(c.lead.staff_id) || c.lead.name || "—"} · ${label("role", c.lead.role)}`) : null,
      c.round > 1 ? h("p", {}, `${t("round")}: ${c.round}`) : null,
      c.expected_resolution ? h("p", { id: "expected" }, `${t("expected.told")}: `,
        h("strong", {}, at(c.expected_resolution.expected_by)), ` (${label("via", c.expected_resolution.via)})`,
        c.expected_resolution.beyond_deadline ? h("span", { class: "mark risk" }, t("expected.beyond")) : null) : null,
      c.resolution ? h("p", { id: "resolution-summary" }, `${t("act.resolve")}: ${c.resolution.summary}`,
        c.resolution.spot ? ` (${t("spot.title")})` : "") : null,
      c.closure_by_rule ? h("p", { id: "closure-by-rule" }, `${t("closure.by_rule")}: ${at(c.closure_by_rule.close_at)}`)
        : null,
      c.closure ? h("p", { id: "closure" }, `${t("closure")}: ${closureWords(c.closure, people)} · ${at(c.closure.at)}`,
        c.closure.without_answer ? h("span", { class: "mark risk" }, t("closure.without_answer")) : null) : null));

  const meeting = c.review_meeting;
  if (meeting) main.append(reviewMeeting(ctx, meeting));
  if (assessment) main.append(triageCard(ctx, assessment, again));
  if (!finished) main.append(h("div", { class: "actions" }, actions(ctx), expected(ctx)));
  if (c.merchant_id) main.append(merchantCard(ctx, finished));
  if (c.batch_check_no) main.append(await batchCard(ctx));
  main.append(rectifications(ctx));
  main.append(mediation(ctx));
  if (finished || c.round > 1) main.append(h("div", { class: "actions" }, closing(c, act), library(c)));

  main.append(h("h2", {}, t("timeline")), h("table", { id: "timeline" },
    h("thead", {}, h("tr", {}, ["#", t("at"), t("by"), t("action"), t("state")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, (c.timeline || []).map((e) => h("tr", { "data-action": e.action },
      h("td", {}, e.seq), h("td", {}, at(e.at)), h("td", {}, e.role === "service" ? label("role", "service")   // a service's own step: "系统"
        : [who(e.by), label("role", e.role)].filter(Boolean).join(" · ")),
      h("td", {}, label("action", e.action)), h("td", {}, label("case_state", e.state)))))));
}

// Why the case was closed: a person's reason as they wrote it; a closing by the services (the
// customer satisfied at the revisit, or unreachable past the waiting time) in the reader's words,
// since the services write theirs for the log.
function closureWords(closure, people) {
  if (people.some((p) => p.id === closure.by)) return `${staffName(people, closure.by)}: ${closure.reason}`;
  return t(closure.without_answer ? "closure.unreachable" : "closure.satisfied");
}

// R2.4: a cross-department dispute waits for the operations director's meeting to name the
// responsible department before anyone may propose; once decided, the decision is shown.
function reviewMeeting({ c, act, at, who, staffPicker }, meeting) {
  const card = h("section", { class: "card", id: "review-meeting" }, h("h2", {}, t("meeting.title")),
    h("p", {}, `${t("meeting.departments")}: ${(meeting.departments || []).map((d) => label("department", d)).join(listComma())}`,
      ` · ${t("meeting.due")}: `, at(meeting.due_at), " ", meeting.decided_at ? "" : mark(slaMark(meeting.due_at, c.opened_at)),
      meeting.convenor_id ? ` · ${t("meeting.convenor")}: ${who(meeting.convenor_id)}` : ""));
  if (meeting.decided_at) {
    card.append(h("p", { id: "meeting-decided", "data-department": meeting.responsible_department },
      `${t("meeting.decided")} ${at(meeting.decided_at)} · `,
      `${t("meeting.responsible")}: ${label("department", meeting.responsible_department)} · ${meeting.decision}`));
    return card;
  }
  if (FINISHED.includes(c.state)) return card;
  if (!may("review_meeting")) { card.append(h("p", { class: "note" }, t("meeting.pending"))); return card; }
  const form = h("form", { class: "grid", id: "meeting-form", novalidate: true },
    field("responsible_department", select([["", ""], ...labelOptions("department")]),
      { scope: "meeting", label: t("meeting.responsible") }),
    field("owner_id", staffPicker(true), { scope: "meeting", label: t("meeting.owner") }),
    field("attendees", h("input", { placeholder: t("meeting.attendees_hint"), "data-list": "" }),
      { scope: "meeting", label: t("meeting.attendees") }),
    field("decision", h("textarea"), { wide: true, scope: "meeting", label: t("meeting.decision") }),
    h("p", {}, h("button", { type: "submit", id: "meeting-submit" }, t("meeting.submit"))));
  form.addEventListener("submit", (e) => { e.preventDefault(); act("review-meeting", formBody(form), form); });
  card.append(form);
  return card;
}

// What triage says (category, risk and why, department, owner, deadlines, history); a supervisor
// reassigns the owner or corrects category or risk there, and the case follows by triage's events.
// R7.3: how the customer was, as the desk recorded it: emotion, anger 1-5, and the tone in the clerk's words
function mood(m) {
  if (!m) return "—";
  return [m.emotion && label("emotion", m.emotion), m.anger_score && `${t("mood.anger")} ${m.anger_score}/5`,
    m.tone_note && `“${m.tone_note}”`].filter(Boolean).join(" · ") || "—";
}

function triageCard({ c, at, who, person, staffPicker }, a, again) {
  const no = encodeURIComponent(c.complaint_no);
  const card = h("section", { class: "card", id: "assessment" }, h("h2", {}, t("triage.title")),
    h("table", {}, [
      [t("category"), [...categoryCell(a.category && categoryName(a.category), a.category_confirmed, a.category_confidence),
        a.category_source ? ` (${label("category_source", a.category_source)})` : ""]],
      [t("risk"), h("span", { "data-risk": a.risk_level }, label("risk_level", a.risk_level))],
      [t("triage.reasons"), (a.risk_reasons || []).map((r) => riskReason(r, who)).join("; ") || "—"],
      [t("triage.mood"), h("span", { id: "mood" }, mood(a.mood))],
      [t("triage.urgency"), [label("urgency", a.urgency), a.systemic ? h("span", { class: "mark risk", "data-systemic": "" },
        t("triage.systemic")) : null, ` · ${t("triage.recurrences")} ${a.recurrences ?? 0}`]],
      [t("triage.department"), label("department", a.department)],
      [t("owner"), h("span", { "data-owner": a.owner ? a.owner.id : "" }, a.owner ? a.owner.name || who(a.owner.id) : "—")],
      [t("triage.first_response"), at(a.first_response_due_at)], [t("due"), at(a.resolution_due_at)],
    ].map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v)))),
    (a.history || []).length ? h("ul", { id: "assessment-history" }, a.history.map((x) => h("li", {},
      historyLine(x, at, who, person)))) : null);
  const send = (path, form) => api("triage", `assessments/${no}/${path}`, { method: "POST", body: formBody(form) })
    .then(() => { toast(t("triage.sent")); return again(); }).catch((e) => showErrors(form, e));
  if (FINISHED.includes(c.state)) return card;
  if (may("assessment.assign")) {
    const form = h("form", { class: "grid", id: "reassign-form", novalidate: true },
      field("owner_id", staffPicker(true), { scope: "reassign", label: t("triage.new_owner") }),
      field("reason", h("input"), { scope: "reassign", label: t("reason") }),
      h("p", {}, h("button", { type: "submit", class: "secondary" }, t("triage.reassign"))));
    form.addEventListener("submit", (e) => { e.preventDefault(); send("owner", form); });
    card.append(h("h3", {}, t("triage.reassign")), form);
  }
  if (may("assessment.correct")) {
    const which = select([["category", t("category")], ["risk_level", t("risk")]]);
    const value = select([]);
    const fill = () => value.replaceChildren(...[["", ""], ...(which.value === "risk_level" ? labelOptions("risk_level")
      : categoryOptions())].map(([v, words]) => h("option", { value: v }, words)));
    which.addEventListener("change", fill);
    fill();
    const form = h("form", { class: "grid", id: "correct-form", novalidate: true },
      field("field", which, { scope: "correct", label: t("triage.field") }),
      field("value", value, { scope: "correct", label: t("triage.value") }),
      field("reason", h("input"), { scope: "correct", label: t("reason") }),
      h("p", {}, h("button", { type: "submit", class: "secondary" }, t("triage.correct"))));
    form.addEventListener("submit", (e) => { e.preventDefault(); send("corrections", form); });
    card.append(h("h3", {}, t("triage.correct")), form);
  }
  return card;
}

// A risk reason in words; what triggered it only where it says more than the reason's name
// (the words the customer used, or who corrected the risk and why).
function riskReason(r, who) {
  const words = `${label("risk_reason", r.reason)} (${label("risk_level", r.level)})`;
  const detail = r.detail || "";
  if (detail.startsWith("mentions ")) return `${words}: “${detail.slice("mentions ".length)}”`;
  if (r.reason === "corrected") {
    const [by, ...why] = detail.split(": ");
    return `${words}: ${who(by)}${why.length ? `: ${why.join(": ")}` : ""}`;
  }
  return words;
}

// A step of triage's history: what was changed from what to what, by whom and why (the routing
// basis triage writes for itself is left out: the department above says where the case went).
function historyLine(x, at, who, person) {
  const value = (v) => (x.field === "category" ? categoryName(v) : x.field === "risk_level" ? label("risk_level", v)
    : x.field === "department" ? label("department", v) : who(v));
  const change = x.old !== undefined || x.new !== undefined ? ` ${value(x.old) || "—"} → ${value(x.new)}` : "";
  // what a service writes (the routing basis, "customer satisfied (score 5)") is for the log: a
  // person's reason is shown as they wrote it
  const by = person(x.by) ? who(x.by) : label("role", "service");
  const why = person(x.by) && x.reason && x.action !== "review_meeting" ? ` · ${x.reason}` : "";
  return `${at(x.at)} ${by}: ${label("assessment_action", x.action)}${change}${why}`;
}

// R3.2: the time to resolution the customer was told (beyond the deadline is marked).
function expected({ c, act }) {
  const when_ = h("input", { type: "datetime-local" });
  const form = h("form", { class: "grid", id: "expected-form", novalidate: true },
    field("expected_by", when_, { scope: "expected", label: `${t("expected.by")} (${mallZone(c.mall_id)})` }),
    field("via", select(labelOptions("via")), { scope: "expected", label: t("expected.via") }),
    h("p", {}, h("button", { type: "submit", class: "secondary" }, t("expected.submit"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = formBody(form);
    if (when_.value) body.expected_by = mallTime(when_.value, c.mall_id);   // typed on the mall's clock
    act("expected-resolution", body, form);
  });
  return h("section", { class: "card" }, h("h2", {}, t("expected.title")), form);
}

// R7.6: the check of the goods' batch (one per batch at the mall, every complaint of the batch on
// it): each step as taken, and the form of the step it waits for, shown to whom resolution.yml gives
// it (the check's next_step names the roles and departments; the service decides all the same).
async function batchCard({ c, act, at, who, people }) {
  const no = encodeURIComponent(c.batch_check_no);
  const { data: b } = await api("resolution", `batch-checks/${no}`);
  const product = [b.product.barcode && `${t("batch.barcode")}: ${b.product.barcode}`,
    b.product.batch && `${t("batch.batch")}: ${b.product.batch}`].filter(Boolean).join(" · ");
  const late = (s) => (s.within_deadline ? "" : ` · ${t("batch.late")}`);
  const done = [
    b.hold && [t("batch.hold"), b.hold, b.hold.note],
    b.inspect && [t("batch.inspect"), b.inspect, b.inspect.finding],
    b.result && [t("batch.result"), b.result, `${label("batch_verdict", b.result.verdict)} · `
      + `${label("batch_action", b.result.action)} · ${b.result.summary}`],
    b.published && [t("batch.published"), b.published, ""],
  ].filter(Boolean);
  const card = h("section", { class: "card", id: "batch-check", "data-state": b.state },
    h("h2", {}, t("batch.title")),
    h("p", {}, `${b.number} · ${product} · `, h("span", { id: "batch-state" }, label("batch_check_state", b.state)),
      ` · ${t("batch.complaints")}: ${b.complaint_nos.length}`),
    h("ol", { id: "batch-steps" }, done.map(([name, s, text]) => h("li", {},
      `${name} (${at(s.at)} · ${who(s.by) || s.by}${late(s)})${text ? `: ${text}` : ""}`))));
  const next = b.next_step;
  if (!next) return card;
  card.append(h("p", { id: "batch-next", "data-step": next.step },
    `${t("batch.next")}: ${label("batch_step", next.step)} · ${t("due")}: ${at(next.due_at)} `, mark(slaMark(next.due_at, null))));
  const me = session(), mine = people.find((p) => p.id === me.user);
  if (!next.roles.includes(me.role) && !(mine && next.departments.includes(mine.department))) return card;
  const send = (action, form) => api("resolution", `batch-checks/${no}/${action}`, { method: "POST", body: formBody(form) })
    .then(() => act.again()).catch((e) => showErrors(form, e));
  const inputs = {
    hold: ["hold", [field("note", h("textarea"), { wide: true, scope: "batch", label: t("batch.hold.note") })]],
    inspect: ["inspection", [field("finding", h("textarea"), { wide: true, scope: "batch", label: t("batch.inspect.finding") })]],
    result: ["result", [
      field("verdict", select([["unsafe", label("batch_verdict", "unsafe")], ["safe", label("batch_verdict", "safe")]]),
        { scope: "batch", label: t("batch.verdict") }),
      field("action", select(labelOptions("batch_action")), { scope: "batch", label: t("batch.action") }),
      field("summary", h("textarea"), { wide: true, scope: "batch", label: t("batch.summary") })]],
    publish: ["publication", []],
  };
  const [action, controls] = inputs[next.step];
  const form = h("form", { class: "grid", id: "batch-form", novalidate: true }, ...controls,
    h("p", {}, h("button", { type: "submit", id: "batch-send" }, label("batch_step", next.step))));
  form.addEventListener("submit", (e) => { e.preventDefault(); send(action, form); });
  card.append(form);
  return card;
}

// R7.5: a tenant's case goes to its merchant with a deadline; what the merchant replied (a copy
// kept) and its evidence come back here; merchant relations takes it back, and the merchant's
// access ends. The services decide who may send it (the case's department, a merchant with a contact).
function merchantCard({ c, act, at, who }, finished) {
  const card = h("section", { class: "card", id: "merchant" }, h("h2", {}, t("merchant.title")),
    h("p", {}, `${t("merchant.name")}: ${merchantName(c.mall_id, c.merchant_id)}`));
  const requests = c.merchant_requests || [];
  card.append(requests.length ? h("ol", { id: "merchant-requests" }, requests.map((r) => h("li",
    { "data-request": r.id, "data-status": r.status },
    h("p", {}, `${label("merchant_request_status", r.status)} · ${t("merchant.sent")}: ${at(r.sent_at)} · `,
      `${t("merchant.due")}: ${at(r.due_at)} `, r.status === "awaiting" ? mark(slaMark(r.due_at, r.sent_at)) : null),
    h("p", {}, `${t("merchant.note")}: ${r.note}`),
    r.reply ? h("div", { class: "merchant-reply" },
      h("p", {}, `${t("merchant.reply")} (${at(r.reply.at)}${r.reply.within_deadline ? "" : ` · ${t("merchant.late")}`}): `,
        r.reply.text),
      h("ul", {}, r.reply.evidence.map((e) => h("li", {}, [e.description, e.ref].filter(Boolean).join(" · "))))) : null,
    r.taken_back ? h("p", {}, `${t("merchant.taken_back")}: ${who(r.taken_back.by) || r.taken_back.by} · `,
      `${at(r.taken_back.at)} · ${r.taken_back.reason}`) : null)))
    : h("p", {}, t("merchant.none")));
  if (c.merchant_access) {
    const form = h("form", { class: "grid", id: "merchant-takeback-form", novalidate: true },
      field("reason", h("input"), { wide: true, scope: "merchant-takeback", label: t("reason") }),
      h("p", {}, h("button", { type: "submit", class: "secondary", id: "merchant-takeback" }, t("merchant.takeback"))));
    form.addEventListener("submit", (e) => { e.preventDefault(); act("merchant-takeback", formBody(form), form); });
    card.append(form);
  } else if (!finished) {
    const form = h("form", { class: "grid", id: "merchant-form", novalidate: true },
      field("note", h("textarea"), { wide: true, scope: "merchant", label: t("merchant.note") }),
      h("p", {}, h("button", { type: "submit", id: "merchant-send" }, t("merchant.send"))));
    form.addEventListener("submit", (e) => { e.preventDefault(); act("merchant-request", formBody(form), form); });
    card.append(form);
  }
  return card;
}

// R3.8: the improvements a case leads to, with their due dates; shown on resolved and closed
// cases too, since they are carried out after the customer's matter is settled.
function rectifications({ c, act, at, who, staffPicker }) {
  const items = c.rectifications || [];
  const card = h("section", { class: "card", id: "rectifications" }, h("h2", {}, t("rect.title")));
  card.append(items.length ? h("table", { id: "rectification-list" },
    h("thead", {}, h("tr", {}, ["#", t("rect.kind"), t("rect.description"), t("owner"), t("rect.due"), t("rect.done")]
      .map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, items.map((r) => h("tr", { "data-rectification": r.id, "data-done": r.done ? "true" : "false" },
      h("td", {}, r.id), h("td", {}, label("rectification_kind", r.kind)), h("td", {}, rectificationText(r.description)),
      h("td", {}, r.merchant_id ? merchantName(c.mall_id, r.merchant_id) : who(r.owner_id) || "—"), h("td", {}, at(r.due_at), " ", r.done ? "" : mark(slaMark(r.due_at, null))),
      h("td", {}, r.done ? `✓ ${at(r.done.at)} ${r.done.evidence || ""}` : doneForm(r, act))))))
    : h("p", {}, t("rect.none")));
  const form = h("form", { class: "grid", id: "rectification-form", novalidate: true },
    field("kind", select(labelOptions("rectification_kind")), { scope: "rect", label: t("rect.kind") }),
    field("owner_id", staffPicker(true), { scope: "rect", label: t("rect.owner") }),
    field("working_days", h("input", { type: "number", min: 1, max: 365, value: 3 }),
      { scope: "rect", label: t("rect.working_days") }),
    field("description", h("textarea"), { wide: true, scope: "rect", label: t("rect.description") }),
    h("p", {}, h("button", { type: "submit", id: "rectification-add" }, t("rect.add"))));
  form.addEventListener("submit", (e) => { e.preventDefault(); act("rectifications", formBody(form), form); });
  card.append(h("h3", {}, t("rect.add")), form);
  return card;
}

// R7.9: third-party mediation (12315, a consumer association, arbitration): each referral with
// its dates and the outcome, or the form that records it; a case is referred in any state.
function mediation({ c, act, at }) {
  const card = h("section", { class: "card", id: "mediation" }, h("h2", {}, t("mediation.title")));
  const referrals = c.referrals || [];
  if (referrals.length) {
    card.append(h("table", { id: "referrals" },
      h("thead", {}, h("tr", {}, [t("mediation.mediator"), t("mediation.reference"), t("mediation.referred_at"),
        t("mediation.outcome")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, referrals.map((r) => h("tr", { "data-referral": r.id, "data-result": r.outcome ? r.outcome.result : "" },
        h("td", {}, label("mediator", r.mediator)), h("td", {}, r.reference || "—"), h("td", {}, at(r.referred_at)),
        h("td", {}, r.outcome ? `${label("mediation_result", r.outcome.result)} · ${at(r.outcome.decided_at)} · ${r.outcome.summary}`
          : outcomeForm(r, act)))))));
  }
  const form = h("form", { class: "grid", id: "mediation-form", novalidate: true },
    field("mediator", select(labelOptions("mediator")), { scope: "mediation", label: t("mediation.mediator") }),
    field("reference", h("input"), { scope: "mediation", label: t("mediation.reference") }),
    field("note", h("input"), { wide: true, scope: "mediation", label: t("mediation.note") }),
    h("p", {}, h("button", { type: "submit", class: "secondary", id: "mediation-submit" }, t("mediation.refer"))));
  form.addEventListener("submit", (e) => { e.preventDefault(); act("mediation", formBody(form), form); });
  card.append(form);
  return card;
}

function outcomeForm(r, act) {
  const scope = `mediation-${r.id}`;
  const form = h("form", { class: "inline", "data-outcome-for": r.id, novalidate: true },
    field("result", select(labelOptions("mediation_result")), { scope, label: t("mediation.result") }),
    field("summary", h("input"), { scope, label: t("mediation.summary") }),
    field("amount", h("input", { inputmode: "decimal" }), { scope, label: t("mediation.amount") }),
    h("button", { type: "submit", "data-conclude": r.id }, t("mediation.record")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act("mediation-outcome", { referral_id: r.id, ...formBody(form) }, form);
  });
  return form;
}

function doneForm(r, act) {
  const form = h("form", { class: "inline", "data-rectification-done": r.id, novalidate: true },
    field("evidence", h("input", { placeholder: t("rect.evidence_hint") }), { scope: `rect-${r.id}`, label: t("rect.evidence") }),
    h("button", { type: "submit", "data-rectification": r.id }, t("act.task")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act("rectification-done", { rectification_id: r.id, ...formBody(form) }, form);
  });
  return form;
}

// R4.2: a supervisor closes a resolved case (or a reopened one, with a reason) and reopens a
// resolved or closed one for a dissatisfied customer.
function closing(c, act) {
  const card = h("section", { class: "card", id: "closing" }, h("h2", {}, t("closing.title")));
  if (!may("close_or_reopen")) { card.append(h("p", { class: "note" }, t("closing.who"))); return card; }
  if (c.state !== "closed") {
    const form = h("form", { class: "grid", id: "close-form", novalidate: true },
      field("reason", h("input"), { scope: "close", label: t("reason") }),
      h("p", {}, h("button", { type: "submit", id: "close" }, t("closing.close"))));
    form.addEventListener("submit", (e) => { e.preventDefault(); act("closure", formBody(form), form); });
    card.append(form);
  }
  if (FINISHED.includes(c.state)) {
    const form = h("form", { class: "grid", id: "reopen-form", novalidate: true },
      field("reason", h("input"), { scope: "reopen", label: t("reason") }),
      h("p", {}, h("button", { type: "submit", class: "secondary", id: "reopen" }, t("closing.reopen"))));
    form.addEventListener("submit", (e) => { e.preventDefault(); act("reopening", formBody(form), form); });
    card.append(form);
  }
  return card;
}

// R4.4: a typical resolved case goes into the chain's case library with its lessons.
function library(c) {
  if (!FINISHED.includes(c.state)) return null;
  const writes = may("library.write");
  const card = h("section", { class: "card", id: "library-put", hidden: !writes }, h("h2", {}, t("lib.put")));
  const link = () => h("p", { id: "library-link" }, h("a", { href: `#/library/${encodeURIComponent(c.complaint_no)}` },
    t("lib.in_library")));
  api("feedback", `library/${encodeURIComponent(c.complaint_no)}`)     // in the library already: a link to it
    .then(({ data }) => { card.querySelector("form")?.remove(); card.append(link()); card.hidden = false;
      if (data.lessons_pending) card.append(h("p", { class: "note" }, t("lib.lessons_pending"))); })
    .catch(() => { /* not in the library yet */ });
  if (!writes) return card;
  const form = h("form", { class: "grid", id: "library-form", novalidate: true },
    field("lessons", h("textarea"), { wide: true, scope: "lib", label: t("lib.lessons") }),
    h("p", {}, h("button", { type: "submit", id: "library-submit" }, t("lib.submit"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("feedback", "library", { method: "POST", body: { complaint_no: c.complaint_no, ...formBody(form) } });
      toast(t("ok"));
      form.replaceWith(link());
    } catch (error) { showErrors(form, error); }
  });
  card.append(form);
  return card;
}

// R7.7: in a high-risk case each answer waits for its lead's sign-off; the lead signs it here.
function signOff(c, proposal, act, who) {
  if (c.risk_level !== "high" || !c.lead || ["sent", "accepted", "objected", "withdrawn"].includes(proposal.status)) return null;
  if (proposal.signed_off) {
    return h("p", { id: "sign-off", "data-signed": "yes" }, `${t("lead.signed")}: ${who(proposal.signed_off.by)}`);
  }
  const mine = session().user === c.lead.staff_id || (!c.lead.staff_id && session().role === c.lead.role);
  return h("p", { id: "sign-off", "data-signed": "no" }, h("span", { class: "mark risk" }, t("lead.pending")), " ",
    mine ? h("button", { type: "button", id: "sign-off-button",
                         onclick: () => act("sign-off", { proposal_no: proposal.no }) }, t("act.sign_off")) : null);
}

function actions({ c, act, at, who }) {
  const cards = [];
  const findings = h("form", { class: "grid", id: "findings-form" },
    field("source", select(labelOptions("finding_source"))), field("summary", h("textarea", { required: true }), { wide: true }),
    h("p", {}, h("button", { type: "submit" }, t("save"))));
  findings.addEventListener("submit", (e) => { e.preventDefault(); act("findings", formBody(findings), findings); });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.findings")), findings));

  const proposal = h("form", { class: "grid", id: "proposal-form", novalidate: true },
    field("decision", select(labelOptions("decision")), { scope: "proposal" }),
    // "none" is the mall's own policy: sent as no basis at all
    field("legal_basis", select(labelOptions("legal_basis").map(([b, words]) => [b === "none" ? "" : b, words])),
      { scope: "proposal", label: t("basis") }),
    // R7.8: how the goods were sold; "none" (the usual price) is sent as no promotion at all
    field("promotion", select(labelOptions("promotion").map(([k, words]) => [k === "none" ? "" : k, words])),
      { scope: "proposal", label: t("promotion") }),
    field("price", h("input", { inputmode: "decimal" }), { scope: "proposal" }),
    field("demanded_amount", h("input", { inputmode: "decimal" }), { scope: "proposal", label: t("demanded") }),
    field("reasons", h("textarea", { required: true }), { wide: true, scope: "proposal" }),
    // R7.9: what the decision rests on (seed 001), one box each
    h("fieldset", { class: "wide", id: "proposal-bases" }, h("legend", {}, t("bases")),
      ...labelOptions("decision_basis").map(([b, words]) => h("label", {},
        h("input", { type: "checkbox", name: "basis", value: b }), " ", words, " "))),
    ...remedyInputs("proposal"),
    field("cap_override_reason", h("input"), { wide: true, scope: "proposal", label: t("cap_override") }),
    h("p", { class: "wide" },
      h("button", { type: "button", class: "secondary", id: "proposal-check" }, t("act.check")), " ",
      h("button", { type: "submit", id: "proposal-submit" }, t("act.propose"))),
    h("div", { class: "wide", id: "check-result", "aria-live": "polite" }));
  const proposalBody = () => {
    const body = formBody(proposal);
    delete body.remedy;                                    // gathered by remedies() instead
    const bases = [...proposal.querySelectorAll('input[name="basis"]:checked')].map((box) => box.value);
    return { ...body, reasons: lines(body.reasons), remedies: remedies(proposal), bases };
  };
  proposal.querySelector("#proposal-check").addEventListener("click", async () => {
    const body = proposalBody();
    try {
      const { data } = await api("resolution", `cases/${encodeURIComponent(c.complaint_no)}/proposal-check`,
        { method: "POST", body });
      showErrors(proposal, null);
      proposal.querySelector("#check-result").replaceChildren(checkResult(data));
    } catch (e) { showErrors(proposal, remedyErrors(e, body.remedies)); }
  });
  proposal.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = proposalBody();
    api("resolution", `cases/${encodeURIComponent(c.complaint_no)}/proposals`, { method: "POST", body })
      .then(() => act.again()).catch((error) => showErrors(proposal, remedyErrors(error, body.remedies)));
  });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.proposal")), proposal));

  const latest = (c.proposals || [])[c.proposals.length - 1];
  if (latest) {
    cards.push(h("section", { class: "card", id: "proposal-latest" },
      h("h2", {}, `${t("act.proposal")} #${latest.no}: ${label("decision", latest.decision)} · `,
        h("span", { "data-status": latest.status }, label("proposal_status", latest.status))),
      h("p", {}, (latest.remedies || []).map((r) => `${label("remedy", r.type)} ${r.amount ?? ""}`).join(listComma())),
      h("p", { id: "latest-bases" }, `${t("bases")}: `,
        (latest.bases || []).map((b) => label("decision_basis", b)).join(listComma()) || "—"),
      signOff(c, latest, act, who),
      h("p", {},
        h("button", { type: "button", id: "reply", onclick: () => act("reply", { proposal_no: latest.no, oral: true }) },
          t("act.reply")), " ",
        h("button", { type: "button", id: "accept", onclick: () => act("acceptance", { proposal_no: latest.no }) },
          t("act.accept")), " ",
        h("button", { type: "button", class: "secondary", id: "approve",
                      onclick: () => act("approval", { proposal_no: latest.no }) }, t("act.approve")))));
    const objection = h("form", { class: "grid", id: "objection-form" },
      field("points", h("textarea", { required: true }), { wide: true, label: t("act.points") }),
      h("p", {}, h("button", { type: "submit", class: "secondary" }, t("act.objection"))));
    objection.addEventListener("submit", (e) => {
      e.preventDefault();
      act("objection", { proposal_no: latest.no, points: lines(formBody(objection).points) }, objection);
    });
    cards.push(h("section", { class: "card" }, h("h2", {}, t("act.objection")), objection));
  }

  const note = h("form", { class: "grid", id: "note-form" },
    field("kind", select(labelOptions("note_kind").reverse()), { scope: "note", label: t("act.note") }),   // internal first
    field("via", select(labelOptions("via")), { scope: "note", label: t("note.via") }),
    field("text", h("textarea", { required: true }), { wide: true, scope: "note", label: t("act.note_text") }),
    h("p", {}, h("button", { type: "submit", class: "secondary" }, t("save")), " ",
      h("button", { type: "button", class: "secondary", id: "escalate",
                    onclick: () => act("escalation", { reason: "manual", note: note.querySelector("textarea").value.trim()
                      || undefined }) }, t("act.escalate"))));
  note.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = formBody(note);
    if (body.kind !== "customer_contact") delete body.via;   // only contact with the customer says how (R2.3)
    act("notes", body, note);
  });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.note")), note));

  const open = (c.tasks || []).filter((task) => !task.done);
  if ((c.tasks || []).length) {
    cards.push(h("section", { class: "card", id: "tasks" }, h("h2", {}, t("tasks")), h("ul", {}, c.tasks.map((task) =>
      h("li", {}, `${labelIn(["remedy", "task_kind"], task.kind)} ${task.amount ?? ""} · ${at(task.due_at)} `, task.done ? "✓" :
        h("button", { type: "button", "data-task": task.id,
                      onclick: () => act("task-done", { task_id: task.id,
                        note: `${labelIn(["remedy", "task_kind"], task.kind)} ${t("rect.done")}` }) }, t("act.task")))))));
  }
  const resolve = h("form", { class: "grid", id: "resolve-form" },
    field("summary", h("textarea", { required: true }), { wide: true, scope: "resolve" }),
    h("p", {}, h("button", { type: "submit", id: "resolve", disabled: open.length > 0 || !latest }, t("act.resolve"))));
  resolve.addEventListener("submit", (e) => { e.preventDefault(); act("resolution", formBody(resolve), resolve); });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.resolve")), resolve));
  return cards;
}

// What a draft proposal would meet, before it is sent: the law's minimum, the caps, who must approve.
function checkResult(x) {
  const yes = (v) => (v ? t("yes") : t("no"));
  const rows = [
    [t("check.total"), x.total], [t("check.compensation"), x.compensation],
    [t("basis"), label("legal_basis", x.legal_basis || "none")],
    x.law ? [t("check.statutory_total"), x.statutory_total] : null,
    x.law ? [t("check.statutory_compensation"), x.statutory_compensation] : null,
    x.demand_above_statutory !== undefined && x.demand_above_statutory !== null
      ? [t("check.demand_above_statutory"), yes(x.demand_above_statutory)] : null,
    x.promotion ? [t("promotion"), label("promotion", x.promotion.kind)] : null,
    [t("check.approver"), x.approver_role ? label("role", x.approver_role) : t("check.no_approval")],
    [t("check.you_may_approve"), yes(x.you_may_approve)],
  ].filter(Boolean);
  return h("div", {},
    h("table", { id: "check-table" }, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v ?? "—")))),
    (x.breaches || []).length ? h("ul", { class: "error", id: "check-breaches" },
      x.breaches.map((b) => h("li", {}, `${t("check.breach")}: ${b}`))) : null,
    (x.warnings || []).length ? h("ul", { class: "warn", id: "check-warnings" },
      x.warnings.map((w) => h("li", {}, w))) : null,
    // R7.8: the regulation's rules for goods sold on promotion, in its own words
    x.promotion ? h("div", { id: "check-promotion" }, h("p", {}, `${t("check.promotion_rules")}: ${x.promotion.regulation}`),
      h("ul", {}, x.promotion.rules.map((r) => h("li", {}, `${r.article ? `${r.article} ` : ""}“${r.text}”`)))) : null);
}
