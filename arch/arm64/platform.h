/* SPDX-License-Identifier: MIT */
/*
 * The arm64 guest platform description a stock Linux kernel reads: the
 * flattened device tree, and where the boot blobs (Image, initrd, DTB) go.
 *
 * Pure functions that fill host buffers or structs: no VM, no ioctls, no
 * global state, nothing KVM-specific, so the KVM backend and the later
 * Hypervisor.framework one share them, and they are unit-tested on any
 * host. Addresses and interrupt numbers come from arch/arm64/layout.h.
 */
#ifndef VIBEVMM_ARM64_PLATFORM_H
#define VIBEVMM_ARM64_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "arch/arm64/layout.h"

/* arm64_platform.flags: optional devices the device tree describes. */
#define ARM64_PLATFORM_UART (1u << 0) /* 16550 node; /chosen stdout-path to it */
#define ARM64_PLATFORM_RTC (1u << 1)  /* PL031 node and its APB clock */

/*
 * MPIDR_EL1 affinity fields (Aff3 in bits 39:32, Aff2-Aff0 in 23:0): the
 * value of a cpu node's "reg" and what PSCI CPU_ON names a CPU by.
 */
#define ARM64_MPIDR_AFF_MASK 0xff00ffffffULL
#define ARM64_MPIDR_RES1 (1ULL << 31)

struct arm64_platform {
	int nr_cpus; /* 1..ARM64_MAX_CPUS (..ARM64_GICV2_MAX_CPUS for GICv2) */
	/*
	 * MPIDR_EL1 of each vCPU, in vCPU order; only the affinity bits are
	 * used and they must differ. arm64_platform_init() fills KVM's
	 * default; a backend may read the real register and put it here.
	 */
	uint64_t mpidr[ARM64_MAX_CPUS];
	/* Total guest RAM: [0, min(ram, ARM64_LOW_RAM_END)) plus the rest
	 * from ARM64_HIGH_RAM_START, all below ARM64_MAX_GPA. */
	uint64_t ram_size;
	const char *cmdline; /* /chosen bootargs; NULL: none */
	/* The initrd's guest range [start, end); both 0: no initrd. */
	uint64_t initrd_start, initrd_end;
	struct {
		int version; /* 3 or 2 */
		uint64_t dist_base, dist_size;
		/* v3: the redistributor region, >= nr_cpus * 128 KiB */
		uint64_t redist_base, redist_size;
		/* v2: the CPU interface */
		uint64_t cpu_base, cpu_size;
	} gic;
	struct {
		uint64_t base, size;
		uint32_t spi;
		uint32_t clock_hz; /* the 16550's input clock, for baud rates */
	} uart;
	struct {
		uint64_t base, size;
		uint32_t spi;
	} rtc;
	int nr_virtio;
	struct {
		uint64_t base, size; /* inside the virtio-mmio area of layout.h */
		uint32_t spi;
	} virtio[ARM64_VIRTIO_MMIO_MAX];
	uint32_t flags; /* ARM64_PLATFORM_* */
};

/*
 * KVM's default MPIDR_EL1 for vCPU `id` (reset_mpidr() in the kernel's
 * arch/arm64/kvm/sys_regs.c): Aff0 = id % 16, Aff1 = (id / 16) % 256,
 * Aff2 = (id / 4096) % 256, bit 31 set. Aff0 stops at 16 because a GICv3
 * SGI names its targets with a 16-bit mask per Aff1 cluster.
 */
static inline uint64_t arm64_default_mpidr(unsigned int id)
{
	return ARM64_MPIDR_RES1 | (id & 0xfu) | (uint64_t)((id >> 4) & 0xff) << 8 |
	       (uint64_t)((id >> 12) & 0xff) << 16;
}

/*
 * A platform with everything at its layout.h address: nr_cpus vCPUs with
 * KVM's default MPIDRs, ram_size bytes of RAM, a GICv3 (gic_version 3) or
 * GICv2 (2), the UART and RTC regions filled in but not enabled (flags 0),
 * no virtio devices, no cmdline, no initrd. Not validated here:
 * arm64_fdt_build() checks the result.
 */
