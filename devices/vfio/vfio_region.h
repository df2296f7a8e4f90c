/* SPDX-License-Identifier: MIT */
/*
 * A VFIO device region (a BAR, the ROM, configuration space) as
 * VFIO_DEVICE_GET_REGION_INFO describes it: where it is in the device fd,
 * what may be done with it, and the parts that may be mmap'ed.
 *
 * The answer is a struct vfio_region_info followed by a chain of
 * capabilities, each naming the next by its offset from the start of the
 * answer. The kernel's answer is parsed as untrusted input (a bad driver
 * or a future layout must not crash the VMM): every offset is checked
 * against the answer's length, the chain must move forward (so it ends),
 * and every mmap area must lie inside the region.
 */
#ifndef VIBEVMM_DEVICES_VFIO_VFIO_REGION_H
#define VIBEVMM_DEVICES_VFIO_VFIO_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More areas than any vfio-pci region has (it gives at most two: around
 * the MSI-X table); a longer list is taken as malformed. */
#define VFIO_REGION_MAX_AREAS 64

struct vfio_mmap_area {
	uint64_t offset; /* from the region's start */
	uint64_t size;
	void *map;       /* the host mapping, once vfio_device_map_region made it */
};

struct vfio_region {
	uint32_t index;
	uint32_t flags;        /* VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP/CAPS */
	uint64_t size;         /* 0: the region is not implemented */
	uint64_t offset;       /* of the region in the device fd */
	bool sparse;           /* the areas come from a sparse-mmap capability */
	bool msix_mappable;    /* the MSI-X table's page may be mmap'ed too */
	uint32_t nr_areas;     /* where mmap is allowed: the sparse areas, or
				* the whole region when mmap-able without them */
	struct vfio_mmap_area *areas;
};

/*
 * Parse `len` bytes of a VFIO_DEVICE_GET_REGION_INFO answer into r (its
 * areas allocated). 0; -EINVAL for a malformed answer, with *bad (if not
 * NULL) saying what was wrong; -ENOMEM. On failure r holds nothing to free.
 */
int vfio_region_parse(const void *info, size_t len, struct vfio_region *r, const char **bad);

/* Free what vfio_region_parse allocated (not the mappings). */
void vfio_region_free(struct vfio_region *r);

#endif
