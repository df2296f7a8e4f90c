/* SPDX-License-Identifier: MIT */
/*
 * The standard machine of the architecture the library was built for,
 * behind calls that name no architecture: guest RAM, the interrupt
 * controller, the serial console, power and reset devices, virtio-mmio
 * slots, and booting a Linux kernel or a raw binary. On x86_64 the guest
 * learns about the machine from ACPI tables, the MP table and the e820 map;
 * on arm64 from a device tree. Every address comes from the arch's layout
 * header (arch/<arch>/layout.h), so a program written against these calls
 * boots the same way on either.
 *
 * Order: vm_create -> [vm_enable_seccomp] -> machine_create ->
 * machine_virtio_slot + <virtio device>_create + machine_add_virtio, per
 * device -> machine_boot_linux or machine_boot_raw (they create the vCPUs)
 * -> vm_start. Errors: 0 or a negative errno, and a one-line reason in
 * `why` (NUL-terminated, at most why_len bytes) where a user would want one.
 */
#ifndef VIBEVMM_MACHINE_H
#define VIBEVMM_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include "vm.h"

/* machine_config.flags */
#define MACHINE_LINUX (1u << 0)       /* an interrupt controller, and the power-off,
					 reset and panic devices Linux uses */
#define MACHINE_DEBUGCON (1u << 1)    /* the MMIO debug console (test guests) */
#define MACHINE_EXIT_DEVICE (1u << 2) /* the guest exit port/register (test guests):
					 the value written is the VMM's exit status */
#define MACHINE_PCI (1u << 3)         /* a PCI bus (x86_64 Linux guests for now):
					 its host bridge, ECAM and BAR windows */
#define MACHINE_VIRTIO_PCI (1u << 4)  /* virtio devices as PCI functions, not
					 virtio-mmio windows (implies MACHINE_PCI) */

struct machine_config {
	int nr_cpus;       /* 1..machine_max_cpus() */
	uint64_t ram_size; /* bytes; the arch places them from guest-physical 0
			      around its device window */
	uint32_t flags;    /* MACHINE_* */
	int console_in_fd; /* the serial console's input (-1: none) */
	int console_out_fd;/* serial console and debug console output */
};

/* Most vCPUs the machine describes to a guest. */
int machine_max_cpus(void);

/* What a user of this arch's machine needs to know, in words (--help). */
struct machine_info {
	const char *arch;           /* "x86_64", "arm64" */
	const char *kernel_formats; /* what machine_boot_linux takes */
	const char *raw_start;      /* the CPU state machine_boot_raw starts in */
	const char *exit_device;    /* MACHINE_EXIT_DEVICE: where the guest writes */
	uint64_t debugcon_addr;     /* MACHINE_DEBUGCON's address */
	const char *ends_guest;     /* how a guest powers off or reboots */
};
const struct machine_info *machine_info(void);

/* Create the machine on a VM that has no memory, devices or vCPUs yet. */
int machine_create(struct vm *vm, const struct machine_config *cfg,
		   char *why, size_t why_len);

/* The serial console device (for serial8250_attach_input), or NULL. */
struct device *machine_serial(struct vm *vm);

/* Press Ctrl+Alt+Del on the guest's keyboard (x86: the i8042 of a Linux
 * guest; a stock kernel then reboots). 0, or -ENOTSUP without one. */
int machine_send_ctrl_alt_del(struct vm *vm);

/*
 * The MMIO window and interrupt line of the next virtio-mmio device.
 * -ENOSPC when the machine has no slot left (why says how many there are).
 */
int machine_virtio_slot(struct vm *vm, uint64_t *base, uint32_t *irq,
			char *why, size_t why_len);

/*
 * Register a virtio-mmio device created in the window machine_virtio_slot
 * gave, with that interrupt, and describe it to the guest. On failure the
 * device is destroyed.
 */
int machine_add_virtio(struct vm *vm, struct device *dev, uint32_t irq);

/*
 * The same for either transport: the next slot for a virtio device
 * (virtio-mmio window and interrupt, or, with MACHINE_VIRTIO_PCI, the PCI
 * bus to put it on), for the virtio_*_create_in calls; then register the
 * created device from that slot (a PCI function is described by the bus,
 * a virtio-mmio window as machine_add_virtio does). On failure the device
 * is destroyed.
 */
struct virtio_slot;
int machine_virtio_next(struct vm *vm, struct virtio_slot *slot, char *why, size_t why_len);
int machine_add_virtio_in(struct vm *vm, struct device *dev, const struct virtio_slot *slot);

/*
 * Assign the n host devices `names` (PCI addresses like 0000:01:00.0, or
 * sysfs paths) to the guest through VFIO, each a function on the
 * machine's PCI bus (MACHINE_PCI), all guest RAM mapped for their DMA.
 * After machine_create, before the VM starts. 0; -EOPNOTSUPP (no PCI bus
 * here), or the first failure's -errno, with one line in why (not bound
 * to vfio-pci and how to bind it, its IOMMU group, no IOMMU,
 * RLIMIT_MEMLOCK, busy...). Nothing stays open on failure.
 */
int machine_add_vfio(struct vm *vm, const char *const *names, int n, char *why, size_t why_len);

/* machine_linux.flags; arches that do not know a flag ignore it. */
#define MACHINE_BOOT_BZIMAGE_AS_IS (1u << 0) /* x86: run the bzImage's own decompressor */
#define MACHINE_BOOT_NO_PVH (1u << 1)        /* x86: ELF through its 64-bit entry, not PVH */

struct machine_linux {
	const uint8_t *kernel; /* the kernel file's bytes */
	size_t kernel_len;
	const uint8_t *initrd; /* NULL: none */
	size_t initrd_len;
	const char *cmdline;   /* NULL: empty */
	uint32_t flags;        /* MACHINE_BOOT_* */
	const char *kernel_cache; /* boot_options.kernel_cache; NULL: none */
};

/*
 * Parse the kernel, create the vCPUs, place kernel, initrd, command line
 * and the platform description in guest memory and point the boot vCPU at
 * the kernel (the others wait for the guest to start them). The buffers may
 * be freed afterwards. -ENOEXEC: not a kernel of this arch (why names the
 * formats it takes); -EINVAL/-ENOTSUP: malformed or unsupported; -ERANGE:
 * does not fit in guest RAM.
 */
int machine_boot_linux(struct vm *vm, const struct machine_linux *b,
		       char *why, size_t why_len);

/*
 * A raw binary: copy it to guest-physical `entry` and start every vCPU
 * there (x86_64: 64-bit long mode with identity-mapped low memory, RDI =
 * vCPU id; arm64: EL1 with the MMU off, X0 = vCPU id), each with a small
 * stack of its own.
 */
int machine_boot_raw(struct vm *vm, const uint8_t *image, size_t len,
		     uint64_t entry, char *why, size_t why_len);

/* Where a raw binary goes unless told otherwise, and whether `entry` can
 * take one with `ram_size` bytes of RAM (0, or -ERANGE and a reason). */
uint64_t machine_raw_default_entry(void);
int machine_check_raw_entry(uint64_t ram_size, uint64_t entry, char *why,
			    size_t why_len);

#endif
