/* SPDX-License-Identifier: MIT */
/*
 * The PVH boot protocol's start info (Xen's hvm_start_info, version 1), as
 * QEMU and Firecracker hand it to an ELF kernel with a PVH entry note: the
 * kernel starts in 32-bit protected mode, paging off, EBX = this struct.
 * It names the command line, the initrd (module 0), the RSDP and the memory
 * map; the map is the same e820 map a zero page would carry.
 */
#include <errno.h>
#include <string.h>

#include "arch/x86_64/platform.h"

#define PVH_MAGIC 0x336ec578U
#define PVH_VERSION 1
/* struct hvm_start_info */
#define SI_MAGIC 0
#define SI_VERSION 4
#define SI_NR_MODULES 12
#define SI_MODLIST 16
#define SI_CMDLINE 24
#define SI_RSDP 32
#define SI_MEMMAP 40
#define SI_MEMMAP_ENTRIES 48
#define SI_SIZE 56
/* struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved */
#define MOD_SIZE 32
/* struct hvm_memmap_table_entry: addr, size, type, reserved */
#define MEMMAP_ENTRY_SIZE 24

/* Where the pieces sit in the buffer (all 8-byte aligned). */
#define MODLIST_OFF 64
#define MEMMAP_OFF (MODLIST_OFF + MOD_SIZE)

int x86_build_pvh_start_info(void *buf, size_t len, uint64_t buf_gpa,
			     const struct x86_pvh_desc *d)
{
	struct x86_e820_entry e820[X86_E820_MAX];
	uint8_t *p = buf;
	int n;

	if (!p || !d || len > UINT32_MAX || buf_gpa > UINT32_MAX - len)
		return -EINVAL; /* the kernel reads it with paging off */
	n = x86_e820_build(d->ram_size, e820, X86_E820_MAX);
	if (n < 0)
		return n;
	if (MEMMAP_OFF + (size_t)n * MEMMAP_ENTRY_SIZE > len)
		return -ENOSPC;
	memset(p, 0, MEMMAP_OFF + (size_t)n * MEMMAP_ENTRY_SIZE);
	x86_put_le32(p + SI_MAGIC, PVH_MAGIC);
	x86_put_le32(p + SI_VERSION, PVH_VERSION);
	x86_put_le64(p + SI_CMDLINE, d->cmdline_gpa);
	x86_put_le64(p + SI_RSDP, d->rsdp_gpa);
	if (d->initrd_size) {
		x86_put_le32(p + SI_NR_MODULES, 1);
		x86_put_le64(p + SI_MODLIST, buf_gpa + MODLIST_OFF);
		x86_put_le64(p + MODLIST_OFF, d->initrd_gpa);
		x86_put_le64(p + MODLIST_OFF + 8, d->initrd_size);
	}
	x86_put_le64(p + SI_MEMMAP, buf_gpa + MEMMAP_OFF);
	x86_put_le32(p + SI_MEMMAP_ENTRIES, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		uint8_t *e = p + MEMMAP_OFF + (size_t)i * MEMMAP_ENTRY_SIZE;

		x86_put_le64(e, e820[i].addr);
		x86_put_le64(e + 8, e820[i].size);
		x86_put_le32(e + 16, e820[i].type);
	}
	return 0;
}
