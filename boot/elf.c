/* SPDX-License-Identifier: MIT */
/*
 * ELF64 x86_64 kernels (vmlinux). PT_LOAD segments go to their physical
 * address (p_paddr); the 64-bit entry is e_entry; a Xen PVH note adds a
 * 32-bit entry. Fields are read by offset rather than through <elf.h> so the
 * parser builds on hosts without it (macOS) and never casts into the buffer.
 */
#include <errno.h>
#include <string.h>

#include "boot/boot_internal.h"

#define EHDR_SIZE 64
#define PHDR_SIZE 56

/* e_ident and header fields */
#define EI_CLASS 4
#define EI_DATA 5
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define E_TYPE 16
#define E_MACHINE 18
#define E_ENTRY 24
#define E_PHOFF 32
#define E_PHENTSIZE 54
#define E_PHNUM 56
#define ET_EXEC 2
#define ET_DYN 3
#define EM_X86_64 62

/* program header fields */
#define P_TYPE 0
#define P_OFFSET 8
#define P_VADDR 16
#define P_PADDR 24
#define P_FILESZ 32
#define P_MEMSZ 40
#define P_ALIGN 48
#define PT_LOAD 1
#define PT_NOTE 4

#define NOTE_HDR_SIZE 12
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Kernel virtual addresses start here (x86_64 -2 GiB kernel mapping). */
#define KERNEL_VIRT_BASE 0xffffffff80000000ull

struct phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/* Parser state: p_vaddr per segment, for turning a virtual e_entry around. */
struct elf_ctx {
	const uint8_t *buf;
	size_t len;
	uint64_t vaddr[BOOT_MAX_SEGMENTS];
	uint64_t pvh_entry;
	int has_pvh;
};

static void read_phdr(const uint8_t *p, struct phdr *ph)
{
	ph->type = le32_at(p + P_TYPE);
	ph->offset = le64_at(p + P_OFFSET);
	ph->vaddr = le64_at(p + P_VADDR);
	ph->paddr = le64_at(p + P_PADDR);
	ph->filesz = le64_at(p + P_FILESZ);
	ph->memsz = le64_at(p + P_MEMSZ);
	ph->align = le64_at(p + P_ALIGN);
}

static int check_ehdr(const uint8_t *buf, size_t len)
{
	uint16_t type;

	if (len < EHDR_SIZE || memcmp(buf, "\177ELF", 4) != 0)
		return -EINVAL;
	if (buf[EI_CLASS] != ELFCLASS64 || buf[EI_DATA] != ELFDATA2LSB)
		return -EINVAL;
	type = le16_at(buf + E_TYPE);
	if (type != ET_EXEC && type != ET_DYN)
		return -EINVAL;
	if (le16_at(buf + E_MACHINE) != EM_X86_64)
		return -EINVAL;
	return 0;
}

/* Program header table bounds; entries may be larger than we read. */
static int phdr_table(const uint8_t *buf, size_t len, uint64_t *phoff,
		      uint64_t *phnum, uint64_t *phentsize)
{
	*phoff = le64_at(buf + E_PHOFF);
	*phnum = le16_at(buf + E_PHNUM);
	*phentsize = le16_at(buf + E_PHENTSIZE);
	if (*phentsize < PHDR_SIZE)
		return -EINVAL;
	/* phnum and phentsize are 16-bit: the product cannot overflow. */
	if (!in_bounds(*phoff, *phnum * *phentsize, len))
		return -EINVAL;
	return 0;
}

static int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int add_load(struct elf_ctx *c, const struct phdr *ph,
		    struct kernel_image *out)
{
	struct boot_segment *s;

	if (ph->memsz == 0)
		return 0; /* nothing to place */
	if (ph->filesz > ph->memsz)
		return -EINVAL;
	/* A bss-only segment's offset is meaningless; data is never read. */
	if (ph->filesz && !in_bounds(ph->offset, ph->filesz, c->len))
		return -EINVAL;
	if (ph->paddr + ph->memsz < ph->paddr)
		return -EINVAL; /* wraps around the address space */
	for (int i = 0; i < out->nr_segments; i++) {
		s = &out->segments[i];
		if (ranges_overlap(s->gpa, s->mem_size, ph->paddr, ph->memsz))
			return -EINVAL;
	}
	if (out->nr_segments == BOOT_MAX_SEGMENTS)
		return -EINVAL;
	c->vaddr[out->nr_segments] = ph->vaddr;
	s = &out->segments[out->nr_segments++];
	s->gpa = ph->paddr;
	/* Keep data a valid pointer even when there is nothing to copy. */
	s->data = ph->filesz ? c->buf + ph->offset : c->buf;
	s->file_size = ph->filesz;
	s->mem_size = ph->memsz;
	return 0;
}

