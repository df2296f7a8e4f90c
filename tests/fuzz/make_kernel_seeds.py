#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write small seed kernels for fuzz_kernel into tests/fuzz/corpus/kernel/.

Seeds (each under 4 KiB):
  elf_pvh      ELF64 x86_64 vmlinux: 2 PT_LOADs and a Xen PVH note
  elf_plain    the same without the note
  bzimage_gzip bzImage (protocol 2.15) whose payload is elf_pvh, gzipped
  bzimage_xz   the same with an xz payload (CRC32 check, as Linux uses)
  bzimage_zstd, bzimage_lz4  zstd / LZ4 legacy payloads, when the zstd and
               lz4 command-line tools are installed (Python has no codec)
  arm64_image  arm64 Image with an EFI stub (MZ, PE header, 2 sections)
  arm64_legacy arm64 Image before 3.17 (image_size 0)
  arm64_image_gz  arm64_image as Image.gz

Run from anywhere: python3 tests/fuzz/make_kernel_seeds.py
"""
import gzip
import lzma
import os
import shutil
import struct
import subprocess

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "corpus", "kernel")

PT_LOAD, PT_NOTE = 1, 4
SEG0_GPA, SEG1_GPA = 0x1000000, 0x1200000
SEG_SIZE = 128


def phdr(ptype, off, vaddr, paddr, filesz, memsz, align):
    return struct.pack("<IIQQQQQQ", ptype, 7, off, vaddr, paddr, filesz,
                       memsz, align)


def xen_pvh_note(entry):
    return struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", entry)


def make_elf(pvh):
    notes = xen_pvh_note(SEG0_GPA + 0x10) if pvh else b""
    phnum = 3 if pvh else 2
    note_off = 64 + 56 * phnum
    seg0_off = note_off + len(notes)
    seg1_off = seg0_off + SEG_SIZE
    ehdr = (b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) +
            struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, SEG0_GPA, 64, 0, 0, 64,
                        56, phnum, 64, 0, 0))
    phdrs = phdr(PT_LOAD, seg0_off, 0xffffffff81000000, SEG0_GPA, SEG_SIZE,
                 0x1000, 0x200000)
    phdrs += phdr(PT_LOAD, seg1_off, 0xffffffff81200000, SEG1_GPA, SEG_SIZE,
                  0x2000, 0x200000)
    if pvh:
        phdrs += phdr(PT_NOTE, note_off, 0, 0, len(notes), len(notes), 4)
    body = bytes((i * 7 + 1) & 0xff for i in range(2 * SEG_SIZE))
    return ehdr + phdrs + notes + body


def make_bzimage(payload):
    setup_sects = 4
    payload_off = 0x210  # decompressor stand-in, past the 64-bit entry
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1f1] = setup_sects
    struct.pack_into("<H", setup, 0x1fe, 0xAA55)
    setup[0x200:0x202] = b"\xeb\x6a"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020f)
    setup[0x211] = 1
    struct.pack_into("<I", setup, 0x214, 0x100000)
    struct.pack_into("<I", setup, 0x22c, 0x7fffffff)
    struct.pack_into("<I", setup, 0x230, 0x200000)
    setup[0x234] = 1
    struct.pack_into("<H", setup, 0x236, 0x3)
    struct.pack_into("<I", setup, 0x238, 2047)
    struct.pack_into("<II", setup, 0x248, payload_off, len(payload))
    struct.pack_into("<Q", setup, 0x258, 0x1000000)
    struct.pack_into("<I", setup, 0x260, 0x400000)
    return bytes(setup) + b"\x90" * payload_off + payload


def make_arm64_image(pe=True, image_size=0x4000):
    """An arm64 Image (booting.rst header); with an EFI stub's PE header
    at 0x40 and two sections whose raw data ends the file."""
    size = 0x400
    img = bytearray((i * 13 + 7) & 0xff for i in range(size))
    img[0:64] = bytes(64)
    struct.pack_into("<IIQQQ", img, 0, 0x14000010, 0, 0, image_size, 0xa)
    img[56:60] = b"ARM\x64"
    if pe:
        img[0:2] = b"MZ"
        struct.pack_into("<I", img, 60, 0x40)
        img[0x40:0x40 + 24 + 2 * 40] = bytes(24 + 2 * 40)
        img[0x40:0x44] = b"PE\0\0"
        struct.pack_into("<HH", img, 0x44, 0xaa64, 2)
        sec = 0x40 + 24
        for i, (name, ptr, raw) in enumerate(((b".text", 0x200, 0x100),
                                              (b".data", 0x300, 0x100))):
            o = sec + 40 * i
            img[o:o + len(name)] = name
            struct.pack_into("<II", img, o + 16, raw, ptr)
    return bytes(img)


def with_size(compressed, raw):
    # Linux appends the uncompressed size as a le32 after the stream.
    return compressed + struct.pack("<I", len(raw))


def run_tool(argv, data):
    """Compress with an external tool as Linux's Makefile does, or None."""
    if not shutil.which(argv[0]):
        return None
    return subprocess.run(argv, input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def main():
    os.makedirs(OUT, exist_ok=True)
    elf = make_elf(True)
    seeds = {
        "elf_pvh": elf,
        "elf_plain": make_elf(False),
        "bzimage_gzip": make_bzimage(
            with_size(gzip.compress(elf, 9, mtime=0), elf)),
        "bzimage_xz": make_bzimage(
            with_size(lzma.compress(elf, check=lzma.CHECK_CRC32), elf)),
    }
    arm64 = make_arm64_image()
    seeds["arm64_image"] = arm64
    seeds["arm64_legacy"] = make_arm64_image(pe=False, image_size=0)
    seeds["arm64_image_gz"] = gzip.compress(arm64, 9, mtime=0)
    tools = {
        "bzimage_zstd": ["zstd", "-q", "-19", "-c"],
        "bzimage_lz4": ["lz4", "-q", "-l", "-9", "-c"],  # -l: legacy frame
    }
    for name, argv in tools.items():
        packed = run_tool(argv, elf)
        if packed is None:
            print(f"{name}: {argv[0]} not installed, skipped")
            continue
        seeds[name] = make_bzimage(with_size(packed, elf))
    for name, data in seeds.items():
        assert len(data) < 4096, name
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
