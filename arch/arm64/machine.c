/* SPDX-License-Identifier: MIT */
/*
 * The arm64 machine behind include/machine.h: RAM from 0 up to the device
 * window below 4 GiB (the rest from 4 GiB), a GICv3 (or v2), a memory-mapped
 * 16550, a PL031 RTC, PSCI for power, reset and secondary CPUs (in the
 * hypervisor), and virtio-mmio devices on SPIs, all described by a device
 * tree (arch/arm64/fdt.c) whose address goes to the kernel in X0.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arm64/layout.h"
#include "arch/arm64/platform.h"
#include "arch/machine_common.h"
#include "boot.h"
#include "machine.h"
#include "utils.h"

struct arm64_machine {
	struct device *serial;
	struct arm64_platform plat; /* CPUs, RAM, GIC, UART, virtio windows */
};

static struct arm64_machine *machine_of(struct vm *vm)
{
	return machine_state(vm);
}

static uint64_t low_ram_end(uint64_t ram_size)
{
	return MIN(ram_size, ARM64_LOW_RAM_END);
}

int machine_max_cpus(void)
{
	return MIN(ARM64_MAX_CPUS, VM_MAX_VCPUS);
}

const struct machine_info *machine_info(void)
{
	static const struct machine_info info = {
		.arch = "arm64",
		.kernel_formats = "arm64 Image or Image.gz",
		.raw_start = "EL1 with the MMU off",
		.exit_device = "MMIO register 0x90001000",
		.debugcon_addr = ARM64_DEBUGCON_ADDR,
		.ends_guest = "PSCI",
	};

	_Static_assert(ARM64_EXIT_ADDR == 0x90001000ULL, "the text above names the address");
	return &info;
}

uint64_t machine_raw_default_entry(void)
{
	return ARM64_RAW_DEFAULT_ADDR;
}

int machine_check_raw_entry(uint64_t ram_size, uint64_t entry, char *why,
			    size_t why_len)
{
	if (entry & 3) {
		set_why(why, why_len, "--entry 0x%llx: not 4-byte aligned, as arm64 instructions are",
			(unsigned long long)entry);
		return -EINVAL;
	}
	if (entry >= low_ram_end(ram_size)) {
		set_why(why, why_len, "--entry 0x%llx: outside guest RAM (--mem %llu MiB)",
			(unsigned long long)entry, (unsigned long long)(ram_size >> 20));
		return -ERANGE;
	}
	return 0;
}

static int alloc_ram(struct vm *vm, uint64_t size)
{
	uint64_t low = low_ram_end(size);
	int err;

	if (!size || size - low > ARM64_MAX_GPA - ARM64_HIGH_RAM_START)
		return -EINVAL;
	err = vm_alloc_memory(vm, ARM64_RAM_BASE, low);
	if (err || size == low)
		return err;
	return vm_alloc_memory(vm, ARM64_HIGH_RAM_START, size - low);
}

static int add_devices(struct vm *vm, const struct machine_config *cfg,
		       struct arm64_machine *m, char *why, size_t why_len)
{
	int err = 0;

	if (cfg->flags & MACHINE_DEBUGCON)
		err = machine_add_device(vm, debugcon_create(vm, ARM64_DEBUGCON_ADDR, cfg->console_out_fd),
				 "debug console", why, why_len);
	if (!err && (cfg->flags & MACHINE_EXIT_DEVICE))
		err = machine_add_device(vm, exit_mmio_create(ARM64_EXIT_ADDR), "exit register", why,
				 why_len);
	if (!err) {
		m->serial = serial8250_create_mmio(vm, ARM64_UART_ADDR, ARM64_UART_SPI,
						   cfg->console_in_fd, cfg->console_out_fd);
		err = machine_add_device(vm, m->serial, "serial port", why, why_len);
		if (err)
			m->serial = NULL;
		else
			m->plat.flags |= ARM64_PLATFORM_UART;
	}
	/* The date for Linux (x86 guests read it from kvmclock instead). */
	if (!err && (cfg->flags & MACHINE_LINUX)) {
		err = machine_add_device(vm, pl031_create(ARM64_RTC_ADDR), "RTC", why, why_len);
		if (!err)
			m->plat.flags |= ARM64_PLATFORM_RTC;
	}
	return err;
}

