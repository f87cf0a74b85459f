// Case page: the case, its whole timeline, and the handler's actions from finding to resolution.
import { AT_RISK_SHARE, api, field, formBody, h, mark, select, showErrors, slaMark, t, toast, when } from "./core.js";

const SOURCES = ["records", "cctv", "staff_interview", "supplier_qc_report", "site_inspection", "customer"];
const DECISIONS = ["upheld", "partly_upheld", "not_upheld"];

export async function render(main, [number]) {
  const { data: c } = await api("resolution", `cases/${encodeURIComponent(number)}`);
  const again = () => { main.replaceChildren(); return render(main, [number]); };
  const act = (action, body, form) => api("resolution", `cases/${encodeURIComponent(number)}/${action}`,
    { method: "POST", body }).then(() => { toast(t("ok")); return again(); }).catch((e) => form ? showErrors(form, e)
    : toast(`${t("failed")}: ${e.message}`));

  main.append(
    h("h1", {}, `${t("case.title")} `, h("span", { id: "case-number" }, c.complaint_no), " · ",
      h("span", { id: "case-state", "data-state": c.state }, c.state)),
    h("section", { class: "card" }, h("p", {},
      `${t("mall")}: ${c.mall_id} · ${t("category")}: ${c.category || ""} · ${t("risk")}: ${c.risk_level || ""} · `,
      `${t("owner")}: ${c.owner_id || "—"} · ${t("due")}: ${when(c.resolution_due_at)} `,
      // the policy's default at-risk share (0.8): handlers, who work this page, may not read the live report
      mark(slaMark(c.resolution_due_at, c.opened_at, AT_RISK_SHARE)))));

  if (!["resolved", "closed"].includes(c.state)) main.append(h("div", { class: "actions" }, actions(c, act)));

  main.append(h("h2", {}, t("timeline")), h("table", { id: "timeline" },
    h("thead", {}, h("tr", {}, ["#", t("at"), t("by"), t("action"), t("state")].map((x) => h("th", {}, x)))),
    h("tbody", {}, (c.timeline || []).map((e) => h("tr", { "data-action": e.action },
      h("td", {}, e.seq), h("td", {}, when(e.at)), h("td", {}, `${e.by} (${e.role || ""})`),
      h("td", {}, e.action), h("td", {}, e.state))))));
}

function actions(c, act) {
  const cards = [];
  const findings = h("form", { class: "grid", id: "findings-form" },
    field("source", select(SOURCES.map((s) => [s, s]))), field("summary", h("textarea", { required: true }), { wide: true }),
    h("p", {}, h("button", { type: "submit" }, t("save"))));
  findings.addEventListener("submit", (e) => { e.preventDefault(); act("findings", formBody(findings), findings); });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.findings")), findings));

  const proposal = h("form", { class: "grid", id: "proposal-form" },
    field("decision", select(DECISIONS.map((d) => [d, d]))),
    field("price", h("input", { inputmode: "decimal" })), field("demanded_amount", h("input", { inputmode: "decimal" }),
      { label: t("demanded") }),
    field("reasons", h("textarea", { required: true }), { wide: true }),
    h("label", { for: "remedy-refund" }, t("refund"), h("input", { id: "remedy-refund", inputmode: "decimal" })),
    h("label", { for: "remedy-voucher" }, t("voucher"), h("input", { id: "remedy-voucher", inputmode: "decimal" })),
    h("p", { class: "wide" },
      h("button", { type: "button", class: "secondary", id: "proposal-check" }, t("act.check")), " ",
      h("button", { type: "submit", id: "proposal-submit" }, t("act.propose"))),
    h("div", { class: "wide", id: "check-result", "aria-live": "polite" }));
  const proposalBody = () => {
    const body = formBody(proposal);
    body.reasons = (body.reasons || "").split("\n").map((r) => r.trim()).filter(Boolean);
    body.remedies = [["refund", "#remedy-refund"], ["voucher", "#remedy-voucher"]]
      .map(([type, sel]) => [type, proposal.querySelector(sel).value.trim()])
      .filter(([, amount]) => amount).map(([type, amount]) => ({ type, amount }));
    return body;
  };
  proposal.querySelector("#proposal-check").addEventListener("click", async () => {
    try {
      const { data } = await api("resolution", `cases/${encodeURIComponent(c.complaint_no)}/proposal-check`,
        { method: "POST", body: proposalBody() });
      proposal.querySelector("#check-result").replaceChildren(h("table", {}, Object.entries(data).map(([k, v]) =>
        h("tr", {}, h("th", {}, k), h("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v))))));
    } catch (e) { showErrors(proposal, e); }
  });
  proposal.addEventListener("submit", (e) => { e.preventDefault(); act("proposals", proposalBody(), proposal); });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.proposal")), proposal));

  const latest = (c.proposals || [])[c.proposals.length - 1];
  if (latest) {
    cards.push(h("section", { class: "card", id: "proposal-latest" },
      h("h2", {}, `${t("act.proposal")} #${latest.no}: ${latest.decision} · ${latest.status}`),
      h("p", {}, (latest.remedies || []).map((r) => `${r.type} ${r.amount ?? ""}`).join(", ")),
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
      const points = (formBody(objection).points || "").split("\n").map((p) => p.trim()).filter(Boolean);
      act("objection", { proposal_no: latest.no, points }, objection);
    });
    cards.push(h("section", { class: "card" }, h("h2", {}, t("act.objection")), objection));
  }

  const note = h("form", { class: "grid", id: "note-form" },
    field("kind", select([["internal", t("note.internal")], ["customer_contact", t("note.customer_contact")]]),
      { scope: "note", label: t("act.note") }),
    field("text", h("textarea", { required: true }), { wide: true, scope: "note", label: t("act.note_text") }),
    h("p", {}, h("button", { type: "submit", class: "secondary" }, t("save")), " ",
      h("button", { type: "button", class: "secondary", id: "escalate",
                    onclick: () => act("escalation", { reason: "manual", note: note.querySelector("textarea").value.trim()
                      || undefined }) }, t("act.escalate"))));
  note.addEventListener("submit", (e) => { e.preventDefault(); act("notes", formBody(note), note); });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.note")), note));

  const open = (c.tasks || []).filter((task) => !task.done);
  if ((c.tasks || []).length) {
    cards.push(h("section", { class: "card", id: "tasks" }, h("h2", {}, t("tasks")), h("ul", {}, c.tasks.map((task) =>
      h("li", {}, `${task.kind} ${task.amount ?? ""} · ${when(task.due_at)} `, task.done ? "✓" :
        h("button", { type: "button", "data-task": task.id,
                      onclick: () => act("task-done", { task_id: task.id, note: `${task.kind} done` }) }, t("act.task")))))));
  }
  const resolve = h("form", { class: "grid", id: "resolve-form" },
    field("summary", h("textarea", { required: true }), { wide: true, scope: "resolve" }),
    h("p", {}, h("button", { type: "submit", id: "resolve", disabled: open.length > 0 || !latest }, t("act.resolve"))));
  resolve.addEventListener("submit", (e) => { e.preventDefault(); act("resolution", formBody(resolve), resolve); });
  cards.push(h("section", { class: "card" }, h("h2", {}, t("act.resolve")), resolve));
  return cards;
}
