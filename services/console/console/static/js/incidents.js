// Adverse events (R3.9, R7.10, seed 003): a store reports one with when and where it happened; the store
// manager verifies it and forwards it to the regional manager within 24 h (or dismisses it); the regional
// manager puts a handling plan to the customer and records their answer, handles it within 48 h once a
// plan is agreed, and tells the customer the result within the policy's hours. A list per mall with each open step's deadline and countdown, the report form, and
// an incident's page offering exactly its next step to the role that takes it. The services still decide.
import { api, keepMarks, field, formBody, h, label, labelOptions, lines, mallName, mallTime, mallZone, merchantName,
         merchantOptions, myMalls, mark, may, select, session, showErrors, slaMark, staff, t, toast, when } from "./core.js";

// The step each open state waits for: its clock's words (label group `clock`), the due time and its start
// as the incident carries them, and who may take it (resolution.yml's verify_incident and handle_incident).
const STEPS = {
  reported: { clock: "incident_forwarding", action: "verification", allowed: () => may("verify_incident"),
              role: "store_manager", due: (i) => i.forward_due_at, from: (i) => i.reported_at },
  forwarded: { clock: "incident_handling", action: "handling", allowed: () => may("handle_incident"),
               role: "regional_manager", due: (i) => i.handling_due_at, from: (i) => i.verification && i.verification.at },
  handled: { clock: "incident_communication", action: "communication", allowed: () => may("handle_incident"),
             role: "regional_manager", due: (i) => i.communicate_due_at, from: (i) => i.handling && i.handling.at },
};
const OPEN = Object.keys(STEPS);

let chosenMall = null, chosenState = "";   // the list's mall and state, kept while the page is revisited
let ticker, renders = 0;

export async function render(main, [number]) {
  // built aside and shown whole, only if no later render (a filter changed meanwhile) has begun
  const mine = ++renders, page = document.createDocumentFragment();
  const people = new Map((await staff()).map((p) => [p.id, p]));
  if (number) await incidentPage(main, page, number, people);
  else await listPage(main, page, people);
  if (mine !== renders) return;
  const focused = document.activeElement && main.contains(document.activeElement) && document.activeElement.id;
  main.replaceChildren(page);
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();   // the keyboard stays put
  // The countdowns run while the page is open: each mark is worked out again every 15 s.
  clearInterval(ticker);   // the page redraws itself on a filter change: one timer for what is shown
  ticker = keepMarks(main, "[data-due]", 15000);
}

const who = (people, id) => (id ? `${(people.get(id) || {}).name || ""} ${id}`.trim() : "—");
// at risk after the policy's default share of the step's time (slaMark's), as the handlers' queue counts
const countdown = (due, from) => (due ? h("span", { class: "countdown", "data-due": due, "data-from": from || "" },
  mark(slaMark(due, from))) : null);
const stepName = (state) => (STEPS[state] ? label("clock", STEPS[state].clock) : "—");

async function listPage(main, page, people) {
  const malls = myMalls();
  if (!malls.includes(chosenMall)) chosenMall = malls[0];
  const again = () => render(main, []);
  const mallPicker = select(malls.map((m) => [m, mallName(m)]), chosenMall);
  mallPicker.addEventListener("change", () => { chosenMall = mallPicker.value; again(); });
  const statePicker = select([["", t("inc.open")], ...labelOptions("incident_state")], chosenState);
  statePicker.addEventListener("change", () => { chosenState = statePicker.value; again(); });
  const reads = may("incident.read");
  const pickers = [malls.length > 1 ? field("mall_id", mallPicker, { scope: "inc-list", label: t("mall") }) : null,
                   reads ? field("state", statePicker, { scope: "inc-list", label: t("state") }) : null].filter(Boolean);
  page.append(h("h1", {}, t("inc.title")), pickers.length ? h("form", { class: "inline", id: "incident-filter", onsubmit: (e) => e.preventDefault() }, pickers) : "");
  if (reads) page.append(await list(chosenMall, people));
  // those who also read the list open the form when they report; a clerk only reports
  if (may("incident.report")) page.append(h("details", { open: !reads || undefined, id: "incident-report-open" },
    h("summary", {}, `${t("inc.report_title")} · ${mallName(chosenMall)}`), reportForm(chosenMall)));
}

