"""The host side of the console must never wedge vibevmm: a stdout nobody
reads, a stdin that hung up, a regular file as stdin (asm guests, local KVM).
"""
import hashlib
import os
import pathlib
import pty
import signal
import subprocess
import termios
import threading
import time

import pytest

from conftest import run

# What "promptly" means for ending on a signal or Ctrl-A x (the bound).
END_WITHIN_S = 2.0


def io_thread_cpu_seconds(pid):
    """utime + stime of the VM's I/O thread (named vmm-io)."""
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == "vmm-io":
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    raise AssertionError("no vmm-io thread")


STALLED = "guest console output to stdout is not being read fast enough"


def start_flood(vibevmm, guest_dir, tmp_path, stdin):
    """The flood guest with stdout a pipe nobody reads and stderr a file;
    returns once vibevmm says it drops output (the pipe's 64 KiB and its
    own buffer's 64 KiB are full: about a second on this machine's PVM)."""
    err = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen([vibevmm, "--binary", str(guest_dir / "flood.bin"), "--log", "3"],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=err)
    deadline = time.monotonic() + 120
    while STALLED not in (tmp_path / "stderr").read_text():
        assert proc.poll() is None, (tmp_path / "stderr").read_text()
        assert time.monotonic() < deadline, "vibevmm never reported the stalled output"
        time.sleep(0.1)
    return proc, err


def ended_in_time(proc):
    t0 = time.monotonic()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("vibevmm did not end within 30 s")
    return time.monotonic() - t0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_vmm_with_stdout_stalled(vibevmm, guest_dir, kvm_usable, tmp_path, sig):
    proc, err = start_flood(vibevmm, guest_dir, tmp_path, subprocess.DEVNULL)
    proc.send_signal(sig)
    took = ended_in_time(proc)
    err.seek(0)
    log = err.read()
    assert took < END_WITHIN_S, log
    assert proc.returncode == 128 + int(sig), log
    assert f"stopping on signal {int(sig)}" in log
    # The loss, logged when it started, is counted at the end.
    assert "bytes of guest console output to stdout were dropped" in log


def test_ctrl_a_x_with_stdout_stalled(vibevmm, guest_dir, kvm_usable, tmp_path):
    proc, err = start_flood(vibevmm, guest_dir, tmp_path, subprocess.PIPE)
    proc.stdin.write(b"\x01x")
    proc.stdin.flush()
    took = ended_in_time(proc)
    err.seek(0)
    log = err.read()
    assert took < END_WITHIN_S, log
    assert proc.returncode == 0, log
    assert "VM stopped (Ctrl-A x)" in log


def test_terminal_restored_with_stdout_stalled(vibevmm, guest_dir, kvm_usable, tmp_path):
    """stdin a terminal (raw mode while the guest runs), stdout stalled:
    SIGTERM still ends it and the terminal gets its settings back."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc, err = start_flood(vibevmm, guest_dir, tmp_path, slave)
    assert termios.tcgetattr(slave)[3] != before[3]  # raw: lflags changed
    proc.send_signal(signal.SIGTERM)
    took = ended_in_time(proc)
    after = termios.tcgetattr(slave)
    os.close(master)
    os.close(slave)
    assert took < END_WITHIN_S
    assert after == before


@pytest.mark.parametrize("kind", ["file", "pipe"])
def test_stdin_feeds_the_console(vibevmm, guest_dir, kvm_usable, tmp_path, kind):
    """A regular file or a pipe as stdin: every byte reaches the guest (the
    echo guest sends each back), through many pauses of the input watch
    while the UART's buffer is full."""
    data = b"".join(b"line %05d of the console input test\n" % i for i in range(800))
    args = [vibevmm, "--binary", str(guest_dir / "echo.bin")]
    if kind == "file":
        (tmp_path / "in").write_bytes(data + b"Q")
        with open(tmp_path / "in", "rb") as f:
            res = subprocess.run(args, stdin=f, capture_output=True, timeout=300)
    else:
        res = subprocess.run(args, input=data + b"Q", capture_output=True, timeout=300)
    assert res.returncode == 7, res.stderr
    assert hashlib.sha256(res.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_hung_up_stdin_costs_no_cpu(vibevmm, guest_dir, kvm_usable):
    """stdin a pipe that hangs up while input is paused (the guest never
    reads, so the UART's buffer is full): the I/O thread must sleep."""
    r, w = os.pipe()
    proc = subprocess.Popen([vibevmm, "--binary", str(guest_dir / "spin.bin")],
                            stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(r)
    os.write(w, b"x" * 8192)  # more than the UART takes (4 KiB)
    os.close(w)               # hang-up
    try:
        time.sleep(1)
        cpu0 = io_thread_cpu_seconds(proc.pid)
        time.sleep(2)
        used = io_thread_cpu_seconds(proc.pid) - cpu0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert used < 0.2, f"I/O thread used {used:.2f} s of CPU in 2 s"
