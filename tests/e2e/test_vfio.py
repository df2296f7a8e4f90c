"""--vfio: a host NVMe controller (and an SR-IOV VF of it) given to Debian's
stock kernels, and an AHCI controller, which has MSI and no MSI-X. These
run in the test host started with --iommu-nvme and --iommu-sata
(tests/e2e/run.sh's vfio session): a q35 machine with an emulated Intel
IOMMU, an NVMe controller at VIBEVMM_VFIO_NVME (01:00.0) whose namespace is
a file outside, and an AHCI controller at VIBEVMM_VFIO_SATA (00:05.0) whose
disk is the file VIBEVMM_VFIO_SATA_IMG in the payload. The host side of
each NVMe check uses the host's own nvme driver: it writes a pattern the
guest must read, and reads back what the guest wrote, with the device given
back to nvme after the VM; for the SATA disk it reads and writes the file.
Judged by vibevmm's reason line and status and the guest's /proc/interrupts."""
import os
import pathlib
import re
import subprocess
import time

import pytest

from conftest import cmd_arg, vibevmm_cmd

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIND = str(ROOT / "scripts/vfio-bind.sh")
PF = os.environ.get("VIBEVMM_VFIO_NVME", "")
SATA = os.environ.get("VIBEVMM_VFIO_SATA", "")
SATA_IMG = os.environ.get("VIBEVMM_VFIO_SATA_IMG", "")
SYSFS = pathlib.Path("/sys/bus/pci/devices")

pytestmark = [
    pytest.mark.vfio,
    pytest.mark.skipif(not PF, reason="no NVMe for VFIO here (VIBEVMM_VFIO_NVME: tests/e2e/run.sh "
                       "sets it in the --iommu-nvme test host)"),
]

# In the guest: the first block's text, a new pattern at 4 KiB made durable,
# the NVMe interrupts, and the controller's configuration space as the
# guest sees it.
GUEST = ("for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/nvme0n1 ] && break; sleep 0.5; done\n"
         "echo \"NVME-READ $(dd if=/dev/nvme0n1 bs=512 count=1 2>/dev/null | head -c 40)\"\n"
         "printf 'GUEST-WROTE-%s\\n' $(cat /proc/sys/kernel/random/boot_id) > /tmp/p\n"
         "dd if=/tmp/p of=/dev/nvme0n1 bs=4096 seek=1 conv=sync,fsync 2>/dev/null && echo NVME-WRITTEN\n"
         "echo \"NVME-PATTERN $(head -c 48 /tmp/p)\"\n"
         "grep nvme /proc/interrupts\n"
         "for d in /sys/bus/pci/devices/*; do [ \"$(cat $d/class)\" = 0x010802 ] && "
         "echo \"NVME-CONFIG $(od -An -v -tx1 -N256 $d/config | tr -d ' \\n')\"; done\n")
PCI_CAP_MSI, PCI_CAP_EXP, PCI_CAP_MSIX = 0x05, 0x10, 0x11

# The same for the SATA disk behind the AHCI controller: its modules are
# the initramfs's on-demand ones (tests/fixtures/make-initramfs.sh).
GUEST_SATA = ("while read -r m; do insmod /lib/modules/sata/$m || echo \"SATA-NO-MODULE $m\"; "
              "done < /lib/modules/sata/load-order\n"
              "for i in $(seq 1 60); do [ -b /dev/sda ] && break; sleep 0.5; done\n"
              "echo \"SATA-READ $(dd if=/dev/sda bs=512 count=1 2>/dev/null | head -c 40)\"\n"
              "printf 'GUEST-WROTE-%s\\n' $(cat /proc/sys/kernel/random/boot_id) > /tmp/p\n"
              "dd if=/tmp/p of=/dev/sda bs=4096 seek=1 conv=sync,fsync 2>/dev/null && "
              "echo SATA-WRITTEN\n"
              "echo \"SATA-PATTERN $(head -c 48 /tmp/p)\"\n"
              "grep ahci /proc/interrupts\n"
              "for d in /sys/bus/pci/devices/*; do [ \"$(cat $d/class)\" = 0x010601 ] && "
              "echo \"SATA-CONFIG $(od -An -v -tx1 -N256 $d/config | tr -d ' \\n')\"; done\n")


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check:
        assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
    return r


