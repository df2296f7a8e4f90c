/* SPDX-License-Identifier: MIT */
/*
 * The arm64 machine's flattened device tree, written with libfdt's
 * sequential-write API (fdt_create, fdt_begin_node, fdt_property, ...):
 * nodes are emitted in order, properties before subnodes, into the
 * caller's buffer. The bindings followed are the kernel's
 * Documentation/devicetree/bindings (arm/cpus, arm/psci, timer/arm,arch_timer,
 * interrupt-controller/arm,gic-v3 and arm,gic, serial/8250, rtc/arm,pl031,
 * virtio/mmio), in the shape QEMU's and kvmtool's "virt" trees have.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libfdt.h>

#include "arch/arm64/platform.h"
#include "arch/arm64/psci.h"

/* A node name: "name@unit-address" in hex, as DT naming wants. */
#define NODE_NAME_MAX 64

/* libfdt's errors as -errno: only a full buffer is the caller's to fix. */
static int fdt_errno(int err)
{
	if (err >= 0)
		return err;
	return err == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
}

/* ---- validation ---- */

static int check_cpus(const struct arm64_platform *p)
{
	int max = p->gic.version == 2 ? ARM64_GICV2_MAX_CPUS : ARM64_MAX_CPUS;

	if (p->nr_cpus < 1 || p->nr_cpus > max)
		return -EINVAL;
	/* Two CPUs with one affinity could not be told apart by PSCI. */
	for (int i = 0; i < p->nr_cpus; i++)
		for (int j = 0; j < i; j++)
			if (((p->mpidr[i] ^ p->mpidr[j]) & ARM64_MPIDR_AFF_MASK) == 0)
				return -EINVAL;
	return 0;
}

static int region_ok(uint64_t base, uint64_t size)
{
	return size && base + size > base && base + size <= ARM64_MAX_GPA;
}

static int check_gic(const struct arm64_platform *p)
{
	if (!region_ok(p->gic.dist_base, p->gic.dist_size))
		return -EINVAL;
	if (p->gic.version == 3) {
		if (!region_ok(p->gic.redist_base, p->gic.redist_size) ||
		    p->gic.redist_size / ARM64_GIC_REDIST_STRIDE < (uint64_t)p->nr_cpus)
			return -EINVAL;
		return 0;
	}
	if (p->gic.version == 2)
		return region_ok(p->gic.cpu_base, p->gic.cpu_size) ? 0 : -EINVAL;
	return -EINVAL;
}

/* Marks `spi` used in `used`; 0, or -EINVAL when out of range or taken. */
static int claim_spi(uint8_t *used, uint32_t spi)
{
	if (spi >= ARM64_GIC_NR_SPIS || used[spi])
		return -EINVAL;
	used[spi] = 1;
	return 0;
}

static int check_virtio(const struct arm64_platform *p, uint8_t *used)
{
	const uint64_t area_end = ARM64_VIRTIO_MMIO_BASE +
				  ARM64_VIRTIO_MMIO_MAX * ARM64_VIRTIO_MMIO_SIZE;

	if (p->nr_virtio < 0 || p->nr_virtio > ARM64_VIRTIO_MMIO_MAX)
		return -EINVAL;
	for (int i = 0; i < p->nr_virtio; i++) {
		uint64_t base = p->virtio[i].base, size = p->virtio[i].size;

		if (!size || base < ARM64_VIRTIO_MMIO_BASE || base >= area_end ||
		    size > area_end - base || claim_spi(used, p->virtio[i].spi))
			return -EINVAL;
	}
	return 0;
}

/* Device windows in range, and no SPI given to two devices. */
static int check_devices(const struct arm64_platform *p)
{
	uint8_t used[ARM64_GIC_NR_SPIS] = { 0 };

	if ((p->flags & ARM64_PLATFORM_UART) &&
	    (!region_ok(p->uart.base, p->uart.size) || !p->uart.clock_hz ||
	     claim_spi(used, p->uart.spi)))
		return -EINVAL;
	if ((p->flags & ARM64_PLATFORM_RTC) &&
	    (!region_ok(p->rtc.base, p->rtc.size) || claim_spi(used, p->rtc.spi)))
		return -EINVAL;
	return check_virtio(p, used);
}

