/* SPDX-License-Identifier: MIT */
/*
 * The VM's VFIO container: /dev/vfio/vfio, the IOMMU groups that joined
 * it, and guest RAM mapped for the devices' DMA (iova = guest-physical
 * address). The IOMMU context lives as long as a group is attached: guest
 * RAM is mapped when the first group joins and unmapped before the last
 * one leaves (unmapping needs the IOMMU still set).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vfio/vfio_internal.h"
#include "utils.h"

#define MIB (1024ULL * 1024)

static const char *const no_iommu_advice =
	"enable the IOMMU (VT-d or AMD-Vi in the firmware, and boot with intel_iommu=on "
	"or amd_iommu=on)";

struct vfio_container *vfio_container_create(const struct vfio_sys *sys,
					     const struct mem_map *ram)
{
	struct vfio_container *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->sys = sys ? sys : &vfio_sys_host;
	c->fd = -1;
	for (int i = 0; ram && i < ram->nr_slots && i < MM_MAX_SLOTS; i++)
		c->dma[c->nr_dma++] = (struct vfio_dma){ .iova = ram->slots[i].gpa,
							 .size = ram->slots[i].size,
							 .vaddr = ram->slots[i].hva };
	return c;
}

void vfio_container_destroy(struct vfio_container *c)
{
	if (!c)
		return;
	while (c->devices)
		vfio_device_close(c->devices);
	if (c->fd >= 0)
		c->sys->close(c->sys->ctx, c->fd);
	free(c);
}

static uint64_t ram_bytes(const struct vfio_container *c)
{
	uint64_t sum = 0;

	for (int i = 0; i < c->nr_dma; i++)
		sum += c->dma[i].size;
	return sum;
}

/* The one text for "not enough locked memory", before mapping (from
 * RLIMIT_MEMLOCK) and after (VFIO_IOMMU_MAP_DMA's ENOMEM). */
static int memlock_fail(const struct vfio_container *c, const char *addr, char *why,
			size_t len)
{
	uint64_t need = (ram_bytes(c) + MIB - 1) / MIB;
	struct rlimit rl;
	char have[32] = "unknown";

	if (!c->sys->getrlimit(c->sys->ctx, RLIMIT_MEMLOCK, &rl))
		snprintf(have, sizeof(have), rl.rlim_cur == RLIM_INFINITY ? "unlimited" : "%llu MiB",
			 (unsigned long long)(rl.rlim_cur / MIB));
	return fail_why(ENOMEM, why, len,
			"vfio %s: VFIO pins all guest RAM: %llu MiB of locked memory needed, "
			"RLIMIT_MEMLOCK is %s (raise it: ulimit -l %llu, or LimitMEMLOCK=%lluM in "
			"the systemd unit)", addr, (unsigned long long)need, have,
			(unsigned long long)need * 1024, (unsigned long long)need);
}

/* Before pinning: is the process allowed to lock all of guest RAM?
 * (CAP_IPC_LOCK lifts the limit for VFIO's type-1 IOMMU.) Memory the
 * process has locked already is not counted: the kernel's ENOMEM on
 * mapping says the same then. */
static int check_memlock(const struct vfio_container *c, const char *addr, char *why,
			 size_t len)
{
	struct rlimit rl;

	if (c->sys->ipc_lock_capable(c->sys->ctx))
		return 0;
	if (c->sys->getrlimit(c->sys->ctx, RLIMIT_MEMLOCK, &rl))
		return 0; /* the kernel will say */
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= ram_bytes(c))
		return 0;
	return memlock_fail(c, addr, why, len);
}

/* The type-1 IOMMU backend to use: v2 if the kernel has it. */
static int pick_iommu_type(struct vfio_container *c, char *why, size_t len)
{
	static const int types[] = { VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_IOMMU };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (vfio_ioctl_val(c->sys, c->fd, VFIO_CHECK_EXTENSION, (unsigned long)types[i]) > 0)
			return types[i];
	return fail_why(ENODEV, why, len,
			"vfio: the kernel's VFIO has no type-1 IOMMU backend: %s, and modprobe "
			"vfio_iommu_type1", no_iommu_advice);
}

