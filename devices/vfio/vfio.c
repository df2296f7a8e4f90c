/* SPDX-License-Identifier: MIT */
/*
 * A VFIO device: opened from its group, described (regions, MSI-X),
 * reset, and closed again; configuration space and region access through
 * the device fd, BAR mappings, MSI-X eventfds (vfio.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/pci/msix.h"
#include "devices/vfio/vfio_internal.h"
#include "utils.h"

/* The largest region info answer taken (a sparse list of
 * VFIO_REGION_MAX_AREAS areas fits many times over): a kernel asking for
 * more is not believed. */
#define VFIO_INFO_MAX 65536

int vfio_ioctl_ptr(const struct vfio_sys *sys, int fd, unsigned long req, void *arg)
{
	return sys->ioctl(sys->ctx, fd, req, (unsigned long)(uintptr_t)arg);
}

int vfio_ioctl_val(const struct vfio_sys *sys, int fd, unsigned long req, unsigned long arg)
{
	return sys->ioctl(sys->ctx, fd, req, arg);
}

int vfio_path(const struct vfio_sys *sys, char *buf, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(buf, VFIO_PATH_LEN, "%s", sys->root ? sys->root : "");
	int m;

	if (n < 0 || n >= VFIO_PATH_LEN)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	m = vsnprintf(buf + n, VFIO_PATH_LEN - (size_t)n, fmt, ap);
	va_end(ap);
	return m < 0 || m >= VFIO_PATH_LEN - n ? -ENAMETOOLONG : 0;
}

/* ---- reading the device's description ---- */

/* VFIO_DEVICE_GET_REGION_INFO for region idx into a buffer of *size
 * bytes, asked again with the size the kernel says it needs when it has a
 * capability chain to give (up to VFIO_INFO_MAX). The answer (malloc'd)
 * or NULL with *err set. */
static struct vfio_region_info *fetch_region_info(struct vfio_device *d, uint32_t idx,
						  size_t *size, int *err)
{
	struct vfio_region_info *info = NULL;
	size_t want = sizeof(*info);

	for (int ask = 0; ask < 2; ask++) {
		free(info);
		info = calloc(1, want);
		if (!info) {
			*err = -ENOMEM;
			return NULL;
		}
		*info = (struct vfio_region_info){ .argsz = (uint32_t)want, .index = idx };
		*err = vfio_ioctl_ptr(d->c->sys, d->fd, VFIO_DEVICE_GET_REGION_INFO, info);
		if (*err < 0) {
			free(info);
			return NULL;
		}
		*size = want;
		if (info->argsz <= want || info->argsz > VFIO_INFO_MAX)
			break;
		want = info->argsz;
	}
	*err = 0;
	return info;
}

static int read_region(struct vfio_device *d, uint32_t idx, char *why, size_t len)
{
	const char *bad = NULL;
	size_t size = 0;
	int err;
	struct vfio_region_info *info = fetch_region_info(d, idx, &size, &err);

	if (info)
		/* The kernel's argsz says how much it wrote; never more than we have. */
		err = vfio_region_parse(info, MIN((size_t)info->argsz, size), &d->regions[idx], &bad);
	free(info);
	if (err == -EINVAL && bad)
		return fail_why(EINVAL, why, len,
				"vfio %s: region %u: malformed VFIO_DEVICE_GET_REGION_INFO answer (%s)",
				d->addr, idx, bad);
	if (err)
		return fail_why(-err, why, len, "vfio %s: VFIO_DEVICE_GET_REGION_INFO %u: %s",
				d->addr, idx, strerror(-err));
	d->regions[idx].index = idx;
	return 0;
}

static int read_info(struct vfio_device *d, char *why, size_t len)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int err = vfio_ioctl_ptr(d->c->sys, d->fd, VFIO_DEVICE_GET_INFO, &info);

	if (err < 0)
		return fail_why(-err, why, len, "vfio %s: VFIO_DEVICE_GET_INFO: %s", d->addr,
				strerror(-err));
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
		return fail_why(ENODEV, why, len, "vfio %s: not a vfio-pci device (flags 0x%x)",
				d->addr, info.flags);
	if (info.num_regions < VFIO_DEV_REGIONS)
		return fail_why(ENODEV, why, len,
				"vfio %s: the device has %u regions, a PCI device at least %d",
				d->addr, info.num_regions, VFIO_DEV_REGIONS);
	d->flags = info.flags;
	d->num_regions = info.num_regions;
	d->num_irqs = info.num_irqs;
	return 0;
}

