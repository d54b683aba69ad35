"""Issue 22's support desk in the console, walked by the three sessions of console_test.py
(client demo-client, agent demo-web, admin demo-admin) on its development-mode hub:

- the client writes into its support conversation, which has no agent: the agent's queue
  count rises live (a `queue` push), the item names client, service, last message and how long
  it waits; the admin's queue lists it too;
- the agent claims it (the item leaves both queues, the client's header names the agent), a
  bot of the platform answers through the bridge (a "Bot" badge), the agent answers;
- the agent adds an internal note in note mode: drawn as a note with its label, no `typing`
  op leaves the agent's page while writing it, and the client's page never holds its text
  (live, after a reload, and after the agent's next reply);
- the agent resolves it: the client's header says Resolved, the agent's list shows it under
  the Resolved filter and not under Open;
- a claim that lost the race (another agent took the conversation while this console's queue
  still showed it) says who took it first and drops the item;
- the admin transfers that conversation: an unknown agent id is said plainly, a real one moves
  it (the agent's list gains it).

Each new view is checked with axe-core and photographed at 390x844 and 1280x800.
"""
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import console_test as ct

SUPPORT = "conv:support:demo-client"
COURSES = "conv:courses:demo-client"
ASK = "Hello, my invoice for November is wrong: can someone help?"
BOT_TEXT = "Course Tutor here: invoices are explained in Help › Billing."
REPLY = "Wes here: I am looking at your invoice now."
NOTE = "NOTE-ONLY-STAFF: finance approved a refund of 40 EUR, do not promise a date"
REPLY2 = "Found it: a correction is on its way to you today."
COURSES_ASK = "Is lesson 5 of the email course out yet?"

# Test hook, installed before the page's scripts run: while window.__holdQueue is true, `queue`
# pushes are held back from the page (as when another agent's claim and this one cross).
HOLD_QUEUE_HOOK = """
(() => {
  const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true, get() { return d.get.call(this); },
    set(fn) {
      d.set.call(this, fn && ((e) => {
        if (window.__holdQueue && typeof e.data === "string" && /"type"\\s*:\\s*"queue"/.test(e.data)) return;
        return fn.call(this, e);
      }));
    },
  });
})();"""

# Another agent (demo-mkt) claims a conversation over its own socket, from a page on the hub's
# origin (its development token comes from /dev/token like the sign-in page's).
OTHER_AGENT_CLAIMS = """
const [channel, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const res = await fetch("/dev/token", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({user: "demo-mkt"})});
  const {token} = await res.json();
  const ws = new WebSocket(`ws://${location.host}/ws`);
  const replies = {};
  ws.onmessage = (e) => { const f = JSON.parse(e.data); if (f.id) replies[f.id] = f; };
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  const ask = (id, frame) => new Promise((ok) => {
    ws.send(JSON.stringify({...frame, id}));
    const t0 = Date.now();
    const poll = () => replies[id] || Date.now() - t0 > 5000 ? ok(replies[id] || null) : setTimeout(poll, 20);
    poll();
  });
  await ask(1, {op: "auth", token});
  const claim = await ask(2, {op: "claim", channel});
  ws.close();
  done(claim);
})().catch((e) => done({error: String(e)}));
"""


def queue_count(driver):
    """The queue tab's count (0 when hidden), -1 when there is none."""
    found = ct.q(driver, "queue-count")
    if not found:
        return -1
    if found[0].get_attribute("hidden") is not None:
        return 0
    return int(found[0].get_attribute("textContent").strip() or "0")


def queue_item(driver, channel):
    return next((e for e in ct.shown(driver, "queue-item") if e.get_attribute("data-channel") == channel), None)


def page_holds(driver, text):
    """Whether the text is anywhere in the page's DOM, shown or not (attributes included)."""
    return driver.execute_script("return document.documentElement.outerHTML.includes(arguments[0]) || document.body.textContent.includes(arguments[0])", text)


def open_conv_root(driver, channel):
    return next((c for c in driver.find_elements(By.CSS_SELECTOR, ".conversation") if c.get_attribute("data-channel") == channel and c.is_displayed()), None)


def list_item(driver, channel):
    return next((e for e in ct.q(driver, "conversation") if e.get_attribute("data-channel") == channel), None)


def item_status(driver, channel):
    item = list_item(driver, channel)
    chips = ct.q(driver, "conv-status", item) if item else []
    return chips[0].get_attribute("data-status") if chips else None


def header_text(driver, channel):
    root = open_conv_root(driver, channel)
    head = root.find_elements(By.CSS_SELECTOR, ".conv-head") if root else []
    return head[0].text if head else ""


