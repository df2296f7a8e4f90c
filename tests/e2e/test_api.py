"""Firecracker's API driving Linux boots of Debian's kernels:

- firectl's order (logger, metrics, machine-config, boot-source, drives,
  network-interfaces, InstanceStart) boots the kernel to /init, the guest
  powers off, vibevmm ends with its own reason line and status 0, and the
  metrics file's last line counts the guest's exits;
- SendCtrlAltDel: Ctrl+Alt+Del on the i8042 keyboard reaches a stock kernel
  (atkbd), which reboots (kernel.ctrl-alt-del=1: the kernel restarts at
  once instead of signalling the initramfs' shell); vibevmm ends with
  "guest rebooted" and 0;
- PATCH /vm pauses a Linux guest that prints a line a second (no line while
  paused) and resumes it (lines again, no soft-lockup report);
- PATCH /drives gives a running Linux guest's disk a new, bigger image: the
  guest sees the new size and the new bytes, and its write lands in the new
  image on the host.
"""
import http.client
import json
import socket
import time

import pytest

from conftest import ASSETS, BASE_CMDLINE, BINDIR, KERNELS, Session, cmd_arg, metrics_totals


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def call(path, method, url, body=None):
    conn = UnixHTTPConnection(str(path))
    try:
        conn.request(method, url, body=json.dumps(body) if body is not None else None)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def kernel_files(name):
    kernel, initrd = (ASSETS / f for f in KERNELS[name])
    if not kernel.exists():
        pytest.fail(f"{kernel} missing: run tests/e2e/prepare-assets.sh")
    return kernel, initrd


def api_session(sock):
    """vibevmm --api-sock SOCK with its console on pipes, once the socket is up."""
    s = Session([str(BINDIR / "vibevmm"), "--api-sock", str(sock), "--log", "3"])
    deadline = time.monotonic() + 20
    while not sock.exists():
        assert s.proc.poll() is None, s.err.decode(errors="replace")
        assert time.monotonic() < deadline, "the API socket never appeared"
        time.sleep(0.05)
    return s


def start(sock, kernel_name, boot_args, metrics=None):
    kernel, initrd = kernel_files(kernel_name)
    steps = [("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256, "smt": False}),
             ("PUT", "/boot-source", {"kernel_image_path": str(kernel), "initrd_path": str(initrd),
                                      "boot_args": boot_args}),
             ("PUT", "/actions", {"action_type": "InstanceStart"})]
    if metrics:
        steps.insert(0, ("PUT", "/metrics", {"metrics_path": str(metrics)}))
    for method, url, body in steps:
        assert call(sock, method, url, body) == (204, None), url


def ended(s, timeout=120):
    """(status, stderr) once vibevmm ended on its own."""
    status = s.wait(timeout=timeout)
    time.sleep(0.2)  # the pumps' last bytes
    return status, s.err.decode(errors="replace")


def test_firectl_sequence_boots_to_init(tmp_path):
    sock, log, metrics = tmp_path / "fc.sock", tmp_path / "log", tmp_path / "metrics"
    log.touch()
    rootfs = tmp_path / "rootfs.img"
    rootfs.write_bytes(b"\0" * (1 << 20))
    s = api_session(sock)
    try:
        kernel, initrd = kernel_files("microvm-vmlinux")
        for method, url, body in [
            ("PUT", "/logger", {"log_path": str(log), "level": "Info"}),
            ("PUT", "/metrics", {"metrics_path": str(metrics)}),
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256, "smt": False}),
            ("PUT", "/boot-source", {"kernel_image_path": str(kernel), "initrd_path": str(initrd),
                                     "boot_args": BASE_CMDLINE}),
            ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(rootfs),
                                       "is_root_device": True, "is_read_only": True}),
            ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ]:
            assert call(sock, method, url, body) == (204, None), url
        s.expect("VIBEVMM-INIT-OK", timeout=240)
        status, _ = ended(s)  # /init powers off when it has nothing to do
        assert status == 0
        assert "guest powered off" in log.read_text()  # the logger got the VM's log
        assert not sock.exists()
        total = metrics_totals(metrics)
        assert total["vcpu"]["exit_io"] > 100  # the serial console alone
        assert total["block"]["read_count"] > 0  # the kernel read the root disk's partition table
    finally:
        s.close()


