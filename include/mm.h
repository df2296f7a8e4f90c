/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: slots of guest-physical address space backed by host memory,
 * and the one checked GPA->HVA translation that all device code uses.
 */
#ifndef VIBEVMM_MM_H
#define VIBEVMM_MM_H

#include <stddef.h>
#include <stdint.h>

#define MM_MAX_SLOTS 32

struct mem_slot {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	int owned; /* mmap'd by the library; unmapped on destroy */
};

struct mem_map {
	struct mem_slot slots[MM_MAX_SLOTS];
	int nr_slots;
};

struct vm;

/*
 * Host address of guest range [gpa, gpa+len), or NULL when any byte of it is
 * outside guest RAM or the range crosses a slot edge. len 0 is treated as 1.
 * Never dereference guest-controlled addresses any other way.
 */
void *mm_gpa_to_hva(const struct mem_map *mm, uint64_t gpa, uint64_t len);

/* Same, through a VM. */
void *vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);

/* Copy into / out of guest RAM with the same checks. 0 or -EFAULT. */
int vm_write_guest(struct vm *vm, uint64_t gpa, const void *src, size_t len);
int vm_read_guest(struct vm *vm, uint64_t gpa, void *dst, size_t len);

/* Total bytes of guest RAM. */
uint64_t vm_memory_size(struct vm *vm);

#endif
