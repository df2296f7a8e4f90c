"""--transport pci with Debian's stock kernels: every virtio device is a
virtio-pci function (vendor 0x1af4, device 0x1040 + its virtio id) on the
PCI bus, its interrupts MSI-X vectors (one per queue and one for the
configuration), its notifications ioeventfds in its BAR. A disk is read and
written (the bytes checked on the host), the network device pings the host
over a TAP, the console and the entropy source come up."""
import hashlib
import shutil

import pytest

from conftest import cmd_arg, debugfs_cat, mkfs_ext4, private_netns

HELLO = "hello over virtio-pci"

SCRIPT = r'''
for d in /sys/bus/pci/devices/*; do
    drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)
    echo "PCIDEV $(basename "$d") $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class") driver=${drv:-none}"
done
grep -e PCI-MSI /proc/interrupts | sed 's/^/IRQ /'
[ -e /sys/class/tty/hvc0 ] && echo "HVC0=yes"
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
ping -c 3 -W 2 10.0.2.1 >/dev/null
echo "PCI-PING rc=$?"
'''


@pytest.fixture
def tap0():
    """A private network namespace with TAP tap0 at 10.0.2.1/24."""
    with private_netns("vibevmm-vpci") as (run, prefix):
        run("tuntap", "add", "tap0", "mode", "tap")
        run("addr", "add", "10.0.2.1/24", "dev", "tap0")
        run("link", "set", "tap0", "up")
        yield prefix


@pytest.mark.parametrize("kernel", ["cloud", "generic"])
def test_virtio_pci_devices(boot, tmp_path, tap0, kernel):
    for tool in ("mkfs.ext4", "debugfs"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (e2fsprogs)")
    vda = tmp_path / "vda.img"
    mkfs_ext4(vda, 64, {"hello.txt": (HELLO + "\n").encode()})
    b = boot(kernel, tests=("devices", "blkrw", "rng"), prefix=tap0, timeout=400,
             cmdline_extra=cmd_arg(SCRIPT),
             args=["--transport", "pci", "--disk", str(vda),
                   "--net", "tap=tap0,mac=52:54:00:12:34:56", "--console", "virtio"])
    # vibevmm's own verdict first: a clean power-off
    assert b.rc == 0, b.out[-3000:]
    assert "vibevmm: info: guest powered off" in b.err, b.err[-3000:]
    assert "VIBEVMM-CMD-RESULT rc=0" in b.console, b.console[-3000:]
    # no virtio-mmio window is described for them
    assert "virtio_mmio.device=" not in b.console
    # in the order vibevmm adds them: disk, NIC, console, rng from 00:01.0 on
    funcs = {line.split()[1]: line.split()[2:] for line in b.console.splitlines()
             if line.startswith("PCIDEV ")}
    want = {"0000:00:01.0": ("0x1042", "0x018000"), "0000:00:02.0": ("0x1041", "0x020000"),
            "0000:00:03.0": ("0x1043", "0x078000"), "0000:00:04.0": ("0x1044", "0x00ff00")}
    for bdf, (device, cls) in want.items():
        assert funcs.get(bdf, [None])[:3] == ["0x1af4", device, cls], b.console[-3000:]
        assert funcs[bdf][3] == "driver=virtio-pci", funcs[bdf]
    assert len(funcs) == 5  # and the host bridge
    # the virtio drivers bound through virtio-pci
    drivers = sorted(line.split("driver=")[1].strip() for line in b.console.splitlines()
                     if line.startswith("VIRTIO virtio"))
    assert drivers == ["virtio_blk", "virtio_console", "virtio_net", "virtio_rng"], drivers
    # MSI-X: the configuration vector and per-queue vectors
    irqs = [line for line in b.console.splitlines() if line.startswith("IRQ ")]
    assert any("virtio0-config" in line for line in irqs), "\n".join(irqs)
    assert any("virtio0-req.0" in line for line in irqs), "\n".join(irqs)
    assert any("virtio1-input.0" in line for line in irqs), "\n".join(irqs)
    assert any("virtio1-output.0" in line for line in irqs), "\n".join(irqs)
    # the disk: read a host file, the guest's write read back on the host
    assert b.test_rc("blkrw") == 0, b.console[-3000:]
    assert b.value("BLKRW-HELLO") == HELLO
    wrote = b.value("BLKRW-WROTE-SHA256")
    assert wrote and hashlib.sha256(debugfs_cat(vda, "/guest.bin")).hexdigest() == wrote
    # the network, the console, the entropy source
    assert "PCI-PING rc=0" in b.console, b.console[-3000:]
    assert "HVC0=yes" in b.console
    assert b.test_rc("rng") == 0
    assert b.value("RNG-CURRENT") == "virtio_rng.0"
    assert "virtio-blk at PCI 00:01.0" in b.err, b.err[-3000:]

