/* SPDX-License-Identifier: MIT */
/* The arch-neutral half of every machine.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/machine_common.h"
#include "core/internal.h"
#include "utils.h"

void *machine_state_new(struct vm *vm, const struct machine_config *cfg, size_t size,
			int *err, char *why, size_t why_len)
{
	void *m;

	*err = -EINVAL;
	if (!vm || !cfg || vm->state->machine)
		return NULL;
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > machine_max_cpus()) {
		set_why(why, why_len, "%d vCPUs: this machine takes 1 to %d", cfg->nr_cpus,
			machine_max_cpus());
		return NULL;
	}
	*err = -ENOMEM;
	m = calloc(1, size);
	if (!m)
		return NULL;
	*err = 0;
	vm->state->machine = m;
	vm->state->machine_free = free;
	return m;
}

void *machine_state(struct vm *vm)
{
	return vm ? vm->state->machine : NULL;
}

int machine_add_device(struct vm *vm, struct device *dev, const char *what,
		       char *why, size_t why_len)
{
	int err = dev ? vm_register_device(vm, dev) : -ENOMEM;

	if (err) {
		if (dev && dev->destroy)
			dev->destroy(dev);
		set_why(why, why_len, "cannot add %s: %s", what, strerror(-err));
	}
	return err;
}

int machine_register_virtio(struct vm *vm, struct device *dev)
{
	int err = vm_register_device(vm, dev);

	if (err && dev->destroy)
		dev->destroy(dev);
	return err;
}

int machine_virtio_next(struct vm *vm, struct virtio_slot *slot, char *why, size_t why_len)
{
	*slot = (struct virtio_slot){ .pci = machine_virtio_pci_bus(vm) };
	if (slot->pci)
		return 0;
	return machine_virtio_slot(vm, &slot->base, &slot->gsi, why, why_len);
}

int machine_add_virtio_in(struct vm *vm, struct device *dev, const struct virtio_slot *slot)
{
	if (slot->pci)
		return machine_register_virtio(vm, dev);
	return machine_add_virtio(vm, dev, slot->gsi);
}

int machine_create_vcpus(struct vm *vm, int n, char *why, size_t why_len)
{
	for (int id = 0; id < n; id++)
		if (!vm_create_vcpu(vm, id)) {
			int err = -errno;

			set_why(why, why_len, "cannot create vCPU %d: %s", id, strerror(errno));
			return err;
		}
	return 0;
}
