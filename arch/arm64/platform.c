/* SPDX-License-Identifier: MIT */
/*
 * The arm64 platform's defaults from layout.h, its virtio slots, and where
 * Linux's boot blobs go (Documentation/arch/arm64/booting.rst). Pure.
 */
#include <errno.h>
#include <string.h>

#include "arch/arm64/platform.h"

void arm64_platform_init(struct arm64_platform *p, int nr_cpus,
			 uint64_t ram_size, int gic_version)
{
	memset(p, 0, sizeof(*p));
	p->nr_cpus = nr_cpus;
	for (int i = 0; i < nr_cpus && i < ARM64_MAX_CPUS; i++)
		p->mpidr[i] = arm64_default_mpidr((unsigned int)i);
	p->ram_size = ram_size;
	p->gic.version = gic_version;
	p->gic.dist_base = ARM64_GIC_DIST_BASE;
	p->gic.dist_size = ARM64_GIC_DIST_SIZE;
	if (gic_version == 2) {
		p->gic.cpu_base = ARM64_GIC_CPU_BASE;
		p->gic.cpu_size = ARM64_GIC_CPU_SIZE;
	} else {
		/* Describe only the redistributors that exist: Linux walks
		 * the region frame by frame until the one marked Last. */
		p->gic.redist_base = ARM64_GIC_REDIST_BASE;
		p->gic.redist_size = ARM64_GIC_REDIST_STRIDE *
				     (uint64_t)(nr_cpus > 0 ? nr_cpus : 0);
	}
	p->uart.base = ARM64_UART_ADDR;
	p->uart.size = ARM64_UART_SIZE;
	p->uart.spi = ARM64_UART_SPI;
	p->uart.clock_hz = ARM64_UART_CLOCK_HZ;
	p->rtc.base = ARM64_RTC_ADDR;
	p->rtc.size = ARM64_RTC_SIZE;
	p->rtc.spi = ARM64_RTC_SPI;
}

int arm64_virtio_slot(int slot, uint64_t *base, uint32_t *spi)
{
	if (slot < 0 || slot >= ARM64_VIRTIO_MMIO_MAX || !base || !spi)
		return -EINVAL;
	*base = ARM64_VIRTIO_MMIO_BASE + (uint64_t)slot * ARM64_VIRTIO_MMIO_SIZE;
	*spi = ARM64_VIRTIO_SPI_BASE + (uint32_t)slot;
	return 0;
}

int arm64_platform_add_virtio(struct arm64_platform *p)
{
	int slot;

	if (!p || p->nr_virtio < 0)
		return -EINVAL;
	slot = p->nr_virtio;
	if (slot >= ARM64_VIRTIO_MMIO_MAX)
		return -ENOSPC;
	if (arm64_virtio_slot(slot, &p->virtio[slot].base, &p->virtio[slot].spi))
		return -EINVAL;
	p->virtio[slot].size = ARM64_VIRTIO_MMIO_SIZE;
	p->nr_virtio++;
	return slot;
}

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

int arm64_place_boot(uint64_t ram_size, uint64_t kernel_end,
		     uint64_t initrd_size, struct arm64_boot_layout *out)
{
	uint64_t low_end = ram_size < ARM64_LOW_RAM_END ? ram_size : ARM64_LOW_RAM_END;
	uint64_t window_end = align_down(ARM64_KERNEL_BASE, ARM64_INITRD_WINDOW_ALIGN) +
			      ARM64_INITRD_WINDOW_SIZE;
	uint64_t dtb, initrd;

	if (!out || kernel_end < ARM64_KERNEL_BASE)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	dtb = align_down(low_end, ARM64_DTB_SLOT_ALIGN);
	if (dtb < ARM64_DTB_MAX_SIZE)
		return -ENOSPC;
	dtb -= ARM64_DTB_MAX_SIZE;
	if (dtb < kernel_end)
		return -ENOSPC;
	out->dtb_gpa = dtb;
	if (!initrd_size)
		return 0;
	if (initrd_size > dtb - kernel_end)
		return -ENOSPC;
	initrd = align_down(dtb - initrd_size, ARM64_INITRD_ALIGN);
	if (initrd < kernel_end || initrd + initrd_size > window_end)
		return -ENOSPC;
	out->initrd_gpa = initrd;
	return 0;
}
