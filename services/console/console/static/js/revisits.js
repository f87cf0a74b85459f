// Revisit worklist (R4.1-R4.3): the revisits due in my malls, the earliest deadline first, with
// what was tried and when to try next; the customer's full number through intake's audited read
// (for a purpose from a short list); the call's outcome, score, reasons and comment, recorded.
import {
  api, myMalls, keepMarks, categoryName, field, h, label, labelOptions, lang, mallName, mark, may, select, session, showErrors,
  slaMark, staff, t, toast, when,
} from "./core.js";

const OPEN = ["scheduled", "retry"];   // feedback's revisits still to make (rules.OPEN)

export async function render(main) {
  const malls = myMalls();
  const lists = await Promise.all((malls.length ? malls : [undefined])   // chain-wide: every mall at once
    .map((mall) => api("feedback", "revisits", { query: { mall_id: mall } })));
  const items = lists.flatMap(({ data }) => data.items || [])
    .sort((a, b) => Date.parse(a.due_at || "9999-12-31") - Date.parse(b.due_at || "9999-12-31"));
  const names = new Map((await staff()).map((m) => [m.id, m.name]));
  // a list mixing malls names each time's zone
  const page = { names, zone: new Set(items.map((r) => r.mall_id)).size > 1 || malls.length !== 1 };
  main.append(h("h1", {}, t("rev.title")));
  if (!items.length) { main.append(h("p", { id: "revisits-empty" }, t("rev.empty"))); return; }
  main.append(h("p", { class: "note" }, t("rev.intro")), h("div", { id: "revisits" }, items.map((r) => card(r, page))));
  // The countdowns run while the list is open: each mark is worked out again every 30 s.
  keepMarks(main, ".sla[data-due]", 30000);
}

