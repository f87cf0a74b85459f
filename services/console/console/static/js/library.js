// Case library (R4.4): search the chain's archived cases by category, mall, merchant, risk and a
// word in the problem, outcome or lessons; one entry with how it was handled and what was learnt;
// the monthly review (R7.14, #/library/review): a month's candidate cases of a mall, each added
// with its lessons or passed over, then the month's review finished.
import { api, myMalls, categoryOptions, categoryName, field, formBody, h, label, labelOptions, lang, mallIds, mallName, may, merchantName, merchantOptions,
         select, session, showErrors, stepDetail, t, toast, when } from "./core.js";

export async function render(main, [number, ...rest]) {
  if (number === "review") return review(main, rest);
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
  if (may("library.write")) {
    main.querySelector("h1").after(h("p", {}, h("a", { href: "#/library/review", id: "library-review-link" }, t("lib.review_open"))));
  }
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

// The month gone, in the browser's calendar (the services keep each mall's own).
function lastMonth() {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - 1);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

async function review(main, [mall = myMalls()[0], month = lastMonth()]) {
  const pick = h("form", { class: "grid", id: "review-pick", novalidate: true },
    field("mall_id", select(myMalls().map((m) => [m, mallName(m)])), { scope: "review", label: t("mall") }),
    field("month", h("input", { type: "month", value: month }), { scope: "review", label: t("lib.review_month") }),
    h("p", {}, h("button", { type: "submit" }, t("lib.review_show"))));
  pick.querySelector('[data-path="mall_id"]').value = mall;
  pick.addEventListener("submit", (event) => {
    event.preventDefault();
    const { mall_id: m, month: when_ } = formBody(pick);
    location.hash = `#/library/review/${encodeURIComponent(m)}/${encodeURIComponent(when_)}`;
  });
  const body = h("div", { id: "review-body", "aria-live": "polite" });
  main.append(h("h1", {}, t("lib.review")), h("p", {}, h("a", { href: "#/library" }, `← ${t("lib.title")}`)),
    h("section", { class: "card" }, pick), body);
  const path = `library/reviews/${encodeURIComponent(month)}`;
  const show = (x) => body.replaceChildren(...reviewed(x, path, mall, show));
  try {
    show((await api("feedback", path, { query: { mall_id: mall } })).data);
  } catch (error) { showErrors(pick, error); }
}

function reviewed(x, path, mall, show) {
  const status = x.done_at
    ? h("p", { id: "review-status" }, `${t("lib.review_done")}: ${x.done_by} · ${when(x.done_at, mall)}`)
    : h("p", { id: "review-status" }, `${t("lib.candidates")}: ${x.candidates.length} · ${t("lib.undecided")}: ${x.undecided}`);
  if (!x.candidates.length) return [status, h("p", {}, t("lib.no_candidates"))];
  const decide = async (form, decision) => {
    try {
      const { data } = await api("feedback", `${path}/decisions`, { method: "POST", body: { ...formBody(form), mall_id: mall, decision } });
      toast(t("ok"));
      show(data);
    } catch (error) { showErrors(form, error); }
  };
  const row = (c) => {
    let act = "";
    if (c.decision) {
      act = `${label("library_decision", c.decision.decision)}${c.decision.reason ? `：${c.decision.reason}` : ""} · ${c.decision.by}`;
    } else if (!x.done_at) {
      const form = h("form", { class: "decide", novalidate: true },
        h("input", { type: "hidden", name: "complaint_no", "data-path": "complaint_no", value: c.complaint_no }),
        field("lessons", h("textarea", { rows: 2 }), { scope: "lessons", label: t("lib.lessons") }),
        field("reason", h("input"), { scope: "reason", label: t("lib.pass_reason") }),
        h("p", {}, h("button", { type: "button", class: "add" }, t("lib.add")), " ",
          h("button", { type: "button", class: "pass secondary" }, t("lib.pass"))));
      form.querySelector(".add").addEventListener("click", () => decide(form, "add"));
      form.querySelector(".pass").addEventListener("click", () => decide(form, "pass"));
      act = form;
    }
    return h("tr", { "data-number": c.complaint_no },
      h("td", {}, h("a", { href: `#/case/${encodeURIComponent(c.complaint_no)}` }, c.complaint_no)),
      h("td", {}, categoryName(c.category)), h("td", {}, label("risk_level", c.risk_level)), h("td", {}, c.rounds),
      h("td", {}, c.reasons.map((r) => label("library_candidate_reason", r)).join(lang() === "zh" ? "、" : ", ")),
      h("td", {}, when(c.closed_at, mall)), h("td", { class: "decision" }, act));
  };
  const parts = [status, h("table", { id: "review-candidates" },
    h("thead", {}, h("tr", {}, [t("number"), t("category"), t("risk"), t("lib.rounds"), t("lib.reasons"), t("lib.closed"),
      t("lib.decision")].map((k) => h("th", { scope: "col" }, k)))),
    h("tbody", {}, x.candidates.map(row)))];
  if (!x.done_at) {
    const finish = h("button", { type: "button", id: "review-finish" }, t("lib.finish"));
    finish.addEventListener("click", async () => {
      try {
        show((await api("feedback", `${path}/done`, { method: "POST", body: { mall_id: mall } })).data);
        toast(t("ok"));
      } catch (error) { toast(`${t("failed")}: ${error.message}`); }
    });
    parts.push(h("p", {}, finish));
  }
  return parts;
}
