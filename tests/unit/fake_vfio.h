/* SPDX-License-Identifier: MIT */
/*
 * A fake VFIO for test_vfio.c: a struct vfio_sys whose /dev/vfio files
 * are a scripted model of the kernel's container, group and device fds,
 * and whose sysfs is a real tree in a temporary directory (the table's
 * root). The model answers the VFIO ioctls as the kernel does (and as a
 * hostile one might, when told to), enforces the kernel's order (no
 * SET_IOMMU before a group is in, no device fd before the IOMMU is set,
 * no UNSET_CONTAINER while a device fd is open), and records what
 * happened: a log of the calls in order, the open fds, the DMA mappings
 * and the BAR mappings, so a test can check that close undid everything.
 */
#ifndef VIBEVMM_TESTS_UNIT_FAKE_VFIO_H
#define VIBEVMM_TESTS_UNIT_FAKE_VFIO_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/vfio/vfio_sys.h"

#define FAKE_FD_BASE 1000
#define FAKE_MAX_FDS 64
#define FAKE_MAX_DMA 32
#define FAKE_MAX_MAPS 32
#define FAKE_REGIONS 9
#define FAKE_LOG_LEN 16384
/* vfio-pci's layout: region i at i << 40 in the device fd. */
#define FAKE_REGION_OFFSET(i) ((uint64_t)(i) << 40)

enum fake_kind { FAKE_FREE = 0, FAKE_CONTAINER, FAKE_GROUP, FAKE_DEVICE };

struct fake_fd {
	enum fake_kind kind;
	int group;        /* FAKE_GROUP, FAKE_DEVICE: the group's number */
	int container;    /* FAKE_GROUP: the container fd it joined, or -1 */
};

struct fake_region {
	uint8_t info[1024]; /* the kernel's whole answer: info, then caps */
	size_t len;
	bool raw;           /* hand `info` over as it is, argsz and all */
};

struct fake_vfio {
	struct vfio_sys sys;
	char root[128];

	/* ---- the kernel, as the test scripts it ---- */
	bool no_container;          /* /dev/vfio/vfio missing */
	int api_version;
	bool type1v2, type1;
	int group_open_err;         /* errno of opening /dev/vfio/N, 0: none */
	bool not_viable;
	uint32_t dev_flags, num_regions, num_irqs;
	struct fake_region region[FAKE_REGIONS];
	uint32_t msix_count, msix_flags;
	uint32_t msi_count;         /* MSI's vectors (VFIO_PCI_MSI_IRQ_INDEX) */
	int map_err;                /* errno of VFIO_IOMMU_MAP_DMA */
	int map_err_after;          /* ... after this many mappings succeeded */
	int device_fd_err;          /* errno of VFIO_GROUP_GET_DEVICE_FD */
	int ok_ret;                 /* what a device ioctl's success returns: 0,
				     * or a positive value no kernel gives */
	struct rlimit memlock;
	bool ipc_lock;
	uint8_t config[256];        /* the config region's bytes */

	/* ---- what happened ---- */
	char log[FAKE_LOG_LEN];
	struct fake_fd fds[FAKE_MAX_FDS];
	struct { uint64_t iova, size, vaddr; bool mapped; } dma[FAKE_MAX_DMA];
	int nr_dma;
	int iommu;                  /* the type set, 0 while unset */
	int resets;
	bool irq_on;
	uint32_t irq_index;         /* while on: MSI's or MSI-X's */
	uint32_t irq_count;
	int32_t irq_fds[64];
	struct { void *addr; size_t len; off_t off; int prot; } maps[FAKE_MAX_MAPS];
	int nr_maps;
	int errors;                 /* misuse seen: a bad fd, a double close, an order broken */
	int dma_dropped;            /* mappings the IOMMU took with it (not unmapped first) */
};

