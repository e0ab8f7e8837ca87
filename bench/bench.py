#!/usr/bin/env python3
"""The ssofs benchmark driver (issue 8). Run through `bench/run`, which installs and builds first.

Mounts ssofs (alice's STS credentials), s3fs and rclone (the devstack's root keys) on the same
devstack S3 endpoint, measures the issue's items 1-8 side by side with the direct aws-sdk-s3
baseline (`bench-direct`), prints a table and writes bench/results/latest.{md,json}.
Sizes and repetitions come from BENCH_* environment variables (see README, "Benchmarks").
"""

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release")
MiB = 1 << 20


def env_int(name, default):
    return int(os.environ.get(name, default))


CFG = {
    "big_mib": env_int("BENCH_BIG_MB", 1024),
    "rand_mib": env_int("BENCH_RAND_MB", 256),
    "rand_ops": env_int("BENCH_RAND_OPS", 2000),
    "ls_n": env_int("BENCH_LS_N", 10000),
    "small_n": env_int("BENCH_SMALL_N", 1000),
    "write_mib": env_int("BENCH_WRITE_MB", 1024),
    "reps": env_int("BENCH_REPS", 3),
    "peers": os.environ.get("BENCH_PEERS", "s3fs rclone").split(),
}
WORK = os.path.abspath(os.environ.get("BENCH_DIR", os.path.join(ROOT, "bench", ".work")))
CACHE_SIZE_MIB = 256
SSOFS_OPTS = os.environ.get(
    "BENCH_SSOFS_OPTS",
    f"cache_size={CACHE_SIZE_MIB}M,cache_dir={WORK}/ssofs-cache,disk_cache_size=3G",
)
BUCKET = "analytics-raw"
PFX = "bench/"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------------------------------- devstack


class Stack:
    def __init__(self):
        self.dir = os.path.join(WORK, "devstack")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.log = open(os.path.join(WORK, "devstack.log"), "w")
        self.proc = subprocess.Popen(
            [f"{REL}/ssofs-devstack", "up", "--state-dir", self.dir, "--auto-approve", "alice"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        envf = os.path.join(self.dir, "devstack.env")
        for _ in range(300):
            if os.path.exists(envf) and os.path.getsize(envf) > 0:
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"devstack exited; see {WORK}/devstack.log")
            time.sleep(0.1)
        time.sleep(0.2)
        self.env = {}
        for line in open(envf):
            if "=" in line:
                k, v = line.strip().split("=", 1)
                self.env[k] = v
        self.endpoint = self.env["DEVSTACK_S3_ENDPOINT"]
        self.ssofs_env = dict(os.environ)
        self.ssofs_env.update(self.env)
        self.ssofs_env["SSOFS_CONFIG"] = os.path.join(self.dir, "ssofs.toml")
        self.ssofs_env["SSOFS_STATE_DIR"] = os.path.join(self.dir, "ssofs-state")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def direct(stack, *args):
    out = run([f"{REL}/examples/bench-direct", *map(str, args)], env=stack.ssofs_env, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ mounts


def is_mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def wait_mounted(path, proc=None, timeout=30):
    for _ in range(int(timeout * 10)):
        if is_mounted(path):
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"mount of {path} exited early")
        time.sleep(0.1)
    raise SystemExit(f"{path} did not mount within {timeout}s")


def pid_of(prog, mnt):
    """The pid whose command line names `prog` and `mnt` (the serving process)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and prog.encode() in os.path.basename(cmd[0]) and mnt.encode() in cmd:
            return int(p)
    return None


def vm_hwm_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class Mount:
    """One filesystem under test; `root` is where the benchmark's prefix lives."""

    name = ""
    settings = ""

    def __init__(self, stack):
        self.stack = stack
        self.mnt = os.path.join(WORK, "mnt", self.name)
        os.makedirs(self.mnt, exist_ok=True)
        subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        self.proc = None

    def path(self, rel):
        return os.path.join(self.root, rel)

    def unmount(self):
        pid = self.pid()
        subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL)
        if is_mounted(self.mnt):
            time.sleep(1)
            subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        # Let the serving process finish (flush, exit) before the next mount.
        for _ in range(300):
            if pid is None or not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
            self.proc = None

    def pid(self):
        return pid_of(self.prog, self.mnt)


class Ssofs(Mount):
    name = "ssofs"
    prog = "ssofs"
    settings = f"ssofs mount MNT -o {SSOFS_OPTS} (alice's STS credentials)"

    def mount(self):
        shutil.rmtree(os.path.join(WORK, "ssofs-cache"), ignore_errors=True)
        run([f"{REL}/ssofs", "mount", self.mnt, "-o", SSOFS_OPTS], env=self.stack.ssofs_env)
        wait_mounted(self.mnt)
        self.root = os.path.join(self.mnt, BUCKET, PFX)


