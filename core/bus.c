/* SPDX-License-Identifier: MIT */
/*
 * Device registration and dispatch of MMIO / port-I/O exits. The device list
 * is fixed once the VM starts, so lookups from vCPU threads need no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "utils.h"

static int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a <= b + (blen - 1) && b <= a + (alen - 1);
}

int vm_register_device(struct vm *vm, struct device *dev)
{
	struct device **grown;

	if (!vm || !dev)
		return -EINVAL;
	if (dev->no_address ? dev->size || dev->read || dev->write :
	    !dev->size || (!dev->read && !dev->write))
		return -EINVAL;
	if (dev->space != DEVICE_MMIO && dev->space != DEVICE_PIO)
		return -EINVAL;
	if (!dev->no_address && dev->base + (dev->size - 1) < dev->base)
		return -EINVAL; /* wraps */
	if (!dev->no_address && dev->space == DEVICE_PIO && dev->base + dev->size > 0x10000)
		return -EINVAL;
	if (vm->state->started)
		return -EBUSY;
	for (int i = 0; i < vm->num_devices; i++) {
		struct device *d = vm->devices[i];
		if (d->space == dev->space && !d->no_address && !dev->no_address &&
		    ranges_overlap(d->base, d->size, dev->base, dev->size))
			return -EEXIST;
	}
	grown = realloc(vm->devices, sizeof(*grown) * (size_t)(vm->num_devices + 1));
	if (!grown)
		return -ENOMEM;
	vm->devices = grown;
	vm->devices[vm->num_devices++] = dev;
	dev->vm = vm;
	return 0;
}

struct device *vm_find_device(struct vm *vm, enum device_space space,
			      uint64_t addr)
{
	for (int i = 0; i < vm->num_devices; i++) {
		struct device *d = vm->devices[i];
		if (d->space == space && addr >= d->base && addr - d->base < d->size)
			return d;
	}
	return NULL;
}

static int find_index(struct vm *vm, enum device_space space, uint64_t addr);

void bus_destroy_devices(struct vm *vm)
{
	for (int i = vm->num_devices - 1; i >= 0; i--) {
		struct device *d = vm->devices[i];
		if (d->destroy)
			d->destroy(d);
	}
	free(vm->devices);
	vm->devices = NULL;
	vm->num_devices = 0;
}

/* Log an access nobody claims, once per address, so a guest probing
 * thousands of ports cannot flood the log. */
static void log_unclaimed(struct vm *vm, enum device_space space,
			  uint64_t addr, int is_write)
{
	struct vm_state *st = vm->state;
	uint64_t key = addr ^ ((uint64_t)space << 63);
	int seen = 0;

	pthread_mutex_lock(&st->unclaimed_lock);
	for (int i = 0; i < st->nr_unclaimed; i++)
		seen |= st->unclaimed[i] == key;
	if (!seen && st->nr_unclaimed < UNCLAIMED_LOG_MAX)
		st->unclaimed[st->nr_unclaimed++] = key;
	else
		seen = 1;
	pthread_mutex_unlock(&st->unclaimed_lock);
	if (!seen)
		vm_info(vm, "unclaimed %s %s at 0x%llx", space == DEVICE_PIO ? "port" : "MMIO",
			is_write ? "write" : "read", (unsigned long long)addr);
}

/* One access of `size` bytes at `addr`: find the device and call it. A
 * read nobody answers (no device, a write-only one, or a failed read)
 * returns all ones, as an open bus does, never what the exit buffer held. */
static int find_index(struct vm *vm, enum device_space space, uint64_t addr)
{
	for (int i = 0; i < vm->num_devices; i++) {
		struct device *d = vm->devices[i];
		if (d->space == space && addr >= d->base && addr - d->base < d->size)
			return i;
	}
	return -ENODEV;
}

static int access_one(struct vm *vm, enum device_space space, uint64_t addr,
		      uint8_t *data, size_t size, int is_write)
{
	int idx = find_index(vm, space, addr);
	struct device *d = idx >= 0 ? vm->devices[idx] : NULL;
	int err = -ENODEV;

	if (d && is_write && d->write)
		err = d->write(d, addr - d->base, data, size);
	else if (d && !is_write && d->read)
		err = d->read(d, addr - d->base, data, size);
	else if (d)
		err = -EOPNOTSUPP; /* read-only or write-only device */

	if (!d)
		log_unclaimed(vm, space, addr, is_write);
	else if (err && err != -EOPNOTSUPP)
		vm_debug(vm, "%s: %s at +0x%llx failed: %s", d->name,
			 is_write ? "write" : "read",
			 (unsigned long long)(addr - d->base), strerror(-err));
	if (err && !is_write)
		memset(data, 0xff, size);
	return idx;
}

int bus_dispatch_io(struct vm *vm, struct vcpu_exit *exit)
{
	int idx = -ENODEV;

	/* rep ins/outs: count accesses to the same port, back to back. */
	for (uint32_t i = 0; i < exit->io.count; i++)
		idx = access_one(vm, DEVICE_PIO, exit->io.port,
				 exit->io.data + (size_t)i * exit->io.size,
				 exit->io.size, exit->io.is_write);
	return idx;
}

int bus_dispatch_mmio(struct vm *vm, struct vcpu_exit *exit)
{
	return access_one(vm, DEVICE_MMIO, exit->mmio.addr, exit->mmio.data,
			  exit->mmio.size, exit->mmio.is_write);
}

int vm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	if (!vm->state->irqchip || !vm->ops->irq_line)
		return -ENODEV;
	return vm->ops->irq_line(vm, gsi, level);
}

int vm_add_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len,
		     enum device_space space, int fd, int datamatch,
		     uint64_t value)
{
	if (!vm || fd < 0 || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	if (!vm->ops->ioeventfd)
		return -ENOTSUP;
	return vm->ops->ioeventfd(vm, addr, len, space == DEVICE_PIO, fd,
				  datamatch, value);
}

int vm_del_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len,
		     enum device_space space, int fd, int datamatch,
		     uint64_t value)
{
	if (!vm || fd < 0 || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	if (!vm->ops->ioeventfd_del)
		return -ENOTSUP;
	return vm->ops->ioeventfd_del(vm, addr, len, space == DEVICE_PIO, fd,
				      datamatch, value);
}

int vm_add_irqfd(struct vm *vm, uint32_t gsi, int fd)
{
	if (!vm || fd < 0)
		return -EINVAL;
	if (!vm->state->irqchip || !vm->ops->irqfd)
		return -ENOTSUP;
	return vm->ops->irqfd(vm, gsi, fd);
}

int vm_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data)
{
	if (!vm)
		return -EINVAL;
	if (!vm->state->irqchip || !vm->ops->msi_route)
		return -ENOTSUP;
	return vm->ops->msi_route(vm, gsi, usable, addr, data);
}
