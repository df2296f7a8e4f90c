"""The installed library boots Linux through the arch-neutral machine calls
(include/machine.h) alone: tests/install/boot_linux.c, built against
`make install`'s headers and shared library with pkg-config, as a program
outside the tree would be."""
import os
import shutil
import subprocess

import pytest

from conftest import ASSETS, BASE_CMDLINE, KERNELS, ROOT


def build_boot_linux(tmp_path):
    if not shutil.which("cc") or not shutil.which("pkg-config"):
        pytest.skip("needs cc and pkg-config")
    prefix = tmp_path / "prefix"
    subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"PREFIX={prefix}"],
                   check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib/pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "vibevmm"], env=env,
                           check=True, capture_output=True, text=True).stdout.split()
    prog = tmp_path / "boot_linux"
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(prog),
                    str(ROOT / "tests/install/boot_linux.c"), *flags,
                    f"-Wl,-rpath,{prefix / 'lib'}"], check=True)
    return prog


def test_library_boots_linux(tmp_path):
    """Debian's cloud kernel to the initramfs's /init and a clean power-off,
    with the virtio entropy device the program added working in the guest."""
    prog = build_boot_linux(tmp_path)
    kernel, initrd = (ASSETS / f for f in KERNELS["cloud"])
    res = subprocess.run([str(prog), str(kernel), str(initrd),
                          BASE_CMDLINE + " vibevmm.test=rng"],
                         capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "VIBEVMM-INIT-OK" in res.stdout, res.stdout[-3000:]
    assert "exit=poweroff" in res.stdout, res.stdout[-3000:]
    assert "VIBEVMM-TEST-RESULT rng rc=0" in res.stdout, res.stdout[-3000:]
    assert "RNG-BYTES=64" in res.stdout