/* The in-kernel GIC Linux needs: v3, or v2 (at most 8 vCPUs) without. */
static int create_gic(struct vm *vm, int nr_cpus, int *version, char *why,
		      size_t why_len)
{
	int err = vm_create_irqchip(vm);

	if (err) {
		set_why(why, why_len, "cannot create the interrupt controller (vGIC): %s",
			strerror(-err));
		return err;
	}
	*version = vm_irqchip_model(vm) == IRQCHIP_GICV2 ? 2 : 3;
	vm_info(vm, "interrupt controller: GICv%d", *version);
	if (*version == 2 && nr_cpus > ARM64_GICV2_MAX_CPUS) {
		set_why(why, why_len, "%d vCPUs: this host's GICv2 takes at most %d", nr_cpus,
			ARM64_GICV2_MAX_CPUS);
		return -E2BIG;
	}
	return 0;
}

int machine_create(struct vm *vm, const struct machine_config *cfg,
		   char *why, size_t why_len)
{
	struct arm64_machine *m;
	int err, gic_version = 3;

	if (cfg->flags & MACHINE_VIRTIO_PCI) {
		set_why(why, why_len, "virtio-pci: not on arm64 yet (no PCI bus there; virtio-mmio is)");
		return -EOPNOTSUPP;
	}
	if (cfg->flags & MACHINE_PCI) { /* a pci-host-ecam-generic node: later */
		set_why(why, why_len, "PCI: not on arm64 yet");
		return -EOPNOTSUPP;
	}
	m = machine_state_new(vm, cfg, sizeof(*m), &err, why, why_len);
	if (!m)
		return err;
	if ((cfg->flags & MACHINE_LINUX) &&
	    (err = create_gic(vm, cfg->nr_cpus, &gic_version, why, why_len)))
		return err;
	arm64_platform_init(&m->plat, cfg->nr_cpus, cfg->ram_size, gic_version);
	err = alloc_ram(vm, cfg->ram_size);
	if (err) {
		set_why(why, why_len, "cannot allocate %llu MiB of guest RAM: %s",
			(unsigned long long)(cfg->ram_size >> 20), strerror(-err));
		return err;
	}
	return add_devices(vm, cfg, m, why, why_len);
}

struct device *machine_serial(struct vm *vm)
{
	return vm && machine_of(vm) ? machine_of(vm)->serial : NULL;
}

/* No keyboard: a guest is asked to end through PSCI or the API's
 * InstanceHalt-style paths, not Ctrl+Alt+Del. */
int machine_send_ctrl_alt_del(struct vm *vm)
{
	return -ENOTSUP;
}

int machine_virtio_slot(struct vm *vm, uint64_t *base, uint32_t *irq,
			char *why, size_t why_len)
{
	struct arm64_machine *m = machine_of(vm);

	if (!m)
		return -EINVAL;
	if (arm64_virtio_slot(m->plat.nr_virtio, base, irq) || *irq >= ARM64_GIC_NR_SPIS) {
		set_why(why, why_len, "too many virtio devices (at most %d)",
			MIN(ARM64_VIRTIO_MMIO_MAX, (int)(ARM64_GIC_NR_SPIS - ARM64_VIRTIO_SPI_BASE)));
		return -ENOSPC;
	}
	return 0;
}

struct pci_bus *machine_pci_bus(struct vm *vm)
{
	(void)vm;
	return NULL; /* a pci-host-ecam-generic node: later */
}

struct pci_bus *machine_virtio_pci_bus(struct vm *vm)
{
	(void)vm;
	return NULL; /* virtio-mmio only */
}

int machine_add_virtio(struct vm *vm, struct device *dev, uint32_t irq)
{
	struct arm64_machine *m = machine_of(vm);
	uint64_t base;
	uint32_t spi;
	int err;

	if (!m || !dev || machine_virtio_slot(vm, &base, &spi, NULL, 0) ||
	    dev->base != base || irq != spi) {
		if (dev && dev->destroy)
			dev->destroy(dev);
		return -EINVAL;
	}
	err = machine_register_virtio(vm, dev);
	if (err)
		return err;
	return arm64_platform_add_virtio(&m->plat) < 0 ? -ENOSPC : 0;
}