static inline void fake_log(struct fake_vfio *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline void fake_log(struct fake_vfio *f, const char *fmt, ...)
{
	size_t n = strlen(f->log);
	va_list ap;

	if (n && n < sizeof(f->log) - 1)
		f->log[n++] = ' ';
	va_start(ap, fmt);
	vsnprintf(f->log + n, sizeof(f->log) - n, fmt, ap);
	va_end(ap);
}

static inline struct fake_fd *fake_fd(struct fake_vfio *f, int fd, enum fake_kind kind)
{
	if (fd < FAKE_FD_BASE || fd >= FAKE_FD_BASE + FAKE_MAX_FDS ||
	    f->fds[fd - FAKE_FD_BASE].kind != kind)
		return NULL;
	return &f->fds[fd - FAKE_FD_BASE];
}

static inline int fake_new_fd(struct fake_vfio *f, enum fake_kind kind, int group)
{
	for (int i = 0; i < FAKE_MAX_FDS; i++)
		if (f->fds[i].kind == FAKE_FREE) {
			f->fds[i] = (struct fake_fd){ .kind = kind, .group = group, .container = -1 };
			return FAKE_FD_BASE + i;
		}
	return -EMFILE;
}

static inline int fake_count_fds(const struct fake_vfio *f, enum fake_kind kind)
{
	int n = 0;

	for (int i = 0; i < FAKE_MAX_FDS; i++)
		n += f->fds[i].kind == kind;
	return n;
}

static inline int fake_count_dma(const struct fake_vfio *f)
{
	int n = 0;

	for (int i = 0; i < f->nr_dma; i++)
		n += f->dma[i].mapped;
	return n;
}

static inline bool fake_group_open(const struct fake_vfio *f, int group)
{
	for (int i = 0; i < FAKE_MAX_FDS; i++)
		if (f->fds[i].kind == FAKE_GROUP && f->fds[i].group == group)
			return true;
	return false;
}

/* ---- the system calls ---- */

static inline int fake_open(void *ctx, const char *path, int flags)
{
	struct fake_vfio *f = ctx;
	const char *rel = path + strlen(f->root);
	int group, fd;

	if (strncmp(path, f->root, strlen(f->root))) {
		f->errors++; /* a path outside the table's root */
		return -EACCES;
	}
	if (strncmp(rel, "/dev/vfio/", 10)) {
		fd = open(path, flags | O_CLOEXEC); /* the sysfs tree */
		return fd < 0 ? -errno : fd;
	}
	fake_log(f, "open(%s)", rel);
	if (!strcmp(rel, "/dev/vfio/vfio"))
		return f->no_container ? -ENOENT : fake_new_fd(f, FAKE_CONTAINER, -1);
	group = atoi(rel + 10);
	if (f->group_open_err)
		return -f->group_open_err;
	if (fake_group_open(f, group))
		return -EBUSY; /* a group is opened once */
	return fake_new_fd(f, FAKE_GROUP, group);
}

static inline void fake_drop_iommu(struct fake_vfio *f)
{
	f->dma_dropped += fake_count_dma(f);
	for (int i = 0; i < f->nr_dma; i++)
		f->dma[i].mapped = false;
	f->iommu = 0;
}

/* A group leaves its container; the IOMMU goes with the last one. */
static inline void fake_unset(struct fake_vfio *f, struct fake_fd *g)
{
	g->container = -1;
	for (int i = 0; i < FAKE_MAX_FDS; i++)
		if (f->fds[i].kind == FAKE_GROUP && f->fds[i].container >= 0)
			return;
	fake_drop_iommu(f);
}

static inline int fake_close(void *ctx, int fd)
{
	struct fake_vfio *f = ctx;
	struct fake_fd *e;

	if (fd < FAKE_FD_BASE)
		return close(fd) ? -errno : 0;
	if (fd >= FAKE_FD_BASE + FAKE_MAX_FDS || f->fds[fd - FAKE_FD_BASE].kind == FAKE_FREE) {
		f->errors++;
		return -EBADF;
	}
	e = &f->fds[fd - FAKE_FD_BASE];
	fake_log(f, "close(%s)", e->kind == FAKE_CONTAINER ? "container" :
				 e->kind == FAKE_GROUP ? "group" : "device");
	if (e->kind == FAKE_GROUP && e->container >= 0)
		fake_unset(f, e);
	e->kind = FAKE_FREE;
	return 0;
}

static inline int fake_container_ioctl(struct fake_vfio *f, unsigned long req, unsigned long arg)
{
	struct vfio_iommu_type1_dma_map *m = (void *)arg;
	struct vfio_iommu_type1_dma_unmap *u = (void *)arg;
	bool grouped = false;

	for (int i = 0; i < FAKE_MAX_FDS; i++)
		grouped |= f->fds[i].kind == FAKE_GROUP && f->fds[i].container >= 0;
	switch (req) {
	case VFIO_GET_API_VERSION:
		fake_log(f, "API");
		return f->api_version;
	case VFIO_CHECK_EXTENSION:
		fake_log(f, "EXT(%lu)", arg);
		return (arg == VFIO_TYPE1v2_IOMMU && f->type1v2) || (arg == VFIO_TYPE1_IOMMU && f->type1);
	case VFIO_SET_IOMMU:
		fake_log(f, "SET_IOMMU(%lu)", arg);
		if (!grouped || f->iommu) {
			f->errors++;
			return -EINVAL;
		}
		f->iommu = (int)arg;
		return 0;
	case VFIO_IOMMU_MAP_DMA:
		fake_log(f, "MAP(0x%llx+0x%llx)", (unsigned long long)m->iova,
			 (unsigned long long)m->size);
		if (!f->iommu || m->argsz < sizeof(*m) || f->nr_dma == FAKE_MAX_DMA) {
			f->errors++;
			return -EINVAL;
		}
		if (f->map_err && f->map_err_after-- <= 0)
			return -f->map_err;
		f->dma[f->nr_dma].iova = m->iova;
		f->dma[f->nr_dma].size = m->size;
		f->dma[f->nr_dma].vaddr = m->vaddr;
		f->dma[f->nr_dma++].mapped = true;
		return 0;
	case VFIO_IOMMU_UNMAP_DMA:
		fake_log(f, "UNMAP(0x%llx+0x%llx)", (unsigned long long)u->iova,
			 (unsigned long long)u->size);
		for (int i = 0; f->iommu && i < f->nr_dma; i++)
			if (f->dma[i].mapped && f->dma[i].iova == u->iova && f->dma[i].size == u->size) {
				f->dma[i].mapped = false;
				return 0;
			}
		f->errors++;
		return -EINVAL;
	}
	f->errors++;
	return -ENOTTY;
}

static inline int fake_group_ioctl(struct fake_vfio *f, struct fake_fd *g, unsigned long req,
				   unsigned long arg)
{
	struct vfio_group_status *st = (void *)arg;
	int cfd;

	switch (req) {
	case VFIO_GROUP_GET_STATUS:
		fake_log(f, "STATUS");
		st->flags = (f->not_viable ? 0 : VFIO_GROUP_FLAGS_VIABLE) |
			    (g->container >= 0 ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
		return 0;
	case VFIO_GROUP_SET_CONTAINER:
		cfd = *(int32_t *)arg;
		fake_log(f, "SET_CONTAINER");
		if (f->not_viable)
			return -EPERM;
		if (g->container >= 0 || !fake_fd(f, cfd, FAKE_CONTAINER)) {
			f->errors++;
			return -EINVAL;
		}
		g->container = cfd;
		return 0;
	case VFIO_GROUP_UNSET_CONTAINER:
		fake_log(f, "UNSET_CONTAINER");
		for (int i = 0; i < FAKE_MAX_FDS; i++)
			if (f->fds[i].kind == FAKE_DEVICE && f->fds[i].group == g->group) {
				f->errors++;
				return -EBUSY;
			}
		if (g->container < 0) {
			f->errors++;
			return -EINVAL;
		}
		fake_unset(f, g);
		return 0;
	case VFIO_GROUP_GET_DEVICE_FD:
		fake_log(f, "GET_DEVICE_FD(%s)", (const char *)arg);
		if (g->container < 0 || !f->iommu) {
			f->errors++;
			return -EINVAL;
		}
		return f->device_fd_err ? -f->device_fd_err : fake_new_fd(f, FAKE_DEVICE, g->group);
	}
	f->errors++;
	return -ENOTTY;
}

/* VFIO_DEVICE_GET_REGION_INFO as vfio-pci answers it: the fixed part
 * always; the capabilities when argsz has room, else the size needed. */
static inline int fake_region_info(struct fake_vfio *f, struct vfio_region_info *in)
{
	struct fake_region *r;
	struct vfio_region_info fixed;
	uint32_t argsz = in->argsz;

	fake_log(f, "REGION(%u)", in->index);
	if (in->index >= FAKE_REGIONS || argsz < sizeof(fixed))
		return -EINVAL;
	r = &f->region[in->index];
	if (!r->len) { /* not implemented: size 0 */
		*in = (struct vfio_region_info){ .argsz = argsz, .index = in->index,
						 .offset = FAKE_REGION_OFFSET(in->index) };
		return 0;
	}
	if (r->raw) {
		memcpy(in, r->info, argsz < r->len ? argsz : r->len);
		return 0;
	}
	memcpy(&fixed, r->info, sizeof(fixed));
	fixed.argsz = argsz;
	if (r->len > sizeof(fixed)) {
		fixed.flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (argsz < r->len) {
			fixed.argsz = (uint32_t)r->len;
			fixed.cap_offset = 0;
		} else {
			memcpy(in, r->info, r->len);
			fixed.cap_offset = sizeof(fixed);
		}
	}
	memcpy(in, &fixed, sizeof(fixed));
	return 0;
}

/* Some vectors' eventfds changed while on (vfio-pci's own rule). */
static inline int fake_set_some_irqs(struct fake_vfio *f, const struct vfio_irq_set *s)
{
	if (s->index != VFIO_PCI_MSIX_IRQ_INDEX || !f->irq_on || f->irq_index != s->index ||
	    s->flags != (VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER) ||
	    s->start + s->count > f->irq_count ||
	    s->argsz < sizeof(*s) + s->count * sizeof(int32_t)) {
		f->errors++;
		return -EINVAL;
	}
	memcpy(f->irq_fds + s->start, s->data, s->count * sizeof(int32_t));
	return 0;
}

static inline int fake_set_irqs(struct fake_vfio *f, const struct vfio_irq_set *s)
{
	if (s->start) {
		fake_log(f, "SET_IRQS(%u,%u+%u)", s->index, s->start, s->count);
		return fake_set_some_irqs(f, s);
	}
	fake_log(f, "SET_IRQS(%u,%u)", s->index, s->count);
	if (s->index != VFIO_PCI_MSIX_IRQ_INDEX && s->index != VFIO_PCI_MSI_IRQ_INDEX) {
		f->errors++;
		return -EINVAL;
	}
	if (s->flags == (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER) && !s->count) {
		if (f->irq_on && f->irq_index == s->index) {
			f->irq_on = false;
			f->irq_count = 0;
		}
		return 0;
	}
	/* vfio-pci: one of INTx, MSI and MSI-X at a time */
	if (s->flags != (VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER) ||
	    (f->irq_on && f->irq_index != s->index) ||
	    s->count > (s->index == VFIO_PCI_MSIX_IRQ_INDEX ? f->msix_count : f->msi_count) ||
	    s->count > 64 ||
	    s->argsz < sizeof(*s) + s->count * sizeof(int32_t)) {
		f->errors++;
		return -EINVAL;
	}
	memcpy(f->irq_fds, s->data, s->count * sizeof(int32_t));
	f->irq_count = s->count;
	f->irq_index = s->index;
	f->irq_on = true;
	return 0;
}

static inline int fake_device_ioctl(struct fake_vfio *f, unsigned long req, unsigned long arg)
{
	struct vfio_device_info *info = (void *)arg;
	struct vfio_irq_info *irq = (void *)arg;

	switch (req) {
	case VFIO_DEVICE_GET_INFO:
		fake_log(f, "INFO");
		info->flags = f->dev_flags;
		info->num_regions = f->num_regions;
		info->num_irqs = f->num_irqs;
		return f->ok_ret;
	case VFIO_DEVICE_GET_REGION_INFO:
		return fake_region_info(f, (void *)arg) ?: f->ok_ret;
	case VFIO_DEVICE_GET_IRQ_INFO:
		fake_log(f, "IRQ_INFO(%u)", irq->index);
		irq->count = irq->index == VFIO_PCI_MSIX_IRQ_INDEX ? f->msix_count :
			     irq->index == VFIO_PCI_MSI_IRQ_INDEX ? f->msi_count : 0;
		irq->flags = f->msix_flags;
		return f->ok_ret;
	case VFIO_DEVICE_SET_IRQS:
		return fake_set_irqs(f, (void *)arg) ?: f->ok_ret;
	case VFIO_DEVICE_RESET:
		fake_log(f, "RESET");
		f->resets++;
		return f->ok_ret;
	}
	f->errors++;
	return -ENOTTY;
}

static inline int fake_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	struct fake_vfio *f = ctx;
	struct fake_fd *g;

	if (fake_fd(f, fd, FAKE_CONTAINER))
		return fake_container_ioctl(f, req, arg);
	if ((g = fake_fd(f, fd, FAKE_GROUP)))
		return fake_group_ioctl(f, g, req, arg);
	if (fake_fd(f, fd, FAKE_DEVICE))
		return fake_device_ioctl(f, req, arg);
	f->errors++;
	return -EBADF;
}

/* The device fd's config region: f->config; other regions read as zero. */
static inline ssize_t fake_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	struct fake_vfio *f = ctx;
	uint64_t at = (uint64_t)off - FAKE_REGION_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX);

	if (fd < FAKE_FD_BASE) { /* sysfs files */
		ssize_t n = pread(fd, buf, len, off);

		return n < 0 ? -errno : n;
	}
	if (!fake_fd(f, fd, FAKE_DEVICE)) {
		f->errors++;
		return -EBADF;
	}
	if (at < sizeof(f->config)) {
		len = len < sizeof(f->config) - at ? len : sizeof(f->config) - at;
		memcpy(buf, f->config + at, len);
		return (ssize_t)len;
	}
	memset(buf, 0, len);
	return (ssize_t)len;
}

