"""Soak tests: many boots in one process, many guests at once.

test_boot_soak: tests/soak/soak_boot boots and powers off a Linux guest
VIBEVMM_SOAK_CYCLES times (default 10; `make soak`: 100) in one process
through the library, and the open fds, threads and RSS after the last
cycle must equal those after the first (RSS those after the middle cycle,
within 1 MiB, as it settles over the first cycles; the heap in use
may grow by 8 KiB at most). The cloud kernel does
VIBEVMM_SOAK_CLOUD_CYCLES (default 2; `make soak`: 10).

test_multi_guest_soak: 8 vibevmm processes at once (minimal kernel, 1 vCPU,
128 MiB), each with its own raw disk and a TAP on one bridge, run the guest
test soak.sh for VIBEVMM_SOAK_SECONDS (default 120; `make soak`: 600):
random data written to the disk and read back, TCP both ways with a host
peer, every byte's sha256 checked on both ends.

The knobs are read here: inside the test host, set them on the command
(tests/soak/run.sh does, for `make soak`).
"""
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ASSETS, BASE_CMDLINE, BINDIR, KERNELS, ROOT, private_netns

SOAK_BIN = pathlib.Path(os.environ.get("VIBEVMM_SOAK_BIN", ROOT / "build/tests/soak/soak_boot"))
CYCLES = int(os.environ.get("VIBEVMM_SOAK_CYCLES", "10"))
CLOUD_CYCLES = int(os.environ.get("VIBEVMM_SOAK_CLOUD_CYCLES", "2"))
SECONDS = int(os.environ.get("VIBEVMM_SOAK_SECONDS", "120"))
GUESTS = 8
RSS_SLACK_KIB = 1024
HEAP_SLACK_KIB = 8

SUMMARY = re.compile(
    r"^soak: summary: (?P<passed>\d+)/(?P<cycles>\d+) cycles passed in (?P<secs>[\d.]+) s; "
    r"after the first / last cycle: fds (?P<fds1>\d+) / (?P<fds2>\d+), "
    r"threads (?P<thr1>\d+) / (?P<thr2>\d+), rss (?P<rss1>\d+) / (?P<rss2>\d+) KiB .*"
    r"heap (?P<heap1>\d+) / (?P<heap2>\d+) KiB", re.M)


def vmm_complaints(text):
    """vibevmm's error and warning lines."""
    return [line for line in text.splitlines()
            if re.match(r"vibevmm: (error|warning):", line)]


@pytest.fixture
def progress(request):
    """progress(line): shown at once, even while pytest captures output: a
    long test says it is alive (tests/e2e/run.sh ends a test-host session
    that prints nothing for 300 s)."""
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    cap = request.config.pluginmanager.getplugin("capturemanager")

    def say(line):
        if tr is None or cap is None:
            print(line, flush=True)
            return
        with cap.global_and_fixture_disabled():
            tr.write_line(line)
            tr.flush()  # a file or pipe, not a terminal, in the test host
    return say


