#!/usr/bin/env python3
"""Helper of loadtest/bench.sh (standard library only).
  record ...            prints one JSON line for a generator run (its last stdout line is JSON)
  line RESULTS          prints a one-line summary of the last record
  report --results F [--markdown OUT] [--readme README.md]
                        the table (median over runs), goals and commands; stdout, OUT, README section
"""
import argparse, json, os, re, statistics, sys

ROWS = {
    "a": "echo, 100 connections, window 1, 64 B",
    "b": "echo, 100 connections, window 16, 64 B",
    "c": "fan-out, 1,000 subscribers, 1 publisher at max rate (window {w}), 100 B",
    "d": "fan-out, 10,000 subscribers, 100 publishes/s, 100 B",
    "e": "19,000 idle subscribed connections",
    "f": "broadcast to 19,000 online (hub-load, hub only)",
    "g": "durable chat, 1,000 conversations, window 4 (hub-load, hub only)",
    "h": "fan-out, 1,000 subscribers, window 16 (hub-load, hub only)",
    "i": "durable chat as g, the hub with --durability normal (hub-load, hub only)",
    "j": "broadcast as f, the hub as deployed: a loop per core, nothing pinned (hub-load, hub only)",
}
# The goals (issue 24): a ratio to uWebSockets measured in the same run for rows a-e (this
# machine's speed moves from day to day), absolute for the hub-only rows.
GOALS = {
    "a": "≥ 0.95× uWS",
    "b": "≥ 0.95× uWS",
    "c": "≥ 0.8× uWS, p99 ≤ 1.5× uWS's",
    "d": "all delivered, p99 ≤ 1.5× uWS's",
    "e": "≤ 1,024 B each, connects ≥ 0.9× uWS",
    "f": "all 19,000 within 100 ms",
    "g": "≥ 50,000 acks/s, p99 < 20 ms",
    "h": "—",
    "i": "—",
    "j": "all 19,000 within 100 ms",
}


