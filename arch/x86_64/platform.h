/* SPDX-License-Identifier: MIT */
/*
 * The x86_64 guest platform description a stock Linux kernel reads: ACPI
 * tables, the MP table, the e820 map and the boot protocol's zero page.
 *
 * Every builder here is a pure function that fills a host buffer: no VM, no
 * global state. The caller copies the result to the guest-physical address
 * the builder was told about, so the functions can be unit-tested and fuzzed.
 */
#ifndef VIBEVMM_X86_64_PLATFORM_H
#define VIBEVMM_X86_64_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/layout.h"

/*
 * Largest vCPU count the tables describe: xAPIC ids are 8 bits, 0xff is the
 * broadcast id, and the IOAPIC takes id nr_cpus, so ids 0..254 are usable.
 */
#define X86_MAX_CPUS 254

/* x86_platform.flags */
#define X86_PLATFORM_COM1 (1u << 0)     /* describe COM1 (0x3f8, IRQ 4) in the DSDT */
#define X86_PLATFORM_I8042 (1u << 1)    /* FADT and DSDT (PNP0303) describe the i8042 */
#define X86_PLATFORM_CMOS_RTC (1u << 2) /* FADT says a CMOS RTC exists at 0x70 */
#define X86_PLATFORM_PVPANIC (1u << 3)  /* DSDT describes pvpanic (QEMU0001) */
#define X86_PLATFORM_PCI (1u << 4)      /* PCI bus 0: MCFG, the root bridge in the DSDT */

struct x86_platform {
	int nr_cpus;
	/* Total guest RAM in bytes: [0, min(ram, X86_MMIO_HOLE_START)) plus the
	 * rest from X86_HIGH_RAM_START. */
	uint64_t ram_size;
	int nr_virtio;
	struct {
		uint64_t base, size; /* MMIO window, below 4 GiB */
		uint32_t gsi;        /* IOAPIC pin, < X86_IOAPIC_PINS */
	} virtio[X86_VIRTIO_MMIO_MAX];
	uint32_t flags; /* X86_PLATFORM_* */
	/* With X86_PLATFORM_PCI: ECAM (bus 0, below 4 GiB) and the root
	 * bridge's two memory windows (32-bit, then 64-bit). */
	struct {
		uint64_t ecam_base;
		uint64_t mem32_base, mem32_size, mem64_base, mem64_size;
	} pci;
};

/* ---- ACPI (acpi.c) ---- */

/* The byte that, stored in a table's checksum field, makes its sum 0. */
uint8_t acpi_checksum(const void *data, size_t len);

/* Sum of `len` bytes modulo 256: 0 for a valid table. */
uint8_t acpi_sum(const void *data, size_t len);

/*
 * Build RSDP, XSDT, a hardware-reduced FADT, MADT and DSDT into `buf`, which
 * the caller copies to guest-physical `buf_gpa` (16-byte aligned; the RSDP is
 * at its start, so X86_ACPI_RSDP_ADDR puts it where the kernel scans). The
 * unused tail of `buf` is left untouched. On success *rsdp_gpa_out = buf_gpa
 * and the return value is the number of bytes used.
 * -EINVAL: bad platform (nr_cpus outside 1..X86_MAX_CPUS, nr_virtio outside
 * 0..X86_VIRTIO_MMIO_MAX, a virtio window empty or not below 4 GiB, a GSI
 * >= X86_IOAPIC_PINS), NULL pointers, misaligned buf_gpa.
 * -ENOSPC: `len` is too small.
 */
int acpi_build_tables(void *buf, size_t len, uint64_t buf_gpa,
		      const struct x86_platform *p, uint64_t *rsdp_gpa_out);

/* Compressed EISA id ("PNP0501" -> 0x0105d041), as AML's EisaId(). 0 if the
 * string is not three capitals and four hex digits. */
uint32_t acpi_eisaid(const char *id);