def choose_mode(driver, mode):
    """Clicks the composer's Reply / Internal note choice (its label: the radio is visually hidden)."""
    radio = ct.q(driver, f"composer-mode-{mode}")[0]
    radio.find_element(By.XPATH, "..").click()
    ct.wait(driver, lambda d: ct.q(d, f"composer-mode-{mode}")[0].is_selected(), 3, f"the composer did not switch to {mode}")


def views_at_both_sizes(driver, shots, name):
    for size in ct.SIZES:
        ct.set_size(driver, *size)
        ct.check_axe(driver, shots, name)
        shots.take(driver, name.replace(" ", "-"))
    ct.set_size(driver, *ct.DESKTOP)


def check_desk_flow(client, agent, admin, hub, shots):
    """The flow of issue 22: queue, claim, bot, answer, internal note, resolve."""
    agent.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOLD_QUEUE_HOOK})
    agent.refresh()
    ct.wait(agent, ct.is_live, 15, "the agent is not live after a reload")
    ct.go(agent, "queue")
    ct.wait(agent, lambda d: ct.shown(d, "queue-page"), 5, "no queue page for the agent")
    ct.wait(agent, lambda d: d.execute_script("return location.hash") == "#/queue", 3, "the queue is not in the address")
    before = queue_count(agent)
    assert before >= 0, "the agent has no queue count"
    assert queue_item(agent, SUPPORT) is None, "the support conversation is queued before the client wrote"
    ct.go(admin, "queue")
    ct.wait(admin, lambda d: ct.shown(d, "queue-page"), 5, "no queue page for the admin")
    assert not ct.q(client, "tab-queue"), "a client has a queue section"

    # The client writes into a conversation no agent serves.
    ct.go(client, "chat")
    ct.open_conversation(client, SUPPORT)
    assert "No agent assigned yet" in header_text(client, SUPPORT), f"client header: {header_text(client, SUPPORT)!r}"
    ct.send(client, ASK)
    t0 = time.time()
    ct.wait(agent, lambda d: queue_count(d) == before + 1, 2, f"the agent's queue count stayed at {queue_count(agent)} (was {before})")
    print(f"    queue count rose {int((time.time() - t0) * 1000)} ms after the client pressed Enter")
    item = ct.wait(agent, lambda d: queue_item(d, SUPPORT), 3, "the support conversation is not in the agent's queue")
    for needle in ("Cleo Client", "Support", ASK, "waiting"):
        assert needle in item.text, f"queue item {item.text!r} does not say {needle!r}"
    assert ct.q(agent, "queue-claim", item), "no Claim button on the queue item"
    ct.wait(admin, lambda d: queue_item(d, SUPPORT), 3, "the support conversation is not in the admin's queue")
    assert not ct.q(admin, "queue-claim", queue_item(admin, SUPPORT)), "an admin is offered Claim (admins assign)"
    views_at_both_sizes(agent, shots, "agent queue")
    views_at_both_sizes(admin, shots, "admin queue")

    # The agent claims it.
    item = ct.wait(agent, lambda d: queue_item(d, SUPPORT), 3, "the queue item went away")
    ct.q(agent, "queue-claim", item)[0].click()
    ct.wait(agent, lambda d: open_conv_root(d, SUPPORT) and ct.shown(d, "composer-input"), 5, "claiming did not open the conversation")
    ct.wait(agent, lambda d: queue_count(d) == before, 3, "the agent's queue count did not go back down")
    ct.wait(admin, lambda d: queue_item(d, SUPPORT) is None, 3, "the admin's queue still lists the claimed conversation")
    ct.wait(client, lambda d: "Wes Website" in header_text(d, SUPPORT), 5, f"the client's header does not name the agent: {header_text(client, SUPPORT)!r}")
    ct.wait(agent, lambda d: ct.texts(d)[-1:] == [ASK], 5, "the agent does not see the client's message")

    # A bot of the platform answers through the bridge.
    assert ct.bridge(hub, "PUT", "/v1/users/course-tutor", {"role": "bot", "name": "Course Tutor"})[0] in (200, 201)
    assert ct.bridge(hub, "POST", "/v1/conversations/support/demo-client/messages", {"text": BOT_TEXT, "as": "course-tutor"})[0] == 201
    for who, d in (("client", client), ("agent", agent)):
        m = ct.wait(d, lambda x: ct.message_el(x, BOT_TEXT), 5, f"the {who} does not show the bot's message")
        badge = ct.q(d, "bot-badge", m)
        assert badge and badge[0].is_displayed() and badge[0].text.strip().lower() == "bot", f"the {who} shows the bot's message without a Bot badge"
        assert "Course Tutor" in m.text, f"the bot's name is not shown: {m.text!r}"

    # The agent answers.
    ct.send(agent, REPLY)
    ct.wait(client, lambda d: ct.texts(d)[-1:] == [REPLY], 5, "the client did not get the agent's answer")

    # An internal note: no typing goes out while it is written, the client never holds it.
    agent.execute_script(ct.SEND_HOOK)
    agent.execute_script("window.__ops.length = 0")
    choose_mode(agent, "note")
    hint = ct.shown(agent, "note-hint")
    assert hint and "only agents and admins" in hint[0].text.lower(), "note mode does not say who sees the note"
    assert "note" in ct.q(agent, "composer-send")[0].text.lower(), "the send button does not say it adds a note"
    box = ct.q(agent, "composer-input")[0]
    box.click()
    for word in NOTE.split(" "):  # typed over more than the 2 s between typing signals
        box.send_keys(word + " ")
        time.sleep(0.12)
    box.send_keys(ct.Keys.BACKSPACE, ct.Keys.ENTER)
    note = ct.wait(agent, lambda d: (lambda m: m if m is not None and m.get_attribute("data-seq") else None)(ct.message_el(d, NOTE)), 5,
                   "the note was not stored")
    assert note.get_attribute("data-internal") == "true", "the note is not drawn as an internal note"
    label = ct.q(agent, "internal-label", note)
    assert label and label[0].is_displayed() and "only agents and admins" in label[0].text, "the note has no visible label"
    assert note.value_of_css_property("border-top-style") == "dashed", "the note is not drawn apart from messages"
    assert not ct.q(agent, "tick", note), "a note shows a delivery tick (the client never reads it)"
    ops = agent.execute_script("return window.__ops")
    assert "send" in ops and "typing" not in ops, f"ops sent while writing the note: {ops}"
    time.sleep(1.0)
    assert not page_holds(client, NOTE), "the client's page holds the internal note"
    views_at_both_sizes(agent, shots, "agent note")
    ct.set_size(agent, *ct.DESKTOP)
    choose_mode(agent, "reply")
    ct.send(agent, REPLY2)
    ct.wait(client, lambda d: ct.texts(d)[-1:] == [REPLY2], 5, "the client did not get the reply after the note")
    assert not page_holds(client, NOTE), "the client's page holds the internal note"
    client.refresh()
    ct.wait(client, ct.is_live, 15, "the client is not live after a reload")
    ct.wait(client, lambda d: ct.texts(d)[-1:] == [REPLY2], 10, f"the conversation did not load after the reload: {ct.texts(client)}")
    assert not page_holds(client, NOTE), "the client's page holds the internal note after a reload"
    shown_texts = ct.texts(client)
    assert shown_texts[-4:] == [ASK, BOT_TEXT, REPLY, REPLY2], f"the client shows {shown_texts}"

    # The agent resolves it.
    assert item_status(agent, SUPPORT) == "open", f"status before resolving: {item_status(agent, SUPPORT)!r}"
    Select(ct.q(agent, "conv-status-select")[0]).select_by_value("resolved")
    ct.wait(agent, lambda d: item_status(d, SUPPORT) == "resolved", 5, "the agent's list does not show Resolved")
    ct.wait(client, lambda d: "Resolved" in header_text(d, SUPPORT), 5, f"the client's header does not say Resolved: {header_text(client, SUPPORT)!r}")
    ct.wait(client, lambda d: item_status(d, SUPPORT) == "resolved", 5, "the client's list does not show Resolved")
    assert not ct.q(client, "conv-status-select"), "a client is offered the status control"
    assert not ct.q(client, "composer-mode-note"), "a client is offered internal notes"
    filt = Select(ct.q(agent, "status-filter")[0])
    filt.select_by_value("resolved")
    assert list_item(agent, SUPPORT).is_displayed(), "the Resolved filter hides the resolved conversation"
    website = list_item(agent, ct.CHANNEL)
    assert website is not None and not website.is_displayed(), "the Resolved filter shows an open conversation"
    views_at_both_sizes(agent, shots, "agent resolved filter")
    filt.select_by_value("open")
    assert not list_item(agent, SUPPORT).is_displayed(), "the Open filter shows the resolved conversation"
    filt.select_by_value("all")
    views_at_both_sizes(client, shots, "client resolved")


