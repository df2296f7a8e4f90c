"""Shared fixtures for the vibevmm command-line tests (asm guests, local KVM)."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _bindir():
    return pathlib.Path(os.environ.get("VIBEVMM_BINDIR", ROOT / "bin"))


@pytest.fixture(scope="session")
def vibevmm():
    path = _bindir() / "vibevmm"
    if not path.exists():
        pytest.fail(f"{path} not built (run make)")
    return str(path)


@pytest.fixture(scope="session")
def guest_dir():
    return pathlib.Path(os.environ.get("GUEST_DIR", ROOT / "build/tests/guests"))


@pytest.fixture(scope="session")
def kvm_usable():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("no usable /dev/kvm on this machine")


def run(args, timeout=60, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
