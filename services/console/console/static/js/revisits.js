// Revisit worklist: call the customer, record the outcome and their satisfaction.
import { api, field, formBody, h, mark, select, session, showErrors, slaMark, t, toast, when } from "./core.js";

const OUTCOMES = ["reached", "no_answer", "wrong_number"];   // of a call, as feedback's AttemptIn takes it

export async function render(main) {
  const malls = session().malls.filter((m) => m !== "*");
  const items = [];
  for (const mall of malls) {
    const { data } = await api("feedback", "revisits", { query: { mall_id: mall } });
    items.push(...(data.items || []));
  }
  main.append(h("h1", {}, t("rev.title")));
  if (!items.length) { main.append(h("p", {}, t("rev.empty"))); return; }
  for (const revisit of items) main.append(card(revisit));
}

function card(revisit) {
  const scope = revisit.revisit_id;
  const form = h("form", { class: "grid", "data-revisit": revisit.revisit_id },
    field("outcome", select(OUTCOMES.map((v) => [v, t(`outcome.${v}`)])), { scope }),
    field("score", select([["", ""], ...[5, 4, 3, 2, 1].map((v) => [String(v), String(v)])]), { scope }),
    field("comment", h("input"), { scope }),
    h("p", {}, h("button", { type: "submit" }, t("rev.record"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = formBody(form);
    if (body.score) body.score = Number(body.score);
    try {
      await api("feedback", `revisits/${encodeURIComponent(revisit.revisit_id)}/attempts`, { method: "POST", body });
      form.replaceWith(h("p", { class: "ack", "data-recorded": revisit.revisit_id }, t("rev.done")));
      toast(t("rev.done"));
    } catch (error) { showErrors(form, error); }
  });
  return h("section", { class: "card", "data-complaint": revisit.complaint_no },
    h("h2", {}, `${revisit.revisit_id} · ${revisit.complaint_no} · ${revisit.contact_masked || ""} (${revisit.way || ""})`),
    h("p", {}, `${t("due")}: ${when(revisit.due_at)} `, mark(slaMark(revisit.due_at, revisit.scheduled_at))),
    form);
}
