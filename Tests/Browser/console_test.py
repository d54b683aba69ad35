#!/usr/bin/env python3
"""The web console in a real browser: Debian's chromium and chromedriver, headless, driven by
Selenium. Two sessions, a client and its assigned website agent, on a development-mode hub
this script starts itself (and stops by PID):

1. the page loads with no console errors and every request stays on this machine;
2. client and agent exchange messages both ways and see them live, in order, with read ticks;
3. a bridge notification raises the client's bell count within a second;
4. the hub is restarted while the agent keeps sending: after the reconnect the client shows
   every message once, in order.

Screenshots of both sessions go to --artifacts on failure; --screenshots DIR also saves the
console at desktop and phone width (for the README).

    python3 Tests/Browser/console_test.py --hub .build/release/montrose-hub
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from urllib.parse import urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

PORT, BRIDGE = 18280, 18281
BASE = f"http://127.0.0.1:{PORT}"
CHANNEL = "conv:website:demo-client"
LOCAL_HOSTS = {"127.0.0.1", "localhost", ""}


class Hub:
    """The montrose-hub under test, on a throwaway data folder."""

    def __init__(self, binary, data):
        self.binary, self.data, self.proc = binary, data, None

    def start(self):
        log = open(os.path.join(self.data, "hub.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--data", self.data, "--host", "127.0.0.1", "--port", str(PORT),
             "--bridge-port", str(BRIDGE), "--loops", "2", "--dev"],
            stdout=log, stderr=log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{BASE}/healthz", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("hub exited at start: see " + log.name)
                time.sleep(0.1)
        raise SystemExit("hub did not answer /healthz within 20 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def bridge_key(self):
        for line in open(os.path.join(self.data, "dev-secrets")):
            if line.startswith("bridge_key="):
                return line.strip().split("=", 1)[1]
        raise SystemExit("no bridge_key in dev-secrets")


def browser(width, height, phone=False):
    options = webdriver.ChromeOptions()
    if phone:  # a real phone viewport (a headless window cannot be narrower than 500 px)
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": True}})
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-sync", "--metrics-recording-only",
                "--disable-features=Translate,OptimizationHints,MediaRouter"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(20)
    return driver


def q(driver, testid, within=None):
    return (within or driver).find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def wait(driver, what, timeout=10, message=""):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: what(d), message)


def sign_in(driver, user):
    driver.get(BASE + "/")
    button = wait(driver, lambda d: (q(d, f"signin-{user}") or [None])[0], message=f"no sign-in button for {user}")
    button.click()
    wait(driver, lambda d: any(e.text.strip() == "live" for e in q(d, "connection-state")), 15, "not live")


def open_conversation(driver, channel):
    item = wait(driver, lambda d: next((e for e in q(d, "conversation") if e.get_attribute("data-channel") == channel), None),
                message=f"{channel} not in the conversation list")
    item.click()
    wait(driver, lambda d: q(d, "composer-input") and q(d, "composer-input")[0].is_displayed(), message="no composer")


def send(driver, text):
    box = q(driver, "composer-input")[0]
    box.click()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def messages(driver):
    """(seq, text) of every message shown, in page order."""
    out = []
    for m in q(driver, "message"):
        texts = m.find_elements(By.CSS_SELECTOR, ".text")
        out.append((m.get_attribute("data-seq") or "", texts[0].text if texts else ""))
    return out


def texts(driver):
    return [t for _, t in messages(driver)]


def tick_state(driver, text):
    for m in q(driver, "message"):
        t = m.find_elements(By.CSS_SELECTOR, ".text")
        if t and t[0].text == text:
            ticks = q(driver, "tick", m)
            return ticks[0].get_attribute("data-state") if ticks else None
    return None


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def foreign_requests(driver):
    """URLs of requests the page made to anywhere but this machine."""
    out = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            params = msg.get("params", {})
            url = params.get("request", {}).get("url") or params.get("url", "")
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob", "about", "chrome", "devtools"):
                continue
            if parsed.hostname not in LOCAL_HOSTS:
                out.append(url)
    return out


def post_notification(key):
    body = json.dumps({"to": {"users": ["demo-client"]}, "service": "wallet", "category": "payments",
                       "title": "Browser test payment", "body": "$5"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{BRIDGE}/v1/notifications", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=5).status


def bell(driver):
    e = q(driver, "bell-count")
    try:
        return int(e[0].text.strip() or "0") if e else -1
    except ValueError:
        return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", default=".build/release/montrose-hub")
    ap.add_argument("--artifacts", default="browser-artifacts")
    ap.add_argument("--screenshots", default=None, help="save desktop and phone screenshots here")
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="hub-browser-")
    hub = Hub(os.path.abspath(args.hub), data)
    hub.start()
    client = agent = None
    step = "start"
    passed = False
    try:
        step = "open two browsers"
        client, agent = browser(1280, 800), browser(1280, 800)

        step = "sign in and load with no console errors"
        sign_in(client, "demo-client")
        sign_in(agent, "demo-web")
        for name, d in (("client", client), ("agent", agent)):
            errors = console_errors(d)
            assert not errors, f"{name} console errors at load: {errors}"
            foreign = foreign_requests(d)
            assert not foreign, f"{name} requests left the machine: {foreign}"

        step = "open the conversation on both sides"
        open_conversation(client, CHANNEL)
        open_conversation(agent, CHANNEL)
        seeded = texts(client)
        assert len(seeded) == 3, f"the seeded history shows 3 messages, got {seeded}"

        step = "messages both ways, live and in order, with read ticks"
        expected = list(seeded)
        for i in range(3):
            line = f"client says {i}"
            send(client, line)
            expected.append(line)
            wait(agent, lambda d: texts(d)[-1:] == [line], 5, f"agent did not see {line!r} live")
            line = f"agent says {i}"
            send(agent, line)
            expected.append(line)
            wait(client, lambda d: texts(d)[-1:] == [line], 5, f"client did not see {line!r} live")
        for d in (client, agent):
            assert texts(d) == expected, f"order differs: {texts(d)} != {expected}"
        wait(client, lambda d: tick_state(d, "client says 2") == "read", 10,
             f"no read tick on the client's last message (tick {tick_state(client, 'client says 2')!r})")
        wait(agent, lambda d: tick_state(d, "agent says 2") == "read", 10, "no read tick on the agent's last message")

        step = "a bridge notification raises the bell within a second"
        before = bell(client)
        assert post_notification(hub.bridge_key()) == 201
        t0 = time.time()
        wait(client, lambda d: bell(d) == before + 1, 1.0, f"bell stayed at {bell(client)} (was {before})")
        print(f"bell updated {int((time.time() - t0) * 1000)} ms after the POST answered")

        step = "restart the hub while the agent keeps sending"
        hub.stop()
        wait(client, lambda d: any(e.text.strip() in ("reconnecting", "offline") for e in q(d, "connection-state")), 10,
             "the client did not notice the hub going away")
        offline_lines = [f"while you were away {i}" for i in range(3)]
        for line in offline_lines:
            send(agent, line)
            expected.append(line)
        time.sleep(0.5)
        hub.start()
        wait(agent, lambda d: any(e.text.strip() == "live" for e in q(d, "connection-state")), 30, "agent did not reconnect")
        after_lines = [f"back again {i}" for i in range(2)]
        for line in after_lines:
            send(agent, line)
            expected.append(line)
        wait(client, lambda d: any(e.text.strip() == "live" for e in q(d, "connection-state")), 30, "client did not reconnect")
        wait(client, lambda d: texts(d)[-1:] == [expected[-1]], 15, "the client did not catch up")
        shown = messages(client)
        assert [t for _, t in shown] == expected, f"client shows {[t for _, t in shown]}, expected {expected}"
        seqs = [int(s) for s, _ in shown]
        assert seqs == sorted(set(seqs)), f"seqs not ascending and unique: {seqs}"
        wait(agent, lambda d: texts(d) == expected, 10, f"agent shows {texts(agent)}")

        if args.screenshots:
            step = "screenshots"
            os.makedirs(args.screenshots, exist_ok=True)
            client.save_screenshot(os.path.join(args.screenshots, "console-desktop.png"))
            phone = browser(390, 844, phone=True)
            try:
                sign_in(phone, "demo-client")
                open_conversation(phone, CHANNEL)
                time.sleep(0.3)
                phone.save_screenshot(os.path.join(args.screenshots, "console-phone.png"))
            finally:
                phone.quit()
        print("browser test: passed (messages both ways with read ticks, bell within 1 s, "
              f"{len(offline_lines) + len(after_lines)} messages across a restart shown once, in order)")
        passed = True
        return 0
    except Exception as e:  # report, keep screenshots, fail
        os.makedirs(args.artifacts, exist_ok=True)
        for name, d in (("client", client), ("agent", agent)):
            if d:
                try:
                    d.save_screenshot(os.path.join(args.artifacts, f"{name}.png"))
                    with open(os.path.join(args.artifacts, f"{name}-console.json"), "w") as f:
                        json.dump(d.get_log("browser"), f, indent=1)
                except Exception:
                    pass
        print(f"browser test: FAILED at step '{step}': {type(e).__name__}: {e}")
        print(f"screenshots in {args.artifacts}/, hub log in {data}/hub.log")
        return 1
    finally:
        for d in (client, agent):
            if d:
                d.quit()
        hub.stop()
        if passed:  # a failure keeps the data folder: its hub.log is named above
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
