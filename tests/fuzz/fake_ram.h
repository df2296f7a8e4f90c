/* SPDX-License-Identifier: MIT */
/*
 * A fake guest RAM for the virtqueue fuzz targets: two slots that touch
 * ([0, 64K) and [64K, 68K)) so chains that cross a slot edge are exercised,
 * filled from the fuzzer's bytes (the rest zero). The struct vm holds only
 * the memory map: the code under test translates guest addresses and
 * nothing else.
 */
#ifndef VIBEVMM_TESTS_FUZZ_FAKE_RAM_H
#define VIBEVMM_TESTS_FUZZ_FAKE_RAM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mm.h"
#include "vm.h"

#define RAM0 0x10000u
#define RAM1 0x1000u

struct fake_ram {
	struct mem_map mm;
	struct vm vm;
};

static inline size_t fake_ram_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Set up `r` with data[0, size) copied in from guest address 0; aborts when
 * out of memory (a fuzz target has nothing better to do). */
static inline void fake_ram_init(struct fake_ram *r, const uint8_t *data, size_t size)
{
	uint8_t *ram0 = calloc(1, RAM0), *ram1 = calloc(1, RAM1);

	if (!ram0 || !ram1)
		abort();
	memcpy(ram0, data, fake_ram_min(size, RAM0));
	if (size > RAM0)
		memcpy(ram1, data + RAM0, fake_ram_min(size - RAM0, RAM1));
	r->mm = (struct mem_map){ .nr_slots = 2 };
	r->mm.slots[0] = (struct mem_slot){ .gpa = 0, .size = RAM0, .hva = ram0 };
	r->mm.slots[1] = (struct mem_slot){ .gpa = RAM0, .size = RAM1, .hva = ram1 };
	r->vm = (struct vm){ .mem_map = &r->mm };
}

static inline void fake_ram_free(struct fake_ram *r)
{
	free(r->mm.slots[0].hva);
	free(r->mm.slots[1].hva);
}

#endif