/* [start, end) inside low RAM or inside high RAM. */
static int in_ram(const struct arm64_platform *p, uint64_t start, uint64_t end)
{
	uint64_t low = p->ram_size < ARM64_LOW_RAM_END ? p->ram_size : ARM64_LOW_RAM_END;

	if (end <= low)
		return 1;
	return start >= ARM64_HIGH_RAM_START &&
	       end - ARM64_HIGH_RAM_START <= p->ram_size - low;
}

static int check_initrd(const struct arm64_platform *p)
{
	if (!p->initrd_start && !p->initrd_end)
		return 0;
	if (p->initrd_end <= p->initrd_start ||
	    !in_ram(p, p->initrd_start, p->initrd_end))
		return -EINVAL;
	return 0;
}

static int check_platform(const struct arm64_platform *p)
{
	int err;

	if ((err = check_gic(p)) || (err = check_cpus(p)) || (err = check_devices(p)))
		return err;
	if (!p->ram_size || p->ram_size > ARM64_MAX_GPA - ARM64_MMIO_END + ARM64_LOW_RAM_END)
		return -EINVAL;
	if ((err = check_initrd(p)))
		return err;
	if (p->cmdline && strlen(p->cmdline) >= ARM64_CMDLINE_MAX)
		return -E2BIG;
	return 0;
}

/* ---- property helpers ---- */

/* A "reg"-style pair of 2-cell values: <addr-hi addr-lo size-hi size-lo>. */
static int prop_reg(void *fdt, uint64_t base, uint64_t size)
{
	fdt64_t cells[2] = { cpu_to_fdt64(base), cpu_to_fdt64(size) };

	return fdt_property(fdt, "reg", cells, sizeof(cells));
}

static int prop_irq(void *fdt, uint32_t type, uint32_t num, uint32_t flags)
{
	fdt32_t cells[3] = { cpu_to_fdt32(type), cpu_to_fdt32(num), cpu_to_fdt32(flags) };

	return fdt_property(fdt, "interrupts", cells, sizeof(cells));
}

/* A string list property: the strings with their NULs, back to back. */
static int prop_strings(void *fdt, const char *name, const char *const *s, int n)
{
	char buf[128];
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;

		if (l > sizeof(buf) - len)
			return -FDT_ERR_INTERNAL;
		memcpy(buf + len, s[i], l);
		len += l;
	}
	return fdt_property(fdt, name, buf, (int)len);
}

static int begin_unit_node(void *fdt, const char *name, uint64_t unit)
{
	char n[NODE_NAME_MAX];

	snprintf(n, sizeof(n), "%s@%llx", name, (unsigned long long)unit);
	return fdt_begin_node(fdt, n);
}

/* ---- nodes ---- */

static int add_root_props(void *fdt)
{
	int err;

	if ((err = fdt_property_string(fdt, "compatible", "linux,dummy-virt")) ||
	    (err = fdt_property_string(fdt, "model", "vibevmm")) ||
	    (err = fdt_property_u32(fdt, "#address-cells", 2)) ||
	    (err = fdt_property_u32(fdt, "#size-cells", 2)) ||
	    (err = fdt_property_u32(fdt, "interrupt-parent", ARM64_FDT_PHANDLE_GIC)))
		return err;
	return 0;
}

