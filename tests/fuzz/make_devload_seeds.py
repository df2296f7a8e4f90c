#!/usr/bin/env python3
"""Write the seed corpus of fuzz_devload: one byte choosing the device, then
a snapshot payload in that device's format (see the comment at the top of
devices/serial8250.c, i8042.c, pl031.c, virtio/mmio.c and virtio/console.c).
Run from the repository root."""
import os
import struct

SERIAL, I8042, PL031, RNG, CONSOLE = range(5)
VERSION_1, EVENT_IDX, INDIRECT = 1 << 32, 1 << 29, 1 << 28
ACK, DRIVER, DRIVER_OK, FEATURES_OK = 1, 2, 4, 8
UP = ACK | DRIVER | FEATURES_OK | DRIVER_OK


def serial(regs, thri, line, rx):
    return b"8250" + bytes(regs) + bytes([thri, line]) + struct.pack("<H", len(rx)) + rx


def i8042(ctr, outport, pending, out, full, queued):
    return b"8042" + bytes([ctr, outport, pending, out, full, len(queued)]) + queued


def pl031(offset, match, imsc):
    return b"P031" + struct.pack("<qII", offset, match, imsc)


def queue(num, ready=False, rings=(0, 0, 0), idx=(0, 0, 0, 0), valid=0):
    """A queue's part; rings inside the fuzzer's 68 KiB of RAM."""
    return (struct.pack("<HBQQQ", num, ready, *rings) + struct.pack("<HHHH", *idx) +
            bytes([valid]))


def transport(dev_id, status, features, queues, isr=0, gen=0, live=None, needs_reset=0):
    if live is None:
        live = int(status & DRIVER_OK != 0 and not needs_reset)
    return (b"VMIO" + struct.pack("<IIIQIIIIIBB", dev_id, len(queues), status, features,
                                  0, 1, 0, gen, isr, live, needs_reset) + b"".join(queues))


def ready(num, base, n):
    return queue(num, True, (base, base + 0x1000, base + 0x2000), (n, n, n, n), 1)


SEEDS = {
    "serial_busy": (SERIAL, serial([1, 3, 0x0b, 0, 0x5a, 1, 12, 0], 1, 1, b"abc")),
    "serial_idle": (SERIAL, serial([0] * 8, 0, 0, b"")),
    "serial_thri": (SERIAL, serial([2, 3, 0, 2, 0, 0, 1, 0], 1, 1, b"")),
    "i8042_busy": (I8042, i8042(0x47, 3, 0xd1, 0x1d, 1,
                                bytes([0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d]))),
    "i8042_boot": (I8042, i8042(0x65, 3, 0, 0, 0, b"")),
    "pl031": (PL031, pl031(-1000, 4242, 1)),
    "rng_live": (RNG, transport(4, UP, VERSION_1 | EVENT_IDX | INDIRECT,
                                [ready(16, 0x1000, 3)], isr=1, gen=2)),
    "rng_new": (RNG, transport(4, 0, 0, [queue(64)])),
    "rng_needs_reset": (RNG, transport(4, UP, VERSION_1, [ready(8, 0x4000, 7)], isr=2,
                                       needs_reset=1)),
    "console_live": (CONSOLE, transport(3, UP, VERSION_1 | EVENT_IDX,
                                        [ready(16, 0x1000, 1), ready(64, 0x8000, 2)])
                     + bytes([1]) + struct.pack("<H", 3) + b"abc"),
    "console_half": (CONSOLE, transport(3, ACK | DRIVER | FEATURES_OK, VERSION_1,
                                        [queue(3, rings=(0x1238, 0, 0)), queue(64)])
                     + bytes([0]) + struct.pack("<H", 0)),
}


def main():
    out = "tests/fuzz/corpus/devload"
    os.makedirs(out, exist_ok=True)
    for name, (kind, payload) in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([kind]) + payload)


if __name__ == "__main__":
    main()