function reportForm(mall) {
  let requestId = crypto.randomUUID();   // the same report sent twice is one incident; the next, another
  const form = h("form", { id: "incident-form", class: "grid", novalidate: true },
    field("type", select([["", ""], ...labelOptions("incident_type")]), { scope: "inc", label: t("inc.type") }),
    field("occurred_at", h("input", { type: "datetime-local" }), { scope: "inc", label: `${t("inc.occurred_at")} (${mallZone(mall)})` }),
    field("place.area", h("input"), { scope: "inc", label: t("inc.area") }),
    field("place.merchant_id", select([["", t("inc.no_merchant")], ...merchantOptions(mall)]), { scope: "inc", label: t("location.merchant") }),
    field("description", h("textarea", { rows: 3 }), { scope: "inc", wide: true, label: t("inc.description") }),
    field("customer.name", h("input", { autocomplete: "off" }), { scope: "inc" }),
    field("customer.phone", h("input", { inputmode: "tel", autocomplete: "off" }), { scope: "inc" }),
    field("customer.email", h("input", { type: "email", autocomplete: "off" }), { scope: "inc" }),
    field("related_complaint_no", h("input"), { scope: "inc", label: t("inc.related") }),
    field("suggested_handling", h("textarea", { rows: 3 }), { scope: "inc", wide: true, label: t("inc.suggested") }),
    h("p", { class: "wide" }, h("button", { type: "submit", id: "incident-submit" }, t("inc.report"))),
    h("p", { class: "error wide", id: "incident-refused", role: "alert" }));
  const done = h("div", { id: "incident-reported" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { customer: {}, place: {}, ...formBody(form), mall_id: mall, request_id: requestId };
    if (body.occurred_at) body.occurred_at = mallTime(body.occurred_at, mall);   // typed on the mall's clock
    try {
      const { data } = await api("resolution", "incidents", { method: "POST", body });
      showErrors(form, null);
      form.reset();
      requestId = crypto.randomUUID();
      done.replaceChildren(h("p", { "data-number": data.number, "data-state": data.state },
        `${t("inc.reported")}: `, may("incident.read")
          ? h("a", { href: `#/incidents/${encodeURIComponent(data.number)}`, id: "incident-number" }, data.number)
          : h("strong", { id: "incident-number" }, data.number),
        ` · ${t("inc.step")}: ${stepName(data.state)} · ${t("inc.due")}: ${when(data.forward_due_at, mall)} `,
        countdown(data.forward_due_at, data.reported_at)));
      toast(t("ok"));
    } catch (e) {
      refused(form, e);
    }
  });
  return h("section", { class: "card", id: "incident-report" },
    h("p", { class: "note" }, t("inc.report_hint")), form, done);
}

// The service's reason for a refusal: at its fields, or said under the form.
function refused(form, error) {
  showErrors(form, error);
  const fields = error && error.body && error.body.fields;
  form.querySelector("[role=alert]").textContent = fields ? "" : `${t("inc.refused")}: ${error.message}`;
}

async function list(mall, people) {
  // open incidents by default (each state asked on its own: the service lists the earliest reported first)
  const states = chosenState ? [chosenState] : OPEN;
  const answers = await Promise.all(states.map((state) =>
    api("resolution", "incidents", { query: { mall_id: mall, state, limit: 500 } })));
  const items = answers.flatMap(({ data }) => data.items || []);
  const due = (i) => (STEPS[i.state] && STEPS[i.state].due(i)) || "9999";
  items.sort((a, b) => due(a).localeCompare(due(b)) || a.reported_at.localeCompare(b.reported_at));
  return h("section", { id: "incident-list-section" }, h("h2", {}, `${t("inc.list")} · ${mallName(mall)}`),
    items.length ? h("table", { id: "incident-list" },
      h("thead", {}, h("tr", {}, [t("number"), t("inc.type"), t("state"), t("inc.reported_at"), t("inc.reported_by"),
        t("inc.step"), t("inc.due"), t("sla")].map((x) => h("th", {}, x)))),
      h("tbody", {}, items.map((i) => {
        const step = STEPS[i.state];
        return h("tr", { "data-number": i.number, "data-state": i.state },
          h("td", {}, h("a", { href: `#/incidents/${encodeURIComponent(i.number)}` }, i.number)),
          h("td", {}, label("incident_type", i.type)), h("td", { class: "state" }, label("incident_state", i.state)),
          h("td", {}, when(i.reported_at, i.mall_id)), h("td", {}, who(people, i.reported_by)),
          h("td", {}, stepName(i.state)), h("td", {}, step && step.due(i) ? when(step.due(i), i.mall_id) : "—"),
          h("td", { class: "sla" }, step ? countdown(step.due(i), step.from(i)) : null));
      })))
      : h("p", { id: "incident-none" }, t("inc.none")));
}

