"""The vibevmm command line: options, errors, and asm guests end to end."""
import os
import pathlib
import select
import signal
import subprocess
import time

import pytest

from conftest import run


def one_error_line(res):
    """Bad input: non-zero status and exactly one line on stderr."""
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("vibevmm: ")
    return lines[0]


def test_help_and_version(vibevmm):
    res = run([vibevmm, "--help"])
    assert res.returncode == 0
    for opt in ("--kernel", "--initrd", "--cmdline", "--mem", "--cpus", "--disk",
                "--net", "--console", "--binary", "--entry", "--log", "--version",
                "--exit-port", "--debugcon", "path=FILE", "143 SIGTERM",
                "--transport mmio|pci", "--vfio DEV"):
        assert opt in res.stdout
    res = run([vibevmm, "--version"])
    assert res.returncode == 0
    assert res.stdout.startswith("vibevmm ")


@pytest.mark.parametrize("args,needle", [
    ([], "nothing to run"),
    (["--bogus"], "unknown option"),
    (["--binary", "/nonexistent/guest.bin"], "No such file"),
    (["--binary", "/"], "Is a directory"),
    (["--binary", "/dev/null"], "not a regular file"),
    (["--binary", "EMPTY"], "file is empty"),
    (["--binary", "GUEST", "--mem", "lots"], "--mem lots"),
    (["--binary", "GUEST", "--mem", "0"], "--mem 0"),
    (["--binary", "GUEST", "--cpus", "1000"], "--cpus 1000"),
    (["--binary", "GUEST", "--entry", "0x40000000", "--mem", "512M"], "outside guest RAM"),
    (["--binary", "GUEST", "--entry", "0x1fffff8", "--mem", "32M"], "do not fit"),
    (["--binary", "GUEST", "--log", "9"], "--log 9"),
    (["--binary", "GUEST", "--disk", "x.img"], "need --kernel"),
    (["--binary", "GUEST", "--net", "tap=tap0"], "need --kernel"),
    (["--binary", "GUEST", "--pci"], "PCI is described by ACPI, which only Linux boots get"),
    (["--binary", "GUEST", "--transport", "foo"], "--transport foo: want mmio or pci"),
    (["--binary", "GUEST", "--transport", ""], "--transport : want mmio or pci"),
    (["--binary", "GUEST", "--transport", "PCI"], "--transport PCI: want mmio or pci"),
    (["--binary", "GUEST", "--transport", "pci"], "PCI is described by ACPI, which only Linux boots get"),
    (["--binary", "GUEST", "--vfio", "0000:01:00.0"], "--vfio needs --kernel"),
    (["--kernel", "K"] + ["--vfio", "01:00.0"] * 9, "--vfio: at most 8 devices"),
    (["--kernel", "K", "--disk", "path=a.img,format=qcow2"], "unknown key 'format'"),
    (["--kernel", "K", "--disk", "path=a.img,cache=writeback"], "cache=writeback: want none or host"),
    (["--kernel", "K", "--disk", "path=a.img,aio=native"], "aio=native: want io_uring or sync"),
    (["--kernel", "K", "--disk", "path=a.img,num_queues=0"], "num_queues=0: want 1 to 64"),
    (["--kernel", "K", "--disk", "path=a.img,num_queues=65"], "num_queues=65: want 1 to 64"),
    (["--kernel", "K", "--net", "tap=t0", "--net", "tap=t0"], "TAP t0 is given twice"),
    (["--kernel", "K", "--net", "tap=t0,queues=0"], "bad item 'queues=0'"),
    (["--kernel", "K", "--net", "tap=t0,queues=9"], "queues=1-8"),
])
def test_bad_input_one_clear_line(vibevmm, guest_dir, tmp_path, args, needle):
    (tmp_path / "empty.bin").write_bytes(b"")
    subst = {"GUEST": str(guest_dir / "hello.bin"), "EMPTY": str(tmp_path / "empty.bin")}
    args = [subst.get(a, a) for a in args]
    line = one_error_line(run([vibevmm] + args))
    assert needle in line


