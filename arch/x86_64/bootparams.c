/* SPDX-License-Identifier: MIT */
/*
 * The Linux x86 boot protocol's zero page (struct boot_params), the e820 map
 * in it, and initrd placement. See Documentation/arch/x86/boot.rst and
 * zero-page.rst; offsets are in platform.h.
 */
#include <errno.h>
#include <string.h>

#include "arch/x86_64/platform.h"

#define BOOT_PROTOCOL_MIN 0x0200      /* "HdrS" headers start here */
#define BOOT_PROTOCOL_CMDLINE_SIZE 0x0206
#define BOOT_PROTOCOL_SYNTH 0x020f    /* what we claim for an ELF vmlinux */
#define LOADER_TYPE_UNDEFINED 0xff
/* heap_end_ptr is relative to the real-mode code, minus 0x200; the 64-bit
 * entry never runs that code, so the customary maximum is as good as any. */
#define HEAP_END_PTR 0xfe00
#define PAGE_SIZE_4K 0x1000ULL

static void e820_add(struct x86_e820_entry *e, int *n, uint64_t addr,
		     uint64_t size, uint32_t type)
{
	if (size == 0)
		return;
	e[*n] = (struct x86_e820_entry){ .addr = addr, .size = size, .type = type };
	(*n)++;
}

int x86_e820_build(uint64_t ram_size, struct x86_e820_entry *out, int max)
{
	struct x86_e820_entry e[4];
	uint64_t low_end = ram_size < X86_MMIO_HOLE_START ? ram_size
							   : X86_MMIO_HOLE_START;
	int n = 0;

	if (!out || max < 0)
		return -EINVAL;
	/* The MP and ACPI tables live below 1 MiB, so that must be RAM; the
	 * part above the hole must not wrap. */
	if (ram_size < X86_HIGH_MEMORY_START ||
	    ram_size - low_end > UINT64_MAX - X86_HIGH_RAM_START)
		return -EINVAL;
	e820_add(e, &n, 0, X86_EBDA_START, X86_E820_RAM);
	/* EBDA (MP table), VGA hole, option ROMs, BIOS area (ACPI tables). */
	e820_add(e, &n, X86_EBDA_START, X86_BIOS_END - X86_EBDA_START,
		 X86_E820_RESERVED);
	e820_add(e, &n, X86_HIGH_MEMORY_START, low_end - X86_HIGH_MEMORY_START,
		 X86_E820_RAM);
	e820_add(e, &n, X86_HIGH_RAM_START, ram_size - low_end, X86_E820_RAM);
	if (n > max)
		return -ENOSPC;
	memcpy(out, e, (size_t)n * sizeof(e[0]));
	return n;
}

/* Copy the bzImage's setup header, or synthesize the fields the kernel's
 * 64-bit entry checks when booting an ELF vmlinux. */
static int put_setup_header(uint8_t *zp, const struct x86_zero_page_desc *d)
{
	size_t max = X86_BP_HDR_END - X86_BP_HDR, len;

	if (!d->setup_header) {
		x86_put_le16(zp + X86_BP_BOOT_FLAG, X86_BOOT_FLAG_MAGIC);
		x86_put_le32(zp + X86_BP_HEADER, X86_HDRS_MAGIC);
		x86_put_le16(zp + X86_BP_VERSION, BOOT_PROTOCOL_SYNTH);
		return 0;
	}
	/* Never past the header's reserved room: the fields after it (and
	 * the sentinel before it) are the loader's to fill, not the image's. */
	len = d->setup_header_len < max ? d->setup_header_len : max;
	if (len < X86_BP_VERSION + 2 - X86_BP_HDR)
		return -EINVAL;
	memcpy(zp + X86_BP_HDR, d->setup_header, len);
	if (x86_get_le32(zp + X86_BP_HEADER) != X86_HDRS_MAGIC ||
	    x86_get_le16(zp + X86_BP_VERSION) < BOOT_PROTOCOL_MIN)
		return -EINVAL;
	return 0;
}

