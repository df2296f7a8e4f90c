"""Snapshots from the command line, on the tiny PVH guest that counts on
COM1 (lifecycle.elf "c": "c<8 hex digits>" a line, the count in a
register): --snapshot-on-signal saves on SIGUSR1 and the guest goes on;
--restore goes on from the saved count in a new process, twice at once
from the same files; bad state files and option mixes are one-line errors.
Linux guests are tests/e2e/test_snapshot.py's."""
import os
import select
import signal
import stat
import subprocess
import time

from conftest import run


def counts(text):
    return [int(l[1:], 16) for l in text.splitlines() if len(l) == 9 and l.startswith("c")]


class Lines:
    """A process's stdout and stderr, read as they come."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out, self.err = b"", b""

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready = select.select([self.proc.stdout, self.proc.stderr], [], [], left)[0]
            for s in ready:
                chunk = os.read(s.fileno(), 65536)
                if s is self.proc.stdout:
                    self.out += chunk
                else:
                    self.err += chunk
            if self.proc.poll() is not None and not ready:
                break

    def wait_for(self, pred, seconds=30):
        end = time.monotonic() + seconds
        while not pred() and time.monotonic() < end:
            self.pump(0.1)
        assert pred(), (self.out[-500:], self.err[-2000:])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        self.out += out
        self.err += err
        return self.proc.returncode


def snapshot(vibevmm, guest_dir, d, extra=()):
    """A counting guest saved to d mid-run: (counts before the signal, all)."""
    a = Lines([vibevmm, "--kernel", str(guest_dir / "lifecycle.elf"), "--cmdline", "c",
               "--snapshot-on-signal", str(d), "--log", "3", *extra])
    a.wait_for(lambda: len(counts(a.out.decode())) >= 3)
    before = counts(a.out.decode())[-1]
    a.proc.send_signal(signal.SIGUSR1)
    a.wait_for(lambda: b"snapshot saved to" in a.err)
    n = len(counts(a.out.decode()))
    a.wait_for(lambda: len(counts(a.out.decode())) > n + 1)  # it went on
    assert a.stop() == 143, a.err.decode()
    return before, counts(a.out.decode())


def test_restore_goes_on_from_the_saved_count(vibevmm, guest_dir, kvm_usable, tmp_path):
    before, seen = snapshot(vibevmm, guest_dir, tmp_path)
    for name in ("state", "mem"):
        st = (tmp_path / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o600
    mem = (tmp_path / "mem").stat()
    assert mem.st_size == 256 << 20  # the default RAM
    assert mem.st_blocks * 512 < 4 << 20  # only what the guest used
    b = Lines([vibevmm, "--restore", str(tmp_path), "--log", "3"])
    b.wait_for(lambda: len(counts(b.out.decode())) >= 3)
    assert b.stop() == 143, b.err.decode()
    got = counts(b.out.decode())
    # from where it was saved: after what A printed before the signal, and
    # no later than A got (a fresh boot would start at 0)
    assert before < got[0] <= seen[-1], (before, got[:3], seen[-3:])
    assert got[:3] == [got[0], got[0] + 1, got[0] + 2]
    assert f"restored from {tmp_path}" in b.err.decode()


def test_two_restores_at_once(vibevmm, guest_dir, kvm_usable, tmp_path):
    before, seen = snapshot(vibevmm, guest_dir, tmp_path)
    vms = [Lines([vibevmm, "--restore", str(tmp_path)]) for _ in range(2)]
    for v in vms:
        v.wait_for(lambda: len(counts(v.out.decode())) >= 2)
    firsts = [counts(v.out.decode())[0] for v in vms]
    for v in vms:
        assert v.stop() == 143
    assert firsts[0] == firsts[1] and before < firsts[0] <= seen[-1]


def test_read_memory_restore_needs_no_file(vibevmm, guest_dir, kvm_usable, tmp_path):
    """--read-memory copies the memory file in: the restored guest counts on
    after the file is gone and its blocks reused (zeros written over them)."""
    before, seen = snapshot(vibevmm, guest_dir, tmp_path)
    mem = tmp_path / "mem"
    b = Lines([vibevmm, "--restore", str(tmp_path), "--read-memory", "--log", "3"])
    b.wait_for(lambda: len(counts(b.out.decode())) >= 1)
    with open(mem, "r+b") as f:
        f.write(b"\0" * (mem.stat().st_size))
    mem.unlink()
    n = len(counts(b.out.decode()))
    b.wait_for(lambda: len(counts(b.out.decode())) >= n + 3)
    assert b.stop() == 143, b.err.decode()
    got = counts(b.out.decode())
    assert before < got[0] <= seen[-1], (before, got[:3], seen[-3:])
    assert got == list(range(got[0], got[0] + len(got)))
    res = run([vibevmm, "--kernel", str(guest_dir / "lifecycle.elf"), "--read-memory"])
    assert res.returncode == 1 and "--read-memory needs --restore" in res.stderr, res.stderr


def test_disk_override(vibevmm, guest_dir, kvm_usable, tmp_path):
    """--disk-override OLD=NEW: the disk saved at OLD is opened at NEW (the
    image moved); without it a moved image is a one-line error."""
    snap, old, new = tmp_path / "snap", tmp_path / "old.img", tmp_path / "new.img"
    snap.mkdir()
    old.write_bytes(b"\0" * (1 << 20))
    before, seen = snapshot(vibevmm, guest_dir, snap, ["--disk", f"path={old}"])
    old.rename(new)
    res = run([vibevmm, "--restore", str(snap)])
    assert res.returncode == 1 and str(old) in res.stderr and "No such file" in res.stderr, \
        res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = run([vibevmm, "--restore", str(snap), "--disk-override", f"{new}=x.img"])
    assert res.returncode == 1, res.stderr
    assert f"disk override {new}: the snapshot has no such disk" in res.stderr, res.stderr
    b = Lines([vibevmm, "--restore", str(snap), "--disk-override", f"{old}={new}", "--log", "3"])
    b.wait_for(lambda: len(counts(b.out.decode())) >= 2)
    assert b.stop() == 143, b.err.decode()
    assert f"virtio-blk at 0xd0000000 (GSI 5): {new}," in b.err.decode(), b.err.decode()
    got = counts(b.out.decode())
    assert before < got[0] <= seen[-1], (before, got[:3], seen[-3:])
    res = run([vibevmm, "--kernel", str(guest_dir / "lifecycle.elf"), "--disk-override", "a=b"])
    assert res.returncode == 1 and "--disk-override needs --restore" in res.stderr, res.stderr


def test_bad_restores(vibevmm, guest_dir, kvm_usable, tmp_path):
    snapshot(vibevmm, guest_dir, tmp_path)
    state = tmp_path / "state"
    good = state.read_bytes()
    state.write_bytes(good[:-100])
    res = run([vibevmm, "--restore", str(tmp_path)])
    assert res.returncode == 1
    assert "truncated" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    state.write_bytes(good[:60] + bytes([good[60] ^ 1]) + good[61:])
    res = run([vibevmm, "--restore", str(tmp_path)])
    assert res.returncode == 1 and "corrupted" in res.stderr, res.stderr
    res = run([vibevmm, "--restore", str(tmp_path / "none")])
    assert res.returncode == 1 and "No such file" in res.stderr, res.stderr
    res = run([vibevmm, "--restore", str(tmp_path), "--kernel", str(guest_dir / "lifecycle.elf")])
    assert res.returncode == 1 and "--restore gives the guest" in res.stderr, res.stderr
    state.write_bytes(good)
    res = run([vibevmm, "--restore", str(tmp_path), "--net-override", "tap0=tap9"])
    assert res.returncode == 1, res.stderr
    assert "network override tap0: the snapshot has no such interface" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    for bad in ("tap0", "=tap9", "tap0=", "tap0=" + "x" * 16):
        res = run([vibevmm, "--restore", str(tmp_path), "--net-override", bad])
        assert res.returncode == 1 and "--net-override: want KEY=TAP" in res.stderr, res.stderr
    res = run([vibevmm, "--restore", str(tmp_path), "--disk-override", "nokey"])
    assert res.returncode == 1 and "--disk-override: want KEY=PATH" in res.stderr, res.stderr
    res = run([vibevmm, "--kernel", str(guest_dir / "lifecycle.elf"), "--net-override", "a=b"])
    assert res.returncode == 1 and "--net-override needs --restore" in res.stderr, res.stderr


def api(sock, method, url, body=None):
    import http.client
    import json
    import socket as s

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = s.socket(s.AF_UNIX, s.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(str(sock))
    c = Conn("localhost", timeout=30)
    try:
        c.request(method, url, body=json.dumps(body) if body is not None else None)
        r = c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None
    finally:
        c.close()


def api_vmm(vibevmm, sock):
    v = Lines([vibevmm, "--api-sock", str(sock), "--log", "3"])
    end = time.monotonic() + 10
    while not sock.exists():
        assert v.proc.poll() is None and time.monotonic() < end, v.err
        time.sleep(0.02)
    return v


def test_api_snapshot_create_and_load(vibevmm, guest_dir, kvm_usable, tmp_path):
    """Firecracker's PUT /snapshot/create (on a paused VM) and, in a fresh
    vibevmm, PUT /snapshot/load: paused, then resumed, the count goes on."""
    state, mem = tmp_path / "vm.state", tmp_path / "vm.mem"
    a = api_vmm(vibevmm, tmp_path / "a.sock")
    sa = tmp_path / "a.sock"
    disk, disk2 = tmp_path / "scratch.img", tmp_path / "scratch2.img"
    disk.write_bytes(b"\0" * (1 << 20))
    disk2.write_bytes(b"\0" * (2 << 20))
    assert api(sa, "PUT", "/boot-source", {"kernel_image_path": str(guest_dir / "lifecycle.elf"),
                                           "boot_args": "c"})[0] == 204
    assert api(sa, "PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": str(disk),
                                              "is_root_device": False,
                                              "is_read_only": False})[0] == 204
    assert api(sa, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    a.wait_for(lambda: len(counts(a.out.decode())) >= 3)
    body = {"snapshot_type": "Full", "snapshot_path": str(state), "mem_file_path": str(mem)}
    st, fault = api(sa, "PUT", "/snapshot/create", body)
    assert st == 400 and "must be paused" in fault["fault_message"]
    assert api(sa, "PATCH", "/vm", {"state": "Paused"})[0] == 204
    a.pump(0.5)
    saved = counts(a.out.decode())[-1]
    st, fault = api(sa, "PUT", "/snapshot/create", dict(body, snapshot_type="Diff"))
    assert st == 400 and 'only "Full"' in fault["fault_message"]
    assert api(sa, "PUT", "/snapshot/create", body) == (204, None)
    assert state.exists() and mem.stat().st_size == 128 << 20  # Firecracker's default RAM
    assert a.stop() == 143

    b = api_vmm(vibevmm, tmp_path / "b.sock")
    sb = tmp_path / "b.sock"
    st, fault = api(sb, "PUT", "/snapshot/load", {"snapshot_path": str(state)})
    assert st == 400 and "mem_backend or mem_file_path" in fault["fault_message"]
    st, fault = api(sb, "PUT", "/snapshot/load", {
        "snapshot_path": str(state), "mem_backend": {"backend_path": str(mem), "backend_type": "Uffd"}})
    assert st == 400 and 'only "File"' in fault["fault_message"]
    st, fault = api(sb, "PUT", "/snapshot/load", {
        "snapshot_path": str(state), "mem_file_path": str(mem),
        "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap9"}]})
    assert st == 400 and "eth0: the snapshot has no such interface" in fault["fault_message"]
    assert api(sb, "PUT", "/snapshot/load", {
        "snapshot_path": str(state),
        "mem_backend": {"backend_path": str(mem), "backend_type": "File"}}) == (204, None)
    assert api(sb, "GET", "/")[1]["state"] == "Paused"
    # the restored VM's configuration, drive ids included: PATCH finds the drive
    config = api(sb, "GET", "/vm/config")[1]
    assert config["machine-config"]["mem_size_mib"] == 128
    assert [(d["drive_id"], d["path_on_host"]) for d in config["drives"]] == [("scratch", str(disk))]
    assert api(sb, "PATCH", "/drives/scratch", {"drive_id": "scratch",
                                                "path_on_host": str(disk2)}) == (204, None)
    assert api(sb, "GET", "/vm/config")[1]["drives"][0]["path_on_host"] == str(disk2)
    st, fault = api(sb, "PUT", "/snapshot/load", {"snapshot_path": str(state),
                                                   "mem_file_path": str(mem)})
    assert st == 400 and "a VM runs already" in fault["fault_message"]
    assert api(sb, "PATCH", "/vm", {"state": "Resumed"}) == (204, None)
    b.wait_for(lambda: len(counts(b.out.decode())) >= 2)
    got = counts(b.out.decode())
    assert b.stop() == 143
    assert saved < got[0] <= saved + 2, (saved, got[:3])
