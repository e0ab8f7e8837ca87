#!/usr/bin/env python3
"""The ssofs benchmark driver (issues 8 and 15). Run through `bench/run`, which installs and builds first.

Mounts ssofs (alice's STS credentials), s3fs, rclone and mountpoint-s3 (the devstack's root keys) on the same
devstack S3 endpoint, measures issue 8's items 1-8 side by side with the direct aws-sdk-s3
baseline (`bench-direct`) and curl, and issue 15's additions: 150-byte row writes against local
disk, the S3 requests a step costs (from the devstack's request log), the CPU each party spends per
GiB of the cold read and of the write (the mount or direct client, the devstack, the reader or
writer) and cost curves (ls -l by object count, read by concurrent readers, write by file size). Prints a table and writes
bench/results/latest.{md,json} and the curves as bench/results/*.png.
Sizes and repetitions come from BENCH_* environment variables (see README, "Benchmarks").
"""

import collections
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import scale

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release")
# The mountpoint peer is its own cargo package (bench/mountpoint-peer); bench/run builds it here.
MOUNTPOINT_BIN = os.path.join(os.environ.get("BENCH_MOUNTPOINT_TARGET_DIR") or os.path.dirname(REL), "release",
                              "mountpoint-peer")
MiB = 1 << 20
GiB = 1 << 30


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_ints(name, default):
    return [int(x) for x in os.environ.get(name, default).split()]


CFG = {
    "big_mib": env_int("BENCH_BIG_MB", 1024),
    "rand_mib": env_int("BENCH_RAND_MB", 256),
    "rand_ops": env_int("BENCH_RAND_OPS", 2000),
    "ls_n": env_int("BENCH_LS_N", 10000),
    "small_n": env_int("BENCH_SMALL_N", 1000),
    "write_mib": env_int("BENCH_WRITE_MB", 1024),
    "reps": env_int("BENCH_REPS", 3),
    "peers": os.environ.get("BENCH_PEERS", "s3fs rclone mountpoint").split(),
    "rows_mib": env_int("BENCH_ROWS_MB", 50),
    "ls_curve": env_ints("BENCH_LS_CURVE", "1000 10000 100000"),
    "readers": env_ints("BENCH_READERS", "1 4 16"),
    "write_curve": env_ints("BENCH_WRITE_CURVE", "1 16 256 1024"),
}
WORK = os.path.abspath(os.environ.get("BENCH_DIR", os.path.join(ROOT, "bench", ".work")))
CACHE_SIZE_MIB = 256
# The default: blocks cached in memory only. Item 10 (and the cold read beside it) mounts with the
# disk tier as well: every block read is then also written to disk, which costs this VM's ext4
# 1.2-3.6 CPU-s per GiB in the kernel (dd of 1 GiB), on the same two cores as the read.
SSOFS_OPTS = os.environ.get("BENCH_SSOFS_OPTS", f"cache_size={CACHE_SIZE_MIB}M")
SSOFS_DISK_OPTS = f"{SSOFS_OPTS},cache_dir={WORK}/ssofs-cache,disk_cache_size=3G"
# Item 9 once more on ssofs with the kernel's writeback cache (`-o writeback_cache`, not the default).
WRITEBACK = "ssofs_writeback"
BUCKET = "analytics-raw"
PFX = "bench/"
RESULTS = os.path.join(ROOT, "bench", "results")
# Issue 15's scale figures (bench/scale.py), filled by main().
SCALE = {}


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

    def control(self, path, form=None):
        """A call to the devstack's control API: GET, or POST of `form`; the JSON answer."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with urllib.request.urlopen(f"{self.env['DEVSTACK_CONTROL_URL']}/{path}", data, timeout=600) as r:
            return json.load(r)

    def request_count(self):
        return self.control("requests/count")["count"]

    def requests_since(self, n):
        return self.control(f"requests?since={n}")

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


def vm_mib(pid, field):
    """A memory figure of /proc/PID/status (VmHWM: peak, VmRSS: now), in MiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def cpu_secs(pid):
    """User + system CPU seconds process `pid` has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mib(pid):
    return vm_mib(pid, "VmHWM")


def own_cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def host_times():
    """The host's CPU time so far by kind (user nice system idle iowait irq softirq steal)."""
    return [int(x) for x in open("/proc/stat").readline().split()[1:9]]


def cpu_budget(stack, step, pid=None):
    """Runs `step()`; its result and the CPU seconds it cost each party: `client` (process `pid`, a
    mount; else the child processes `step` ran: the direct client, curl), `server` (the devstack),
    `local` (this process: a mount's reader or writer), and the host's `idle` and `steal` shares
    meanwhile. On a 2-core host this shows where a throughput figure's ceiling is."""
    host, server = host_times(), cpu_secs(stack.proc.pid)
    local, kids = own_cpu(resource.RUSAGE_SELF), own_cpu(resource.RUSAGE_CHILDREN)
    client = cpu_secs(pid) if pid else None
    out = step()
    spent = [b - a for a, b in zip(host, host_times())]
    total = sum(spent) or 1
    return out, {
        "client": cpu_secs(pid) - client if pid else own_cpu(resource.RUSAGE_CHILDREN) - kids,
        "server": cpu_secs(stack.proc.pid) - server,
        "local": own_cpu(resource.RUSAGE_SELF) - local,
        "idle": spent[3] / total,
        "steal": spent[7] / total,
    }


