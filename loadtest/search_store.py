#!/usr/bin/env python3
"""Fills a fresh hub's SQLite store (schema already made by the hub) with a search benchmark's
data, written directly in one transaction: MESSAGES messages in CONVERSATIONS conversations
(client c<i> has a website and a support conversation), 100 website agents each assigned
CONVERSATIONS/100 of them, an admin `ada`, and the search index exactly as the hub writes it
(SQLiteStore+Search.swift): the words are lowercase ASCII, so the hub's tokenizer (SearchText)
gives the same terms as `str.lower()` split on anything not a letter or digit.

The vocabulary: 200 common chat words, then pseudo-words (two to four syllables) up to
VOCABULARY words; each word drawn with Zipf's law (rank r with weight 1/r), 4–24 words a
message, some capitalised, some punctuation: a realistic spread from words in half the
messages to words in a handful.

    loadtest/search_store.py DB [--messages 1000000] [--conversations 10000] [--seed 7]
Prints the vocabulary's words by rank to DB.words (for the query mix)."""
import argparse
import bisect
import random
import re
import sqlite3
import sys
import time

COMMON = """the to and you i a is it for of on my in this that can your we be have with do not are
please thanks hello hi will me so just what if at but order need help site page from now as
there an get how when was would know website problem domain email account could like here
they our new time one see about all issue check up out payment login error back invoice
update price support course lesson video plan project version feedback design change
file upload link today tomorrow week sorry ok yes no sure great good work working done
send sent received still again any some more which also then because their other after
team access password reset billing refund contact phone call meeting schedule deadline
draft review approve approved logo banner mobile desktop server hosting dns ssl certificate
backup restore database migration plugin theme template content blog post image photo
gallery form contact checkout cart shipping delivery tracking number customer client
support agent ticket status pending resolved open closed urgent priority question answer
month year day hour minute second monday tuesday wednesday thursday friday saturday sunday""".split()
SYLLABLES = "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo fu ga ge go gu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zo tra tri pro pre sto ste".split()


def vocabulary(size, rng):
    words, seen = [], set()
    for w in COMMON:
        if w.isascii() and w.isalnum() and w not in seen:
            seen.add(w)
            words.append(w)
    while len(words) < size:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4))))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def main():
    p = argparse.ArgumentParser()
    p.add_argument("db")
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--conversations", type=int, default=10_000)
    p.add_argument("--vocabulary", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = random.Random(a.seed)
    words = vocabulary(a.vocabulary, rng)
    weights, total = [], 0.0
    for r in range(1, len(words) + 1):
        total += 1.0 / r
        weights.append(total)
    with open(a.db + ".words", "w") as f:
        f.write("\n".join(words) + "\n")

    started = time.time()
    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")  # a throwaway build: the hub switches to WAL on open
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -4000000")
    db.execute("BEGIN")
    now = 1_760_000_000_000
    clients = a.conversations // 2
    agents = 100
    users = [("ada", "admin", "Ada", None)]
    users += [(f"a{j}", "website_agent", f"Agent {j}", None) for j in range(agents)]
    users += [(f"c{i}", "client", f"Client {i}", None) for i in range(clients)]
    db.executemany("INSERT INTO users (id, role, name, email, services, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, 1, 1)",
                   users)
    conversations = []  # (id, service, client, agent)
    per_agent = max(1, clients // agents)
    for i in range(clients):
        for service in ("website", "support"):
            conversations.append((len(conversations) + 1, service, f"c{i}", f"a{min(i // per_agent, agents - 1)}"))
    db.executemany("INSERT INTO conversations (id, service, client_id) VALUES (?, ?, ?)", [c[:3] for c in conversations])
    db.executemany("INSERT INTO assignments (service, client_id, agent_id, created_at) VALUES (?, ?, ?, 1)",
                   [(s, c, ag) for _, s, c, ag in conversations])

    seqs = [0] * (len(conversations) + 1)
    last = [None] * (len(conversations) + 1)
    split = re.compile(r"[^a-z0-9]+")

    def messages():
        for m in range(1, a.messages + 1):
            cid = rng.randrange(1, len(conversations) + 1)
            _, service, client, agent = conversations[cid - 1]
            seqs[cid] += 1
            from_client = rng.random() < 0.55
            sender = (client, "client", f"Client {client[1:]}") if from_client else (agent, "website_agent", f"Agent {agent[1:]}")
            n = rng.randint(4, 24)
            picked = [words[bisect.bisect_left(weights, rng.random() * total)] for _ in range(n)]
            if rng.random() < 0.5:
                picked[0] = picked[0].capitalize()
            text = " ".join(picked) + rng.choice((".", "?", "!", "", ", thanks."))
            ts = now + m * 10
            last[cid] = (seqs[cid], ts, sender[0])
            terms = list(dict.fromkeys(t for t in split.split(text.lower()) if t))
            yield (m, cid, seqs[cid], sender[0], sender[1], sender[2], text, ts, terms)

    batch = []
    for row in messages():
        batch.append(row)
        if len(batch) == 50_000:
            flush(db, batch)
            batch = []
            if row[0] % 200_000 == 0:
                print(f"search_store: {row[0]} messages ({time.time() - started:.0f} s)", file=sys.stderr)
    flush(db, batch)
    db.executemany("UPDATE conversations SET last_seq = ?, last_ts = ?, last_sender = ? WHERE id = ?",
                   [(l[0], l[1], l[2], cid) for cid, l in enumerate(last) if l])
    # Every posting is written: the search index's tail (SQLiteStore+Search.swift) starts empty.
    db.execute("UPDATE search_merge SET merged_through = (SELECT COALESCE(MAX(message_id), 0) FROM search_documents)")
    db.execute("COMMIT")
    db.close()
    print(f"search_store: {a.messages} messages in {len(conversations)} conversations, {len(words)} words, "
          f"{time.time() - started:.0f} s", file=sys.stderr)


def flush(db, batch):
    db.executemany("""INSERT INTO messages (id, conversation_id, seq, sender_id, sender_role, sender_name, text, ts)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?)""", [r[:8] for r in batch])
    db.executemany("INSERT INTO search_documents (message_id, conversation_id, terms) VALUES (?, ?, ?)",
                   [(r[0], r[1], " ".join(r[8])) for r in batch])
    db.executemany("INSERT INTO search_postings (term, message_id, conversation_id) VALUES (?, ?, ?)",
                   ((t, r[0], r[1]) for r in batch for t in r[8]))


if __name__ == "__main__":
    main()