/* /dev/vfio/vfio opened, its API checked and its type-1 IOMMU backend
 * chosen, before any group is touched. */
static int open_container(struct vfio_container *c, char *why, size_t len)
{
	const struct vfio_sys *sys = c->sys;
	char path[VFIO_PATH_LEN];
	int fd, r;

	if (c->fd >= 0)
		return 0;
	if (vfio_path(sys, path, "/dev/vfio/vfio"))
		return fail_why(ENAMETOOLONG, why, len, "vfio: path too long");
	fd = sys->open(sys->ctx, path, O_RDWR);
	if (fd == -ENOENT)
		return fail_why(ENODEV, why, len,
				"vfio: /dev/vfio/vfio does not exist: no VFIO or no IOMMU on this host "
				"(modprobe vfio-pci; %s)", no_iommu_advice);
	if (fd < 0)
		return fail_why(-fd, why, len, "vfio: /dev/vfio/vfio: %s", strerror(-fd));
	r = vfio_ioctl_val(sys, fd, VFIO_GET_API_VERSION, 0);
	if (r != VFIO_API_VERSION) {
		sys->close(sys->ctx, fd);
		return fail_why(EPROTONOSUPPORT, why, len,
				"vfio: /dev/vfio/vfio speaks VFIO API %d, not %d", r, VFIO_API_VERSION);
	}
	c->fd = fd;
	r = pick_iommu_type(c, why, len);
	if (r < 0) {
		sys->close(sys->ctx, fd);
		c->fd = -1;
		return r;
	}
	c->iommu_type = r;
	return 0;
}

static void unmap_ram(struct vfio_container *c)
{
	for (int i = 0; i < c->nr_dma; i++) {
		struct vfio_iommu_type1_dma_unmap u = {
			.argsz = sizeof(u), .iova = c->dma[i].iova, .size = c->dma[i].size,
		};

		if (c->dma[i].mapped)
			vfio_ioctl_ptr(c->sys, c->fd, VFIO_IOMMU_UNMAP_DMA, &u);
		c->dma[i].mapped = false;
	}
}

static int map_ram(struct vfio_container *c, const char *addr, char *why, size_t len)
{
	for (int i = 0; i < c->nr_dma; i++) {
		struct vfio_dma *d = &c->dma[i];
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uint64_t)(uintptr_t)d->vaddr, .iova = d->iova, .size = d->size,
		};
		int err = vfio_ioctl_ptr(c->sys, c->fd, VFIO_IOMMU_MAP_DMA, &m);

		if (err < 0) {
			unmap_ram(c);
			if (err == -ENOMEM)
				return memlock_fail(c, addr, why, len);
			return fail_why(-err, why, len,
					"vfio %s: VFIO_IOMMU_MAP_DMA of guest RAM at 0x%llx (%llu MiB): %s",
					addr, (unsigned long long)d->iova,
					(unsigned long long)(d->size / MIB), strerror(-err));
		}
		d->mapped = true;
	}
	return 0;
}

/* The first group is in: the IOMMU set, guest RAM mapped. */
static int set_iommu(struct vfio_container *c, const char *addr, char *why, size_t len)
{
	int err = vfio_ioctl_val(c->sys, c->fd, VFIO_SET_IOMMU, (unsigned long)c->iommu_type);

	if (err < 0)
		return fail_why(-err, why, len, "vfio %s: VFIO_SET_IOMMU: %s", addr, strerror(-err));
	c->iommu_set = true;
	return map_ram(c, addr, why, len); /* on failure the group leaving unsets it */
}

