"""Fixtures for the Linux end-to-end tests.

They run vibevmm on real, unmodified Debian kernels. On a host with hardware
KVM they run directly; on a PVM host tests/e2e/run.sh runs this pytest inside
the emulated AMD-V test host (tests/host/testhost.sh). Guest assets (kernels,
initramfs images) are prepared by tests/e2e/prepare-assets.sh into
$VIBEVMM_E2E_ASSETS (default build/e2e).
"""
import base64
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import threading
import time
import warnings

import pytest

from diskimage import debugfs_cat, mkfs_ext4  # noqa: F401  (tests import them from here)

ROOT = pathlib.Path(__file__).resolve().parents[2]
ASSETS = pathlib.Path(os.environ.get("VIBEVMM_E2E_ASSETS", ROOT / "build/e2e"))
BINDIR = pathlib.Path(os.environ.get("VIBEVMM_BINDIR", ROOT / "bin"))

# name -> (kernel file, initramfs file) in ASSETS
KERNELS = {
    "microvm-vmlinux": ("microvm.vmlinux", "initrd-none.cpio.gz"),
    "microvm-bzimage": ("microvm.bzImage", "initrd-none.cpio.gz"),
    "cloud": ("cloud.bzImage", "initrd-cloud.cpio.gz"),
    "generic": ("generic.bzImage", "initrd-generic.cpio.gz"),
    "generic-vmlinux": ("generic.vmlinux", "initrd-generic.cpio.gz"),
}

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "two_cpu_host: a guest with several vCPUs: run in a test host with "
        "two CPUs (tests/e2e/run.sh runs these in a second session; tests/README.md)")
    config.addinivalue_line(
        "markers", "overcommit: more vCPUs than the two-CPU test host has CPUs: "
        "tests/e2e/run.sh runs these in a session of their own whose KVM keeps nested "
        "paging (with shadow paging, --no-npt, such a guest froze the test host)")
    config.addinivalue_line(
        "markers", "vfio: needs a host NVMe for VFIO (VIBEVMM_VFIO_NVME): tests/e2e/run.sh "
        "runs these in a third session, in the test host started with --iommu-nvme")


# The TCG-emulated AMD-V test host (tests/host/testhost.sh marks its command
# line) now and then breaks a healthy nested guest in one of two ways:
# - a triple fault, a vCPU reset to 0xfff0 in the middle of booting (seen in
#   one of a make check's 52 e2e tests and once in a bench run);
# - a kernel panic from exceptions recursing in the entry code until the
#   exception stack overflows (CI, 2 vCPUs on a two-CPU test host: "stack
#   recursion on stack type 5", RIP in error_entry, CR2 on the stack's guard
#   page). It is the signature of the test host's own crashes on two CPUs
#   ("page-fault recursion on a bad GS base", tests/README.md); 14 boots of
#   the same guest in one session afterwards had none.
# There, and only there, such a boot is run once more and a warning says so.
def _in_tcg_test_host():
    try:
        return "vibevmm.testhost=tcg" in pathlib.Path("/proc/cmdline").read_text()
    except OSError:
        return False


IN_TCG_TEST_HOST = _in_tcg_test_host()
TRIPLE_FAULT = "guest crashed: shutdown"
ENTRY_RECURSION = re.compile(r"stack recursion on stack type|stack guard page was hit"
                             r"|RIP: 0010:error_entry")


def emulator_fault(b):
    """What shows that a boot met one of the TCG test host's faults (above),
    or None."""
    if TRIPLE_FAULT in b.err:
        return b.err[b.err.find(TRIPLE_FAULT):][:200]
    m = ENTRY_RECURSION.search(b.console)
    if m and "Kernel panic" in b.console:
        return "guest kernel panic: " + m.group(0)
    return None


# panic=-1: a guest panic reboots at once, so the VMM ends instead of hanging.
BASE_CMDLINE = "console=ttyS0 panic=-1 vibevmm.verbose=0"


@dataclasses.dataclass
class Boot:
    rc: int
    console: str   # the guest's serial output (vibevmm's stdout)
    err: str       # vibevmm's own messages (stderr)
    seconds: float

    @property
    def out(self):
        return self.console + self.err

    def test_rc(self, name):
        """Exit status of guest test NAME, or None if it never reported."""
        m = re.search(rf"VIBEVMM-TEST-RESULT {re.escape(name)} rc=(\d+)", self.console)
        return int(m.group(1)) if m else None

    def value(self, key):
        """The value of a KEY=VALUE line a guest test printed."""
        m = re.search(rf"^{re.escape(key)}=(.*?)\r?$", self.console, re.M)
        return m.group(1) if m else None


def cmd_arg(script):
    """The kernel argument that has the guest's /init run `script`
    (tests/fixtures/guest-init.sh decodes it)."""
    return "vibevmm.cmd=" + base64.b64encode(script.encode()).decode()


def metrics_totals(path):
    """The counters of a metrics file summed over its lines (each line,
    as Firecracker's, counts what happened since the one before)."""
    totals = {}
    for line in pathlib.Path(path).read_text().splitlines():
        for group, counters in json.loads(line).items():
            if isinstance(counters, dict):
                t = totals.setdefault(group, {})
                for k, v in counters.items():
                    t[k] = t.get(k, 0) + v
    return totals


