"""`make run` (scripts/run-linux.sh): which architecture it boots, checked
without booting (the boots themselves were tried by hand: README, arm64)."""
import os
import platform
import subprocess

from conftest import ROOT


def test_make_run_passes_the_architecture():
    """make run ARCH=arm64 asks the script for arm64; plain make run for
    this machine's architecture (aarch64 spelt arm64)."""
    # (not the flags of a make that runs these tests: make check)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def recipe(*args):
        return subprocess.run(["make", "-n", "run", *args], cwd=ROOT, check=True, env=env,
                              capture_output=True, text=True).stdout
    assert "VIBEVMM_RUN_ARCH=arm64 scripts/run-linux.sh" in recipe("ARCH=arm64")
    own = {"aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert f"VIBEVMM_RUN_ARCH={own} scripts/run-linux.sh" in recipe()


def test_unknown_architecture_is_one_line():
    """Refused before anything is installed or built."""
    r = subprocess.run([str(ROOT / "scripts/run-linux.sh")], cwd=ROOT, capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL,
                       env={**os.environ, "VIBEVMM_RUN_ARCH": "sparc64"})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "make run: error: VIBEVMM_RUN_ARCH must be x86_64 or arm64, not 'sparc64'"]
    assert r.stdout == ""