def check_desk_conflict_and_transfer(client, agent, admin, hub, shots):
    """A claim that lost the race says who was first; the admin transfers the conversation."""
    ct.go(agent, "queue")
    before = queue_count(agent)
    ct.open_conversation(client, COURSES)
    ct.send(client, COURSES_ASK)
    item = ct.wait(agent, lambda d: queue_item(d, COURSES), 3, "the courses conversation is not in the agent's queue")
    agent.execute_script("window.__holdQueue = true")
    try:
        claim = admin.execute_async_script(OTHER_AGENT_CLAIMS, COURSES)
        assert claim and claim.get("ok"), f"the other agent's claim: {claim}"
        time.sleep(0.3)
        assert queue_item(agent, COURSES) is not None, "the held queue push reached the page"
        ct.q(agent, "queue-claim", item)[0].click()
        notice = ct.wait(agent, lambda d: (ct.shown(d, "queue-notice") or [None])[0], 5, "no notice after the lost claim")
        assert "Mara Marketing took it first" in notice.text, f"the lost claim says {notice.text!r}"
        ct.wait(agent, lambda d: queue_item(d, COURSES) is None, 3, "the lost item stays in the queue")
        assert queue_count(agent) == before, f"queue count {queue_count(agent)}, expected {before}"
        views_at_both_sizes(agent, shots, "agent claim conflict")
    finally:
        agent.execute_script("window.__holdQueue = false")

    # The admin transfers it from Mara to Wes.
    ct.go(admin, "chat")
    ct.wait(admin, lambda d: list_item(d, COURSES), 25, "the courses conversation is not in the admin's list")
    ct.open_conversation(admin, COURSES)
    toggle = ct.wait(admin, lambda d: (ct.shown(d, "assign-open") or [None])[0], 5, "no Assign/Transfer control for the admin")
    ct.wait(admin, lambda d: "Transfer" in ct.shown(d, "assign-open")[0].text, 5, "the control does not offer a transfer")
    toggle.click()
    box = ct.wait(admin, lambda d: (ct.shown(d, "assign-agent") or [None])[0], 3, "no agent field")
    box.send_keys("ghost-agent")
    ct.q(admin, "assign-submit")[0].click()
    ct.wait(admin, lambda d: "no user" in (ct.q(d, "desk-note")[0].text.lower()), 5, f"an unknown agent is reported as {ct.q(admin, 'desk-note')[0].text!r}")
    views_at_both_sizes(admin, shots, "admin assign")
    box = ct.shown(admin, "assign-agent")[0]
    box.clear()
    box.send_keys("demo-web")
    ct.q(admin, "assign-submit")[0].click()
    ct.wait(admin, lambda d: "Transferred from Mara Marketing to Wes Website" in ct.q(d, "desk-note")[0].text, 5,
            f"the transfer says {ct.q(admin, 'desk-note')[0].text!r}")
    ct.go(agent, "chat")
    ct.wait(agent, lambda d: list_item(d, COURSES), 5, "the agent's list did not gain the transferred conversation")
    ct.wait(client, lambda d: "Wes Website" in header_text(d, COURSES), 5, "the client's header does not name the new agent")


