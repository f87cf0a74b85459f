// Service desk: every R1.3 field, the duplicate warning, the acknowledgement and its deadline,
// and a simple complaint settled on the spot at the desk (R3.2).
import { api, myMalls, categoryCell, categoryName, field, formBody, h, label, labelOptions, lines, mallIds, mallName, remedies,
         remedyErrors, remedyInputs, select, session, showErrors, t, toast, when } from "./core.js";

const input = (attrs = {}) => h("input", attrs);

export async function render(main) {
  const me = session();
  const malls = myMalls();
  const form = h("form", { class: "grid", id: "desk-form", novalidate: true },
    field("mall_id", select(malls.map((m) => [m, mallName(m)])), { label: t("mall") }),
    // what reaches the desk: a customer in front of it, or on the phone
    field("channel", select(labelOptions("channel").filter(([c]) => ["desk", "hotline"].includes(c)))),
    field("customer.name", input({ autocomplete: "off" })),
    field("customer.phone", input({ type: "tel", inputmode: "tel" })),
    field("customer.email", input({ type: "email" })),
    field("customer.member_id", input()),
    field("customer.member_tier", select([["", ""], ...labelOptions("member_tier")])),
    field("location.area", input({ list: "areas" })),
    // the merchant is picked or typed by name; a listed one goes in with its id too
    field("location.merchant_name", input({ list: "merchants", autocomplete: "off" }), { label: t("location.merchant") }),
    h("input", { type: "hidden", "data-path": "location.merchant_id", id: "merchant-id" }),
    field("location.store", input()),
    field("incident_time_band", select([["", ""], ...labelOptions("time_band")])),
    field("staff_involved", input({ placeholder: "E1024, E1025" })),
    field("product.barcode", input({ inputmode: "numeric" })),
    field("product.brand", input()),
    field("product.model", input()),
    field("order_no", input()),
    field("description", h("textarea", { required: true }), { wide: true }),
    field("demands.fact", h("textarea")),
    field("demands.expectation", h("textarea")),
    field("emotion", select([["", ""], ...labelOptions("emotion")])),
    field("anger_score", input({ type: "number", min: 1, max: 5 })),
    field("tone_note", input({ maxlength: 200, autocomplete: "off" }), { wide: true }),
    h("p", { class: "wide" }, h("button", { type: "submit", id: "desk-submit" }, t("desk.submit"))),
    // the area is free text, no code: the suggestions are in the clerk's words, and stay as typed
    h("datalist", { id: "areas" }, t("desk.areas").split("|").map((words) => h("option", { value: words }))),
    h("datalist", { id: "merchants" }));
  form.querySelector('[data-path="staff_involved"]').dataset.list = "";
  const result = h("div", { id: "desk-result", "aria-live": "polite" });
  main.append(h("h1", {}, t("desk.title")), h("section", { class: "card" }, form), result);
  form.querySelector("select").focus();
  loadMerchants(form);
  form.querySelector('[data-path="mall_id"]').addEventListener("change", () => loadMerchants(form));
  // A merchant picked from the registry goes in with its id, so reports count it as that merchant.
  form.querySelector('[data-path="location.merchant_name"]').addEventListener("input", (event) => {
    const listed = [...form.querySelectorAll("#merchants option")].find((o) => o.value === event.target.value.trim());
    form.querySelector("#merchant-id").value = listed ? listed.dataset.id : "";
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = formBody(form);
    if (!body.description) {
      showErrors(form, { body: { fields: { description: [t("field.required")] } } });
      return;
    }
    body.channel_ref = `console-${me.user}-${Date.now()}`;
    try {
      const { status, data } = await api("intake", "complaints", { method: "POST", body });
      showErrors(form, null);
      showResult(result, data, status);
    } catch (error) {
      showErrors(form, error);
    }
  });
}

async function loadMerchants(form) {
  // The mall's merchants from the mall registry; a merchant not listed can still be typed in.
  const picker = form.querySelector("#merchants");
  const mall = form.querySelector('[data-path="mall_id"]').value;
  form.querySelector("#merchant-id").value = "";   // a merchant id is its own mall's
  try {
    const { data } = await api("intake", `malls/${encodeURIComponent(mall)}/merchants`);
    picker.replaceChildren(...data.items.map((m) => h("option", { value: m.name, "data-id": m.id },
      [m.floor && `${m.floor}F`, m.area].filter(Boolean).join(" · "))));
  } catch (error) { picker.replaceChildren(); }   // the field stays free text
}

