// The console's shell: language switch, sign-in, and a page per route (#/desk, #/queue, #/case/<no>, ...).
import { h, lang, select, session, setLang, setSession, t, toast } from "./core.js";

const PAGES = {
  desk: () => import("./desk.js"), queue: () => import("./queue.js"), case: () => import("./case.js"),
  revisits: () => import("./revisits.js"), dashboard: () => import("./dashboard.js"),
  library: () => import("./library.js"),
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
  document.getElementById("who").textContent = s ? `${s.name || ""} ${s.user} · ${s.role}` : "";
  const route = location.hash.split("/")[1];
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.hash === `#/${route}`));
}

async function login(main) {
  const data = await fetch("/staff").then((r) => r.json()).catch(() => ({ items: [] }));
  const picker = select(data.items.map((m) => [m.id, `${m.id} ${m.name} (${m.role}, ${m.malls.join(",")})`]));
  picker.id = "staff-id"; picker.name = "staff_id";
  const form = h("form", { class: "card", id: "login-form" },
    h("h1", {}, t("login.title")),
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
    location.hash = `#/${HOME[body.role] || "queue"}`;
  });
  main.append(h("section", { class: "card" }, form));
  picker.focus();
}

async function route() {
  chrome();
  const main = document.getElementById("main");
  main.replaceChildren();
  delete main.dataset.page;
  const [, name, ...rest] = location.hash.split("/");
  if (session() && !PAGES[name] && name !== "login") { location.hash = `#/${HOME[session().role] || "queue"}`; return; }
  if (!session() || name === "login") {
    await login(main);
    main.dataset.page = "login";
    return;
  }
  const page = await PAGES[name]();
  await page.render(main, rest.map(decodeURIComponent));
  main.dataset.page = name;
}

document.getElementById("lang").addEventListener("click", () => { setLang(lang() === "zh" ? "en" : "zh"); route(); });
document.getElementById("logout").addEventListener("click", () => {
  setSession(null);
  if (location.hash === "#/login") route(); else location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
