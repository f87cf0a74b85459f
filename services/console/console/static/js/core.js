// What every page uses: words, the signed-in session, calls through /api, small DOM helpers.
import { WORDS } from "./i18n.js";

export const lang = () => localStorage.getItem("mallcare.lang") || "zh";
export function setLang(value) { localStorage.setItem("mallcare.lang", value); }
export const t = (key) => WORDS[lang()][key] ?? WORDS.zh[key] ?? key;

// The staff token lives in sessionStorage: gone when the tab closes, never sent by the browser on its own.
export const session = () => JSON.parse(sessionStorage.getItem("mallcare.session") || "null");
export function setSession(value) {
  staffCache = null;   // what the last session was shown
  if (value) sessionStorage.setItem("mallcare.session", JSON.stringify(value));
  else sessionStorage.removeItem("mallcare.session");
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status; this.body = body || {};
  }
}

export async function api(service, path, { method = "GET", body, query } = {}) {
  const url = new URL(`/api/${service}/${path.replace(/^\//, "")}`, location.origin);
  Object.entries(query || {}).forEach(([k, v]) => v !== undefined && v !== "" && url.searchParams.set(k, v));
  const headers = { Accept: "application/json" };
  const s = session();
  if (s) headers.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (response.status === 401) { setSession(null); location.hash = "#/login"; }
  if (!response.ok) throw new ApiError(response.status, data);
  return { status: response.status, data };
}