def driver(addr):
    link = SYSFS / addr / "driver"
    return os.path.basename(os.readlink(link)) if link.exists() else None


def to_nvme(addr):
    """The device on the host's nvme driver: its /dev/nvmeXnY."""
    sh("modprobe", "nvme")
    if driver(addr) != "nvme":
        sh("sh", BIND, "--unbind", addr)
    for _ in range(40):
        # the namespace's block device (nvmeXn1; nvmeXcYn1 is a path of it)
        blocks = [b.name for b in pathlib.Path("/sys/block").glob("nvme*n1")
                  if re.fullmatch(r"nvme\d+n1", b.name)]
        if blocks and pathlib.Path("/dev", blocks[0]).exists():
            return "/dev/" + blocks[0]
        time.sleep(0.25)
    pytest.fail(f"{addr} on nvme gave no namespace: driver {driver(addr)}")


def host_write(dev, offset, data):
    with open(dev, "r+b", buffering=0) as f:
        f.seek(offset)
        f.write(data.ljust(4096, b"\0"))
        os.fsync(f.fileno())


def host_read(dev, offset, n):
    sh("blockdev", "--flushbufs", dev, check=False)
    with open(dev, "rb", buffering=0) as f:
        f.seek(offset)
        return f.read(n)


def msi_irqs(console, name):
    """{queue: count} of the guest's interrupt lines of a driver (PCI-MSI
    ones, MSI-X's too; queues sharing a vector, as on an NVMe VF with one,
    share its count)."""
    out = {}
    for m in re.finditer(rf"^\s*\d+:\s+(\d+)\s+PCI-MSI\S*\s+\S+\s+({name}.*)$", console, re.M):
        for q in m.group(2).split(","):
            out[q.strip()] = int(m.group(1))
    return out


def caps(cfg):
    """{id: offset} of a configuration space's capability list, in order."""
    out, off = {}, cfg[0x34] if cfg[6] & 0x10 else 0
    while off >= 0x40 and len(out) < 48:
        out.setdefault(cfg[off], off)
        off = cfg[off + 1] & ~3
    return out


def check_config(addr, console):
    """The guest's list is the device's less MSI, at the same offsets, and
    the PCI Express capability's read-only registers are the device's."""
    host = (SYSFS / addr / "config").read_bytes()[:256]
    guest = bytes.fromhex(re.search(r"NVME-CONFIG ([0-9a-f]{512})", console).group(1))
    want = {i: o for i, o in caps(host).items() if i != PCI_CAP_MSI}
    assert caps(guest) == want, (caps(guest), caps(host))
    exp = want[PCI_CAP_EXP]
    for reg in (4, 12):  # Device Capabilities, Link Capabilities
        assert guest[exp + reg:exp + reg + 4] == host[exp + reg:exp + reg + 4], reg


def pass_through(boot, kernel, addr, dev_for_host):
    """The host writes a pattern, the guest reads it with the device
    assigned and writes its own, the host finds that after the VM."""
    marker = f"HOST-WROTE-{os.getpid()}-{time.time_ns()}".encode()
    host_write(dev_for_host(), 0, marker)
    sh("sh", BIND, addr)
    b = boot(kernel, cmdline_extra=cmd_arg(GUEST), args=["--vfio", addr])
    assert b.rc == 0, b.out[-3000:]
    assert "vibevmm: info: guest powered off" in b.err
    assert f"NVME-READ {marker.decode()}" in b.console, b.console[-3000:]
    assert "NVME-WRITTEN" in b.console
    wrote = re.search(r"NVME-PATTERN (GUEST-WROTE-\S+)", b.console).group(1).encode()
    irqs = msi_irqs(b.console, "nvme")
    assert irqs.get("nvme0q0", 0) > 0, b.console[-2000:]  # admin queue, by MSI-X
    assert any(n > 0 for q, n in irqs.items() if q != "nvme0q0"), irqs  # an I/O queue too
    assert host_read(dev_for_host(), 4096, len(wrote)) == wrote
    check_config(addr, b.console)
    return b


