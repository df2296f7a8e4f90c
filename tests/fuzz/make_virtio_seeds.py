#!/usr/bin/env python3
"""Write the seed corpora of fuzz_virtqueue and fuzz_virtio_blk (small,
well-formed inputs the fuzzers mutate from). Run from the repository root."""
import os
import struct

NEXT, WRITE, INDIRECT = 1, 2, 4


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def ram(size, parts):
    """Guest RAM contents; the fuzzers zero the rest, so trailing zeros go."""
    buf = bytearray(size)
    for off, data in parts:
        buf[off:off + len(data)] = data
    return bytes(buf).rstrip(b"\0")


def avail(heads, flags=0):
    return struct.pack("<HH", flags, len(heads)) + b"".join(struct.pack("<H", h) for h in heads)


def vq_seed(num_log2, features, max_iov, rounds, parts, size=0x3000):
    hdr = struct.pack("<BBBBHHH", num_log2, features, max_iov, rounds, 0x0, 0x100, 0x200)
    return hdr + ram(size, parts)


def write(dirname, name, data):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, name), "wb") as f:
        f.write(data)


VQ = "tests/fuzz/corpus/virtqueue"
write(VQ, "chain", vq_seed(3, 0, 8, 4, [
    (0x0, desc(0x400, 16, NEXT, 1) + desc(0x500, 64, WRITE, 0)),
    (0x100, avail([0]))]))
write(VQ, "indirect", vq_seed(3, 1, 8, 4, [
    (0x0, desc(0x300, 48, INDIRECT)),
    (0x300, desc(0x400, 16, NEXT, 1) + desc(0x500, 512, NEXT | WRITE, 2) + desc(0x780, 1, WRITE)),
    (0x100, avail([0]))]))
write(VQ, "event_idx", vq_seed(2, 2, 4, 8, [
    (0x0, desc(0x400, 8, WRITE) + desc(0x410, 8, WRITE) + desc(0x420, 8)),
    (0x100, avail([0, 1, 2]) + struct.pack("<H", 1))]))
write(VQ, "loop", vq_seed(3, 0, 8, 2, [
    (0x0, desc(0x400, 8, NEXT, 1) + desc(0x400, 8, NEXT, 0)),
    (0x100, avail([0]))]))
write(VQ, "slot_edge", vq_seed(3, 0, 8, 2, [
    (0x0, desc(0xfff0, 0x20, WRITE)),
    (0x100, avail([0]))], size=0x10010))

BLK = "tests/fuzz/corpus/virtio_blk"


def blk_queue(kind, req_type, sector, data_len, data_flags, flags=0x80, data=b""):
    hdr = struct.pack("<IIQ", req_type, 0, sector)
    chain = [(0x400, hdr)] + ([(0x500, data)] if data else [])
    if kind == "indirect":
        table = desc(0x400, 16, NEXT, 1) + desc(0x500, data_len, NEXT | data_flags, 2) + desc(0x7f0, 1, WRITE)
        parts = [(0x0, desc(0x300, 48, INDIRECT)), (0x300, table)]
    elif data_len:
        parts = [(0x0, desc(0x400, 16, NEXT, 1) + desc(0x500, data_len, NEXT | data_flags, 2) + desc(0x7f0, 1, WRITE))]
    else:
        parts = [(0x0, desc(0x400, 16, NEXT, 1) + desc(0x7f0, 1, WRITE))]
    return bytes([flags]) + ram(0x2000, parts + chain + [(0x100, avail([0]))])


write(BLK, "q_read", blk_queue("direct", 0, 2, 1024, WRITE))
write(BLK, "q_write", blk_queue("direct", 1, 60, 2048, 0))
write(BLK, "q_write_ro", blk_queue("direct", 1, 3, 512, 0, flags=0x81))
write(BLK, "q_flush", blk_queue("direct", 4, 0, 0, 0))
write(BLK, "q_get_id", blk_queue("direct", 8, 0, 20, WRITE))
write(BLK, "q_indirect", blk_queue("indirect", 0, 63, 512, WRITE))
write(BLK, "q_beyond_end", blk_queue("direct", 0, 64, 512, WRITE))
# the io_uring path's halves (flag 0x20), its kernel half failing (0x40)
write(BLK, "q_async_read", blk_queue("direct", 0, 8, 4096, WRITE, flags=0xa0))
write(BLK, "q_async_write_unaligned", blk_queue("direct", 1, 3, 1024, 0, flags=0xa0))
write(BLK, "q_async_write_eio", blk_queue("direct", 1, 8, 4096, 0, flags=0xe0))
write(BLK, "q_async_write_through_eio", blk_queue("direct", 1, 8, 2048, 0, flags=0xe4))
# FLUSH on the ring (0x20): succeeding, failing (0x10), and a write in the
# kernel while another queue's flush fails (0x30)
write(BLK, "q_async_flush", blk_queue("direct", 4, 0, 0, 0, flags=0xa0))
write(BLK, "q_async_flush_fails", blk_queue("direct", 4, 0, 0, 0, flags=0xb0))
write(BLK, "q_async_write_flush_fails", blk_queue("direct", 1, 8, 4096, 0, flags=0xb0))
# DISCARD (11) with two segments, WRITE_ZEROES (13) with unmap: le64 sector,
# le32 count, le32 flags each
dwz = struct.pack("<QII", 4, 8, 0) + struct.pack("<QII", 40, 16, 0)
write(BLK, "q_discard", blk_queue("direct", 11, 0, 32, 0, data=dwz))
write(BLK, "q_write_zeroes", blk_queue("direct", 13, 0, 16, 0, data=struct.pack("<QII", 8, 8, 1)))
# durability (first byte: 0x04 write-through, 0x08 an earlier sync failure,
# 0x10 failing syncs): a write and a flush after a failed sync, a
# write-through write, a flush whose sync fails
write(BLK, "q_write_after_sync_error", blk_queue("direct", 1, 5, 512, 0, flags=0x88))
write(BLK, "q_flush_after_sync_error", blk_queue("direct", 4, 0, 0, 0, flags=0x88))
write(BLK, "q_write_through", blk_queue("direct", 1, 5, 1024, 0, flags=0x84))
write(BLK, "q_flush_fails", blk_queue("direct", 4, 0, 0, 0, flags=0x90))
# mode 0: 3 segments, 1 readable: header(16), data(512+1 writable) ...
write(BLK, "seg_read", bytes([0x00, 2, 1, 2]) + struct.pack("<IIQ", 0, 0, 5) + bytes([64]))
write(BLK, "seg_write", bytes([0x00, 2, 2, 66, 0]) + struct.pack("<IIQ", 1, 0, 7) + bytes(200))

