#!/usr/bin/python3
"""Vibe-VMM benchmarks, side by side with QEMU microvm (see bench/README.md).

    bench.py run --env ENV --json OUT [--only a,b] [--reps N] [--quick|--smoke]
    bench.py report [--json OUT] [--png OUT] IN.json...
    bench.py arm64-parse --json OUT [--mode M] [--reps N] OUTPUT...
                                    (bench/arm64-inside.sh's lines -> results)

`run` measures what can be measured where it runs and writes raw samples as
JSON; `report` merges such files, prints the tables and writes the merged
JSON (and a gnuplot chart). bench/run.sh drives both; run it instead.

Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import base64
import datetime
import json
import os
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("boot", "startup", "exits", "memory", "disk", "net", "density", "snapshot",
           "transport")

WHERE = {
    "direct": "directly on hardware KVM",
    "testhost": "inside the emulated AMD-V test host (nested, TCG: absolute "
                "numbers are slow, ratios are what matter)",
    "pvm": "directly on this machine's PVM KVM (software KVM without hardware "
           "virtualization: KVM emulates every guest instruction; only exit "
           "costs are measured here)",
    "testhost-arm64": "inside the emulated arm64 test host (qemu-system-aarch64 TCG, "
                      "EL2, GICv3; its KVM runs the guests nested: absolute numbers "
                      "are slow, ratios are what matter)",
}

KERNELS = {
    "microvm-vmlinux": ("microvm.vmlinux", "initrd-none.cpio.gz"),
    "microvm-bzimage": ("microvm.bzImage", "initrd-none.cpio.gz"),
    "cloud": ("cloud.bzImage", "initrd-cloud.cpio.gz"),
    "generic": ("generic.bzImage", "initrd-generic.cpio.gz"),
}
# The same command line for both VMMs. `quiet`: the console carries our
# markers, not the boot log (the kernel's "reboot: Power down" is an
# emergency-level message and still shows).
CMDLINE = "console=ttyS0 panic=-1 vibevmm.verbose=0 quiet"
QEMU_MACHINE = "microvm,x-option-roms=off,rtc=off,isa-serial=on"
INIT_MARK = "VIBEVMM-INIT-OK"
POWERDOWN_MARK = "reboot: Power down"
IDLE_MARK = "VIBEVMM-BENCH-IDLE"
MAGIC = b"VBPARAM1"

NET_NS_PREFIX = "vbench"
NET_HOST_IP = "10.213.7.1"
NET_GUEST_IP = "10.213.7.2"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------
# Processes with timestamped console lines
# ---------------------------------------------------------------------------

class Proc:
    """A VMM process. Its stdout (the guest console) is read in a select
    loop (pump) and every complete line gets the monotonic time at which it
    arrived on the pipe; process exit is seen through a pidfd and reaped with
    wait4 (exit status and peak RSS)."""

    def __init__(self, name, cmd, env=None, stdin=subprocess.DEVNULL):
        self.name = name
        self.cmd = [str(c) for c in cmd]
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(self.cmd, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env,
                                  start_new_session=True)
        self.pid = self.p.pid
        self.pidfd = os.pidfd_open(self.pid)
        self.bufs = {self.p.stdout.fileno(): bytearray(), self.p.stderr.fileno(): bytearray()}
        self.out_fd = self.p.stdout.fileno()
        self.err_fd = self.p.stderr.fileno()
        self.open_fds = set(self.bufs)
        for fd in self.open_fds:
            os.set_blocking(fd, False)
        self.partial = b""
        self.lines = []          # (t, text) of console lines
        self.first_out = None    # time of the first console byte
        self.t_exit = None
        self.rc = None
        self.maxrss_kb = None

    def fds(self):
        fds = list(self.open_fds)
        if self.t_exit is None:
            fds.append(self.pidfd)
        return fds

    def on_ready(self, fd, t):
        """Handle a readable fd; False when there was nothing to read."""
        if fd == self.pidfd:
            self._reap(t)
            return True
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            self.open_fds.discard(fd)
            return False
        if not data:
            self.open_fds.discard(fd)
            return False
        self.bufs[fd] += data
        if fd == self.out_fd:
            if self.first_out is None:
                self.first_out = t
            self.partial += data
            *done, self.partial = self.partial.split(b"\n")
            for raw in done:
                self.lines.append((t, raw.decode(errors="replace").rstrip("\r")))
        return True

    def _reap(self, t):
        _, status, ru = os.wait4(self.pid, 0)
        self.t_exit = t
        self.rc = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.rc
        self.maxrss_kb = ru.ru_maxrss
        os.close(self.pidfd)
        # what was written before the exit is still in the pipes
        for fd in list(self.open_fds):
            while fd in self.open_fds and self.on_ready(fd, t):
                pass
        self.open_fds.clear()
        if self.partial:
            self.lines.append((t, self.partial.decode(errors="replace").rstrip("\r")))
            self.partial = b""
        for f in (self.p.stdout, self.p.stderr):
            f.close()

    @property
    def done(self):
        return self.t_exit is not None

    def when(self, marker):
        """Arrival time of the first console line containing marker."""
        for t, line in self.lines:
            if marker in line:
                return t
        return None

    def line_after(self, prefix):
        for _, line in self.lines:
            i = line.find(prefix)
            if i >= 0:
                return line[i + len(prefix):].strip()
        return None

    @property
    def console(self):
        return bytes(self.bufs[self.out_fd]).decode(errors="replace")

    @property
    def stderr(self):
        return bytes(self.bufs[self.err_fd]).decode(errors="replace")

    def tail(self, n=1500):
        return f"console: ...{self.console[-n:]!r}\nstderr: ...{self.stderr[-n:]!r}"

    def signal(self, sig):
        if not self.done:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after `grace` seconds; waits for the exit."""
        if self.done:
            return
        self.signal(signal.SIGTERM)
        if not pump([self], lambda: self.done, grace):
            self.signal(signal.SIGKILL)
            pump([self], lambda: self.done, 30)


