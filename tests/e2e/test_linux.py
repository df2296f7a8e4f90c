"""Linux boots end to end: real Debian kernels under vibevmm on KVM.

Each boot serves several checks (a boot costs seconds on the test host).
"""
import base64
import re
import signal
import subprocess
import time

import pytest

from conftest import vibevmm_cmd

INITRD_SHA256 = "5d753f5c96174a258f59137499bd5b01008f8383824ac5830f7f99cbe00b1126"


def assert_clean_poweroff(b):
    assert b.rc == 0, b.out[-3000:]
    assert "VIBEVMM-INIT-OK" in b.console
    assert "vibevmm: info: guest powered off" in b.err


# Guests with several vCPUs run in a test host with two CPUs (tests/README.md).
@pytest.mark.parametrize("cpus", [1, pytest.param(4, marks=[pytest.mark.two_cpu_host,
                                                            pytest.mark.overcommit])])
@pytest.mark.parametrize("kernel", ["microvm-vmlinux", "microvm-bzimage"])
def test_microvm_boot(boot, kernel, cpus):
    """CPU count, command line and initrd contents, poweroff status; the
    vmlinux comes in through PVH, the bzImage through the 64-bit entry."""
    b = boot(kernel, tests=("smp", "cmdline", "initrd"), cpus=cpus,
             cmdline_extra="vibevmm.e2e=marker-7731")
    assert_clean_poweroff(b)
    assert b.value("CPUS") == str(cpus)
    assert b.value("CPUS-ONLINE") == ("0" if cpus == 1 else f"0-{cpus - 1}")
    assert "vibevmm.e2e=marker-7731" in b.value("CMDLINE")
    assert b.value("INITRD-SHA256") == INITRD_SHA256
    for t in ("smp", "cmdline", "initrd"):
        assert b.test_rc(t) == 0
    if kernel == "microvm-bzimage":
        assert "bzImage (decompressed on the host" in b.err
    else:
        assert "kernel: ELF (PVH), PVH entry 0x" in b.err


def test_kernel_cache(boot, tmp_path):
    """A bzImage's payload is decompressed once into the cache, then read
    from it; a damaged entry is ignored and replaced; --no-kernel-cache
    neither reads nor writes it. Every boot still boots."""
    env = ["env", f"XDG_CACHE_HOME={tmp_path}"]
    cache = tmp_path / "vibevmm" / "kernels"
    tests = ("initrd",)

    b = boot("microvm-bzimage", tests=tests, prefix=env, args=["--no-kernel-cache"])
    assert_clean_poweroff(b)
    assert not cache.exists()
    for want in ("decompressed on the host)", "from the kernel cache)"):
        b = boot("microvm-bzimage", tests=tests, prefix=env)
        assert_clean_poweroff(b)
        assert b.value("INITRD-SHA256") == INITRD_SHA256
        assert want in b.err, b.err
    entries = list(cache.iterdir())
    assert len(entries) == 1 and entries[0].name.endswith(".vmlinux"), entries
    good = entries[0].read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0x55
    entries[0].write_bytes(bytes(damaged))
    b = boot("microvm-bzimage", tests=tests, prefix=env)
    assert_clean_poweroff(b)
    assert "decompressed on the host)" in b.err, b.err
    assert entries[0].read_bytes() == good
    assert [e.name for e in cache.iterdir()] == [entries[0].name]


@pytest.mark.parametrize("kernel", ["microvm-vmlinux", "generic-vmlinux"])
def test_pvh_entry_and_64bit_entry(boot, kernel):
    """An ELF with a PVH note boots through PVH by default (Linux then
    marks its boot_params as built from a PVH start info, loader type 0xb0)
    and through the 64-bit entry with a zero page (0xff) with --no-pvh.
    (Secondary CPUs after a PVH entry: test_microvm_boot, 4 vCPUs.)"""
    b = boot(kernel, tests=("bootproto", "initrd"))
    assert_clean_poweroff(b)
    assert "kernel: ELF (PVH), PVH entry 0x" in b.err
    assert b.value("BOOT-LOADER-TYPE") == "b0"
    assert b.value("INITRD-SHA256") == INITRD_SHA256
    b = boot(kernel, tests=("bootproto",), args=["--no-pvh"])
    assert_clean_poweroff(b)
    assert "kernel: ELF (PVH), 64-bit entry 0x" in b.err
    assert b.value("BOOT-LOADER-TYPE") == "ff"


