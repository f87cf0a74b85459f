// The console's shell: language switch, sign-in, and a page per route (#/desk, #/queue, #/case/<no>, ...).
import { h, label, lang, loadLabels, mallName, may, select, session, setLang, setSession, stopPageTimers, t, toast } from "./core.js";

const PAGES = {
  desk: () => import("./desk.js"),
  acks: () => import("./acks.js"),
  queue: () => import("./queue.js"),
  case: () => import("./case.js"),
  revisits: () => import("./revisits.js"),
  incidents: () => import("./incidents.js"),
  supervision: () => import("./supervision.js"),
  actions: () => import("./actions.js"),
  dashboard: () => import("./dashboard.js"),
  library: () => import("./library.js"),
  messages: () => import("./messages.js"),
};
const HOME = { desk_staff: "desk", handler: "queue", supervisor: "dashboard", store_manager: "dashboard",
               regional_manager: "dashboard", operations_director: "dashboard", analyst: "dashboard" };

function chrome() {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  document.title = lang() === "zh" ? "mallcare 客诉工作台" : "mallcare console";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.getElementById("lang").textContent = lang() === "zh" ? "English" : "中文";
  const s = session();
  document.getElementById("nav").hidden = !s;
  document.getElementById("logout").hidden = !s;
  document.getElementById("who").textContent = s ? `${s.name || ""} ${s.user} · ${label("role", s.role)}` : "";
  const route = location.hash.split("/")[1];
  document.querySelectorAll("#nav a").forEach((a) => {
    a.classList.toggle("active", a.hash === `#/${route}`);
    if (a.hash === `#/${route}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    // a page the role has nothing to do on is not offered (the services still decide)
    a.hidden = Boolean(a.dataset.may) && !a.dataset.may.split(" ").some(may);
  });
}

const home = (role) => `#/${HOME[role] || "queue"}`;

// A token from the chain's sign-on (it sends staff back to /#token=<JWT>, or they paste it):
// the console says whose it is, and the session starts. Returns the error message, if any.
async function signOn(token) {
  const response = await fetch("/session", { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) return body.message || `HTTP ${response.status}`;
  setSession({ ...body, token });
  location.hash = home(body.role);
  return null;
}

async function login(main, refused) {
  const how = await fetch("/sign-in").then((r) => r.json()).catch(() => ({ demo: false }));
  const card = h("section", { class: "card" }, h("h1", {}, t("login.title")));
  if (refused) card.append(h("p", { class: "error", id: "login-error", role: "alert" }, `${t("login.refused")}: ${refused}`));
  let first;
  if (how.demo) {
    const data = await fetch("/staff").then((r) => r.json()).catch(() => ({ items: [] }));
    const picker = select(data.items.map((m) => [m.id, `${m.id} ${m.name}（${label("role", m.role)} · ${m.malls.map(mallName).join("、")}）`]));
    picker.id = "staff-id"; picker.name = "staff_id";
    const form = h("form", { id: "login-form" },
      h("label", { for: "staff-id" }, t("login.staff"), picker),
      h("p", {}, h("button", { type: "submit", id: "login-submit" }, t("login.submit"))),
      h("p", { class: "note" }, t("login.note")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ staff_id: picker.value }) });
      const body = await response.json();
      if (!response.ok) { toast(`${t("failed")}: ${body.message}`); return; }
      setSession(body);
      location.hash = home(body.role);
    });
    card.append(form);
    first = picker;
  } else {
    card.append(h("p", { class: "note", id: "demo-off" }, t("login.demo_off")));
  }
  if (how.sign_on_url) {
    const back = encodeURIComponent(`${location.origin}/`);
    card.append(h("p", {}, h("a", { href: `${how.sign_on_url}?return_to=${back}`, id: "sign-on", class: "button" },
      t("login.sign_on"))));
  }
  const pasted = h("textarea", { id: "sign-on-token", rows: 2, "aria-describedby": "sign-on-token-err" });
  const tokenForm = h("form", { id: "token-form" },
    h("label", { for: "sign-on-token" }, t("login.token"), pasted),
    h("span", { class: "error", id: "sign-on-token-err" }),
    h("p", {}, h("button", { type: "submit", class: "secondary", id: "token-submit" }, t("login.submit"))));
  tokenForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = await signOn(pasted.value.trim());
    if (error) { tokenForm.querySelector(".error").textContent = error; pasted.setAttribute("aria-invalid", "true"); }
  });
  card.append(h("details", { open: !how.demo || undefined }, h("summary", {}, t("login.with_token")), tokenForm));
  main.append(card);
  (first || pasted).focus();
}

async function route() {
  const main = document.getElementById("main");
  await loadLabels();
  let refused;
  if (location.hash.startsWith("#token=")) {       // back from the chain's sign-on
    const token = decodeURIComponent(location.hash.slice("#token=".length));
    history.replaceState(null, "", location.pathname);    // the token leaves the address bar
    setSession(null);
    refused = await signOn(token);
    if (!refused) return;                          // signOn moved to the home page: hashchange routes
  }
  chrome();
  stopPageTimers();
  main.replaceChildren();
  delete main.dataset.page;
  const [, name, ...rest] = location.hash.split("/");
  if (session() && !PAGES[name] && name !== "login") { location.hash = home(session().role); return; }
  if (!session() || name === "login") {
    await login(main, refused);
    main.dataset.page = "login";
    return;
  }
  const page = await PAGES[name]();
  try {
    await page.render(main, rest.map(decodeURIComponent));
  } catch (error) {   // a page that could not be drawn says so rather than staying blank
    main.append(h("p", { class: "error", role: "alert", id: "page-error" },
      `${t("failed")}: ${error.status === 404 ? t("not_found") : error.message}`));
  }
  main.dataset.page = name;
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(lang() === "zh" ? "en" : "zh");
  document.getElementById("toast").classList.remove("show");   // said in the other language
  route();
});
document.getElementById("logout").addEventListener("click", () => {
  setSession(null);
  if (location.hash === "#/login") route(); else location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
