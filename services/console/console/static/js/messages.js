// Messages to customers that failed for good (notify): a person tells each customer another way.
import { api, h, label, labelIn, mallName, session, t, when } from "./core.js";

export async function render(main) {
  const malls = session().malls.filter((m) => m !== "*");
  const items = [];
  for (const mall of malls.length ? malls : [undefined]) {   // chain-wide: every mall in one list
    const { data } = await api("notify", "messages/failed", { query: { mall_id: mall } });
    items.push(...(data.items || []));
  }
  main.append(h("h1", {}, t("msg.title")), h("p", { class: "note" }, t("msg.note")));
  if (!items.length) { main.append(h("p", { id: "messages-empty" }, t("msg.empty"))); return; }
  // one mall's list shows its own clock; a list of several malls names each row's mall and zone
  const several = new Set(items.map((m) => m.mall_id)).size > 1;
  main.append(h("table", { id: "failed-messages" },
    h("thead", {}, h("tr", {}, [t("number"), several ? t("mall") : null, t("msg.kind"), t("channel"), t("reason"),
      t("msg.error"), t("msg.failed_at")].filter(Boolean).map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, items.map((m) => h("tr", { "data-message": m.message_id },
      h("td", {}, h("a", { href: `#/case/${encodeURIComponent(m.complaint_no)}` }, m.complaint_no)),
      several ? h("td", {}, mallName(m.mall_id)) : null,
      h("td", {}, label("message_kind", m.kind)),
      h("td", {}, m.channel ? label("message_route", m.channel) : t("msg.no_channel")),
      h("td", { "data-reason": m.failure.reason }, labelIn(["failure_reason", "message_status"], m.failure.reason)),
      h("td", {}, m.failure.error || ""),
      h("td", {}, when(m.failure.at, m.mall_id, { zone: several })))))));
}