static inline ssize_t fake_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	struct fake_vfio *f = ctx;
	uint64_t at = (uint64_t)off - FAKE_REGION_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX);

	if (!fake_fd(f, fd, FAKE_DEVICE)) {
		f->errors++;
		return -EBADF;
	}
	if (at < sizeof(f->config)) {
		len = len < sizeof(f->config) - at ? len : sizeof(f->config) - at;
		memcpy(f->config + at, buf, len);
	}
	return (ssize_t)len;
}

/* Device memory is anonymous memory here; the mapping is recorded. */
static inline void *fake_mmap(void *ctx, size_t len, int prot, int flags, int fd, off_t off,
			      int *err)
{
	struct fake_vfio *f = ctx;
	void *p;

	if (!fake_fd(f, fd, FAKE_DEVICE) || f->nr_maps == FAKE_MAX_MAPS || !(flags & MAP_SHARED)) {
		f->errors++;
		*err = -EINVAL;
		return MAP_FAILED;
	}
	p = mmap(NULL, len, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		*err = -errno;
		return p;
	}
	f->maps[f->nr_maps].addr = p;
	f->maps[f->nr_maps].len = len;
	f->maps[f->nr_maps].off = off;
	f->maps[f->nr_maps++].prot = prot;
	*err = 0;
	return p;
}