/* The vectors of interrupt index `index` (MSI, MSI-X) signalled by
 * eventfd, in *count (none when the index is absent). */
static int read_irq_count(struct vfio_device *d, uint32_t index, const char *name,
			  uint32_t *count, char *why, size_t len)
{
	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = index };
	int err;

	*count = 0;
	if (d->num_irqs <= index)
		return 0;
	err = vfio_ioctl_ptr(d->c->sys, d->fd, VFIO_DEVICE_GET_IRQ_INFO, &irq);
	if (err < 0)
		return fail_why(-err, why, len, "vfio %s: VFIO_DEVICE_GET_IRQ_INFO (%s): %s",
				d->addr, name, strerror(-err));
	if (irq.flags & VFIO_IRQ_INFO_EVENTFD)
		*count = irq.count;
	return 0;
}

static int read_irqs(struct vfio_device *d, char *why, size_t len)
{
	int err = read_irq_count(d, VFIO_PCI_MSIX_IRQ_INDEX, "MSI-X", &d->msix_count, why, len);

	d->msix_count = MIN(d->msix_count, (uint32_t)PCI_MSIX_MAX_VECTORS);
	return err ? err : read_irq_count(d, VFIO_PCI_MSI_IRQ_INDEX, "MSI", &d->msi_count, why,
					  len);
}

static int describe(struct vfio_device *d, char *why, size_t len)
{
	int err = read_info(d, why, len);

	for (uint32_t i = 0; !err && i < VFIO_DEV_REGIONS; i++)
		err = read_region(d, i, why, len);
	return err ? err : read_irqs(d, why, len);
}

static int get_device_fd(struct vfio_device *d, char *why, size_t len)
{
	int fd = vfio_ioctl_ptr(d->c->sys, d->group->fd, VFIO_GROUP_GET_DEVICE_FD, d->addr);

	if (fd < 0)
		return fail_why(-fd, why, len, "vfio %s: VFIO_GROUP_GET_DEVICE_FD: %s", d->addr,
				strerror(-fd));
	d->fd = fd;
	return 0;
}

/* ---- open and close ---- */

static struct vfio_device *find_device(const struct vfio_container *c, const char *addr)
{
	for (struct vfio_device *d = c->devices; d; d = d->next)
		if (!strcmp(d->addr, addr))
			return d;
	return NULL;
}

static void unmap_regions(struct vfio_device *d)
{
	for (int i = 0; i < VFIO_DEV_REGIONS; i++) {
		struct vfio_region *r = &d->regions[i];

		for (uint32_t a = 0; a < r->nr_areas; a++)
			if (r->areas[a].map) {
				d->c->sys->munmap(d->c->sys->ctx, r->areas[a].map, r->areas[a].size);
				r->areas[a].map = NULL;
			}
	}
}

/*
 * Everything vfio_device_open did, undone, in the order that keeps the
 * device quiet: its interrupts no longer signal the caller's eventfds
 * (which the caller may close next), no mapping reaches it, the device is
 * reset, then its fd closed and its group let go.
 */
static void teardown(struct vfio_device *d)
{
	if (d->msix_on)
		vfio_msix_disable(d);
	if (d->msi_on)
		vfio_msi_disable(d);
	unmap_regions(d);
	if (d->fd >= 0) {
		if (vfio_device_can_reset(d))
			vfio_device_reset(d);
		d->c->sys->close(d->c->sys->ctx, d->fd);
	}
	for (int i = 0; i < VFIO_DEV_REGIONS; i++)
		vfio_region_free(&d->regions[i]);
	if (d->group)
		vfio_container_detach(d->c, d->group);
	free(d);
}

