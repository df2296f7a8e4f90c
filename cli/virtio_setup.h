/* SPDX-License-Identifier: MIT */
/* The command line's virtio devices: --disk, --net, --console virtio, rng. */
#ifndef VIBEVMM_CLI_VIRTIO_SETUP_H
#define VIBEVMM_CLI_VIRTIO_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "arch/x86_64/platform.h"
#include "cli/console.h"
#include "cli/options.h"
#include "vm.h"

/*
 * Create and register the virtio devices cfg asks for, in this order: the
 * disks (vda, vdb, ...), the network devices (eth0, eth1, ...), the console
 * (when cfg->console is CONSOLE_VIRTIO: hvc0, input through `con`'s Ctrl-A
 * filter), and the entropy device (always). Device i gets the MMIO window
 * X86_VIRTIO_MMIO_BASE + i * X86_VIRTIO_MMIO_SIZE and GSI
 * X86_VIRTIO_GSI_BASE + i. Fills plat->virtio[] / nr_virtio for the DSDT.
 * Only when cfg->cmdline has acpi=off (the kernel ignores the DSDT then)
 * are they also appended to cmdline_extra as " virtio_mmio.device=4K@0x...:GSI"
 * (NUL-terminated, extra_len bytes), for kernels built with
 * VIRTIO_MMIO_CMDLINE_DEVICES. Call before vm_start(). 0, or -1 with a
 * one-line reason in why.
 */
int cli_add_virtio_devices(struct vm *vm, const struct vmm_config *cfg,
			   struct console *con, struct x86_platform *plat,
			   char *cmdline_extra, size_t extra_len, char *why,
			   size_t why_len);

/* Whether a kernel command line turns ACPI off (acpi=off before any "--"). */
bool cli_cmdline_has_acpi_off(const char *cmdline);

#endif