def pump(procs, until, timeout):
    """Read all the processes' output until until() is true (returns True)
    or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    beat = time.monotonic() + 60
    while not until():
        if time.monotonic() > beat:  # a sign of life in long waits
            beat = time.monotonic() + 60
            busy = [p for p in procs if not p.done]
            log(f"waiting for {len(busy)} process(es): "
                + ", ".join(f"{p.name} {time.monotonic() - p.t0:.0f}s" for p in busy[:4]))
        fds = {}
        for p in procs:
            for fd in p.fds():
                fds[fd] = p
        if not fds:
            return until()
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select(list(fds), [], [], min(left, 1.0))
        t = time.monotonic()
        # console data before the exit notification of the same round
        ready.sort(key=lambda fd: fd == fds[fd].pidfd)
        for fd in ready:
            p = fds[fd]
            if fd in p.fds():
                p.on_ready(fd, t)
    return True


# ---------------------------------------------------------------------------
# The environment: binaries, guest files, staging
# ---------------------------------------------------------------------------

class Env:
    def __init__(self, args):
        self.args = args
        self.kind = args.env
        self.vibevmm = Path(args.vibevmm)
        self.qemu = shutil.which(args.qemu) or args.qemu
        self.assets = Path(args.assets)
        self.bb = Path(args.build)
        self.run_env = dict(os.environ)
        self.qemu_cpu = "host"
        self.qemu_extra = []
        self.scratch = None
        self.qemu_version = None
        self.stage_dir = None
        self.netns_made = []
        self.mounted = None

    # -- staging: inside the test host /usr and the repository are 9p mounts
    #    of the outer machine; binaries, their libraries and the guest files
    #    are copied to tmpfs so that neither VMM pays 9p reads per start.
    def stage(self, kernels):
        d = Path(tempfile.mkdtemp(prefix="vbench-stage.", dir="/tmp"))
        self.stage_dir = d
        for sub in ("bin", "lib", "share", "assets"):
            (d / sub).mkdir()
        libs = set()
        for prog in (self.vibevmm, Path(self.qemu)):
            if not prog.exists():
                continue
            shutil.copy2(prog, d / "bin" / prog.name)
            # what ldd prints (ldd itself is a bash script: no bash in the test host)
            out = subprocess.run([str(prog)], capture_output=True, text=True,
                                 env={"LD_TRACE_LOADED_OBJECTS": "1"}).stdout
            for m in re.finditer(r"=>\s+(/\S+)", out):
                libs.add(m.group(1))
        for lib in libs:
            shutil.copy2(lib, d / "lib" / Path(lib).name)
        fw = Path("/usr/share/qemu/bios-microvm.bin")
        if fw.exists():
            shutil.copy2(fw, d / "share" / fw.name)
            self.qemu_extra = ["-L", str(d / "share")]
        self.vibevmm = d / "bin" / self.vibevmm.name
        if (d / "bin" / Path(self.qemu).name).exists():
            self.qemu = str(d / "bin" / Path(self.qemu).name)
        self.run_env["LD_LIBRARY_PATH"] = str(d / "lib")
        files = set()
        for k in kernels:
            files.update(KERNELS[k])
        for f in sorted(files):
            if (self.assets / f).exists():
                shutil.copy2(self.assets / f, d / "assets" / f)
        for f in ("initrd-bench.cpio", "exits64.bin", "exits-pvh.elf", "exitbench"):
            if (self.bb / f).exists():
                shutil.copy2(self.bb / f, d / "assets" / f)
        self.assets = d / "assets"
        self.bb = d / "assets"
        log(f"staged binaries, {len(libs)} libraries and guest files in {d} (tmpfs)")

    def cleanup(self):
        if self.mounted:
            subprocess.run(["umount", self.mounted], capture_output=True)
        for ns in self.netns_made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.stage_dir:
            shutil.rmtree(self.stage_dir, ignore_errors=True)

    def kernel(self, name):
        k, i = KERNELS[name]
        return self.assets / k, self.assets / i

    def have_qemu(self):
        if not shutil.which(self.qemu) and not Path(self.qemu).exists():
            return False
        if self.qemu_version is None:
            r = subprocess.run([self.qemu, "-version"], capture_output=True, text=True,
                               env=self.run_env)
            self.qemu_version = r.stdout.splitlines()[0] if r.returncode == 0 else ""
        return bool(self.qemu_version)

    def vibevmm_linux(self, kernel, initrd, cmdline, cpus, mem_mb, extra=()):
        return [self.vibevmm, "--kernel", kernel, "--initrd", initrd, "--cmdline", cmdline,
                "--cpus", str(cpus), "--mem", f"{mem_mb}M", *extra]

    def qemu_base(self, cpus, mem_mb):
        return [self.qemu, "-M", QEMU_MACHINE, "-enable-kvm", "-cpu", self.qemu_cpu,
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                *self.qemu_extra, "-m", f"{mem_mb}M", "-smp", str(cpus), "-serial", "stdio"]

    def qemu_linux(self, kernel, initrd, cmdline, cpus, mem_mb, extra=()):
        return [*self.qemu_base(cpus, mem_mb), "-kernel", kernel, "-initrd", initrd,
                "-append", cmdline, *extra]

    def linux_cmd(self, vmm, kernel_name, cpus, mem_mb, cmd_extra="", vib_extra=(),
                  qemu_extra=(), initrd=None):
        k, i = self.kernel(kernel_name)
        if initrd:
            i = initrd
        line = CMDLINE + (" " + cmd_extra if cmd_extra else "")
        if vmm == "vibevmm":
            return self.vibevmm_linux(k, i, line, cpus, mem_mb, vib_extra)
        return self.qemu_linux(k, i, line, cpus, mem_mb, qemu_extra)

    def spawn(self, name, cmd, prefix=()):
        return Proc(name, [*prefix, *cmd], env=self.run_env)


def patched_guest(src, dst, hello=0, pio_n=0, mmio_n=0):
    data = bytearray(Path(src).read_bytes())
    i = data.find(MAGIC)
    if i < 0:
        raise RuntimeError(f"{src}: no parameter block")
    data[i + 8:i + 20] = struct.pack("<III", hello, pio_n, mmio_n)
    Path(dst).write_bytes(data)


def shell_cmd(text):
    return "vibevmm.cmd=" + base64.b64encode(text.encode()).decode()


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

class Results:
    def __init__(self, env):
        self.env = env
        self.rows = []
        self.skipped = []
        self.errors = []
        self.notes = []
        self.extra = {}

    def row(self, bench, case, metric, unit, better, a, b, table="main", note="",
            a2=None, b2=None):
        """a: vibevmm, b: QEMU; a2, b2 (disk, net): each with its faster
        setting (vibevmm-best, qemu-best)."""
        def clean(xs):
            return [x for x in xs if x is not None]
        r = {"table": table, "bench": bench, "case": case, "metric": metric, "unit": unit,
             "better": better, "a": clean(a), "b": clean(b), "note": note}
        if a2 is not None or b2 is not None:
            r["a2"], r["b2"] = clean(a2 or []), clean(b2 or [])
        self.rows.append(r)

    def skip(self, bench, reason):
        log(f"{bench}: skipped: {reason}")
        self.skipped.append({"bench": bench, "reason": reason})

    def error(self, bench, what):
        log(f"{bench}: ERROR: {what}")
        self.errors.append({"bench": bench, "error": what})


def alternate(rep):
    return ("vibevmm", "qemu") if rep % 2 == 0 else ("qemu", "vibevmm")


def vmms(env):
    return ("vibevmm", "qemu") if env.have_qemu() else ("vibevmm",)


# ---------------------------------------------------------------------------
# boot: start -> /init marker, guest uptime, teardown
# ---------------------------------------------------------------------------

def parse_exit_stats(text):
    """vibevmm --stats' histogram (stderr, at the end): {reason: exits},
    with the io/mmio exits by device as {"device NAME": exits}; None when
    there is none. Rows are 'LABEL TOTAL PER-VCPU...', right-aligned."""
    i = text.find("exit statistics:")
    if i < 0:
        return None
    out, ncpu, prefix = {}, None, ""
    for line in text[i:].splitlines()[1:]:
        words = line.split()
        if not line.startswith("  ") or not words:
            break
        if words[0] == "exits" and "total" in words:
            ncpu = len(words) - words.index("total") - 1
            continue
        if "exits by device" in line:
            prefix = "device "
            continue
        if ncpu is None or len(words) < ncpu + 2 or \
                not all(w.isdigit() for w in words[-ncpu - 1:]):
            continue
        out[prefix + " ".join(words[:-ncpu - 1])] = int(words[-ncpu - 1])
    return out


def linux_boot_once(env, vmm, kernel, cpus, mem_mb, timeout):
    # --stats only prints the counters vibevmm keeps anyway, after the exit
    p = env.spawn(vmm, env.linux_cmd(vmm, kernel, cpus, mem_mb, vib_extra=["--stats"]))
    if not pump([p], lambda: p.done, timeout):
        p.stop(5)
        return None, f"{vmm} {kernel}: no poweroff within {timeout}s\n{p.tail()}"
    t_init = p.when(INIT_MARK)
    # kernel messages of other vCPUs can land in the middle of a line
    up = re.search(r"VIBEVMM-UPTIME (\d+\.\d+)", p.console)
    t_pd = p.when(POWERDOWN_MARK)
    if p.rc != 0 or t_init is None or up is None:
        return None, (f"{vmm} {kernel}: exit {p.rc}, marker {'seen' if t_init else 'missing'}, "
                      f"uptime {'seen' if up else 'missing'}\n{p.tail()}")
    wall = t_init - p.t0
    uptime = float(up.group(1))
    return {
        "wall": wall * 1000, "uptime": uptime * 1000, "overhead": (wall - uptime) * 1000,
        "teardown": (p.t_exit - t_pd) * 1000 if t_pd else None,
        "life": (p.t_exit - p.t0) * 1000, "maxrss": p.maxrss_kb / 1024,
        "exits": parse_exit_stats(p.stderr) if vmm == "vibevmm" else None,
    }, None


def bench_boot(env, res, opts):
    cases = opts.boot_cases
    timeout = opts.boot_timeout
    for kernel, cpus in cases:
        case = f"{kernel}, {cpus} vCPU{'s' if cpus > 1 else ''}, 256 MiB"
        samples = {v: [] for v in ("vibevmm", "qemu")}
        reps = opts.reps
        log(f"boot: {case}: {reps} runs per VMM")

        def col(vmm, key):
            return [s[key] for s in samples[vmm] if s.get(key) is not None]

        def emit():
            """(Re)write this case's rows and save: a session killed later
            (a hung test host) keeps the runs done so far."""
            res.rows[:] = [r for r in res.rows if r["case"] != case]
            res.row("boot", case, "start -> /init marker (wall)", "ms", "lower",
                    col("vibevmm", "wall"), col("qemu", "wall"))
            res.row("boot", case, "guest uptime at the marker", "ms", "lower",
                    col("vibevmm", "uptime"), col("qemu", "uptime"))
            res.row("boot", case, "VMM overhead (wall - guest uptime)", "ms", "lower",
                    col("vibevmm", "overhead"), col("qemu", "overhead"))
            res.row("teardown", case, "'reboot: Power down' line -> process exit", "ms",
                    "lower", col("vibevmm", "teardown"), col("qemu", "teardown"))
            res.row("memory", case, "peak RSS of the VMM process (VmHWM)", "MiB", "lower",
                    col("vibevmm", "maxrss"), col("qemu", "maxrss"))
            # vibevmm's exits per boot by reason (--stats), a row per reason
            stats = [s["exits"] for s in samples["vibevmm"] if s.get("exits") is not None]
            names = sorted({k for st in stats for k in st if not k.startswith("device ")})
            names += sorted({k for st in stats for k in st if k.startswith("device ")})
            if stats:
                res.row("exits", case, "all exits", "exits", "lower",
                        [sum(v for k, v in st.items() if not k.startswith("device "))
                         for st in stats], [], table="exits-per-boot")
            for k in names:
                res.row("exits", case, k, "exits", "lower", [st.get(k, 0) for st in stats], [],
                        table="exits-per-boot")
            opts.save()

        for rep in range(reps):
            for vmm in alternate(rep):
                if vmm not in vmms(env):
                    continue
                r, err = linux_boot_once(env, vmm, kernel, cpus, 256, timeout)
                if r is None:  # one retry: nested TCG guests flake now and then
                    res.notes.append(f"boot {case} {vmm}: a run failed and was retried")
                    log(f"boot: {vmm} failed, retrying once: {err.splitlines()[0]}")
                    r, err = linux_boot_once(env, vmm, kernel, cpus, 256, timeout)
                if r is None:
                    res.error("boot", err)
                    continue
                samples[vmm].append(r)
                log(f"boot: {case} {vmm} run {rep + 1}: /init at {r['wall']:.0f} ms "
                    f"(guest uptime {r['uptime']:.0f} ms), teardown {r['teardown'] or 0:.0f} ms")
            emit()
        emit()


# ---------------------------------------------------------------------------
# transport: vibevmm's virtio-pci against its virtio-mmio (issue 13: mmio
# stays the default until this says otherwise)
# ---------------------------------------------------------------------------

TRANSPORTS = ("pci", "mmio")
TRANSPORT_JOBS = ("qd1", "qd32")  # small requests: the transport's cost shows


def transport_once(env, opts, transport, img, initrd, script):
    cmd = env.linux_cmd("vibevmm", IO_GUEST, 1, IO_MEM_MB, cmd_extra=shell_cmd(script),
                        initrd=initrd, vib_extra=["--disk", f"path={img}",
                                                  "--transport", transport])
    p = env.spawn("vibevmm", cmd)
    if not pump([p], lambda: p.done, opts.io_timeout):
        p.stop(5)
        return None, f"{transport}: no poweroff within {opts.io_timeout}s\n{p.tail()}"
    t_init = p.when(INIT_MARK)
    if p.rc != 0 or t_init is None:
        return None, f"{transport}: exit {p.rc}, /init marker {'seen' if t_init else 'missing'}\n{p.tail()}"
    try:
        got = {n: fio_value(guest_json(p, "BENCH-FIO", n), n) for n in TRANSPORT_JOBS}
    except (KeyError, ValueError, IndexError) as e:
        return None, f"{transport}: incomplete results ({e})\n{p.tail()}"
    got["wall"] = (t_init - p.t0) * 1000
    return got, None


def bench_transport(env, res, opts, tmp):
    initrd = env.bb / "initrd-bench.cpio"
    if not initrd.exists():
        res.skip("transport", f"{initrd} missing (bench/run.sh builds it)")
        return
    mb = min(opts.disk_mb, 256)
    img = tmp / "transport.img"
    with open(img, "wb") as f:
        for _ in range(mb):
            f.write(b"\1" * (1 << 20))
    script = disk_script(mb, opts.randread_secs, TRANSPORT_JOBS)
    samples = {t: {k: [] for k in ("wall", *TRANSPORT_JOBS)} for t in TRANSPORTS}
    log(f"transport: {opts.io_reps} runs per transport")
    for rep in range(opts.io_reps):
        for t in (TRANSPORTS if rep % 2 == 0 else TRANSPORTS[::-1]):
            got, err = transport_once(env, opts, t, img, initrd, script)
            if got is None:
                res.error("transport", err)
                continue
            for k, v in got.items():
                samples[t][k].append(v)
            log(f"transport: run {rep + 1} {t}: /init at {got['wall']:.0f} ms, "
                + ", ".join(f"{n} {got[n]:.0f} IOPS" for n in TRANSPORT_JOBS))
    img.unlink(missing_ok=True)
    case = f"cloud kernel, 1 vCPU, a {mb} MiB disk (host page cache)"
    res.row("transport", case, "start -> /init marker (wall)", "ms", "lower",
            samples["pci"]["wall"], samples["mmio"]["wall"], table="transport")
    for name, _, metric, unit in DISK_JOBS:
        if name in TRANSPORT_JOBS:
            res.row("transport", case, metric.format(secs=opts.randread_secs), unit, "higher",
                    samples["pci"][name], samples["mmio"][name], table="transport")



# ---------------------------------------------------------------------------
# startup: process start -> first guest instruction -> exit
# ---------------------------------------------------------------------------

def tiny_guest_cmd(env, vmm, image, mem_mb=256):
    if vmm == "vibevmm":
        return [env.vibevmm, "--binary", image, "--mem", f"{mem_mb}M"]
    return [*env.qemu_base(1, mem_mb), "-kernel", image,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=1"]


def tiny_run(env, vmm, image, timeout=120):
    """Run a benchmark guest; (start->first console byte, first byte->exit,
    lifetime) in ms, or an error."""
    p = env.spawn(vmm, tiny_guest_cmd(env, vmm, image))
    if not pump([p], lambda: p.done, timeout):
        p.stop(5)
        return None, f"{vmm}: tiny guest did not end within {timeout}s\n{p.tail()}"
    ok_rc = 0 if vmm == "vibevmm" else 1  # isa-debug-exit: (0 << 1) | 1
    if p.rc != ok_rc:
        return None, f"{vmm}: tiny guest: exit status {p.rc}, expected {ok_rc}\n{p.tail()}"
    first = p.first_out
    return {
        "first": (first - p.t0) * 1000 if first else None,
        "teardown": (p.t_exit - first) * 1000 if first else None,
        "life": (p.t_exit - p.t0) * 1000,
    }, None


def guest_images(env, tmp, name, hello=0, pio_n=0, mmio_n=0):
    b = tmp / f"{name}.bin"
    e = tmp / f"{name}.elf"
    patched_guest(env.bb / "exits64.bin", b, hello, pio_n, mmio_n)
    patched_guest(env.bb / "exits-pvh.elf", e, hello, pio_n, mmio_n)
    return {"vibevmm": b, "qemu": e}


def bench_startup(env, res, opts, tmp):
    img = guest_images(env, tmp, "hello", hello=ord("!"))
    samples = {v: [] for v in ("vibevmm", "qemu")}
    log(f"startup: {opts.startup_reps} runs per VMM")
    for rep in range(opts.startup_reps):
        for vmm in alternate(rep):
            if vmm not in vmms(env):
                continue
            r, err = tiny_run(env, vmm, img[vmm])
            if r is None:
                res.error("startup", err)
                continue
            samples[vmm].append(r)
    case = "tiny guest: 1 console byte, then the exit port"
    for key, metric in (("first", "process start -> first guest output"),
                        ("teardown", "guest exit request -> process exit"),
                        ("life", "whole process lifetime")):
        res.row("startup", case, metric, "ms", "lower",
                [s[key] for s in samples["vibevmm"] if s[key] is not None],
                [s[key] for s in samples["qemu"] if s[key] is not None])


# ---------------------------------------------------------------------------
# exits: ns per PIO / MMIO exit
# ---------------------------------------------------------------------------

def exitbench(env, mode, n, timeout):
    try:
        r = subprocess.run([env.bb / "exitbench", mode, env.bb / "exits64.bin", str(n)],
                           capture_output=True, text=True, timeout=timeout, env=env.run_env)
    except subprocess.TimeoutExpired:
        return None, f"exitbench {mode}: did not end within {timeout}s"
    if r.returncode != 0:
        return None, f"exitbench {mode}: exit {r.returncode}: {r.stderr.strip()[-800:]}"
    out = {}
    for m in re.finditer(r"kind=(\w+) .*ns_per_exit=([\d.]+)", r.stdout):
        out[m.group(1)] = float(m.group(2))
    return out, None


def bench_exits(env, res, opts, tmp):
    n = opts.exits_n
    floor = {"lib": {"pio": [], "mmio": []}, "bare": {"pio": [], "mmio": []}}
    log(f"exits: libvibevmm vs bare KVM_RUN loop, {n} exits of each kind, {opts.reps} runs")
    for rep in range(opts.reps):
        for mode in (("lib", "bare") if rep % 2 == 0 else ("bare", "lib")):
            r, err = exitbench(env, mode, n, opts.run_timeout)
            if r is None:
                res.error("exits", err)
                continue
            for k in ("pio", "mmio"):
                if k in r:
                    floor[mode][k].append(r[k])
    for k, what in (("pio", "port-I/O write"), ("mmio", "MMIO write")):
        res.row("exits", f"{what}, null device", "ns per exit (in-process timing)", "ns",
                "lower", floor["lib"][k], floor["bare"][k], table="floor")

    # Whole VMM processes: T(N exits) - T(0 exits), divided by N.
    nq = opts.exits_n_process
    imgs = {"none": guest_images(env, tmp, "x0"),
            "pio": guest_images(env, tmp, "xpio", pio_n=nq),
            "mmio": guest_images(env, tmp, "xmmio", mmio_n=nq)}
    diff = {v: {"pio": [], "mmio": []} for v in ("vibevmm", "qemu")}
    log(f"exits: vibevmm and QEMU processes, {nq} exits of each kind, {opts.reps} runs")
    for rep in range(opts.reps):
        for vmm in alternate(rep):
            if vmm not in vmms(env):
                continue
            life = {}
            for kind in ("none", "pio", "mmio"):
                r, err = tiny_run(env, vmm, imgs[kind][vmm], timeout=opts.run_timeout)
                if r is None:
                    res.error("exits", err)
                    break
                life[kind] = r["life"]
            else:
                for k in ("pio", "mmio"):
                    diff[vmm][k].append((life[k] - life["none"]) * 1e6 / nq)
    for k, what in (("pio", "port-I/O write"), ("mmio", "MMIO write")):
        res.row("exits", f"{what} to an unclaimed address",
                "ns per exit ((T(N) - T(0)) / N, whole process)", "ns", "lower",
                diff["vibevmm"][k], diff["qemu"][k])


# ---------------------------------------------------------------------------
# memory: RSS at idle after boot, minus the guest RAM it touched
# ---------------------------------------------------------------------------

def smaps_split(pid, mem_bytes):
    """(total Rss, Rss of the guest-RAM mapping, VmHWM) in KiB. The guest RAM
    is the anonymous mapping of (about) the guest memory size."""
    total = 0
    best = None
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                path = parts[5] if len(parts) > 5 else ""
                cur = {"size": hi - lo, "anon": path == "" or path.startswith("[anon"), "rss": 0}
                continue
            if line.startswith("Rss:") and cur is not None:
                kb = int(line.split()[1])
                total += kb
                cur["rss"] = kb
                if cur["anon"] and mem_bytes <= cur["size"] <= mem_bytes + (8 << 20):
                    if best is None or kb > best:
                        best = kb
    hwm = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return total, best, hwm


def bench_memory(env, res, opts):
    kernel, mem_mb = opts.memory_kernel, 256
    idle = shell_cmd(f"echo {IDLE_MARK}; exec sleep 100000")
    samples = {v: [] for v in ("vibevmm", "qemu")}
    log(f"memory: {kernel}, {mem_mb} MiB, {opts.memory_reps} runs per VMM")
    for rep in range(opts.memory_reps):
        for vmm in alternate(rep):
            if vmm not in vmms(env):
                continue
            p = env.spawn(vmm, env.linux_cmd(vmm, kernel, 1, mem_mb, cmd_extra=idle))
            try:
                if not pump([p], lambda: p.when(IDLE_MARK) or p.done, opts.boot_timeout) \
                        or p.done:
                    res.error("memory", f"{vmm}: guest never went idle\n{p.tail()}")
                    continue
                pump([p], lambda: p.done, 2.0)  # settle
                total, ram, hwm = smaps_split(p.pid, mem_mb << 20)
                if ram is None:
                    res.error("memory", f"{vmm}: no guest-RAM mapping of {mem_mb} MiB found")
                    continue
                samples[vmm].append({"rss": total / 1024, "ram": ram / 1024,
                                     "vmm": (total - ram) / 1024, "hwm": hwm / 1024})
            finally:
                p.stop()
    case = f"{kernel}, 1 vCPU, {mem_mb} MiB, idle after boot"

    def col(vmm, key):
        return [s[key] for s in samples[vmm]]
    res.row("memory", case, "VMM RSS without guest RAM (Rss - guest-RAM Rss)", "MiB", "lower",
            col("vibevmm", "vmm"), col("qemu", "vmm"))
    res.row("memory", case, "guest RAM touched (Rss of the guest-RAM mapping)", "MiB", "lower",
            col("vibevmm", "ram"), col("qemu", "ram"))
    res.row("memory", case, "total RSS at idle", "MiB", "lower",
            col("vibevmm", "rss"), col("qemu", "rss"))
    res.row("memory", case, "peak RSS (VmHWM) at idle", "MiB", "lower",
            col("vibevmm", "hwm"), col("qemu", "hwm"))


# ---------------------------------------------------------------------------
# disk and network (need virtio-blk / virtio-net in vibevmm)
# ---------------------------------------------------------------------------

def vibevmm_lacks(env, args):
    """None when vibevmm accepts the option, else the reason it gives."""
    r = subprocess.run([env.vibevmm, *args, "--kernel", "/nonexistent-vbench-kernel"],
                       capture_output=True, text=True, env=env.run_env, timeout=60)
    for line in (r.stderr + r.stdout).splitlines():
        if "not implemented" in line or "unrecognized option" in line or "unknown option" in line:
            return line.strip()
    return None


def io_feature_check(env, bench, tmp):
    if bench == "disk":
        f = tmp / "probe.img"
        f.write_bytes(b"\0" * 4096)
        why = vibevmm_lacks(env, ["--disk", str(f)])
    else:
        why = vibevmm_lacks(env, ["--net", "tap=vbenchprobe0"])
    return why


def mount_scratch(dev):
    """Mount the test host's ext4 scratch disk (bench/run.sh attaches it);
    returns the mount point or None."""
    for mod in ("virtio_blk", "ext4"):
        subprocess.run(["modprobe", mod], capture_output=True)
    for _ in range(50):
        if Path(dev).exists():
            break
        time.sleep(0.1)
    d = Path("/tmp/vbench-scratch")
    d.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "ext4", dev, str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"cannot mount {dev}: {r.stderr.strip()}")
        return None
    return str(d)


def drop_caches():
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def parse_kv(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


# The disk and net runs: vibevmm and QEMU with their defaults, then each
# with its faster setting ("-best": vibevmm cache=none / vhost=on, QEMU
# aio=io_uring with an iothread / vhost=on), alternating the order by round.
IO_GUEST = "cloud"     # fio needs SysV IPC, which the minimal kernel lacks
IO_MEM_MB = 512        # the tools' ~80 MB of libraries unpack into RAM
IO_VMMS = ("vibevmm", "qemu", "vibevmm-best", "qemu-best")


def io_order(rep):
    base = alternate(rep)
    return base + tuple(f"{v}-best" for v in base)


def io_vmm_wanted(env, opts, bench, vmm):
    base = vmm.split("-")[0]
    if opts.smoke and vmm not in SMOKE_IO[bench]:
        return False
    return base in vmms(env) and base not in opts.io_skip_vmm


# --smoke boots two guests per benchmark, not four: every command line once
SMOKE_IO = {"disk": ("vibevmm", "qemu-best"), "net": ("vibevmm-best", "qemu")}


def guest_json(p, tag, name):
    """The JSON a guest printed as 'TAG NAME rc=RC {...}' (whitespace
    stripped: one console line), or raise KeyError saying why not."""
    for _, line in p.lines:
        m = re.search(rf"{tag} {name} rc=(\d+) (.*)", line)
        if m:
            if m.group(1) != "0":
                raise KeyError(f"{name}: rc={m.group(1)}")
            return json.loads(m.group(2))
    raise KeyError(f"{name}: no {tag} line")


def disk_args(vmm, img, opts):
    """(vibevmm args, QEMU args) of one disk variant."""
    if vmm == "vibevmm":
        return ["--disk", f"path={img}" + (f",{opts.disk_opts}" if opts.disk_opts else "")], []
    if vmm == "vibevmm-best":
        return ["--disk", f"path={img},cache=none"], []
    drive = f"file={img},format=raw,if=none,id=d0,cache=none"
    if vmm == "qemu":
        return [], ["-drive", drive, "-device", "virtio-blk-device,drive=d0"]
    return [], ["-object", "iothread,id=io0", "-drive", drive + ",aio=io_uring",
                "-device", "virtio-blk-device,drive=d0,iothread=io0"]


DISK_JOBS = (  # name, fio arguments (after the common ones), metric, unit
    ("qd1", "--rw=randread --bs=4k --iodepth=1 --time_based --runtime={secs} "
     "--norandommap --randrepeat=0", "4 KiB random read, QD1, {secs} s", "IOPS"),
    ("qd32", "--rw=randread --bs=4k --iodepth=32 --time_based --runtime={secs} "
     "--norandommap --randrepeat=0", "4 KiB random read, QD32, {secs} s", "IOPS"),
    ("seqread", "--rw=read --bs=1M --iodepth=1 --size={mb}m",
     "sequential read, 1 MiB blocks, QD1", "MiB/s"),
    ("seqwrite", "--rw=write --bs=1M --iodepth=1 --size={mb}m --end_fsync=1",
     "sequential write, 1 MiB blocks, QD1, fsync at the end", "MiB/s"),
)


def fio_value(d, name):
    j = d["jobs"][0]
    if j.get("error"):
        raise KeyError(f"{name}: fio error {j['error']}")
    if name in ("qd1", "qd32"):
        return float(j["read"]["iops"])
    side = j["write"] if name == "seqwrite" else j["read"]
    return side["bw_bytes"] / (1 << 20)


def disk_script(mb, secs, names=None):
    # random reads first, on a cold host cache (a VMM that reads through the
    # host page cache would otherwise serve them from the sequential pass)
    lines = ["f() { n=$1; shift; fio --name=$n --filename=/dev/vda --direct=1 --ioengine=libaio "
             "--thread --output-format=json \"$@\" >/tmp/fio.json 2>/tmp/fio.err; rc=$?; "
             "echo \"BENCH-FIO $n rc=$rc $(tr -d ' \\n\\t' </tmp/fio.json)\"; "
             "[ $rc = 0 ] || cat /tmp/fio.err; }"]
    for name, args, _, _ in DISK_JOBS:
        if names is None or name in names:
            lines.append(f"f {name} " + args.format(secs=secs, mb=mb))
    return "\n".join(lines) + "\n"


def bench_disk(env, res, opts, tmp):
    mb = opts.disk_mb
    if env.scratch:
        img = Path(env.scratch) / "vbench-disk.img"
    elif env.kind == "testhost":
        # /tmp is a tmpfs there: no O_DIRECT (QEMU's cache=none needs it)
        res.skip("disk", "no scratch disk in the test host (bench/run.sh attaches one)")
        return
    else:
        img = ROOT / "build/bench/vbench-disk.img"
    initrd = env.bb / "initrd-bench.cpio"
    if not initrd.exists():
        res.skip("disk", f"{initrd} missing (bench/run.sh builds it)")
        return
    log(f"disk: writing a {mb} MiB raw image at {img}")
    with open(img, "wb") as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(mb):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    secs = opts.randread_secs
    script = disk_script(mb, secs)
    if not drop_caches():
        res.notes.append("disk: cannot drop the page cache here (not root?)")
    samples = {v: {n: [] for n, *_ in DISK_JOBS} for v in IO_VMMS}
    log(f"disk: {opts.io_reps} runs per VMM and setting")
    for rep in range(opts.io_reps):
        for vmm in io_order(rep):
            if not io_vmm_wanted(env, opts, "disk", vmm):
                continue
            drop_caches()
            vib, qemu = disk_args(vmm, img, opts)
            cmd = env.linux_cmd(vmm.split("-")[0], IO_GUEST, 1, IO_MEM_MB,
                                cmd_extra=shell_cmd(script), initrd=initrd,
                                vib_extra=vib, qemu_extra=qemu)
            p = env.spawn(vmm, cmd)
            if not pump([p], lambda: p.done, opts.io_timeout):
                p.stop(5)
                res.error("disk", f"{vmm}: no poweroff within {opts.io_timeout}s\n{p.tail()}")
                continue
            try:
                got = {n: fio_value(guest_json(p, "BENCH-FIO", n), n) for n, *_ in DISK_JOBS}
            except (KeyError, ValueError, IndexError) as e:
                res.error("disk", f"{vmm}: incomplete results ({e})\n{p.tail()}")
                continue
            for n, v in got.items():
                samples[vmm][n].append(v)
            log(f"disk: run {rep + 1} {vmm}: " + ", ".join(f"{n} {v:.0f}" for n, v in got.items()))
    img.unlink(missing_ok=True)
    case = f"{mb} MiB raw image, fio O_DIRECT libaio in the guest, cloud kernel"
    for name, _, metric, unit in DISK_JOBS:
        s = {v: samples[v][name] for v in IO_VMMS}
        res.row("disk", case, metric.format(secs=secs), unit, "higher", s["vibevmm"], s["qemu"],
                a2=s["vibevmm-best"], b2=s["qemu-best"])



def net_args(vmm, tap):
    vhost = ",vhost=on" if vmm.endswith("-best") else ""
    if vmm.startswith("vibevmm"):
        return ["--net", f"tap={tap}{vhost}"], []
    return [], ["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no{vhost}",
                "-device", "virtio-net-device,netdev=n0"]


def net_setup(res, ns, tap):
    setup = [["ip", "netns", "add", ns],
             ["ip", "-n", ns, "link", "set", "lo", "up"],
             ["ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"],
             ["ip", "-n", ns, "addr", "add", f"{NET_HOST_IP}/24", "dev", tap],
             ["ip", "-n", ns, "link", "set", tap, "up"]]
    for c in setup:
        r = subprocess.run(c, capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            res.skip("net", f"cannot set up the network namespace: {' '.join(c)}: "
                     f"{r.stderr.strip()}")
            return False
    return True


def net_script(secs):
    return (f"ip addr add {NET_GUEST_IP}/24 dev eth0 && ip link set eth0 up || exit 1\n"
            "i() { n=$1; shift; iperf3 -c " + NET_HOST_IP + f" -p 5201 -t {secs} -i 0 -J "
            "\"$@\" >/tmp/ip.json 2>/tmp/ip.err; rc=$?; "
            "echo \"BENCH-IPERF $n rc=$rc $(tr -d ' \\n\\t' </tmp/ip.json)\"; "
            "[ $rc = 0 ] || cat /tmp/ip.err; }\n"
            "i g2h\ni h2g -R\n")


def iperf_mibs(d, name):
    if d.get("error"):
        raise KeyError(f"{name}: iperf3: {d['error']}")
    s = d["end"]["sum_received"]
    if s["bytes"] <= 0:
        raise KeyError(f"{name}: nothing received")
    return s["bits_per_second"] / 8 / (1 << 20)


def net_once(env, res, opts, vmm, ns, tap, script):
    """One guest: iperf3 -c both ways against iperf3 -s in the namespace."""
    prefix = ["ip", "netns", "exec", ns]
    srv = env.spawn("iperf3-s", ["iperf3", "-s", "-B", NET_HOST_IP, "-p", "5201",
                                 "--forceflush"], prefix=prefix)
    try:
        if not pump([srv], lambda: srv.when("Server listening") or srv.done, 30) or srv.done:
            res.error("net", f"iperf3 -s did not start\n{srv.tail()}")
            return None
        vib, qemu = net_args(vmm, tap)
        cmd = env.linux_cmd(vmm.split("-")[0], IO_GUEST, 1, IO_MEM_MB,
                            cmd_extra=shell_cmd(script), initrd=env.bb / "initrd-bench.cpio",
                            vib_extra=vib, qemu_extra=qemu)
        p = env.spawn(vmm, cmd, prefix=prefix)
        ok = pump([p, srv], lambda: p.done, opts.io_timeout)
        p.stop(5)
        if not ok:
            res.error("net", f"{vmm}: did not finish (guest exit {p.rc}, "
                      f"{opts.io_timeout}s bound)\n{p.tail()}\niperf3 -s: {srv.tail()}")
            return None
        try:
            return {n: iperf_mibs(guest_json(p, "BENCH-IPERF", n), n) for n in ("g2h", "h2g")}
        except (KeyError, ValueError) as e:
            res.error("net", f"{vmm}: incomplete ({e})\n{p.tail()}\niperf3 -s: {srv.tail()}")
            return None
    finally:
        srv.stop(5)


def bench_net(env, res, opts):
    if not shutil.which("ip") or not shutil.which("iperf3"):
        res.skip("net", "no ip(8) or iperf3 here (scripts/deps.sh bench)")
        return
    if not (env.bb / "initrd-bench.cpio").exists():
        res.skip("net", f"{env.bb / 'initrd-bench.cpio'} missing (bench/run.sh builds it)")
        return
    ns = f"{NET_NS_PREFIX}{os.getpid()}"
    tap = "vbtap0"
    if not net_setup(res, ns, tap):
        return
    env.netns_made.append(ns)
    secs = opts.net_secs
    script = net_script(secs)
    samples = {v: {"g2h": [], "h2g": []} for v in IO_VMMS}
    # the "-best" runs use vhost-net, where the kernel has it (the test host
    # ships the module)
    if not os.path.exists("/dev/vhost-net"):
        subprocess.run(["modprobe", "vhost_net"], capture_output=True)
    vhost = os.path.exists("/dev/vhost-net")
    if not vhost:
        res.notes.append("net: no /dev/vhost-net: no vhost=on runs")
    log(f"net: iperf3 {secs} s each way over TAP in netns {ns}, {opts.io_reps} runs per VMM"
        + (" and setting" if vhost else ""))
    try:
        for rep in range(opts.io_reps):
            for vmm in io_order(rep):
                if not io_vmm_wanted(env, opts, "net", vmm) or (vmm.endswith("-best") and not vhost):
                    continue
                got = net_once(env, res, opts, vmm, ns, tap, script)
                if got is None:
                    continue
                # a line per run: the test host's watchdog ends a session
                # silent for 300 s
                log(f"net: run {rep + 1} {vmm}: " +
                    ", ".join(f"{d} {v:.2f} MiB/s" for d, v in got.items()))
                for d, v in got.items():
                    samples[vmm][d].append(v)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        env.netns_made.remove(ns)
    case = f"TCP over TAP in a netns, iperf3 {secs} s, cloud kernel"
    for d, metric in (("g2h", "guest -> host (iperf3 -c)"), ("h2g", "host -> guest (iperf3 -c -R)")):
        s = {v: samples[v][d] for v in IO_VMMS}
        res.row("net", case, metric, "MiB/s", "higher", s["vibevmm"], s["qemu"],
                a2=s["vibevmm-best"], b2=s["qemu-best"])


# ---------------------------------------------------------------------------
# density: how many small guests boot to /init at the same time
# ---------------------------------------------------------------------------

def bench_density(env, res, opts):
    n, bound = opts.density_n, opts.density_secs
    idle = shell_cmd(f"echo {IDLE_MARK}; exec sleep 100000")
    counts = {"vibevmm": [], "qemu": []}
    rates = {"vibevmm": [], "qemu": []}
    lasts = {"vibevmm": [], "qemu": []}
    for vmm in vmms(env):
        log(f"density: {vmm}: starting {n} guests (microvm vmlinux, 128 MiB), {bound} s bound")
        procs = []
        try:
            t_start = time.monotonic()
            for i in range(n):
                procs.append(env.spawn(f"{vmm}-{i}", env.linux_cmd(vmm, "microvm-vmlinux", 1, 128,
                                                                   cmd_extra=idle)))
            pump(procs, lambda: all(p.when(INIT_MARK) or p.done for p in procs), bound)
            booted = [p.when(INIT_MARK) for p in procs if p.when(INIT_MARK)]
            died = sum(1 for p in procs if p.done)
            last = max(booted) - t_start if booted else None
            counts[vmm].append(len(booted))
            if booted:
                rates[vmm].append(len(booted) / last)
                lasts[vmm].append(last)
            log(f"density: {vmm}: {len(booted)}/{n} at /init"
                + (f", the last after {last:.1f} s" if last else "")
                + (f"; {died} exited early" if died else ""))
            if died:
                ex = next(p for p in procs if p.done)
                res.notes.append(f"density {vmm}: {died} of {n} exited early; first: "
                                 f"exit {ex.rc}: {ex.stderr.strip()[-200:]}")
        finally:
            for p in procs:
                p.signal(signal.SIGTERM)
            pump(procs, lambda: all(p.done for p in procs), 30)
            for p in procs:
                p.stop(1)
    case = f"up to {n} guests at once: microvm vmlinux, 1 vCPU, 128 MiB, {bound} s bound"
    res.row("density", case, "guests that reached /init", "guests", "higher",
            counts["vibevmm"], counts["qemu"])
    res.row("density", case, "VMs started per second (booted / time to the last)", "VM/s",
            "higher", rates["vibevmm"], rates["qemu"])
    res.row("density", case, "time until the last one reached /init", "s", "lower",
            lasts["vibevmm"], lasts["qemu"])


# ---------------------------------------------------------------------------
# snapshot: save a running guest, restore it in a new process
# ---------------------------------------------------------------------------

TICK = re.compile(r"^TICK (\d+)$")
# a guest that prints a numbered line every 20 ms: "running again" is the
# first line after the saved one
TICK_SCRIPT = 'i=0; while :; do i=$((i+1)); echo "TICK $i"; usleep 20000; done'


class Qmp:
    """QEMU's QMP on a Unix socket: commands and their answers (events
    skipped)."""

    def __init__(self, path, timeout=60):
        import socket
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(str(path))
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.s.settimeout(timeout)
        self.f = self.s.makefile("rb")
        self.f.readline()  # the greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.s.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            msg = json.loads(self.f.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise RuntimeError(f"QMP {name}: {msg['error']}")

    def close(self):
        self.f.close()
        self.s.close()


def last_tick(p):
    ticks = [int(m[1]) for _, line in p.lines if (m := TICK.match(line))]
    return ticks[-1] if ticks else 0


def wait_ticks(p, n, timeout):
    return pump([p], lambda: last_tick(p) >= n or p.done, timeout) and last_tick(p) >= n


def tick_after(p, saved):
    """Time of the first console line with a tick after `saved`."""
    for t, line in p.lines:
        m = TICK.match(line)
        if m and int(m[1]) > saved:
            return t
    return None


def file_sizes(*paths):
    """(apparent bytes, allocated bytes) summed over the files."""
    st = [os.stat(f) for f in paths]
    return sum(x.st_size for x in st), sum(x.st_blocks * 512 for x in st)


def snapshot_vibevmm(env, opts, mem_mb, d):
    """Save after boot (SIGUSR1 -> "snapshot saved"), restore in a new
    process: a sample dict, or (None, why)."""
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    p = env.spawn("vibevmm", env.linux_cmd("vibevmm", opts.snapshot_kernel, 1, mem_mb,
                                           cmd_extra=shell_cmd(TICK_SCRIPT),
                                           vib_extra=["--snapshot-on-signal", d, "--log", "3"]))
    try:
        if not wait_ticks(p, 5, opts.boot_timeout):
            return None, f"vibevmm {mem_mb} MiB: no ticks\n{p.tail()}"
        t0 = time.monotonic()
        p.signal(signal.SIGUSR1)
        if not pump([p], lambda: "snapshot saved to" in p.stderr or p.done, opts.run_timeout):
            return None, f"vibevmm {mem_mb} MiB: no snapshot\n{p.tail()}"
        save_ms = (time.monotonic() - t0) * 1000
    finally:
        p.stop(5)
    saved = last_tick(p)
    state, mem = file_sizes(d / "state"), file_sizes(d / "mem")
    q = env.spawn("vibevmm", [env.vibevmm, "--restore", d, "--log", "3"])
    try:
        ok = pump([q], lambda: tick_after(q, saved) or q.done, opts.run_timeout)
        t_run = tick_after(q, saved)
        if not ok or t_run is None:
            return None, f"vibevmm {mem_mb} MiB: restored guest did not run\n{q.tail()}"
    finally:
        q.stop(5)
    return {"save": save_ms, "run": (t_run - q.t0) * 1000, "state": state[0] / 1024,
            "disk": (state[1] + mem[1]) / 2**20, "mem_apparent": mem[0] / 2**20}, None


def snapshot_qemu(env, opts, mem_mb, d):
    """The same with QEMU: stop + migrate to a file (the stream savevm
    writes), then a new QEMU with -incoming from it (loadvm's path) and
    "cont" once it is loaded."""
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    sock, img = d / "qmp.sock", d / "vmstate"
    qmp_arg = ["-qmp", f"unix:{sock},server=on,wait=off"]
    p = env.spawn("qemu", env.linux_cmd("qemu", opts.snapshot_kernel, 1, mem_mb,
                                        cmd_extra=shell_cmd(TICK_SCRIPT), qemu_extra=qmp_arg))
    try:
        if not wait_ticks(p, 5, opts.boot_timeout):
            return None, f"qemu {mem_mb} MiB: no ticks\n{p.tail()}"
        qmp = Qmp(sock)
        t0 = time.monotonic()
        qmp.cmd("stop")
        qmp.cmd("migrate", uri=f"exec:cat > {img}")
        while (st := qmp.cmd("query-migrate").get("status")) not in ("completed", "failed"):
            pump([p], lambda: False, 0.005)
        save_ms = (time.monotonic() - t0) * 1000
        qmp.close()
        if st != "completed":
            return None, f"qemu {mem_mb} MiB: migration {st}"
    finally:
        p.stop(5)
    pump([p], lambda: False, 0.2)
    saved = last_tick(p)
    size = file_sizes(img)
    sock.unlink(missing_ok=True)
    q = env.spawn("qemu", env.linux_cmd("qemu", opts.snapshot_kernel, 1, mem_mb,
                                        cmd_extra=shell_cmd(TICK_SCRIPT),
                                        qemu_extra=["-incoming", f"exec:cat {img}", *qmp_arg]))
    try:
        # a stream saved from a stopped VM loads into a stopped one: "cont"
        # once it is in (as Firecracker's load + resume)
        qmp = Qmp(sock)
        while qmp.cmd("query-status")["status"] == "inmigrate" and not q.done:
            pump([q], lambda: False, 0.005)
        qmp.cmd("cont")
        qmp.close()
        ok = pump([q], lambda: tick_after(q, saved) or q.done, opts.run_timeout)
        t_run = tick_after(q, saved)
        if not ok or t_run is None:
            return None, f"qemu {mem_mb} MiB: restored guest did not run\n{q.tail()}"
    finally:
        q.stop(5)
    return {"save": save_ms, "run": (t_run - q.t0) * 1000, "disk": size[1] / 2**20}, None


def bench_snapshot(env, res, opts, tmp):
    for mem_mb in opts.snapshot_mems:
        what = "Debian cloud kernel" if opts.snapshot_kernel == "cloud" else opts.snapshot_kernel
        case = f"{what}, 1 vCPU, {mem_mb} MiB, idle after boot"
        samples = {"vibevmm": [], "qemu": []}
        for rep in range(opts.reps):
            for vmm in alternate(rep):
                if vmm not in vmms(env):
                    continue
                run = snapshot_vibevmm if vmm == "vibevmm" else snapshot_qemu
                r, err = run(env, opts, mem_mb, tmp / f"snap-{vmm}")
                if r is None:
                    res.error("snapshot", err)
                    continue
                samples[vmm].append(r)
                log(f"snapshot: {case} {vmm} run {rep + 1}: saved in {r['save']:.0f} ms, "
                    f"running again {r['run']:.0f} ms after the restore's start")

        def col(vmm, key):
            return [x[key] for x in samples[vmm]]
        res.row("snapshot", case, "save a running guest (pause + write)", "ms", "lower",
                col("vibevmm", "save"), col("qemu", "save"))
        res.row("snapshot", case, "restore: process start -> guest running", "ms", "lower",
                col("vibevmm", "run"), col("qemu", "run"))
        res.row("snapshot", case, "on disk (allocated; vibevmm: state + memory file)", "MiB",
                "lower", col("vibevmm", "disk"), col("qemu", "disk"))
        res.row("snapshot", case, "vibevmm's state file", "KiB", "lower", col("vibevmm", "state"),
                [])
        res.row("snapshot", case, "vibevmm's memory file, apparent size (sparse)", "MiB", "lower",
                col("vibevmm", "mem_apparent"), [])
        opts.save()


# ---------------------------------------------------------------------------
# arm64: bench/arm64-inside.sh ran inside the arm64 test host (no Python
# there); its "A64 ..." lines become a run here
# ---------------------------------------------------------------------------

ARM64_QEMU_MACHINE = "virt,gic-version=3"
ARM64_CMDLINE = "console=ttyS0 (vibevmm) / console=ttyAMA0 (QEMU) panic=-1 vibevmm.verbose=0 quiet"
ARM64_BOOT_KEYS = {"wall": "wall_ms", "uptime": "uptime_ms", "overhead": "overhead_ms",
                   "teardown": "teardown_ms", "life": "life_ms", "maxrss": "maxrss_kb"}


def arm64_case(cpus):
    return f"Debian arm64 Image, {cpus} vCPU{'s' if cpus > 1 else ''}, 256 MiB"


def arm64_parse_lines(lines, res, meta):
    """Fill res (rows, notes, errors) and meta (versions) from the lines."""
    boots = {}    # cpus -> vmm -> [sample]
    exits = {"lib": [], "bare": []}
    for line in lines:
        if not line.startswith("A64 "):
            continue
        kind, _, rest = line[4:].partition(" ")
        kv = parse_kv(rest)
        if kind == "version":
            m = re.match(r"vibevmm=(.*) qemu=(.*)", rest)
            if m:
                meta["vibevmm_version"], meta["qemu_version"] = m.group(1), m.group(2)
        elif kind == "boot" and kv.get("rc") == "0":
            vals = {k: float(kv[v]) for k, v in ARM64_BOOT_KEYS.items() if v in kv}
            if "maxrss" in vals:
                vals["maxrss"] /= 1024
            sample = {k: v for k, v in vals.items() if v >= 0}
            boots.setdefault(int(kv["cpus"]), {}).setdefault(kv["vmm"], []).append(sample)
        elif kind == "boot":
            res.error("arm64", f"boot: {rest}")
        elif kind == "exits" and kv.get("mode") in exits and "ns_per_exit" in kv:
            exits[kv["mode"]].append(float(kv["ns_per_exit"]) / 1000)
        elif kind == "host":
            # one line at the start and one at the end of each session (the
            # sessions' test hosts have 1 or 2 CPUs): the first start, the
            # last end, every CPU count
            h = meta["host"]
            h.update({k: v for k, v in kv.items() if k in ("kernel", "mem_mb")})
            h["cpu"] = "arm64 (qemu TCG -cpu max)"
            if "nproc" in kv and kv["nproc"] not in str(h.get("nproc", "")).split("/"):
                h["nproc"] = "/".join(x for x in (str(h.get("nproc", "")), kv["nproc"]) if x)
            if "load_start" in kv and "loadavg_start" not in h:
                h["loadavg_start"] = kv["load_start"].split(",")
            if "load_end" in kv:
                h["loadavg_end"] = kv["load_end"].split(",")
        elif kind == "note":
            res.notes.append(f"arm64: {rest}")
        elif kind == "fail":
            res.error("arm64", rest)
    for cpus in sorted(boots):
        case = arm64_case(cpus)

        def col(vmm, key):
            return [s[key] for s in boots[cpus].get(vmm, []) if key in s]
        res.row("boot", case, "start -> /init marker (wall)", "ms", "lower",
                col("vibevmm", "wall"), col("qemu", "wall"))
        res.row("boot", case, "guest uptime at the marker", "ms", "lower",
                col("vibevmm", "uptime"), col("qemu", "uptime"))
        res.row("boot", case, "VMM overhead (wall - guest uptime)", "ms", "lower",
                col("vibevmm", "overhead"), col("qemu", "overhead"))
        res.row("boot", case, "start -> process exit (/init powers off at once)", "ms",
                "lower", col("vibevmm", "life"), col("qemu", "life"))
        res.row("teardown", case, "'reboot: Power down' line -> process exit", "ms",
                "lower", col("vibevmm", "teardown"), col("qemu", "teardown"))
        res.row("memory", case, "peak RSS of the VMM process (ru_maxrss)", "MiB", "lower",
                col("vibevmm", "maxrss"), col("qemu", "maxrss"))
    if exits["lib"] or exits["bare"]:
        res.row("exits", "MMIO write, null device", "us per exit (in-process timing)", "us",
                "lower", exits["lib"], exits["bare"], table="floor")


def cmd_arm64_parse(a):
    res = Results(None)
    meta = {"env": "testhost-arm64", "where": WHERE["testhost-arm64"], "host": {},
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "reps": a.reps, "mode": a.mode, "only": ["arm64"], "cmdline": ARM64_CMDLINE,
            "qemu_machine": ARM64_QEMU_MACHINE, "qemu_cpu": "host",
            "seconds": a.seconds, "complete": not a.incomplete}
    lines = []
    for f in a.inputs:
        try:
            lines += Path(f).read_text(errors="replace").splitlines()
        except OSError as e:
            res.error("arm64", f"cannot read {f}: {e}")
    arm64_parse_lines(lines, res, meta)
    if not res.rows and not res.errors:
        res.error("arm64", "no results from the arm64 test host")
    for n in a.note:
        res.notes.append(n)
    out = {"schema": 1, "runs": [{**meta, "rows": res.rows, "skipped": res.skipped,
                                  "errors": res.errors, "notes": res.notes}]}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 1 if res.errors else 0


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------

class Opts:
    def __init__(self, a):
        self.reps = a.reps
        self.smoke = a.smoke
        self.quick = a.quick
        self.boot_timeout = 300
        self.io_timeout = 900
        self.run_timeout = 600   # one tiny-guest or exitbench process
        if a.smoke:
            # a hung run becomes an error within a minute or two, not a
            # session that runs into its timeout
            self.boot_timeout, self.io_timeout, self.run_timeout = 120, 180, 60
            self.reps = 1
            self.boot_cases = [("microvm-vmlinux", 1)]
            self.startup_reps = 1
            self.exits_n = 2000
            self.exits_n_process = 5000
            self.memory_kernel = "microvm-vmlinux"
            self.memory_reps = 1
            self.disk_mb, self.randread_secs, self.net_secs, self.io_reps = 16, 1, 1, 1
            self.density_n, self.density_secs = 2, 120
            self.snapshot_mems = (256,)
            self.snapshot_kernel = "microvm-vmlinux"
        else:
            self.boot_cases = [("cloud", 1), ("cloud", 4), ("microvm-vmlinux", 1)]
            if not a.quick:
                self.boot_cases += [("microvm-bzimage", 1), ("generic", 1)]
            self.startup_reps = max(self.reps, 10)
            # enough exits to dwarf the start-up noise of a process:
            # ~50 us per exit on the test host, ~9 us on PVM, ~1-2 us on hardware
            self.exits_n = {"testhost": 20000, "pvm": 50000}.get(a.env, 200000)
            self.exits_n_process = {"testhost": 20000, "pvm": 100000}.get(a.env, 200000)
            self.memory_kernel = "cloud"
            self.memory_reps = min(self.reps, 3) if a.quick else self.reps
            self.disk_mb = 256 if a.quick else 1024
            self.randread_secs = 5
            self.net_secs = 5 if a.quick else 10
            self.io_reps = min(self.reps, 3)
            self.density_n, self.density_secs = 16, 120
            self.snapshot_mems = (256, 1024)
            self.snapshot_kernel = "cloud"
        self.io_skip_vmm = set()
        if getattr(a, "disk_mb", None):
            self.disk_mb = a.disk_mb
        self.disk_opts = getattr(a, "disk_opts", "") or ""
        if getattr(a, "net_secs", None):
            self.net_secs = a.net_secs
        if getattr(a, "io_reps", None):
            self.io_reps = a.io_reps
        self.save = lambda final=False: None


def host_info(env):
    info = {"kernel": os.uname().release, "nproc": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_mb"] = int(line.split()[1]) // 1024
    except OSError:
        pass
    return info


def cmd_run(a):
    env = Env(a)
    opts = Opts(a)
    only = [b for b in (a.only.split(",") if a.only else BENCHES) if b]
    for b in only:
        if b not in BENCHES:
            sys.exit(f"bench: unknown benchmark '{b}' (have: {', '.join(BENCHES)})")
    if a.boot_case:
        opts.boot_cases = []
        for c in a.boot_case:
            k, _, n = c.partition(":")
            if k not in KERNELS or not n.isdigit():
                sys.exit(f"bench: bad --boot-case '{c}' (want KERNEL:CPUS, KERNEL one of "
                         f"{', '.join(KERNELS)})")
            opts.boot_cases.append((k, int(n)))
    if env.kind == "pvm":
        only = [b for b in only if b == "exits"]
        env.qemu_cpu = "host,-arch-capabilities"   # PVM refuses MSR 0x10a
    if a.quick and "density" in only:
        only.remove("density")
    res = Results(env)
    meta = {"env": env.kind, "where": WHERE[env.kind], "host": host_info(env),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "reps": opts.reps, "mode": "smoke" if a.smoke else "quick" if a.quick else "full",
            "only": only, "cmdline": CMDLINE, "qemu_machine": QEMU_MACHINE,
            "qemu_cpu": env.qemu_cpu}
    if not env.vibevmm.exists():
        sys.exit(f"bench: {env.vibevmm} missing: run make first")
    t_all = time.monotonic()

    def save(final=False):
        """Write what we have so far: a run that is killed (a hung nested
        guest, a timeout) still leaves its finished benchmarks behind."""
        meta["seconds"] = round(time.monotonic() - t_all, 1)
        meta["complete"] = final
        try:
            meta["host"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
        except OSError:
            pass
        out = {"schema": 1, "runs": [{**meta, "rows": res.rows, "skipped": res.skipped,
                                      "errors": res.errors, "notes": res.notes}]}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        tmpf = Path(str(a.json) + ".tmp")
        tmpf.write_text(json.dumps(out, indent=1) + "\n")
        tmpf.replace(a.json)

    kernels = sorted({k for k, _ in opts.boot_cases} | {opts.memory_kernel, "microvm-vmlinux"}
                     | ({opts.snapshot_kernel} if "snapshot" in only else set())
                     | ({IO_GUEST} if {"disk", "net", "transport"} & set(only) else set()))
    if env.kind == "testhost" and not a.no_stage:
        env.stage(kernels)
    if not env.have_qemu():
        res.notes.append(f"no QEMU ({a.qemu}) here: vibevmm columns only")
    meta["qemu_version"] = env.qemu_version
    r = subprocess.run([env.vibevmm, "--version"], capture_output=True, text=True,
                       env=env.run_env)
    meta["vibevmm_version"] = (r.stdout or r.stderr).strip()
    if a.scratch:
        env.scratch = a.scratch
    elif a.scratch_dev:
        env.scratch = mount_scratch(a.scratch_dev)
        if env.scratch:
            env.mounted = env.scratch
        else:
            res.notes.append(f"cannot mount the scratch disk {a.scratch_dev}")
    tmp = Path(tempfile.mkdtemp(prefix="vbench.", dir="/tmp"))
    opts.save = save

    def interrupted(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, interrupted)
    try:
        # Warm-up (not measured): the first start of each VMM loads its
        # binary and libraries into the page cache.
        if any(b in only for b in ("boot", "startup", "exits", "memory", "density")):
            img = guest_images(env, tmp, "warm", hello=ord("!"))
            for vmm in vmms(env):
                tiny_run(env, vmm, img[vmm])
            if any(b in only for b in ("boot", "memory", "density")) and not a.smoke:
                for vmm in vmms(env):
                    linux_boot_once(env, vmm, "microvm-vmlinux", 1, 256, opts.boot_timeout)
        for b in only:
            t = time.monotonic()
            try:
                if b == "boot":
                    bench_boot(env, res, opts)
                elif b == "startup":
                    bench_startup(env, res, opts, tmp)
                elif b == "exits":
                    bench_exits(env, res, opts, tmp)
                elif b == "memory":
                    bench_memory(env, res, opts)
                elif b == "density":
                    bench_density(env, res, opts)
                elif b == "snapshot":
                    bench_snapshot(env, res, opts, tmp)
                elif b == "transport":
                    bench_transport(env, res, opts, tmp)
                elif b in ("disk", "net"):
                    why = io_feature_check(env, b, tmp)
                    if why and not (a.io_qemu_alone or os.environ.get("BENCH_IO_QEMU_ALONE")):
                        res.skip(b, why)
                        continue
                    if why:
                        opts.io_skip_vmm = {"vibevmm"}
                        res.notes.append(f"{b}: {why}; QEMU measured alone "
                                         "(BENCH_IO_QEMU_ALONE=1)")
                    if b == "disk":
                        bench_disk(env, res, opts, tmp)
                    else:
                        bench_net(env, res, opts)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a broken benchmark script: report, go on
                import traceback
                res.error(b, f"exception: {e!r}\n{traceback.format_exc()}")
            log(f"{b}: done in {time.monotonic() - t:.0f} s")
            save()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        env.cleanup()
    save(final=True)
    log(f"wrote {a.json} ({len(res.rows)} rows, {len(res.errors)} errors) "
        f"in {meta['seconds']:.0f} s")
    return 1 if res.errors else 0


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def fmt(x):
    if x is None:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(xs):
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(median(xs))} [{fmt(min(xs))}-{fmt(max(xs))}]"


def count_cell(xs):
    """cell() for counts: whole numbers (a median of two may end in .5)."""
    m = median(xs)
    m = f"{m:.0f}" if m == int(m) else f"{m:.1f}"
    return m if len(xs) == 1 else f"{m} [{min(xs)}-{max(xs)}]"


def ratio(a, b):
    ma, mb = median(a), median(b)
    if ma is None or mb is None or mb == 0:
        return None
    return ma / mb


def table(rows, heads):
    w = [max(len(str(r[i])) for r in rows + [heads]) for i in range(len(heads))]
    lines = ["  ".join(str(h).ljust(w[i]) for i, h in enumerate(heads)).rstrip(),
             "  ".join("-" * w[i] for i in range(len(heads)))]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)


# Issue 10's goals (ratios vibevmm / QEMU of the medians): label, bench, the
# start of the case, the start of the metric, columns (a/b: defaults;
# a2/b2: both with their faster setting), "<=" or ">=", target.
GOALS = (
    ("boot, minimal vmlinux", "boot", "microvm-vmlinux, 1 vCPU", "start -> /init", "ab", "<=", 0.75),
    ("boot, Debian cloud", "boot", "cloud, 1 vCPU", "start -> /init", "ab", "<=", 0.45),
    ("boot, Debian generic", "boot", "generic, 1 vCPU", "start -> /init", "ab", "<=", 0.55),
    ("disk 4 KiB random read QD1", "disk", "", "4 KiB random read, QD1", "ab", ">=", 1.5),
    ("disk 4 KiB random read QD32", "disk", "", "4 KiB random read, QD32", "ab", ">=", 1.5),
    ("disk sequential read 1 MiB", "disk", "", "sequential read", "ab", ">=", 1.1),
    ("disk sequential write 1 MiB", "disk", "", "sequential write", "ab", ">=", 1.1),
    ("TCP guest -> host vs QEMU userspace", "net", "", "guest -> host", "ab", ">=", 1.2),
    ("TCP host -> guest vs QEMU userspace", "net", "", "host -> guest", "ab", ">=", 1.2),
    ("TCP guest -> host, vhost=on vs QEMU vhost=on", "net", "", "guest -> host", "a2b2", ">=", 1.0),
    ("TCP host -> guest, vhost=on vs QEMU vhost=on", "net", "", "host -> guest", "a2b2", ">=", 1.0),
    ("VMM RSS without guest RAM", "memory", "", "VMM RSS without guest RAM", "ab", "<=", 0.1),
)


def goal_rows(rows):
    """[goal, target, measured ratio, met] for each goal; none when no goal
    has figures here (the arm64 and PVM runs)."""
    out = []
    for label, bench, case, metric, cols, op, target in GOALS:
        out.append([label, f"{op} {target:.2f}x", "n/a", "not measured"])
        for r in rows:
            if r["table"] != "main" or r["bench"] != bench or not r["case"].startswith(case) \
                    or not r["metric"].startswith(metric):
                continue
            a, b = (r.get("a2", []), r.get("b2", [])) if cols == "a2b2" else (r["a"], r["b"])
            q = ratio(a, b)
            if q is None:
                continue
            met = q <= target if op == "<=" else q >= target
            out[-1][2:] = [f"{q:.2f}x", "yes" if met else "no"]
            break
    return out if any(g[2] != "n/a" for g in out) else []


def pair_table(run, name, with_bench, a_name, b_name, title):
    """The lines of a side table: one of run's tables with its two columns
    a and b (not vibevmm and QEMU) and their ratio; none when it is empty."""
    picked = [r for r in run["rows"] if r["table"] == name and (r["a"] or r["b"])]
    if not picked:
        return []
    rows = []
    for r in picked:
        q = ratio(r["a"], r["b"])
        rows.append(([r["bench"]] if with_bench else [])
                    + [r["case"], r["metric"], r["unit"], cell(r["a"]), cell(r["b"]),
                       f"{q:.2f}" if q is not None else "n/a", f"{len(r['a'])}/{len(r['b'])}"])
    head = (["bench"] if with_bench else []) + ["case", "metric", "unit", a_name, b_name,
                                                "ratio", "n"]
    return ["", "   " + title, table(rows, head)]


def render(runs):
    out = []
    for run in runs:
        h = run.get("host", {})
        out.append(f"== {run['where']}")
        out.append(f"   {run['mode']} run, {run['reps']} runs per VMM and case unless noted; "
                   f"{h.get('cpu', '?')}, {h.get('nproc', '?')} CPUs, kernel {h.get('kernel', '?')}, "
                   f"load {' '.join(h.get('loadavg_start', []))} -> "
                   f"{' '.join(h.get('loadavg_end', []))}; {run.get('seconds', '?')} s"
                   + (f" in {run['parts']} sessions" if run.get("parts", 1) > 1 else ""))
        out.append(f"   {run.get('vibevmm_version') or 'vibevmm'} vs "
                   f"{run.get('qemu_version') or 'no QEMU'} "
                   f"(-M {run['qemu_machine']} "
                   f"{'-accel kvm' if run['env'] == 'testhost-arm64' else '-enable-kvm'} "
                   f"-cpu {run['qemu_cpu']})")
        if run.get("machine_load") and run["env"].startswith("testhost"):
            out.append(f"   load average of the machine running the test host: {run['machine_load']}")
        out.append("   median [min-max]; ratio = vibevmm median / QEMU median")
        main = [r for r in run["rows"] if r["table"] == "main" and (r["a"] or r["b"])]
        best = any("a2" in r for r in main)
        if best:
            out.append("   -best: each VMM with its faster setting (disk: vibevmm cache=none, "
                       "QEMU aio=io_uring + iothread; net: vhost=on for both); "
                       "best ratio = vibevmm-best / QEMU-best")
        if main:
            rows = []
            for r in main:
                q = ratio(r["a"], r["b"])
                row = [r["bench"], r["case"], r["metric"], r["unit"], cell(r["a"]),
                       cell(r["b"]), f"{q:.2f}" if q is not None else "n/a"]
                n = f"{len(r['a'])}/{len(r['b'])}"
                if best:
                    q2 = ratio(r.get("a2", []), r.get("b2", []))
                    row += ["", "", ""] if "a2" not in r else [
                        cell(r["a2"]), cell(r["b2"]), f"{q2:.2f}" if q2 is not None else "n/a"]
                    if "a2" in r:
                        n += f"/{len(r['a2'])}/{len(r['b2'])}"
                rows.append(row + [n])
            out.append(table(rows, ["bench", "case", "metric", "unit", "vibevmm", "QEMU",
                                    "ratio"]
                             + (["vibevmm-best", "QEMU-best", "best ratio"] if best else [])
                             + ["n"]))
        goals = goal_rows(run["rows"])
        if goals:
            out.append("")
            out.append("   issue 10's goals: vibevmm / QEMU ratio of medians (lower time, "
                       "higher throughput is better)")
            out.append(table(goals, ["goal", "target", "measured", "met"]))
        per_boot = [r for r in run["rows"] if r["table"] == "exits-per-boot" and r["a"]]
        if per_boot:
            out.append("")
            out.append("   vibevmm's exits per boot (--stats: by reason, then io/mmio by device), "
                       "median [min-max] of the boot runs")
            out.append(table([[r["case"], r["metric"], count_cell(r["a"]), str(len(r["a"]))]
                              for r in per_boot], ["case", "reason", "exits", "n"]))
        out += pair_table(run, "transport", False, "virtio-pci", "virtio-mmio",
                          "virtio transports: vibevmm --transport pci vs its default mmio, "
                          "median [min-max]; ratio = pci / mmio")
        out += pair_table(run, "floor", True, "libvibevmm", "bare KVM",
                          "exit cost: libvibevmm (vcpu_run + device dispatch) vs a bare "
                          "KVM_RUN loop (the floor); ratio = lib / bare")
        if not run.get("complete", True):
            out.append("   note: a part of this run did not finish (timeout or a hung test "
                       "host; see the log): its rows may be missing or have fewer runs")
        for s in run.get("skipped", []):
            out.append(f"   skipped: {s['bench']}: {s['reason']}")
        for n in run.get("notes", []):
            out.append(f"   note: {n}")
        for e in run.get("errors", []):
            out.append(f"   ERROR: {e['bench']}: {e['error'].splitlines()[0]}")
        out.append("")
    out.append(METHODS)
    return "\n".join(out)


METHODS = """Methods (details in bench/README.md):
  boot      wall time from spawning the VMM to the guest's VIBEVMM-INIT-OK console
            line arriving on the pipe; /init prints the guest's /proc/uptime right
            after it, so overhead = wall - guest uptime (VMM start-up, kernel loading,
            firmware). Same kernel, initramfs, command line, memory, vCPUs for both.
  teardown  time from the guest's "reboot: Power down" console line to the VMM's
            exit (seen through a pidfd), in the same runs.
  startup   a tiny guest writes one byte to COM1, then 0 to the exit port 0xf4
            (vibevmm --binary; QEMU: the same code as a PVH ELF with
            isa-debug-exit). Start -> that byte on the pipe ~ start to the first
            guest instruction (QEMU's includes its firmware, qboot); the byte ->
            exit ~ teardown.
  exits     the same guest doing N port-I/O writes or N 4-byte MMIO writes to
            an address nobody claims: whole processes, (T(N) - T(0)) / N.
            The floor table: libvibevmm's vcpu_run with do-nothing devices vs a
            bare KVM_RUN loop (bench/exitbench.c), timed in-process.
  memory    /proc/PID/smaps at idle after boot: total Rss minus the Rss of the
            anonymous guest-RAM mapping; peak = VmHWM (at idle, and at exit via
            wait4 in the boot runs).
  disk/net  virtio-blk / virtio-net on virtio-mmio, Debian's cloud kernel; fio
            (O_DIRECT, libaio) and iperf3 in the guest, iperf3 -s on the host side
            of a TAP in a private netns. -best: vibevmm cache=none / vhost=on vs
            QEMU aio=io_uring + iothread / vhost=on.
  density   N guests started at once; how many reach /init within the bound.
  snapshot  a booted guest printing a line every 20 ms is saved (vibevmm:
            SIGUSR1 -> "snapshot saved"; QEMU: QMP stop + migrate to a file,
            savevm's stream) and restored in a new process (vibevmm --restore;
            QEMU -incoming from the file, then cont): process start -> the first
            line after the saved one. Sizes: allocated bytes on disk.
  transport vibevmm alone, --transport pci against its default virtio-mmio: the
            cloud kernel with one disk (a file, host page cache) to /init, then
            fio 4 KiB random reads at QD1 and QD32 (O_DIRECT in the guest), where
            a request's notify and interrupt cost most; the two alternate.
  arm64     inside the arm64 test host, boot as above (bench/bootclock.c times
            it, ru_maxrss from wait4) vs qemu-system-aarch64 -M virt -accel kvm;
            exit floor: bench/exitbench-arm64.c, N MMIO stores per run."""


def gnuplot_png(runs, png):
    gp = shutil.which("gnuplot")
    if not gp:
        log("no gnuplot: no chart")
        return False
    labels, cols = [], []
    keys = []
    for run in runs:
        for r in run["rows"]:
            if r["table"] != "main":
                continue
            for k in ((r["bench"], r["case"], r["metric"]),) + (
                    ((r["bench"], r["case"], r["metric"], "best"),) if "a2" in r else ()):
                if k not in keys:
                    keys.append(k)
    envs = [run["env"] for run in runs]
    data = []
    for k in keys:
        vals = []
        for run in runs:
            q = None
            for r in run["rows"]:
                if r["table"] == "main" and (r["bench"], r["case"], r["metric"]) == k[:3]:
                    q = ratio(r["a"], r["b"]) if len(k) == 3 else \
                        ratio(r.get("a2", []), r.get("b2", []))
            vals.append(q)
        if all(v is None for v in vals):
            continue
        case = k[1].split(",")
        short = case[0] + (f"/{case[1].strip().split()[0]}cpu" if len(case) > 1
                           and "vCPU" in case[1] and not case[1].strip().startswith("1 ") else "")
        if k[0] in ("startup", "density", "disk", "net"):
            short = ""
        elif k[0] == "exits":
            short = case[0].split()[0]
        metric = k[2].split(" (")[0]
        metric = metric[:34] + ("." if len(metric) > 34 else "")
        if len(k) > 3:
            metric += " [best]"
        better = next((r["better"] for run in runs for r in run["rows"]
                       if (r["bench"], r["case"], r["metric"]) == k[:3]), "lower")
        label = f"{k[0]}{' ' + short if short else ''}: {metric}{' ^' if better == 'higher' else ''}"
        labels.append(label.replace('"', "'"))
        data.append(vals)
    if not data:
        log("nothing to plot")
        return False
    with tempfile.TemporaryDirectory() as d:
        dat = Path(d) / "ratios.dat"
        with open(dat, "w") as f:
            for lab, vals in zip(labels, data):
                f.write(f'"{lab}" ' + " ".join("NaN" if v is None else f"{v:.4f}" for v in vals)
                        + "\n")
        names = {"testhost": "test host (nested)", "direct": "hardware KVM",
                 "pvm": "PVM host (exits only)", "testhost-arm64": "arm64 test host (nested)"}
        plots = ", ".join(
            f"'{dat}' using {i + 2}:xtic(1) title '{names.get(e, e)}'" if i == 0 else
            f"'' using {i + 2} title '{names.get(e, e)}'" for i, e in enumerate(envs))
        script = f"""
set terminal pngcairo size 1600,900 font ',10' noenhanced
set output '{png}'
set title 'Vibe-VMM vs QEMU microvm: ratio of medians, vibevmm / QEMU (below 1: vibevmm lower; ^ marks rows where higher is better; [best]: both VMMs with their faster setting)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -40 scale 0 font ',8'
set ylabel 'vibevmm / QEMU'
set grid ytics
set yrange [0:*]
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2
set bmargin 12
plot {plots}
"""
        r = subprocess.run([gp], input=script, capture_output=True, text=True)
        if r.returncode != 0:
            log(f"gnuplot failed: {r.stderr.strip()[-500:]}")
            return False
    log(f"wrote {png}")
    return True


def merge_runs(runs):
    """One run per environment: bench/run.sh runs each benchmark (each boot
    case) in its own test host, so that a hung nested guest costs only that."""
    order = {"direct": 0, "testhost": 1, "pvm": 2, "testhost-arm64": 3}
    merged = {}
    for run in runs:
        m = merged.get(run["env"])
        if m is None:
            m = merged[run["env"]] = dict(run, rows=[], skipped=[], errors=[], notes=[],
                                          only=[], seconds=0.0, parts=0)
            m["host"] = dict(run.get("host", {}))
        m["parts"] += 1
        m["seconds"] = round(m["seconds"] + (run.get("seconds") or 0), 1)
        m["host"]["loadavg_end"] = run.get("host", {}).get("loadavg_end", [])
        m["complete"] = m.get("complete", True) and run.get("complete", True)
        for key in ("rows", "skipped", "errors", "only"):
            m[key] += run.get(key, [])
        for n in run.get("notes", []):
            if n not in m["notes"]:
                m["notes"].append(n)
    return sorted(merged.values(), key=lambda r: order.get(r["env"], 9))


def cmd_report(a):
    runs = []
    for f in a.inputs:
        try:
            runs.extend(json.loads(Path(f).read_text())["runs"])
        except (OSError, ValueError, KeyError) as e:
            log(f"cannot read {f}: {e}")
            return 1
    runs = merge_runs(runs)
    for run in runs:
        if a.machine_load:
            run["machine_load"] = a.machine_load
    text = render(runs)
    print(text)
    merged = {"schema": 1, "command": a.command, "runs": runs}
    for run in runs:
        for r in run["rows"]:
            r["summary"] = {
                "a_median": median(r["a"]), "a_min": min(r["a"]) if r["a"] else None,
                "a_max": max(r["a"]) if r["a"] else None,
                "b_median": median(r["b"]), "b_min": min(r["b"]) if r["b"] else None,
                "b_max": max(r["b"]) if r["b"] else None, "ratio": ratio(r["a"], r["b"]),
                "a_name": "libvibevmm" if r["table"] == "floor" else "vibevmm",
                "b_name": "bare-kvm" if r["table"] == "floor" else "qemu"}
            if "a2" in r:
                r["summary"].update({
                    "a2_name": "vibevmm-best", "b2_name": "qemu-best",
                    "a2_median": median(r["a2"]), "b2_median": median(r["b2"]),
                    "ratio_best": ratio(r["a2"], r["b2"])})
        run["goals"] = [dict(zip(("goal", "target", "measured", "met"), g))
                        for g in goal_rows(run["rows"])]
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        tmpf = Path(str(a.json) + ".tmp")
        tmpf.write_text(json.dumps(merged, indent=1) + "\n")
        tmpf.replace(a.json)
        log(f"results: {a.json}")
    if a.text:
        Path(a.text).write_text(text + "\n")
    if a.png:
        gnuplot_png(runs, a.png)
    return 1 if any(run.get("errors") for run in runs) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="sub", required=True)
    r = sub.add_parser("run")
    r.add_argument("--env", choices=sorted(WHERE), required=True)
    r.add_argument("--json", required=True)
    r.add_argument("--only", default="")
    r.add_argument("--reps", type=int, default=5)
    r.add_argument("--quick", action="store_true")
    r.add_argument("--smoke", action="store_true")
    r.add_argument("--boot-case", action="append", default=[],
                   help="KERNEL:CPUS, repeatable (default: per mode)")
    r.add_argument("--disk-mb", type=int, help="disk image size (default per mode)")
    r.add_argument("--disk-opts", default="",
                   help="disk: appended to vibevmm's --disk path=IMG, e.g. cache=none")
    r.add_argument("--net-secs", type=int, help="iperf3 seconds each way (default per mode)")
    r.add_argument("--io-reps", type=int, help="runs per VMM of disk and net (default: reps, at most 3)")
    r.add_argument("--no-stage", action="store_true")
    r.add_argument("--io-qemu-alone", action="store_true",
                   help="disk/net: measure QEMU even when vibevmm lacks the device")
    r.add_argument("--scratch", default="", help="directory for the disk image (O_DIRECT-capable)")
    r.add_argument("--scratch-dev", default="", help="ext4 block device to mount for the disk image")
    r.add_argument("--vibevmm", default=str(ROOT / "bin/vibevmm"))
    r.add_argument("--qemu", default="qemu-system-x86_64")
    r.add_argument("--assets", default=str(ROOT / "build/e2e"))
    r.add_argument("--build", default=str(ROOT / "build/bench"))
    p = sub.add_parser("report")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--json")
    p.add_argument("--png")
    p.add_argument("--text")
    p.add_argument("--command", default="")
    p.add_argument("--machine-load", default="",
                   help="the outer machine's load average at start and end, shown in the header")
    c = sub.add_parser("cases", help="print the boot cases of a mode, KERNEL:CPUS per line")
    c.add_argument("--quick", action="store_true")
    c.add_argument("--smoke", action="store_true")
    c.add_argument("--reps", type=int, default=5)
    c.add_argument("--env", default="testhost")
    k = sub.add_parser("skipped", help="write a results file that only says BENCH was skipped")
    k.add_argument("--env", choices=sorted(WHERE), required=True)
    k.add_argument("--json", required=True)
    k.add_argument("bench", choices=BENCHES + ("arm64",))
    k.add_argument("reason")
    g = sub.add_parser("arm64-parse", help="bench/arm64-inside.sh's output -> a results file")
    g.add_argument("--json", required=True)
    g.add_argument("--mode", default="full")
    g.add_argument("--reps", type=int, default=5)
    g.add_argument("--seconds", type=float, default=0)
    g.add_argument("--incomplete", action="store_true",
                   help="a session did not finish (timeout, hung test host)")
    g.add_argument("--note", action="append", default=[])
    g.add_argument("inputs", nargs="+")
    a = ap.parse_args()
    if a.sub == "run":
        if a.reps < 1:
            ap.error("--reps must be at least 1")
        return cmd_run(a)
    if a.sub == "report":
        return cmd_report(a)
    if a.sub == "skipped":
        arm = a.env == "testhost-arm64"
        run = {"env": a.env, "where": WHERE[a.env], "host": {}, "mode": "-", "reps": "-",
               "qemu_machine": ARM64_QEMU_MACHINE if arm else QEMU_MACHINE,
               "qemu_cpu": "host", "only": [a.bench],
               "rows": [], "skipped": [{"bench": a.bench, "reason": a.reason}], "errors": [],
               "notes": [], "complete": True, "seconds": 0}
        Path(a.json).write_text(json.dumps({"schema": 1, "runs": [run]}, indent=1) + "\n")
        return 0
    if a.sub == "arm64-parse":
        return cmd_arm64_parse(a)
    if a.sub == "cases":
        for k, n in Opts(a).boot_cases:
            print(f"{k}:{n}")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
