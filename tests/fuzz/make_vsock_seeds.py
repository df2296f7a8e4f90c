#!/usr/bin/env python3
"""Write the seed corpus of fuzz_vsock: a TX ring of guest packets and an RX
ring of receive buffers in the fake guest RAM. Run from the repository root."""
import os
import struct

WRITE = 2
CID, HOST = 3, 2
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = range(1, 8)
TX, RX, PKTS, BUFS = 0x0, 0x1000, 0x2000, 0x8000


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def pkt(op, src_port, dst_port, data=b"", flags=0, buf_alloc=65536, fwd_cnt=0,
        src=CID, dst=HOST, typ=1):
    return struct.pack("<QQIIIHHIII", src, dst, src_port, dst_port, len(data), typ, op,
                       flags, buf_alloc, fwd_cnt) + data


def seed(packets, nrx=8, rounds=4):
    ram = bytearray(0x10000)
    descs, heads = b"", []
    for i, p in enumerate(packets):
        addr = PKTS + i * 0x200
        ram[addr:addr + len(p)] = p
        descs += desc(addr, len(p))
        heads.append(i)
    ram[TX:TX + len(descs)] = descs
    av = struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads)
    ram[TX + 0x100:TX + 0x100 + len(av)] = av
    rdesc = b"".join(desc(BUFS + i * 0x1000, 0x1000, WRITE) for i in range(nrx))
    ram[RX:RX + len(rdesc)] = rdesc
    av = struct.pack("<HH", 0, nrx) + b"".join(struct.pack("<H", i) for i in range(nrx))
    ram[RX + 0x100:RX + 0x100 + len(av)] = av
    log2 = 4  # 16 entries each
    hdr = struct.pack("<BBBBHHHHHH", log2, log2, rounds, 0, TX, TX + 0x100, TX + 0x200,
                      RX, RX + 0x100, RX + 0x200)
    return hdr + bytes(ram).rstrip(b"\0")


def write(name, data):
    d = "tests/fuzz/corpus/vsock"
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


write("connect_rw_close", seed([pkt(REQUEST, 1000, 1), pkt(RW, 1000, 1, b"hello"),
                                pkt(CREDIT_REQUEST, 1000, 1),
                                pkt(SHUTDOWN, 1000, 1, flags=3)]))
write("two_conns_credit", seed([pkt(REQUEST, 7, 1), pkt(REQUEST, 8, 2),
                                pkt(CREDIT_UPDATE, 7, 1, buf_alloc=16, fwd_cnt=4),
                                pkt(RW, 8, 2, b"x" * 300), pkt(RST, 7, 1),
                                pkt(SHUTDOWN, 8, 2, flags=2)]))
write("refused_and_bad", seed([pkt(REQUEST, 5, 9), pkt(RW, 5, 9, b"zz"), pkt(42, 1, 1),
                               pkt(REQUEST, 1, 1, dst=7), pkt(REQUEST, 1, 1, typ=2),
                               pkt(RESPONSE, 1, 1), pkt(REQUEST, 6, 1),
                               pkt(REQUEST, 6, 1)]))
write("short", seed([b"\x03" * 20, pkt(REQUEST, 1, 1)[:43]]))