static inline int fake_munmap(void *ctx, void *addr, size_t len)
{
	struct fake_vfio *f = ctx;

	for (int i = 0; i < f->nr_maps; i++)
		if (f->maps[i].addr == addr && f->maps[i].len == len) {
			munmap(addr, len);
			f->maps[i] = f->maps[--f->nr_maps];
			return 0;
		}
	f->errors++;
	return -EINVAL;
}

static inline int fake_getrlimit(void *ctx, int resource, struct rlimit *rl)
{
	*rl = ((struct fake_vfio *)ctx)->memlock;
	return 0;
}

static inline bool fake_ipc_lock(void *ctx)
{
	return ((struct fake_vfio *)ctx)->ipc_lock;
}

/* ---- the sysfs tree ---- */

static inline void fake_mkdirs(const char *path)
{
	char tmp[1024];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	mkdir(tmp, 0755);
}

/*
 * A PCI device in the tree: its directory, its IOMMU group link (group
 * < 0: none), its driver link (NULL: none), its class file; listed in the
 * group's devices.
 */
static inline void fake_sysfs_device(struct fake_vfio *f, const char *addr, int group,
				     const char *driver, unsigned class_code)
{
	char dir[512], path[600], target[256];
	FILE *fp;

	snprintf(dir, sizeof(dir), "%s/sys/bus/pci/devices/%s", f->root, addr);
	fake_mkdirs(dir);
	snprintf(path, sizeof(path), "%s/class", dir);
	fp = fopen(path, "w");
	if (fp) {
		fprintf(fp, "0x%06x\n", class_code);
		fclose(fp);
	}
	if (driver) {
		snprintf(path, sizeof(path), "%s/driver", dir);
		snprintf(target, sizeof(target), "../../../../bus/pci/drivers/%s", driver);
		unlink(path);
		if (symlink(target, path))
			f->errors++;
	}
	if (group < 0)
		return;
	snprintf(path, sizeof(path), "%s/iommu_group", dir);
	snprintf(target, sizeof(target), "../../../../kernel/iommu_groups/%d", group);
	if (symlink(target, path))
		f->errors++;
	snprintf(path, sizeof(path), "%s/sys/kernel/iommu_groups/%d/devices", f->root, group);
	fake_mkdirs(path);
	snprintf(path, sizeof(path), "%s/sys/kernel/iommu_groups/%d/devices/%s", f->root, group,
		 addr);
	snprintf(target, sizeof(target), "../../../../bus/pci/devices/%s", addr);
	if (symlink(target, path))
		f->errors++;
}

