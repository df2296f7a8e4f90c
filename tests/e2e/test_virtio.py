"""Virtio devices under real kernels: block, network (TAP), console, entropy.

Each boot serves several checks. Disk images are made on the host side with
mkfs.ext4 -d and read back with debugfs; the network test runs vibevmm and
its TCP peer inside a private network namespace, so nothing leaves it.
"""
import base64
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from conftest import debugfs_cat, mkfs_ext4, private_netns, vhost_net_available

HELLO = "hello from the host, vibevmm e2e"


def assert_clean_poweroff(b):
    assert b.rc == 0, b.out[-3000:]
    assert "VIBEVMM-INIT-OK" in b.console, b.out[-3000:]
    assert "vibevmm: info: guest powered off" in b.err


def sha256_file(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def virtio_drivers(b):
    return sorted(line.split("driver=")[1].strip() for line in b.console.splitlines()
                  if line.startswith("VIRTIO virtio"))


@pytest.fixture
def ext4_tools():
    for tool in ("mkfs.ext4", "debugfs"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (e2fsprogs)")


def test_disks_rw_ro_and_rng(boot, tmp_path, ext4_tools):
    """vda read-write (read a host file, write one the host reads back), vdb
    read-only (writes refused, image unchanged), GET_ID, and virtio-rng."""
    vda, vdb = tmp_path / "vda.img", tmp_path / "ro.img"
    mkfs_ext4(vda, 64, {"hello.txt": (HELLO + "\n").encode()})
    mkfs_ext4(vdb, 16, {"hello.txt": b"read-only disk\n"})
    vdb_sha = sha256_file(vdb)
    vdc = tmp_path / "raw.img"
    vdc.write_bytes(b"\x5a" * (4 << 20))
    vdc_blocks = os.stat(vdc).st_blocks
    b = boot("generic", tests=("devices", "blkrw", "rng", "discard"),
             args=["--disk", str(vda), "--disk", f"{vdb},ro", "--disk", str(vdc)])
    assert_clean_poweroff(b)
    assert virtio_drivers(b) == ["virtio_blk", "virtio_blk", "virtio_blk", "virtio_rng"]
    assert b.test_rc("blkrw") == 0, b.console[-3000:]
    assert b.value("BLKRW-HELLO") == HELLO
    assert b.value("BLKRW-SERIAL") == "vda.img"
    wrote = b.value("BLKRW-WROTE-SHA256")
    assert wrote and hashlib.sha256(debugfs_cat(vda, "/guest.bin")).hexdigest() == wrote
    assert b.value("BLKRO-RO") == "1"
    assert b.value("BLKRO-WRITE") == "refused"
    assert b.value("BLKRO-HELLO") == "read-only disk"
    assert sha256_file(vdb) == vdb_sha
    assert b.test_rc("rng") == 0
    assert b.value("RNG-CURRENT") == "virtio_rng.0"
    # DISCARD and WRITE_ZEROES negotiated; the discarded MiB is a hole in
    # the image now (zeroes, fewer blocks), the bytes around it untouched
    assert b.test_rc("discard") == 0, b.console[-3000:]
    assert int(b.value("DISCARD-MAX-BYTES")) > 0
    assert int(b.value("WZ-MAX-BYTES")) > 0
    data = vdc.read_bytes()
    assert data[:1 << 20] == b"\x5a" * (1 << 20)
    assert data[1 << 20:2 << 20] == bytes(1 << 20)
    assert data[2 << 20:] == b"\x5a" * (2 << 20)
    assert os.stat(vdc).st_blocks <= vdc_blocks - (1 << 20) // 512


def test_disk_errors_are_one_line(boot, tmp_path):
    """A missing image, a directory, a locked image: clear start-up errors."""
    for disk, words in ((str(tmp_path / "missing.img"), "No such file"),
                        (str(tmp_path), "directory")):
        b = boot("microvm-vmlinux", args=["--disk", disk], timeout=60, log=1)
        assert b.rc == 1, b.out[-2000:]
        assert words in b.err and len(b.err.strip().splitlines()) == 1, b.err
    img = tmp_path / "locked.img"
    img.write_bytes(bytes(1 << 20))
    with open(img, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        b = boot("microvm-vmlinux", args=["--disk", str(img)], timeout=60, log=1)
    assert b.rc == 1 and "in use" in b.err, b.err


# ---- network ----

PEER_SCRIPT = r"""
import hashlib, json, os, socket, sys, time
host, size = sys.argv[1], int(sys.argv[2])
payload = os.urandom(size)
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(1)
    s.settimeout(240)
    return s
rx, tx = listen(5001), listen(5002)
print("READY", flush=True)
res = {"tx_sha": hashlib.sha256(payload).hexdigest()}
c, _ = rx.accept()
h, n, t0 = hashlib.sha256(), 0, None
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    t0 = t0 or time.monotonic()
    h.update(d)
    n += len(d)
res.update(rx_sha=h.hexdigest(), rx_bytes=n, rx_seconds=time.monotonic() - (t0 or 0))
c.close()
c, _ = tx.accept()
t0 = time.monotonic()
c.sendall(payload)
c.close()
res["tx_seconds"] = time.monotonic() - t0
print(json.dumps(res), flush=True)
"""


@pytest.fixture
def netns():
    """A private network namespace with TAP devices tap0 at 10.0.2.1/24 and
    tap1 at 10.0.3.1/24."""
    with private_netns("vibevmm-e2e") as (run, prefix):
        for tap, net in (("tap0", "10.0.2.1/24"), ("tap1", "10.0.3.1/24")):
            run("tuntap", "add", tap, "mode", "tap")
            run("addr", "add", net, "dev", tap)
            run("link", "set", tap, "up")
        yield prefix


@pytest.mark.parametrize("vhost,transport", [(False, "mmio"), (True, "mmio"), (True, "pci")],
                         ids=["userspace", "vhost", "vhost-pci"])
def test_network_tap(boot, netns, vhost, transport):
    """Ping the host, then TCP both ways with checksums compared: frames
    through the I/O thread with mergeable receive buffers, or through the
    kernel's vhost-net (vhost=on), whose interrupts reach the guest as the
    device's irqfd (virtio-mmio) or as each queue's MSI-X vector
    (virtio-pci)."""
    if vhost and not vhost_net_available():
        pytest.skip("no /dev/vhost-net (modprobe vhost_net failed)")
    size = 4 << 20
    peer = subprocess.Popen([*netns, sys.executable, "-c", PEER_SCRIPT, "10.0.2.1", str(size)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "READY"
        b = boot("cloud", tests=("devices", "netio"), prefix=netns, timeout=400,
                 args=["--transport", transport,
                       "--net", "tap=tap0,mac=52:54:00:12:34:56" + (",vhost=on" if vhost else "")],
                 cmdline_extra=f"vibevmm.ip=10.0.2.15/24 vibevmm.peer=10.0.2.1 "
                               f"vibevmm.netio_kb={size >> 10}")
        out, _ = peer.communicate(timeout=60)
    finally:
        peer.kill()
    assert_clean_poweroff(b)
    assert "virtio_net" in virtio_drivers(b)
    assert "MAC 52:54:00:12:34:56" in b.err
    # Linux took MRG_RXBUF: a 64 KiB segment spreads over its small buffers
    up = "driver up, mergeable receive buffers" + (", vhost-net" if vhost else "")
    assert f"virtio-net tap0: {up}" in b.err, b.err[-2000:]
    assert b.console.count("NETIO-PING rc=0") == 1, b.console[-3000:]
    assert b.test_rc("netio") == 0, b.console[-3000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert res["rx_bytes"] == size
    assert res["rx_sha"] == b.value("NETIO-TX-SHA256")
    assert b.value("NETIO-RX-BYTES") == str(size)
    assert b.value("NETIO-RX-SHA256") == res["tx_sha"]
    print(f"guest->host {size / res['rx_seconds'] / 1e6:.1f} MB/s, "
          f"host->guest {size / res['tx_seconds'] / 1e6:.1f} MB/s (nested, informational)")


@pytest.fixture
def netns_mq():
    """A private network namespace with a multi-queue TAP tap0 at 10.0.2.1/24."""
    with private_netns("vibevmm-e2e") as (run, prefix):
        run("tuntap", "add", "tap0", "mode", "tap", "multi_queue")
        run("addr", "add", "10.0.2.1/24", "dev", "tap0")
        run("link", "set", "tap0", "up")
        yield prefix


@pytest.mark.two_cpu_host
@pytest.mark.parametrize("vhost", [False, True], ids=["userspace", "vhost"])
def test_network_multiqueue(boot, netns_mq, vhost):
    """A 2-vCPU guest on a multi-queue TAP with queues=2: Linux takes MQ and
    asks for both pairs over the control queue, sees rx-0 rx-1 tx-0 tx-1,
    TCP both ways keeps its checksums, and pings pinned to each vCPU work.
    Through the I/O thread, the per-pair counts vibevmm logs show both
    pairs carried frames each way (vhost's frames never pass through it)."""
    if vhost and not vhost_net_available():
        pytest.skip("no /dev/vhost-net (modprobe vhost_net failed)")
    size = 2 << 20
    peer = subprocess.Popen([*netns_mq, sys.executable, "-c", PEER_SCRIPT, "10.0.2.1", str(size)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "READY"
        b = boot("cloud", tests=("devices", "netio", "netmq"), prefix=netns_mq, timeout=400,
                 cpus=2, args=["--net", "tap=tap0,queues=2" + (",vhost=on" if vhost else "")],
                 cmdline_extra=f"vibevmm.ip=10.0.2.15/24 vibevmm.peer=10.0.2.1 "
                               f"vibevmm.netio_kb={size >> 10}")
        out, _ = peer.communicate(timeout=60)
    finally:
        peer.kill()
    assert_clean_poweroff(b)
    assert "virtio-net tap0: 2 queue pairs (multi-queue TAP)" in b.err, b.err[-2000:]
    assert "virtio-net tap0: 2 queue pairs in use" in b.err, b.err[-2000:]
    assert b.value("NETMQ-QUEUES").split() == ["rx-0", "rx-1", "tx-0", "tx-1"]
    assert b.test_rc("netio") == 0 and b.test_rc("netmq") == 0, b.console[-3000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert res["rx_bytes"] == size
    assert res["rx_sha"] == b.value("NETIO-TX-SHA256")
    assert b.value("NETIO-RX-SHA256") == res["tx_sha"]
    for cpu in (0, 1):
        assert f"NETMQ-PING cpu={cpu} rc=0" in b.console, b.console[-3000:]
    if not vhost:
        counts = {int(p): (int(to), int(frm)) for p, to, frm in re.findall(
            r"tap0: queue pair (\d+): (\d+) frames to the guest, (\d+) from it", b.err)}
        assert sorted(counts) == [0, 1], b.err[-2000:]
        assert all(to > 0 and frm > 0 for to, frm in counts.values()), counts


def nic_macs(b):
    """{interface: MAC} as the guest test `nics` listed them."""
    return dict(re.findall(r"^NIC (\S+) MAC=(\S+?)\r?$", b.console, re.M))


def test_several_nics_each_on_its_tap(boot, netns):
    """Three --net: three virtio-net devices. The guest sees each MAC (two
    derived from their TAP names, distinct; one given), and the NIC given
    tap1 reaches the host's tap1 address, so each NIC is on its own TAP."""
    given = "52:54:00:12:34:57"
    # the NIC that pings goes through vhost-net where there is one
    vhost = ",vhost=on" if vhost_net_available() else ""
    b = boot("microvm-vmlinux", tests=("devices", "nics"), prefix=netns, timeout=300,
             args=["--net", "tap=tap0", "--net", f"tap=tap1,mac={given}{vhost}", "--net", "tap=tap2"],
             cmdline_extra=f"vibevmm.nic_mac={given} vibevmm.ip=10.0.3.15/24 "
                           f"vibevmm.peer=10.0.3.1")
    assert_clean_poweroff(b)
    assert virtio_drivers(b) == ["virtio_net"] * 3 + ["virtio_rng"]
    assert b.value("NIC-COUNT") == "3", b.console[-3000:]
    # vibevmm says which MAC each TAP got; the guest saw exactly those
    told = dict(re.findall(r"TAP (\S+), MAC (\S+)", b.err))
    assert told["tap1"] == given
    assert len(set(told.values())) == 3, told
    assert sorted(nic_macs(b).values()) == sorted(told.values())
    assert b.test_rc("nics") == 0, b.console[-3000:]
    assert re.search(r"^NICS-PING eth\d rc=0", b.console, re.M), b.console[-3000:]


# ---- disks: key=value, block devices, commas ----

DISK_SCRIPT = """\
echo "VDA-SECTORS=$(cat /sys/block/vda/size)"
echo "VDA-SHA256-1M=$(dd if=/dev/vda bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "VDB-RO=$(cat /sys/block/vdb/ro)"
echo "VDB-SHA256-1M=$(dd if=/dev/vdb bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
printf 'written-by-the-guest' | dd of=/dev/vda bs=512 seek=8 conv=notrunc,sync,fsync 2>/dev/null
echo "VDA-WRITE rc=$?"
"""


@pytest.fixture
def loop_device(tmp_path):
    """A 4 MiB loop device over a file of a known pattern: (device, file)."""
    losetup = shutil.which("losetup")
    if os.geteuid() != 0 or not losetup or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root, losetup and /dev/loop-control")
    backing = tmp_path / "backing.img"
    backing.write_bytes(bytes(range(256)) * (4 << 12))
    dev = subprocess.run([losetup, "--find", "--show", str(backing)], check=True,
                         capture_output=True, text=True).stdout.strip()
    try:
        yield dev, backing
    finally:
        subprocess.run([losetup, "-d", dev])


def test_disk_on_block_device_and_path_with_commas(boot, tmp_path, loop_device):
    """--disk path=/dev/loopN: a block device, read and written (the write
    lands in the loop device's file); --disk path=...a,,b.img,ro=on: a file
    whose name has a comma, read-only."""
    dev, backing = loop_device
    comma = tmp_path / "a,b.img"
    comma.write_bytes(b"\xc3" * (2 << 20))
    first_mib = hashlib.sha256(backing.read_bytes()[:1 << 20]).hexdigest()
    cmd = base64.b64encode(DISK_SCRIPT.encode()).decode()
    b = boot("microvm-vmlinux", cmdline_extra=f"vibevmm.cmd={cmd}",
             args=["--disk", f"path={dev}",
                   "--disk", "path=" + str(comma).replace(",", ",,") + ",ro=on"])
    assert_clean_poweroff(b)
    assert re.search(r"VIBEVMM-CMD-RESULT rc=0", b.console), b.console[-3000:]
    assert b.value("VDA-SECTORS") == str((4 << 20) // 512)
    assert b.value("VDA-SHA256-1M") == first_mib
    assert b.value("VDB-RO") == "1"
    assert b.value("VDB-SHA256-1M") == hashlib.sha256(b"\xc3" * (1 << 20)).hexdigest()
    assert "VDA-WRITE rc=0" in b.console
    subprocess.run([shutil.which("losetup"), "-d", dev], check=True)
    data = backing.read_bytes()
    assert data[4096:4096 + 20] == b"written-by-the-guest"
    assert data[4096 + 20:4096 + 512] == bytes(512 - 20)
    assert comma.read_bytes() == b"\xc3" * (2 << 20)


# ---- virtio-mmio described once ----

def test_virtio_mmio_devices_described_once(boot, tmp_path):
    """The minimal kernel has both ACPI and VIRTIO_MMIO_CMDLINE_DEVICES: it
    must learn of each device once (from the DSDT), not probe it a second
    time from the command line ("probe of virtio-mmio.0 failed with error
    -16", "can't request region"). With acpi=off the command line lists
    them instead, and they work the same."""
    img = tmp_path / "d.img"
    img.write_bytes(b"\x11" * (1 << 20))
    want_sha = hashlib.sha256(img.read_bytes()).hexdigest()
    b = boot("microvm-vmlinux", tests=("devices", "blk", "cmdline"),
             args=["--disk", f"path={img}"])
    assert_clean_poweroff(b)
    assert virtio_drivers(b) == ["virtio_blk", "virtio_rng"]
    assert b.value("BLK-SHA256-1M") == want_sha
    assert "virtio_mmio.device=" not in b.value("CMDLINE")
    for bad in ("probe of virtio-mmio", "can't request region"):
        assert bad not in b.console, b.console[-3000:]
    # Without ACPI: the command line form. Power off needs ACPI, so the
    # guest reboots (through the i8042) after its tests; that takes a
    # working timer, the PIT on the pin the MP table names.
    b = boot("microvm-vmlinux", tests=("devices", "blk", "cmdline", "reboot"),
             cmdline_extra="acpi=off", args=["--disk", f"path={img}"])
    assert b.rc == 0, b.out[-3000:]
    assert "i8042: the guest pulsed the reset line" in b.err
    assert "guest rebooted" in b.err
    assert "ACPI: Interpreter disabled" in b.console
    assert "APIC timer disabled" not in b.console
    assert virtio_drivers(b) == ["virtio_blk", "virtio_rng"]
    assert b.value("BLK-SHA256-1M") == want_sha
    assert "virtio_mmio.device=4K@0xd0000000:5" in b.value("CMDLINE")
    for bad in ("probe of virtio-mmio", "can't request region"):
        assert bad not in b.console, b.console[-3000:]


# ---- console ----

HVC_CMDLINE = "console=hvc0 panic=-1 vibevmm.verbose=0"


def test_virtio_console_hvc0(boot):
    """--console virtio: the guest's console is hvc0 (the init marker and the
    tests' output come through it) and host input reaches it."""
    b = boot("microvm-vmlinux", tests=("devices", "console"), cmdline=HVC_CMDLINE,
             args=["--console", "virtio"], stdin_text="typed-on-the-host\n")
    assert_clean_poweroff(b)
    assert "virtio_console" in virtio_drivers(b)
    assert b.value("CONSOLE-ACTIVE") == "hvc0"
    assert b.value("CONSOLE-GOT") == "typed-on-the-host"
    assert b.test_rc("console") == 0


def test_virtio_console_typing_and_ctrl_a_x(session):
    s = session("microvm-vmlinux", cmdline=HVC_CMDLINE + " vibevmm.shell=1",
                args=["--console", "virtio"])
    s.expect("interactive shell")
    s.send("echo hvc-$((6*7))-ok\n")
    s.expect("hvc-42-ok")
    s.send("\x01x")
    assert s.wait(60) == 0
    assert b"VM stopped (Ctrl-A x)" in s.err