NRX = "tests/fuzz/corpus/net_rx"


def rx_seed(num_log2, features, max_iov, rounds, frame_len, step, parts, size=0x3000):
    """features: bit 0 indirect, bit 1 event_idx, bit 2 MRG_RXBUF."""
    hdr = struct.pack("<BBBBHHHHH", num_log2, features, max_iov, rounds, 0x0, 0x100, 0x200,
                      frame_len, step)
    return hdr + ram(size, parts)


# four writable 1500-byte buffers (mergeable); frames of 4000 then 1000 bytes
write(NRX, "mrg_spread", rx_seed(3, 4, 16, 3, 4000, 0x3c18, [
    (0x0, b"".join(desc(0x1000 + i * 0x600, 1500, WRITE) for i in range(4))),
    (0x100, avail([0, 1, 2, 3]))], size=0x3400))
# one big chain, no MRG_RXBUF; the second frame no longer fits
write(NRX, "single", rx_seed(3, 0, 8, 2, 1000, 2000, [
    (0x0, desc(0x400, 16, NEXT, 1) + desc(0x1000, 1500, WRITE)),
    (0x100, avail([0]))]))
# a mergeable buffer shorter than the header
write(NRX, "mrg_short", rx_seed(2, 6, 8, 2, 300, 0, [
    (0x0, desc(0x1000, 100, WRITE) + desc(0x1100, 8, WRITE)),
    (0x100, avail([0, 1]))]))
# indirect receive chains, mergeable
write(NRX, "mrg_indirect", rx_seed(3, 5, 8, 2, 200, 50, [
    (0x0, desc(0x300, 32, INDIRECT) + desc(0x340, 32, INDIRECT)),
    (0x300, desc(0x1000, 64, NEXT | WRITE, 1) + desc(0x1100, 64, WRITE)),
    (0x340, desc(0x1200, 64, NEXT | WRITE, 1) + desc(0x1300, 64, WRITE)),
    (0x100, avail([0, 1]))]))

NCTRL = "tests/fuzz/corpus/net_ctrl"


def ctrl_seed(num_log2, features, max_iov, rounds, max_pairs, fail, parts, size=0x3000):
    """features: bit 0 indirect, bit 1 event_idx, bit 2 MQ negotiated."""
    hdr = struct.pack("<BBBBHHHBB", num_log2, features, max_iov, rounds, 0x0, 0x100, 0x200,
                      max_pairs, fail)
    return hdr + ram(size, parts)


def pairs_set(n):
    return bytes([4, 0]) + struct.pack("<H", n)


# VQ_PAIRS_SET 2 of 4, then 5 of 4 (refused), each with its ack byte
write(NCTRL, "pairs_set", ctrl_seed(3, 4, 4, 3, 4, 0, [
    (0x0, desc(0x1000, 4, NEXT, 1) + desc(0x1080, 1, WRITE) +
          desc(0x1100, 4, NEXT, 3) + desc(0x1180, 1, WRITE)),
    (0x100, avail([0, 2])),
    (0x1000, pairs_set(2)), (0x1100, pairs_set(5))]))
# the command split over segments, the ack at the end of a longer buffer
write(NCTRL, "split", ctrl_seed(3, 4, 8, 2, 8, 1, [
    (0x0, desc(0x1000, 1, NEXT, 1) + desc(0x1001, 3, NEXT, 2) + desc(0x1080, 4, WRITE)),
    (0x100, avail([0])),
    (0x1000, pairs_set(3))]))
# indirect, without MQ; a chain with no writable byte
write(NCTRL, "indirect_no_mq", ctrl_seed(3, 1, 8, 3, 2, 0, [
    (0x0, desc(0x300, 32, INDIRECT) + desc(0x1100, 4)),
    (0x300, desc(0x1000, 4, NEXT, 1) + desc(0x1080, 1, WRITE)),
    (0x100, avail([0, 1])),
    (0x1000, pairs_set(1)), (0x1100, pairs_set(1))]))
# another class (CTRL_RX promisc), and a short command
write(NCTRL, "other_class", ctrl_seed(2, 4, 4, 2, 4, 0, [
    (0x0, desc(0x1000, 3, NEXT, 1) + desc(0x1080, 1, WRITE) +
          desc(0x1100, 3, NEXT, 3) + desc(0x1180, 1, WRITE)),
    (0x100, avail([0, 2])),
    (0x1000, bytes([0, 0, 1])), (0x1100, pairs_set(2)[:3])]))
