"""The seccomp sandbox from the command line: on by default, --no-seccomp
turns it off, and a filter that cannot be installed is a start-up error."""
import ctypes
import os
import pathlib
import pty
import signal
import socket
import subprocess
import termios
import time

from conftest import run


def thread_modes(pid):
    """{thread name: Seccomp mode} of every thread of `pid` (0 off, 2 filter)."""
    modes = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        line = next(l for l in status.splitlines() if l.startswith("Seccomp:"))
        modes[name if int(task.name) != pid else "main"] = int(line.split()[1])
    return modes


def spin_until_threads(vibevmm, guest_dir, *args):
    """A spinning 2-vCPU guest with stdin on a pipe (so the I/O thread runs);
    returns the process and its threads' modes once all of them exist."""
    proc = subprocess.Popen([vibevmm, "--binary", str(guest_dir / "spin.bin"), "--cpus", "2",
                             "--log", "3", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    modes = {}
    while time.monotonic() < deadline and not {"vcpu0", "vcpu1", "vmm-io"} <= modes.keys():
        time.sleep(0.05)
        modes = thread_modes(proc.pid)
    return proc, modes


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, err


def test_help_lists_no_seccomp(vibevmm):
    assert "--no-seccomp" in run([vibevmm, "--help"]).stdout


def test_every_thread_filtered_by_default(vibevmm, guest_dir, kvm_usable):
    proc, modes = spin_until_threads(vibevmm, guest_dir)
    rc, err = stop(proc)
    for name in ("main", "vcpu0", "vcpu1", "vmm-io"):
        assert modes.get(name) == 2, (modes, err)
    assert rc == 128 + signal.SIGTERM, err  # handled under the main thread's list
    assert "stopping on signal 15" in err


def test_no_seccomp_turns_it_off(vibevmm, guest_dir, kvm_usable):
    proc, modes = spin_until_threads(vibevmm, guest_dir, "--no-seccomp")
    rc, err = stop(proc)
    for name in ("main", "vcpu0", "vcpu1", "vmm-io"):
        assert modes.get(name) == 0, (modes, err)
    assert rc == 128 + signal.SIGTERM, err


def test_stray_kick_signal_is_harmless(vibevmm, guest_dir, kvm_usable):
    """SIGUSR2 from outside lands on the main thread (the first that does not
    block it), runs the kick's handler there and returns (rt_sigreturn)."""
    proc, modes = spin_until_threads(vibevmm, guest_dir)
    assert modes.get("main") == 2, modes
    for _ in range(3):
        proc.send_signal(signal.SIGUSR2)
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    rc, err = stop(proc)
    assert rc == 128 + signal.SIGTERM, err


def test_output_to_sockets_under_seccomp(vibevmm, guest_dir, kvm_usable):
    """stdout and stderr sockets (as under systemd): console bytes and log
    lines go out with send(MSG_DONTWAIT) from the vCPU and main threads."""
    out_r, out_w = socket.socketpair()
    err_r, err_w = socket.socketpair()
    with out_r, out_w, err_r, err_w:
        res = subprocess.run([vibevmm, "--binary", str(guest_dir / "hello.bin"), "--log", "3"],
                             stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, timeout=60)
        out_w.shutdown(socket.SHUT_WR)
        err_w.shutdown(socket.SHUT_WR)
        out = b"".join(iter(lambda: out_r.recv(4096), b"")).decode()
        err = b"".join(iter(lambda: err_r.recv(4096), b"")).decode()
    assert res.returncode == 42, err
    assert out == "hello from debugcon\nhello from serial\n"
    assert "guest exited with status 42" in err


def test_terminal_restored_under_seccomp(vibevmm, guest_dir, kvm_usable):
    """stdin a terminal: raw mode, Ctrl-A x, and the terminal restored (a
    TCSETS from the confined main thread)."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([vibevmm, "--binary", str(guest_dir / "spin.bin"), "--log", "3"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 10
        while termios.tcgetattr(slave) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert termios.tcgetattr(slave) != before, "never switched to raw mode"
        os.write(master, b"\x01x")
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "VM stopped (Ctrl-A x)" in err
        assert termios.tcgetattr(slave) == before
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)


# ---- a start-up error: no room left for our filters ----

SECCOMP_MODE_FILTER = 2
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
BPF_JA = 0x05               # BPF_JMP | BPF_JA, jump by k = 0: a no-op
BPF_RET_K = 0x06            # BPF_RET | BPF_K
SECCOMP_RET_ALLOW = 0x7fff0000


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def allow_all_filter(length):
    insns = (SockFilter * length)(*([SockFilter(BPF_JA, 0, 0, 0)] * (length - 1)),
                                  SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return SockFprog(length, insns), insns


# The kernel allows 32768 filter instructions on one path (plus a penalty
# per filter, which differs between kernels): fill it with allow-all filters,
# halving the size each time the next one does not fit, until even a
# one-instruction filter does not. Then any further filter fails (ENOMEM),
# while everything is still allowed.
FILLERS = [allow_all_filter(1 << b) for b in range(12, -1, -1)]


def fill_seccomp_path():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for prog, _ in FILLERS:
        while libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0:
            pass


def test_filter_that_cannot_be_installed_is_a_startup_error(vibevmm, guest_dir, kvm_usable):
    hello = str(guest_dir / "hello.bin")
    res = run([vibevmm, "--binary", hello], preexec_fn=fill_seccomp_path)
    assert res.returncode == 1, res.stderr
    assert res.stderr.splitlines() == [
        "vibevmm: cannot sandbox the VMM: installing a seccomp filter failed: "
        "Cannot allocate memory (--no-seccomp runs without)"]
    assert res.stdout == ""  # the guest never ran
    # The same process without the sandbox runs the guest.
    res = run([vibevmm, "--binary", hello, "--no-seccomp"], preexec_fn=fill_seccomp_path)
    assert res.returncode == 42, res.stderr
    assert "hello from serial" in res.stdout
