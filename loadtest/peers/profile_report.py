#!/usr/bin/env python3
"""Where a server's CPU time went, from a `perf record -g` of it (helper of loadtest/bench.sh
--profile; standard library only, needs `perf` on PATH).

  profile_report.py PERF_DATA [--title T] [--top N]

Prints markdown: the share of samples per thread (the hub names its threads: loop-0,
db-writer, db-checkpoint, db-reader-N, ...), and per thread what the time went to:
system calls by name (from the kernel's own call chain, which is always complete), kernel
work outside a call (softirq), and in user space by library (SQLite, malloc/free, memory
copies, Swift reference counting, the Swift runtime, OpenSSL, zlib, the hub's own code).
Then the hub's own functions that took the most samples, wherever they ran.
"""
import argparse, collections, re, subprocess, sys

SOCKET_WRITE = {"writev", "sendmsg", "sendto", "sendmmsg"}
SOCKET_READ = {"read", "readv", "recvfrom", "recvmsg"}
FILE_IO = {"pwrite64", "pread64", "pwrite", "pread", "fdatasync", "fsync", "write", "openat", "ftruncate", "lseek", "fcntl"}
WAITS = {"epoll_wait", "epoll_pwait", "futex", "nanosleep", "clock_nanosleep", "poll", "ppoll"}


def syscall_group(name):
    if name in SOCKET_WRITE:
        return "kernel: socket writes"
    if name in SOCKET_READ:
        return "kernel: socket reads"
    if name in FILE_IO:
        return "kernel: file I/O (" + {"pwrite": "pwrite64", "pread": "pread64"}.get(name, name) + ")"
    if name in WAITS:
        return "kernel: waits (" + name + ")"
    if name in ("accept4", "accept"):
        return "kernel: accept"
    if name in ("close", "shutdown"):
        return "kernel: close"
    if name.startswith("epoll_ctl"):
        return "kernel: epoll_ctl"
    return "kernel: " + name


def user_group(sym, dso):
    base = dso.rsplit("/", 1)[-1]
    if base.startswith("libsqlite3"):
        return "SQLite"
    if base.startswith("libc.so") or base.startswith("libc-"):
        if re.search(r"malloc|free|_int_|unlink_chunk|consolidate|tcache|realloc|calloc", sym):
            return "malloc/free"
        if re.search(r"mem(move|cpy|set|cmp)|str(len|cmp|chr)", sym):
            return "memory copies and compares"
        if re.search(r"pthread_mutex|lll_lock|futex", sym):
            return "locks"
        return "libc other"
    if base.startswith("libswiftCore"):
        if re.search(r"swift_(retain|release|bridgeObjectRetain|bridgeObjectRelease|isUniquelyReferenced|unknownObject)|RefCount", sym):
            return "Swift reference counting"
        if re.search(r"swift_(allocObject|deallocObject|slowAlloc|slowDealloc)|_release_dealloc|Storage.*fD", sym):
            return "Swift allocation"
        return "Swift standard library"
    if base.startswith("libcrypto") or base.startswith("libssl"):
        return "OpenSSL"
    if base.startswith("libz"):
        return "zlib"
    if base.startswith("libFoundation") or base.startswith("libdispatch") or base.startswith("libswiftDispatch"):
        return "Foundation and Dispatch"
    if base.startswith("libpq"):
        return "libpq"
    if base in ("montrose-hub", "uws_peer") or base.endswith("montrose-hub"):
        return "the server's own code"
    return base or "unknown"


def demangle(names):
    """Swift symbols to readable names, through swift-demangle when it is there."""
    names = list(names)
    try:
        out = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names),
                             capture_output=True, text=True, timeout=60).stdout.splitlines()
        if len(out) == len(names):
            return dict(zip(names, out))
    except (OSError, subprocess.SubprocessError):
        pass
    return {n: n for n in names}


def samples(path):
    """(thread, [(sym, dso), ...] leaf first) per sample, from `perf script`."""
    p = subprocess.Popen(["perf", "script", "-i", path, "-F", "comm,tid,ip,sym,dso"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, errors="replace")
    thread, frames = None, []
    head = re.compile(r"^(\S.*?)\s+(\d+)\s*$")
    frame = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
    for line in p.stdout:
        if not line.strip():
            if thread is not None:
                yield thread, frames
            thread, frames = None, []
            continue
        m = head.match(line)
        if m and thread is None:
            thread = re.sub(r"-?\d+$", "-N", m.group(1).strip()) if m.group(1).startswith("db-reader") else m.group(1).strip()
            continue
        m = frame.match(line)
        if m:
            frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), m.group(2)))
    if thread is not None:
        yield thread, frames
    p.wait()


def classify(frames):
    if not frames:
        return "unknown"
    sym, dso = frames[0]
    if "kernel" not in dso:
        return user_group(sym, dso)
    # A system call: named by the libc wrapper it came through (the first user-space frame
    # after the kernel's), or by the kernel's own entry point.
    for i, (s, d) in enumerate(frames):
        if "kernel" in d:
            m = re.match(r"__(?:x64|ia32)_sys_(\w+)", s)
            if m:
                return syscall_group(m.group(1))
            continue
        if any(k[0].startswith("entry_SYSCALL") or k[0] == "do_syscall_64" for k in frames[:i]):
            name = re.sub(r"^(__GI___|__GI_|__libc_|__)", "", s)
            name = re.sub(r"(@@?GLIBC.*|_nocancel)$", "", name)
            return syscall_group(name)
        break
    return "kernel: outside a system call (softirq, faults, scheduling)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--title", default="")
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    per_thread = collections.Counter()
    per_group = collections.defaultdict(collections.Counter)
    own = collections.Counter()
    total = 0
    for thread, frames in samples(a.data):
        total += 1
        per_thread[thread] += 1
        per_group[thread][classify(frames)] += 1
        for sym, dso in frames:  # the innermost frame of the server's own code
            if dso.endswith("montrose-hub") and sym and sym != "[unknown]":
                own[sym] += 1
                break
    if total == 0:
        print(f"{a.title}: no samples in {a.data}")
        return 1
    if a.title:
        print(f"#### {a.title}\n")
    print(f"{total} samples.\n")
    print("| thread | share | where its time went (share of all samples) |")
    print("|---|---|---|")
    for thread, n in per_thread.most_common():
        if n * 200 < total:
            continue
        parts = [f"{g} {100 * c / total:.1f}%" for g, c in per_group[thread].most_common(7) if c * 200 >= total]
        print(f"| {thread} | {100 * n / total:.1f}% | {'; '.join(parts)} |")
    if own:
        names = demangle([s for s, _ in own.most_common(a.top)])
        print("\nThe server's own functions (innermost frame of its code; share of all samples):\n")
        for sym, n in own.most_common(a.top):
            readable = re.sub(r"\s+", " ", names.get(sym, sym))[:140]
            print(f"- {100 * n / total:.1f}% `{readable}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