def test_bzimage_through_its_own_decompressor(boot):
    b = boot("microvm-bzimage", tests=("smp",), args=["--bzimage-as-is"])
    assert_clean_poweroff(b)
    assert "decompressed on the host" not in b.err
    assert b.test_rc("smp") == 0


ACPI_RESET = "acpi-pm: the guest wrote the ACPI reset register"
I8042_RESET = "i8042: the guest pulsed the reset line"


# Which reset the guest uses: the minimal kernel (ACPI, no EFI) writes the
# ACPI reset register; Debian's kernels (EFI built in, hardware-reduced
# ACPI) pick the EFI reset, which without EFI falls through to the real-mode
# BIOS restart: the stub at the reset vector pulses the i8042 reset line.
# reboot=k/a/b force the keyboard controller, ACPI, or the BIOS restart.
@pytest.mark.parametrize("kernel,method,via", [
    ("microvm-vmlinux", "", ACPI_RESET),
    ("microvm-vmlinux", "reboot=k", I8042_RESET),
    ("microvm-vmlinux", "reboot=b", I8042_RESET),
    ("cloud", "", I8042_RESET),
    ("cloud", "reboot=a", ACPI_RESET),
    ("generic", "", I8042_RESET),
    ("generic", "reboot=k", I8042_RESET),
])
def test_reboot_ends_vmm_with_zero(boot, kernel, method, via):
    b = boot(kernel, tests=("reboot",), cmdline_extra=method)
    assert b.rc == 0, b.out[-3000:]
    assert "VIBEVMM-REBOOT-NOW" in b.console
    assert "vibevmm: info: guest rebooted" in b.err
    assert via in b.err
    if kernel != "microvm-vmlinux":
        # The i8042 the DSDT describes probes cleanly (it used to fail for
        # want of IRQ 1 on a platform without a legacy PIC).
        # (Linux numbers the interrupt of GSI 1 as it likes, e.g. irq 27)
        assert re.search(r"serio: i8042 KBD port at 0x60,0x64 irq \d+", b.console)
        assert "i8042: probe of i8042 failed" not in b.console
        assert "Keylock active" not in b.console


def test_triple_fault_is_a_crash_with_registers(boot):
    """reboot=t makes Linux triple-fault on purpose."""
    b = boot("microvm-vmlinux", tests=("reboot",), cmdline_extra="reboot=t",
             triple_fault_expected=True)
    assert b.rc == 2, b.out[-3000:]
    assert "guest crashed: shutdown" in b.err
    assert " rip " in b.err and " cr3 " in b.err


@pytest.mark.parametrize("kernel", ["microvm-vmlinux", "cloud", "generic"])
def test_guest_panic_with_reboot(boot, kernel):
    """panic=-1 reboots at once: the VMM ends instead of hanging. (The
    minimal kernel has no pvpanic; Debian's are told not to load it.)"""
    b = boot(kernel, tests=("panic",), cmdline_extra="vibevmm.noload=pvpanic_mmio")
    assert "VIBEVMM-PANIC-NOW" in b.console
    assert "Kernel panic" in b.console
    assert b.rc == 0, b.out[-3000:]
    assert "guest rebooted" in b.err


@pytest.mark.parametrize("kernel", ["cloud", "generic"])
def test_guest_panic_reported_by_pvpanic(boot, kernel):
    """With pvpanic (Debian's pvpanic_mmio, loaded by the initramfs) a
    panic is a crash: status 2 and the VMM's own reason line."""
    b = boot(kernel, tests=("panic",))
    assert "VIBEVMM-PANIC-NOW" in b.console
    assert "Kernel panic" in b.console
    assert b.rc == 2, b.out[-3000:]
    assert "vibevmm: guest panicked" in b.err
    assert "guest rebooted" not in b.err


@pytest.mark.parametrize("kernel", ["microvm-vmlinux", "cloud"])
def test_console_typing(session, kernel):
    """Type into the serial console (input interrupts) and read the answer."""
    s = session(kernel, cmdline_extra="vibevmm.shell=1")
    s.expect("interactive shell")
    time.sleep(1)  # let the shell print its prompt
    s.send("echo vibe-$((6*7))-ok\n")
    s.expect("vibe-42-ok")
    s.send("exit\n")
    assert s.wait(120) == 0
    assert b"guest powered off" in s.err


