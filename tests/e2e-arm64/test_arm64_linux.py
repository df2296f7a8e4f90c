"""Debian's unmodified arm64 kernel under vibevmm, end to end.

The arm64 test host has no python, so the boots run in ONE session of it
(tests/host/run-direct-or-host.sh --arch arm64: directly on an arm64 host
with KVM) through boots.sh, which leaves each boot's console, stderr and exit
status in the payload; the tests here judge them, each by vibevmm's own
reason line and exit status. The disk images are made here with mkfs.ext4
-d and read back with debugfs.
"""
import dataclasses
import hashlib
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/e2e"))
from diskimage import debugfs_cat, mkfs_ext4  # noqa: E402  (shared with tests/e2e)
HERE = pathlib.Path(__file__).resolve().parent
CACHE = pathlib.Path(os.environ.get("VIBEVMM_CACHE", pathlib.Path.home() / ".cache/vibevmm"))
INITRD_SHA256 = "5d753f5c96174a258f59137499bd5b01008f8383824ac5830f7f99cbe00b1126"
MARK = "vibevmm.e2e=arm64-marker-5521"   # boots.sh puts it on the command line
HELLO = "hello from the host, vibevmm arm64 e2e"
SESSION_TIMEOUT = 900


def vibevmm_binary():
    """The arm64 CLI: a native build on arm64, else the cross build."""
    if "VIBEVMM_ARM64_BIN" in os.environ:
        return pathlib.Path(os.environ["VIBEVMM_ARM64_BIN"])
    if platform.machine() == "aarch64":
        return ROOT / "bin/vibevmm"
    return ROOT / "build/arm64/bin/vibevmm"


@dataclasses.dataclass
class Boot:
    name: str
    rc: int
    seconds: float
    console: str   # the guest's console (vibevmm's stdout)
    err: str       # vibevmm's own messages

    @property
    def out(self):
        return (self.console[-3000:] + "\n--- vibevmm stderr ---\n" + self.err)

    def test_rc(self, name):
        m = re.search(rf"VIBEVMM-TEST-RESULT {re.escape(name)} rc=(\d+)", self.console)
        return int(m.group(1)) if m else None

    def value(self, key):
        m = re.search(rf"^{re.escape(key)}=(.*?)\r?$", self.console, re.M)
        return m.group(1) if m else None


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def prepare_payload(payload):
    binary = vibevmm_binary()
    kernel = CACHE / "kernels/arm64/vmlinuz"
    if not binary.exists():
        pytest.fail(f"{binary} missing: make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-")
    if not kernel.exists():
        pytest.fail(f"{kernel} missing: tests/fixtures/fetch-kernels.sh --arch arm64")
    for tool in ("mkfs.ext4", "debugfs"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not installed (e2fsprogs; scripts/deps.sh test)")
    (payload / "bin").mkdir()
    shutil.copy(binary, payload / "bin/vibevmm")
    shutil.copy(kernel, payload / "Image")
    shutil.copy(HERE / "boots.sh", payload / "boots.sh")
    subprocess.run([str(ROOT / "tests/fixtures/make-initramfs.sh"), "arm64",
                    str(payload / "initrd.cpio.gz")], check=True, stdout=subprocess.DEVNULL)
    mkfs_ext4(payload / "vda.img", 16, {"hello.txt": (HELLO + "\n").encode()})
    mkfs_ext4(payload / "vdb.img", 8, {"hello.txt": b"read-only disk\n"})


def run_session(payload, say, host_args=(), boots=()):
    """boots.sh (all its boots, or those named) in one test-host session;
    its lines go out as they come. Returns (exit status, stdout, stderr)."""
    cmd = [str(ROOT / "tests/host/run-direct-or-host.sh"), "--arch", "arm64",
           "--timeout", str(SESSION_TIMEOUT), "--idle-timeout", "300", *host_args,
           "--payload", str(payload), "--", "sh", "boots.sh", *boots]
    err = payload / "session.err"
    with open(err, "w") as ef:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=ef, text=True,
                                stdin=subprocess.DEVNULL)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            say("  arm64 | " + line.rstrip())
        rc = proc.wait(timeout=SESSION_TIMEOUT + 60)
    return rc, "".join(lines), err.read_text(errors="replace")


