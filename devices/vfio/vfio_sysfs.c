/* SPDX-License-Identifier: MIT */
/*
 * Finding a device to assign, through sysfs: its address, its IOMMU
 * group, its driver and its group's other devices. The kernel has the last
 * word (VFIO_GROUP_GET_STATUS says whether the group is viable); these
 * checks come first so that the user learns which device is in the way
 * and the commands that fix it, instead of "group not viable".
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vfio/vfio_internal.h"
#include "utils.h"

#define SYSFS_DEVICES "/sys/bus/pci/devices"
#define SYSFS_GROUPS "/sys/kernel/iommu_groups"
#define DRIVER_LEN 64

/* Up to `max` hex digits (at least one) at s into *v: past them, or NULL. */
static const char *hex_field(const char *s, unsigned max, uint32_t *v)
{
	unsigned n = 0;
	uint32_t x = 0;

	while (n < max && isxdigit((unsigned char)s[n])) {
		x = x * 16 + (uint32_t)(isdigit((unsigned char)s[n]) ? s[n] - '0'
						: tolower((unsigned char)s[n]) - 'a' + 10);
		n++;
	}
	if (!n || isxdigit((unsigned char)s[n]))
		return NULL;
	*v = x;
	return s + n;
}

/* "[domain:]bus:dev.fn", nothing after. */
static int parse_bdf(const char *s, char addr[VFIO_ADDR_LEN])
{
	uint32_t dom = 0, bus, dev, fn;
	const char *p = s;

	if (strchr(s, ':') != strrchr(s, ':')) {
		p = hex_field(p, 8, &dom);
		if (!p || *p++ != ':')
			return -EINVAL;
	}
	p = hex_field(p, 2, &bus);
	if (!p || *p++ != ':')
		return -EINVAL;
	p = hex_field(p, 2, &dev);
	if (!p || *p++ != '.' || dev > 0x1f)
		return -EINVAL;
	p = hex_field(p, 1, &fn);
	if (!p || *p || fn > 7)
		return -EINVAL;
	snprintf(addr, VFIO_ADDR_LEN, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return 0;
}

int vfio_parse_address(const char *name, char addr[VFIO_ADDR_LEN])
{
	char last[VFIO_PATH_LEN];
	size_t n;
	const char *slash;

	if (!name || !*name)
		return -EINVAL;
	if (name[0] != '/')
		return parse_bdf(name, addr);
	/* A sysfs directory: its last component, which must be a full
	 * address (sysfs always writes the domain). */
	n = strlen(name);
	while (n > 1 && name[n - 1] == '/')
		n--;
	if (n >= sizeof(last))
		return -EINVAL;
	memcpy(last, name, n);
	last[n] = '\0';
	slash = strrchr(last, '/');
	if (strchr(slash + 1, ':') == strrchr(slash + 1, ':'))
		return -EINVAL;
	return parse_bdf(slash + 1, addr);
}

/* The last component of the target of the symlink at root + the path
 * printf makes, into out: 0, -ENOENT (no such link) or another -errno. */
static int link_name(const struct vfio_sys *sys, char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int link_name(const struct vfio_sys *sys, char *out, size_t len, const char *fmt, ...)
{
	char rel[VFIO_PATH_LEN], full[VFIO_PATH_LEN], target[VFIO_PATH_LEN];
	const char *base;
	va_list ap;
	ssize_t n;
	int m;

	va_start(ap, fmt);
	m = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= sizeof(rel) || vfio_path(sys, full, "%s", rel))
		return -ENAMETOOLONG;
	n = sys->readlink(sys->ctx, full, target, sizeof(target));
	if (n < 0)
		return (int)n;
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (!*base || strlen(base) >= len)
		return -EINVAL;
	strcpy(out, base);
	return 0;
}

/* The driver bound to the device at sysfs path `dev`: its name, or ""
 * for none. 0 or -errno. */
static int driver_of(const struct vfio_sys *sys, const char *dev, char out[DRIVER_LEN])
{
	int err = link_name(sys, out, DRIVER_LEN, "%s/driver", dev);

	if (err == -ENOENT) {
		out[0] = '\0';
		return 0;
	}
	return err;
}

/* vfio-pci, or one of its vendor variants (mlx5_vfio_pci,
 * hisi_acc_vfio_pci...), which serve the same VFIO device interface. */
static bool is_vfio_driver(const char *drv)
{
	size_t n = strlen(drv);

	return !strcmp(drv, "vfio-pci") || (n >= 8 && !strcmp(drv + n - 8, "vfio_pci"));
}

/* The PCI class code of the device at sysfs path `dev` (its "class"
 * file, "0x060400"), or -1. */
static long class_of(const struct vfio_sys *sys, const char *dev)
{
	char path[VFIO_PATH_LEN], text[32];
	ssize_t n;
	int fd;

	if (vfio_path(sys, path, "%s/class", dev))
		return -1;
	fd = sys->open(sys->ctx, path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = sys->pread(sys->ctx, fd, text, sizeof(text) - 1, 0);
	sys->close(sys->ctx, fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	return strtol(text, NULL, 16);
}

/*
 * Whether a device may share a VFIO group with the assigned one, as the
 * kernel decides viability (drivers/vfio, Linux 5.19 on: every device in
 * the group has no driver or a driver that manages its own DMA: vfio-pci
 * and its variants, pci-stub, pcieport; before 5.19 the same list with any
 * PCI bridge allowed whatever its driver). Bridges are let through here
 * on both counts; the kernel's own check follows (VFIO_GROUP_GET_STATUS).
 */
static bool member_allowed(const struct vfio_sys *sys, const char *dev, const char *drv)
{
	long cls;

	if (!*drv || is_vfio_driver(drv) || !strcmp(drv, "pci-stub") || !strcmp(drv, "pcieport"))
		return true;
	cls = class_of(sys, dev);
	/* Base class 06 (bridge), subclass 04 (PCI-PCI), 07 (CardBus) or
	 * 09 (semi-transparent PCI-PCI): the headers that are not type 0. */
	return cls >= 0 && (cls >> 16) == 0x06 &&
	       (((cls >> 8) & 0xff) == 0x04 || ((cls >> 8) & 0xff) == 0x07 ||
		((cls >> 8) & 0xff) == 0x09);
}

/* Walking a group's devices: the first one in the way. */
struct group_walk {
	const struct vfio_sys *sys;
	int group;
	const char *self;
	char culprit[VFIO_PATH_LEN / 2];
	char driver[DRIVER_LEN];
};

static int check_member(void *arg, const char *name)
{
	struct group_walk *w = arg;
	char dev[VFIO_PATH_LEN];

	if (!strcmp(name, w->self))
		return 0;
	snprintf(dev, sizeof(dev), SYSFS_GROUPS "/%d/devices/%s", w->group, name);
	if (driver_of(w->sys, dev, w->driver))
		snprintf(w->driver, sizeof(w->driver), "an unknown driver");
	else if (member_allowed(w->sys, dev, w->driver))
		return 0;
	snprintf(w->culprit, sizeof(w->culprit), "%s", name);
	return 1;
}

static int check_group_members(const struct vfio_sys *sys, const char *addr, int group,
			       char *why, size_t len)
{
	struct group_walk w = { .sys = sys, .group = group, .self = addr };
	char path[VFIO_PATH_LEN];
	int r;

	if (vfio_path(sys, path, SYSFS_GROUPS "/%d/devices", group))
		return fail_why(ENAMETOOLONG, why, len, "vfio %s: sysfs path too long", addr);
	r = sys->list_dir(sys->ctx, path, check_member, &w);
	if (r < 0)
		return fail_why(-r, why, len, "vfio %s: " SYSFS_GROUPS "/%d/devices: %s", addr,
				group, strerror(-r));
	if (r > 0)
		return fail_why(EPERM, why, len,
				"vfio %s: its IOMMU group %d also holds %s, bound to %s, not vfio-pci: "
				"the group goes to the guest whole, so bind every device in "
				SYSFS_GROUPS "/%d/devices to vfio-pci (or unbind it)",
				addr, group, w.culprit, w.driver, group);
	return 0;
}

/* The device's IOMMU group number (its iommu_group link). */
static int group_of(const struct vfio_sys *sys, const char *addr, int *group, char *why,
		    size_t len)
{
	char name[32];
	char *end;
	long n;
	int err;

	err = link_name(sys, name, sizeof(name), SYSFS_DEVICES "/%s/iommu_group", addr);
	if (err == -ENOENT)
		return fail_why(ENODEV, why, len,
				"vfio %s: no IOMMU group: the host's IOMMU is off (enable VT-d or AMD-Vi "
				"in the firmware and boot with intel_iommu=on or amd_iommu=on)", addr);
	if (err)
		return fail_why(-err, why, len, "vfio %s: " SYSFS_DEVICES "/%s/iommu_group: %s", addr,
				addr, strerror(-err));
	n = strtol(name, &end, 10);
	if (*end || n < 0 || n > INT32_MAX)
		return fail_why(EINVAL, why, len, "vfio %s: IOMMU group \"%s\" is not a number",
				addr, name);
	*group = (int)n;
	return 0;
}

static int check_exists(const struct vfio_sys *sys, const char *addr, char *why, size_t len)
{
	char path[VFIO_PATH_LEN];
	int fd;

	if (vfio_path(sys, path, SYSFS_DEVICES "/%s", addr))
		return fail_why(ENAMETOOLONG, why, len, "vfio %s: sysfs path too long", addr);
	fd = sys->open(sys->ctx, path, O_PATH | O_DIRECTORY);
	if (fd == -ENOENT || fd == -ENOTDIR)
		return fail_why(ENOENT, why, len,
				"vfio %s: no such PCI device (" SYSFS_DEVICES "/%s does not exist)",
				addr, addr);
	if (fd < 0)
		return fail_why(-fd, why, len, "vfio %s: " SYSFS_DEVICES "/%s: %s", addr, addr,
				strerror(-fd));
	sys->close(sys->ctx, fd);
	return 0;
}

static int check_driver(const struct vfio_sys *sys, const char *addr, char *why, size_t len)
{
	char dev[VFIO_PATH_LEN], drv[DRIVER_LEN];
	int err;

	snprintf(dev, sizeof(dev), SYSFS_DEVICES "/%s", addr);
	err = driver_of(sys, dev, drv);
	if (err)
		return fail_why(-err, why, len, "vfio %s: %s/driver: %s", addr, dev, strerror(-err));
	if (is_vfio_driver(drv))
		return 0;
	if (!*drv)
		return fail_why(ENXIO, why, len,
				"vfio %s is bound to no driver, not vfio-pci; bind it (as root, after "
				"modprobe vfio-pci): echo vfio-pci > %s/driver_override; "
				"echo %s > /sys/bus/pci/drivers_probe", addr, dev, addr);
	return fail_why(ENXIO, why, len,
			"vfio %s is bound to %s, not vfio-pci; rebind it (as root, after modprobe "
			"vfio-pci): echo vfio-pci > %s/driver_override; echo %s > %s/driver/unbind; "
			"echo %s > /sys/bus/pci/drivers_probe", addr, drv, dev, addr, dev, addr);
}

int vfio_sysfs_check(const struct vfio_sys *sys, const char *addr, int *group, char *why,
		     size_t len)
{
	int err;

	err = check_exists(sys, addr, why, len);
	if (!err)
		err = group_of(sys, addr, group, why, len);
	/* The driver after the group: without an IOMMU vfio-pci cannot bind,
	 * and the advice to bind it would send the user the wrong way. */
	if (!err)
		err = check_driver(sys, addr, why, len);
	if (!err)
		err = check_group_members(sys, addr, *group, why, len);
	return err;
}