/* ---- scripted region answers ---- */

static inline void fake_region(struct fake_vfio *f, unsigned idx, uint32_t flags, uint64_t size,
			       const void *caps, size_t caps_len)
{
	struct vfio_region_info info = {
		.argsz = (uint32_t)(sizeof(info) + caps_len), .flags = flags, .index = idx,
		.cap_offset = caps_len ? sizeof(info) : 0, .size = size,
		.offset = FAKE_REGION_OFFSET(idx),
	};
	struct fake_region *r = &f->region[idx];

	memcpy(r->info, &info, sizeof(info));
	if (caps_len)
		memcpy(r->info + sizeof(info), caps, caps_len);
	r->len = sizeof(info) + caps_len;
	r->raw = false;
}

/* A sparse-mmap capability with n areas into buf: its length. */
static inline size_t fake_sparse_cap(uint8_t *buf, uint32_t next, uint32_t n,
				     const uint64_t (*areas)[2])
{
	struct vfio_region_info_cap_sparse_mmap cap = {
		.header = { .id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, .version = 1, .next = next },
		.nr_areas = n,
	};

	memcpy(buf, &cap, sizeof(cap));
	for (uint32_t i = 0; i < n; i++) {
		struct vfio_region_sparse_mmap_area a = { .offset = areas[i][0], .size = areas[i][1] };

		memcpy(buf + sizeof(cap) + i * sizeof(a), &a, sizeof(a));
	}
	return sizeof(cap) + n * sizeof(struct vfio_region_sparse_mmap_area);
}