function card(revisit, page, recorded = false) {
  const id = revisit.revisit_id, number = revisit.complaint_no, open = OPEN.includes(revisit.status);
  const at = (iso) => when(iso, revisit.mall_id, { zone: page.zone });
  const tried = revisit.attempts || [];
  const facts = [
    [t("category"), categoryName(revisit.category) || "—"],
    [t("channel"), label("channel", revisit.channel)],
    [t("rev.way"), label("revisit_way", revisit.way) || "—"],
    [t("rev.due"), [at(revisit.due_at), " ",
      open ? h("span", { class: "sla", "data-due": revisit.due_at || "", "data-from": revisit.resolved_at || "" },
        mark(slaMark(revisit.due_at, revisit.resolved_at))) : null]],   // an answered one has no countdown
    [t("state"), h("span", { "data-status": revisit.status }, label("revisit_status", revisit.status))],
    [t("rev.tried"), h("span", { "data-tried": tried.length }, `${tried.length} / ${revisit.max_attempts}`)],
    [t("rev.next"), h("span", { "data-next-attempt": revisit.next_attempt_at || "" },
      revisit.next_attempt_at ? at(revisit.next_attempt_at) : "—")],
  ];
  return h("section", { class: "card", id: `revisit-${id}`, "data-revisit": id, "data-complaint": number,
                        "aria-labelledby": `revisit-${id}-title` },
    h("h2", { id: `revisit-${id}-title` },
      h("a", { href: `#/case/${encodeURIComponent(number)}` }, number), ` · ${mallName(revisit.mall_id)}`),
    h("dl", { class: "facts" }, facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    attempts(tried, at, page),
    contact(revisit, open),
    recorded ? outcome(revisit) : null,
    open && may("revisit.record") ? recordForm(revisit, page) : answer(revisit));
}

function attempts(tried, at, page) {
  if (!tried.length) return h("p", { class: "note" }, t("rev.no_attempts"));
  const who = (by) => (by === "customer" ? t("rev.by_customer") : `${page.names.get(by) || ""} ${by}`.trim());
  return h("table", { class: "attempts" },
    h("caption", {}, t("rev.attempts")),
    h("thead", {}, h("tr", {}, [t("at"), t("outcome"), t("by"), t("rev.note")].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, tried.map((a) => h("tr", { "data-outcome": a.outcome },
      h("td", {}, at(a.at)), h("td", {}, label("outcome", a.outcome)), h("td", {}, who(a.by)), h("td", {}, a.note || "")))));
}

const REVISIT_PURPOSES = ["revisit_call", "verify_details", "call_back"];   // of labels.yml's contact_purpose

// The masked contact, and (for a revisit still to make) the full one through intake's audited read:
// the purpose's words, as the caller chose them, are what the audit log keeps.
function contact(revisit, open) {
  const id = revisit.revisit_id;
  const shown = h("span", { "data-contact": "masked" }, revisit.contact_masked || "—");
  const line = h("p", { class: "contact" }, `${t("rev.contact")}: `, shown);
  if (!open || !revisit.contact_masked || !may("customer.contact")) return line;
  const purpose = select(labelOptions("contact_purpose").filter(([code]) => REVISIT_PURPOSES.includes(code)));
  const form = h("form", { class: "inline", "data-reveal": id },
    field("purpose", purpose, { scope: id, label: t("rev.purpose") }),
    h("p", {}, h("button", { type: "submit", class: "secondary" }, t("rev.reveal"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const why = label("contact_purpose", purpose.value);
    try {
      const { data } = await api("intake", `complaints/${encodeURIComponent(revisit.complaint_no)}/customer`,
                                 { query: { purpose: why } });
      const { name, phone, email } = data.customer;
      const full = h("span", { "data-contact": "full" }, name ? `${name} ` : "",
        phone ? h("a", { href: `tel:${phone}`, "data-tel": phone }, phone) : null,
        phone && email ? " · " : "", email ? h("a", { href: `mailto:${email}` }, email) : null);
      shown.replaceWith(full);
      const said = h("p", { class: "note", "data-revealed": why, tabindex: "-1" }, `${t("rev.revealed")}: ${why}`);
      form.replaceWith(said);
      (full.querySelector("a") || said).focus();
    } catch (error) { showErrors(form, error); }
  });
  return h("div", {}, line, form);
}

function recordForm(revisit, page) {
  const scope = revisit.revisit_id;
  const outcome = select(labelOptions("outcome"));
  const score = select([["", t("rev.score_none")], ...[5, 4, 3, 2, 1].map((v) => [String(v), t(`rev.score${v}`)])]);
  const errorId = `f-${scope}-reasons-err`;
  const reasons = labelOptions("reason_tag").map(([code, words], i) =>
    h("label", { class: "inline" },
      h("input", { type: "checkbox", value: code, "data-reason": code, "aria-describedby": errorId,
                   ...(i === 0 ? { "data-path": "reasons" } : {}) }), words));
  const answerFields = [
    field("score", score, { scope, label: t("score") }),
    h("fieldset", { class: "wide reasons" }, h("legend", {}, t("rev.reasons")), reasons,
      h("span", { class: "error", id: errorId, "data-error-for": "reasons" })),
    field("comment", h("textarea", { rows: 2, maxlength: 2000 }), { scope, label: t("comment"), wide: true }),
  ];
  const note = field("note", h("input", { maxlength: 2000 }), { scope, label: t("rev.note"), wide: true });
  const form = h("form", { class: "grid", "data-record": scope },
    field("outcome", outcome, { scope, label: t("outcome") }), answerFields, note,
    h("p", { class: "wide" }, h("button", { type: "submit" }, t("rev.record"))));
  // a reached customer answers (score, reasons, comment); otherwise the caller notes what happened
  const shape = () => {
    const reached = outcome.value === "reached";
    answerFields.forEach((el) => { el.hidden = !reached; });
    note.hidden = reached;
  };
  outcome.addEventListener("change", shape);
  shape();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { outcome: outcome.value };
    const text = (path) => form.querySelector(`[data-path="${path}"]`).value.trim();
    if (outcome.value === "reached") {
      if (score.value) body.score = Number(score.value);
      body.reasons = [...form.querySelectorAll("[data-reason]:checked")].map((el) => el.value);
      if (text("comment")) body.comment = text("comment");
    } else if (text("note")) body.note = text("note");
    try {
      const { data } = await api("feedback", `revisits/${encodeURIComponent(scope)}/attempts`, { method: "POST", body });
      const section = document.getElementById(`revisit-${scope}`);
      const fresh = card(data, page, true);
      section.replaceWith(fresh);
      fresh.querySelector("[data-outcome-next]").focus();
      toast(t("rev.done"));
    } catch (error) { showErrors(form, error); }
  });
  return form;
}

// What the recorded call means for the case, said right after it is recorded.
function outcome(revisit) {
  const satisfied = revisit.answer && revisit.answer.satisfied;
  const [kind, words] = revisit.status === "answered"
    ? (satisfied ? ["satisfied", t("rev.then_closes")] : ["dissatisfied", t("rev.then_reopens")])
    : revisit.status === "unreachable" ? ["unreachable", t("rev.then_unreachable")]
      : ["retry", `${t("rev.then_retry")} ${when(revisit.next_attempt_at, revisit.mall_id)}`];
  return h("p", { class: kind === "dissatisfied" || kind === "unreachable" ? "warn" : "ack", role: "status",
                  tabindex: "-1", "data-outcome-next": kind }, words);
}

function answer(revisit) {
  const given = revisit.answer;
  if (!given) return null;
  return h("dl", { class: "facts", "data-answer": given.satisfied ? "satisfied" : "dissatisfied" },
    h("dt", {}, t("score")), h("dd", { "data-score": given.score }, t(`rev.score${given.score}`)),
    h("dt", {}, t("rev.reasons")),
    h("dd", {}, (given.reasons || []).map((r) => label("reason_tag", r)).join(lang() === "zh" ? "、" : ", ") || "—"),
    h("dt", {}, t("comment")), h("dd", {}, given.comment || "—"));
}
