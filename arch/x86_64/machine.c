/* SPDX-License-Identifier: MIT */
/*
 * The x86_64 machine behind include/machine.h: RAM around the MMIO hole,
 * the in-kernel PIC/IOAPIC/PIT, COM1, the ACPI PM port, the i8042 and
 * pvpanic for Linux, virtio-mmio windows on IOAPIC pins, all described
 * through ACPI, the MP table and e820 when a kernel boots.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/linux_boot.h"
#include "arch/machine_common.h"
#include "boot.h"
#include "devices/pci/pci.h"
#include "machine.h"
#include "utils.h"

struct x86_machine {
	struct device *serial;
	struct device *i8042;     /* Linux guests only */
	struct x86_platform plat; /* CPUs, RAM, virtio windows, devices */
	struct pci_bus *pci;      /* MACHINE_PCI: owned by the VM's devices */
	bool virtio_pci;          /* MACHINE_VIRTIO_PCI: virtio devices on it */
};

static struct x86_machine *machine_of(struct vm *vm)
{
	return machine_state(vm);
}

int machine_max_cpus(void)
{
	return MIN(X86_MAX_CPUS, VM_MAX_VCPUS);
}

const struct machine_info *machine_info(void)
{
	static const struct machine_info info = {
		.arch = "x86_64",
		.kernel_formats = "bzImage, ELF vmlinux or PVH ELF",
		.raw_start = "64-bit mode",
		.exit_device = "I/O port 0xf4",
		.debugcon_addr = X86_DEBUGCON_ADDR,
		.ends_guest = "ACPI, the i8042 reset",
	};

	_Static_assert(X86_EXIT_PORT == 0xf4, "the text above names the port");
	return &info;
}

uint64_t machine_raw_default_entry(void)
{
	return X86_RAW_DEFAULT_ADDR;
}

int machine_check_raw_entry(uint64_t ram_size, uint64_t entry, char *why,
			    size_t why_len)
{
	if (entry < X86_RAW_MIN_ADDR) {
		set_why(why, why_len, "--entry 0x%llx: below 0x%llx, where the boot page tables and stacks live",
			(unsigned long long)entry, (unsigned long long)X86_RAW_MIN_ADDR);
		return -ERANGE;
	}
	if (entry >= MIN(ram_size, X86_MMIO_HOLE_START)) {
		set_why(why, why_len, "--entry 0x%llx: outside guest RAM (--mem %llu MiB)",
			(unsigned long long)entry, (unsigned long long)(ram_size >> 20));
		return -ERANGE;
	}
	return 0;
}

/* The 64-bit BAR window: after the top of RAM, aligned. */
static uint64_t pci_mem64_base(uint64_t ram_size)
{
	uint64_t top = ram_size > X86_MMIO_HOLE_START ?
		       X86_HIGH_RAM_START + (ram_size - X86_MMIO_HOLE_START) : X86_HIGH_RAM_START;

	return ALIGN_UP(top, X86_PCI_MEM64_ALIGN);
}

static int add_pci(struct vm *vm, const struct machine_config *cfg, struct x86_machine *m,
		   char *why, size_t why_len)
{
	uint64_t mem64 = pci_mem64_base(cfg->ram_size);

	if (!(cfg->flags & MACHINE_LINUX)) {
		set_why(why, why_len, "PCI is described by ACPI, which only Linux boots get");
		return -EINVAL;
	}
	m->pci = pci_bus_create(vm, X86_PCI_ECAM_BASE, X86_PCI_MEM32_BASE, X86_PCI_MEM32_SIZE,
				mem64, X86_PCI_MEM64_SIZE);
	if (!m->pci) {
		set_why(why, why_len, "cannot create the PCI bus: %s", strerror(errno));
		return -errno;
	}
	m->pci->msi_gsi_next = X86_MSI_GSI_BASE;
	m->pci->msi_gsi_end = X86_MSI_GSI_BASE + X86_MSI_GSI_COUNT;
	m->virtio_pci = cfg->flags & MACHINE_VIRTIO_PCI;
	m->plat.flags |= X86_PLATFORM_PCI;
	m->plat.pci.ecam_base = X86_PCI_ECAM_BASE;
	m->plat.pci.mem32_base = X86_PCI_MEM32_BASE;
	m->plat.pci.mem32_size = X86_PCI_MEM32_SIZE;
	m->plat.pci.mem64_base = mem64;
	m->plat.pci.mem64_size = X86_PCI_MEM64_SIZE;
	return 0;
}