/*
 * AML PkgLength for a package body of `body_len` bytes: 1 byte below 63,
 * else a lead byte (following-byte count in bits 7-6, low nibble of the
 * length) plus 1-3 bytes. Writes `out`, returns 1-4, or 0 when the length
 * cannot be encoded (2^28 or more).
 */
size_t acpi_aml_pkglength(size_t body_len, uint8_t out[4]);

/* FADT field offsets and flags, for callers and tests. */
#define ACPI_FADT_SIZE 276
#define ACPI_FADT_OFF_FLAGS 112
#define ACPI_FADT_OFF_RESET_REG 116
#define ACPI_FADT_OFF_RESET_VALUE 128
#define ACPI_FADT_OFF_X_DSDT 140
#define ACPI_FADT_OFF_SLEEP_CONTROL 244
#define ACPI_FADT_OFF_SLEEP_STATUS 256
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_HW_REDUCED (1u << 20)

/* The ACPI PM port protocol the FADT and DSDT promise (devices/acpi_pm.c). */
#define ACPI_PM_RESET_VALUE 1
#define ACPI_PM_SLP_TYP_S5 5
#define ACPI_PM_SLP_TYP_SHIFT 2
#define ACPI_PM_SLP_TYP_MASK (7u << ACPI_PM_SLP_TYP_SHIFT)
#define ACPI_PM_SLP_EN (1u << 5)

/* ---- MP table, spec 1.4 (mptable.c) ---- */

/* Bytes the floating pointer plus configuration table take for nr_cpus. */
size_t mptable_size(int nr_cpus);

/*
 * Build the MP floating pointer at the start of `buf` (copied by the caller
 * to guest-physical `buf_gpa`, normally X86_MPTABLE_ADDR) and the
 * configuration table right after it. Returns the bytes used,
 * -EINVAL (nr_cpus outside 1..X86_MAX_CPUS, NULL buf, misaligned or
 * above-4-GiB buf_gpa) or -ENOSPC.
 */
int mptable_build(void *buf, size_t len, uint64_t buf_gpa, int nr_cpus);

/* ---- e820 and the zero page (bootparams.c) ---- */

#define X86_E820_RAM 1
#define X86_E820_RESERVED 2
#define X86_E820_MAX 128 /* entries the zero page holds */

struct x86_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/*
 * The guest's memory map for `ram_size` bytes of RAM: low RAM below the
 * EBDA, the EBDA/BIOS area (MP table, ACPI) reserved, RAM from 1 MiB to the
 * MMIO hole, RAM above 4 GiB for the rest. Returns the entry count,
 * -EINVAL if ram_size < X86_HIGH_MEMORY_START (the tables would not be
 * backed) or overflows, -ENOSPC if `max` is too small.
 */
int x86_e820_build(uint64_t ram_size, struct x86_e820_entry *out, int max);

struct x86_zero_page_desc {
	/* bzImage: the bytes from image offset 0x1f1 (the setup header);
	 * NULL for an ELF vmlinux, where a minimal header is synthesized. */
	const uint8_t *setup_header;
	size_t setup_header_len;
	uint64_t cmdline_gpa;   /* 0: no command line */
	uint32_t cmdline_len;   /* without the NUL */
	uint64_t initrd_gpa;
	uint64_t initrd_size;   /* 0: no initrd */
	uint64_t rsdp_gpa;      /* 0: let the kernel scan for the RSDP */
	uint64_t ram_size;
};

/*
 * Fill a 4096-byte struct boot_params (zeroed first). -EINVAL: NULL
 * pointers, a setup header without "HdrS" or older than protocol 2.00, bad
 * RAM size; -E2BIG: cmdline_len exceeds the header's cmdline_size.
 */
int x86_build_zero_page(void *zero_page, const struct x86_zero_page_desc *d);