def test_vfio_device_errors_are_one_line(vibevmm, tmp_path, kvm_usable):
    """--vfio names what is wrong with the device before anything runs:
    not an address, no such device (the whole checking is unit-tested on a
    fake VFIO: tests/unit/test_vfio.c)."""
    kernel = tmp_path / "k"
    kernel.write_bytes(b"not a kernel")
    for dev, needle in (("zz:1", '"zz:1" is not a PCI address'),
                        ("0000:00:1f.7", "0000:00:1f.7: no such PCI device")):
        res = run([vibevmm, "--kernel", str(kernel), "--vfio", dev])
        assert res.returncode == 1
        assert needle in one_error_line(res)


def test_vfio_without_iommu_says_so(vibevmm, tmp_path, kvm_usable):
    """On a host whose IOMMU is off (this one, and the plain test hosts),
    a real PCI device has no IOMMU group: the one line says that and how
    to turn the IOMMU on."""
    groups = pathlib.Path("/sys/kernel/iommu_groups")
    if groups.is_dir() and any(groups.iterdir()):
        pytest.skip("this host has an IOMMU")
    devices = sorted(pathlib.Path("/sys/bus/pci/devices").glob("*"))
    if not devices:
        pytest.skip("this host has no PCI device")
    kernel = tmp_path / "k"
    kernel.write_bytes(b"not a kernel")
    res = run([vibevmm, "--kernel", str(kernel), "--vfio", devices[0].name])
    assert res.returncode == 1
    line = one_error_line(res)
    assert f"vfio {devices[0].name}: no IOMMU group" in line, line
    assert "intel_iommu=on" in line, line


def test_hello_guest_exit_status_and_console(vibevmm, guest_dir, kvm_usable):
    res = run([vibevmm, "--binary", str(guest_dir / "hello.bin"), "--log", "3"])
    assert res.returncode == 42
    assert res.stdout == "hello from debugcon\nhello from serial\n"
    assert "guest exited with status 42" in res.stderr


def test_pvh_entry_state_and_start_info(vibevmm, guest_dir, kvm_usable, tmp_path):
    """A PVH ELF (tests/guests/x86_64/elf/pvh.S) is entered through PVH: the guest
    checks 32-bit protected mode without paging and the start info's magic,
    version and RSDP, then prints the command line, memory map size, module
    count and the first line of the initrd it was handed."""
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"INITRD-OK-7311\n" + bytes(range(256)) * 64)
    res = run([vibevmm, "--kernel", str(guest_dir / "pvh.elf"), "--initrd", str(initrd),
               "--cmdline", "hello-pvh x=1", "--mem", "64M", "--log", "3",
               "--debugcon", "--exit-port"])
    assert res.returncode == 42, res.stdout + res.stderr
    assert "kernel: ELF (PVH), PVH entry 0x100000" in res.stderr
    line = res.stdout.strip()
    assert line.startswith("PVH cmdline=hello-pvh x=1 ")
    # 64 MiB: low RAM, the BIOS area, RAM from 1 MiB
    assert line.endswith(" memmap=3 modules=1 initrd=INITRD-OK-7311")
    res = run([vibevmm, "--kernel", str(guest_dir / "pvh.elf"), "--mem", "64M",
               "--debugcon", "--exit-port"])
    assert res.returncode == 42, res.stdout + res.stderr
    assert res.stdout.strip().endswith(" memmap=3 modules=0")


def test_entry_elsewhere(vibevmm, guest_dir, kvm_usable):
    res = run([vibevmm, "--binary", str(guest_dir / "hello.bin"),
               "--entry", "0x3000000", "--mem", "64M"])
    assert res.returncode == 42
    assert "hello from serial" in res.stdout


def test_hlt_ends_with_zero(vibevmm, guest_dir, kvm_usable):
    res = run([vibevmm, "--binary", str(guest_dir / "regs.bin"), "--log", "3"])
    assert res.returncode == 0
    assert "guest halted" in res.stderr


def test_all_vcpus_must_halt(vibevmm, guest_dir, kvm_usable):
    res = run([vibevmm, "--binary", str(guest_dir / "regs.bin"), "--cpus", "4", "--log", "3"])
    assert res.returncode == 0
    assert "guest halted" in res.stderr


def stats_rows(stderr):
    """--stats' table: {label: [total, vCPU0, vCPU1, ...]}."""
    rows = {}
    for line in stderr.split("vibevmm: exit statistics:\n", 1)[1].splitlines():
        parts = line.split()
        if parts and parts[-1].isdigit():
            n = next(i for i, p in enumerate(parts) if p.isdigit())
            rows[" ".join(parts[:n])] = [int(p) for p in parts[n:]]
    return rows