void arm64_platform_init(struct arm64_platform *p, int nr_cpus,
			 uint64_t ram_size, int gic_version);

/*
 * Virtio slot `slot` (0..ARM64_VIRTIO_MMIO_MAX-1): its window base and SPI.
 * The one place the machine code and the device tree both take them from.
 * -EINVAL for a slot out of range or NULL pointers.
 */
int arm64_virtio_slot(int slot, uint64_t *base, uint32_t *spi);

/*
 * Describe the next virtio slot in `p` (window and SPI from
 * arm64_virtio_slot). Returns the slot number, -ENOSPC when all are used,
 * -EINVAL for a NULL or inconsistent platform.
 */
int arm64_platform_add_virtio(struct arm64_platform *p);

/*
 * Build the flattened device tree for `p` into `buf` (at most `len` bytes,
 * and never more than ARM64_DTB_MAX_SIZE). Returns the blob's size, or
 * -EINVAL: NULL pointers, nr_cpus out of range, duplicate MPIDR affinities,
 * RAM size 0 or beyond ARM64_MAX_GPA, an initrd range that is empty,
 * reversed or not inside RAM, a GIC version other than 2 or 3, GIC regions
 * empty or too small for nr_cpus, an enabled UART or RTC without a size or
 * (UART) clock, a virtio window empty or outside the virtio-mmio area, an
 * SPI >= ARM64_GIC_NR_SPIS or given to two devices; -E2BIG: the command
 * line is ARM64_CMDLINE_MAX bytes or longer; -ENOSPC: `len` is too small.
 *
 * The tree: root "linux,dummy-virt" (#address-cells = #size-cells = 2,
 * interrupt-parent = the GIC), /chosen (bootargs, stdout-path, initrd
 * range), /memory@0, /cpus with one cpu@MPIDR each (enable-method psci),
 * /psci (0.2, hvc), /timer (armv8 PPIs), /intc (the GIC), and the enabled
 * UART, RTC (with /apb-pclk) and one virtio_mmio node per device.
 */
int arm64_fdt_build(void *buf, size_t len, const struct arm64_platform *p);

/* Phandles the tree gives the GIC and the APB clock. */
#define ARM64_FDT_PHANDLE_GIC 1
#define ARM64_FDT_PHANDLE_APB_CLOCK 2

/* Interrupt specifier cells (#interrupt-cells = 3: type, number, flags). */
#define ARM64_FDT_IRQ_SPI 0
#define ARM64_FDT_IRQ_PPI 1
#define ARM64_FDT_IRQ_EDGE_RISING 1
#define ARM64_FDT_IRQ_LEVEL_HIGH 4
/* GICv2 PPIs also carry a mask of their target CPUs in bits 15:8. */
#define ARM64_FDT_IRQ_PPI_CPU_SHIFT 8

/* ---- where Linux's boot blobs go (platform.c) ---- */

struct arm64_boot_layout {
	uint64_t dtb_gpa;    /* ARM64_DTB_MAX_SIZE bytes reserved from here */
	uint64_t initrd_gpa; /* 0 when there is no initrd */
};

/*
 * Place the DTB and an initrd of `initrd_size` bytes (0: none) for a
 * kernel that occupies guest RAM up to `kernel_end` (its 2 MiB-aligned
 * base + text_offset + image_size): the DTB in the last whole 2 MiB-aligned
 * 2 MiB of low RAM, the initrd page-aligned right below it, both above
 * kernel_end, in the kernel's 1 GiB-aligned 32 GiB window (layout.h).
 * -EINVAL for a NULL `out` or a kernel_end below ARM64_KERNEL_BASE;
 * -ENOSPC when they do not fit in low RAM.
 */
int arm64_place_boot(uint64_t ram_size, uint64_t kernel_end,
		     uint64_t initrd_size, struct arm64_boot_layout *out);

#endif