/* ---- set-up and tear-down ---- */

static inline int fake_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/*
 * A kernel with VFIO, a type-1 v2 IOMMU, a viable group, and a vfio-pci
 * device with BAR0 (16 KiB, mmap-able), BAR2 (64 KiB, its MSI-X table in
 * the page at 0x2000, so mmap-able around it), config space, 5 MSI-X
 * vectors and 1 MSI vector; RLIMIT_MEMLOCK unlimited. The sysfs tree is empty.
 */
static inline struct fake_vfio *fake_vfio_new(void)
{
	static const uint64_t bar2_areas[2][2] = { { 0, 0x2000 }, { 0x3000, 0xd000 } };
	struct fake_vfio *f = calloc(1, sizeof(*f));
	uint8_t caps[128];
	size_t n;

	if (!f)
		return NULL;
	snprintf(f->root, sizeof(f->root), "/tmp/vibevmm-vfio-XXXXXX");
	if (!mkdtemp(f->root)) {
		free(f);
		return NULL;
	}
	f->sys = (struct vfio_sys){
		.root = f->root, .ctx = f, .open = fake_open, .close = fake_close,
		.ioctl = fake_ioctl, .pread = fake_pread, .pwrite = fake_pwrite,
		.mmap = fake_mmap, .munmap = fake_munmap,
		.readlink = vfio_sys_host.readlink, .list_dir = vfio_sys_host.list_dir,
		.getrlimit = fake_getrlimit, .ipc_lock_capable = fake_ipc_lock,
	};
	f->api_version = VFIO_API_VERSION;
	f->type1v2 = f->type1 = true;
	f->dev_flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
	f->num_regions = VFIO_PCI_NUM_REGIONS;
	f->num_irqs = VFIO_PCI_NUM_IRQS;
	f->msix_count = 5;
	f->msi_count = 1;
	f->msix_flags = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE;
	f->memlock = (struct rlimit){ RLIM_INFINITY, RLIM_INFINITY };
	fake_region(f, 0, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
			  VFIO_REGION_INFO_FLAG_MMAP, 0x4000, NULL, 0);
	n = fake_sparse_cap(caps, 0, 2, bar2_areas);
	fake_region(f, 2, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
			  VFIO_REGION_INFO_FLAG_MMAP, 0x10000, caps, n);
	fake_region(f, VFIO_PCI_CONFIG_REGION_INDEX,
		    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, 0x100, NULL, 0);
	return f;
}

static inline void fake_vfio_free(struct fake_vfio *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->nr_maps; i++)
		munmap(f->maps[i].addr, f->maps[i].len);
	nftw(f->root, fake_rm, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
}

#endif