def test_send_ctrl_alt_del_reboots_a_stock_kernel(tmp_path):
    sock = tmp_path / "fc.sock"
    # ready once atkbd has bound the keyboard port (serio0)
    script = ("echo 1 > /proc/sys/kernel/ctrl-alt-del\n"
              "i=0; while [ ! -e /sys/bus/serio/devices/serio0/driver ] && [ $i -lt 300 ]; do "
              "sleep 0.1; i=$((i+1)); done\n"
              "echo \"CAD-READY $(basename $(readlink /sys/bus/serio/devices/serio0/driver))\"\n"
              "sleep 600\n")
    s = api_session(sock)
    try:
        start(sock, "cloud", f"{BASE_CMDLINE} {cmd_arg(script)}")
        s.expect("CAD-READY atkbd", timeout=240)
        assert call(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"}) == (204, None)
        status, err = ended(s)
        assert "guest rebooted" in err
        assert status == 0
    finally:
        s.close()


def test_pause_freezes_a_linux_guest_and_resume_goes_on(tmp_path):
    sock = tmp_path / "fc.sock"
    script = "while :; do read -r up _ < /proc/uptime; echo \"TICK $up\"; sleep 1; done\n"
    s = api_session(sock)
    try:
        start(sock, "cloud", f"{BASE_CMDLINE} {cmd_arg(script)}")
        s.expect("TICK", timeout=240)
        s.expect("TICK", timeout=30)
        assert call(sock, "PATCH", "/vm", {"state": "Paused"}) == (204, None)
        assert call(sock, "GET", "/")[1]["state"] == "Paused"
        time.sleep(1.5)  # a line on its way out before the pause
        with s.lock:
            s.buf = b""
        time.sleep(5)
        with s.lock:
            quiet = s.buf
        assert b"TICK" not in quiet, quiet
        assert call(sock, "PATCH", "/vm", {"state": "Resumed"}) == (204, None)
        for _ in range(3):
            s.expect("TICK", timeout=60)
        seen = s.expect("TICK", timeout=60)
        # the watchdog was told (KVM_KVMCLOCK_CTRL): no lockup report
        assert "soft lockup" not in seen and "rcu_sched self-detected stall" not in seen, seen
        assert call(sock, "GET", "/")[1]["state"] == "Running"
    finally:
        s.close()


def test_patch_drive_gives_a_linux_guest_the_new_image(tmp_path):
    sock = tmp_path / "fc.sock"
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    a.write_bytes(b"IMAGE-A" + b"\0" * ((1 << 20) - 7))
    b.write_bytes(b"IMAGE-B" + b"\0" * ((2 << 20) - 7))
    script = ("echo \"FIRST $(head -c 7 /dev/vda) $(cat /sys/block/vda/size)\"\n"
              "i=0; while [ \"$(cat /sys/block/vda/size)\" = 2048 ] && [ $i -lt 600 ]; do "
              "sleep 0.1; i=$((i+1)); done\n"
              # what the page cache kept of the old image goes
              "blockdev --flushbufs /dev/vda; echo 3 > /proc/sys/vm/drop_caches\n"
              "echo \"SECOND $(head -c 7 /dev/vda) $(cat /sys/block/vda/size)\"\n"
              "echo GUEST-WROTE | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null && echo WRITE-DONE\n"
              "sleep 600\n")
    kernel, initrd = kernel_files("cloud")
    s = api_session(sock)
    try:
        for method, url, body in [
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256, "smt": False}),
            ("PUT", "/boot-source", {"kernel_image_path": str(kernel), "initrd_path": str(initrd),
                                     "boot_args": f"{BASE_CMDLINE} {cmd_arg(script)}"}),
            ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(a),
                                     "is_root_device": False}),
            ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ]:
            assert call(sock, method, url, body) == (204, None), url
        s.expect("FIRST IMAGE-A 2048", timeout=240)
        assert call(sock, "PATCH", "/drives/data",
                    {"drive_id": "data", "path_on_host": str(b)}) == (204, None)
        s.expect("SECOND IMAGE-B 4096", timeout=120)
        s.expect("WRITE-DONE", timeout=60)
        assert b.read_bytes()[4096:4096 + 11] == b"GUEST-WROTE"
        assert a.read_bytes()[4096:4096 + 11] == b"\0" * 11
        assert call(sock, "GET", "/vm/config")[1]["drives"][0]["path_on_host"] == str(b)
    finally:
        s.close()
    assert f"now {b}, 4096 sectors" in s.err.decode(errors="replace")