function showResult(result, complaint, status) {
  const rejected = complaint.status === "rejected";
  const duplicate = rejected && complaint.rejection && complaint.rejection.reason === "duplicate";
  const box = h("section", { class: rejected ? "warn" : "ack", id: "desk-ack", "data-number": complaint.number },
    h("h2", {}, `${rejected ? (duplicate ? t("desk.duplicate") : t("desk.rejected")) : t("desk.registered")}: `,
      h("span", { id: "complaint-number" }, complaint.number)),
    status === 200 ? h("p", {}, t("desk.same")) : null,
    rejected ? h("p", { id: "rejection", "data-reason": complaint.rejection.reason }, rejectionWords(complaint.rejection),
      complaint.rejection.duplicate_of ? `→ ${complaint.rejection.duplicate_of}` : "") : null,
    rejected ? null : h("p", {}, `${t("desk.ack_due")}: `, h("strong", { id: "ack-due" }, when(complaint.ack_due_at, complaint.mall_id))),
    complaint.acknowledgement ? h("p", {}, `${t("desk.acknowledged")} ${when(complaint.acknowledgement.acknowledged_at, complaint.mall_id)}`)
      : rejected ? null    // a refused complaint has nothing to acknowledge: the desk tells the customer why
      : h("button", { type: "button", id: "ack-button", onclick: (e) => acknowledge(e.target, complaint) }, t("desk.ack_now")),
    // R1.2, R7.1: at the desk the receipt is a slip handed over (no message is sent), which tells the customer too
    rejected ? null : h("button", { type: "button", id: "receipt-button", onclick: () => printReceipt(box, complaint) },
      t("receipt.print")));
  result.replaceChildren(box);
  if (!rejected) result.append(spotForm(complaint));
  // Focus goes where the desk goes next: "customer told", else the outcome's heading.
  const next = box.querySelector("#ack-button") || box.querySelector("h2");
  if (next.tagName === "H2") next.setAttribute("tabindex", "-1");
  next.focus();
}

// Why intake did not take it, in words (its detail is written for the log, in English).
const rejectionWords = (r) => `${label("rejection_reason", r.reason)} `;

// R3.2: a low-risk complaint outside a dispute, settled here and now within the desk's own
// authority. Resolution opens the case only once triage has assessed the complaint (events
// between services), so a settlement sent too early waits for the case a little and tries again.
const CASE_WAIT_MS = 20000;

function spotForm(complaint) {
  const status = h("p", { id: "spot-status", "aria-live": "polite" });
  const form = h("form", { class: "grid", id: "spot-form", novalidate: true },
    h("p", { class: "wide note" }, t("spot.hint")),
    field("decision", select(labelOptions("decision")), { scope: "spot" }),
    // R7.8: bought on promotion, at clearance or as a gift (the receipt says); the usual price sends none
    field("promotion", select(labelOptions("promotion").map(([k, words]) => [k === "none" ? "" : k, words])),
      { scope: "spot", label: t("promotion") }),
    field("price", h("input", { inputmode: "decimal" }), { scope: "spot" }),
    field("demanded_amount", h("input", { inputmode: "decimal" }), { scope: "spot", label: t("demanded") }),
    ...remedyInputs("spot"),
    field("signature_ref", h("input"), { scope: "spot", label: t("spot.signature") }),
    field("reasons", h("textarea"), { wide: true, scope: "spot" }),
    field("summary", h("textarea"), { wide: true, scope: "spot", label: t("spot.summary") }),
    field("text", h("textarea"), { wide: true, scope: "spot", label: t("spot.text") }),
    h("p", { class: "wide" }, h("button", { type: "submit", id: "spot-submit" }, t("spot.submit"))), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = formBody(form);
    body.reasons = lines(body.reasons);
    delete body.remedy;
    body.remedies = remedies(form);
    const button = form.querySelector("#spot-submit");
    button.disabled = true;
    try {
      const { data } = await settle(complaint.number, body, status);
      showErrors(form, null);
      form.replaceWith(h("section", { class: "ack", id: "spot-done", "data-state": data.state },
        h("h2", {}, `${t("spot.done")}: ${data.complaint_no}`),
        h("p", {}, (data.resolution && data.resolution.summary) || ""),
        h("p", {}, h("a", { href: `#/case/${encodeURIComponent(data.complaint_no)}`, id: "spot-case" }, t("spot.open_case")))));
    } catch (error) {
      status.textContent = error.status === 404 ? t("spot.not_open") : "";
      if (error.status === 409 || error.status === 403) status.textContent = `${t("spot.refused")}: ${error.message}`;
      showErrors(form, remedyErrors(error, body.remedies));
    } finally { button.disabled = false; }
  });
  const grading = h("p", { id: "spot-assessment", "aria-live": "polite" }, t("spot.grading"));
  const card = h("section", { class: "card", id: "spot" }, h("h2", {}, t("spot.title")), grading, form);
  showGrading(complaint.number, grading);
  return card;
}

