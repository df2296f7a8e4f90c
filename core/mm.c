/* SPDX-License-Identifier: MIT */
/* Guest memory slots and the checked GPA->HVA translation. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "utils.h"

void *mm_gpa_to_hva(const struct mem_map *mm, uint64_t gpa, uint64_t len)
{
	if (!mm)
		return NULL;
	if (len == 0)
		len = 1;
	for (int i = 0; i < mm->nr_slots; i++) {
		const struct mem_slot *s = &mm->slots[i];

		/* Written so that no sum can overflow: gpa - s->gpa only after
		 * gpa >= s->gpa, and len compared against what is left. */
		if (gpa < s->gpa || gpa - s->gpa >= s->size)
			continue;
		if (len > s->size - (gpa - s->gpa))
			return NULL; /* crosses the slot's end */
		return s->hva + (gpa - s->gpa);
	}
	return NULL;
}

void *vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len)
{
	return vm ? mm_gpa_to_hva(vm->mem_map, gpa, len) : NULL;
}

int vm_write_guest(struct vm *vm, uint64_t gpa, const void *src, size_t len)
{
	void *dst = vm_gpa_to_hva(vm, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int vm_read_guest(struct vm *vm, uint64_t gpa, void *dst, size_t len)
{
	const void *src = vm_gpa_to_hva(vm, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t vm_memory_size(struct vm *vm)
{
	uint64_t total = 0;

	for (int i = 0; i < vm->mem_map->nr_slots; i++)
		total += vm->mem_map->slots[i].size;
	return total;
}

static int slot_overlaps(const struct mem_map *mm, uint64_t gpa, uint64_t size)
{
	for (int i = 0; i < mm->nr_slots; i++) {
		const struct mem_slot *s = &mm->slots[i];
		if (gpa < s->gpa + s->size && s->gpa < gpa + size)
			return 1;
	}
	return 0;
}

static int add_slot(struct vm *vm, uint64_t gpa, void *hva, uint64_t size,
		    int owned)
{
	struct mem_map *mm = vm->mem_map;
	long page = sysconf(_SC_PAGESIZE);
	int err;

	if (!size || (gpa | size | (uintptr_t)hva) & (uint64_t)(page - 1))
		return -EINVAL;
	if (gpa + size < gpa)
		return -EINVAL;
	if (vm->state->started)
		return -EBUSY;
	if (slot_overlaps(mm, gpa, size))
		return -EEXIST;
	if (mm->nr_slots >= MM_MAX_SLOTS)
		return -ENOSPC;
	err = vm->ops->set_memory(vm, (uint32_t)mm->nr_slots, gpa, hva, size);
	if (err)
		return err;
	mm->slots[mm->nr_slots++] = (struct mem_slot){
		.gpa = gpa, .size = size, .hva = hva, .owned = owned,
	};
	return 0;
}

int vm_add_memory(struct vm *vm, uint64_t gpa, void *hva, uint64_t size)
{
	if (!vm || !hva)
		return -EINVAL;
	return add_slot(vm, gpa, hva, size, 0);
}

#define THP_SIZE (2ULL << 20)

/*
 * Anonymous guest RAM, lazily touched (NORESERVE: a 4 GiB guest that uses
 * 100 MiB costs about 100 MiB); with `huge`, 2 MiB aligned and offered to
 * transparent huge pages (see vm_alloc_memory_huge). NULL when out of
 * address space.
 */
static void *map_guest_ram(uint64_t size, bool huge)
{
	uint64_t span = size + (huge ? THP_SIZE : 0);
	uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *hva;
	uint64_t head;

	if (raw == MAP_FAILED)
		return NULL;
	if (!huge)
		return raw;
	hva = (uint8_t *)(((uintptr_t)raw + THP_SIZE - 1) & ~(uintptr_t)(THP_SIZE - 1));
	head = (uint64_t)(hva - raw);
	if (head)
		munmap(raw, head);
	munmap(hva + size, THP_SIZE - head);
	madvise(hva, size, MADV_HUGEPAGE);
	return hva;
}

static int alloc_memory(struct vm *vm, uint64_t gpa, uint64_t size, bool huge)
{
	void *hva;
	int err;

	if (!vm || !size)
		return -EINVAL;
	hva = map_guest_ram(size, huge);
	if (!hva)
		return -ENOMEM;
	madvise(hva, size, MADV_MERGEABLE);
	err = add_slot(vm, gpa, hva, size, 1);
	if (err)
		munmap(hva, size);
	return err;
}

int vm_alloc_memory(struct vm *vm, uint64_t gpa, uint64_t size)
{
	return alloc_memory(vm, gpa, size, false);
}

int vm_alloc_memory_huge(struct vm *vm, uint64_t gpa, uint64_t size)
{
	return alloc_memory(vm, gpa, size, true);
}

void mm_release(struct mem_map *mm)
{
	for (int i = 0; i < mm->nr_slots; i++)
		if (mm->slots[i].owned)
			munmap(mm->slots[i].hva, mm->slots[i].size);
	mm->nr_slots = 0;
}