static int add_devices(struct vm *vm, const struct machine_config *cfg,
		       struct x86_machine *m, char *why, size_t why_len)
{
	bool linux_guest = cfg->flags & MACHINE_LINUX;
	int err = 0;

	if (cfg->flags & MACHINE_DEBUGCON)
		err = machine_add_device(vm, debugcon_create(vm, X86_DEBUGCON_ADDR, cfg->console_out_fd),
				 "debug console", why, why_len);
	if (!err && (cfg->flags & MACHINE_EXIT_DEVICE))
		err = machine_add_device(vm, exit_port_create(X86_EXIT_PORT), "exit port", why, why_len);
	if (!err) {
		m->serial = serial8250_create(vm, X86_COM1_PORT, X86_COM1_IRQ,
					      cfg->console_in_fd, cfg->console_out_fd);
		err = machine_add_device(vm, m->serial, "serial port", why, why_len);
		if (err)
			m->serial = NULL;
	}
	/* Power off / reboot: the ACPI registers and the i8042 reset;
	 * pvpanic tells a guest panic from a reboot. */
	if (!err && linux_guest)
		err = machine_add_device(vm, acpi_pm_create(X86_ACPI_PM_PORT), "ACPI PM port", why, why_len);
	if (!err && linux_guest) {
		m->i8042 = i8042_create();
		err = machine_add_device(vm, m->i8042, "i8042", why, why_len);
		if (err)
			m->i8042 = NULL;
	}
	if (!err && linux_guest)
		err = machine_add_device(vm, pvpanic_create(X86_PVPANIC_PORT), "pvpanic", why, why_len);
	if (!err && (cfg->flags & (MACHINE_PCI | MACHINE_VIRTIO_PCI)))
		err = add_pci(vm, cfg, m, why, why_len);
	return err;
}