async function incidentPage(main, page, number, people) {
  const no = encodeURIComponent(number);
  const { data: i } = await api("resolution", `incidents/${no}`);
  const again = () => render(main, [number]);
  const step = STEPS[i.state];
  const v = i.verification, hd = i.handling, c = i.communication;
  const within = (x) => (x.within_deadline === false ? h("span", { class: "mark breached" }, t("inc.late")) : null);
  page.append(...[
    h("p", {}, h("a", { href: "#/incidents" }, t("inc.back"))),
    h("h1", {}, `${t("inc.incident")} `, h("span", { id: "incident-no" }, i.number), " · ",
      h("span", { id: "incident-state", "data-state": i.state }, label("incident_state", i.state))),
    h("section", { class: "card", id: "incident-report-detail" }, h("h2", {}, t("inc.the_report")),
      h("p", {}, `${t("mall")}: ${mallName(i.mall_id)} · ${t("inc.type")}: ${label("incident_type", i.type)} · `,
        `${t("inc.reported_at")}: ${when(i.reported_at, i.mall_id)} · ${t("inc.reported_by")}: ${who(people, i.reported_by)}`),
      h("p", { id: "incident-when-where" }, `${t("inc.occurred_at")}: ${i.occurred_at ? when(i.occurred_at, i.mall_id) : "—"} · `,
        `${t("inc.area")}: ${(i.place && i.place.area) || "—"}`,
        i.place && i.place.merchant_id ? ` · ${t("location.merchant")}: ${merchantName(i.mall_id, i.place.merchant_id)}` : ""),
      h("p", {}, `${t("inc.customer")}: `, [i.customer && i.customer.name_masked, i.customer && i.customer.contact_masked]
        .filter(Boolean).join(" ") || "—"),
      h("p", {}, `${t("inc.description")}: ${i.description}`),
      h("p", {}, `${t("inc.suggested")}: ${i.suggested_handling}`),
      i.related_complaint_no ? h("p", {}, `${t("inc.related")}: `,
        h("a", { href: `#/case/${encodeURIComponent(i.related_complaint_no)}` }, i.related_complaint_no)) : null),
    step ? h("section", { class: "card", id: "incident-step" }, h("h2", {}, `${t("inc.next")}: ${stepName(i.state)}`),
      step.due(i) ? h("p", {}, `${t("inc.due")}: ${when(step.due(i), i.mall_id)} `, countdown(step.due(i), step.from(i))) : null,
      i.state === "forwarded" ? h("p", {}, `${t("inc.regional_manager")}: ${who(people, i.regional_manager_id)}`) : null,
      (i.agreements || []).length ? agreements(i, people) : null,
      step.allowed() && i.state === "forwarded" && !agreed(i) ? nextStep(i, "agreement", again) : null,
      step.allowed() && (i.state !== "forwarded" || agreed(i)) ? nextStep(i, step.action, again)
        : step.allowed() ? h("p", { class: "note", id: "incident-plan-first" }, t("inc.plan_first"))
          : h("p", { class: "note", id: "incident-waiting" }, `${t("inc.waiting")} ${label("role", step.role)}`)) : null,
    v ? h("section", { class: "card", id: "incident-verification" }, h("h2", {}, t("inc.verification")),
      h("p", {}, `${when(v.at, i.mall_id)} · ${who(people, v.by)} · `,
        v.confirmed ? t("inc.confirmed") : t("inc.not_confirmed"), " ", within(v)), h("p", {}, v.note)) : null,
    hd ? h("section", { class: "card", id: "incident-handling" }, h("h2", {}, t("inc.handling")),
      h("p", {}, `${when(hd.at, i.mall_id)} · ${who(people, hd.by)} `, within(hd)),
      h("p", {}, `${t("inc.outcome")}: ${hd.outcome}`),
      h("p", {}, `${t("inc.improvements")}:`), h("ul", {}, (hd.improvements || []).map((x) => h("li", {}, x))),
      h("p", {}, `${t("inc.compensation")}: ¥${hd.compensation}`)) : null,
    c ? h("section", { class: "card", id: "incident-communication" }, h("h2", {}, t("inc.communication")),
      h("p", {}, `${when(c.at, i.mall_id)} · ${who(people, c.by)} · ${t("inc.via")}: ${label("via", c.via)} `, within(c)),
      c.note ? h("p", {}, c.note) : null) : null].filter(Boolean));
  if (may("customer.contact") && i.customer && !i.anonymised_at) page.append(contactCard(i));
  page.append(h("h2", {}, t("timeline")), h("table", { id: "incident-timeline" },
    h("thead", {}, h("tr", {}, ["#", t("at"), t("by"), t("action"), t("state")].map((x) => h("th", {}, x)))),
    h("tbody", {}, (i.timeline || []).map((e) => h("tr", { "data-action": e.action },
      h("td", {}, e.seq), h("td", {}, when(e.at, i.mall_id)), h("td", {}, `${who(people, e.by)} (${label("role", e.role)})`),
      h("td", {}, label("action", e.action)), h("td", {}, label("incident_state", e.state)))))));
}

// The plans put to the customer and their answers (R7.10), the last one deciding whether the handling may go on.
const agreed = (i) => { const all = i.agreements || []; return all.length > 0 && all[all.length - 1].agreed; };

