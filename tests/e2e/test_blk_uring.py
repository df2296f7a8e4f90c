"""virtio-blk on io_uring, synchronously and with O_DIRECT: the same bytes.

A 2-vCPU guest (so two request queues by default) writes from four dd
processes at once and reads the result back through the device. For each
of aio=io_uring (the default), aio=sync and cache=none (on a loop device,
since the test host's tmpfs has no O_DIRECT): the image holds exactly the
expected bytes, the guest read the same back, and it made two queues.
"""
import hashlib
import os
import shutil
import subprocess

import pytest

MIB = 1 << 20


def lines(text, size):
    line = f"{text}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def expected_image(size):
    img = bytearray(b"\xa5" * size)
    for i in range(1, 5):
        img[i * MIB:(i + 1) * MIB] = lines(f"blkmq {i}", MIB)
    img[512:2048] = lines("odd", 1536)
    return bytes(img)


@pytest.fixture
def losetup():
    tool = shutil.which("losetup")
    if os.geteuid() != 0 or not tool or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root, losetup and /dev/loop-control (cache=none on a loop device)")
    made = []

    def attach(path):
        dev = subprocess.run([tool, "--find", "--show", str(path)], check=True,
                             capture_output=True, text=True).stdout.strip()
        made.append(dev)
        return dev
    yield attach
    for dev in made:
        subprocess.run([tool, "-d", dev])


@pytest.mark.two_cpu_host
@pytest.mark.parametrize("mode", ["aio=io_uring", "aio=sync", "cache=none"])
def test_blk_modes_write_identical_bytes(boot, tmp_path, request, mode):
    size = 8 * MIB
    img = tmp_path / "mq.img"
    img.write_bytes(b"\xa5" * size)
    path = str(img)
    if mode == "cache=none":
        path = request.getfixturevalue("losetup")(img)
    b = boot("microvm-vmlinux", tests=("blkmq",), cpus=2, timeout=300,
             args=["--disk", f"path={path},{mode}"])
    assert b.test_rc("blkmq") == 0, b.console[-3000:]
    assert b.value("BLKMQ-QUEUES") == "2"
    # the engine the VMM says it used
    engine = "sync" if mode == "aio=sync" else "io_uring"
    assert f"queues, {engine}" in b.err, b.err[-2000:]
    want = expected_image(size)
    assert img.read_bytes() == want
    assert b.value("BLKMQ-SHA256") == hashlib.sha256(want[:5 * MIB]).hexdigest()