def last_json(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return None
    for l in reversed(lines):
        if l.startswith("{"):
            try:
                return json.loads(l)
            except ValueError:
                return None
        break
    return None


def tail(path, n=4):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [l.rstrip() for l in f.readlines()[-n:]]
    except OSError:
        return []


def cmd_record(a):
    res = last_json(a.stdout)
    rec = {"row": a.row, "server": a.server, "run": a.run, "command": a.command, "exit": a.exit, "result": res}
    if a.srv_cpu_s is not None:
        rec["srv_cpu_s"] = a.srv_cpu_s
    if a.wall_s is not None:
        rec["wall_s"] = a.wall_s
    if a.srv_rss_kb is not None:
        rec["srv_rss_kb_end"] = a.srv_rss_kb
    if a.note:
        rec["note"] = a.note
    if res is None or a.exit != 0:
        rec["stderr_tail"] = tail(a.stderr)
    print(json.dumps(rec, separators=(",", ":")))


# ---------- figures ----------
def g(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def metrics(row, r):
    """The figures of one run (None when the run gave none)."""
    if not isinstance(r, dict):
        return None
    if row in "ab":
        if "msgs_per_s" not in r:
            return None
        return {"rate": r["msgs_per_s"], "p99_ms": r["rtt_p99_us"] / 1000, "gen_cpu": r.get("gen_cpu"),
                "srv_cpu": r.get("srv_cpu"), "dropped": r.get("dropped", 0), "established": r.get("established"),
                "conns": r.get("conns")}
    if row in "cd":
        if "deliveries_per_s" not in r:
            return None
        exp, rec = r.get("expected", 0), r.get("received", 0)
        return {"rate": r["deliveries_per_s"], "p99_ms": r["lat_p99_us"] / 1000,
                "delivered": (rec / exp) if exp else 0.0, "publish_per_s": r.get("publish_per_s"),
                "pub_timeouts": r.get("pub_timeouts", 0), "subs": r.get("subs"), "size": r.get("size"),
                "gen_cpu": r.get("gen_cpu"), "srv_cpu": r.get("srv_cpu"), "dropped": r.get("dropped", 0)}
    if row == "e":
        if "rss_per_conn_bytes" not in r:
            return None
        return {"rss": r["rss_per_conn_bytes"], "rate": r["connect_rate"], "established": r.get("established"),
                "acks": r.get("acks"), "alive": r.get("alive"), "conns": r.get("conns"),
                "connect_srv_cpu": r.get("connect_srv_cpu")}
    if row in "fj":
        if "all_ms_median" not in r:
            return None
        return {"all_ms": r["all_ms_median"], "delivered_min": r.get("delivered_min"), "online": r.get("online")}
    if row in "gi":
        if "acks_per_s" not in r:
            return None
        return {"rate": r["acks_per_s"], "p99_ms": g(r, "ack_us", "p99", default=0) / 1000,
                "lost": r.get("lost", 0), "errors": r.get("errors", 0), "duplicated": r.get("duplicated", 0),
                "out_of_order": r.get("out_of_order", 0)}
    if row == "h":
        if "deliveries_per_s" not in r:
            return None
        return {"rate": r["deliveries_per_s"], "p99_ms": g(r, "delivery_us", "p99", default=0) / 1000,
                "lost": r.get("lost", 0), "errors": r.get("errors", 0)}
    return None


def median_metrics(ms):
    """Per-figure median over the runs that gave figures."""
    ms = [m for m in ms if m]
    if not ms:
        return None
    out = {}
    for k in ms[0]:
        vals = [m[k] for m in ms if isinstance(m.get(k), (int, float))]
        out[k] = statistics.median(vals) if vals else ms[0][k]
    out["runs"] = len(ms)
    return out


def num(v):
    if v is None:
        return "?"
    v = float(v)
    for div, suf in ((1e6, "M"), (1e3, "k"), (1, "")):
        if abs(v) >= div:
            x = v / div
            s = f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"
            if suf == "" and x >= 10:
                s = f"{x:.0f}"
            return s + suf
    return f"{v:.2g}"


def ms(v):
    if v is None:
        return "?"
    return f"{v:.2f}" if v < 1 else f"{v:.1f}" if v < 10 else f"{v:.0f}"


def size(b):
    if b is None or b < 0:
        return "?"
    return f"{b:,.0f} B" if b < 10_000 else f"{b / 1000:.1f} KB"


def pct(x):
    return "100%" if x >= 1 else f"{100 * x:.1f}%" if x >= 0.999 else f"{100 * x:.0f}%"


def cell(row, m, fail):
    if m is None:
        return fail or "—"
    if row in "ab":
        s = f"{num(m['rate'])} msg/s, p99 {ms(m['p99_ms'])} ms"
    elif row == "c":
        s = f"{num(m['rate'])} deliveries/s, p99 {ms(m['p99_ms'])} ms"
        if m["delivered"] < 1:
            s += f", {pct(1 - m['delivered'])} lost"
    elif row == "d":
        s = f"{pct(m['delivered'])} delivered ({num(m['rate'])}/s), p99 {ms(m['p99_ms'])} ms"
    elif row == "e":
        s = f"{size(m['rss'])} RSS each, {num(m['rate'])} connects/s"
        if (m.get("established") or 0) < (m.get("conns") or 0):
            s += f", only {m['established']:,.0f} connected"
    elif row in "fj":
        if m.get("delivered_min") == m.get("online") and m.get("all_ms") is not None:
            s = f"all {m['online']:,.0f} in {ms(m['all_ms'])} ms"
        else:
            s = f"{m.get('delivered_min')}/{m.get('online')} delivered, {ms(m['all_ms'])} ms"
    elif row in "gi":
        s = f"{num(m['rate'])} acks/s, p99 {ms(m['p99_ms'])} ms"
        bad = {k: m[k] for k in ("lost", "errors", "duplicated", "out_of_order") if m.get(k)}
        if bad:
            s += ", " + ", ".join(f"{k} {v:.0f}" for k, v in bad.items())
    else:
        s = f"{num(m['rate'])} deliveries/s, p99 {ms(m['p99_ms'])} ms"
        if m.get("lost"):
            s += f", lost {m['lost']:.0f}"
    return s


def failure(recs):
    if not recs:
        return None
    text = " ".join(" ".join(r.get("stderr_tail") or []) for r in recs)
    if "scenario must be" in text:
        return "not in this hub-load"
    r = recs[-1]
    return f"failed (exit {r.get('exit')}, see logs)"


def ratio(row, hub, uws):
    """The hub's figure over uWebSockets' for the row's rate (memory for row e), or None."""
    if not hub or not uws:
        return None
    if row == "e":
        return hub["rss"] / uws["rss"] if uws.get("rss") else None
    if row in "abcd":
        return hub["rate"] / uws["rate"] if uws.get("rate") else None
    return None


def goal_line(row, hub, uws):
    """(met?, text) or None."""
    if hub is None:
        return None
    if row in "abcde" and uws is None:
        return None
    r = ratio(row, hub, uws)
    if row in "ab":
        return r >= 0.95, f"{num(hub['rate'])} msg/s vs uWS {num(uws['rate'])} msg/s = {r:.2f}× (goal ≥ 0.95×)"
    if row == "c":
        pr = hub["p99_ms"] / uws["p99_ms"] if uws.get("p99_ms") else float("inf")
        ok = r >= 0.8 and pr <= 1.5 and hub["delivered"] >= 1
        return ok, (f"{num(hub['rate'])} vs {num(uws['rate'])} deliveries/s = {r:.2f}× (goal ≥ 0.8×), p99 "
                    f"{ms(hub['p99_ms'])} vs {ms(uws['p99_ms'])} ms = {pr:.2f}× (goal ≤ 1.5×), {pct(hub['delivered'])} delivered")
    if row == "d":
        pr = hub["p99_ms"] / uws["p99_ms"] if uws.get("p99_ms") else float("inf")
        ok = hub["delivered"] >= 1 and pr <= 1.5
        return ok, (f"{pct(hub['delivered'])} delivered (goal all), p99 {ms(hub['p99_ms'])} vs uWS "
                    f"{ms(uws['p99_ms'])} ms = {pr:.2f}× (goal ≤ 1.5×)")
    if row == "e":
        allup = (hub.get("established") or 0) >= (hub.get("conns") or 1) and (hub.get("acks") or 0) >= (hub.get("conns") or 1)
        cr = hub["rate"] / uws["rate"] if uws.get("rate") else 0
        ok = hub["rss"] <= 1024 and cr >= 0.9 and allup
        return ok, (f"{size(hub['rss'])} RSS each (goal ≤ 1,024 B; uWS {size(uws['rss'])}), {num(hub['rate'])} vs "
                    f"{num(uws['rate'])} connects/s = {cr:.2f}× (goal ≥ 0.9×), {hub.get('established', 0):,.0f} connected, "
                    f"{hub.get('acks', 0):,.0f} subscribed")
    if row in "fj":
        ok = hub.get("delivered_min") == hub.get("online") == 19000 and hub["all_ms"] is not None and hub["all_ms"] <= 100
        return ok, (f"{hub.get('delivered_min')} of {hub.get('online')} delivered (min over rounds), "
                    f"all in {ms(hub['all_ms'])} ms (median of rounds; goal ≤ 100)")
    if row == "g":
        ok = hub["rate"] >= 50000 and hub["p99_ms"] < 20 and not hub.get("lost") and not hub.get("errors")
        return ok, f"{num(hub['rate'])} acks/s (goal ≥ 50k), ack p99 {ms(hub['p99_ms'])} ms (goal < 20)"
    return None


def cmd_report(a):
    recs = []
    with open(a.results, encoding="utf-8") as f:
        for l in f:
            if l.strip():
                recs.append(json.loads(l))
    env = os.environ.get
    fw = env("BENCH_FANOUT_WINDOW", "64")
    order = [r for r in "abcdefghij" if any(x["row"] == r for x in recs)]
    by = {}
    for r in recs:
        by.setdefault((r["row"], r["server"]), []).append(r)
    med = {k: median_metrics([metrics(k[0], r.get("result")) for r in v]) for k, v in by.items()}

    out = []
    runs = env("BENCH_RUNS", "1")
    out.append("### Against other servers (`loadtest/bench.sh`)")
    out.append("")
    out.append(f"Machine: {env('BENCH_CPU', '?')}, {env('BENCH_CORES', '?')} cores, Linux {env('BENCH_KERNEL', '?')}; "
               f"run on {env('BENCH_DATE', '?')}. Server pinned to CPU {env('BENCH_HUB_CPU', '0')} (the hub with "
               f"`--loops 1`), generator pinned to CPU {env('BENCH_LOAD_CPU', '1')} (except row j, which runs "
               f"the hub as deployed: one loop per core, neither process pinned), a fresh server (fresh data "
               f"folder) for every row and run; {runs} run(s) of {env('BENCH_DURATION', '10')} s per row"
               + (", each figure the median of the runs." if runs != "1" else ".")
               + f" uWebSockets (its benchmark peer, built from source by this script) and picows "
               f"{env('BENCH_PICOWS_VERSION', '?')} are measured in the same run on the same harness.")
    out.append("")
    out.append("Rows a–e use `wsload`, a neutral C load generator that is not part of this repository (the team keeps it beside the project as `tools/wsload`; build it with `make` and point `WSLOAD` at the binary). Against the hub, echo "
               "goes to its `/echo` route; fan-out goes through the real path — each publish is a `send` op on "
               "one conversation, stored durably in SQLite and then pushed to every subscribed connection "
               "(the peers broadcast from memory). Rows f–j use the hub's own generator `hub-load`.")
    out.append("")
    out.append("| scenario | Montrose Hub | uWebSockets | picows | hub / uWS | goal | met |")
    out.append("|---|---|---|---|---|---|---|")
    for row in order:
        hub = med.get((row, "hub"))
        uws = med.get((row, "uws"))
        pic = med.get((row, "picows"))
        peer = lambda m, srv: cell(row, m, failure(by.get((row, srv)))) if row in "abcde" else "—"
        r = ratio(row, hub, uws)
        rcell = "—" if r is None else (f"{r:.1f}× the memory" if row == "e" else f"{r:.2f}")
        gl = goal_line(row, hub, uws)
        met = "—" if gl is None else ("**met**" if gl[0] else "not met")
        out.append(f"| {row}. {ROWS[row].format(w=fw)} | {cell(row, hub, failure(by.get((row, 'hub'))))} | {peer(uws, 'uws')} | "
                   f"{peer(pic, 'picows')} | {rcell} | {GOALS[row]} | {met} |")
    out.append("")
    out.append("Goals:")
    out.append("")
    for row in order:
        gl = goal_line(row, med.get((row, "hub")), med.get((row, "uws")))
        if gl is None:
            if GOALS[row] != "—":
                out.append(f"- {row}. {ROWS[row].format(w=fw)}: **not measured** "
                           f"({failure(by.get((row, 'hub'))) or 'not run'})")
            continue
        out.append(f"- {row}. {ROWS[row].format(w=fw)}: **{'met' if gl[0] else 'not met'}** — {gl[1]}")
    notes = []
    for (row, srv), m in sorted(med.items()):
        if m and isinstance(m.get("gen_cpu"), (int, float)) and m["gen_cpu"] > 0.9:
            notes.append(f"{row} ({srv}): the generator used {100 * m['gen_cpu']:.0f}% of its core, so this "
                         "figure is a lower bound for that server.")
        if m and row in "cd" and srv == "hub" and m.get("size"):
            notes.append(f"{row} (hub): the `send` frames are {m['size']:.0f} B (the op's envelope around "
                         "the text; wsload pads to at least --size).")
    if notes:
        out.append("")
        out.append("Notes: " + " ".join(notes))
    out.append("")
    out.append("Commands (`$DATA` a fresh folder; `$PORT`, `$BRIDGE` from the server's ready lines; `$PID` the "
               "server's process id):")
    out.append("")
    out.append(f"- hub: `{env('BENCH_HUB_CMD', '?')}` then `{env('BENCH_TOKEN_CMD', '?')}` (an HS256 client "
               "token for user `f0`, signed with the `jwt_secret=` the development-mode hub writes to "
               "`$DATA/dev-secrets`)")
    if "j" in order:
        out.append("- hub, row j: the same command without `taskset -c` and without `--loops 1` (one event loop "
                   "per core, the hub's default)")
    out.append(f"- uWebSockets: `{env('BENCH_UWS_CMD', '?')}` (`$UWS` the peer built by the script, `$PORT` a free port)")
    out.append(f"- picows: `{env('BENCH_PICOWS_CMD', '?')}`")
    for row in order:
        for srv in ("hub", "uws", "picows"):
            rs = [r for r in by.get((row, srv), []) if r.get("command")]
            if rs:
                out.append(f"- {row}, {srv}: `{rs[0]['command']}`")
    out.append("")
    out.append("All of it: `BIN=.build/release WSLOAD=… UWS_SRC=… loadtest/bench.sh --runs 3 --write-readme` "
               "(`--only a,c` for some rows, `--no-uws`, `--no-picows`); raw JSON lines in `loadtest/results/latest.jsonl`.")
    text = "\n".join(out) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if a.readme:
        write_readme(a.readme, text)
        print(f"bench_report: wrote the section of {a.readme}", file=sys.stderr)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_readme(path, text):
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    block = f"{START}\n{text}{END}"
    if START in doc and END in doc and doc.index(START) < doc.index(END):
        i, j = doc.index(START), doc.index(END) + len(END)
        doc = doc[:i] + block + doc[j:]
    else:
        m = re.search(r"^## Benchmarks\b.*$", doc, re.M)
        if m:
            nxt = re.search(r"^## ", doc[m.end():], re.M)
            at = m.end() + nxt.start() if nxt else len(doc)
        else:
            doc = doc.rstrip("\n") + "\n\n## Benchmarks\n"
            at = len(doc)
        before = doc[:at].rstrip("\n") + "\n\n"
        after = doc[at:]
        doc = before + block + "\n" + ("\n" + after if after else "")
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc)


def cmd_line(a):
    with open(a.results, encoding="utf-8") as f:
        lines = [l for l in f if l.strip()]
    r = json.loads(lines[-1])
    m = metrics(r["row"], r.get("result"))
    head = f"[{r['row']} {r['server']} run {r['run']}]"
    if m is None:
        print(f"{head} no result (exit {r.get('exit')}): {' | '.join(r.get('stderr_tail') or [])}")
        return
    extra = []
    for k in ("gen_cpu", "srv_cpu"):
        if isinstance(m.get(k), (int, float)) and m[k] >= 0:
            extra.append(f"{k.replace('_', ' ')} {100 * m[k]:.0f}%")
    if "srv_cpu_s" in r and "wall_s" in r:
        extra.append(f"server {r['srv_cpu_s']:.1f} s cpu in {r['wall_s']:.1f} s")
    print(f"{head} {cell(r['row'], m, None)}" + (f" ({', '.join(extra)})" if extra else "")
          + (f" exit {r['exit']}" if r.get("exit") else ""))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--row", required=True)
    r.add_argument("--server", required=True)
    r.add_argument("--run", type=int, required=True)
    r.add_argument("--command", default="")
    r.add_argument("--stdout", required=True)
    r.add_argument("--stderr", required=True)
    r.add_argument("--exit", type=int, required=True)
    r.add_argument("--srv-cpu-s", type=float)
    r.add_argument("--wall-s", type=float)
    r.add_argument("--srv-rss-kb", type=int)
    r.add_argument("--note")
    l = sub.add_parser("line")
    l.add_argument("results")
    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--markdown")
    p.add_argument("--readme")
    a = ap.parse_args()
    {"record": cmd_record, "line": cmd_line, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
