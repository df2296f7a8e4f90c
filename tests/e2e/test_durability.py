"""Durability of virtio-blk disks under real kernels.

A FLUSH the guest was told succeeded means the data is on stable storage:
- with device-mapper fault injection under the image (writes fail, then the
  disk heals), the guest's sync fails and so does a second one, and direct
  writes keep failing, although the host's own later fdatasync succeeds
  (Linux reports a writeback error once);
- the guest writes and syncs, vibevmm is killed with SIGKILL the moment the
  guest says so, and the bytes are in the image as the kernel wrote it back.

Both need root (loop devices, device-mapper, mount): the test host has it.
"""
import os
import re
import secrets
import shutil
import subprocess

import pytest

KIB = 1024
MIB = 1 << 20


def need(*tools):
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices, device-mapper, mount)")
    for tool in tools:
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def pattern(token, size):
    """What the guest scripts write: "durab TOKEN" lines (yes | head -c)."""
    line = f"durab {token}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def value(text, key):
    m = re.search(rf"^{re.escape(key)}=(.*?)\r?$", text, re.M)
    return m.group(1) if m else None


@pytest.fixture
def loop_device():
    """loop_device(FILE) -> /dev/loopN over FILE, detached at teardown."""
    made = []

    def attach(path):
        dev = run("losetup", "--find", "--show", str(path))
        made.append(dev)
        return dev
    yield attach
    for dev in made:
        subprocess.run(["losetup", "-d", dev])


class DmDisk:
    """A device-mapper disk over a loop device whose table can be swapped
    under a running VM: linear (healthy) or flakey with error_writes (every
    write fails, reads work)."""

    def __init__(self, loop, name):
        self.loop, self.name = loop, name
        self.sectors = int(run("blockdev", "--getsz", loop))
        run("dmsetup", "create", name, "--table", self.table("linear", ""))
        run("dmsetup", "mknodes", name)  # no udev here to make /dev/mapper/NAME
        self.path = f"/dev/mapper/{name}"

    def table(self, target, args):
        return f"0 {self.sectors} {target} {self.loop} 0 {args}".strip()

    def load(self, table):
        # --nolockfs: no sync of the device's page cache on the way, so the
        # VMM's dirty pages meet the new table when the VMM syncs them.
        run("dmsetup", "suspend", "--nolockfs", self.name)
        try:
            run("dmsetup", "load", self.name, "--table", table)
        finally:
            run("dmsetup", "resume", self.name)

    def fail_writes(self):
        # up 0 s, down 1 s: always down; error_writes: writes (flushes
        # included) fail with EIO, reads pass
        self.load(self.table("flakey", "0 1 1 error_writes"))

    def heal(self):
        self.load(self.table("linear", ""))

    def remove(self):
        subprocess.run(["dmsetup", "remove", self.name])


@pytest.fixture
def dm_disk(tmp_path, loop_device):
    need("dmsetup", "losetup", "blockdev", "modprobe")
    if subprocess.run(["modprobe", "dm_flakey"]).returncode != 0:
        pytest.skip("no dm-flakey module")
    backing = tmp_path / "backing.img"
    backing.write_bytes(bytes(16 * MIB))
    disk = DmDisk(loop_device(backing), f"vibevmm-durab-{os.getpid()}")
    disk.backing = backing
    yield disk
    disk.remove()


@pytest.mark.parametrize("kernel", ["cloud", "microvm-vmlinux"])
def test_durab_flush_error_sticks(session, dm_disk, kernel):
    """The host's writes fail while the guest syncs: its sync fails. The
    disk heals and the host's next fdatasync would succeed, but the data is
    gone: the guest's second sync fails too, and so does a direct write,
    while reads work. vibevmm says so once."""
    token = secrets.token_hex(4)
    s = session(kernel, tests=("durab_eio",), cmdline_extra=f"vibevmm.durab_token={token}",
                args=["--disk", dm_disk.path])
    seen = s.expect("DURAB-STEP-BREAK")
    dm_disk.fail_writes()
    s.send("go\n")
    seen += s.expect("DURAB-STEP-HEAL")
    dm_disk.heal()
    s.send("go\n")
    seen += s.expect("VIBEVMM-TEST-RESULT durab_eio rc=")
    assert s.wait(120) == 0
    err = s.err.decode(errors="replace")
    assert value(seen, "DURAB-SYNC1") == "failed", seen[-3000:]
    assert value(seen, "DURAB-SYNC2") == "failed", seen[-3000:]
    assert value(seen, "DURAB-WRITE-AFTER") == "failed", seen[-3000:]
    assert value(seen, "DURAB-READ-AFTER") == "ok", seen[-3000:]
    assert err.count("cannot make writes durable (Input/output error)") == 1, err[-3000:]
    # The fault was real: what the guest wrote never reached the disk.
    assert dm_disk.backing.read_bytes()[:64 * KIB] == bytes(64 * KIB)


@pytest.fixture
def ext4_on_loop(tmp_path, loop_device):
    """An ext4 file system on a loop device, mounted, holding disk.img (4 MiB,
    fully allocated): yields (mount point, backing file)."""
    need("losetup", "mkfs.ext4", "debugfs", "mount", "umount")
    src = tmp_path / "src"
    src.mkdir()
    # Not zeroes: mkfs -d would leave holes, and the guest's writes would
    # then allocate blocks, metadata that lives in the journal for a while.
    (src / "disk.img").write_bytes(b"\xaa" * (4 * MIB))
    backing = tmp_path / "fs.img"
    run("mkfs.ext4", "-q", "-F", "-d", str(src), str(backing), "32M")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run("mount", "-t", "ext4", loop_device(backing), str(mnt))
    yield mnt, backing
    subprocess.run(["umount", str(mnt)])


@pytest.mark.parametrize("kernel", ["cloud", "microvm-vmlinux"])
def test_durab_kill9_after_sync(session, ext4_on_loop, kernel):
    """The guest writes 1 MiB and syncs; the moment it says so, vibevmm gets
    SIGKILL. The image lives on ext4 on a loop device, and the bytes are
    read from the loop device's backing file: what the kernel wrote back,
    not the page cache that a killed process leaves behind (written back
    only ~30 s later)."""
    mnt, backing = ext4_on_loop
    token = secrets.token_hex(4)
    s = session(kernel, tests=("durab_kill",), cmdline_extra=f"vibevmm.durab_token={token}",
                args=["--disk", str(mnt / "disk.img")])
    s.expect("DURAB-SYNCED")
    s.proc.kill()
    s.proc.wait(30)
    on_disk = subprocess.run(["debugfs", "-R", "cat /disk.img", str(backing)],
                             check=True, capture_output=True).stdout
    assert len(on_disk) == 4 * MIB
    assert on_disk[MIB:2 * MIB] == pattern(token, MIB)
    assert on_disk[:MIB] == b"\xaa" * MIB and on_disk[2 * MIB:] == b"\xaa" * (2 * MIB)
