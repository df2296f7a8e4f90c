/* SPDX-License-Identifier: MIT */
/* The command line's virtio devices: --disk, --net, --console virtio, rng. */
#ifndef VIBEVMM_CLI_VIRTIO_SETUP_H
#define VIBEVMM_CLI_VIRTIO_SETUP_H

#include <stddef.h>

#include "cli/console.h"
#include "cli/options.h"
#include "vm.h"

/*
 * Create the virtio devices cfg asks for, in this order: the disks (vda,
 * vdb, ...), the network devices (eth0, eth1, ...), the console (when
 * cfg->console is CONSOLE_VIRTIO: hvc0, input through `con`'s Ctrl-A
 * filter), and the entropy device (always), each in the machine's next
 * virtio slot (machine_virtio_next: virtio-mmio, or virtio-pci with
 * --transport pci), registered and described to the guest
 * (machine_add_virtio_in). Call before machine_boot_linux(). disks[d] gets
 * disk d's device (the VM owns it; for virtio_blk_replace_image). 0, or -1
 * with a one-line reason in why.
 */
int cli_add_virtio_devices(struct vm *vm, const struct vmm_config *cfg,
			   struct console *con, struct device *disks[CLI_MAX_DISKS],
			   char *why, size_t why_len);

#endif
