#!/usr/bin/env python3
"""Write the seed corpus of fuzz_vfio_region: VFIO_DEVICE_GET_REGION_INFO
answers (struct vfio_region_info, then the capability chain; see
<linux/vfio.h>) as vfio-pci gives them, and a few broken ones.
Run from the repository root."""
import os
import struct

READ, WRITE, MMAP, CAPS = 1, 2, 4, 8
SPARSE, TYPE, MSIX_MAPPABLE = 1, 2, 3
INFO = 32  # sizeof(struct vfio_region_info)


def info(flags, index, size, offset, caps=b"", cap_offset=None):
    if cap_offset is None:
        cap_offset = INFO if caps else 0
    argsz = INFO + len(caps)
    return struct.pack("<IIIIQQ", argsz, flags, index, cap_offset, size, offset) + caps


def cap(cid, version, nxt, body):
    return struct.pack("<HHI", cid, version, nxt) + body


def sparse(areas, nxt=0, version=1):
    body = struct.pack("<II", len(areas), 0)
    body += b"".join(struct.pack("<QQ", o, s) for o, s in areas)
    return cap(SPARSE, version, nxt, body)


BAR0 = 0
OFF = 0x10000000000  # vfio-pci: region index << 40
seeds = {
    # a BAR with no capabilities, mmap-able as a whole
    "bar_plain": info(READ | WRITE | MMAP, BAR0, 0x4000, 0),
    # the BAR that holds the MSI-X table: mmap around it
    "bar_msix_sparse": info(READ | WRITE | MMAP | CAPS, 2, 0x10000, 2 * OFF,
                            sparse([(0, 0x3000), (0x4000, 0xc000)])),
    # sparse list, then MSIX_MAPPABLE
    "bar_sparse_then_msix": info(READ | WRITE | MMAP | CAPS, 4, 0x8000, 4 * OFF,
                                 sparse([(0x1000, 0x7000)], nxt=INFO + 32) +
                                 cap(MSIX_MAPPABLE, 1, 0, b"")),
    # config space: read/write, no mmap
    "config": info(READ | WRITE, 7, 0x1000, 7 * OFF),
    # a region type capability (ignored) before the sparse list
    "type_then_sparse": info(READ | MMAP | CAPS, 0, 0x2000, 0,
                             cap(TYPE, 1, INFO + 16, struct.pack("<II", 1, 1)) +
                             sparse([(0, 0x1000)])),
    # broken: a chain pointing at itself
    "loop": info(READ | CAPS, 0, 0x1000, 0, cap(MSIX_MAPPABLE, 1, INFO, b"")),
    # broken: a first capability beyond the answer
    "beyond": info(READ | CAPS, 0, 0x1000, 0, b"", cap_offset=0x1000),
}

out = "tests/fuzz/corpus/vfio_region"
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