int machine_create(struct vm *vm, const struct machine_config *cfg,
		   char *why, size_t why_len)
{
	struct x86_machine *m;
	int err;

	m = machine_state_new(vm, cfg, sizeof(*m), &err, why, why_len);
	if (!m)
		return err;
	m->plat = (struct x86_platform){
		.nr_cpus = cfg->nr_cpus, .ram_size = cfg->ram_size,
		.flags = X86_PLATFORM_COM1 |
			 (cfg->flags & MACHINE_LINUX ? X86_PLATFORM_I8042 | X86_PLATFORM_PVPANIC : 0),
	};
	/* Linux wants interrupt controllers and a PIT; raw binaries do not,
	 * and without them HLT returns to the VMM. */
	if ((cfg->flags & MACHINE_LINUX) && (err = vm_create_irqchip(vm))) {
		set_why(why, why_len, "cannot create the interrupt controller: %s", strerror(-err));
		return err;
	}
	err = x86_alloc_guest_ram(vm, cfg->ram_size);
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

int machine_send_ctrl_alt_del(struct vm *vm)
{
	struct x86_machine *m = vm ? machine_of(vm) : NULL;

	return m && m->i8042 ? i8042_send_ctrl_alt_del(m->i8042) : -ENOTSUP;
}

/* Virtio slots: window i and IOAPIC pin X86_VIRTIO_GSI_BASE + i. */
static int virtio_slots(void)
{
	return MIN(X86_VIRTIO_MMIO_MAX, X86_IOAPIC_PINS - X86_VIRTIO_GSI_BASE);
}

int machine_virtio_slot(struct vm *vm, uint64_t *base, uint32_t *irq,
			char *why, size_t why_len)
{
	struct x86_machine *m = machine_of(vm);
	int i;

	if (!m)
		return -EINVAL;
	i = m->plat.nr_virtio;
	if (i >= virtio_slots()) {
		set_why(why, why_len, "too many virtio devices (at most %d)", virtio_slots());
		return -ENOSPC;
	}
	*base = X86_VIRTIO_MMIO_BASE + (uint64_t)i * X86_VIRTIO_MMIO_SIZE;
	*irq = X86_VIRTIO_GSI_BASE + (uint32_t)i;
	return 0;
}

struct pci_bus *machine_pci_bus(struct vm *vm)
{
	struct x86_machine *m = machine_of(vm);

	return m ? m->pci : NULL;
}

struct pci_bus *machine_virtio_pci_bus(struct vm *vm)
{
	struct x86_machine *m = machine_of(vm);

	return m && m->virtio_pci ? m->pci : NULL;
}

int machine_add_virtio(struct vm *vm, struct device *dev, uint32_t irq)
{
	struct x86_machine *m = machine_of(vm);
	int i, err;

	if (!m || !dev || m->plat.nr_virtio >= virtio_slots()) {
		if (dev && dev->destroy)
			dev->destroy(dev);
		return m && dev ? -ENOSPC : -EINVAL;
	}
	err = machine_register_virtio(vm, dev);
	if (err)
		return err;
	i = m->plat.nr_virtio++;
	m->plat.virtio[i].base = dev->base;
	m->plat.virtio[i].size = dev->size;
	m->plat.virtio[i].gsi = irq;
	return 0;
}

int machine_boot_raw(struct vm *vm, const uint8_t *image, size_t len,
		     uint64_t entry, char *why, size_t why_len)
{
	struct x86_machine *m = machine_of(vm);
	int err;

	if (!m || !image)
		return -EINVAL;
	err = machine_check_raw_entry(m->plat.ram_size, entry, why, why_len);
	if (err)
		return err;
	if (len > MIN(m->plat.ram_size, X86_MMIO_HOLE_START) - entry ||
	    boot_load_raw(vm, entry, image, len)) {
		set_why(why, why_len, "%zu bytes at 0x%llx do not fit in guest RAM (--mem %llu MiB)",
			len, (unsigned long long)entry,
			(unsigned long long)(m->plat.ram_size >> 20));
		return -ERANGE;
	}
	err = x86_setup_boot_tables(vm);
	if (err) {
		set_why(why, why_len, "cannot write boot page tables: %s", strerror(-err));
		return err;
	}
	err = machine_create_vcpus(vm, m->plat.nr_cpus, why, why_len);
	for (int id = 0; !err && id < m->plat.nr_cpus; id++) {
		struct regs regs;

		err = vcpu_get_regs(vm->vcpus[id], &regs);
		if (!err) {
			x86_regs_long_mode(&regs, entry, X86_RAW_STACKS_BASE +
					   (uint64_t)(id + 1) * X86_RAW_STACK_SIZE);
			regs.rdi = (uint64_t)id; /* which vCPU am I */
			err = vcpu_set_regs(vm->vcpus[id], &regs);
		}
		if (err)
			set_why(why, why_len, "cannot set vCPU %d registers: %s", id, strerror(-err));
	}
	return err;
}

static int parse_kernel(struct vm *vm, const struct machine_linux *b,
			struct kernel_image *k, char *why, size_t why_len)
{
	const struct boot_options opts = {
		.bzimage_as_is = !!(b->flags & MACHINE_BOOT_BZIMAGE_AS_IS),
		.kernel_cache = b->kernel_cache,
	};
	enum kernel_format f = boot_detect_format(b->kernel, b->kernel_len);
	int err;

	if (f != KERNEL_FORMAT_BZIMAGE && f != KERNEL_FORMAT_ELF && f != KERNEL_FORMAT_ELF_PVH) {
		set_why(why, why_len, f == KERNEL_FORMAT_UNKNOWN
			? "not a Linux kernel (want a bzImage or an ELF vmlinux)"
			: "not an x86_64 kernel (found: %s; want a bzImage or an ELF vmlinux)",
			boot_format_name(f));
		return -ENOEXEC;
	}
	err = boot_parse_kernel(b->kernel, b->kernel_len, &opts, k);
	if (err == -ENOTSUP)
		set_why(why, why_len, "unsupported %s (old boot protocol, not 64-bit, or unknown compression)",
			boot_format_name(f));
	else if (err)
		set_why(why, why_len, "malformed or truncated %s: %s", boot_format_name(f),
			strerror(-err));
	else if (k->format == KERNEL_FORMAT_ELF_PVH && !(b->flags & MACHINE_BOOT_NO_PVH))
		vm_info(vm, "kernel: %s, PVH entry 0x%llx", boot_format_name(k->format),
			(unsigned long long)k->pvh_entry);
	else
		vm_info(vm, "kernel: %s%s, 64-bit entry 0x%llx", boot_format_name(k->format),
			k->from_cache ? " (decompressed on the host earlier: from the kernel cache)"
			: k->decompressed ? " (decompressed on the host)" : "",
			(unsigned long long)k->entry);
	return err;
}

/* Whether a kernel command line turns ACPI off (acpi=off before any "--"). */
bool x86_cmdline_has_acpi_off(const char *cmdline)
{
	const char *p = cmdline;

	while (p && *p) {
		size_t n;

		p += strspn(p, " \t\n");
		n = strcspn(p, " \t\n");
		if (n == 2 && !strncmp(p, "--", 2))
			return false; /* the rest is init's */
		if (n == 8 && !strncmp(p, "acpi=off", 8))
			return true;
		p += n;
	}
	return false;
}

/*
 * The command line the kernel gets. Each virtio device is described once:
 * in the DSDT, unless the kernel is told to ignore ACPI (as QEMU's microvm
 * does); then as virtio_mmio.device= for kernels built with
 * VIRTIO_MMIO_CMDLINE_DEVICES. Both at once make such a kernel probe every
 * device twice, the second probe failing with -EBUSY.
 */
static char *linux_cmdline(const struct x86_platform *p, const char *user)
{
	size_t len = strlen(user) + 1, used;
	bool listed = x86_cmdline_has_acpi_off(user);
	char *line;

	if (listed)
		len += (size_t)p->nr_virtio * 64;
	line = malloc(len);
	if (!line)
		return NULL;
	used = (size_t)snprintf(line, len, "%s", user);
	for (int i = 0; listed && i < p->nr_virtio; i++)
		used += (size_t)snprintf(line + used, len - used, " virtio_mmio.device=%lluK@0x%llx:%u",
					 (unsigned long long)(p->virtio[i].size >> 10),
					 (unsigned long long)p->virtio[i].base, p->virtio[i].gsi);
	return line;
}

int machine_boot_linux(struct vm *vm, const struct machine_linux *b,
		       char *why, size_t why_len)
{
	struct x86_machine *m = machine_of(vm);
	struct kernel_image k = { 0 };
	struct x86_linux_boot lb = {
		.kernel = &k, .initrd = b ? b->initrd : NULL,
		.initrd_len = b ? b->initrd_len : 0,
		.no_pvh = b && (b->flags & MACHINE_BOOT_NO_PVH),
	};
	char *cmdline = NULL;
	int err;

	if (!m || !b || !b->kernel)
		return -EINVAL;
	lb.platform = m->plat;
	err = parse_kernel(vm, b, &k, why, why_len);
	if (!err && !(cmdline = linux_cmdline(&m->plat, b->cmdline ? b->cmdline : "")))
		err = -ENOMEM;
	lb.cmdline = cmdline;
	if (!err)
		err = machine_create_vcpus(vm, m->plat.nr_cpus, why, why_len);
	if (!err)
		err = x86_boot_linux(vm, vm->vcpus[0], &lb, why, why_len);
	kernel_image_free(&k);
	free(cmdline);
	return err;
}