@pytest.fixture(scope="module")
def session(request, tmp_path_factory):
    """Runs every boot once for the module: {"boots": {name: Boot}, ...}."""
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    cap = request.config.pluginmanager.getplugin("capturemanager")

    def say(line):
        if tr is None or cap is None:
            print(line, flush=True)
            return
        with cap.global_and_fixture_disabled():
            tr.write_line(line)
            tr.flush()

    payload = tmp_path_factory.mktemp("arm64-payload")
    prepare_payload(payload)
    vdb_sha = sha256((payload / "vdb.img").read_bytes())
    rc, out, err = run_session(payload, say)
    if rc == 77:
        pytest.skip("no arm64 test host here (qemu-system-aarch64 or the kernel): " + err[-500:])
    boots = {}
    for m in re.finditer(r"^ARM64-BOOT (\S+) rc=(\d+) seconds=([\d.]+)$", out, re.M):
        name = m.group(1)
        read = lambda ext: (payload / f"out/{name}.{ext}").read_text(errors="replace")
        boots[name] = Boot(name, int(m.group(2)), float(m.group(3)), read("console"), read("err"))
    return {"rc": rc, "out": out, "err": err, "boots": boots, "payload": payload,
            "vdb_sha": vdb_sha}


def get_boot(session, name):
    b = session["boots"].get(name)
    if b is None:
        pytest.fail(f"boot {name!r} did not finish (session status {session['rc']}):\n"
                    f"{session['out'][-2000:]}\n{session['err'][-3000:]}")
    return b


def assert_clean_poweroff(b):
    assert b.rc == 0, b.out
    assert "VIBEVMM-INIT-OK" in b.console, b.out
    assert "vibevmm: info: guest powered off" in b.err, b.out


def test_session_ran_every_boot(session):
    """The test host ran boots.sh to its end (status 0, all six boots)."""
    assert session["rc"] == 0, session["err"][-3000:]
    assert "ARM64-BOOTS-DONE" in session["out"]
    assert sorted(session["boots"]) == ["hvc", "main", "panic", "sigterm", "smp2", "snapshot"]


def test_one_vcpu_disks_net_rng_poweroff(session):
    """1 vCPU to /init and poweroff; cmdline and initrd; vda read and
    written (the guest's file read back here), vdb read-only and unchanged;
    ping of the test host over a TAP; entropy from virtio-rng."""
    b = get_boot(session, "main")
    assert_clean_poweroff(b)
    assert not re.search(r"vibevmm: (error|warning)", b.err), b.err
    assert "kernel: arm64 Image" in b.err
    assert b.value("CPUS") == "1" and b.value("CPUS-ONLINE") == "0"
    assert MARK in b.value("CMDLINE")
    assert b.value("INITRD-SHA256") == INITRD_SHA256
    drivers = sorted(re.findall(r"^VIRTIO virtio\d+ device=\S+ driver=(\S+?)\r?$",
                                b.console, re.M))
    assert drivers == ["virtio_blk", "virtio_blk", "virtio_net", "virtio_rng"], b.out
    for t in ("smp", "cmdline", "initrd", "devices", "blkrw", "rng", "net"):
        assert b.test_rc(t) == 0, f"guest test {t}:\n{b.out}"
    # virtio-blk: read what the host wrote, write a file the host reads back
    assert b.value("BLKRW-HELLO") == HELLO
    assert b.value("BLKRW-SERIAL") == "vda.img"
    wrote = b.value("BLKRW-WROTE-SHA256")
    back = debugfs_cat(session["payload"] / "vda.img", "/guest.bin")
    assert len(back) == 1 << 20 and sha256(back) == wrote
    assert b.value("BLKRO-RO") == "1"
    assert b.value("BLKRO-WRITE") == "refused"
    assert b.value("BLKRO-HELLO") == "read-only disk"
    assert sha256((session["payload"] / "vdb-after.img").read_bytes()) == session["vdb_sha"]
    # virtio-net: the MAC given, three pings of the TAP's address answered
    assert "TAP tap0, MAC 52:54:00:12:34:56" in b.err
    assert b.value("NET-MAC") == "52:54:00:12:34:56"
    assert "NET-PING rc=0" in b.console
    assert "3 packets transmitted, 3 packets received" in b.console
    assert b.value("RNG-CURRENT") == "virtio_rng.0" and b.value("RNG-BYTES") == "64"


def test_two_vcpus_then_reboot(session):
    """2 vCPUs (the secondary started by PSCI CPU_ON), then `reboot -f`:
    PSCI SYSTEM_RESET ends vibevmm with status 0 and "guest rebooted"."""
    b = get_boot(session, "smp2")
    assert b.value("CPUS") == "2", b.out
    assert b.value("CPUS-ONLINE") == "0-1"
    assert MARK in b.value("CMDLINE")
    assert b.value("INITRD-SHA256") == INITRD_SHA256
    for t in ("smp", "cmdline", "initrd"):
        assert b.test_rc(t) == 0, f"guest test {t}:\n{b.out}"
    assert "VIBEVMM-REBOOT-NOW" in b.console
    assert b.rc == 0, b.out
    assert "vibevmm: info: guest rebooted" in b.err, b.out
    assert "guest powered off" not in b.err
    assert "interrupt controller: GICv3" in b.err