REPORT_JS = """
const card = document.querySelector('[data-testid="report"]');
if (!card) return null;
const value = (key) => { const t = card.querySelector(`[data-testid="report-${key}"] [data-testid="report-value"]`); return t ? t.textContent.trim() : null; };
const chart = card.querySelector('[data-testid="report-queue-chart"]');
return {opened: value('opened'), resolved: value('resolved'), firstResponse: value('first-response'),
        chart: chart ? chart.getAttribute('aria-label') : null,
        services: [...card.querySelectorAll('[data-testid="report-service"]')].map((li) => li.dataset.service),
        agents: [...card.querySelectorAll('[data-testid="report-agent"]')].map((tr) => tr.dataset.agent),
        status: (card.querySelector('[data-testid="report-status"]') || {}).textContent || ''};
"""


def check_support_report(admin, hub, shots):
    """The admin view's support report after the desk flow: the figures GET /v1/reports/support
    gives (opened, resolved, a first-response time), the queue drawn as an SVG with a text
    equivalent, the support service and the agent listed; readable at both sizes."""
    _, report = ct.bridge(hub, "GET", "/v1/reports/support")
    total = report["total"]
    assert total["resolved"] >= 1 and total["opened"] >= 1, f"the desk flow left no case in the report: {total}"
    ct.go(admin, "admin")
    read = lambda: admin.execute_script(REPORT_JS)  # noqa: E731
    ct.wait(admin, lambda d: (read() or {}).get("opened") not in (None, ""), 10, f"no report shown: {read()!r}")
    got = read()
    assert got["opened"] == str(total["opened"]) and got["resolved"] == str(total["resolved"]), \
        f"the console shows {got!r}, the bridge {total!r}"
    assert got["firstResponse"] not in ("—", None), f"no first-response time shown: {got!r}"
    assert got["chart"] and got["chart"].startswith("Queue length from"), f"the queue chart has no text equivalent: {got!r}"
    assert "support" in got["services"], f"support is not among the services: {got!r}"
    assert "demo-web" in got["agents"], f"the agent who resolved it is not listed: {got!r}"
    for size in ct.SIZES:
        ct.set_size(admin, *size)
        wide = admin.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1] + 1, f"the admin view scrolls sideways at {size}: {wide}"
    views_at_both_sizes(admin, shots, "admin report")
