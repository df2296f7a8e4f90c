"""The seccomp sandbox with a real Linux guest: every VMM thread, the disk
worker included, runs under its filter while the guest uses its devices.
(All other e2e tests run with the sandbox on too: it is the default.)"""
import pathlib
import time


def thread_modes(pid):
    """{thread name: Seccomp mode} of every thread of `pid` (0 off, 2 filter)."""
    modes = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        name = (task / "comm").read_text().strip()
        status = (task / "status").read_text()
        line = next(l for l in status.splitlines() if l.startswith("Seccomp:"))
        modes[name if int(task.name) != pid else "main"] = int(line.split()[1])
    return modes


def test_every_vmm_thread_filtered_with_linux(session, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\x5a" * (1 << 20))
    s = session("microvm-vmlinux", cmdline_extra="vibevmm.shell=1", args=["--disk", str(disk)])
    s.expect("interactive shell")
    time.sleep(1)  # let the shell print its prompt
    # The disk worker reads, the I/O thread fills the entropy request.
    s.send("echo disk-$(head -c 3 /dev/vda)-rng-$(head -c 16 /dev/hwrng | wc -c)-ok\n")
    s.expect("disk-ZZZ-rng-16-ok")
    modes = thread_modes(s.proc.pid)
    s.send("exit\n")
    assert s.wait(120) == 0
    assert b"guest powered off" in s.err
    for name in ("main", "vcpu0", "vmm-io", "blk-disk.img"):
        assert modes.get(name) == 2, modes
    # Kernel workers KVM runs inside the process (kvm-nx-lpage-recovery
    # on newer kernels) are not ours; every other thread is filtered.
    assert all(mode == 2 for name, mode in modes.items() if not name.startswith("kvm")), modes
