/* SPDX-License-Identifier: MIT */
/*
 * What the files of devices/vfio/ share: the container, its groups and
 * devices, the sysfs checks, and the one way errors are reported.
 */
#ifndef VIBEVMM_DEVICES_VFIO_VFIO_INTERNAL_H
#define VIBEVMM_DEVICES_VFIO_VFIO_INTERNAL_H

#include <linux/vfio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/vfio/vfio.h"

/* "dddd:bb:dd.f" and its NUL, with room for a wider domain (VMD's). */
#define VFIO_ADDR_LEN 24
#define VFIO_PATH_LEN 512
/* The regions a PCI device is opened with: BARs 0-5, ROM, config. */
#define VFIO_DEV_REGIONS (VFIO_PCI_CONFIG_REGION_INDEX + 1)

struct vfio_group {
	int id;                /* /dev/vfio/<id> */
	int fd;
	unsigned users;        /* devices open in it */
	struct vfio_group *next;
};

/* A guest RAM slot, mapped for DMA at iova = its guest-physical address. */
struct vfio_dma {
	uint64_t iova, size;
	void *vaddr;
	bool mapped;
};

struct vfio_container {
	const struct vfio_sys *sys;
	int fd;                /* /dev/vfio/vfio; -1 until the first device */
	int iommu_type;        /* VFIO_TYPE1v2_IOMMU, or VFIO_TYPE1_IOMMU without v2 */
	bool iommu_set;        /* VFIO_SET_IOMMU done: while a group is attached */
	struct vfio_dma dma[MM_MAX_SLOTS];
	int nr_dma;
	struct vfio_group *groups;
	struct vfio_device *devices;
};

struct vfio_device {
	struct vfio_container *c;
	struct vfio_group *group;
	struct vfio_device *next;  /* the container's list */
	char addr[VFIO_ADDR_LEN];
	int fd;
	uint32_t flags;            /* VFIO_DEVICE_FLAGS_* */
	uint32_t num_regions, num_irqs;
	struct vfio_region regions[VFIO_DEV_REGIONS];
	uint32_t msix_count, msi_count;
	bool msix_on, msi_on;
};

/* The system call helpers: ioctl with a pointer or with a value. */
int vfio_ioctl_ptr(const struct vfio_sys *sys, int fd, unsigned long req, void *arg);
int vfio_ioctl_val(const struct vfio_sys *sys, int fd, unsigned long req, unsigned long arg);

/* `root` + the path printf makes, into buf[VFIO_PATH_LEN]. 0 or -ENAMETOOLONG. */
int vfio_path(const struct vfio_sys *sys, char *buf, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- vfio_sysfs.c ---- */

/* `name` (address or sysfs path) as "dddd:bb:dd.f" in addr. 0 or -EINVAL. */
int vfio_parse_address(const char *name, char addr[VFIO_ADDR_LEN]);

/*
 * The device exists, is bound to vfio-pci, has an IOMMU group, and every
 * other device in the group is one the kernel lets a VFIO group hold:
 * *group gets the group's number. 0 or -errno with the reason in why.
 */
int vfio_sysfs_check(const struct vfio_sys *sys, const char *addr, int *group, char *why,
		     size_t len);

/* ---- vfio_container.c ---- */

/*
 * Group `id` in the container (opened and joined now, or shared with a
 * device already in it), the container's IOMMU set and guest RAM mapped
 * for DMA when it is the first group. 0 and *out, or -errno and why.
 */
int vfio_container_attach(struct vfio_container *c, const char *addr, int id,
			  struct vfio_group **out, char *why, size_t len);

/* A device of g is gone: g leaves the container with its last one (guest
 * RAM unmapped first if g was the last group). */
void vfio_container_detach(struct vfio_container *c, struct vfio_group *g);

#endif
