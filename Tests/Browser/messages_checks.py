"""Issue 23's messages in the console, walked by the three sessions of console_test.py (client
demo-client, agent demo-web, admin demo-admin) on its development-mode hub, which runs with two
attachment origins: https://files.example.com (never fetched: its file is a link) and a file
store this module serves on 127.0.0.1 (plain http is allowed in development mode), whose image
the console shows as a thumbnail:

- the client attaches two files with the attach control (an image on the local store, a PDF
  on files.example.com) and a link elsewhere is refused before anything is sent; the agent's
  page shows both as links with name and size, the image also as a thumbnail whose src is the
  allowed origin's URL and which really loaded (the Content-Security-Policy let it); the policy
  names exactly the two origins in img-src;
- the client edits a message: the agent's page shows the new text and "edited" live; the
  admin opens the edit history from the marker and reads the old text; the agent is offered
  neither Edit nor Delete on the client's messages; the admin is offered Delete on anyone's;
- the agent deletes a message: the client's page shows the tombstone live and no longer holds
  the text;
- the edit window (20 s in this run): Edit and Delete go from a message when it closes, and an
  edit saved from an editor opened before then shows the hub's refusal;
- in the page itself: an image attachment on any other origin (or a javascript: link, or user
  info naming another host) gets no thumbnail and no link, and a search snippet becomes text and
  <mark> elements only, whatever else it holds;
- the client searches for a word said 60 messages ago: the result shows the snippet with the
  word marked, the conversation and the sender; clicking it opens the conversation (from
  another one) with that message loaded, highlighted and on screen.

Each new view is checked with axe-core and photographed at 390x844 and 1280x800.
"""
import http.server
import threading
import time
import urllib.request
import zlib
import struct

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

import console_test as ct
import desk_checks

FILES_PORT = 18282
LOCAL_ORIGIN = f"http://127.0.0.1:{FILES_PORT}"
REMOTE_ORIGIN = "https://files.example.com"
ORIGINS = (REMOTE_ORIGIN, LOCAL_ORIGIN)
IMAGE_URL = f"{LOCAL_ORIGIN}/files/site-plan.png"
PDF_URL = f"{REMOTE_ORIGIN}/docs/brief%20v2.pdf"
WITH_FILES = "Here are the plan and the brief"
SEARCH_WORD = "zebracorn"
SEARCH_TEXT = f"The {SEARCH_WORD} invoice needs a second look"
BEFORE_EDIT = "Can we moev the call to Friday?"
AFTER_EDIT = "Can we move the call to Friday?"
TO_DELETE = "Sorry, that was meant for another client"
TOO_LATE = "This one gets fixed too late"
# Short, so that the window's end is seen within the test; every edit and delete here but the
# late one happens within a few seconds of its send.
EDIT_WINDOW_S = 20


