// What a message can be besides its text (docs/protocol.md "Messages"): attachments (links
// with name, size and an icon; images as thumbnails, loaded only from the hub's attachment
// origins, which the page's Content-Security-Policy allows and nothing else), an "edited"
// marker, a tombstone for a deleted message, and Edit/Delete/History on a message. Everything
// from the hub or a user goes into the page as text nodes or attributes, never as HTML.

/** The console's settings from the hub (`GET /console/settings`); the defaults stand when the
 *  hub cannot be asked: no thumbnails, the contract's 15-minute edit window. */
export const DEFAULT_SETTINGS = Object.freeze({ attachmentOrigins: [], editWindowMs: 15 * 60 * 1000 });
export const DELETED_TEXT = "This message was deleted";

export async function fetchSettings() {
  try {
    const res = await fetch("/console/settings", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!res.ok) return { ...DEFAULT_SETTINGS };
    const body = await res.json();
    const origins = Array.isArray(body.attachment_origins) ? body.attachment_origins.filter((o) => typeof o === "string") : [];
    const windowMs = Number.isFinite(body.edit_window_ms) && body.edit_window_ms >= 0 ? body.edit_window_ms : DEFAULT_SETTINGS.editWindowMs;
    return { attachmentOrigins: origins, editWindowMs: windowMs };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

/** The origin (`scheme://host[:port]`, as the hub writes its allow-list) of an http(s) URL, or
 *  null for anything else (javascript:, data:, a relative or malformed URL, user info). */
export function httpOrigin(url) {
  let u;
  try { u = new URL(String(url)); } catch { return null; }
  if (u.protocol !== "https:" && u.protocol !== "http:") return null;
  if (u.username || u.password || !u.hostname) return null;
  return u.origin;
}

export function isAllowedOrigin(url, origins) {
  const origin = httpOrigin(url);
  return origin !== null && origins.includes(origin);
}

/** "532 B", "14.2 KB", "3.1 MB", "1.4 GB". */
export function humanSize(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** A kind of file by its media type: its icon (a short tag such as PDF, drawn as a badge; the
 *  icon is decoration) and its word (read out). */
export function fileKind(contentType) {
  const t = String(contentType || "").toLowerCase();
  if (t.startsWith("image/")) return { kind: "image", icon: "IMG", word: "Image" };
  if (t === "application/pdf") return { kind: "pdf", icon: "PDF", word: "PDF" };
  if (t.startsWith("video/")) return { kind: "video", icon: "VID", word: "Video" };
  if (t.startsWith("audio/")) return { kind: "audio", icon: "AUD", word: "Audio" };
  if (/zip|tar|gzip|x-7z|rar|compressed/.test(t)) return { kind: "archive", icon: "ZIP", word: "Archive" };
  if (/spreadsheet|excel|csv/.test(t)) return { kind: "sheet", icon: "XLS", word: "Spreadsheet" };
  if (t.startsWith("text/") || /word|document|rtf/.test(t)) return { kind: "document", icon: "DOC", word: "Document" };
  return { kind: "file", icon: "FILE", word: "File" };
}

/** The icon of a kind of file: a small coloured tag. */
export function fileIcon(h, kind) {
  return h("span", { class: `att-icon att-icon-${kind.kind}`, "aria-hidden": "true", text: kind.icon });
}

/** The attachments of a message as a list: each a link (name, size, icon); an image on an
 *  allowed origin also as a thumbnail. `h` is the console's element helper. */
export function attachmentList(h, attachments, origins) {
  const list = h("ul", { class: "attachments", testid: "attachments", "aria-label": "Attachments" });
  for (const a of attachments) {
    if (!a || typeof a !== "object") continue;
    const name = String(a.name ?? "file");
    const kind = fileKind(a.content_type);
    const size = humanSize(a.size);
    const linkable = httpOrigin(a.url) !== null;
    const label = [
      fileIcon(h, kind),
      h("span", { class: "att-name", text: name }),
      h("span", { class: "att-meta muted small", text: [kind.word, size].filter(Boolean).join(" · ") }),
    ];
    const link = linkable
      ? h("a", { class: "att-link", testid: "attachment-link", href: String(a.url), target: "_blank", rel: "noopener noreferrer", referrerpolicy: "no-referrer" }, label)
      : h("span", { class: "att-link att-unlinked", testid: "attachment-link" }, label);
    let thumb = null;
    // The hub accepts attachment URLs on its allow-list only; the page checks again before it
    // loads anything, since an image is fetched the moment it is drawn.
    if (kind.kind === "image" && isAllowedOrigin(a.url, origins)) {
      thumb = h("a", { class: "att-thumb-link", href: String(a.url), target: "_blank", rel: "noopener noreferrer", referrerpolicy: "no-referrer", tabindex: "-1", "aria-hidden": "true" },
        h("img", { class: "att-thumb", testid: "attachment-thumb", src: String(a.url), alt: "", loading: "lazy", referrerpolicy: "no-referrer", decoding: "async" }));
    }
    list.append(h("li", { class: `attachment att-${kind.kind}`, testid: "attachment", data: { kind: kind.kind } }, thumb, link));
  }
  return list;
}

/** A conversation list preview of a message: its text, or what it holds instead. */
export function previewText(m) {
  if (!m) return "";
  if (m.deleted) return DELETED_TEXT;
  if (m.text) return m.text;
  const n = Array.isArray(m.attachments) ? m.attachments.length : 0;
  if (n === 1) return `Attachment: ${m.attachments[0].name}`;
  if (n > 1) return `${n} attachments`;
  return "";
}

/** Whether a message changed: deleted since, or edited later than what is shown. */
export function isNewer(shown, incoming) {
  if (!shown) return true;
  if (incoming.deleted && !shown.deleted) return true;
  return !shown.deleted && (incoming.edited_at || 0) > (shown.edited_at || 0);
}

/**
 * A message's body, marker and actions in a conversation: the text (or the tombstone), the
 * attachments, "edited" (for an admin a button that shows the edit history), and Edit/Delete
 * on my own messages while the edit window lasts (Delete on anyone's for an admin). The hub
 * enforces the window and who may do what; the page hides what it would refuse and says what
 * it refused when it does.
 *
 * `ctx`: {h, session, toast, errorText, timeLabel}; `session` gives myId, isAdmin, settings,
 * hub, nameOf(id) and serverNow().
 */
export class MessageDecor {
  constructor(ctx) {
    Object.assign(this, ctx);
  }

  /** Whether I may still edit (and delete) this message of mine. */
  withinWindow(m) {
    return Number.isFinite(m.ts) && this.session.serverNow() - m.ts < this.session.settings.editWindowMs;
  }

  mayEdit(m) {
    return !m.deleted && Number.isFinite(m.seq) && m.from?.id === this.session.myId && this.withinWindow(m);
  }

  mayDelete(m) {
    return !m.deleted && Number.isFinite(m.seq) && (this.session.isAdmin || (m.from?.id === this.session.myId && this.withinWindow(m)));
  }

  /** Fills the parts of `li` (a message element of `view`, a ConversationView) that depend on
   *  the message's content and state. */
  render(view, li, m) {
    const h = this.h;
    const text = li.querySelector(".text");
    li.classList.toggle("deleted", !!m.deleted);
    if (m.deleted) li.dataset.deleted = "true"; else delete li.dataset.deleted;
    if (m.deleted) this.closeEditor(li);
    if (!li.querySelector(".msg-edit-form")) {
      text.textContent = m.deleted ? DELETED_TEXT : (m.text ?? "");
      text.hidden = !m.deleted && !m.text;
    }
    if (m.deleted) text.dataset.testid = "tombstone"; else delete text.dataset.testid;

    // The attachments, after the text.
    li.querySelector(".attachments")?.remove();
    if (!m.deleted && Array.isArray(m.attachments) && m.attachments.length) {
      text.after(attachmentList(h, m.attachments, this.session.settings.attachmentOrigins));
    }

    // "edited" beside the time; an admin opens the edit history from it.
    const meta = li.querySelector(".msg-meta");
    meta.querySelector(".msg-edited")?.remove();
    if (m.edited_at && !m.deleted) {
      const title = `Edited ${this.timeLabel(m.edited_at)}`;
      const marker = this.session.isAdmin && Number.isFinite(m.seq)
        ? h("button", { type: "button", class: "msg-edited link", testid: "edited", title, "aria-expanded": "false",
          "aria-label": `edited ${this.timeLabel(m.edited_at)}: show the earlier versions`,
          onclick: (e) => this.toggleHistory(view, li, m, e.currentTarget) }, "edited")
        : h("span", { class: "msg-edited muted", testid: "edited", title, text: "edited" });
      meta.append(marker);
    }
    if (m.deleted) li.querySelector(".edit-history")?.remove();
    this.renderActions(view, li, m);
  }

  renderActions(view, li, m) {
    const h = this.h;
    let bar = li.querySelector(".msg-actions");
    if (!bar) {
      bar = h("div", { class: "msg-actions" });
      li.querySelector(".msg-foot").before(bar);
    }
    clearTimeout(li._windowTimer);
    const canEdit = this.mayEdit(m);
    const canDelete = this.mayDelete(m);
    bar.replaceChildren();
    bar.hidden = !(canEdit || canDelete);
    if (canEdit) {
      bar.append(h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "msg-edit", text: "Edit",
        "aria-label": "Edit this message", onclick: () => this.openEditor(view, li, m) }));
    }
    if (canDelete) {
      bar.append(h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "msg-delete", text: "Delete",
        "aria-label": "Delete this message", onclick: () => this.askDelete(view, li, m, bar) }));
    }
    // The controls go when the window closes (an admin's Delete stays).
    if (m.from?.id === this.session.myId && canEdit) {
      const left = this.session.settings.editWindowMs - (this.session.serverNow() - m.ts);
      li._windowTimer = setTimeout(() => { if (li.isConnected && !view.closed) this.renderActions(view, li, view.msgs.get(m.seq) || m); }, Math.max(0, left) + 50);
    }
  }

  showError(li, e, what) {
    const text = `${what}: ${this.errorText(e)}`;
    let p = li.querySelector(".msg-error");
    if (!p) {
      p = this.h("p", { class: "field-error msg-error", testid: "msg-error", role: "alert" });
      li.querySelector(".msg-foot").before(p);
    }
    p.textContent = text;
    this.toast(text, "error");
  }

  clearError(li) {
    li.querySelector(".msg-error")?.remove();
  }

  openEditor(view, li, m) {
    if (li.querySelector(".msg-edit-form")) return;
    const h = this.h;
    const text = li.querySelector(".text");
    const box = h("textarea", { class: "edit-input", testid: "edit-input", rows: "2", "aria-label": "Edit message" });
    box.value = m.text ?? "";
    const form = h("form", { class: "msg-edit-form" }, box,
      h("div", { class: "row" },
        h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "edit-save", text: "Save" }),
        h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "edit-cancel", text: "Cancel", onclick: () => this.closeEditor(li, true) }),
        h("span", { class: "muted small", text: "Enter saves · Esc cancels" })));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.saveEdit(view, li, m, box.value, form); });
    box.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); this.closeEditor(li, true); }
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    text.hidden = true;
    text.after(form);
    li.querySelector(".msg-actions").hidden = true;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  closeEditor(li, restore = false) {
    const form = li.querySelector(".msg-edit-form");
    if (!form) return;
    form.remove();
    const text = li.querySelector(".text");
    text.hidden = !text.textContent;
    if (restore) {
      const bar = li.querySelector(".msg-actions");
      if (bar) bar.hidden = !bar.childElementCount;
      bar?.querySelector('[data-testid="msg-edit"]')?.focus();
    }
  }

  async saveEdit(view, li, m, value, form) {
    const current = view.msgs.get(m.seq) || m;
    if (value === (current.text ?? "")) return this.closeEditor(li, true);
    if (!value.trim()) return this.showError(li, { message: "an edited message needs some text; delete it instead" }, "Not saved");
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    try {
      const r = await this.session.hub.edit(view.channel, m.seq, value);
      if (view.closed) return;
      this.clearError(li);
      this.closeEditor(li);
      view.s.onMessageChange({ channel: view.channel, seq: m.seq, text: value, edited_at: r?.edited_at ?? this.session.serverNow() });
    } catch (e) {
      if (view.closed) return;
      for (const b of form.querySelectorAll("button")) b.disabled = false;
      this.showError(li, e, "Not saved");
      // The hub refused (the window passed, it is not mine): the controls go.
      if (e?.code === "forbidden") { this.closeEditor(li); this.renderActions(view, li, { ...current, ts: -Infinity }); }
    }
  }

  askDelete(view, li, m, bar) {
    const h = this.h;
    const mine = m.from?.id === this.session.myId;
    bar.replaceChildren(
      h("span", { class: "small", text: mine ? "Delete this message for everyone?" : "Delete this message (as admin) for everyone?" }),
      h("button", { type: "button", class: "btn btn-small btn-danger", testid: "delete-confirm", text: "Delete",
        onclick: (e) => this.doDelete(view, li, m, e.currentTarget) }),
      h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "delete-cancel", text: "Cancel",
        onclick: () => this.renderActions(view, li, view.msgs.get(m.seq) || m) }));
    bar.querySelector('[data-testid="delete-cancel"]').focus();
  }

  async doDelete(view, li, m, button) {
    button.disabled = true;
    try {
      await this.session.hub.deleteMessage(view.channel, m.seq);
      if (view.closed) return;
      this.clearError(li);
      view.s.onMessageChange({ channel: view.channel, seq: m.seq, deleted: true });
    } catch (e) {
      if (view.closed) return;
      this.showError(li, e, "Not deleted");
      const current = view.msgs.get(m.seq) || m;
      this.renderActions(view, li, e?.code === "forbidden" && !this.session.isAdmin ? { ...current, ts: -Infinity } : current);
    }
  }

  /** An admin's view of the earlier texts (`edits`), under the message. */
  async toggleHistory(view, li, m, marker) {
    const open = li.querySelector(".edit-history");
    if (open) { open.remove(); marker.setAttribute("aria-expanded", "false"); return; }
    const h = this.h;
    const panel = h("div", { class: "edit-history", testid: "edit-history" }, h("p", { class: "muted small", text: "Loading the edit history…" }));
    li.querySelector(".msg-foot").before(panel);
    marker.setAttribute("aria-expanded", "true");
    try {
      const r = await this.session.hub.edits(view.channel, m.seq);
      if (view.closed) return;
      const edits = Array.isArray(r?.edits) ? r.edits : [];
      panel.replaceChildren(
        h("p", { class: "small edit-history-title", text: edits.length ? "Earlier versions (moderation):" : "No earlier versions are kept." }),
        h("ol", { class: "edit-history-list" }, edits.map((e) => h("li", { class: "small", testid: "edit-history-item" },
          h("span", { class: "muted", text: `${this.timeLabel(e.edited_at)} · ${this.session.nameOf(e.editor)} replaced: ` }),
          h("span", { class: "edit-history-text", text: String(e.text ?? "") })))));
    } catch (e) {
      if (view.closed) return;
      panel.replaceChildren(h("p", { class: "field-error small", role: "alert", text: `Could not load the edit history: ${this.errorText(e)}` }));
    }
  }
}