def add_cpu(add, who, item, cpu, gib):
    """`cpu_budget`'s figures as `<item>_cpu_<party>`: CPU seconds per GiB moved, shares as they are."""
    for k, v in cpu.items():
        add(who, f"{item}_cpu_{k}", v if k in ("idle", "steal") else v / gib)


class Mount:
    """One filesystem under test; `root` is where the benchmark's prefix lives."""

    name = ""
    settings = ""
    # Seconds between a close and the upload it causes (rclone's --vfs-write-back); request counts
    # wait that long, then for the log to go quiet.
    write_back_s = 0

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
    settings = f"ssofs mount MNT -o {SSOFS_OPTS} (alice's STS credentials; item 10 and the cold read with the disk tier: -o {SSOFS_DISK_OPTS})"

    def mount(self, disk=False, keep_cache=False, extra=""):
        """With `disk`, the disk tier under the work directory: emptied first unless `keep_cache`;
        `extra`: more -o options."""
        if disk and not keep_cache:
            shutil.rmtree(os.path.join(WORK, "ssofs-cache"), ignore_errors=True)
        opts = (SSOFS_DISK_OPTS if disk else SSOFS_OPTS) + (f",{extra}" if extra else "")
        run([f"{REL}/ssofs", "mount", self.mnt, "-o", opts], env=self.stack.ssofs_env)
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
    write_back_s = 5
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


