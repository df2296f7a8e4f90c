/* SPDX-License-Identifier: MIT */
/* Test helpers: little-endian writers and a synthetic ELF kernel image
 * (shared by test_boot.c and test_x86_boot.c). */
#ifndef VIBEVMM_TESTS_ELF_IMAGE_H
#define VIBEVMM_TESTS_ELF_IMAGE_H

#include <stdint.h>
#include <string.h>

/* ---- little-endian writers ---- */

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* ---- synthetic ELF ---- */

/*
 * Layout of the test vmlinux (ELF_LEN bytes):
 *   0    ELF header
 *   64   3 program headers: PT_LOAD, PT_LOAD, PT_NOTE
 *   256  notes: a GNU note, then Xen PHYS32_ENTRY
 *   512  segment 0 data (256 bytes) -> 0x1000000, memsz 0x1000
 *   768  segment 1 data (256 bytes) -> 0x1200000, memsz 0x2000
 * The last segment ends at the end of the file, so every prefix of the
 * image is truncated.
 */
#define ELF_LEN 1024
#define PHDR(i) (64 + 56 * (i))
#define NOTE_OFF 256
#define SEG0_OFF 512
#define SEG1_OFF 768
#define SEG_FILESZ 256
#define SEG0_GPA 0x1000000ull
#define SEG1_GPA 0x1200000ull
#define SEG0_VADDR 0xffffffff81000000ull
#define SEG1_VADDR 0xffffffff81200000ull
#define PVH_ENTRY 0x1000010ull
#define PT_LOAD 1
#define PT_NOTE 4

static inline void put_phdr(uint8_t *p, uint32_t type, uint64_t off, uint64_t vaddr,
		     uint64_t paddr, uint64_t filesz, uint64_t memsz)
{
	put_le32(p, type);
	put_le32(p + 4, 7);
	put_le64(p + 8, off);
	put_le64(p + 16, vaddr);
	put_le64(p + 24, paddr);
	put_le64(p + 32, filesz);
	put_le64(p + 40, memsz);
	put_le64(p + 48, type == PT_NOTE ? 4 : 0x200000);
}

static inline void put_ehdr(uint8_t *b, uint64_t entry, uint16_t phnum)
{
	memcpy(b, "\177ELF", 4);
	b[4] = 2; /* ELFCLASS64 */
	b[5] = 1; /* little endian */
	b[6] = 1; /* EV_CURRENT */
	put_le16(b + 16, 2);  /* ET_EXEC */
	put_le16(b + 18, 62); /* EM_X86_64 */
	put_le32(b + 20, 1);
	put_le64(b + 24, entry);
	put_le64(b + 32, 64); /* e_phoff */
	put_le16(b + 52, 64);
	put_le16(b + 54, 56);
	put_le16(b + 56, phnum);
}

/* A GNU note ahead of the Xen one, so the walker has to step over it. */
static inline size_t put_notes(uint8_t *p, int pvh_desc_size)
{
	size_t n = 0;

	put_le32(p, 4);
	put_le32(p + 4, 3);
	put_le32(p + 8, 3); /* NT_GNU_BUILD_ID */
	memcpy(p + 12, "GNU", 4);
	memcpy(p + 16, "abc", 3); /* desc padded to 4 */
	n = 20;
	if (pvh_desc_size) {
		put_le32(p + n, 4);
		put_le32(p + n + 4, (uint32_t)pvh_desc_size);
		put_le32(p + n + 8, 18); /* XEN_ELFNOTE_PHYS32_ENTRY */
		memcpy(p + n + 12, "Xen", 4);
		if (pvh_desc_size == 8)
			put_le64(p + n + 16, PVH_ENTRY);
		else
			put_le32(p + n + 16, (uint32_t)PVH_ENTRY);
		n += 16 + (size_t)((pvh_desc_size + 3) & ~3);
	}
	return n;
}

/* pvh_desc_size: 0 (no PVH note), 4 or 8. */
static inline void make_elf(uint8_t *b, int pvh_desc_size)
{
	size_t notes;

	memset(b, 0, ELF_LEN);
	put_ehdr(b, SEG0_GPA, 3);
	put_phdr(b + PHDR(0), PT_LOAD, SEG0_OFF, SEG0_VADDR, SEG0_GPA,
		 SEG_FILESZ, 0x1000);
	put_phdr(b + PHDR(1), PT_LOAD, SEG1_OFF, SEG1_VADDR, SEG1_GPA,
		 SEG_FILESZ, 0x2000);
	notes = put_notes(b + NOTE_OFF, pvh_desc_size);
	put_phdr(b + PHDR(2), PT_NOTE, NOTE_OFF, 0, 0, notes, notes);
	for (int i = 0; i < 2 * SEG_FILESZ; i++)
		b[SEG0_OFF + i] = (uint8_t)(i * 7 + 1);
}

#endif