/* vCPU 0 at `pc` in EL1h with interrupts masked and the MMU off; the
 * others wait, powered off, for the guest's PSCI CPU_ON. */
static int start_boot_cpu(struct vm *vm, uint64_t pc, uint64_t x0, uint64_t sp,
			  char *why, size_t why_len)
{
	struct regs regs;
	int err = vcpu_get_regs(vm->vcpus[0], &regs);

	if (!err) {
		memset(regs.x, 0, sizeof(regs.x));
		regs.x[0] = x0;
		regs.pc = pc;
		regs.sp = sp;
		regs.pstate = ARM64_PSTATE_EL1H_DAIF;
		err = vcpu_set_regs(vm->vcpus[0], &regs);
	}
	if (err)
		set_why(why, why_len, "cannot set vCPU 0 registers: %s", strerror(-err));
	return err;
}

int machine_boot_raw(struct vm *vm, const uint8_t *image, size_t len,
		     uint64_t entry, char *why, size_t why_len)
{
	struct arm64_machine *m = machine_of(vm);
	uint64_t ram_end;
	int err;

	if (!m || !image)
		return -EINVAL;
	ram_end = low_ram_end(m->plat.ram_size);
	err = machine_check_raw_entry(m->plat.ram_size, entry, why, why_len);
	if (err)
		return err;
	if (len > ram_end - entry || boot_load_raw(vm, entry, image, len)) {
		set_why(why, why_len, "%zu bytes at 0x%llx do not fit in guest RAM (--mem %llu MiB)",
			len, (unsigned long long)entry,
			(unsigned long long)(m->plat.ram_size >> 20));
		return -ERANGE;
	}
	err = machine_create_vcpus(vm, m->plat.nr_cpus, why, why_len);
	/* The stack: the top of low RAM, 16-byte aligned; x0 = vCPU id 0. */
	return err ? err : start_boot_cpu(vm, entry, 0, ram_end & ~15ULL, why, why_len);
}

static int parse_kernel(struct vm *vm, const struct machine_linux *b,
			struct kernel_image *k, char *why, size_t why_len)
{
	int err = boot_parse_kernel(b->kernel, b->kernel_len, NULL, k);

	if (!err && k->format != KERNEL_FORMAT_ARM64_IMAGE)
		err = -ENOEXEC;
	if (err == -ENOEXEC || (err && boot_detect_format(b->kernel, b->kernel_len) ==
				KERNEL_FORMAT_UNKNOWN)) {
		enum kernel_format f = boot_detect_format(b->kernel, b->kernel_len);

		set_why(why, why_len, f == KERNEL_FORMAT_UNKNOWN
			? "not a Linux kernel (want an arm64 Image or Image.gz)"
			: "not an arm64 kernel (found: %s; want an arm64 Image or Image.gz)",
			boot_format_name(f));
		return -ENOEXEC;
	}
	if (err == -ENOTSUP)
		set_why(why, why_len, "unsupported arm64 Image (big-endian)");
	else if (err)
		set_why(why, why_len, "malformed or truncated arm64 Image: %s", strerror(-err));
	else
		vm_info(vm, "kernel: arm64 Image%s, %llu KiB at 0x%llx",
			k->decompressed ? " (decompressed on the host)" : "",
			(unsigned long long)(k->segments[0].mem_size >> 10),
			(unsigned long long)(ARM64_KERNEL_BASE + k->segments[0].gpa));
	return err;
}

