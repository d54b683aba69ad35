#!/usr/bin/env python3
"""Screenshots of the console views issue 19 is about, at 390x844 (a phone) and 1280x800 (a
desktop), for docs/screenshots/ (before-*.png / after-*.png). Not a test: it only drives the
console into each view and saves the viewport. Starts its own development-mode hub (and stops
it by PID), like console_test.py, whose helpers it uses.

    python3 Tests/Browser/screenshots.py --hub .build/release/montrose-hub --out docs/screenshots --prefix after-

Views: bell (the bell's menu open), header-admin (an admin's header over the conversation
list), observer (an admin reading a client's conversation), broadcast (a broadcast to
Everyone just after "Send broadcast"), ticks (a conversation with sent and read messages),
toast (a broadcast's toast over an open conversation), notifications (the notifications page).
With --readme the ticks view is also saved as console-desktop.png and console-phone.png (the
README's pictures).
"""
import argparse
import json
import os
import sys
import tempfile
import shutil
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ beside the test
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console_test as ct  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

SIZES = (("phone", 390, 844), ("desktop", 1280, 800))


def set_size(driver, width, height):
    ct_set = getattr(ct, "set_size", None)
    if ct_set:
        return ct_set(driver, width, height)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": width < 700})
    time.sleep(0.3)


def shoot(driver, out, prefix, view, size):
    path = os.path.join(out, f"{prefix}{view}-{size}.png")
    driver.save_screenshot(path)
    print(f"saved {path} ({os.path.getsize(path) // 1024} KiB)")


def both(driver, out, prefix, view, prepare=None):
    for size, w, hgt in SIZES:
        set_size(driver, w, hgt)
        if prepare:
            prepare(driver, size)
        time.sleep(0.4)
        shoot(driver, out, prefix, view, size)


def bridge_post(hub, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{ct.BRIDGE}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {hub.bridge_key()}", "Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=5).read() or b"{}")


def click_testid(driver, testid):
    e = ct.wait(driver, lambda d: next((x for x in ct.q(d, testid) if x.is_displayed()), None), message=f"no {testid}")
    e.click()
    return e


def tab(driver, label):
    for b in driver.find_elements(By.CSS_SELECTOR, "nav .tab, nav a"):
        if b.is_displayed() and (label.lower() in b.text.lower() or label.lower() in (b.get_attribute("aria-label") or "").lower()):
            b.click()
            return
    raise AssertionError(f"no tab {label}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", default=".build/release/montrose-hub")
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--prefix", default="after-")
    ap.add_argument("--readme", action="store_true", help="also save the README's console-desktop.png / console-phone.png")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data = tempfile.mkdtemp(prefix="hub-shots-")
    hub = ct.Hub(os.path.abspath(args.hub), data)
    hub.start()
    client = agent = admin = None
    try:
        client, agent, admin = ct.browser(1280, 800), ct.browser(1280, 800), ct.browser(1280, 800)
        ct.sign_in(client, "demo-client")
        ct.sign_in(agent, "demo-web")
        ct.sign_in(admin, "demo-admin")

        # 11: the bell's menu, and the header.
        def open_bell(d, _size):
            menu = d.find_elements(By.ID, "bell-menu")
            if not menu or not menu[0].is_displayed():
                click_testid(d, "bell")
        both(client, args.out, args.prefix, "bell", open_bell)
        click_testid(client, "bell")  # close it
        both(admin, args.out, args.prefix, "header-admin")

        # 12: an admin observing the client's website conversation.
        ct.open_conversation(admin, ct.CHANNEL)
        both(admin, args.out, args.prefix, "observer")

        # 13: a broadcast to Everyone, just after "Send broadcast".
        set_size(admin, 1280, 800)
        tab(admin, "Admin")
        for size, w, hgt in SIZES:
            set_size(admin, w, hgt)
            t = click_testid(admin, "broadcast-title")
            t.clear()
            t.send_keys(f"Maintenance tonight ({size})")
            b = ct.q(admin, "broadcast-body")[0]
            b.clear()
            b.send_keys("The hub restarts at 22:00 UTC; expect a minute offline.")
            sel = ct.q(admin, "broadcast-audience")[0]
            for o in sel.find_elements(By.TAG_NAME, "option"):
                if o.get_attribute("value") == "all":
                    o.click()
            click_testid(admin, "broadcast-send")
            time.sleep(0.6)
            shoot(admin, args.out, args.prefix, "broadcast", size)
            cancel = [e for e in ct.q(admin, "broadcast-cancel") if e.is_displayed()]
            if cancel:
                cancel[0].click()

        # 15: ticks: one message read by the agent, one only sent.
        ct.open_conversation(client, ct.CHANNEL)
        ct.open_conversation(agent, ct.CHANNEL)
        ct.send(client, "Great, is the contact form next?")
        ct.wait(client, lambda d: ct.tick_state(d, "Great, is the contact form next?") == "read", 10, "no read tick")
        tab(agent, "Notifications")
        time.sleep(0.5)
        ct.send(client, "Thanks! I'll look at the preview tonight.")
        ct.wait(client, lambda d: ct.tick_state(d, "Thanks! I'll look at the preview tonight.") == "sent", 10, "no sent tick")
        both(client, args.out, args.prefix, "ticks")
        if args.readme:
            for size in ("desktop", "phone"):
                shutil.copyfile(os.path.join(args.out, f"{args.prefix}ticks-{size}.png"), os.path.join(args.out, f"console-{size}.png"))

        # 14: a broadcast's toast over the open conversation.
        def announce(d, size):
            bridge_post(hub, "/v1/broadcasts", {"audience": "all", "title": f"New feature: dark mode is coming ({size})"})
            time.sleep(0.8)
        both(client, args.out, args.prefix, "toast", announce)
        time.sleep(6.5)

        # 15: the notifications page.
        set_size(client, 1280, 800)
        tab(client, "Notifications")
        ct.wait(client, lambda d: ct.q(d, "notification"), message="no notifications listed")
        both(client, args.out, args.prefix, "notifications")
        return 0
    finally:
        for d in (client, agent, admin):
            if d:
                d.quit()
        hub.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