def test_stats_count_exits_by_reason_and_device(vibevmm, guest_dir, kvm_usable):
    """hello: 20 debugcon (MMIO) bytes, 18 UART bytes and the exit port."""
    res = run([vibevmm, "--binary", str(guest_dir / "hello.bin"), "--stats"])
    assert res.returncode == 42
    rows = stats_rows(res.stderr)
    assert rows["io"] == [19, 19] and rows["mmio"] == [20, 20], res.stderr
    assert rows["debugcon mmio 0x90000000"] == [20, 20]
    assert rows["serial8250 port 0x3f8"] == [18, 18]
    assert rows["exit-port port 0xf4"] == [1, 1]
    assert "vibevmm: exit statistics" not in run(
        [vibevmm, "--binary", str(guest_dir / "hello.bin")]).stderr


def test_stats_per_vcpu_and_unclaimed_ports(vibevmm, guest_dir, kvm_usable):
    """smp: each vCPU writes a port nobody claims once, then halts."""
    res = run([vibevmm, "--binary", str(guest_dir / "smp.bin"), "--cpus", "3", "--stats"])
    assert res.returncode == 0
    rows = stats_rows(res.stderr)
    assert rows["io"] == [3, 1, 1, 1] and rows["hlt"] == [3, 1, 1, 1], res.stderr
    assert rows["unclaimed port 0x520"] == [3, 1, 1, 1]


def test_triple_fault_dumps_registers(vibevmm, guest_dir, kvm_usable):
    res = run([vibevmm, "--binary", str(guest_dir / "triple_fault.bin")])
    assert res.returncode == 2
    assert "guest crashed: shutdown" in res.stderr
    assert " rip " in res.stderr and "cr3 0000000000009000" in res.stderr


def test_internal_error_reported(vibevmm, guest_dir, kvm_usable):
    res = run([vibevmm, "--binary", str(guest_dir / "fwait.bin")])
    if res.returncode == 7:
        pytest.skip("this KVM executes fwait (hardware virtualization)")
    assert res.returncode == 2
    assert "guest crashed: internal-error" in res.stderr
    assert "instruction bytes: 9b" in res.stderr