int vfio_device_open(struct vfio_container *c, const char *name, struct vfio_device **out,
		     char *why, size_t why_len)
{
	char addr[VFIO_ADDR_LEN];
	struct vfio_device *d;
	int group, err;

	if (!c || !out)
		return fail_why(EINVAL, why, why_len, "vfio: no container");
	*out = NULL;
	if (vfio_parse_address(name, addr))
		return fail_why(EINVAL, why, why_len,
				"vfio: \"%s\" is not a PCI address (0000:00:04.0 or 00:04.0) nor a "
				"/sys/bus/pci/devices/ path", name ? name : "");
	if (find_device(c, addr))
		return fail_why(EEXIST, why, why_len, "vfio %s: given twice", addr);
	err = vfio_sysfs_check(c->sys, addr, &group, why, why_len);
	if (err)
		return err;
	d = calloc(1, sizeof(*d));
	if (!d)
		return fail_why(ENOMEM, why, why_len, "vfio %s: out of memory", addr);
	d->c = c;
	d->fd = -1;
	snprintf(d->addr, sizeof(d->addr), "%s", addr);
	err = vfio_container_attach(c, addr, group, &d->group, why, why_len);
	if (!err)
		err = get_device_fd(d, why, why_len);
	if (!err)
		err = describe(d, why, why_len);
	if (err) {
		teardown(d);
		return err;
	}
	/* A clean device for the guest, as after power-on. A device that
	 * says it can reset and then fails to is still usable (vfio-pci
	 * reset it when it was bound): not a reason to refuse it. */
	if (vfio_device_can_reset(d))
		vfio_device_reset(d);
	d->next = c->devices;
	c->devices = d;
	*out = d;
	return 0;
}

void vfio_device_close(struct vfio_device *d)
{
	struct vfio_device **pp;

	if (!d)
		return;
	for (pp = &d->c->devices; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	teardown(d);
}

/* ---- what the guest-facing side uses ---- */

const char *vfio_device_address(const struct vfio_device *d)
{
	return d->addr;
}

int vfio_device_group(const struct vfio_device *d)
{
	return d->group->id;
}

const struct vfio_region *vfio_device_region(const struct vfio_device *d, unsigned index)
{
	return index < VFIO_DEV_REGIONS ? &d->regions[index] : NULL;
}

uint32_t vfio_device_msix_count(const struct vfio_device *d)
{
	return d->msix_count;
}

uint32_t vfio_device_msi_count(const struct vfio_device *d)
{
	return d->msi_count;
}

bool vfio_device_can_reset(const struct vfio_device *d)
{
	return d->flags & VFIO_DEVICE_FLAGS_RESET;
}

int vfio_device_reset(struct vfio_device *d)
{
	int err;

	if (!vfio_device_can_reset(d))
		return -ENOTTY;
	err = vfio_ioctl_val(d->c->sys, d->fd, VFIO_DEVICE_RESET, 0);
	return err < 0 ? err : 0;
}

static int map_area(struct vfio_device *d, const struct vfio_region *r, struct vfio_mmap_area *a,
		    int prot)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	int err = 0;
	void *p;

	if (a->offset % page || a->size % page)
		return -EINVAL;
	p = d->c->sys->mmap(d->c->sys->ctx, a->size, prot, MAP_SHARED, d->fd,
			    (off_t)(r->offset + a->offset), &err);
	if (p == MAP_FAILED)
		return err ? err : -ENOMEM;
	a->map = p;
	return 0;
}

int vfio_device_map_region(struct vfio_device *d, unsigned index)
{
	struct vfio_region *r = index < VFIO_DEV_REGIONS ? &d->regions[index] : NULL;
	int prot, err = 0;

	if (!r || !(r->flags & VFIO_REGION_INFO_FLAG_MMAP) || !r->nr_areas)
		return -EINVAL;
	if (r->areas[0].map)
		return -EALREADY;
	prot = (r->flags & VFIO_REGION_INFO_FLAG_READ ? PROT_READ : 0) |
	       (r->flags & VFIO_REGION_INFO_FLAG_WRITE ? PROT_WRITE : 0);
	for (uint32_t i = 0; !err && i < r->nr_areas; i++)
		err = map_area(d, r, &r->areas[i], prot);
	if (err)
		for (uint32_t i = 0; i < r->nr_areas; i++)
			if (r->areas[i].map) {
				d->c->sys->munmap(d->c->sys->ctx, r->areas[i].map, r->areas[i].size);
				r->areas[i].map = NULL;
			}
	return err;
}