def test_ctrl_a_x_quits_linux(session):
    s = session("microvm-vmlinux", cmdline_extra="vibevmm.shell=1")
    s.expect("interactive shell")
    s.send("\x01x")
    assert s.wait(60) == 0
    assert b"VM stopped (Ctrl-A x)" in s.err


@pytest.mark.parametrize("kernel,sig", [("microvm-vmlinux", signal.SIGTERM),
                                        ("cloud", signal.SIGTERM),
                                        ("generic", signal.SIGINT)])
def test_signal_stops_linux(session, kernel, sig):
    s = session(kernel, cmdline_extra="vibevmm.shell=1")
    s.expect("interactive shell")
    s.proc.send_signal(sig)
    assert s.wait(60) == 128 + sig
    assert f"stopping on signal {int(sig)}".encode() in s.err


FLOOD = "while :; do echo flood-flood-flood-flood-flood-flood-flood-flood; done\n"
HVC_CMDLINE = "console=hvc0 panic=-1 vibevmm.verbose=0"


@pytest.mark.parametrize("kernel", ["microvm-vmlinux", "cloud"])
def test_signal_ends_linux_with_stdout_stalled(kernel, tmp_path):
    """A guest that prints without end to a stdout nobody reads (a pager
    that stopped reading): the guest keeps running, output is dropped and
    counted, and SIGTERM still ends vibevmm within 2 s. Through the virtio
    console: a Linux guest flooding the 16550 (an exit per byte) froze the
    TCG test host itself, in make check here and in CI, after enough tests
    before it; the stalled-stdout path is the same for both consoles, and
    the 16550's own flood is tests/cli's (flood.S, an asm guest)."""
    cmd = "vibevmm.cmd=" + base64.b64encode(FLOOD.encode()).decode()
    with open(tmp_path / "stderr", "w+") as err:
        proc = subprocess.Popen(vibevmm_cmd(kernel, cmdline=HVC_CMDLINE, cmdline_extra=cmd,
                                            args=["--console", "virtio"], log=2),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        try:
            deadline = time.monotonic() + 240
            while "is not being read fast enough" not in (tmp_path / "stderr").read_text():
                assert proc.poll() is None, (tmp_path / "stderr").read_text()
                assert time.monotonic() < deadline, "the output never stalled"
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            rc = proc.wait(timeout=60)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = (tmp_path / "stderr").read_text()
    assert rc == 128 + signal.SIGTERM, log
    assert took < 2.0, log
    assert "bytes of guest console output to stdout were dropped" in log


@pytest.mark.two_cpu_host
@pytest.mark.parametrize("kernel", ["cloud", "generic"])
def test_stock_debian_kernel(boot, kernel):
    """Unmodified Debian kernels (bzImage, modules from the initramfs)."""
    b = boot(kernel, tests=("smp",), cpus=2, mem="512M")
    assert_clean_poweroff(b)
    assert b.value("CPUS") == "2"
    assert b.test_rc("smp") == 0
    assert "bzImage (decompressed on the host" in b.err


# The guest writes 7 to port 0xf4 through /dev/port (the minimal kernel has
# DEVPORT), as a Linux guest's outb would.
PORT_WRITE = ("printf '\\007' | dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null\n"
              "echo PORT-WRITTEN rc=$?\n")


def test_exit_port_only_when_asked(boot):
    """A Linux guest gets no exit port by default: its write to 0xf4 ends
    nothing and the guest powers off as usual. With --exit-port the write
    ends the VMM with the value written as its exit status."""
    cmd = "vibevmm.cmd=" + base64.b64encode(PORT_WRITE.encode()).decode()
    b = boot("microvm-vmlinux", cmdline_extra=cmd)
    assert_clean_poweroff(b)
    assert "PORT-WRITTEN rc=0" in b.console, b.out[-3000:]
    assert "guest exited" not in b.err
    b = boot("microvm-vmlinux", cmdline_extra=cmd, args=["--exit-port"])
    assert b.rc == 7, b.out[-3000:]
    assert "guest exited with status 7" in b.err
    assert "guest powered off" not in b.err