@pytest.mark.parametrize("kernel", ["generic", "cloud"])
def test_nvme_passed_through(boot, kernel):
    pass_through(boot, kernel, PF, lambda: to_nvme(PF))


@pytest.mark.skipif(not SATA or not SATA_IMG, reason="no AHCI controller for VFIO here "
                    "(VIBEVMM_VFIO_SATA, VIBEVMM_VFIO_SATA_IMG, in the test host started with "
                    "--iommu-sata; not in make check yet: tests/README.md)")
def test_sata_msi_passed_through(boot):
    """A device without MSI-X gets MSI: the AHCI controller, given to
    Debian's generic kernel (the cloud kernel has no AHCI), reads what the
    host wrote on its disk and writes what the host then finds there, its
    interrupt a PCI-MSI one; its capability list is the device's, MSI
    included and switched on by the guest."""
    marker = f"HOST-WROTE-{os.getpid()}-{time.time_ns()}".encode()
    with open(SATA_IMG, "r+b", buffering=0) as f:
        os.pwrite(f.fileno(), marker.ljust(4096, b"\0"), 0)
        os.fsync(f.fileno())
    sh("sh", BIND, SATA)
    b = boot("generic", cmdline_extra=cmd_arg(GUEST_SATA), args=["--vfio", SATA])
    assert b.rc == 0, b.out[-3000:]
    assert "vibevmm: info: guest powered off" in b.err
    assert "SATA-NO-MODULE" not in b.console, b.console[-3000:]
    assert f"SATA-READ {marker.decode()}" in b.console, b.console[-3000:]
    assert "SATA-WRITTEN" in b.console
    wrote = re.search(r"SATA-PATTERN (GUEST-WROTE-\S+)", b.console).group(1).encode()
    with open(SATA_IMG, "rb", buffering=0) as f:
        assert os.pread(f.fileno(), len(wrote), 4096) == wrote
    irqs = msi_irqs(b.console, "ahci")
    assert irqs and all(n > 0 for n in irqs.values()), b.console[-2000:]
    host = (SYSFS / SATA / "config").read_bytes()[:256]
    guest = bytes.fromhex(re.search(r"SATA-CONFIG ([0-9a-f]{512})", b.console).group(1))
    assert caps(guest) == caps(host), (caps(guest), caps(host))
    assert PCI_CAP_MSI in caps(guest) and PCI_CAP_MSIX not in caps(guest)
    msi = caps(guest)[PCI_CAP_MSI]
    assert guest[msi + 2] & 0x01, guest[msi:msi + 14].hex()  # enabled by the guest


def one_error(addr, prefix=()):
    cmd = [*prefix, *vibevmm_cmd("generic", args=["--vfio", addr], log=2)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_vfio_errors_are_one_line():
    """Not bound to vfio-pci (with the commands that bind it); the group
    held by another process; RLIMIT_MEMLOCK below guest RAM for a process
    without CAP_IPC_LOCK."""
    to_nvme(PF)
    line = one_error(PF)
    assert f"{PF}" in line and "vfio-pci" in line and "driver_override" in line, line
    sh("sh", BIND, PF)
    group = os.path.basename(os.readlink(SYSFS / PF / "iommu_group"))
    fd = os.open(f"/dev/vfio/{group}", os.O_RDWR)
    try:
        line = one_error(PF)
    finally:
        os.close(fd)
    assert "busy" in line and f"/dev/vfio/{group}" in line, line
    line = one_error(PF, prefix=["prlimit", "--memlock=1048576", "setpriv",
                                       "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock"])
    assert "locked memory" in line and "MiB" in line, line


# Last: a PF with VFs enabled cannot go to vfio-pci any more.
def test_nvme_vf_passed_through(boot):
    """An SR-IOV VF (tests/host/nvme-sriov.sh brings it online; the PF
    stays on nvme, which manages it). The namespace is shared, so the host
    checks through the PF."""
    pf_dev = to_nvme(PF)
    if not (SYSFS / PF / "virtfn0").exists():
        sh("sh", str(ROOT / "tests/host/nvme-sriov.sh"), "1")
    vf = os.path.basename(os.readlink(SYSFS / PF / "virtfn0"))
    pass_through(boot, "generic", vf, lambda: pf_dev)