static int region_io(struct vfio_device *d, unsigned index, uint64_t off, void *buf,
		     size_t len, bool write)
{
	const struct vfio_region *r = vfio_device_region(d, index);
	const struct vfio_sys *sys = d->c->sys;
	size_t done = 0;

	if (!r || !(r->flags & (write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ)) ||
	    !range_fits(off, len, r->size))
		return -EINVAL;
	while (done < len) {
		off_t at = (off_t)(r->offset + off + done);
		ssize_t n = write ? sys->pwrite(sys->ctx, d->fd, (uint8_t *)buf + done, len - done, at)
				  : sys->pread(sys->ctx, d->fd, (uint8_t *)buf + done, len - done, at);

		if (n < 0)
			return (int)n;
		if (n == 0 || (size_t)n > len - done)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int vfio_region_read(struct vfio_device *d, unsigned index, uint64_t off, void *buf, size_t len)
{
	return region_io(d, index, off, buf, len, false);
}

int vfio_region_write(struct vfio_device *d, unsigned index, uint64_t off, const void *buf,
		      size_t len)
{
	return region_io(d, index, off, (void *)buf, len, true);
}

int vfio_config_read(struct vfio_device *d, uint32_t off, void *buf, size_t len)
{
	return region_io(d, VFIO_PCI_CONFIG_REGION_INDEX, off, buf, len, false);
}

int vfio_config_write(struct vfio_device *d, uint32_t off, const void *buf, size_t len)
{
	return region_io(d, VFIO_PCI_CONFIG_REGION_INDEX, off, (void *)buf, len, true);
}

/* Index `index`'s vectors 0 .. n-1 signal eventfds. */
static int irqs_on(struct vfio_device *d, uint32_t index, const int32_t *eventfds, uint32_t n)
{
	size_t size = sizeof(struct vfio_irq_set) + (size_t)n * sizeof(int32_t);
	struct vfio_irq_set *set = calloc(1, size);
	int err;

	if (!set)
		return -ENOMEM;
	*set = (struct vfio_irq_set){
		.argsz = (uint32_t)size,
		.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = index, .start = 0, .count = n,
	};
	memcpy(set->data, eventfds, (size_t)n * sizeof(int32_t));
	err = vfio_ioctl_ptr(d->c->sys, d->fd, VFIO_DEVICE_SET_IRQS, set);
	free(set);
	return err < 0 ? err : 0;
}

/* Index `index` off: its vectors signal nothing, the device's own
 * MSI or MSI-X disabled by vfio-pci. */
static int irqs_off(struct vfio_device *d, uint32_t index)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set), .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = index, .start = 0, .count = 0,
	};
	int err = vfio_ioctl_ptr(d->c->sys, d->fd, VFIO_DEVICE_SET_IRQS, &set);

	return err < 0 ? err : 0;
}

int vfio_msix_enable(struct vfio_device *d, const int32_t *eventfds, uint32_t n)
{
	int err;

	if (!n || n > d->msix_count || !eventfds)
		return -EINVAL;
	err = irqs_on(d, VFIO_PCI_MSIX_IRQ_INDEX, eventfds, n);
	if (!err)
		d->msix_on = true;
	return err;
}

int vfio_msix_set_vector(struct vfio_device *d, uint32_t vec, int32_t eventfd)
{
	union {
		struct vfio_irq_set set;
		uint8_t bytes[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	} one;
	int err;

	if (!d->msix_on || vec >= d->msix_count)
		return -EINVAL;
	one.set = (struct vfio_irq_set){
		.argsz = sizeof(one),
		.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = VFIO_PCI_MSIX_IRQ_INDEX, .start = vec, .count = 1,
	};
	memcpy(one.set.data, &eventfd, sizeof(eventfd));
	err = vfio_ioctl_ptr(d->c->sys, d->fd, VFIO_DEVICE_SET_IRQS, &one);
	return err < 0 ? err : 0;
}

int vfio_msix_disable(struct vfio_device *d)
{
	d->msix_on = false;
	return irqs_off(d, VFIO_PCI_MSIX_IRQ_INDEX);
}

int vfio_msi_enable(struct vfio_device *d, int32_t eventfd)
{
	int err;

	if (!d->msi_count || d->msix_on)
		return -EINVAL;
	err = irqs_on(d, VFIO_PCI_MSI_IRQ_INDEX, &eventfd, 1);
	if (!err)
		d->msi_on = true;
	return err;
}

int vfio_msi_disable(struct vfio_device *d)
{
	d->msi_on = false;
	return irqs_off(d, VFIO_PCI_MSI_IRQ_INDEX);
}
