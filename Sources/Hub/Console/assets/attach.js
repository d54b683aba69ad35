// The composer's attach control. The hub never receives a file: the platform's file store holds
// it, and a message carries references {url, name, size, content_type} whose url must be on one
// of the hub's attachment origins. The control takes the link the platform gave (and the name,
// size and type, or derives them from the link), checks it as the hub will, and stages it for
// the next send; a refusal by the hub is shown with the send as any other.

import { fileIcon, fileKind, httpOrigin, humanSize } from "/messages.js";

export const MAX_ATTACHMENTS = 10;

/** The name a URL suggests for its file: the last path segment, decoded. */
export function nameFromUrl(url) {
  try {
    const segs = new URL(url).pathname.split("/").filter(Boolean);
    const last = segs.length ? decodeURIComponent(segs[segs.length - 1]) : "";
    return last || "file";
  } catch {
    return "file";
  }
}

const TYPES_BY_EXTENSION = {
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", svg: "image/svg+xml",
  pdf: "application/pdf", txt: "text/plain", csv: "text/csv", zip: "application/zip", mp4: "video/mp4",
  mp3: "audio/mpeg", doc: "application/msword", docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", html: "text/html", json: "application/json",
};

/** A media type guessed from a file name's extension (application/octet-stream otherwise). */
export function typeFromName(name) {
  const ext = /\.([A-Za-z0-9]+)$/.exec(String(name))?.[1]?.toLowerCase();
  return (ext && TYPES_BY_EXTENSION[ext]) || "application/octet-stream";
}

/** What the attach form describes, checked as the hub will check it; `{error}` names what is
 *  wrong in words, `{attachment}` otherwise. */
export function attachmentFromForm({ url, name, size, type }, origins) {
  const u = String(url || "").trim();
  if (!u) return { error: "Paste the file's link from the platform." };
  const origin = httpOrigin(u);
  if (!origin) return { error: "That is not a web link (it must start with https://)." };
  if (origins.length === 0) return { error: "This hub takes no attachments (it has no file store configured)." };
  if (!origins.includes(origin)) return { error: `Files can only be attached from ${origins.join(", ")}.` };
  const fileName = String(name || "").trim() || nameFromUrl(u);
  let bytes = 0;
  if (String(size ?? "").trim() !== "") {
    bytes = Number(size);
    if (!Number.isInteger(bytes) || bytes < 0) return { error: "The size is a whole number of bytes." };
  }
  const mediaType = String(type || "").trim().toLowerCase() || typeFromName(fileName);
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(mediaType)) return { error: "The type is a media type such as image/png." };
  return { attachment: { url: u, name: fileName, size: bytes, content_type: mediaType } };
}

const PAPERCLIP = "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10h-1.5Z";

function paperclip() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  for (const [k, v] of [["viewBox", "0 0 24 24"], ["width", "18"], ["height", "18"], ["aria-hidden", "true"], ["focusable", "false"]]) svg.setAttribute(k, v);
  svg.classList.add("icon");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", PAPERCLIP);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** `ctx`: {h, settings: () => the console settings, onChange: () => void (staged list changed)}. */
export class AttachControl {
  constructor(ctx) {
    Object.assign(this, ctx);
    const h = this.h;
    this.staged = [];
    const field = (id, label, props = {}) => {
      const input = h("input", { id, testid: id, type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "off", ...props });
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") { e.preventDefault(); this.add(); }
        if (e.key === "Escape") { e.preventDefault(); this.toggle(false); }
      });
      return [input, h("div", { class: "attach-field" }, h("label", { for: id, text: label }), input)];
    };
    let urlField, nameField, sizeField, typeField;
    [this.url, urlField] = field("attach-url", "Link to the file (from the platform)", { type: "url", placeholder: "https://…", "aria-describedby": "attach-error" });
    [this.name, nameField] = field("attach-name", "Name (optional)", { placeholder: "from the link" });
    [this.size, sizeField] = field("attach-size", "Size in bytes (optional)", { inputmode: "numeric" });
    [this.type, typeField] = field("attach-type", "Type (optional)", { placeholder: "from the name, e.g. image/png" });
    this.error = h("p", { class: "field-error", id: "attach-error", testid: "attach-error", role: "alert" });
    this.panel = h("div", { class: "attach-panel", id: "attach-panel", hidden: true, role: "group", "aria-label": "Attach a file by its link" },
      urlField, h("div", { class: "attach-row" }, nameField, sizeField, typeField),
      h("div", { class: "row" },
        h("button", { type: "button", class: "btn btn-primary btn-small", testid: "attach-add", text: "Add", onclick: () => this.add() }),
        h("button", { type: "button", class: "btn btn-quiet btn-small", text: "Cancel", onclick: () => this.toggle(false) })),
      this.error);
    this.button = h("button", {
      type: "button", class: "btn attach-open", testid: "attach-open", "aria-expanded": "false", "aria-controls": "attach-panel",
      "aria-label": "Attach a file", title: "Attach a file by its link", onclick: () => this.toggle(),
    }, paperclip(), h("span", { class: "attach-word", text: "Attach" }));
    this.list = h("ul", { class: "attach-staged", testid: "attach-staged", hidden: true, "aria-label": "Files to send" });
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) this.url.focus(); else this.button.focus();
    this.onChange?.();
  }

  add() {
    if (this.staged.length >= MAX_ATTACHMENTS) { this.error.textContent = `At most ${MAX_ATTACHMENTS} files per message.`; return; }
    const r = attachmentFromForm({ url: this.url.value, name: this.name.value, size: this.size.value, type: this.type.value },
      this.settings().attachmentOrigins);
    if (r.error) {
      this.error.textContent = r.error;
      this.url.setAttribute("aria-invalid", "true");
      this.url.focus();
      return;
    }
    this.url.removeAttribute("aria-invalid");
    this.error.textContent = "";
    for (const input of [this.url, this.name, this.size, this.type]) input.value = "";
    this.staged.push(r.attachment);
    this.renderStaged();
    this.toggle(false);
  }

  renderStaged() {
    const h = this.h;
    this.list.hidden = this.staged.length === 0;
    this.list.replaceChildren(...this.staged.map((a, i) => h("li", { class: "attach-chip", testid: "attach-chip" },
      fileIcon(h, fileKind(a.content_type)),
      h("span", { class: "att-name", text: a.name }),
      h("span", { class: "muted small", text: humanSize(a.size) }),
      h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "attach-remove", text: "Remove",
        "aria-label": `Remove ${a.name}`, onclick: () => { this.staged.splice(i, 1); this.renderStaged(); this.button.focus(); } }))));
    this.onChange?.();
  }

  /** The staged attachments, handed over to a send (and cleared). */
  take() {
    const out = this.staged;
    this.staged = [];
    this.renderStaged();
    return out;
  }
}