/* The Image at the 2 MiB-aligned base + text_offset, image_size reserved. */
static int place_kernel(struct vm *vm, const struct kernel_image *k,
			uint64_t *kernel_end, char *why, size_t why_len)
{
	const struct boot_segment *s = &k->segments[0];
	uint64_t gpa = ARM64_KERNEL_BASE + s->gpa;
	uint8_t *dst = vm_gpa_to_hva(vm, gpa, s->mem_size);

	if (k->nr_segments != 1 || !dst) {
		set_why(why, why_len, "the kernel (%llu KiB at 0x%llx) does not fit in guest RAM; try more --mem",
			(unsigned long long)(s->mem_size >> 10), (unsigned long long)gpa);
		return -ERANGE;
	}
	memcpy(dst, s->data, s->file_size);
	memset(dst + s->file_size, 0, s->mem_size - s->file_size);
	*kernel_end = gpa + s->mem_size;
	return 0;
}

/* Each vCPU's MPIDR as the hypervisor set it: the device tree's cpu@ regs
 * must match what the guest reads, and what PSCI CPU_ON is given. */
static int read_mpidrs(struct vm *vm, struct arm64_platform *p)
{
	for (int i = 0; i < p->nr_cpus; i++) {
		struct regs regs;
		int err = vcpu_get_regs(vm->vcpus[i], &regs);

		if (err)
			return err;
		if (regs.mpidr_el1)
			p->mpidr[i] = regs.mpidr_el1;
	}
	return 0;
}

/* Initrd and device tree into guest RAM, above the kernel. */
static int place_blobs(struct vm *vm, struct arm64_machine *m, const struct machine_linux *b,
		       uint64_t kernel_end, uint64_t *dtb_gpa, char *why, size_t why_len)
{
	struct arm64_boot_layout at;
	uint8_t *dtb;
	int n, err = arm64_place_boot(m->plat.ram_size, kernel_end,
				      b->initrd ? b->initrd_len : 0, &at);

	if (err) {
		set_why(why, why_len, "%s not fit in guest RAM above the kernel; try more --mem",
			b->initrd ? "the initrd and the device tree do" : "the device tree does");
		return -ERANGE;
	}
	if (b->initrd) {
		err = vm_write_guest(vm, at.initrd_gpa, b->initrd, b->initrd_len);
		m->plat.initrd_start = at.initrd_gpa;
		m->plat.initrd_end = at.initrd_gpa + b->initrd_len;
	}
	m->plat.cmdline = b->cmdline ? b->cmdline : "";
	dtb = err ? NULL : malloc(ARM64_DTB_MAX_SIZE);
	n = dtb ? arm64_fdt_build(dtb, ARM64_DTB_MAX_SIZE, &m->plat) : err ? err : -ENOMEM;
	if (n == -E2BIG)
		set_why(why, why_len, "--cmdline is %zu bytes; the device tree takes at most %d",
			strlen(m->plat.cmdline), ARM64_CMDLINE_MAX - 1);
	else if (n < 0)
		set_why(why, why_len, "cannot build the device tree: %s", strerror(-n));
	else
		err = vm_write_guest(vm, at.dtb_gpa, dtb, (size_t)n);
	m->plat.cmdline = NULL; /* the caller's buffer */
	free(dtb);
	*dtb_gpa = at.dtb_gpa;
	return n < 0 ? n : err;
}

int machine_boot_linux(struct vm *vm, const struct machine_linux *b,
		       char *why, size_t why_len)
{
	struct arm64_machine *m = machine_of(vm);
	struct kernel_image k = { 0 };
	uint64_t kernel_end = 0, dtb_gpa = 0;
	int err;

	if (!m || !b || !b->kernel)
		return -EINVAL;
	err = parse_kernel(vm, b, &k, why, why_len);
	if (!err)
		err = place_kernel(vm, &k, &kernel_end, why, why_len);
	if (!err)
		err = machine_create_vcpus(vm, m->plat.nr_cpus, why, why_len);
	if (!err && (err = read_mpidrs(vm, &m->plat)))
		set_why(why, why_len, "cannot read the vCPUs' MPIDR: %s", strerror(-err));
	if (!err)
		err = place_blobs(vm, m, b, kernel_end, &dtb_gpa, why, why_len);
	/* booting.rst: X0 = the device tree, X1-X3 = 0, MMU off. */
	if (!err)
		err = start_boot_cpu(vm, ARM64_KERNEL_BASE + k.segments[0].gpa, dtb_gpa, 0, why,
				     why_len);
	kernel_image_free(&k);
	return err;
}
