// The console's message search (docs/protocol.md `search`): a box over the conversation list,
// results newest first with the snippet's matches marked, the conversation, the sender and the
// time; a result opens the conversation at that message. The hub's snippet is HTML whose only
// tags are <mark>…</mark>: it is split on those two, and everything else becomes text nodes
// (its entities decoded), never markup.

const SEARCH_PAGE = 20;

const ENTITIES = { "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": "\"", "&#39;": "'", "&#x27;": "'" };

function unescapeSnippet(text) {
  return text.replace(/&(?:lt|gt|amp|quot|#39|#x27);/g, (e) => ENTITIES[e]);
}

/** A search snippet as nodes: `<mark>`…`</mark>` become mark elements, everything else text
 *  (its entities decoded). Any other markup stays visible as text, never becomes an element. */
export function snippetNodes(snippet) {
  const out = [];
  let marked = false;
  for (const part of String(snippet ?? "").split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") { marked = true; continue; }
    if (part === "</mark>") { marked = false; continue; }
    if (!part) continue;
    const text = document.createTextNode(unescapeSnippet(part));
    if (marked) {
      const mark = document.createElement("mark");
      mark.append(text);
      out.push(mark);
    } else {
      out.push(text);
    }
  }
  return out;
}

/**
 * The search box and its results. `ctx`: {h, session, errorText, timeLabel}; `session` gives
 * hub, convs, convTitle(conv), nameOf(id), myId and openConversationAt(channel, seq).
 */
export class SearchPanel {
  constructor(ctx) {
    Object.assign(this, ctx);
    const h = this.h;
    this.query = "";
    this.items = [];
    this.more = false;
    this.input = h("input", {
      type: "search", id: "search-input", testid: "search-input", spellcheck: "false",
      placeholder: "Search messages", "aria-label": "Search messages", maxlength: "200",
    });
    this.form = h("form", { class: "search-box", role: "search", "aria-label": "Search messages" },
      this.input, h("button", { type: "submit", class: "btn btn-small", testid: "search-submit", text: "Search" }));
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.run(this.input.value); });
    this.input.addEventListener("keydown", (e) => { if (e.key === "Escape" && !this.results.hidden) { e.preventDefault(); this.close(); } });
    this.status = h("p", { class: "search-status muted small", testid: "search-status", role: "status" });
    this.list = h("ul", { class: "search-list", "aria-label": "Search results" });
    this.moreButton = h("button", { type: "button", class: "btn btn-quiet more", testid: "search-more", hidden: true, text: "More results", onclick: () => this.run(this.query, true) });
    this.results = h("section", { class: "search-results", testid: "search-results", hidden: true, "aria-label": "Search results" },
      h("div", { class: "search-head" }, this.status,
        h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "search-close", text: "Close search", onclick: () => this.close() })),
      this.list, this.moreButton);
    this.root = h("div", { class: "search" }, this.form, this.results);
  }

  close() {
    this.results.hidden = true;
    this.list.replaceChildren();
    this.items = [];
    this.input.value = "";
    this.query = "";
    this.input.focus();
  }

  async run(text, next = false) {
    const query = String(text || "").trim();
    if (!query) { this.status.textContent = "Type a word to search for."; this.results.hidden = false; return; }
    const before = next && this.items.length ? this.items[this.items.length - 1].msg_id : undefined;
    if (!next) { this.query = query; this.items = []; this.list.replaceChildren(); }
    this.results.hidden = false;
    this.status.textContent = "Searching…";
    this.moreButton.hidden = true;
    let res;
    try {
      res = await this.session.hub.search({ query, before, limit: SEARCH_PAGE });
    } catch (e) {
      if (this.query !== query) return;
      this.status.textContent = `Search failed: ${this.errorText(e)}`;
      return;
    }
    if (this.query !== query || this.session.disposed) return;
    const items = Array.isArray(res?.items) ? res.items : [];
    for (const item of items) { this.items.push(item); this.list.append(this.renderItem(item)); }
    this.more = !!res?.more;
    this.moreButton.hidden = !this.more;
    const n = this.items.length;
    this.status.textContent = n ? `${n}${this.more ? "+" : ""} message${n === 1 ? "" : "s"} found for “${query}”` : `No messages found for “${query}”.`;
  }

  renderItem(item) {
    const h = this.h;
    const s = this.session;
    const conv = s.convs.get(item.channel);
    const where = conv ? s.convTitle(conv).title : item.channel;
    const from = item.from?.id === s.myId ? "You" : (item.from?.name || s.nameOf(item.from?.id));
    return h("li", {}, h("button", {
      type: "button", class: "search-result", testid: "search-result", data: { channel: item.channel, seq: item.seq },
      onclick: () => s.openConversationAt(item.channel, item.seq),
    },
    h("span", { class: "search-result-top" },
      h("span", { class: "search-where", text: where }),
      Number.isFinite(item.ts) ? h("time", { class: "muted small", datetime: new Date(item.ts).toISOString(), text: this.timeLabel(item.ts) }) : null),
    h("span", { class: "search-from muted small", text: from }),
    h("span", { class: "search-snippet", testid: "search-snippet" }, snippetNodes(item.snippet))));
  }
}
