/* SPDX-License-Identifier: MIT */
/* A VFIO region's info and its capability chain (vfio_region.h). */
#include "devices/vfio/vfio_region.h"

#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>

/* The parse in progress: the answer, and what the chain said so far. */
struct region_parse {
	const uint8_t *buf;
	size_t len;
	struct vfio_region *r;
	bool seen_sparse;
	const char *bad;
};

static int malformed(struct region_parse *p, const char *what)
{
	p->bad = what;
	return -EINVAL;
}

/* Whether [off, off + size) lies inside the region (no wrap-around). */
static bool inside_region(const struct vfio_region *r, uint64_t off, uint64_t size)
{
	return off <= r->size && size <= r->size - off;
}

static bool areas_overlap(const struct vfio_mmap_area *a, const struct vfio_mmap_area *b)
{
	return a->offset < b->offset + b->size && b->offset < a->offset + a->size;
}

/* The sparse-mmap capability at `off` (its header already checked to fit). */
static int parse_sparse(struct region_parse *p, size_t off, uint16_t version)
{
	struct vfio_region_info_cap_sparse_mmap cap;
	struct vfio_region_sparse_mmap_area area;
	struct vfio_mmap_area *areas;
	uint32_t n = 0;

	if (p->seen_sparse)
		return malformed(p, "two sparse-mmap capabilities");
	p->seen_sparse = true;
	if (version != 1)
		return 0; /* a layout we do not know: nothing is mmap'ed */
	if (p->len - off < sizeof(cap))
		return malformed(p, "sparse-mmap capability cut short");
	memcpy(&cap, p->buf + off, sizeof(cap));
	if (cap.nr_areas > VFIO_REGION_MAX_AREAS)
		return malformed(p, "too many sparse-mmap areas");
	if ((p->len - off - sizeof(cap)) / sizeof(area) < cap.nr_areas)
		return malformed(p, "sparse-mmap areas beyond the answer");
	areas = calloc(cap.nr_areas ? cap.nr_areas : 1, sizeof(*areas));
	if (!areas)
		return -ENOMEM;
	for (uint32_t i = 0; i < cap.nr_areas; i++) {
		memcpy(&area, p->buf + off + sizeof(cap) + i * sizeof(area), sizeof(area));
		if (!area.size)
			continue;
		if (!inside_region(p->r, area.offset, area.size)) {
			free(areas);
			return malformed(p, "sparse-mmap area outside the region");
		}
		areas[n] = (struct vfio_mmap_area){ .offset = area.offset, .size = area.size };
		for (uint32_t j = 0; j < n; j++)
			if (areas_overlap(&areas[j], &areas[n])) {
				free(areas);
				return malformed(p, "sparse-mmap areas overlap");
			}
		n++;
	}
	free(p->r->areas);
	p->r->areas = areas;
	p->r->nr_areas = n;
	p->r->sparse = true;
	return 0;
}

/* One capability at `off`; *next gets the offset of the one after it. */
static int parse_cap(struct region_parse *p, size_t off, uint32_t *next)
{
	struct vfio_info_cap_header h;

	if (off < sizeof(struct vfio_region_info) || off > p->len ||
	    p->len - off < sizeof(h))
		return malformed(p, "capability outside the answer");
	memcpy(&h, p->buf + off, sizeof(h));
	/* Forward only: a chain that points back (or at itself) would loop. */
	if (h.next && h.next <= off)
		return malformed(p, "capability chain goes backwards");
	*next = h.next;
	switch (h.id) {
	case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
		return parse_sparse(p, off, h.version);
	case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
		p->r->msix_mappable = true;
		return 0;
	default:
		return 0; /* region types and others: not ours to use yet */
	}
}

/* An mmap-able region without a sparse list: one area, the whole of it. */
static int whole_region_area(struct vfio_region *r)
{
	r->areas = calloc(1, sizeof(*r->areas));
	if (!r->areas)
		return -ENOMEM;
	r->areas[0] = (struct vfio_mmap_area){ .offset = 0, .size = r->size };
	r->nr_areas = 1;
	return 0;
}

static int parse_chain(struct region_parse *p, uint32_t first)
{
	uint32_t off = first;
	int err;

	while (off) {
		err = parse_cap(p, off, &off);
		if (err)
			return err;
	}
	return 0;
}

int vfio_region_parse(const void *info, size_t len, struct vfio_region *r, const char **bad)
{
	struct region_parse p = { .buf = info, .len = len, .r = r };
	struct vfio_region_info fixed;
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (!info || len < sizeof(fixed)) {
		p.bad = "shorter than struct vfio_region_info";
		err = -EINVAL;
		goto out;
	}
	memcpy(&fixed, info, sizeof(fixed));
	*r = (struct vfio_region){ .index = fixed.index, .flags = fixed.flags,
				   .size = fixed.size, .offset = fixed.offset };
	if (fixed.offset > INT64_MAX || fixed.size > INT64_MAX - fixed.offset) {
		err = malformed(&p, "region beyond the largest file offset");
		goto out;
	}
	if ((fixed.flags & VFIO_REGION_INFO_FLAG_CAPS) && fixed.cap_offset)
		err = parse_chain(&p, fixed.cap_offset);
	if (!err && !(fixed.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
		free(r->areas); /* sparse areas of a region that may not be mmap'ed */
		r->areas = NULL;
		r->nr_areas = 0;
	} else if (!err && !p.seen_sparse && r->size) {
		err = whole_region_area(r);
	}
out:
	if (err) {
		vfio_region_free(r);
		if (bad)
			*bad = p.bad ? p.bad : "out of memory";
	}
	return err;
}

void vfio_region_free(struct vfio_region *r)
{
	free(r->areas);
	r->areas = NULL;
	r->nr_areas = 0;
}