@pytest.mark.parametrize("kernel,cycles", [("microvm-vmlinux", CYCLES), ("cloud", CLOUD_CYCLES)])
def test_boot_soak(kernel, cycles, progress, tmp_path):
    if not SOAK_BIN.exists():
        pytest.fail(f"{SOAK_BIN} missing: run make tests")
    kfile, ifile = (ASSETS / f for f in KERNELS[kernel])
    if not kfile.exists():
        pytest.fail(f"{kfile} missing: run tests/e2e/prepare-assets.sh")
    with open(tmp_path / "stderr", "w") as err_file:
        proc = subprocess.Popen([str(SOAK_BIN), "--kernel", str(kfile), "--initrd", str(ifile),
                                 "--cmdline", BASE_CMDLINE, "--cycles", str(cycles),
                                 "--rss-slack", str(RSS_SLACK_KIB),
                                 "--heap-slack", str(HEAP_SLACK_KIB)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err_file, text=True, errors="replace")
    try:
        lines = []
        for line in proc.stdout:  # one line per cycle
            lines.append(line)
            progress(f"{kernel}: {line.rstrip()}")
        rc = proc.wait(timeout=60)
        err = (tmp_path / "stderr").read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    out = "".join(lines)
    m = SUMMARY.search(out)
    assert m, out[-3000:] + err[-3000:]
    assert rc == 0, out[-3000:] + err[-3000:]
    assert int(m["passed"]) == int(m["cycles"]) == cycles, out[-3000:]
    assert out.count("powered off in") == cycles
    assert m["fds1"] == m["fds2"], out[-3000:]
    assert m["thr1"] == m["thr2"] == "1", out[-3000:]
    assert abs(int(m["rss2"]) - int(m["rss1"])) <= RSS_SLACK_KIB, out[-3000:]
    assert int(m["heap2"]) - int(m["heap1"]) <= HEAP_SLACK_KIB, out[-3000:]
    assert not vmm_complaints(err), err[-3000:]


# ---- 8 guests at once ----

PEER_SCRIPT = r"""
import hashlib, json, os, socket, socketserver, sys, threading
host = sys.argv[1]
out_lock = threading.Lock()

def event(**kw):
    with out_lock:
        print(json.dumps(kw), flush=True)

class Tx(socketserver.StreamRequestHandler):
    # "TX NAME ITER BYTES SHA256\n" + bytes; answer "TX-OK SHA256" if they match
    def handle(self):
        self.connection.settimeout(300)
        _, name, it, size, want = self.rfile.readline(200).decode().split()
        h, n = hashlib.sha256(), 0
        while True:
            d = self.rfile.read1(1 << 16)
            if not d:
                break
            h.update(d)
            n += len(d)
        ok = n == int(size) and h.hexdigest() == want
        self.wfile.write((f"TX-OK {want}\n" if ok else f"TX-BAD {h.hexdigest()} {n}\n").encode())
        event(kind="tx", name=name, iter=int(it), bytes=n, ok=ok)

class Rx(socketserver.StreamRequestHandler):
    # "RX NAME ITER BYTES\n"; answer "SHA256\n" + that many random bytes
    def handle(self):
        self.connection.settimeout(300)
        _, name, it, size = self.rfile.readline(200).decode().split()
        data = os.urandom(int(size))
        sha = hashlib.sha256(data).hexdigest()
        self.wfile.write(sha.encode() + b"\n" + data)
        event(kind="rx", name=name, iter=int(it), bytes=len(data), sha=sha)

socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
for port, handler in ((5001, Tx), (5002, Rx)):
    srv = socketserver.ThreadingTCPServer((host, port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("READY", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def bridge_netns():
    """A private network namespace with bridge soakbr at 10.0.3.1/24 and
    TAPs soak0..soak7 on it."""
    with private_netns("vibevmm-soak") as (run, prefix):
        run("link", "add", "soakbr", "type", "bridge")
        run("addr", "add", "10.0.3.1/24", "dev", "soakbr")
        run("link", "set", "soakbr", "up")
        for i in range(GUESTS):
            run("tuntap", "add", f"soak{i}", "mode", "tap")
            run("link", "set", f"soak{i}", "master", "soakbr")
            run("link", "set", f"soak{i}", "up")
        yield prefix


def guest_cmd(i, kernel, initrd, image):
    line = (f"{BASE_CMDLINE} vibevmm.test=soak vibevmm.soak_seconds={SECONDS} "
            f"vibevmm.soak_name=g{i} vibevmm.ip=10.0.3.{10 + i}/24 vibevmm.peer=10.0.3.1")
    return [str(BINDIR / "vibevmm"), "--kernel", str(kernel), "--initrd", str(initrd),
            "--cmdline", line, "--cpus", "1", "--mem", "128M", "--log", "3",
            "--disk", str(image), "--net", f"tap=soak{i},mac=52:54:00:50:00:{i:02x}"]


def start_guests(tmp_path, prefix, procs):
    """Start GUESTS vibevmm processes (appended to procs), consoles and logs
    in tmp_path/console<i> and stderr<i>; returns their disk images. Kernel
    and initrd are copied to tmp_path first: eight processes reading them
    over the test host's 9p take minutes."""
    kernel, initrd = (tmp_path / f for f in KERNELS["microvm-vmlinux"])
    for f in (kernel, initrd):
        if not (ASSETS / f.name).exists():
            pytest.fail(f"{ASSETS / f.name} missing: run tests/e2e/prepare-assets.sh")
        shutil.copyfile(ASSETS / f.name, f)
    images = []
    for i in range(GUESTS):
        img = tmp_path / f"disk{i}.img"
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        images.append(img)
        with open(tmp_path / f"console{i}", "w") as out, \
             open(tmp_path / f"stderr{i}", "w") as err:
            procs.append(subprocess.Popen([*prefix, *guest_cmd(i, kernel, initrd, img)],
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=err))
    return images


def check_guest(i, rc, console, err, peer_events, image):
    """Everything guest i must have done; returns its SOAK-SUMMARY fields."""
    tail = f"guest {i}:\n{console[-3000:]}\n{err[-2000:]}"
    assert rc == 0, tail
    assert "vibevmm: info: guest powered off" in err, tail
    assert not vmm_complaints(err), tail
    assert "VIBEVMM-INIT-OK" in console, tail
    assert "VIBEVMM-TEST-RESULT soak rc=0" in console, tail
    m = re.search(r"^SOAK-SUMMARY (.*?)\r?$", console, re.M)
    assert m, tail
    summary = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    iters = re.findall(r"^SOAK-ITER n=(\d+) disk=(\S+) tx=(\S+) rx=(\S+) rx_sha=(\S+)",
                       console, re.M)
    assert summary["failed"] == 0 and summary["iterations"] == len(iters) > 0, tail
    assert all(it[1:4] == ("ok", "ok", "ok") for it in iters), tail
    # the peer got every byte the guest sent, and sent what the guest verified
    tx = [e for e in peer_events if e["kind"] == "tx" and e["name"] == f"g{i}"]
    rx = [e for e in peer_events if e["kind"] == "rx" and e["name"] == f"g{i}"]
    assert len(tx) == len(iters) and all(e["ok"] for e in tx), (tx, tail)
    assert sorted(e["sha"] for e in rx) == sorted(it[4] for it in iters), (rx, tail)
    # what the guest last read from its disk is what the image holds
    m = re.search(r"^SOAK-DISK-SHA256=([0-9a-f]{64})", console, re.M)
    assert m and m.group(1) == hashlib.sha256(image.read_bytes()).hexdigest(), tail
    return summary


def wait_reporting(procs, tmp_path, t0, progress):
    """Wait for every guest (SECONDS + 10 min at most), saying every 30 s
    how far each got. Their exit statuses."""
    deadline = t0 + SECONDS + 600
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(min(30, max(1, deadline - time.monotonic())))
        done, booted = [], 0
        for i in range(len(procs)):
            console = (tmp_path / f"console{i}").read_text(errors="replace")
            booted += "VIBEVMM-INIT-OK" in console
            n = console.count("SOAK-ITER ")
            done.append(f"{n}" + ("!" if re.search(r"^SOAK-ITER .*BAD", console, re.M) else ""))
        progress(f"multi-guest soak: {time.monotonic() - t0:.0f} s: {booted} guests booted, "
                 f"iterations per guest {' '.join(done)} (! = one failed), "
                 f"{sum(p.poll() is not None for p in procs)} ended")
    late = [i for i, p in enumerate(procs) if p.poll() is None]
    assert not late, f"guests {late} still running {SECONDS + 600} s after the start"
    return [p.returncode for p in procs]


def test_multi_guest_soak(tmp_path, bridge_netns, progress):
    peer = subprocess.Popen([*bridge_netns, sys.executable, "-c", PEER_SCRIPT, "10.0.3.1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs = []
    t0 = time.monotonic()
    try:
        assert peer.stdout.readline().strip() == "READY"
        images = start_guests(tmp_path, bridge_netns, procs)
        rcs = wait_reporting(procs, tmp_path, t0, progress)
        wall = time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        events, _ = peer.communicate(input="", timeout=60)  # EOF on stdin ends it
    peer_events = [json.loads(line) for line in events.splitlines() if line.startswith("{")]
    totals = {}
    for i, rc in enumerate(rcs):
        s = check_guest(i, rc, (tmp_path / f"console{i}").read_text(errors="replace"),
                        (tmp_path / f"stderr{i}").read_text(errors="replace"),
                        peer_events, images[i])
        for k, v in s.items():
            totals[k] = totals.get(k, 0) + v
    progress(f"multi-guest soak: {GUESTS} guests, {wall:.0f} s wall ({SECONDS} s of traffic "
             f"each): {totals['iterations']} iterations, all verified; disk "
             f"{totals['disk_bytes'] >> 20} MiB written+read, TCP {totals['tx_bytes'] >> 20} MiB "
             f"guest->host and {totals['rx_bytes'] >> 20} MiB host->guest")