static int check_xen_entry(struct elf_ctx *c, const uint8_t *desc,
			   uint32_t descsz)
{
	if (descsz == 4)
		c->pvh_entry = le32_at(desc);
	else if (descsz == 8)
		c->pvh_entry = le64_at(desc);
	else
		return -EINVAL;
	c->has_pvh = 1;
	return 0;
}

/* Skip `n` bytes rounded up to `align`; padding may be cut at the end. */
static int note_take(uint64_t *pos, uint64_t size, uint64_t n, uint64_t align)
{
	uint64_t padded = (n + align - 1) & ~(align - 1);

	if (n > size - *pos)
		return -EINVAL;
	*pos += padded < size - *pos ? padded : size - *pos;
	return 0;
}

/* Walk the notes of one PT_NOTE segment looking for Xen's PHYS32_ENTRY. */
static int scan_notes(struct elf_ctx *c, const struct phdr *ph)
{
	uint64_t align = ph->align == 8 ? 8 : 4;
	uint64_t pos = 0;
	const uint8_t *p;
	int ret;

	if (!in_bounds(ph->offset, ph->filesz, c->len))
		return -EINVAL;
	p = c->buf + ph->offset;
	while (ph->filesz - pos >= NOTE_HDR_SIZE) {
		uint32_t namesz = le32_at(p + pos);
		uint32_t descsz = le32_at(p + pos + 4);
		uint32_t type = le32_at(p + pos + 8);
		const uint8_t *name = p + pos + NOTE_HDR_SIZE, *desc;

		pos += NOTE_HDR_SIZE;
		ret = note_take(&pos, ph->filesz, namesz, align);
		if (ret)
			return ret;
		desc = p + pos;
		ret = note_take(&pos, ph->filesz, descsz, align);
		if (ret)
			return ret;
		if (namesz == 4 && memcmp(name, "Xen", 4) == 0 &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			ret = check_xen_entry(c, desc, descsz);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int walk_phdrs(struct elf_ctx *c, struct kernel_image *out)
{
	uint64_t phoff, phnum, phentsize;
	struct phdr ph;
	int ret;

	ret = phdr_table(c->buf, c->len, &phoff, &phnum, &phentsize);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < phnum; i++) {
		read_phdr(c->buf + phoff + i * phentsize, &ph);
		if (ph.type == PT_LOAD)
			ret = add_load(c, &ph, out);
		else if (ph.type == PT_NOTE)
			ret = scan_notes(c, &ph);
		if (ret)
			return ret;
	}
	return out->nr_segments ? 0 : -EINVAL;
}

/* Index of the segment whose guest range holds `gpa`, or -1. */
static int segment_at(const struct kernel_image *out, uint64_t gpa)
{
	for (int i = 0; i < out->nr_segments; i++) {
		const struct boot_segment *s = &out->segments[i];

		if (gpa >= s->gpa && gpa - s->gpa < s->mem_size)
			return i;
	}
	return -1;
}

/*
 * vmlinux's e_entry is already physical (phys_startup_64). A kernel-virtual
 * one is mapped through the segment that contains it.
 */
static int resolve_entry(const struct elf_ctx *c, uint64_t e_entry,
			 struct kernel_image *out)
{
	if (e_entry >= KERNEL_VIRT_BASE) {
		for (int i = 0; i < out->nr_segments; i++) {
			const struct boot_segment *s = &out->segments[i];
			uint64_t v = c->vaddr[i];

			if (e_entry >= v && e_entry - v < s->mem_size) {
				out->entry = e_entry - v + s->gpa;
				return 0;
			}
		}
		return -EINVAL;
	}
	if (segment_at(out, e_entry) < 0)
		return -EINVAL;
	out->entry = e_entry;
	return 0;
}

int boot_parse_elf(const uint8_t *buf, size_t len, struct kernel_image *out)
{
	struct elf_ctx c = { .buf = buf, .len = len };
	int ret;

	ret = check_ehdr(buf, len);
	if (ret)
		return ret;
	ret = walk_phdrs(&c, out);
	if (ret)
		return ret;
	ret = resolve_entry(&c, le64_at(buf + E_ENTRY), out);
	if (ret)
		return ret;
	out->format = KERNEL_FORMAT_ELF;
	if (c.has_pvh) {
		/* The PVH entry runs in 32-bit mode: loaded, and below 4G. */
		if (c.pvh_entry > UINT32_MAX ||
		    segment_at(out, c.pvh_entry) < 0)
			return -EINVAL;
		out->format = KERNEL_FORMAT_ELF_PVH;
		out->pvh_entry = c.pvh_entry;
	}
	return 0;
}