/*
 * Highest page-aligned GPA for an initrd of `initrd_size` bytes ending at or
 * below min(end of low RAM, initrd_addr_max + 1) and starting at or above
 * both `kernel_end` and 1 MiB. Pass the bzImage's initrd_addr_max
 * (0x7fffffff for an ELF vmlinux or an old header). -EINVAL for size 0 or
 * NULL out, -ENOSPC if it does not fit.
 */
int x86_place_initrd(uint64_t ram_size, uint64_t initrd_size,
		     uint32_t initrd_addr_max, uint64_t kernel_end,
		     uint64_t *gpa_out);

/* ---- the PVH boot protocol (pvh.c) ---- */

struct x86_pvh_desc {
	uint64_t cmdline_gpa;   /* 0: none */
	uint64_t initrd_gpa;
	uint64_t initrd_size;   /* 0: no initrd (no module) */
	uint64_t rsdp_gpa;
	uint64_t ram_size;      /* the memory map is x86_e820_build's */
};

/*
 * Build hvm_start_info (version 1), the initrd's module entry and the memory
 * map into `buf`, which the caller copies to guest-physical `buf_gpa` (below
 * 4 GiB: the kernel reads it with paging off). -EINVAL for NULL pointers or
 * a buffer above 4 GiB, -ENOSPC if `len` is too small, the errors of
 * x86_e820_build.
 */
int x86_build_pvh_start_info(void *buf, size_t len, uint64_t buf_gpa,
			     const struct x86_pvh_desc *d);

/* struct boot_params offsets (Documentation/arch/x86/zero-page.rst, boot.rst) */
#define X86_ZERO_PAGE_SIZE 4096
#define X86_BP_ACPI_RSDP_ADDR 0x070 /* u64, protocol 2.14 */
#define X86_BP_EXT_RAMDISK_IMAGE 0x0c0
#define X86_BP_EXT_RAMDISK_SIZE 0x0c4
#define X86_BP_EXT_CMD_LINE_PTR 0x0c8
#define X86_BP_E820_ENTRIES 0x1e8
#define X86_BP_SENTINEL 0x1ef
#define X86_BP_HDR 0x1f1 /* struct setup_header */
#define X86_BP_HDR_END 0x290 /* header plus the room reserved for it */
#define X86_BP_BOOT_FLAG 0x1fe
#define X86_BP_HEADER 0x202
#define X86_BP_VERSION 0x206
#define X86_BP_TYPE_OF_LOADER 0x210
#define X86_BP_LOADFLAGS 0x211
#define X86_BP_RAMDISK_IMAGE 0x218
#define X86_BP_RAMDISK_SIZE 0x21c
#define X86_BP_HEAP_END_PTR 0x224
#define X86_BP_CMD_LINE_PTR 0x228
#define X86_BP_INITRD_ADDR_MAX 0x22c
#define X86_BP_KERNEL_ALIGNMENT 0x230
#define X86_BP_CMDLINE_SIZE 0x238
#define X86_BP_E820_TABLE 0x2d0
#define X86_BP_E820_ENTRY_SIZE 20

#define X86_BOOT_FLAG_MAGIC 0xaa55
#define X86_HDRS_MAGIC 0x53726448 /* "HdrS" */
#define X86_LOADED_HIGH 0x01
#define X86_CAN_USE_HEAP 0x80

/* ---- little-endian stores shared by the table builders ---- */

static inline void x86_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void x86_put_le32(uint8_t *p, uint32_t v)
{
	x86_put_le16(p, (uint16_t)v);
	x86_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void x86_put_le64(uint8_t *p, uint64_t v)
{
	x86_put_le32(p, (uint32_t)v);
	x86_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t x86_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t x86_get_le32(const uint8_t *p)
{
	return x86_get_le16(p) | ((uint32_t)x86_get_le16(p + 2) << 16);
}

static inline uint64_t x86_get_le64(const uint8_t *p)
{
	return x86_get_le32(p) | ((uint64_t)x86_get_le32(p + 4) << 32);
}

#endif
