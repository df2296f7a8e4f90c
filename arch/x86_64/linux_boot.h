/* SPDX-License-Identifier: MIT */
/* Booting Linux on x86_64: kernel, initrd, command line and platform tables
 * placed in guest RAM, the boot vCPU set to the kernel's 64-bit entry (zero
 * page) or its PVH entry (hvm_start_info). */
#ifndef VIBEVMM_X86_64_LINUX_BOOT_H
#define VIBEVMM_X86_64_LINUX_BOOT_H

#include <stdbool.h>

#include "arch/x86_64/platform.h"
#include "boot.h"
#include "vm.h"

struct x86_linux_boot {
	const struct kernel_image *kernel;
	const uint8_t *initrd; /* NULL: none */
	size_t initrd_len;
	const char *cmdline;
	struct x86_platform platform; /* CPUs, RAM, virtio windows */
	/* An ELF with a PVH note is entered through PVH (as QEMU and
	 * Firecracker do) unless this asks for its 64-bit Linux entry. */
	int no_pvh;
};

/*
 * Load everything into `vm` and set `bsp` (vCPU 0) to enter the kernel; the
 * other vCPUs wait for the kernel's INIT/SIPI in the in-kernel LAPIC.
 * On failure returns -errno and writes a one-line reason into why.
 */
int x86_boot_linux(struct vm *vm, struct vcpu *bsp,
		   const struct x86_linux_boot *b, char *why, size_t why_len);

/* Whether a kernel command line turns ACPI off (acpi=off before any "--"):
 * then the virtio devices go on the command line instead of the DSDT. */
bool x86_cmdline_has_acpi_off(const char *cmdline);

#endif