def read_until(proc, needle, timeout=30):
    """vibevmm's stderr until `needle` shows up (or it exits, or time is up)."""
    seen, deadline = b"", time.monotonic() + timeout
    fd = proc.stderr.fileno()
    while needle.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        chunk = os.read(fd, 4096) if ready else b""
        if ready and not chunk:
            break  # EOF: it exited
        seen += chunk
    return seen.decode(errors="replace")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_with_128_plus_signal(vibevmm, guest_dir, kvm_usable, sig):
    """Stopped by a signal: status 128+N, as a shell reports a program that
    signal N ended (130 SIGINT, 143 SIGTERM)."""
    proc = subprocess.Popen([vibevmm, "--binary", str(guest_dir / "spin.bin"), "--log", "3"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert proc.poll() is None  # still spinning
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + int(sig)
    assert f"stopping on signal {int(sig)}" in err


def test_linux_guest_has_no_exit_port_or_debugcon_unless_asked(vibevmm, guest_dir, kvm_usable):
    """--kernel: port 0xf4 and the debug console are not there by default, so
    a guest's write to them ends nothing and prints nothing (the PVH test
    ELF writes its report to both, then halts)."""
    proc = subprocess.Popen([vibevmm, "--kernel", str(guest_dir / "pvh.elf"), "--mem", "64M",
                             "--log", "3"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = read_until(proc, "unclaimed port write at 0xf4")
        assert "unclaimed MMIO write at 0x90000000" in err, err
        assert "unclaimed port write at 0xf4" in err, err
        time.sleep(0.3)
        assert proc.poll() is None, err  # halted, not ended by the port write
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert out == b""
    assert proc.returncode == 143


def test_ctrl_a_x_quits(vibevmm, guest_dir, kvm_usable):
    proc = subprocess.Popen([vibevmm, "--binary", str(guest_dir / "spin.bin"), "--log", "3"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    out, err = proc.communicate(input="\x01x", timeout=10)
    assert proc.returncode == 0
    assert "VM stopped (Ctrl-A x)" in err


def test_no_kvm_device(vibevmm, guest_dir):
    """No /dev/kvm: a private mount namespace with an empty /dev."""
    res = run(["unshare", "-m", "sh", "-c",
               f"mount -t tmpfs none /dev && exec {vibevmm} --binary {guest_dir / 'hello.bin'}"])
    if res.stderr.startswith("unshare: "):
        # no permission, or a chroot whose / is not a mount point
        pytest.skip("cannot make a mount namespace here: " + res.stderr.strip())
    assert "/dev/kvm not found" in one_error_line(res)


def test_no_kvm_permission(vibevmm, guest_dir, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    binary = tmp_path / "g.bin"
    binary.write_bytes((guest_dir / "hello.bin").read_bytes())
    tmp_path.chmod(0o755)
    binary.chmod(0o644)
    res = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               vibevmm, "--binary", str(binary)])
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.skip("/dev/kvm is world-accessible here")
    assert "no permission to open /dev/kvm" in one_error_line(res)


def fake_bzimage_header(total=1024):
    """A bzImage-looking file cut short: boot flag, 'HdrS', protocol 2.15."""
    img = bytearray(total)
    img[0x1f1] = 4                      # setup_sects
    img[0x1fe:0x200] = b"\x55\xaa"
    img[0x202:0x206] = b"HdrS"
    img[0x206:0x208] = (0x020f).to_bytes(2, "little")
    img[0x236:0x238] = (1).to_bytes(2, "little")  # XLF_KERNEL_64
    return bytes(img)


@pytest.mark.parametrize("content,needle", [
    (b"\x7fELF" + b"\x00" * 60, "malformed or truncated ELF"),
    (fake_bzimage_header(), "malformed or truncated bzImage"),
    (b"#!/bin/sh\necho not a kernel\n" * 100, "not a Linux kernel"),
])
def test_bad_kernel_one_clear_line(vibevmm, tmp_path, kvm_usable, content, needle):
    k = tmp_path / "kernel"
    k.write_bytes(content)
    assert needle in one_error_line(run([vibevmm, "--kernel", str(k)]))


def fake_arm64_image():
    """An arm64 Image header (booting.rst): text_offset 0, image_size 1 MiB,
    little-endian, the magic at 56."""
    img = bytearray(4096)
    img[8:16] = (0).to_bytes(8, "little")
    img[16:24] = (1 << 20).to_bytes(8, "little")
    img[24:32] = (0xa).to_bytes(8, "little")
    img[56:60] = b"ARM\x64"
    return bytes(img)


def test_kernel_of_the_other_arch_named(vibevmm, tmp_path, kvm_usable):
    """A kernel for another architecture is refused by name, before it
    could be loaded and run as this one's code."""
    k = tmp_path / "kernel"
    k.write_bytes(fake_arm64_image() if os.uname().machine == "x86_64" else fake_bzimage_header())
    line = one_error_line(run([vibevmm, "--kernel", str(k)]))
    assert "not an " in line and "kernel (found: " in line


def test_missing_kernel_file(vibevmm, kvm_usable):
    line = one_error_line(run([vibevmm, "--kernel", "/nonexistent/vmlinuz"]))
    assert "cannot read --kernel /nonexistent/vmlinuz" in line


def test_reset_vector_stub_ends_vm_as_reboot(vibevmm, guest_dir, kvm_usable):
    """Linux's last-resort reboot jumps to the real-mode reset vector; the
    stub vibevmm places there for kernel guests must end the VM as a
    reboot (tests/guests/x86_64/elf/lifecycle.S runs it)."""
    res = run([vibevmm, "--kernel", str(guest_dir / "lifecycle.elf"),
               "--cmdline", "r", "--mem", "64M", "--log", "3"])
    assert res.returncode == 0, res.stderr
    assert "vibevmm: info: guest rebooted" in res.stderr


def test_pvpanic_ends_vm_as_crash(vibevmm, guest_dir, kvm_usable):
    """A guest that reports a panic through pvpanic ends the VM with
    status 2 and says so."""
    res = run([vibevmm, "--kernel", str(guest_dir / "lifecycle.elf"),
               "--cmdline", "p", "--mem", "64M"])
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == "vibevmm: guest panicked"
