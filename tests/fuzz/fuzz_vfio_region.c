/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the VFIO region-info parser
 * (devices/vfio/vfio_region.c): the input is a VFIO_DEVICE_GET_REGION_INFO
 * answer as a kernel (or a hostile driver) might write it, a struct
 * vfio_region_info and its capability chain. ASan/UBSan watch every read;
 * the checks: the parse ends (a chain that loops must be refused), and a
 * region it accepts has every mmap area non-empty, inside the region and
 * apart from the others.
 *
 * FUZZ_SRCS: devices/vfio/vfio_region.c
 *
 *   clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *     -Iinclude -I. tests/fuzz/fuzz_vfio_region.c devices/vfio/vfio_region.c
 *   ./a.out tests/fuzz/corpus/vfio_region
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vfio/vfio_region.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct vfio_region *r)
{
	if (r->nr_areas > VFIO_REGION_MAX_AREAS)
		abort();
	for (uint32_t i = 0; i < r->nr_areas; i++) {
		const struct vfio_mmap_area *a = &r->areas[i];

		if (!a->size || a->offset > r->size || a->size > r->size - a->offset || a->map)
			abort();
		for (uint32_t j = 0; j < i; j++)
			if (a->offset < r->areas[j].offset + r->areas[j].size &&
			    r->areas[j].offset < a->offset + a->size)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly `size` bytes, so ASan sees any read past it. */
	uint8_t *buf = malloc(size ? size : 1);
	struct vfio_region r;
	const char *bad = NULL;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (vfio_region_parse(buf, size, &r, &bad) == 0) {
		check(&r);
		vfio_region_free(&r);
	} else if (r.areas || r.nr_areas || !bad) {
		abort(); /* a failed parse leaves nothing behind and says why */
	}
	free(buf);
	return 0;
}
