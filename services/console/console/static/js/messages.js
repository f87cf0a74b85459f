// Messages to customers that failed for good (notify): a person tells each customer another way.
import { api, h, session, t, when } from "./core.js";

const KINDS = ["acknowledgement", "promise", "answer", "execution", "revisit"];   // notify's contracts
const REASONS = ["refused", "gave_up", "no_contact", "contact_gone"];

export async function render(main) {
  const malls = session().malls.filter((m) => m !== "*");
  const items = [];
  for (const mall of malls.length ? malls : [undefined]) {   // chain-wide: every mall in one list
    const { data } = await api("notify", "messages/failed", { query: { mall_id: mall } });
    items.push(...(data.items || []));
  }
  main.append(h("h1", {}, t("msg.title")), h("p", { class: "note" }, t("msg.note")));
  if (!items.length) { main.append(h("p", { id: "messages-empty" }, t("msg.empty"))); return; }
  main.append(h("table", { id: "failed-messages" },
    h("thead", {}, h("tr", {}, [t("number"), t("msg.kind"), t("channel"), t("reason"), t("msg.error"),
      t("msg.failed_at")].map((x) => h("th", {}, x)))),
    h("tbody", {}, items.map((m) => h("tr", { "data-message": m.message_id },
      h("td", {}, h("a", { href: `#/case/${encodeURIComponent(m.complaint_no)}` }, m.complaint_no)),
      h("td", {}, KINDS.includes(m.kind) ? t(`msg.kind.${m.kind}`) : m.kind),
      h("td", {}, m.channel || t("msg.no_channel")),
      h("td", {}, REASONS.includes(m.failure.reason) ? t(`msg.reason.${m.failure.reason}`) : m.failure.reason),
      h("td", {}, m.failure.error || ""),
      h("td", {}, when(m.failure.at)))))));
}