def kernel_args(kernel):
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel}")
    kfile, ifile = (ASSETS / f for f in KERNELS[kernel])
    if not kfile.exists():
        pytest.fail(f"{kfile} missing: run tests/e2e/prepare-assets.sh")
    return ["--kernel", str(kfile), "--initrd", str(ifile)]


def vibevmm_cmd(kernel, tests=(), cmdline_extra="", cpus=1, mem="256M", args=(),
                log=3, cmdline=None):
    line = cmdline if cmdline is not None else BASE_CMDLINE
    if tests:
        line += " vibevmm.test=" + ",".join(tests)
    if cmdline_extra:
        line += " " + cmdline_extra
    return [str(BINDIR / "vibevmm"), *kernel_args(kernel), "--cmdline", line,
            "--cpus", str(cpus), "--mem", mem, "--log", str(log), *args]


@pytest.fixture
def boot():
    """boot(kernel, tests=(...), cmdline_extra="", cpus=1, mem="256M", args=[],
    stdin_text=None, timeout=180, prefix=[]) -> Boot. `prefix` wraps the
    command (e.g. ["ip", "netns", "exec", "ns"])."""
    def once(cmd, stdin_text, timeout):
        t0 = time.monotonic()
        res = subprocess.run(cmd, input=stdin_text, capture_output=True, text=True,
                             errors="replace", timeout=timeout,
                             stdin=None if stdin_text is not None else subprocess.DEVNULL)
        return Boot(res.returncode, res.stdout, res.stderr, time.monotonic() - t0)

    def run(kernel, tests=(), cmdline_extra="", cpus=1, mem="256M", args=(),
            stdin_text=None, timeout=180, prefix=(), log=3, cmdline=None,
            triple_fault_expected=False):
        cmd = [*prefix, *vibevmm_cmd(kernel, tests, cmdline_extra, cpus, mem, args, log, cmdline)]
        b = once(cmd, stdin_text, timeout)
        fault = emulator_fault(b) if IN_TCG_TEST_HOST and not triple_fault_expected else None
        if fault:
            warnings.warn(f"{kernel} ({cpus} vCPUs) met a known fault of the TCG test host's "
                          f"nested SVM (tests/README.md): booted once more; first run: {fault!r}")
            b = once(cmd, stdin_text, timeout)
        return b
    return run


class Session:
    """A running guest with its console on pipes: expect() text, send() keys."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""
        self.err = b""
        self.lock = threading.Condition()
        threading.Thread(target=self._pump, args=(self.proc.stdout, "buf"), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, "err"), daemon=True).start()

    def _pump(self, stream, attr):
        for chunk in iter(lambda: stream.read1(4096), b""):
            with self.lock:
                setattr(self, attr, getattr(self, attr) + chunk)
                self.lock.notify_all()

    def expect(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        want = text.encode()
        with self.lock:
            while want not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and want not in self.buf):
                    raise AssertionError(
                        f"did not see {text!r} (exit {self.proc.poll()}); console tail:\n"
                        f"{self.buf[-2000:].decode(errors='replace')}\nstderr:\n"
                        f"{self.err[-2000:].decode(errors='replace')}")
                self.lock.wait(min(left, 1.0))
            # consume up to and including the match
            idx = self.buf.index(want) + len(want)
            seen, self.buf = self.buf[:idx], self.buf[idx:]
            return seen.decode(errors="replace")

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait(self, timeout=60):
        return self.proc.wait(timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def session():
    """session(kernel, cmdline_extra=..., ...) -> Session (killed at teardown)."""
    made = []

    def start(kernel, **kw):
        s = Session(vibevmm_cmd(kernel, **kw))
        made.append(s)
        return s
    yield start
    for s in made:
        s.close()


def iproute2():
    """iproute2's ip (busybox's has no netns/tuntap/bridge)."""
    for p in ("/usr/bin/ip", "/usr/sbin/ip", "/bin/ip", "/sbin/ip"):
        try:
            if "iproute2" in subprocess.run([p, "-V"], capture_output=True, text=True).stdout:
                return p
        except OSError:
            continue
    return None


def vhost_net_available():
    """Whether /dev/vhost-net is there (loading vhost_net first: the test
    host ships the module, and its node appears once it is loaded)."""
    if not os.path.exists("/dev/vhost-net") and shutil.which("modprobe"):
        subprocess.run(["modprobe", "vhost_net"], capture_output=True)
    return os.path.exists("/dev/vhost-net")


@contextlib.contextmanager
def private_netns(name):
    """A network namespace NAME-<pid> with lo up, deleted afterwards; yields
    (ip, the command prefix that runs a program in it). Skips the test
    without root, iproute2 or /dev/net/tun."""
    ip = iproute2()
    if os.geteuid() != 0 or not ip or not os.path.exists("/dev/net/tun"):
        pytest.skip("needs root, iproute2 and /dev/net/tun")
    ns = f"{name}-{os.getpid()}"
    subprocess.run([ip, "netns", "add", ns], check=True)
    try:
        prefix = [ip, "netns", "exec", ns]
        subprocess.run([*prefix, ip, "link", "set", "lo", "up"], check=True)
        yield lambda *a: subprocess.run([*prefix, ip, *a], check=True), prefix
    finally:
        subprocess.run([ip, "netns", "del", ns])