class S3fs(Mount):
    name = "s3fs"
    prog = "s3fs"
    opts = "use_path_request_style,use_cache={cache},parallel_count=8,multireq_max=16,max_stat_cache_size=100000,stat_cache_expire=300,enable_noobj_cache"
    settings = "s3fs analytics-raw MNT -o url=ENDPOINT,passwd_file=F," + opts.format(cache="DIR")

    def mount(self):
        cache = os.path.join(WORK, "s3fs-cache")
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        pw = os.path.join(WORK, "s3fs.passwd")
        with open(pw, "w") as f:
            f.write(f"{self.stack.env['DEVSTACK_ROOT_ACCESS_KEY']}:{self.stack.env['DEVSTACK_ROOT_SECRET_KEY']}\n")
        os.chmod(pw, 0o600)
        o = f"url={self.stack.endpoint},passwd_file={pw},endpoint=us-east-1," + self.opts.format(cache=cache)
        run(["s3fs", BUCKET, self.mnt, "-o", o])
        wait_mounted(self.mnt)
        self.root = os.path.join(self.mnt, PFX)


class Rclone(Mount):
    name = "rclone"
    prog = "rclone"
    flags = [
        "--vfs-cache-mode", "full",
        "--vfs-cache-max-size", "4G",
        "--vfs-read-chunk-size", "32M",
        "--buffer-size", "32M",
        "--transfers", "8",
        "--s3-upload-concurrency", "8",
        "--s3-chunk-size", "16M",
        "--dir-cache-time", "5m",
    ]
    settings = "rclone mount remote:analytics-raw MNT (provider=Minio) " + " ".join(flags)

    def mount(self):
        cache = os.path.join(WORK, "rclone-cache")
        shutil.rmtree(cache, ignore_errors=True)
        conf = os.path.join(WORK, "rclone.conf")
        with open(conf, "w") as f:
            f.write(
                "[bench]\ntype = s3\nprovider = Minio\nenv_auth = false\n"
                f"access_key_id = {self.stack.env['DEVSTACK_ROOT_ACCESS_KEY']}\n"
                f"secret_access_key = {self.stack.env['DEVSTACK_ROOT_SECRET_KEY']}\n"
                f"endpoint = {self.stack.endpoint}\nregion = us-east-1\n"
            )
        self.log = open(os.path.join(WORK, "rclone.log"), "a")
        self.proc = subprocess.Popen(
            ["rclone", "--config", conf, "mount", f"bench:{BUCKET}", self.mnt, "--cache-dir", cache, *self.flags],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # rclone 1.60's S3 backend fails on AWS_CA_BUNDLE ("unsupported transport"); the endpoint is http.
            env={k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"},
        )
        wait_mounted(self.mnt, self.proc)
        self.root = os.path.join(self.mnt, PFX)


# ------------------------------------------------------------------------------------ measurements

CHUNK = os.urandom(MiB)


def seq_read(path):
    t = time.perf_counter()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(MiB)
            if not b:
                break
            n += len(b)
    secs = time.perf_counter() - t
    return n / MiB / secs


def rand_read(path, size, ops, seed):
    rng = random.Random(seed)
    offs = [rng.randrange(size // 4096) * 4096 for _ in range(ops)]
    fd = os.open(path, os.O_RDONLY)
    try:
        t = time.perf_counter()
        for o in offs:
            os.pread(fd, 4096, o)
        return ops / (time.perf_counter() - t)
    finally:
        os.close(fd)


def ls_l(path):
    t = time.perf_counter()
    out = subprocess.run(["ls", "-l", path], check=True, capture_output=True)
    secs = time.perf_counter() - t
    return secs, out.stdout.count(b"\n") - 1


def create_files(d, n):
    os.makedirs(d, exist_ok=True)
    data = CHUNK[:4096]
    t = time.perf_counter()
    for i in range(n):
        with open(os.path.join(d, f"f{i:05}"), "wb") as f:
            f.write(data)
    return n / (time.perf_counter() - t)


def seq_write(path, mib):
    t = time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for _ in range(mib):
            f.write(CHUNK)
    return mib / (time.perf_counter() - t)


def ttfb(path):
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        f.read(1)
    return time.perf_counter() - t


def readers_hwm(m, path, size, n):
    """Fresh mount, `n` concurrent sequential readers over the object (reader i starts at i/n of it
    and wraps around), then the serving process's VmHWM in MiB and the aggregate MiB/s."""
    m.mount()
    try:

        def reader(i):
            fd = os.open(path, os.O_RDONLY)
            start = (size * i // n) // MiB * MiB
            off = start
            try:
                while True:
                    b = os.pread(fd, MiB, off)
                    off += len(b)
                    if off >= size or not b:
                        off = 0
                    if off == start:
                        break
            finally:
                os.close(fd)

        t = time.perf_counter()
        threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        rate = n * size / MiB / (time.perf_counter() - t)
        return vm_hwm_mib(m.pid()), rate
    finally:
        m.unmount()


# ------------------------------------------------------------------------------------------ driver


def main():
    os.makedirs(WORK, exist_ok=True)
    log(f"bench: config {json.dumps(CFG)}; work dir {WORK}")
    stack = Stack()
    mounts = []
    started = time.time()
    try:
        run([f"{REL}/ssofs", "login", "--device-code", "--no-qr"], env=stack.ssofs_env, stdout=subprocess.DEVNULL)
        big, rnd, small = CFG["big_mib"] * MiB, CFG["rand_mib"] * MiB, 100
        log("bench: seeding objects")
        direct(stack, "put-random", BUCKET, PFX + "big.bin", big)
        direct(stack, "put-random", BUCKET, PFX + "rand.bin", rnd)
        direct(stack, "put-random", BUCKET, PFX + "small.txt", small)
        direct(stack, "put-many", BUCKET, PFX + "ls/", CFG["ls_n"], 16, 16)

        mounts = [Ssofs(stack)] + [{"s3fs": S3fs, "rclone": Rclone}[p](stack) for p in CFG["peers"]]
        names = ["direct"] + [m.name for m in mounts]
        R = {n: {} for n in names}

        def add(who, item, v):
            R[who].setdefault(item, []).append(v)

        for rep in range(CFG["reps"]):
            log(f"bench: repetition {rep + 1}/{CFG['reps']}: direct")
            add("direct", "ttfb_ms", direct(stack, "ttfb", BUCKET, PFX + "small.txt")["secs"] * 1000)
            d = direct(stack, "get", BUCKET, PFX + "big.bin")
            add("direct", "read_cold", d["bytes"] / MiB / d["secs"])
            add("direct", "ls_first", direct(stack, "list", BUCKET, PFX + "ls/")["secs"])
            d = direct(stack, "put-many", BUCKET, f"{PFX}w-direct-{rep}/f", CFG["small_n"], 4096, 1)
            add("direct", "create", CFG["small_n"] / d["secs"])
            d = direct(stack, "put-random", BUCKET, f"{PFX}w-direct-{rep}.bin", CFG["write_mib"] * MiB)
            add("direct", "write", CFG["write_mib"] / d["secs"])
            for m in mounts:
                log(f"bench: repetition {rep + 1}/{CFG['reps']}: {m.name}")
                m.mount()
                try:
                    add(m.name, "ttfb_ms", ttfb(m.path("small.txt")) * 1000)
                    add(m.name, "read_cold", seq_read(m.path("big.bin")))
                    add(m.name, "read_warm", seq_read(m.path("big.bin")))
                    add(m.name, "rand", rand_read(m.path("rand.bin"), rnd, CFG["rand_ops"], rep))
                    secs, count = ls_l(m.path("ls"))
                    if count != CFG["ls_n"]:
                        log(f"bench: warning: {m.name} ls -l showed {count} entries, expected {CFG['ls_n']}")
                    add(m.name, "ls_first", secs)
                    add(m.name, "ls_second", ls_l(m.path("ls"))[0])
                    add(m.name, "create", create_files(m.path(f"w-{m.name}-{rep}"), CFG["small_n"]))
                    add(m.name, "write", seq_write(m.path(f"w-{m.name}-{rep}.bin"), CFG["write_mib"]))
                finally:
                    m.unmount()
        for m in mounts:
            log(f"bench: peak RSS: {m.name}")
            for n in (1, 4):
                hwm, rate = readers_hwm(m, m.path("big.bin"), big, n)
                add(m.name, f"rss{n}", hwm)
                add(m.name, f"rss{n}_rate", rate)
    finally:
        for m in mounts:
            try:
                if is_mounted(m.mnt):
                    m.unmount()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"bench: unmounting {m.mnt}: {e}")
        stack.stop()
    report(R, names, mounts, time.time() - started)


ROWS = [
    # key, label, unit, higher is better
    ("read_cold", "1. sequential read {big} MiB, cold", "MiB/s", True),
    ("read_warm", "2. same read, warm", "MiB/s", True),
    ("rand", "3. random 4 KiB reads over {rand} MiB", "ops/s", True),
    ("ls_first", "4. ls -l of {ls} objects, first", "s", False),
    ("ls_second", "4. ls -l of {ls} objects, second", "s", False),
    ("create", "5. create-write-close {small} x 4 KiB", "files/s", True),
    ("write", "6. sequential write {write} MiB, close incl.", "MiB/s", True),
    ("rss1", "7. peak RSS, 1 sequential reader", "MiB", False),
    ("rss4", "7. peak RSS, 4 sequential readers", "MiB", False),
    ("ttfb_ms", "8. first byte of a small object, cold", "ms", False),
]


def med(v):
    v = [x for x in (v or []) if x is not None]
    return statistics.median(v) if v else None


def fmt(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def report(R, names, mounts, elapsed):
    subs = {"big": CFG["big_mib"], "rand": CFG["rand_mib"], "ls": CFG["ls_n"], "small": CFG["small_n"], "write": CFG["write_mib"]}
    M = {n: {k: med(v) for k, v in R[n].items()} for n in names}
    peers = [n for n in names if n not in ("direct", "ssofs")]
    head = ["figure", "unit"] + names[1:] + ["direct"] + [f"ssofs/{p}" for p in peers] + ["ssofs/direct"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table = []
    for key, label, unit, higher in ROWS:
        s = M["ssofs"].get(key)
        row = {"item": key, "label": label.format(**subs), "unit": unit, "higher_is_better": higher}
        cells = [row["label"], unit + (" ↑" if higher else " ↓")]
        for n in names[1:] + ["direct"]:
            row[n] = M[n].get(key)
            cells.append(fmt(row[n]))
        for n in peers + ["direct"]:
            o = M[n].get(key)
            r = s / o if s is not None and o else None
            row[f"ssofs/{n}"] = r
            cells.append(f"{r:.2f}×" if r is not None else "-")
        table.append(row)
        lines.append("| " + " | ".join(cells) + " |")

    # Targets of issue 8.
    def g(n, k):
        return M.get(n, {}).get(k)

    t = []

    def target(label, ok, detail):
        t.append({"target": label, "met": ok, "detail": detail})

    s, d = g("ssofs", "read_cold"), g("direct", "read_cold")
    if s and d:
        target("1: cold read ≥ 0.9× direct", s / d >= 0.9, f"{s / d:.2f}× direct")
    s, w = g("ssofs", "read_cold"), g("ssofs", "read_warm")
    if s and w:
        target("2: warm read ≥ 5× cold", w / s >= 5, f"{w / s:.2f}× cold")
    s, d, p = g("ssofs", "ls_first"), g("direct", "ls_first"), g("s3fs", "ls_first")
    if s and d:
        target("4: ls -l ≤ 1.3× direct paging", s / d <= 1.3, f"{s / d:.2f}× direct")
    if s and p:
        target("4: ls -l ≥ 5× faster than s3fs", p / s >= 5, f"{p / s:.1f}× faster")
    for k, lbl in (("create", "5"), ("write", "6")):
        s = g("ssofs", k)
        others = [g(p, k) for p in peers if g(p, k)]
        if s and others:
            target(f"{lbl}: ahead of both peers", all(s > o for o in others), " / ".join(f"{s / o:.2f}× {p}" for p, o in zip(peers, others)))
    for n in (1, 4):
        s = g("ssofs", f"rss{n}")
        if s:
            lim = CACHE_SIZE_MIB + 64
            target(f"7: RSS with {n} reader(s) ≤ cache_size + 64 MiB ({lim} MiB)", s <= lim, f"{s:.0f} MiB")
    tl = [f"- {'met' if x['met'] else 'MISSED'}: {x['target']} ({x['detail']})" for x in t]

    settings = [f"- {m.name}: `{m.settings}`" for m in mounts]
    settings.append("- direct: aws-sdk-s3 (`bench/direct.rs`), root keys; one GetObject stream; ListObjectsV2 pages "
                    "with delimiter; PutObject one at a time; multipart 16 MiB parts, 4 in flight")
    cfg = ", ".join(f"{k}={v}" for k, v in CFG.items())
    md = "\n".join(
        [
            "# ssofs benchmark",
            "",
            f"Run {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {os.uname().nodename} ({os.cpu_count()} CPUs), "
            f"against the devstack's S3 endpoint on 127.0.0.1; medians of {CFG['reps']} repetitions "
            f"(peak RSS: one run); {elapsed / 60:.1f} min in all. Config: {cfg}.",
            "",
            "Ratios are ssofs ÷ the other figure: ↑ rows want ratios above 1, ↓ rows below 1.",
            "",
            *lines,
            "",
            "## Targets (issue 8)",
            "",
            *tl,
            "",
            "## Settings",
            "",
            *settings,
            "",
            "rclone's close returns before its upload (`--vfs-write-back` defaults to 5 s), so its figures 5 and 6"
            " measure writing to its local cache; s3fs and ssofs upload before close returns.",
            "",
        ]
    )
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(ROOT, "bench", "results", "latest.json"), "w") as f:
        json.dump({"config": CFG, "ssofs_opts": SSOFS_OPTS, "elapsed_s": elapsed, "samples": R, "medians": M,
                   "table": table, "targets": t, "settings": settings}, f, indent=1)
    print(md)


if __name__ == "__main__":
    main()
