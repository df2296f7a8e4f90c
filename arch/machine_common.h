/* SPDX-License-Identifier: MIT */
/* What every arch's machine.c does the same way (arch/machine_common.c). */
#ifndef VIBEVMM_ARCH_MACHINE_COMMON_H
#define VIBEVMM_ARCH_MACHINE_COMMON_H

#include <stddef.h>

#include "machine.h"

/*
 * Check cfg against machine_max_cpus() and give the VM a zeroed machine
 * state of `size` bytes, freed by vm_destroy. The state, or NULL with *err
 * set (-EINVAL: no VM, a machine already, bad vCPU count; -ENOMEM).
 */
void *machine_state_new(struct vm *vm, const struct machine_config *cfg, size_t size,
			int *err, char *why, size_t why_len);

/* The VM's machine state, or NULL before machine_create. */
void *machine_state(struct vm *vm);

/* Register a device the machine created; on failure destroy it and say
 * "cannot add WHAT: ...". */
int machine_add_device(struct vm *vm, struct device *dev, const char *what,
		       char *why, size_t why_len);

/* Register a virtio device (destroyed on failure). */
int machine_register_virtio(struct vm *vm, struct device *dev);

/* The arch's: the PCI bus virtio devices go on (MACHINE_VIRTIO_PCI), or
 * NULL for virtio-mmio. */
struct pci_bus *machine_virtio_pci_bus(struct vm *vm);

/* The arch's: the VM's PCI bus (MACHINE_PCI), or NULL. */
struct pci_bus *machine_pci_bus(struct vm *vm);

/* vCPUs 0..n-1. */
int machine_create_vcpus(struct vm *vm, int n, char *why, size_t why_len);

#endif
