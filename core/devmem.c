/* SPDX-License-Identifier: MIT */
/*
 * Device memory (vm_map_device_memory): host mappings the guest reaches
 * without exits that are not guest RAM, such as a passed-through device's
 * BARs. They come and go while the VM runs, because the guest places and
 * moves BARs and switches their decoding, so unlike guest RAM's slots
 * they are kept apart (backend slots MM_MAX_SLOTS and up) and under a
 * lock: vCPU threads map them from configuration writes. They never enter
 * the mem_map, so no virtio device's DMA and no vm_gpa_to_hva reaches a
 * device's registers.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "core/internal.h"
#include "mm.h"
#include "vm.h"

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Whether [gpa, gpa + size) is free of RAM and of other device memory
 * (devmem_lock held; RAM slots do not change once the VM is built). */
static bool range_free(struct vm *vm, uint64_t gpa, uint64_t size)
{
	const struct mem_map *mm = vm->mem_map;

	for (int i = 0; i < mm->nr_slots; i++)
		if (overlaps(gpa, size, mm->slots[i].gpa, mm->slots[i].size))
			return false;
	for (int i = 0; i < VM_MAX_DEVMEM; i++) {
		const struct devmem_slot *d = &vm->state->devmem[i];

		if (d->used && overlaps(gpa, size, d->gpa, d->size))
			return false;
	}
	return true;
}

static int free_slot(const struct vm_state *st)
{
	for (int i = 0; i < VM_MAX_DEVMEM; i++)
		if (!st->devmem[i].used)
			return i;
	return -ENOSPC;
}

int vm_map_device_memory(struct vm *vm, uint64_t gpa, void *hva, uint64_t size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	int i, err;

	if (!vm || !hva || !size || ((gpa | size | (uintptr_t)hva) & (page - 1)) ||
	    gpa + size < gpa)
		return -EINVAL;
	pthread_mutex_lock(&vm->state->devmem_lock);
	i = range_free(vm, gpa, size) ? free_slot(vm->state) : -EEXIST;
	err = i < 0 ? i : vm->ops->set_memory(vm, MM_MAX_SLOTS + (uint32_t)i, gpa, hva, size);
	if (!err)
		vm->state->devmem[i] = (struct devmem_slot){
			.gpa = gpa, .size = size, .hva = hva, .used = true,
		};
	pthread_mutex_unlock(&vm->state->devmem_lock);
	return err ? err : i;
}

int vm_unmap_device_memory(struct vm *vm, int handle)
{
	struct devmem_slot *d;
	int err;

	if (!vm || handle < 0 || handle >= VM_MAX_DEVMEM)
		return -EINVAL;
	pthread_mutex_lock(&vm->state->devmem_lock);
	d = &vm->state->devmem[handle];
	err = d->used ? vm->ops->set_memory(vm, MM_MAX_SLOTS + (uint32_t)handle, d->gpa, d->hva, 0)
		      : -EINVAL;
	if (!err)
		*d = (struct devmem_slot){ 0 };
	pthread_mutex_unlock(&vm->state->devmem_lock);
	return err;
}