static int add_chosen(void *fdt, const struct arm64_platform *p)
{
	char path[NODE_NAME_MAX];
	int err;

	if ((err = fdt_begin_node(fdt, "chosen")))
		return err;
	if (p->cmdline && (err = fdt_property_string(fdt, "bootargs", p->cmdline)))
		return err;
	if (p->flags & ARM64_PLATFORM_UART) {
		snprintf(path, sizeof(path), "/serial@%llx", (unsigned long long)p->uart.base);
		if ((err = fdt_property_string(fdt, "stdout-path", path)))
			return err;
	}
	if (p->initrd_end &&
	    ((err = fdt_property_u64(fdt, "linux,initrd-start", p->initrd_start)) ||
	     (err = fdt_property_u64(fdt, "linux,initrd-end", p->initrd_end))))
		return err;
	return fdt_end_node(fdt);
}

static int add_memory(void *fdt, const struct arm64_platform *p)
{
	uint64_t low = p->ram_size < ARM64_LOW_RAM_END ? p->ram_size : ARM64_LOW_RAM_END;
	uint64_t high = p->ram_size - low;
	fdt64_t reg[4] = {
		cpu_to_fdt64(ARM64_RAM_BASE), cpu_to_fdt64(low),
		cpu_to_fdt64(ARM64_HIGH_RAM_START), cpu_to_fdt64(high),
	};
	int err;

	if ((err = begin_unit_node(fdt, "memory", ARM64_RAM_BASE)) ||
	    (err = fdt_property_string(fdt, "device_type", "memory")) ||
	    (err = fdt_property(fdt, "reg", reg, high ? sizeof(reg) : sizeof(reg) / 2)))
		return err;
	return fdt_end_node(fdt);
}

/* One cell of affinity is enough unless some CPU has an Aff3. */
static int cpu_address_cells(const struct arm64_platform *p)
{
	for (int i = 0; i < p->nr_cpus; i++)
		if ((p->mpidr[i] & ARM64_MPIDR_AFF_MASK) >> 32)
			return 2;
	return 1;
}

static int add_cpu(void *fdt, uint64_t aff, int cells)
{
	int err;

	if ((err = begin_unit_node(fdt, "cpu", aff)) ||
	    (err = fdt_property_string(fdt, "device_type", "cpu")) ||
	    (err = fdt_property_string(fdt, "compatible", "arm,armv8")) ||
	    (err = fdt_property_string(fdt, "enable-method", "psci")))
		return err;
	err = cells == 2 ? fdt_property_u64(fdt, "reg", aff)
			 : fdt_property_u32(fdt, "reg", (uint32_t)aff);
	return err ? err : fdt_end_node(fdt);
}

static int add_cpus(void *fdt, const struct arm64_platform *p)
{
	int cells = cpu_address_cells(p);
	int err;

	if ((err = fdt_begin_node(fdt, "cpus")) ||
	    (err = fdt_property_u32(fdt, "#address-cells", (uint32_t)cells)) ||
	    (err = fdt_property_u32(fdt, "#size-cells", 0)))
		return err;
	for (int i = 0; i < p->nr_cpus; i++)
		if ((err = add_cpu(fdt, p->mpidr[i] & ARM64_MPIDR_AFF_MASK, cells)))
			return err;
	return fdt_end_node(fdt);
}

/*
 * PSCI 0.2 through HVC. "arm,psci" (0.1) comes second, for kernels that
 * predate 0.2; it needs the function ids as properties, which the 0.2 ids
 * serve (KVM and QEMU do the same).
 */
static int add_psci(void *fdt)
{
	static const char *const compat[] = { "arm,psci-0.2", "arm,psci" };
	int err;

	if ((err = fdt_begin_node(fdt, "psci")) ||
	    (err = prop_strings(fdt, "compatible", compat, 2)) ||
	    (err = fdt_property_string(fdt, "method", "hvc")) ||
	    (err = fdt_property_u32(fdt, "cpu_suspend", PSCI_CPU_SUSPEND64)) ||
	    (err = fdt_property_u32(fdt, "cpu_off", PSCI_CPU_OFF)) ||
	    (err = fdt_property_u32(fdt, "cpu_on", PSCI_CPU_ON64)) ||
	    (err = fdt_property_u32(fdt, "migrate", PSCI_MIGRATE64)))
		return err;
	return fdt_end_node(fdt);
}