/* The image's limit on the command line length, or 0 if it names none. */
static uint32_t hdr_cmdline_size(const uint8_t *zp,
				 const struct x86_zero_page_desc *d)
{
	if (!d->setup_header ||
	    d->setup_header_len < X86_BP_CMDLINE_SIZE + 4 - X86_BP_HDR ||
	    x86_get_le16(zp + X86_BP_VERSION) < BOOT_PROTOCOL_CMDLINE_SIZE)
		return 0;
	return x86_get_le32(zp + X86_BP_CMDLINE_SIZE);
}

static void put_split64(uint8_t *zp, size_t lo_off, size_t hi_off, uint64_t v)
{
	x86_put_le32(zp + lo_off, (uint32_t)v);
	x86_put_le32(zp + hi_off, (uint32_t)(v >> 32));
}

static void put_e820(uint8_t *zp, const struct x86_e820_entry *e, int n)
{
	zp[X86_BP_E820_ENTRIES] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		uint8_t *p = zp + X86_BP_E820_TABLE + (size_t)i * X86_BP_E820_ENTRY_SIZE;

		x86_put_le64(p, e[i].addr);
		x86_put_le64(p + 8, e[i].size);
		x86_put_le32(p + 16, e[i].type);
	}
}

int x86_build_zero_page(void *zero_page, const struct x86_zero_page_desc *d)
{
	struct x86_e820_entry e820[X86_E820_MAX];
	uint8_t *zp = zero_page;
	uint32_t cmdline_max;
	int n, err;

	if (!zp || !d)
		return -EINVAL;
	if (d->cmdline_gpa > UINT64_MAX - d->cmdline_len ||
	    d->initrd_gpa > UINT64_MAX - d->initrd_size)
		return -EINVAL;
	n = x86_e820_build(d->ram_size, e820, X86_E820_MAX);
	if (n < 0)
		return n;
	memset(zp, 0, X86_ZERO_PAGE_SIZE);
	err = put_setup_header(zp, d);
	if (err)
		return err;
	cmdline_max = hdr_cmdline_size(zp, d);
	if (cmdline_max && d->cmdline_len > cmdline_max)
		return -E2BIG;

	zp[X86_BP_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
	zp[X86_BP_LOADFLAGS] |= X86_LOADED_HIGH | X86_CAN_USE_HEAP;
	x86_put_le16(zp + X86_BP_HEAP_END_PTR, HEAP_END_PTR);
	/* Loader-owned fields are written even when empty: the copied image
	 * header must not leave stale values in them. */
	put_split64(zp, X86_BP_CMD_LINE_PTR, X86_BP_EXT_CMD_LINE_PTR,
		    d->cmdline_gpa);
	put_split64(zp, X86_BP_RAMDISK_IMAGE, X86_BP_EXT_RAMDISK_IMAGE,
		    d->initrd_size ? d->initrd_gpa : 0);
	put_split64(zp, X86_BP_RAMDISK_SIZE, X86_BP_EXT_RAMDISK_SIZE,
		    d->initrd_size);
	/* boot_params.acpi_rsdp_addr (0x070): the 2.14 protocol field. It sat
	 * in the setup header for one release and was moved here. */
	if (d->rsdp_gpa)
		x86_put_le64(zp + X86_BP_ACPI_RSDP_ADDR, d->rsdp_gpa);
	put_e820(zp, e820, n);
	return 0;
}

int x86_place_initrd(uint64_t ram_size, uint64_t initrd_size,
		     uint32_t initrd_addr_max, uint64_t kernel_end,
		     uint64_t *gpa_out)
{
	uint64_t low_end = ram_size < X86_MMIO_HOLE_START ? ram_size
							  : X86_MMIO_HOLE_START;
	uint64_t limit = (uint64_t)initrd_addr_max + 1;
	uint64_t addr;

	if (!gpa_out || initrd_size == 0)
		return -EINVAL;
	if (low_end < limit)
		limit = low_end;
	if (initrd_size > limit)
		return -ENOSPC;
	addr = (limit - initrd_size) & ~(PAGE_SIZE_4K - 1);
	/* Never into the boot data and tables below 1 MiB either. */
	if (addr < kernel_end || addr < X86_HIGH_MEMORY_START)
		return -ENOSPC;
	*gpa_out = addr;
	return 0;
}