static int open_group_fd(struct vfio_container *c, const char *addr, int id, char *why,
			 size_t len)
{
	char path[VFIO_PATH_LEN];
	int fd;

	if (vfio_path(c->sys, path, "/dev/vfio/%d", id))
		return fail_why(ENAMETOOLONG, why, len, "vfio %s: path too long", addr);
	fd = c->sys->open(c->sys->ctx, path, O_RDWR);
	if (fd == -EBUSY)
		return fail_why(EBUSY, why, len,
				"vfio %s: IOMMU group %d (/dev/vfio/%d) is busy: another process has it",
				addr, id, id);
	if (fd == -ENOENT)
		return fail_why(ENODEV, why, len,
				"vfio %s: /dev/vfio/%d does not exist (is vfio-pci loaded and bound?)",
				addr, id);
	if (fd == -EACCES || fd == -EPERM)
		return fail_why(-fd, why, len,
				"vfio %s: /dev/vfio/%d: permission denied (give this user read and "
				"write access to it, or run as root)", addr, id);
	if (fd < 0)
		return fail_why(-fd, why, len, "vfio %s: /dev/vfio/%d: %s", addr, id, strerror(-fd));
	return fd;
}

/* A group fd that is viable and in the container. */
static int join_group(struct vfio_container *c, const char *addr, int id, int fd, char *why,
		      size_t len)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int32_t cfd = c->fd;
	int err;

	err = vfio_ioctl_ptr(c->sys, fd, VFIO_GROUP_GET_STATUS, &st);
	if (err < 0)
		return fail_why(-err, why, len, "vfio %s: VFIO_GROUP_GET_STATUS: %s", addr,
				strerror(-err));
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return fail_why(EPERM, why, len,
				"vfio %s: IOMMU group %d is not viable: bind every device in "
				"/sys/kernel/iommu_groups/%d/devices to vfio-pci", addr, id, id);
	err = vfio_ioctl_ptr(c->sys, fd, VFIO_GROUP_SET_CONTAINER, &cfd);
	if (err < 0)
		return fail_why(-err, why, len, "vfio %s: VFIO_GROUP_SET_CONTAINER: %s", addr,
				strerror(-err));
	return 0;
}

static struct vfio_group *find_group(const struct vfio_container *c, int id)
{
	for (struct vfio_group *g = c->groups; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

/* g out of the container and freed (guest RAM unmapped first when it
 * is the last group: the IOMMU goes with it). */
static void drop_group(struct vfio_container *c, struct vfio_group *g)
{
	struct vfio_group **pp = &c->groups;

	while (*pp && *pp != g)
		pp = &(*pp)->next;
	if (*pp)
		*pp = g->next;
	if (!c->groups) {
		unmap_ram(c);
		c->iommu_set = false;
	}
	vfio_ioctl_val(c->sys, g->fd, VFIO_GROUP_UNSET_CONTAINER, 0);
	c->sys->close(c->sys->ctx, g->fd);
	free(g);
}

int vfio_container_attach(struct vfio_container *c, const char *addr, int id,
			  struct vfio_group **out, char *why, size_t len)
{
	struct vfio_group *g = find_group(c, id);
	int err;

	if (g) {
		g->users++;
		*out = g;
		return 0;
	}
	if (!c->iommu_set) {
		err = check_memlock(c, addr, why, len);
		if (err)
			return err;
	}
	err = open_container(c, why, len);
	if (err)
		return err;
	g = calloc(1, sizeof(*g));
	if (!g)
		return fail_why(ENOMEM, why, len, "vfio %s: out of memory", addr);
	g->id = id;
	g->fd = open_group_fd(c, addr, id, why, len);
	if (g->fd < 0) {
		err = g->fd;
		free(g);
		return err;
	}
	err = join_group(c, addr, id, g->fd, why, len);
	if (err) {
		c->sys->close(c->sys->ctx, g->fd);
		free(g);
		return err;
	}
	g->next = c->groups;
	c->groups = g;
	if (!c->iommu_set) {
		err = set_iommu(c, addr, why, len);
		if (err) {
			drop_group(c, g);
			return err;
		}
	}
	g->users = 1;
	*out = g;
	return 0;
}

void vfio_container_detach(struct vfio_container *c, struct vfio_group *g)
{
	if (g && --g->users == 0)
		drop_group(c, g);
}