/*
 * The architected timer's four PPIs, level-high. A GICv2 PPI specifier
 * also names the CPUs it reaches (all of them).
 */
static int add_timer(void *fdt, const struct arm64_platform *p)
{
	static const uint32_t ppis[] = {
		ARM64_TIMER_PPI_SEC_PHYS, ARM64_TIMER_PPI_PHYS,
		ARM64_TIMER_PPI_VIRT, ARM64_TIMER_PPI_HYP,
	};
	uint32_t flags = ARM64_FDT_IRQ_LEVEL_HIGH;
	fdt32_t cells[12];
	int err;

	if (p->gic.version == 2)
		flags |= ((1u << p->nr_cpus) - 1) << ARM64_FDT_IRQ_PPI_CPU_SHIFT;
	for (int i = 0; i < 4; i++) {
		cells[3 * i] = cpu_to_fdt32(ARM64_FDT_IRQ_PPI);
		cells[3 * i + 1] = cpu_to_fdt32(ppis[i]);
		cells[3 * i + 2] = cpu_to_fdt32(flags);
	}
	if ((err = fdt_begin_node(fdt, "timer")) ||
	    (err = fdt_property_string(fdt, "compatible", "arm,armv8-timer")) ||
	    (err = fdt_property(fdt, "interrupts", cells, sizeof(cells))) ||
	    (err = fdt_property(fdt, "always-on", NULL, 0)))
		return err;
	return fdt_end_node(fdt);
}

static int add_gic(void *fdt, const struct arm64_platform *p)
{
	int v3 = p->gic.version == 3;
	fdt64_t reg[4] = {
		cpu_to_fdt64(p->gic.dist_base), cpu_to_fdt64(p->gic.dist_size),
		cpu_to_fdt64(v3 ? p->gic.redist_base : p->gic.cpu_base),
		cpu_to_fdt64(v3 ? p->gic.redist_size : p->gic.cpu_size),
	};
	int err;

	if ((err = begin_unit_node(fdt, "intc", p->gic.dist_base)) ||
	    (err = fdt_property_string(fdt, "compatible",
				       v3 ? "arm,gic-v3" : "arm,cortex-a15-gic")) ||
	    (err = fdt_property_u32(fdt, "#interrupt-cells", 3)) ||
	    /* No children (no ITS); an interrupt-map parent needs the cell. */
	    (err = fdt_property_u32(fdt, "#address-cells", 0)) ||
	    (err = fdt_property(fdt, "interrupt-controller", NULL, 0)) ||
	    (err = fdt_property(fdt, "reg", reg, sizeof(reg))) ||
	    (err = fdt_property_u32(fdt, "phandle", ARM64_FDT_PHANDLE_GIC)))
		return err;
	return fdt_end_node(fdt);
}

static int add_uart(void *fdt, const struct arm64_platform *p)
{
	int err;

	if ((err = begin_unit_node(fdt, "serial", p->uart.base)) ||
	    (err = fdt_property_string(fdt, "compatible", "ns16550a")) ||
	    (err = prop_reg(fdt, p->uart.base, p->uart.size)) ||
	    (err = fdt_property_u32(fdt, "clock-frequency", p->uart.clock_hz)) ||
	    (err = fdt_property_u32(fdt, "reg-shift", 0)) ||
	    (err = fdt_property_u32(fdt, "reg-io-width", 1)) ||
	    (err = prop_irq(fdt, ARM64_FDT_IRQ_SPI, p->uart.spi, ARM64_FDT_IRQ_LEVEL_HIGH)))
		return err;
	return fdt_end_node(fdt);
}