// A page another service renders (analytics' report pages), fetched signed in, as text.
export async function apiText(service, path, query) {
  const url = new URL(`/api/${service}/${path}`, location.origin);
  Object.entries(query || {}).forEach(([k, v]) => v !== undefined && v !== "" && url.searchParams.set(k, v));
  const response = await fetch(url, { headers: { Authorization: `Bearer ${session().token}` } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response.text();
}

// A file another service makes (analytics' CSV and spreadsheet), fetched signed in, as a Blob to save.
export async function apiBlob(service, path, query) {
  const url = new URL(`/api/${service}/${path}`, location.origin);
  Object.entries(query || {}).forEach(([k, v]) => v !== undefined && v !== "" && url.searchParams.set(k, v));
  const response = await fetch(url, { headers: { Authorization: `Bearer ${session().token}` } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response.blob();
}

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// A labelled control with its error message right below it (aria-describedby points there).
export function field(path, control, { wide = false, label, scope = "" } = {}) {
  const id = "f-" + (scope ? scope + "-" : "") + path.replace(/\W/g, "-");
  control.id = id; control.name = path; control.dataset.path = path;
  control.setAttribute("aria-describedby", id + "-err");
  return h("label", { class: wide ? "wide" : null, for: id }, h("span", {}, label || t(path)), control,
           h("span", { class: "error", id: id + "-err", "data-error-for": path }));
}

export function select(options, value) {
  return h("select", {}, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

export function formBody(form) {
  const body = {};
  form.querySelectorAll("[data-path]").forEach((el) => {
    let value = el.value.trim();
    if (value === "") return;
    if (el.type === "number") value = Number(value);
    if (el.dataset.list !== undefined) value = value.split(/[\s,，]+/).filter(Boolean);
    const keys = el.dataset.path.split(".");
    let at = body;
    keys.slice(0, -1).forEach((k) => { at = at[k] = at[k] || {}; });
    at[keys[keys.length - 1]] = value;
  });
  return body;
}

function flatten(fields, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(fields || {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (Array.isArray(v) && v.every((m) => typeof m === "string")) out[path] = v.join(" ");
    else if (v && typeof v === "object") flatten(v, path, out);
  }
  return out;
}

export function showErrors(form, error) {
  form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  const fields = flatten(error && error.body && error.body.fields);
  let first = null;
  for (const [path, message] of Object.entries(fields)) {
    const slot = form.querySelector(`[data-error-for="${path}"]`);
    const control = form.querySelector(`[data-path="${path}"]`);
    if (slot) slot.textContent = message;
    if (control) { control.setAttribute("aria-invalid", "true"); first = first || control; }
  }
  if (first) first.focus();
  else if (error) toast(`${t("failed")}: ${error.message}`);
}

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message; el.classList.add("show");
  clearTimeout(toast.timer); toast.timer = setTimeout(() => el.classList.remove("show"), 4000);
}

// The words for the services' code words, malls and merchants (the console's GET /labels, from
// deploy/policy/labels.yml and malls.yml), fetched once before the first page.
let LABELS = { groups: {}, malls: {} };
export async function loadLabels() {
  if (!LABELS.version) LABELS = await fetch("/labels").then((r) => r.json()).catch(() => LABELS);
  return LABELS;
}
// A code word in the reader's language ("" for none); an unknown one stays as it came (a test
// walks every page for code words left on screen).
export function label(group, code) {
  if (code === null || code === undefined || code === "") return "";
  const words = (LABELS.groups[group] || {})[code];
  return words ? words[lang()] || words.zh : String(code);
}
// Options for a <select> of a label group, in the policy's order: [[code, words], ...].
export const labelOptions = (group) => Object.keys(LABELS.groups[group] || {}).map((code) => [code, label(group, code)]);
// The taxonomy's categories to pick from: labels.yml's, without "unclassified", which the reports
// name but no one picks (triage takes only attribute.kind).
export const categoryOptions = () => labelOptions("category").filter(([code]) => code.includes("."));
export const mallName = (id) => (id === "*" ? t("chain") : LABELS.malls[id] ? LABELS.malls[id].name[lang()] : id || "");
export const merchantName = (mall, id) => ((LABELS.malls[mall] || { merchants: {} }).merchants[id]) || id || "";
// Where a category is only an attribute ("product"), its attribute's words.
export const categoryName = (code) => ((LABELS.groups.category || {})[code] ? label("category", code) : label("attribute", code));

// The malls work to their own clocks: a time is shown in the mall's time zone (the chain's first
// mall's when none is named), whatever the reader's laptop is set to. `zone: true` adds the zone's
// name, for pages that mix malls.
export function mallZone(mall) {
  const first = Object.values(LABELS.malls)[0];
  return (LABELS.malls[mall] || first || { timezone: "Asia/Shanghai" }).timezone;
}
export function when(iso, mall, { zone = false } = {}) {
  if (!iso) return "";
  const options = { timeZone: mallZone(mall), hour12: false, year: "numeric", month: "2-digit", day: "2-digit",
                    hour: "2-digit", minute: "2-digit", ...(zone ? { timeZoneName: "short" } : {}) };
  return new Date(iso).toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB", options);
}

// A duration in the reader's words: 6天23小时59分 / 6d 23h 59m.
export function span(ms) {
  const minutes = Math.floor(Math.abs(ms) / 60000);
  const d = Math.floor(minutes / 1440), hr = Math.floor((minutes % 1440) / 60), m = minutes % 60;
  if (lang() === "zh") return (d ? `${d}天` : "") + (d || hr ? `${hr}小时` : "") + `${m}分`;
  return (d ? `${d}d ` : "") + `${hr}h ${m}m`;
}

// The share of a deadline's allowed time after which it is at risk, when the page does not know the
// policy's (deploy/policy/analytics.yml: at_risk_share 0.8; analytics' GET /reports/live answers it per clock).
export const AT_RISK_SHARE = 0.8;

// SLA mark of a deadline: breached once past, at risk once `share` of the time from `from` to `due` has
// gone (the rule analytics counts by), on time before. Without `from` the allowed time is taken as a day.
export function slaMark(due, from, share = AT_RISK_SHARE, now = Date.now()) {
  if (!due) return { kind: "ok", text: "" };
  const end = new Date(due).getTime(), start = from ? new Date(from).getTime() : end - 86400000;
  const left = end - now;
  if (left <= 0) return { kind: "breached", text: `${t("sla.breached")} · ${t("overdue_by")} ${span(left)}` };
  if (now >= start + Math.max(end - start, 0) * (share ?? AT_RISK_SHARE))
    return { kind: "risk", text: `${t("sla.risk")} · ${t("left")} ${span(left)}` };
  return { kind: "ok", text: `${t("sla.ok")} · ${t("left")} ${span(left)}` };
}

// Timers of the page on screen: app.js stops them all before the next page renders, so a countdown
// never runs on into another page nor writes onto its cells.
const pageTimers = new Set();
export function every(ms, tick) {
  const id = setInterval(tick, ms);
  pageTimers.add(id);
  return id;
}
export function stopPageTimers() { pageTimers.forEach(clearInterval); pageTimers.clear(); }
// The SLA marks of the cells under `root` matching `css` (data-due, data-from) worked out again
// every `ms` while the page is on screen; the timer, for a page that redraws its list to stop.
export const keepMarks = (root, css, ms, share = AT_RISK_SHARE) => every(ms, () => root.querySelectorAll(css)
  .forEach((el) => el.replaceChildren(mark(slaMark(el.dataset.due, el.dataset.from, share)))));

export const mark = (m) => h("span", { class: `mark ${m.kind}`, "data-sla": m.kind }, m.text);

// A category triage only proposed (below the policy's confidence, R7.4) is shown as such until a
// person confirms it by a correction; `confirmed` is undefined for assessments made before 2026-12.
export const categoryCell = (category, confirmed, confidence) => [category || "—",
  category && confirmed === false ? h("span", { class: "mark unconfirmed", "data-unconfirmed": "" },
    confidence == null ? t("triage.unconfirmed") : `${t("triage.unconfirmed")} ${Math.round(confidence * 100)}%`) : null];

// The signed-in member's malls: their own, or every mall of the registry for the chain-wide.
export const myMalls = () => (session().malls.includes("*") ? mallIds() : session().malls);

// Remedy amounts typed into one field per type (an empty one is no remedy): [{type, amount}].
// formBody() gathers them under `remedy`; the caller sends remedies(form) instead.
export const REMEDY_TYPES = ["refund", "exchange", "voucher", "cash_compensation"];
export function remedyInputs(scope) {
  return REMEDY_TYPES.map((type) => field(`remedy.${type}`, h("input", { "data-remedy": type, inputmode: "decimal" }),
    { scope, label: t(`remedy.${type}`) }));
}
export function remedies(form) {
  return [...form.querySelectorAll("[data-remedy]")].map((el) => [el.dataset.remedy, el.value.trim()])
    .filter(([, amount]) => amount).map(([type, amount]) => ({ type, amount }));
}
// The service's messages about remedies[i] go next to the field of that remedy's type.
export function remedyErrors(error, sent) {
  const fields = error && error.body && error.body.fields;
  if (!fields || !fields.remedies || Array.isArray(fields.remedies)) return error;
  const moved = { ...fields, remedy: {} };
  delete moved.remedies;
  for (const [i, messages] of Object.entries(fields.remedies)) {
    const remedy = sent[Number(i)];
    if (remedy) moved.remedy[remedy.type] = Object.values(messages).flat().filter((m) => typeof m === "string");
  }
  return Object.assign(new ApiError(error.status, { ...error.body, fields: moved }), { message: error.message });
}
export const lines = (text) => (text || "").split("\n").map((r) => r.trim()).filter(Boolean);

// What the signed-in role may do, as the policy files say (the console's /session and /login
// answer it), so that a page offers only that. The services still decide.
export const may = (what) => Boolean(session() && (session().may || []).includes(what));

// The staff directory (id, name, role, department if any, malls), for pickers of owners and attendees.
let staffCache = null;
export async function staff() {
  staffCache = staffCache || fetch("/staff", { headers: { Authorization: `Bearer ${session().token}` } })
    .then((r) => r.json()).then((d) => d.items || []).catch(() => []);
  return staffCache;
}


// A code word of whichever of `groups` has words for it (a task is a remedy or a task of its own).
export function labelIn(groups, code) {
  const group = groups.find((g) => (LABELS.groups[g] || {})[code]) || groups[0];
  return label(group, code);
}
// A member of staff by name (from staff()'s list), the id where the directory does not know them.
export const staffName = (people, id) => (id ? (people.find((p) => p.id === id) || {}).name || id : "");

// Between the items of a list: 、 in Chinese, a comma in English.
export const listComma = () => (lang() === "zh" ? "、" : ", ");

// What a timeline step records beside its action (a finding's source, a proposal's decision and
// remedies, the department a meeting named ...), in words: "来源：监控录像；摘要：…".
const STEP_DETAIL = {
  source: (v) => label("finding_source", v), decision: (v) => label("decision", v),
  remedies: (v) => (v || []).map((r) => `${label("remedy", r.type)} ${r.amount ?? ""}`.trim()).join(listComma()),
  points: (v) => (Array.isArray(v) ? v.join("；") : v), reason: (v) => labelIn(["escalation_reason"], v),
  to_role: (v) => label("role", v), kind: (v) => labelIn(["note_kind", "rectification_kind", "remedy", "task_kind"], v),
  via: (v) => label("via", v), responsible_department: (v) => label("department", v),
  spot: (v) => (v ? t("yes") : t("no")),
};
export function stepDetail(step) {
  return Object.entries(STEP_DETAIL).filter(([k]) => step[k] !== undefined && step[k] !== null && step[k] !== "")
    .map(([k, words]) => `${t(`step.${k}`)}: ${words(step[k])}`)
    .concat(["summary", "text", "total"].filter((k) => step[k]).map((k) => `${t(`step.${k}`)}: ${step[k]}`)).join("; ");
}

// A time typed into a datetime-local field ("2026-12-06T15:30"), read on the mall's clock, as an
// instant (ISO, UTC): what the clerk means, whatever zone the laptop is set to.
export function mallTime(local, mall) {
  const [y, mo, d, hr, mi] = local.split(/[-T:]/).map(Number);
  const guess = Date.UTC(y, mo - 1, d, hr, mi);
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: mallZone(mall), hourCycle: "h23",
    year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" })
    .formatToParts(guess).map((p) => [p.type, Number(p.value)]));
  const shown = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute);
  return new Date(guess - (shown - guess)).toISOString();
}

// The malls the labels name (ids), and a mall's merchants for a <select>: [[id, name], ...].
export const mallIds = () => Object.keys(LABELS.malls);
export const merchantOptions = (mall) => Object.entries((LABELS.malls[mall] || { merchants: {} }).merchants);

// A rectification task's description in words. Resolution writes "after <case> (<category>)" for
// the task its policy opens by itself (domain/actions.py, rectification_tasks): the category is
// named here; what a person wrote stays as written.
export function rectificationText(description) {
  const automatic = /^after (\S+) \(([a-z_.]+)\)$/.exec(description || "");
  return automatic ? `${t("rect.after")} ${automatic[1]} (${categoryName(automatic[2])})` : description || "";
}
