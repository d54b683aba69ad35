#!/usr/bin/env python3
"""Runs searches against a hub's bridge (GET /v1/search) and reports latency per kind.
    loadtest/search_queries.py --bridge PORT --key KEY --words DB.words [--per-kind 200]
Kinds: who searches (admin `ada`; an agent a<j>, 100 conversations; a client c<i>, 2) times
what (a common word, ranks 1-50; a mid word, 200-2000; a rare word, 5000+; a prefix, the first
3 letters of a mid word; two words, a common and a mid one). One keep-alive connection, one
search at a time: the latency of a search, not the hub's throughput."""
import argparse
import http.client
import json
import random
import sys
import time
import urllib.parse


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--words", required=True)
    ap.add_argument("--per-kind", type=int, default=200)
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    words = [w for w in open(a.words).read().split() if w]
    queries = {
        "common": lambda: rng.choice(words[:50]),
        "mid": lambda: rng.choice(words[200:2000]),
        "rare": lambda: rng.choice(words[5000:]),
        "prefix": lambda: rng.choice(words[200:2000])[:3],
        "two words": lambda: rng.choice(words[:50]) + " " + rng.choice(words[200:2000]),
    }
    users = {
        "admin": lambda: "ada",
        "agent": lambda: f"a{rng.randrange(100)}",
        "client": lambda: f"c{rng.randrange(a.clients)}",
    }
    conn = http.client.HTTPConnection("127.0.0.1", a.bridge, timeout=30)
    headers = {"Authorization": f"Bearer {a.key}"}
    everything = []
    print(f"{'who':7} {'what':10} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'hits/search':>11}")
    for who, user in users.items():
        for what, query in queries.items():
            times, hits = [], 0
            for _ in range(a.per_kind):
                path = "/v1/search?" + urllib.parse.urlencode({"query": query(), "user": user(), "limit": 20})
                t0 = time.perf_counter()
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                times.append((time.perf_counter() - t0) * 1000)
                if r.status != 200:
                    print(f"search failed: {r.status} {body[:200]!r}", file=sys.stderr)
                    sys.exit(1)
                hits += len(json.loads(body)["items"])
            everything += times
            print(f"{who:7} {what:10} {len(times):5} {pct(times, 50):8.2f} {pct(times, 99):8.2f} {max(times):8.2f} {hits / len(times):11.1f}")
    print(f"{'all':7} {'':10} {len(everything):5} {pct(everything, 50):8.2f} {pct(everything, 99):8.2f} {max(everything):8.2f}")


if __name__ == "__main__":
    main()
