"""scripts/vfio-bind.sh on a fake sysfs tree (VFIO_BIND_SYSFS): what it
writes where, and its one-line errors. The kernel's side (a write to
drivers_probe binding the device) is played by the tree itself: the
device's driver link is made to point at vfio-pci beforehand where a bind
must succeed."""
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/vfio-bind.sh"
ADDR = "0000:01:00.0"


def make_tree(tmp_path, driver="nvme", group="7", sriov_total=None):
    sysfs = tmp_path / "sys"
    drivers = sysfs / "bus/pci/drivers"
    for d in ("nvme", "vfio-pci"):
        (drivers / d).mkdir(parents=True)
        (drivers / d / "unbind").write_text("")
    (sysfs / "bus/pci/drivers_probe").write_text("")
    (sysfs / "kernel/iommu_groups" / group).mkdir(parents=True)
    dev = sysfs / "bus/pci/devices" / ADDR
    dev.mkdir(parents=True)
    (dev / "driver_override").write_text("")
    if group:
        os.symlink(f"../../../../kernel/iommu_groups/{group}", dev / "iommu_group")
    if driver:
        os.symlink(f"../../drivers/{driver}", dev / "driver")
    if sriov_total is not None:
        (dev / "sriov_totalvfs").write_text(f"{sriov_total}\n")
        (dev / "sriov_numvfs").write_text("0\n")
        (dev / "sriov_drivers_autoprobe").write_text("1\n")
    return sysfs, dev


def run(sysfs, *args):
    env = dict(os.environ, VFIO_BIND_SYSFS=str(sysfs))
    return subprocess.run(["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True)


def test_bind_already_on_vfio_pci(tmp_path):
    sysfs, dev = make_tree(tmp_path, driver="vfio-pci")
    r = run(sysfs, "01:00.0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{ADDR}: vfio-pci, /dev/vfio/7\n"
    assert (dev / "driver_override").read_text().strip() == "vfio-pci"


def test_bind_from_another_driver_unbinds_it(tmp_path):
    """The device leaves nvme (its unbind gets the address); the fake
    kernel has not bound it to vfio-pci, so the script says so."""
    sysfs, dev = make_tree(tmp_path, driver="nvme")
    r = run(sysfs, ADDR)
    assert (sysfs / "bus/pci/drivers/nvme/unbind").read_text().strip() == ADDR
    assert (dev / "driver_override").read_text().strip() == "vfio-pci"
    assert r.returncode == 1
    assert r.stderr == f"vfio-bind.sh: {ADDR}: vfio-pci did not take it (dmesg says why)\n"


def test_errors_are_one_line(tmp_path):
    sysfs, _ = make_tree(tmp_path, group="")
    cases = [
        (("zz:1",), "vfio-bind.sh: zz:1: not a PCI address (DDDD:BB:SS.F or BB:SS.F)\n"),
        (("02:00.0",), "vfio-bind.sh: 0000:02:00.0: no such PCI device\n"),
        ((ADDR,), f"vfio-bind.sh: {ADDR}: no IOMMU group (is the IOMMU on? intel_iommu=on or "
                  "amd_iommu=on on the kernel command line)\n"),
        (("--vfs", "2", ADDR), f"vfio-bind.sh: {ADDR}: not an SR-IOV physical function "
                               "(no sriov_totalvfs)\n"),
        (("--vfs", "2"), "vfio-bind.sh: --vfs takes N and the physical function's ADDR\n"),
    ]
    for args, err in cases:
        r = run(sysfs, *args)
        assert r.returncode == 1, args
        assert r.stderr == err, args


def test_vfs_beyond_what_the_device_offers(tmp_path):
    sysfs, dev = make_tree(tmp_path, sriov_total=2)
    r = run(sysfs, "--vfs", "3", ADDR)
    assert r.returncode == 1
    assert r.stderr == f"vfio-bind.sh: {ADDR}: offers at most 2 VFs\n"
    assert (dev / "sriov_numvfs").read_text().strip() == "0"


def test_vfs_switch_autoprobe_off_and_ask_for_them(tmp_path):
    """No VF appears in a fake tree; what matters is what was written."""
    sysfs, dev = make_tree(tmp_path, sriov_total=2)
    r = run(sysfs, "--vfs", "2", ADDR)
    assert r.returncode == 0, r.stderr
    assert (dev / "sriov_drivers_autoprobe").read_text().strip() == "0"
    assert (dev / "sriov_numvfs").read_text().strip() == "2"


def test_unbind_gives_the_device_back(tmp_path):
    sysfs, dev = make_tree(tmp_path, driver="vfio-pci")
    (dev / "driver_override").write_text("vfio-pci\n")
    r = run(sysfs, "--unbind", ADDR)
    assert r.returncode == 0, r.stderr
    assert (dev / "driver_override").read_text() == "\n"
    assert (sysfs / "bus/pci/drivers/vfio-pci/unbind").read_text().strip() == ADDR
    assert (sysfs / "bus/pci/drivers_probe").read_text().strip() == ADDR
