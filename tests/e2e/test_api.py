"""Firecracker's API driving a Linux boot (run by the lead in the test host):
firectl's order (logger, metrics, machine-config, boot-source, drives,
network-interfaces, InstanceStart) boots the Debian kernel to /init, and
SendCtrlAltDel ends it through the i8042 keyboard (the kernel reboots,
vibevmm exits 0)."""
import http.client
import json
import socket
import subprocess
import time

import pytest

from conftest import ASSETS, BASE_CMDLINE, BINDIR, KERNELS


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def call(path, method, url, body=None):
    conn = UnixHTTPConnection(path)
    try:
        conn.request(method, url, body=json.dumps(body) if body is not None else None)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def read_until(proc, text, timeout):
    deadline, seen = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        if text.encode() in seen:
            return seen.decode(errors="replace")
    raise AssertionError(f"{text!r} not seen; output:\n{seen.decode(errors='replace')[-4000:]}")


@pytest.mark.parametrize("kernel_name", ["microvm-vmlinux", "generic"])
def test_firectl_sequence_boots_and_ctrl_alt_del_ends(kernel_name, tmp_path):
    kernel, initrd = (ASSETS / f for f in KERNELS[kernel_name])
    if not kernel.exists():
        pytest.fail(f"{kernel} missing: run tests/e2e/prepare-assets.sh")
    vibevmm = str(BINDIR / "vibevmm")
    sock = str(tmp_path / "fc.sock")
    log, metrics = tmp_path / "log", tmp_path / "metrics"
    log.touch()
    rootfs = tmp_path / "rootfs.img"
    rootfs.write_bytes(b"\0" * (1 << 20))
    proc = subprocess.Popen([vibevmm, "--api-sock", sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            if (tmp_path / "fc.sock").exists():
                break
            time.sleep(0.02)
        steps = [
            ("PUT", "/logger", {"log_path": str(log), "level": "Warning"}),
            ("PUT", "/metrics", {"metrics_path": str(metrics)}),
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256, "smt": False}),
            ("PUT", "/boot-source", {"kernel_image_path": str(kernel), "initrd_path": str(initrd),
                                     "boot_args": BASE_CMDLINE}),
            ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(rootfs),
                                       "is_root_device": True, "is_read_only": True}),
            ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ]
        for method, url, body in steps:
            assert call(sock, method, url, body) == (204, None), url
        read_until(proc, "/init", timeout=240)
        assert call(sock, "GET", "/")[1]["state"] == "Running"
        time.sleep(2)  # atkbd binds in the background
        assert call(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"}) == (204, None)
        proc.wait(timeout=120)
        assert proc.returncode == 0, proc.stderr.read().decode()
        assert not (tmp_path / "fc.sock").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
