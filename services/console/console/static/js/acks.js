// The acknowledgement queue (R1.2) of the hotline, web and social staff: the complaints of my malls
// (and of the channels I work) the customer has not yet been told we have, the earliest deadline
// first, each with a live countdown and one click per way of telling (intake's
// GET /acknowledgements/waiting and POST /complaints/<n>/acknowledgement).
import { api, every, h, label, lang, mallName, myMalls, mallZone, slaMark, span, t, toast, when } from "./core.js";

// The ways of telling that fit each channel, the usual one first (its button is the primary one).
const METHODS = {
  desk: ["in_person"],
  hotline: ["phone", "sms"],
  web: ["sms", "phone", "email"],
  app: ["app_message", "sms", "phone"],
  mini_program: ["app_message", "sms", "phone"],
  wechat: ["wechat_message", "phone"],
  social: ["phone", "sms"],
  email: ["email", "phone"],
  suggestion_box: ["phone", "sms", "email"],
};
// An acknowledgement is at risk once half its time has gone: analytics.yml's at_risk_share_by_clock
// for acknowledgements (desk staff may not read analytics' policy). Change both together.
const ACK_SHARE = 0.5;
const REFRESH_MS = 20000;   // new complaints appear by themselves
const CHANNELS_KEY = "mallcare.acks.channels";   // the channels this browser's member of staff works

let timers = [];

// The time left (or overdue) to the second while under an hour: 12分05秒 / 12m 05s; longer ones as span().
function countdown(ms) {
  const seconds = Math.floor(Math.abs(ms) / 1000);
  if (seconds >= 3600) return span(ms);
  const m = Math.floor(seconds / 60), s = String(seconds % 60).padStart(2, "0");
  return lang() === "zh" ? `${m}分${s}秒` : `${m}m ${s}s`;
}

function tick(cell, now = Date.now()) {
  const due = new Date(cell.dataset.due).getTime();
  const kind = due <= now ? "breached" : slaMark(cell.dataset.due, cell.dataset.from, ACK_SHARE, now).kind;
  const text = t(kind === "breached" ? "acks.overdue" : "acks.left").replace("{}", countdown(due - now));
  if (cell.textContent !== text) cell.textContent = text;
  cell.className = `countdown ${kind}`;
  cell.dataset.sla = kind;
  cell.closest("tr").classList.toggle("overdue", kind === "breached");
}

const excerpt = (text) => (text.length > 60 ? `${text.slice(0, 60)}…` : text);

