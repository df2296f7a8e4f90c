"""--pci with Debian's stock kernels: the guest finds the PCI root bridge in
ACPI, uses ECAM (MCFG, reserved as a motherboard resource) and enumerates
bus 0, where the host bridge is 00:00.0 with the IDs and class vibevmm
gives it."""

import pytest

from conftest import cmd_arg

SCRIPT = ('d=/sys/bus/pci/devices/0000:00:00.0\n'
          'echo "PCI-HOST $(cat $d/vendor) $(cat $d/device) $(cat $d/class)"\n'
          'echo "PCI-FUNCTIONS $(ls /sys/bus/pci/devices | wc -l)"\n'
          'dmesg | grep -e "PCI Root Bridge" -e "MMCONFIG"\n')


@pytest.mark.parametrize("kernel", ["cloud", "generic"])
def test_pci_root_bridge(boot, kernel):
    b = boot(kernel, cmdline_extra=cmd_arg(SCRIPT), args=["--pci"])
    assert b.rc == 0, b.out[-3000:]
    assert "vibevmm: info: guest powered off" in b.err
    assert "PCI-HOST 0x1b36 0x0008 0x060000" in b.console, b.console[-3000:]
    assert "PCI-FUNCTIONS 1" in b.console
    assert "ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00])" in b.console
    # ECAM used, not the ports' fallback: its window reserved where Linux looks
    assert ("PCI: MMCONFIG at [mem 0xe0000000-0xe00fffff] reserved in ACPI motherboard "
            "resources") in b.console, b.console[-3000:]


def test_no_pci_by_default(boot):
    """Without --pci the guest has no PCI bus at all (virtio-mmio only)."""
    b = boot("cloud", cmdline_extra=cmd_arg('echo "PCI-FUNCTIONS $(ls /sys/bus/pci/devices | wc -l)"\n'))
    assert b.rc == 0, b.out[-3000:]
    assert "PCI-FUNCTIONS 0" in b.console, b.console[-3000:]