def test_gicv2_fallback(tmp_path):
    """A host whose GIC has no v3 interface (the test host's virt machine
    with gic-version=2): vibevmm falls back to a vGICv2, and Debian's kernel
    runs the same 2-vCPU boot on it."""
    if platform.machine() == "aarch64":
        pytest.skip("runs on the arm64 test host, whose GIC version can be chosen")
    prepare_payload(tmp_path)
    rc, out, err = run_session(tmp_path, print, ("--qemu-arg", "-M", "--qemu-arg", "gic-version=2"),
                               ("smp2",))
    if rc == 77:
        pytest.skip("no arm64 test host here: " + err[-500:])
    m = re.search(r"^ARM64-BOOT smp2 rc=(\d+)", out, re.M)
    assert m, out + err[-3000:]
    boot_err = (tmp_path / "out/smp2.err").read_text(errors="replace")
    console = (tmp_path / "out/smp2.console").read_text(errors="replace")
    assert "interrupt controller: GICv2" in boot_err, boot_err
    assert re.search(r"^CPUS=2\r?$", console, re.M), console[-3000:]
    assert int(m.group(1)) == 0 and "guest rebooted" in boot_err, boot_err


def test_virtio_console_hvc0(session):
    """--console virtio with console=hvc0: /init's output comes through hvc0
    (virtio_console is a module there) and a line on vibevmm's stdin reaches
    the guest; the guest test poweroff ends it."""
    b = get_boot(session, "hvc")
    assert_clean_poweroff(b)
    assert "VIBEVMM-POWEROFF-NOW" in b.console
    assert "virtio_console" in b.console
    assert b.value("CONSOLE-ACTIVE") == "hvc0", b.out
    assert b.value("CONSOLE-GOT") == "typed-on-the-arm64-host", b.out
    assert b.test_rc("console") == 0


def test_panic_resets(session):
    """arm64 has no pvpanic: with panic=-1 the panicking kernel resets
    through PSCI SYSTEM_RESET, which vibevmm reports as a reboot (status 0)."""
    b = get_boot(session, "panic")
    assert "VIBEVMM-PANIC-NOW" in b.console, b.out
    assert "Kernel panic - not syncing: sysrq triggered crash" in b.console
    assert b.rc == 0, b.out
    assert "vibevmm: info: guest rebooted" in b.err, b.out


def test_sigterm_stops_it(session):
    """SIGTERM to vibevmm while the guest sleeps: status 143 (128 + 15)."""
    b = get_boot(session, "sigterm")
    assert "VIBEVMM-SLEEPING" in b.console, b.out
    assert b.rc == 143, b.out
    assert "vibevmm: info: stopping on signal 15" in b.err, b.out


COUNT = re.compile(r"^COUNT (\d+) (\S+) ([\d.]+)\r?$", re.M)


def test_snapshot_restored_linux_goes_on(session):
    """A 2-vCPU guest counting each second is saved (SIGUSR1), its VMM
    killed, and restored in a new process (--restore): the count goes on
    from where it was saved, with the same boot_id and an uptime that goes
    on (no reboot); SIGTERM then stops it (143)."""
    b = get_boot(session, "snapshot")
    a_console = (session["payload"] / "out/snapshot-a.console").read_text(errors="replace")
    a_err = (session["payload"] / "out/snapshot-a.err").read_text(errors="replace")
    assert "snapshot saved to" in a_err, a_err[-2000:]
    before = int(re.search(r"^ARM64-SNAP-BEFORE (\d+)$", session["out"], re.M).group(1))
    a = [(int(n), i, float(u)) for n, i, u in COUNT.findall(a_console)]
    got = [(int(n), i, float(u)) for n, i, u in COUNT.findall(b.console)]
    assert len(got) >= 3, b.out
    saved = next(c for c in a if c[0] == before)
    assert before < got[0][0] <= a[-1][0] + 1, (before, a[-1], got)
    assert [c[0] for c in got[:3]] == [got[0][0] + k for k in range(3)]
    assert all(c[1] == saved[1] for c in got), (saved, got)   # the same boot
    assert got[0][2] >= saved[2], (saved, got)                  # its clock went on
    assert "VIBEVMM-INIT-OK" not in b.console, b.out            # no boot again
    assert "restored from" in b.err, b.out
    assert b.rc == 143, b.out