export async function render(main) {
  timers.forEach(clearInterval);
  timers = [];
  const mine = myMalls();
  const saved = JSON.parse(localStorage.getItem(CHANNELS_KEY) || "[]");
  const mallPicker = h("select", { id: "acks-mall" }, h("option", { value: "" }, t("acks.all_malls")),
    mine.map((id) => h("option", { value: id }, mallName(id))));
  const boxes = Object.keys(METHODS).map((channel) => h("label", { class: "inline" },
    h("input", { type: "checkbox", name: "channel", value: channel, checked: saved.includes(channel) }),
    label("channel", channel)));
  const summary = h("p", { id: "acks-summary", class: "note", "aria-live": "polite" });
  const list = h("div", { id: "acks-list" });
  const heading = h("h1", { tabindex: "-1" }, t("acks.title"));
  main.append(heading, h("p", { class: "note" }, t("acks.intro")),
    h("form", { class: "inline acks-filters", id: "acks-filters", onsubmit: (event) => event.preventDefault() },
      mine.length > 1 ? h("label", { for: "acks-mall" }, t("acks.mall"), mallPicker)
        : h("p", {}, t("acks.mall_is").replace("{}", mine.map(mallName).join(t("acks.and")))),
      h("fieldset", { class: "acks-channels" }, h("legend", {}, t("acks.channels")), boxes),
      h("button", { type: "button", id: "acks-refresh", class: "secondary", onclick: () => load() }, t("acks.refresh"))),
    summary, list);

  const chosen = () => boxes.map((b) => b.firstChild).filter((box) => box.checked).map((box) => box.value);
  mallPicker.addEventListener("change", () => load());
  boxes.forEach((b) => b.firstChild.addEventListener("change", () => {
    localStorage.setItem(CHANNELS_KEY, JSON.stringify(chosen()));
    load();
  }));

  async function acknowledge(complaint, method, row) {
    row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      await api("intake", `complaints/${encodeURIComponent(complaint.number)}/acknowledgement`,
        { method: "POST", body: { method } });
    } catch (error) {
      toast(`${complaint.number}: ${t("acks.failed")}: ${error.message}`);
      await load();
      return;
    }
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    toast(t("acks.done").replace("{number}", complaint.number).replace("{method}", label("ack_method", method)));
    (next ? next.querySelector("button") : heading).focus();   // the keyboard stays in the queue
    await load();
  }

  function table(items) {
    const zones = new Set(items.map((c) => mallZone(c.mall_id))).size > 1;   // name the zone when malls differ
    return h("table", { id: "acks" },
      h("caption", { class: "note" }, t("acks.caption")),
      h("thead", {}, h("tr", {}, ["acks.number", "acks.channel_mall", "acks.received", "acks.due", "acks.excerpt",
        "acks.how"].map((key) => h("th", { scope: "col" }, t(key))))),
      h("tbody", {}, items.map((c) => {
        const row = h("tr", { "data-number": c.number, "data-channel": c.channel });
        const methods = METHODS[c.channel] || ["phone"];
        row.append(
          h("td", {}, h("a", { href: `#/case/${encodeURIComponent(c.number)}` }, c.number)),
          h("td", {}, h("div", { class: "channel" }, label("channel", c.channel)),
            h("div", { class: "note" }, mallName(c.mall_id))),
          h("td", { class: "received" }, when(c.received_at, c.mall_id, { zone: zones })),
          h("td", {}, h("div", { class: "due" }, when(c.ack_due_at, c.mall_id, { zone: zones })),
            h("div", { class: "countdown", "data-due": c.ack_due_at, "data-from": c.received_at })),
          h("td", { class: "excerpt" }, excerpt(c.description || "")),
          h("td", {}, h("div", { class: "acks-methods" }, methods.map((method, i) => h("button", {
            type: "button", class: i ? "secondary" : null, "data-method": method,
            "aria-label": `${label("ack_method", method)} · ${t("acks.acknowledge")} ${c.number}`,
            onclick: () => acknowledge(c, method, row),
          }, label("ack_method", method))))));
        tick(row.querySelector(".countdown"));
        return row;
      })));
  }

  let shown = "", counts = { items: [], total: 0 };
  function summarise(now = Date.now()) {
    const overdue = counts.items.filter((c) => new Date(c.ack_due_at).getTime() <= now).length;
    const text = [t("acks.count").replace("{n}", counts.total).replace("{o}", overdue),
      counts.total > counts.items.length ? t("acks.more").replace("{n}", counts.items.length) : ""]
      .filter(Boolean).join(" ");
    if (summary.textContent !== text) summary.textContent = text;
  }

  async function load() {
    let data;
    try {
      ({ data } = await api("intake", "acknowledgements/waiting", {
        query: { mall_id: mallPicker.value, channels: chosen().join(","), per_page: 100 } }));
    } catch (error) {
      summary.textContent = `${t("acks.failed")}: ${error.message}`;
      return;
    }
    counts = data;
    const now = data.items.map((c) => c.number).join(" ");
    if (now === shown && list.firstChild) { summarise(); return; }   // unchanged: the rows (and the keyboard's place) stay
    const focused = document.activeElement;
    const at = focused && focused.closest && focused.closest("#acks tr[data-number]");
    const place = at && [at.dataset.number, focused.dataset.method];
    shown = now;
    list.replaceChildren(data.items.length ? table(data.items) : h("p", { id: "acks-empty" }, t("acks.empty")));
    summarise();
    if (place) {   // the same button again, after new complaints came in
      const again = list.querySelector(`tr[data-number="${CSS.escape(place[0])}"] ${place[1]
        ? `button[data-method="${CSS.escape(place[1])}"]` : "a"}`);
      if (again) again.focus();
    }
  }

  await load();
  // The countdowns run every second while the queue is open; the list is asked again every 20 s.
  timers.push(every(1000, () => {
    if (!document.body.contains(list)) return;   // a render overtaken by the next one
    const now = Date.now();
    list.querySelectorAll(".countdown").forEach((cell) => tick(cell, now));
    summarise(now);
  }), every(REFRESH_MS, () => {
    if (document.body.contains(list)) load();
  }));
}