def png(width=40, height=30):
    """A small valid PNG: a blue rectangle."""
    raw = b"".join(b"\x00" + b"\x1f\x6f\xc5" * width for _ in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class FileStore:
    """The platform's file store, as far as the console sees it: GET of one image."""

    def __init__(self):
        body = png()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path != "/files/site-plan.png":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", FILES_PORT), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def wait(driver, what, timeout=10, message=""):
    """console_test.wait, where an element replaced while it was being looked at (a message
    redrawn when its send is confirmed or it is edited) means "not yet", not a failure."""
    def attempt(d):
        try:
            return what(d)
        except StaleElementReferenceException:
            return None
    return ct.wait(driver, attempt, timeout, message)


def hub_args():
    """What the hub under test runs with for these checks."""
    out = ["--edit-window", str(EDIT_WINDOW_S)]
    for origin in ORIGINS:
        out += ["--attachment-origin", origin]
    return out


def msg(driver, text):
    return ct.message_el(driver, text)


def stored(driver, text):
    m = msg(driver, text)
    return m if m is not None and m.get_attribute("data-seq") else None


def in_msg(driver, m, testid):
    return [e for e in ct.q(driver, testid, m) if e.is_displayed()]


# Installed in the watching page: the wall-clock time (ms) at which a predicate over the page
# first held, so that a delay is measured in the browsers, not through WebDriver's round trips.
WATCH_JS = """
const [key, test] = [arguments[0], new Function("return (" + arguments[1] + ")")()];
window.__seen = window.__seen || {};
delete window.__seen[key];
const look = () => { if (!window.__seen[key] && test()) { window.__seen[key] = Date.now(); obs.disconnect(); } };
const obs = new MutationObserver(look);
obs.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
look();
"""


def watch(driver, key, predicate_js):
    driver.execute_script(WATCH_JS, key, predicate_js)


def seen_after(driver, key, t0):
    seen = wait(driver, lambda d: d.execute_script("return (window.__seen || {})[arguments[0]]", key), 5, f"{key} never seen")
    return seen - t0


def check_policy():
    with urllib.request.urlopen(ct.BASE + "/", timeout=5) as res:
        policy = res.headers["Content-Security-Policy"]
    img = next(d.strip() for d in policy.split(";") if d.strip().startswith("img-src "))
    assert img.split()[1:] == ["'self'", "data:", *ORIGINS], f"img-src is {img!r}"
    assert "*" not in policy and "https:;" not in policy.replace("https://", ""), f"the policy is wider: {policy!r}"


def attach(driver, url, name="", size="", kind=""):
    ct.q(driver, "attach-open")[0].click()
    box = wait(driver, lambda d: (ct.shown(d, "attach-url") or [None])[0], 3, "the attach control did not open")
    box.send_keys(url)
    for testid, value in (("attach-name", name), ("attach-size", size), ("attach-type", kind)):
        if value:
            ct.q(driver, testid)[0].send_keys(value)
    ct.q(driver, "attach-add")[0].click()


def check_attachments(client, agent, shots):
    check_policy()
    ct.open_conversation(client, ct.CHANNEL)
    ct.open_conversation(agent, ct.CHANNEL)
    # A link anywhere else is refused before anything is sent.
    attach(client, "https://elsewhere.example.net/x.png")
    error = wait(client, lambda d: (ct.shown(d, "attach-error") or [None])[0], 3, "no error for a link off the allowed origins")
    assert "files.example.com" in error.text and LOCAL_ORIGIN in error.text, f"the refusal says {error.text!r}"
    ct.q(client, "attach-url")[0].clear()
    ct.q(client, "attach-add")[0].find_element(By.XPATH, "following-sibling::button").click()  # Cancel
    attach(client, IMAGE_URL, name="Site plan.png", size="20480")
    attach(client, PDF_URL, size="1234567")
    chips = ct.shown(client, "attach-chip")
    assert len(chips) == 2, f"staged: {[c.text for c in chips]}"
    ct.send(client, WITH_FILES)
    for who, d in (("agent", agent), ("client", client)):
        m = wait(d, lambda x: stored(x, WITH_FILES), 5, f"the {who} does not show the message with files")
        wait(d, lambda x: len(in_msg(x, stored(x, WITH_FILES), "attachment-link")) == 2, 5, f"the {who} does not show two attachment links")
        m = stored(d, WITH_FILES)
        links = in_msg(d, m, "attachment-link")
        hrefs = [a.get_attribute("href") for a in links]
        assert hrefs == [IMAGE_URL, PDF_URL], f"the {who}'s links: {hrefs}"
        assert "Site plan.png" in links[0].text and "20.0 KB" in links[0].text, f"image link: {links[0].text!r}"
        assert "brief v2.pdf" in links[1].text and "1.2 MB" in links[1].text and "PDF" in links[1].text, f"pdf link: {links[1].text!r}"
        thumbs = ct.q(d, "attachment-thumb", m)
        assert len(thumbs) == 1, f"the {who} shows {len(thumbs)} thumbnails (one image)"
        assert thumbs[0].get_attribute("src") == IMAGE_URL, f"thumbnail src {thumbs[0].get_attribute('src')!r}"
        wait(d, lambda x: x.execute_script("const i = arguments[0]; return i.complete && i.naturalWidth === 40", thumbs[0]), 5,
                f"the {who}'s thumbnail did not load (the policy or the store refused it)")
    desk_checks.views_at_both_sizes(agent, shots, "agent attachments")


def check_edit(client, agent, admin, shots):
    ct.send(client, BEFORE_EDIT)
    m = wait(client, lambda d: stored(d, BEFORE_EDIT), 5, "the message to edit was not stored")
    wait(agent, lambda d: stored(d, BEFORE_EDIT), 5, "the agent does not show the message to edit")
    assert not ct.q(agent, "msg-edit", stored(agent, BEFORE_EDIT)) and not ct.q(agent, "msg-delete", stored(agent, BEFORE_EDIT)), \
        "the agent is offered Edit or Delete on the client's message"
    in_msg(client, m, "msg-edit")[0].click()
    box = wait(client, lambda d: (ct.shown(d, "edit-input") or [None])[0], 3, "no edit box")
    box.clear()
    box.send_keys(AFTER_EDIT)
    watch(agent, "edit", "() => [...document.querySelectorAll('.msg .text')].some((t) => t.textContent === %r)" % AFTER_EDIT)
    t0 = client.execute_script("return Date.now()")
    box.send_keys(ct.Keys.ENTER)
    m = wait(agent, lambda d: msg(d, AFTER_EDIT), 5, f"the agent did not see the edit live: {ct.texts(agent)[-3:]}")
    print(f"    the edit was on the agent's page {seen_after(agent, 'edit', t0)} ms after Enter")
    assert in_msg(agent, m, "edited"), "the agent's page does not mark the message edited"
    assert msg(agent, BEFORE_EDIT) is None, "the agent still shows the old text"
    wait(client, lambda d: msg(d, AFTER_EDIT) is not None and in_msg(d, msg(d, AFTER_EDIT), "edited"), 5, "the client's page does not show its edit")
    shots.take(agent, "agent-edited")
    # The admin reads the earlier text (moderation) and may delete anyone's message.
    ct.go(admin, "chat")
    ct.open_conversation(admin, ct.CHANNEL)
    m = wait(admin, lambda d: msg(d, AFTER_EDIT), 10, "the admin does not show the edited message")
    marker = wait(admin, lambda d: (in_msg(d, msg(d, AFTER_EDIT), "edited") or [None])[0], 5, "no edited marker for the admin")
    marker.click()
    item = wait(admin, lambda d: (ct.shown(d, "edit-history-item") or [None])[0], 5, "the admin's edit history did not open")
    assert BEFORE_EDIT in item.text and "Cleo Client" in item.text, f"the edit history says {item.text!r}"
    assert in_msg(admin, msg(admin, AFTER_EDIT), "msg-delete"), "the admin is not offered Delete on a client's message"
    assert not ct.q(admin, "msg-edit", msg(admin, AFTER_EDIT)), "the admin is offered Edit on another's message"
    desk_checks.views_at_both_sizes(admin, shots, "admin edit history")


def check_delete(client, agent, shots):
    ct.send(agent, TO_DELETE)
    wait(client, lambda d: stored(d, TO_DELETE), 5, "the client does not show the message to delete")
    m = wait(agent, lambda d: stored(d, TO_DELETE), 5, "the agent's message was not stored")
    seq = m.get_attribute("data-seq")
    in_msg(agent, m, "msg-delete")[0].click()
    confirm = wait(agent, lambda d: ct.shown(d, "delete-confirm"), 3, "deleting does not ask first")[0]
    watch(client, "delete", "() => !!document.querySelector('.msg[data-seq=\"%s\"][data-deleted=\"true\"]')" % seq)
    t0 = agent.execute_script("return Date.now()")
    confirm.click()
    tomb = wait(client, lambda d: next((e for e in ct.q(d, "message") if e.get_attribute("data-seq") == seq and e.get_attribute("data-deleted") == "true"), None),
                   5, "the client did not see the delete live")
    print(f"    the tombstone was on the client's page {seen_after(client, 'delete', t0)} ms after the confirm")
    assert tomb.find_element(By.CSS_SELECTOR, ".text").text == "This message was deleted", f"tombstone: {tomb.text!r}"
    assert TO_DELETE not in client.execute_script("return document.body.textContent"), "the client's page still holds the deleted text"
    wait(agent, lambda d: next((e for e in ct.q(d, "message") if e.get_attribute("data-seq") == seq and e.get_attribute("data-deleted") == "true"), None),
            5, "the agent's page does not show its delete")
    shots.take(client, "client-tombstone")


def check_window(client, shots):
    older = stored(client, AFTER_EDIT)
    assert older is not None, "the edited message is not on screen"
    ct.send(client, TOO_LATE)
    sent = time.time()
    m = wait(client, lambda d: stored(d, TOO_LATE), 5, "the late message was not stored")
    in_msg(client, m, "msg-edit")[0].click()
    box = wait(client, lambda d: (ct.shown(d, "edit-input") or [None])[0], 3, "no edit box")
    box.send_keys(" (fixed)")
    # An older message's window closes first: its controls go by themselves.
    wait(client, lambda d: not in_msg(d, older, "msg-edit") and not in_msg(d, older, "msg-delete"), EDIT_WINDOW_S + 5,
            "Edit and Delete stayed on a message after its edit window")
    time.sleep(max(0.0, sent + EDIT_WINDOW_S + 1.5 - time.time()))
    box.send_keys(ct.Keys.ENTER)
    error = wait(client, lambda d: (in_msg(d, m, "msg-error") or [None])[0], 5, "no refusal shown for an edit after the window")
    assert "edit window" in error.text and "forbidden" in error.text, f"the refusal says {error.text!r}"
    assert not in_msg(client, m, "msg-edit") and not in_msg(client, m, "msg-delete"), "the refused message still offers Edit or Delete"
    assert m.find_element(By.CSS_SELECTOR, ".text").text == TOO_LATE, "the refused edit shows as saved"
    shots.take(client, "client-window-passed")


def check_search(client, agent, hub, shots):
    ct.open_conversation(client, ct.CHANNEL)
    ct.send(client, SEARCH_TEXT)
    wait(client, lambda d: stored(d, SEARCH_TEXT), 5, "the message to find was not stored")
    # Sixty messages after it: the conversation's first page no longer holds it.
    for i in range(60):
        status, _ = ct.bridge(hub, "POST", "/v1/conversations/website/demo-client/messages", {"text": f"status update {i}"})
        assert status == 201, f"bridge message {i}: {status}"
    wait(client, lambda d: ct.texts(d)[-1:] == ["status update 59"], 10, "the client did not get the bridge's messages")
    ct.open_conversation(client, ct.MARKETING)
    client.refresh()  # a fresh page: only the latest page of the website conversation is loaded when it opens
    wait(client, ct.is_live, 15, "the client is not live after a reload")
    box = wait(client, lambda d: (ct.shown(d, "search-input") or [None])[0], 5, "no search box")
    box.send_keys(SEARCH_WORD, ct.Keys.ENTER)
    result = wait(client, lambda d: next((r for r in ct.shown(d, "search-result") if r.get_attribute("data-channel") == ct.CHANNEL), None), 5,
                     f"no result for {SEARCH_WORD!r}: {[e.text for e in ct.q(client, 'search-status')]}")
    marks = result.find_elements(By.CSS_SELECTOR, '[data-testid="search-snippet"] mark')
    assert [m.text.lower() for m in marks] == [SEARCH_WORD], f"marked: {[m.text for m in marks]} in {result.text!r}"
    assert "Website" in result.text and "You" in result.text, f"the result does not say where and who: {result.text!r}"
    desk_checks.views_at_both_sizes(client, shots, "client search")
    seq = result.get_attribute("data-seq")
    result.click()
    hit = wait(client, lambda d: next((e for e in ct.q(d, "message") if e.get_attribute("data-highlight") == "true"), None), 10,
                  "the search result did not open the conversation at the message")
    assert hit.get_attribute("data-seq") == seq and hit.find_element(By.CSS_SELECTOR, ".text").text == SEARCH_TEXT, \
        f"highlighted {hit.get_attribute('data-seq')} {hit.text!r}, expected seq {seq}"
    root = next(c for c in client.find_elements(By.CSS_SELECTOR, ".conversation") if c.is_displayed())
    assert root.get_attribute("data-channel") == ct.CHANNEL, "the search result opened another conversation"
    scroller = root.find_element(By.CSS_SELECTOR, ".messages")
    wait(client, lambda d: (lambda a, b: a["top"] >= b["top"] - 1 and a["bottom"] <= b["bottom"] + 1)(ct.rect(d, hit), ct.rect(d, scroller)), 3,
            f"the message is not on screen: {ct.rect(client, hit)} in {ct.rect(client, scroller)}")
    shots.take(client, "client-search-hit")


# Runs in the page: the console's own rendering of hostile attachments and snippets.
GUARDS_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const m = await import("/messages.js");
  const s = await import("/search.js");
  const settings = await m.fetchSettings();
  // Built in an inert document: an image drawn there is never fetched.
  const inert = document.implementation.createHTMLDocument("");
  const h = (tag, props = {}, ...children) => {
    const el = inert.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v; else if (k === "testid") el.dataset.testid = v;
      else if (k === "data") Object.assign(el.dataset, v); else if (k === "text") el.textContent = v;
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) if (c) el.append(c);
    return el;
  };
  const hostile = [
    {url: "https://elsewhere.example.net/a.png", name: "a.png", size: 1, content_type: "image/png"},
    {url: "https://files.example.com@elsewhere.example.net/b.png", name: "b.png", size: 1, content_type: "image/png"},
    {url: "javascript:alert(1)", name: "c.png", size: 1, content_type: "image/png"},
    {url: "https://files.example.com/ok.png", name: "ok.png", size: 1, content_type: "image/png"},
  ];
  const list = m.attachmentList(h, hostile, settings.attachmentOrigins);
  const snippet = document.createElement("span");
  snippet.append(...s.snippetNodes('<img src=x onerror=alert(1)> &lt;b&gt;bold&lt;/b&gt; <mark>word</mark> &amp; <b>x</b>'));
  done({
    origins: settings.attachmentOrigins,
    thumbs: [...list.querySelectorAll("img")].map((i) => i.getAttribute("src")),
    hrefs: [...list.querySelectorAll("a.att-link")].map((a) => a.getAttribute("href")),
    elements: [...snippet.querySelectorAll("*")].map((e) => e.tagName),
    text: snippet.textContent,
  });
})().catch((e) => done({error: String(e)}));
"""


def check_guards(client):
    got = client.execute_async_script(GUARDS_JS)
    assert "error" not in got, got
    assert got["origins"] == list(ORIGINS), f"the page's origins: {got['origins']}"
    assert got["thumbs"] == ["https://files.example.com/ok.png"], f"thumbnails drawn: {got['thumbs']}"
    assert "javascript:alert(1)" not in got["hrefs"], f"links: {got['hrefs']}"
    assert got["elements"] == ["MARK"], f"the snippet made elements {got['elements']}"
    assert "<img src=x onerror=alert(1)>" in got["text"] and "<b>bold</b>" in got["text"], f"snippet text {got['text']!r}"


def check_messages(client, agent, admin, hub, shots):
    """Issue 23: attachments, edit, delete and search, across the three sessions."""
    for d in (client, agent, admin):
        ct.set_size(d, *ct.DESKTOP)
        ct.go(d, "chat")
    check_attachments(client, agent, shots)
    check_guards(client)
    check_edit(client, agent, admin, shots)
    check_delete(client, agent, shots)
    check_window(client, shots)
    check_search(client, agent, hub, shots)