// Triage's grading once it is there: whether this complaint can be settled here at all (resolution's
// spot rules: low risk, no cross-department dispute). Only said, not enforced: resolution decides.
async function showGrading(number, line) {
  const deadline = Date.now() + CASE_WAIT_MS;
  for (;;) {
    try {
      const { data: a } = await api("triage", `assessments/${encodeURIComponent(number)}`);
      const spotable = a.risk_level === "low" && !a.review_meeting;
      line.dataset.risk = a.risk_level;
      line.className = spotable ? "" : "warn";
      line.replaceChildren(`${t("risk")}: ${label("risk_level", a.risk_level)} · ${t("category")}: `,
        ...categoryCell(a.category && categoryName(a.category), a.category_confirmed, a.category_confidence),
        ` · ${t("triage.department")}: ${label("department", a.department)}`
        + (spotable ? "" : ` · ${t(a.review_meeting ? "spot.dispute" : "spot.not_low")}`));
      return;
    } catch (error) {
      if (error.status !== 404 || Date.now() > deadline) { line.textContent = ""; return; }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (!line.isConnected) return;   // another complaint or another page since
    }
  }
}

async function settle(number, body, status) {
  const deadline = Date.now() + CASE_WAIT_MS;
  body.request_id = `spot-${number}-${Date.now()}`;   // a retry after a lost answer settles once
  for (;;) {
    try {
      return await api("resolution", `cases/${encodeURIComponent(number)}/spot-resolution`, { method: "POST", body });
    } catch (error) {
      if (error.status !== 404 || Date.now() > deadline) throw error;
      status.textContent = t("spot.waiting");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function acknowledge(button, complaint) {
  try {
    const { data } = await api("intake", `complaints/${complaint.number}/acknowledgement`,
      { method: "POST", body: { acknowledged_by: session().user, method: "in_person" } });
    button.replaceWith(h("p", { id: "ack-done" },
      `${t("desk.acknowledged")} ${when(data.acknowledged_at || data.acknowledgement?.acknowledged_at, complaint.mall_id)}`));
  } catch (error) { toast(`${t("failed")}: ${error.message}`); }
}

// The slip handed to a desk customer: the number to quote, when and where it was received,
// what happens next. Printing it is telling the customer (the acknowledgement, in person).
async function printReceipt(box, complaint) {
  const ackButton = box.querySelector("#ack-button");
  if (ackButton) await acknowledge(ackButton, complaint);
  document.querySelector("#receipt")?.remove();
  const slip = h("section", { id: "receipt", class: "receipt", "data-number": complaint.number },
    h("h2", {}, mallName(complaint.mall_id)),
    h("h3", {}, t("receipt.title")),
    h("p", {}, `${t("receipt.number")}: `, h("strong", { id: "receipt-number" }, complaint.number)),
    h("p", {}, `${t("receipt.received")}: `, h("span", { id: "receipt-received" }, when(complaint.received_at, complaint.mall_id))),
    h("p", {}, t("receipt.next")),
    h("p", { class: "note" }, t("receipt.keep")));
  box.after(slip);
  // on paper the slip alone: a copy as the page's only printed part (console.css, @media print)
  document.querySelector("#print-area")?.remove();
  const copy = slip.cloneNode(true);
  for (const el of [copy, ...copy.querySelectorAll("[id]")]) el.removeAttribute("id");   // ids stay unique
  document.body.append(h("div", { id: "print-area" }, copy));
  window.print();
}