class Mountpoint(Mount):
    """Mountpoint for Amazon S3 (the `mountpoint-s3-fs` library, as `mount-s3` wires it) through
    bench/mountpoint-peer, built by bench/run when BENCH_PEERS names it. Its only data cache is on
    disk (`--cache`, 1 MiB blocks; metadata TTL 60 s with it, set to s3fs's 300 s here); it has no
    memory cache to size like ssofs's cache_size, and its prefetch buffers are bounded by
    `--memory-target` (default 95% of the machine's memory, as mount-s3). Writes are sequential
    new files only (no append, no random writes); deleting and overwriting are allowed, as on the
    other mounts."""

    name = "mountpoint"
    prog = "mountpoint-peer"
    flags = ["--cache", "{cache}", "--max-cache-size", "3072", "--metadata-ttl", "300", "--allow-delete",
             "--allow-overwrite"]
    settings = ("mountpoint-peer analytics-raw MNT --endpoint-url ENDPOINT --region us-east-1 (path-style, "
                "static root keys in the environment) " + " ".join(flags).format(cache="DIR"))

    def mount(self):
        if not os.path.exists(MOUNTPOINT_BIN):
            raise SystemExit(f"{MOUNTPOINT_BIN} is missing: run bench/run without BENCH_NO_BUILD=1 (it builds "
                             "bench/mountpoint-peer), or set BENCH_MOUNTPOINT_TARGET_DIR to where it was built")
        cache = os.path.join(WORK, "mountpoint-cache")
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.stack.env["DEVSTACK_ROOT_ACCESS_KEY"]
        env["AWS_SECRET_ACCESS_KEY"] = self.stack.env["DEVSTACK_ROOT_SECRET_KEY"]
        env.pop("AWS_SESSION_TOKEN", None)
        args = ["--endpoint-url", self.stack.endpoint, "--region", "us-east-1"]
        if self.stack.endpoint.startswith("https:") and "DEVSTACK_CA_FILE" in self.stack.env:
            args += ["--ca-bundle", self.stack.env["DEVSTACK_CA_FILE"]]
        self.log = open(os.path.join(WORK, "mountpoint.log"), "a")
        self.proc = subprocess.Popen(
            [MOUNTPOINT_BIN, BUCKET, self.mnt, *args, *[f.format(cache=cache) for f in self.flags]],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
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


# One CSV row of 150 bytes, newline included.
ROW = b"2026-11-28T11:36:31.123456Z,alice,analytics-raw,events/2026/11/01/part-0000.csv,login,200,".ljust(149, b"x") + b"\n"


def small_writes(path, mib):
    """`mib` MiB (at least 2) written as 150-byte rows, one os.write() each (no buffering), then
    closed: seconds in all (open and close included), seconds of the close, and the cost of one write
    in µs over the first MiB and over the last MiB (a cost that grows with the offset shows there)."""
    per_mib = MiB // len(ROW)
    rows = max(mib * MiB // len(ROW), 2 * per_mib)
    write = os.write
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        t0 = time.perf_counter()
        for _ in range(per_mib):
            write(fd, ROW)
        t1 = time.perf_counter()
        for _ in range(rows - 2 * per_mib):
            write(fd, ROW)
        t2 = time.perf_counter()
        for _ in range(per_mib):
            write(fd, ROW)
        t3 = time.perf_counter()
    finally:
        os.close(fd)
    end = time.perf_counter()
    return {
        "secs": end - start,
        "close_secs": end - t3,
        "first_us": (t1 - t0) / per_mib * 1e6,
        "last_us": (t3 - t2) / per_mib * 1e6,
    }


def curl_read(url):
    """One `curl` of a presigned URL to /dev/null: MiB/s."""
    out = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
              capture_output=True, text=True).stdout.split()
    if out[0] != "200":
        raise SystemExit(f"curl of the presigned URL answered {out[0]}")
    return float(out[1]) / MiB / float(out[2])


def wait_quiet(stack, quiet=1.0, limit=60):
    """Until no S3/STS request has been logged for `quiet` seconds (at most `limit`)."""
    last, changed, started = stack.request_count(), time.time(), time.time()
    while time.time() - changed < quiet and time.time() - started < limit:
        time.sleep(0.2)
        n = stack.request_count()
        if n != last:
            last, changed = n, time.time()


def with_requests(stack, step, settle_s=None):
    """Runs `step()`: what it returned and the S3/STS requests logged meanwhile, {"METHOD Op": count}.
    With `settle_s`, the requests of the next `settle_s` seconds count too, and of as long after as
    the log is not quiet for a second (uploads a close started)."""
    n = stack.request_count()
    out = step()
    if settle_s is not None:
        time.sleep(settle_s)
        wait_quiet(stack)
    ops = collections.Counter(f"{r['method']} {r['op'] or '?'}" for r in stack.requests_since(n))
    return out, dict(ops)


def ls_curve(m, counts):
    """Fresh mount, then `ls -l` of a directory of each size, the first time: seconds per size."""
    m.mount()
    try:
        out = {}
        for n in counts:
            secs, seen = ls_l(m.path(f"lsc-{n}"))
            if seen != n:
                log(f"bench: warning: {m.name} ls -l showed {seen} entries, expected {n}")
            out[n] = secs
        return out
    finally:
        m.unmount()


def write_curve(m, sizes):
    """Fresh mount, then one file of each size (MiB) written, closed and removed: MiB/s per size."""
    m.mount()
    try:
        out = {}
        for mib in sizes:
            path = m.path(f"wc-{m.name}-{mib}.bin")
            out[mib] = seq_write(path, mib)
            os.remove(path)
        return out
    finally:
        m.unmount()


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


def local_fs(path):
    """The type of the filesystem holding `path` (ext4, xfs, ...)."""
    out = subprocess.run(["df", "--output=fstype", path], capture_output=True, text=True).stdout.split()
    return out[-1] if out else "local"


def seed(stack):
    big, rnd = CFG["big_mib"] * MiB, CFG["rand_mib"] * MiB
    log("bench: seeding objects")
    direct(stack, "put-random", BUCKET, PFX + "big.bin", big)
    direct(stack, "put-random", BUCKET, PFX + "rand.bin", rnd)
    direct(stack, "put-random", BUCKET, PFX + "small.txt", 100)
    direct(stack, "put-many", BUCKET, PFX + "ls/", CFG["ls_n"], 16, 16)
    for n in CFG["ls_curve"]:
        d = stack.control("seed-objects", {"bucket": BUCKET, "prefix": f"{PFX}lsc-{n}/", "count": n, "size": 16})
        log(f"bench: seeded {n} objects in {d['secs']:.1f} s (straight into the devstack's store)")


def measure_direct(stack, rep, add, url):
    """Issue 8's items with the aws-sdk-s3 baseline, and the cold read with curl."""
    small_n = CFG["small_n"]
    d, ops = with_requests(stack, lambda: direct(stack, "ttfb", BUCKET, PFX + "small.txt"))
    add("direct", "ttfb_ms", d["secs"] * 1000)
    add("direct", "ttfb_reqs", sum(ops.values()))
    add("direct", "ttfb_ops", ops)
    d, cpu = cpu_budget(stack, lambda: direct(stack, "get", BUCKET, PFX + "big.bin"))
    add("direct", "read_cold", d["bytes"] / MiB / d["secs"])
    add_cpu(add, "direct", "read_cold", cpu, d["bytes"] / GiB)
    rate, cpu = cpu_budget(stack, lambda: curl_read(url))
    add("curl", "read_cold", rate)
    add_cpu(add, "curl", "read_cold", cpu, CFG["big_mib"] * MiB / GiB)
    add("direct", "ls_first", direct(stack, "list", BUCKET, PFX + "ls/")["secs"])
    d, ops = with_requests(stack, lambda: direct(stack, "put-many", BUCKET, f"{PFX}w-direct-{rep}/f", small_n, 4096, 1))
    add("direct", "create", small_n / d["secs"])
    add("direct", "create_reqs", sum(ops.values()) / small_n)
    add("direct", "create_ops", {k: v / small_n for k, v in ops.items()})
    d, cpu = cpu_budget(stack, lambda: direct(stack, "put-random", BUCKET, f"{PFX}w-direct-{rep}.bin", CFG["write_mib"] * MiB))
    add("direct", "write", CFG["write_mib"] / d["secs"])
    # The client's CPU includes making the random bytes it sends (xorshift, cheap beside the upload).
    add_cpu(add, "direct", "write", cpu, CFG["write_mib"] * MiB / GiB)


def measure_mount(stack, m, rep, add):
    """Issue 8's items 1-6 and 8 on a fresh mount of `m`, the S3 requests of items 5 and 8, and
    issue 15's 150-byte rows."""
    small_n, rnd = CFG["small_n"], CFG["rand_mib"] * MiB
    m.mount()
    try:
        secs, ops = with_requests(stack, lambda: ttfb(m.path("small.txt")))
        add(m.name, "ttfb_ms", secs * 1000)
        add(m.name, "ttfb_reqs", sum(ops.values()))
        add(m.name, "ttfb_ops", ops)
        rate, cpu = cpu_budget(stack, lambda: seq_read(m.path("big.bin")), m.pid())
        add(m.name, "read_cold", rate)
        add_cpu(add, m.name, "read_cold", cpu, CFG["big_mib"] * MiB / GiB)
        add(m.name, "read_warm", seq_read(m.path("big.bin")))
        add(m.name, "rand", rand_read(m.path("rand.bin"), rnd, CFG["rand_ops"], rep))
        secs, count = ls_l(m.path("ls"))
        if count != CFG["ls_n"]:
            log(f"bench: warning: {m.name} ls -l showed {count} entries, expected {CFG['ls_n']}")
        add(m.name, "ls_first", secs)
        add(m.name, "ls_second", ls_l(m.path("ls"))[0])
        rate, ops = with_requests(stack, lambda: create_files(m.path(f"w-{m.name}-{rep}"), small_n), m.write_back_s)
        add(m.name, "create", rate)
        add(m.name, "create_reqs", sum(ops.values()) / small_n)
        add(m.name, "create_ops", {k: v / small_n for k, v in ops.items()})
        rate, cpu = cpu_budget(stack, lambda: seq_write(m.path(f"w-{m.name}-{rep}.bin"), CFG["write_mib"]), m.pid())
        add(m.name, "write", rate)
        add_cpu(add, m.name, "write", cpu, CFG["write_mib"] * MiB / GiB)
        measure_rows(m.name, m.path(f"rows-{m.name}-{rep}.csv"), add)
    finally:
        m.unmount()
    if m.name == "ssofs":
        measure_remount(stack, m, add)
        m.mount(extra="writeback_cache")
        try:
            measure_rows(WRITEBACK, m.path(f"rows-{WRITEBACK}-{rep}.csv"), add)
        finally:
            m.unmount()


def measure_remount(stack, m, add):
    """Issue 18: big.bin read cold through a mount with the disk tier, then mounted again on the same
    cache_dir, where it comes from the disk cache."""
    m.mount(disk=True)
    try:
        add(m.name, "read_cold_disk", seq_read(m.path("big.bin")))
    finally:
        m.unmount()
    m.mount(disk=True, keep_cache=True)
    try:
        rate, ops = with_requests(stack, lambda: seq_read(m.path("big.bin")))
        add(m.name, "read_remount", rate)
        add(m.name, "read_remount_gets", sum(n for op, n in ops.items() if op.endswith(" GetObject")))
    finally:
        m.unmount()


def measure_rows(who, path, add):
    r = small_writes(path, CFG["rows_mib"])
    os.remove(path)
    add(who, "rows", r["secs"])
    for k in ("close_secs", "first_us", "last_us"):
        add(who, f"rows_{k}", r[k])


def measure_curves(stack, mounts, add):
    """Cost curves, one run each: ls -l by object count, aggregate read by concurrent readers (with
    the peak RSS of 1 and 4 readers, issue 8's item 7), write by file size."""
    big = CFG["big_mib"] * MiB
    for n in CFG["ls_curve"]:
        add("direct", f"ls_curve_{n}", direct(stack, "list", BUCKET, f"{PFX}lsc-{n}/")["secs"])
    for mib in CFG["write_curve"]:
        d = direct(stack, "put-random", BUCKET, f"{PFX}wc-direct-{mib}.bin", mib * MiB)
        add("direct", f"write_curve_{mib}", mib / d["secs"])
    for m in mounts:
        log(f"bench: cost curves: {m.name}")
        for n, secs in ls_curve(m, CFG["ls_curve"]).items():
            add(m.name, f"ls_curve_{n}", secs)
        for n in sorted(set(CFG["readers"]) | {1, 4}):
            hwm, rate = readers_hwm(m, m.path("big.bin"), big, n)
            add(m.name, f"rss{n}", hwm)
            add(m.name, f"rss{n}_rate", rate)
        for mib, rate in write_curve(m, CFG["write_curve"]).items():
            add(m.name, f"write_curve_{mib}", rate)


def only_report(name, header, R):
    """A `BENCH_ONLY` mode's medians and their ratios to ssofs, printed and written to
    only-<name>.md in the work directory (results/ holds full runs)."""
    M = {n: med(v) for n, v in R.items()}
    lines = [header] + [f"- {n}: {fmt(v)}" + (f" (ssofs/{n} {M['ssofs'] / v:.2f}×)" if n != "ssofs" and v else "")
                        for n, v in M.items()]
    with open(os.path.join(WORK, f"only-{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def only_write(stack, mounts):
    """`BENCH_ONLY=write`: item 6 alone (sequential write with close, direct multipart upload beside
    it), `BENCH_REPS` times, printed and written to the work directory only: results/ holds full
    runs."""
    R = {n: [] for n in ["direct"] + [m.name for m in mounts]}
    for rep in range(CFG["reps"]):
        d = direct(stack, "put-random", BUCKET, f"{PFX}w-direct-{rep}.bin", CFG["write_mib"] * MiB)
        R["direct"].append(CFG["write_mib"] / d["secs"])
        for m in mounts:
            m.mount()
            try:
                R[m.name].append(seq_write(m.path(f"w-{m.name}-{rep}.bin"), CFG["write_mib"]))
            finally:
                m.unmount()
        log(f"bench: write {CFG['write_mib']} MiB, repetition {rep + 1}: " + json.dumps({k: v[-1] for k, v in R.items()}))
    only_report("write", f"sequential write {CFG['write_mib']} MiB, close incl., MiB/s (median of {CFG['reps']}; samples {R}):", R)


def only_create(stack, mounts):
    """`BENCH_ONLY=create`: item 5 alone (create-write-close of small files, direct PutObject one at
    a time beside it), `BENCH_REPS` times, printed and written to the work directory only."""
    n = CFG["small_n"]
    R = {k: [] for k in ["direct"] + [m.name for m in mounts]}
    reqs, cpu = {k: [] for k in R}, {m.name: [] for m in mounts}
    for rep in range(CFG["reps"]):
        d, ops = with_requests(stack, lambda: direct(stack, "put-many", BUCKET, f"{PFX}c-direct-{rep}/f", n, 4096, 1))
        R["direct"].append(n / d["secs"])
        reqs["direct"].append(sum(ops.values()) / n)
        for m in mounts:
            m.mount()
            try:
                before = cpu_secs(m.pid())
                rate, ops = with_requests(stack, lambda: create_files(m.path(f"c-{m.name}-{rep}"), n), m.write_back_s)
                R[m.name].append(rate)
                reqs[m.name].append(sum(ops.values()) / n)
                cpu[m.name].append(round((cpu_secs(m.pid()) - before) / n * 1000, 3))
            finally:
                m.unmount()
        log(f"bench: create {n} x 4 KiB, repetition {rep + 1}: " + json.dumps({k: v[-1] for k, v in R.items()}))
    only_report("create", f"create-write-close {n} x 4 KiB, files/s (median of {CFG['reps']}; samples {R}; "
                f"requests per file {reqs}; the mount's CPU ms per file {cpu}):", R)


def only_remount(stack):
    """`BENCH_ONLY=remount`: item 10 alone (a cold read of big.bin, then the re-read after a remount
    and its GetObject count), `BENCH_REPS` times, printed and written to the work directory only."""
    direct(stack, "put-random", BUCKET, PFX + "big.bin", CFG["big_mib"] * MiB)
    m, lines = Ssofs(stack), []
    for rep in range(CFG["reps"]):
        R = {}
        measure_remount(stack, m, lambda _who, item, v: R.setdefault(item, v))
        lines.append(f"repetition {rep + 1}: cold {fmt(R['read_cold_disk'])} MiB/s, after a remount {fmt(R['read_remount'])} MiB/s "
                     f"with {R['read_remount_gets']} GetObject")
        log("bench: " + lines[-1])
    with open(os.path.join(WORK, "only-remount.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def only_random(stack, mounts):
    """`BENCH_ONLY=random`: item 3 alone (random 4 KiB reads), `BENCH_REPS` times, each on a fresh
    mount after a cold read of big.bin as in the full run (so the cache starts full of other
    blocks), printed and written to the work directory only."""
    rnd = CFG["rand_mib"] * MiB
    direct(stack, "put-random", BUCKET, PFX + "big.bin", CFG["big_mib"] * MiB)
    direct(stack, "put-random", BUCKET, PFX + "rand.bin", rnd)
    R = {m.name: [] for m in mounts}
    gets = {m.name: [] for m in mounts}
    for rep in range(CFG["reps"]):
        for m in mounts:
            m.mount()
            try:
                seq_read(m.path("big.bin"))
                ops, reqs = with_requests(stack, lambda: rand_read(m.path("rand.bin"), rnd, CFG["rand_ops"], rep), 0)
                R[m.name].append(ops)
                gets[m.name].append(sum(v for k, v in reqs.items() if k.endswith("GetObject")))
            finally:
                m.unmount()
        log(f"bench: random 4 KiB reads, repetition {rep + 1}: " + json.dumps({k: v[-1] for k, v in R.items()}))
    only_report("random", f"random 4 KiB reads over {CFG['rand_mib']} MiB, {CFG['rand_ops']} reads, ops/s "
                f"(median of {CFG['reps']}; samples {R}; GetObject per pass {gets}):", R)


def only_scale(stack):
    """`BENCH_ONLY=scale`: issue 15's items 6 and 7 alone (`bench/scale.py`), printed and written to
    the work directory only."""
    meta = scale.metadata_scale(sys.modules[__name__], stack, Ssofs(stack))
    mu = scale.multiuser_scale(sys.modules[__name__]) if scale.MU_USERS > 1 else None
    lines, targets = scale.section(meta, mu, CACHE_SIZE_MIB)
    marks = [f"- {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['detail']})" for t in targets]
    text = "\n".join(lines + marks) + "\n"
    with open(os.path.join(WORK, "only-scale.md"), "w") as f:
        f.write(text)
    print(text)


def main():
    os.makedirs(WORK, exist_ok=True)
    log(f"bench: config {json.dumps(CFG)}; work dir {WORK}")
    stack = Stack()
    mounts = []
    started = time.time()
    try:
        run([f"{REL}/ssofs", "login", "--device-code", "--no-qr"], env=stack.ssofs_env, stdout=subprocess.DEVNULL)
        if os.environ.get("BENCH_ONLY") == "write":
            mounts = [Ssofs(stack)] + [{"s3fs": S3fs, "rclone": Rclone}[p](stack) for p in CFG["peers"]]
            return only_write(stack, mounts)
        if os.environ.get("BENCH_ONLY") == "random":
            mounts = [Ssofs(stack)] + [{"s3fs": S3fs, "rclone": Rclone}[p](stack) for p in CFG["peers"]]
            return only_random(stack, mounts)
        if os.environ.get("BENCH_ONLY") == "create":
            mounts = [Ssofs(stack)] + [{"s3fs": S3fs, "rclone": Rclone}[p](stack) for p in CFG["peers"]]
            return only_create(stack, mounts)
        if os.environ.get("BENCH_ONLY") == "remount":
            return only_remount(stack)
        if os.environ.get("BENCH_ONLY") == "scale":
            return only_scale(stack)
        seed(stack)
        url = direct(stack, "presign", BUCKET, PFX + "big.bin", 3600)["url"]
        local = os.path.join(WORK, "local")
        os.makedirs(local, exist_ok=True)

        mounts = [Ssofs(stack)] + [{"s3fs": S3fs, "rclone": Rclone, "mountpoint": Mountpoint}[p](stack) for p in CFG["peers"]]
        names = ["direct", "curl", "local", WRITEBACK] + [m.name for m in mounts]
        R = {n: {} for n in names}

        def add(who, item, v):
            R[who].setdefault(item, []).append(v)

        for rep in range(CFG["reps"]):
            log(f"bench: repetition {rep + 1}/{CFG['reps']}: direct, curl, local disk")
            measure_direct(stack, rep, add, url)
            measure_rows("local", os.path.join(local, "rows.csv"), add)
            for m in mounts:
                log(f"bench: repetition {rep + 1}/{CFG['reps']}: {m.name}")
                measure_mount(stack, m, rep, add)
        measure_curves(stack, mounts, add)
        if os.environ.get("BENCH_SCALE", "1") != "0":
            log("bench: scale: a million-object tree, then many users on one multi-user mount")
            SCALE["meta"] = scale.metadata_scale(sys.modules[__name__], stack, Ssofs(stack))
            SCALE["mu"] = scale.multiuser_scale(sys.modules[__name__])
    finally:
        for m in mounts:
            try:
                if is_mounted(m.mnt):
                    m.unmount()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"bench: unmounting {m.mnt}: {e}")
        stack.stop()
    report(R, mounts, local_fs(WORK), time.time() - started)


ROWS = [
    # key, label, unit, higher is better
    ("read_cold", "1. sequential read {big} MiB, cold", "MiB/s", True),
    ("read_warm", "2. same read, warm", "MiB/s", True),
    ("rand", "3. random 4 KiB reads over {rand} MiB", "ops/s", True),
    ("ls_first", "4. ls -l of {ls} objects, first", "s", False),
    ("ls_second", "4. ls -l of {ls} objects, second", "s", False),
    ("create", "5. create-write-close {small} x 4 KiB", "files/s", True),
    ("create_reqs", "5. S3 requests per created file", "req", False),
    ("write", "6. sequential write {write} MiB, close incl.", "MiB/s", True),
    ("rss1", "7. peak RSS, 1 sequential reader", "MiB", False),
    ("rss4", "7. peak RSS, 4 sequential readers", "MiB", False),
    ("ttfb_ms", "8. first byte of a small object, cold", "ms", False),
    ("ttfb_reqs", "8. S3 requests for that first byte", "req", False),
    ("rows", "9. {rows} MiB as 150-byte rows, a write() each, close incl.", "s", False),
    ("read_cold_disk", "10. cold read as in 1, with the disk tier (cache_dir)", "MiB/s", True),
    ("read_remount", "10. read 1 again after a remount (disk cache)", "MiB/s", True),
    ("read_remount_gets", "10. GetObject requests for that read", "req", False),
]
BASELINES = ["direct", "curl"]


def med(v):
    v = [x for x in (v or []) if x is not None]
    return statistics.median(v) if v else None


def med_ops(samples):
    """The median count of each "METHOD Op" over repetitions (0 where a repetition made none)."""
    keys = sorted({k for d in samples or [] for k in d})
    return {k: statistics.median(d.get(k, 0) for d in samples) for k in keys}


def fmt(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def md_table(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def main_table(M, mounts):
    """Issue 8's table with issue 15's rows: each figure for every mount and baseline, and ssofs's ratios."""
    subs = {"big": CFG["big_mib"], "rand": CFG["rand_mib"], "ls": CFG["ls_n"], "small": CFG["small_n"],
            "write": CFG["write_mib"], "rows": CFG["rows_mib"]}
    peers = [n for n in mounts if n != "ssofs"]
    head = ["figure", "unit"] + mounts + BASELINES + [f"ssofs/{p}" for p in peers + BASELINES]
    cells, table = [], []
    for key, label, unit, higher in ROWS:
        s = M["ssofs"].get(key)
        row = {"item": key, "label": label.format(**subs), "unit": unit, "higher_is_better": higher}
        line = [row["label"], unit + (" ↑" if higher else " ↓")]
        for n in mounts + BASELINES:
            row[n] = M[n].get(key)
            line.append(fmt(row[n]))
        for n in peers + BASELINES:
            o = M[n].get(key)
            r = s / o if s is not None and o else None
            row[f"ssofs/{n}"] = r
            line.append(f"{r:.2f}×" if r is not None else "-")
        table.append(row)
        cells.append(line)
    return md_table(head, cells), table


def rows_section(M, mounts, fs):
    """Issue 15: 150-byte rows, against local disk."""
    who = ["local"] + mounts[:1] + [WRITEBACK] + mounts[1:]
    label = {"local": f"local {fs}", WRITEBACK: "ssofs -o writeback_cache"}
    base = M["local"].get("rows")
    cells = []
    for n in who:
        g = M[n].get
        ratio = g("rows") / base if g("rows") and base else None
        growth = g("rows_last_us") / g("rows_first_us") if g("rows_last_us") and g("rows_first_us") else None
        cells.append([label.get(n, n), fmt(g("rows")), f"{ratio:.2f}×" if ratio else "-", fmt(g("rows_close_secs")),
                      fmt(g("rows_first_us")), fmt(g("rows_last_us")), f"{growth:.2f}×" if growth else "-"])
    head = ["", "s, close incl. ↓", f"÷ local {fs}", "close s", "µs/write, first MiB", "µs/write, last MiB", "last ÷ first"]
    return [
        f"## 150-byte rows: {CFG['rows_mib']} MiB, one write() per row",
        "",
        "Python `os.write` of one 150-byte CSV row at a time (no buffering: one write(2) each), then close;"
        f" local {fs} is a directory under the bench's work directory. Medians of {CFG['reps']} repetitions.",
        "",
        *md_table(head, cells),
    ]


def cpu_section(M, names):
    """Issue 15 items 1 and 2: the CPU each party spent per GiB of the cold read and of the write."""
    out = ["## Where the CPU went (cold read and sequential write, per GiB, medians)", "",
           f"On {os.cpu_count()} cores. client: the mount, or the direct client (aws-sdk-s3, curl); server: the"
           " devstack; local: the process reading or writing the mount's file (none for a direct client).", ""]
    cells = []
    for item, what in (("read_cold", "cold read"), ("write", f"write of {CFG['write_mib']} MiB")):
        for n in names:
            g = lambda k: M[n].get(f"{item}_cpu_{k}")
            if g("client") is None:
                continue
            busy = sum(x or 0 for x in (g("client"), g("server"), g("local")))
            pct = lambda x: f"{x * 100:.0f}%" if x is not None else "-"
            cells.append([what, n, fmt(M[n].get(item)), fmt(g("client")), fmt(g("server")), fmt(g("local")),
                          fmt(busy), pct(g("idle")), pct(g("steal"))])
    return out + md_table(["step", "who", "MiB/s", "client CPU-s/GiB", "server", "local", "all", "host idle",
                           "steal"], cells)


def requests_section(R, names):
    """Issue 15: what S3 requests items 5 and 8 cost, from the devstack's request log."""
    out = ["## S3 requests (the devstack's request log)", ""]
    for key, what in (("create_ops", f"per created file (create-write-close of 4 KiB, {CFG['small_n']} files)"),
                      ("ttfb_ops", "for the first byte of a small object on a fresh mount")):
        out.append(f"Requests {what}, median of {CFG['reps']} repetitions:")
        out.append("")
        for n in names:
            ops = med_ops(R[n].get(key))
            if ops:
                total = sum(ops.values())
                out.append(f"- {n}: {fmt(total)} = " + ", ".join(f"{k} {fmt(v)}" for k, v in ops.items()))
        out.append("")
    out.append(f"rclone's uploads start {Rclone.write_back_s} s after close; its count waits for them, then for a"
               " second without requests.")
    return out


CURVES = [
    # file, title, x label, key pattern, y label, higher is better, x values
    ("ls_curve.png", "ls -l, first time", "objects in the directory", "ls_curve_{}", "seconds", False, "ls_curve"),
    ("read_curve.png", "sequential read of one object, fresh mount", "concurrent readers", "rss{}_rate",
     "aggregate MiB/s", True, "readers"),
    ("write_curve.png", "sequential write, close incl., fresh mount", "file size (MiB)", "write_curve_{}", "MiB/s", True,
     "write_curve"),
]


def curves_section(M, names):
    """Cost curves: a table each and, with matplotlib, a PNG each next to latest.md."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
        log("bench: matplotlib is missing; the curves are tables only")
    out = ["## Cost curves (one run each)", ""]
    for fname, title, xlabel, key, ylabel, higher, cfg in CURVES:
        xs = sorted(set(CFG[cfg]) | ({1, 4} if cfg == "readers" else set()))
        who = [n for n in names if any(M[n].get(key.format(x)) is not None for x in xs)]
        cells = [[n] + [fmt(M[n].get(key.format(x))) for x in xs] for n in who]
        out += [f"{title}: {ylabel} {'↑' if higher else '↓'}", "", *md_table([xlabel] + [str(x) for x in xs], cells), ""]
        if plt is None or not who:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for n in who:
            pts = [(x, M[n][key.format(x)]) for x in xs if M[n].get(key.format(x)) is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=n)
        ax.set_xscale("log")
        if cfg != "readers":
            ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set(title=title, xlabel=xlabel, ylabel=f"{ylabel} ({'higher' if higher else 'lower'} is better)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(RESULTS, fname), dpi=100)
        plt.close(fig)
        out += [f"![{title}]({fname})", ""]
    return out


def targets(M, R, mounts):
    """Issues 8 and 15's targets, and the bench's own for the new figures, each met or missed."""
    peers = [n for n in mounts if n != "ssofs"]

    def g(n, k):
        return M.get(n, {}).get(k)

    t = []

    def target(label, source, ok, detail):
        t.append({"target": label, "source": source, "met": ok, "detail": detail})

    s, d = g("ssofs", "read_cold"), g("direct", "read_cold")
    if s and d:
        target("1: cold read ≥ 0.9× direct", "issue 8", s / d >= 0.9, f"{s / d:.2f}× direct")
    best = max(((g(n, "read_cold"), n) for n in BASELINES if g(n, "read_cold")), default=None)
    if s and best:
        target("1: cold read ≥ 0.8× the faster of direct SDK and curl", "issue 15", s / best[0] >= 0.8,
               f"{s / best[0]:.2f}× {best[1]}")
    w = g("ssofs", "read_warm")
    if s and w:
        target("2: warm read ≥ 5× cold", "issue 8", w / s >= 5, f"{w / s:.2f}× cold")
    s, d, p = g("ssofs", "ls_first"), g("direct", "ls_first"), g("s3fs", "ls_first")
    if s and d:
        target("4: ls -l ≤ 1.3× direct paging", "issue 8", s / d <= 1.3, f"{s / d:.2f}× direct")
    if s and p:
        target("4: ls -l ≥ 5× faster than s3fs", "issue 8", p / s >= 5, f"{p / s:.1f}× faster")
    for k, lbl in (("create", "5"), ("write", "6")):
        s = g("ssofs", k)
        others = [(p, g(p, k)) for p in peers if g(p, k)]
        if s and others:
            target(f"{lbl}: ahead of every peer", "issue 8", all(s > o for _, o in others),
                   " / ".join(f"{s / o:.2f}× {p}" for p, o in others))
    for n in (1, 4):
        s = g("ssofs", f"rss{n}")
        if s:
            lim = CACHE_SIZE_MIB + 64
            target(f"7: RSS with {n} reader(s) ≤ cache_size + 64 MiB ({lim} MiB)", "issue 8", s <= lim, f"{s:.0f} MiB")
    for k, lbl in (("create_reqs", "5: S3 requests per created file"), ("ttfb_reqs", "8: S3 requests for a cold first byte")):
        s = g("ssofs", k)
        others = [(p, g(p, k)) for p in peers if g(p, k) is not None]
        if s is not None and others:
            target(f"{lbl}: no more than any peer", "bench", all(s <= o for _, o in others),
                   f"ssofs {fmt(s)}, " + ", ".join(f"{p} {fmt(o)}" for p, o in others))
    s, base = g("ssofs", "rows"), g("local", "rows")
    if s and base:
        target("9: 150-byte row writes ≤ 3× local disk", "issue 15", s / base <= 3, f"{s / base:.2f}× local")
    s = g(WRITEBACK, "rows")
    if s and base:
        target("9: the same with -o writeback_cache (not the default)", "issue 15", s / base <= 3,
               f"{s / base:.2f}× local")
    first, last = g("ssofs", "rows_first_us"), g("ssofs", "rows_last_us")
    if first and last:
        target("9: cost per write flat (last MiB ≤ 1.5× first MiB)", "issue 15; 1.5× is the bench's", last / first <= 1.5,
               f"{first:.1f} → {last:.1f} µs")
    s = g("ssofs", "read_remount_gets")
    if s is not None:
        target("10: re-reading after a remount costs no GetObject", "issue 18", s == 0, f"{fmt(s)} GetObject")
    for _, title, _, key, _, higher, cfg in CURVES:
        xs = sorted(set(CFG[cfg]) | ({1, 4} if cfg == "readers" else set()))
        behind = []
        for x in xs:
            s = g("ssofs", key.format(x))
            for p in peers:
                o = g(p, key.format(x))
                if s is not None and o is not None and not (s > o if higher else s < o):
                    behind.append(f"{x}: {p}")
        if any(g("ssofs", key.format(x)) is not None for x in xs) and peers:
            target(f"curve, {title}: ahead of every peer at every point", "bench", not behind,
                   "behind at " + ", ".join(behind) if behind else "ahead everywhere")
    return t


def report(R, mounts, fs, elapsed):
    mount_names = [m.name for m in mounts]
    names = BASELINES + ["local", WRITEBACK] + mount_names
    M = {n: {k: med(v) for k, v in R[n].items() if not k.endswith("_ops")} for n in names}
    lines, table = main_table(M, mount_names)
    os.makedirs(RESULTS, exist_ok=True)
    curves = curves_section(M, mount_names + ["direct"])
    t = targets(M, R, mount_names)
    scale_lines, scale_targets = scale.section(SCALE.get("meta"), SCALE.get("mu"), CACHE_SIZE_MIB)
    t += scale_targets
    tl = [f"- {'met' if x['met'] else 'MISSED'}: {x['target']} ({x['detail']}) [{x['source']}]" for x in t]

    settings = [f"- {m.name}: `{m.settings}`" for m in mounts]
    settings.append("- direct: aws-sdk-s3 (`bench/direct.rs`), root keys; one GetObject stream; ListObjectsV2 pages "
                    "with delimiter; PutObject one at a time; multipart 16 MiB parts, 4 in flight")
    settings.append("- curl: `curl -o /dev/null` of a presigned GetObject URL (`bench-direct presign`), a fresh"
                    " connection each time")
    cfg = ", ".join(f"{k}={v}" for k, v in CFG.items())
    md = "\n".join(
        [
            "# ssofs benchmark",
            "",
            f"Run {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {os.uname().nodename} ({os.cpu_count()} CPUs), "
            f"against the devstack's S3 endpoint on 127.0.0.1; medians of {CFG['reps']} repetitions "
            f"(peak RSS and the cost curves: one run); {elapsed / 60:.1f} min in all. Config: {cfg}.",
            "",
            "Ratios are ssofs ÷ the other figure: ↑ rows want ratios above 1, ↓ rows below 1.",
            "",
            *lines,
            "",
            "## Targets",
            "",
            "From issue 8 and issue 15; those marked [bench] are the bench's own, for figures the issues set no"
            " target for.",
            "",
            *tl,
            "",
            *rows_section(M, mount_names, fs),
            "",
            *requests_section(R, BASELINES[:1] + mount_names),
            "",
            *cpu_section(M, BASELINES + mount_names),
            "",
            *curves,
            *scale_lines,
            "## Settings",
            "",
            *settings,
            "",
            "rclone's close returns before its upload (`--vfs-write-back` defaults to 5 s), so its figures 5, 6, 9"
            " and the write curve measure writing to its local cache; s3fs, mountpoint and ssofs upload before close"
            " returns.",
            "",
        ]
    )
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump({"config": CFG, "ssofs_opts": SSOFS_OPTS, "elapsed_s": elapsed, "samples": R, "medians": M,
                   "table": table, "targets": t, "settings": settings, "scale": SCALE}, f, indent=1)
    print(md)


if __name__ == "__main__":
    main()
