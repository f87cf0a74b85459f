// Case library (R4.4): search the chain's archived cases by category, mall, merchant, risk and a
// word in the problem, outcome or lessons; one entry with how it was handled and what was learnt.
import { api, myMalls, categoryOptions, categoryName, field, formBody, h, label, labelOptions, mallIds, mallName, may, merchantName, merchantOptions,
         select, session, showErrors, stepDetail, t, toast, when } from "./core.js";

export async function render(main, [number]) {
  if (number) return entry(main, number);
  const malls = myMalls();
  // a merchant is picked by name among the chosen mall's (its id is the mall's own)
  const merchants = select([["", ""]]);
  const form = h("form", { class: "grid", id: "library-search", role: "search", novalidate: true },
    field("q", h("input", { type: "search" }), { scope: "lib", label: t("lib.q") }),
    field("category", select([["", ""], ...categoryOptions()]), { scope: "lib", label: t("category") }),
    field("mall_id", select([["", t("lib.all_malls")], ...malls.map((m) => [m, mallName(m)])]), { scope: "lib", label: t("mall") }),
    field("merchant_id", merchants, { scope: "lib", label: t("location.merchant") }),
    field("risk_level", select([["", ""], ...labelOptions("risk_level")]), { scope: "lib", label: t("risk") }),
    h("p", {}, h("button", { type: "submit", id: "library-search-submit" }, t("lib.search"))));
  const mallPicker = form.querySelector('[data-path="mall_id"]');
  mallPicker.addEventListener("change", () => merchants.replaceChildren(
    ...[["", ""], ...merchantOptions(mallPicker.value)].map(([v, name]) => h("option", { value: v }, name))));
  const results = h("div", { id: "library-results", "aria-live": "polite" });
  main.append(h("h1", {}, t("lib.title")), h("section", { class: "card" }, form), results);
  const search = async () => {
    try {
      const { data } = await api("feedback", "library", { query: formBody(form) });
      showErrors(form, null);
      show(results, data.items || []);
    } catch (error) { showErrors(form, error); }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  form.querySelector("input").focus();
  await search();
}

function show(results, items) {
  results.replaceChildren(h("p", { id: "library-count" }, `${t("lib.found")}: ${items.length}`), items.length
    ? h("table", { id: "library-list" },
      h("thead", {}, h("tr", {}, [t("number"), t("mall"), t("category"), t("risk"), t("lib.problem"), t("lib.outcome"),
        t("lib.lessons"), t("lib.archived")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, items.map((x) => h("tr", { "data-number": x.complaint_no },
        h("td", {}, h("a", { href: `#/library/${encodeURIComponent(x.complaint_no)}` }, x.complaint_no)),
        h("td", {}, mallName(x.mall_id)), h("td", {}, categoryName(x.category)), h("td", {}, label("risk_level", x.risk_level)),
        h("td", {}, (x.problem && x.problem.description) || ""), h("td", {}, x.outcome || ""),
        h("td", {}, x.lessons_pending ? t("lib.lessons_pending") : x.lessons || ""),
        // the chain's library mixes malls: each time names its zone
        h("td", {}, when(x.archived_at, x.mall_id, { zone: true }))))))
    : h("p", {}, t("lib.none")));
}

async function entry(main, number) {
  const { data: x } = await api("feedback", `library/${encodeURIComponent(number)}`);
  const problem = x.problem || {};
  main.append(
    h("h1", {}, `${t("lib.entry")} `, h("span", { id: "library-number" }, x.complaint_no)),
    h("p", {}, h("a", { href: "#/library" }, `← ${t("lib.title")}`)),
    h("section", { class: "card", id: "library-entry" }, h("table", {}, [
      [t("mall"), mallName(x.mall_id)], [t("category"), categoryName(x.category) || "—"],
      [t("risk"), label("risk_level", x.risk_level)], [t("location.merchant"), merchantName(x.mall_id, x.merchant_id) || "—"],
      [t("location.area"), x.area || "—"], [t("channel"), label("channel", x.channel)],
      [t("description"), problem.description || ""], [t("demands.fact"), problem.fact || ""],
      [t("demands.expectation"), problem.expectation || ""], [t("lib.outcome"), x.outcome || ""],
      [t("lib.rounds"), x.rounds], [t("lib.lessons"), x.lessons || (x.lessons_pending ? t("lib.lessons_pending") : "")],
      [t("lib.archived"), `${when(x.archived_at, x.mall_id)}${x.automatic ? ` (${t("lib.automatic")})` : ""}`],
    ].map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { "data-field": k }, v))))),
    h("h2", {}, t("lib.process")),
    h("table", { id: "library-process" },
      h("thead", {}, h("tr", {}, [t("at"), t("lib.role"), t("action"), t("state"), t("lib.detail")]
        .map((k) => h("th", { scope: "col" }, k)))),
      h("tbody", {}, (x.process || []).map((s) => h("tr", { "data-action": s.action }, h("td", {}, when(s.at, x.mall_id)),
        h("td", {}, label("role", s.role)), h("td", {}, label("action", s.action)), h("td", {}, label("case_state", s.state)),
        h("td", {}, stepDetail(s)))))));
  if (x.lessons_pending && may("library.write")) {
    const form = h("form", { class: "grid", id: "lessons-form", novalidate: true },
      field("lessons", h("textarea"), { wide: true, scope: "lessons", label: t("lib.lessons") }),
      h("p", {}, h("button", { type: "submit" }, t("save"))));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("feedback", `library/${encodeURIComponent(number)}/lessons`, { method: "POST", body: formBody(form) });
        toast(t("ok"));
        main.replaceChildren();
        await entry(main, number);
      } catch (error) { showErrors(form, error); }
    });
    main.append(h("section", { class: "card" }, h("h2", {}, t("lib.add_lessons")), form));
  }
}