function agreements(i, people) {
  return h("table", { id: "incident-agreements" },
    h("thead", {}, h("tr", {}, [t("at"), t("by"), t("inc.plan"), t("inc.asked_via"), t("inc.customer_answer")].map((x) => h("th", {}, x)))),
    h("tbody", {}, i.agreements.map((a) => h("tr", { "data-agreed": String(a.agreed) },
      h("td", {}, when(a.at, i.mall_id)), h("td", {}, who(people, a.by)), h("td", {}, a.plan), h("td", {}, label("via", a.via)),
      h("td", {}, a.agreed ? t("inc.agreed") : t("inc.not_agreed"))))));
}

// The one form the incident's state waits for; what it sends is the service's VerificationIn, AgreementIn,
// HandlingIn or CommunicationIn.
function nextStep(i, action, again) {
  const form = h("form", { id: `${action}-form`, class: "grid", novalidate: true });
  const send = async (extra) => {
    const body = { ...formBody(form), ...extra, request_id: form.dataset.requestId };
    if (action === "handling") body.improvements = lines(form.querySelector('[data-path="improvements"]').value);
    try {
      await api("resolution", `incidents/${encodeURIComponent(i.number)}/${action}`, { method: "POST", body });
      toast(t("ok"));
      await again();
    } catch (e) {
      refused(form, e);
    }
  };
  form.dataset.requestId = crypto.randomUUID();
  const submit = (id, text, extra, cls) => h("button", { type: "submit", id, class: cls, "data-extra": JSON.stringify(extra) }, text);
  if (action === "verification") {
    form.append(field("note", h("textarea", { rows: 3 }), { scope: "inc", wide: true, label: t("inc.verify_note") }),
      h("p", { class: "wide" }, submit("incident-forward", t("inc.forward"), { confirmed: true }), " ",
        submit("incident-dismiss", t("inc.dismiss"), { confirmed: false }, "secondary")));
  } else if (action === "agreement") {
    form.append(field("plan", h("textarea", { rows: 3 }), { scope: "inc", wide: true, label: t("inc.plan") }),
      field("via", select([["", ""], ...labelOptions("via")]), { scope: "inc", label: t("inc.asked_via") }),
      field("note", h("textarea", { rows: 2 }), { scope: "inc", wide: true, label: t("inc.customer_note") }),
      h("p", { class: "wide" }, submit("incident-agreed", t("inc.agreed"), { agreed: true }), " ",
        submit("incident-not-agreed", t("inc.not_agreed"), { agreed: false }, "secondary")));
  } else if (action === "handling") {
    form.append(field("outcome", h("textarea", { rows: 3 }), { scope: "inc", wide: true, label: t("inc.outcome") }),
      field("improvements", h("textarea", { rows: 3 }), { scope: "inc", wide: true, label: t("inc.improvements_lines") }),
      field("compensation", h("input", { inputmode: "decimal" }), { scope: "inc", label: t("inc.compensation") }),
      h("p", { class: "wide" }, submit("incident-handle", t("inc.handle"), {})));
  } else {
    form.append(field("via", select([["", ""], ...labelOptions("via")]), { scope: "inc", label: t("inc.via") }),
      field("note", h("textarea", { rows: 3 }), { scope: "inc", wide: true, label: t("inc.told_note") }),
      h("p", { class: "wide" }, submit("incident-tell", t("inc.tell"), {})));
  }
  form.append(h("p", { class: "error wide", id: "incident-refused", role: "alert" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(JSON.parse((event.submitter || form.querySelector("button")).dataset.extra));
  });
  return form;
}

// The customer's whole record, read for a stated purpose (audited by the service).
function contactCard(i) {
  // the purpose's words, as chosen, are what the audit log keeps (one list with the revisit caller's)
  const purposes = ["verify_incident", "tell_outcome"].map((code) => [label("contact_purpose", code), label("contact_purpose", code)]);
  const out = h("p", { id: "incident-contact" });
  const form = h("form", { id: "incident-contact-form", class: "inline" },
    field("purpose", select(purposes), { scope: "inc-contact", label: t("inc.purpose") }),
    h("button", { type: "submit", class: "secondary", id: "incident-contact-show" }, t("inc.show_contact")),
    h("span", { class: "error", role: "alert" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { data } = await api("resolution", `incidents/${encodeURIComponent(i.number)}/customer`,
        { query: { purpose: form.querySelector("select").value } });
      const x = data.customer || {};
      out.replaceChildren([x.name, x.phone, x.email].filter(Boolean).join(" · ") || "—");
    } catch (e) {
      refused(form, e);
    }
  });
  return h("section", { class: "card", id: "incident-customer" }, h("h2", {}, t("inc.contact")),
    h("p", { class: "note" }, t("inc.contact_note")), form, out);
}