/* The fixed APB clock a primecell's driver asks for by name. */
static int add_apb_clock(void *fdt)
{
	int err;

	if ((err = fdt_begin_node(fdt, "apb-pclk")) ||
	    (err = fdt_property_string(fdt, "compatible", "fixed-clock")) ||
	    (err = fdt_property_u32(fdt, "#clock-cells", 0)) ||
	    (err = fdt_property_u32(fdt, "clock-frequency", ARM64_APB_CLOCK_HZ)) ||
	    (err = fdt_property_string(fdt, "clock-output-names", "clk24mhz")) ||
	    (err = fdt_property_u32(fdt, "phandle", ARM64_FDT_PHANDLE_APB_CLOCK)))
		return err;
	return fdt_end_node(fdt);
}

static int add_rtc(void *fdt, const struct arm64_platform *p)
{
	static const char *const compat[] = { "arm,pl031", "arm,primecell" };
	int err;

	if ((err = add_apb_clock(fdt)) ||
	    (err = begin_unit_node(fdt, "rtc", p->rtc.base)) ||
	    (err = prop_strings(fdt, "compatible", compat, 2)) ||
	    (err = prop_reg(fdt, p->rtc.base, p->rtc.size)) ||
	    (err = prop_irq(fdt, ARM64_FDT_IRQ_SPI, p->rtc.spi, ARM64_FDT_IRQ_LEVEL_HIGH)) ||
	    (err = fdt_property_u32(fdt, "clocks", ARM64_FDT_PHANDLE_APB_CLOCK)) ||
	    (err = fdt_property_string(fdt, "clock-names", "apb_pclk")))
		return err;
	return fdt_end_node(fdt);
}

/*
 * virtio-mmio: one SPI per device, edge-triggered as the interrupt status
 * register is the level the driver reads; dma-coherent because guest RAM
 * is ordinary cacheable memory to the VMM (as Firecracker marks them).
 */
static int add_virtio(void *fdt, const struct arm64_platform *p, int i)
{
	int err;

	if ((err = begin_unit_node(fdt, "virtio_mmio", p->virtio[i].base)) ||
	    (err = fdt_property_string(fdt, "compatible", "virtio,mmio")) ||
	    (err = prop_reg(fdt, p->virtio[i].base, p->virtio[i].size)) ||
	    (err = prop_irq(fdt, ARM64_FDT_IRQ_SPI, p->virtio[i].spi,
			    ARM64_FDT_IRQ_EDGE_RISING)) ||
	    (err = fdt_property(fdt, "dma-coherent", NULL, 0)))
		return err;
	return fdt_end_node(fdt);
}

static int build_tree(void *fdt, size_t len, const struct arm64_platform *p)
{
	int err;

	if ((err = fdt_create(fdt, (int)len)) || (err = fdt_finish_reservemap(fdt)) ||
	    (err = fdt_begin_node(fdt, "")) || (err = add_root_props(fdt)) ||
	    (err = add_chosen(fdt, p)) || (err = add_memory(fdt, p)) ||
	    (err = add_cpus(fdt, p)) || (err = add_psci(fdt)) ||
	    (err = add_timer(fdt, p)) || (err = add_gic(fdt, p)))
		return err;
	if ((p->flags & ARM64_PLATFORM_UART) && (err = add_uart(fdt, p)))
		return err;
	if ((p->flags & ARM64_PLATFORM_RTC) && (err = add_rtc(fdt, p)))
		return err;
	for (int i = 0; i < p->nr_virtio; i++)
		if ((err = add_virtio(fdt, p, i)))
			return err;
	if ((err = fdt_end_node(fdt)) || (err = fdt_finish(fdt)))
		return err;
	return (int)fdt_totalsize(fdt);
}

int arm64_fdt_build(void *buf, size_t len, const struct arm64_platform *p)
{
	int err;

	if (!buf || !p)
		return -EINVAL;
	if ((err = check_platform(p)))
		return err;
	if (len > ARM64_DTB_MAX_SIZE)
		len = ARM64_DTB_MAX_SIZE;
	return fdt_errno(build_tree(buf, len, p));
}
