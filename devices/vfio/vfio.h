/* SPDX-License-Identifier: MIT */
/*
 * The host side of VFIO device assignment: a PCI device bound to vfio-pci
 * opened for a guest, its guest RAM mapped for the device's DMA, and the
 * helpers the guest-facing PCI function needs (regions, configuration
 * space, BAR mappings, MSI-X eventfds, reset).
 *
 * One container per VM (struct vfio_container): it holds the VM's IOMMU
 * context, so every assigned device, whatever its IOMMU group, sees guest
 * RAM at the same addresses (iova = guest-physical address, mapped once
 * when the first group joins, unmapped when the last one leaves). Each
 * group (/dev/vfio/N) is opened once and shared by its devices.
 *
 * All host access goes through a struct vfio_sys (vfio_sys.h), so the
 * whole of it runs in unit tests against a fake kernel. Not thread-safe:
 * devices are opened and closed while the VM is built and torn down, by
 * one thread.
 *
 * Errors are -errno with one line for the user in `why`:
 *   -EINVAL  not a PCI address or sysfs path; a malformed kernel answer
 *   -ENOENT  no such PCI device
 *   -ENODEV  no IOMMU (no IOMMU group, no /dev/vfio/vfio, no type-1
 *            IOMMU backend); not a vfio-pci device
 *   -ENXIO   the device is not bound to vfio-pci (the commands to bind it)
 *   -EPERM   its IOMMU group holds a device not bound to vfio-pci
 *   -ENOMEM  RLIMIT_MEMLOCK below guest RAM (how much is needed)
 *   -EBUSY   another process has the group
 *   -EEXIST  the device is already open in this container
 *   or the failing call's own errno.
 */
#ifndef VIBEVMM_DEVICES_VFIO_VFIO_H
#define VIBEVMM_DEVICES_VFIO_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/vfio/vfio_region.h"
#include "devices/vfio/vfio_sys.h"
#include "mm.h"

struct vfio_container;
struct vfio_device;

/*
 * A container for a VM whose guest RAM is `ram`'s slots (copied now;
 * mapped for DMA when the first device opens). sys NULL: the host's
 * system calls. Opens nothing yet. NULL when out of memory.
 */
struct vfio_container *vfio_container_create(const struct vfio_sys *sys,
					     const struct mem_map *ram);

/* Close every device still open in it (vfio_device_close), then the
 * container. NULL is ignored. */
void vfio_container_destroy(struct vfio_container *c);

/*
 * Open the device `name` for assignment: a PCI address ("0000:00:04.0",
 * or "00:04.0" for domain 0) or its sysfs directory
 * ("/sys/bus/pci/devices/0000:00:04.0"). Checks it and its IOMMU group,
 * joins the group to the container (mapping guest RAM for DMA if it is the
 * first), reads the device's regions and interrupts and resets it when it
 * can be reset. 0 and *out, or -errno and the reason in why.
 */
int vfio_device_open(struct vfio_container *c, const char *name, struct vfio_device **out,
		     char *why, size_t why_len);

/*
 * Undo vfio_device_open: MSI-X and MSI off, BAR mappings gone, the device reset,
 * its fd closed; its group leaves the container when it was the group's
 * last device (guest RAM unmapped first when it was the last group).
 * NULL is ignored.
 */
void vfio_device_close(struct vfio_device *d);

/* The device's address, normalised ("0000:00:04.0"). */
const char *vfio_device_address(const struct vfio_device *d);

/* Its IOMMU group's number. */
int vfio_device_group(const struct vfio_device *d);

/* Region `index` (VFIO_PCI_BAR0_REGION_INDEX .. VFIO_PCI_CONFIG_REGION_INDEX);
 * NULL beyond. A region of size 0 is not implemented by the device. */
const struct vfio_region *vfio_device_region(const struct vfio_device *d, unsigned index);

/* MSI-X vectors the device has (0: none, or not signalled by eventfd);
 * the same for MSI. */
uint32_t vfio_device_msix_count(const struct vfio_device *d);
uint32_t vfio_device_msi_count(const struct vfio_device *d);

/* Whether VFIO_DEVICE_RESET is supported; the reset. 0 or -errno
 * (-ENOTTY when not supported). */
bool vfio_device_can_reset(const struct vfio_device *d);
int vfio_device_reset(struct vfio_device *d);

/*
 * mmap every mmap-able area of region `index` (the sparse areas, which
 * leave out the MSI-X table, or the whole region), shared, with the
 * region's read/write permissions; each area's `map` then says where.
 * Unmapped by vfio_device_close. 0, -EINVAL (not mmap-able, or an area not
 * page-aligned), -EALREADY, or mmap's error (nothing left mapped).
 */
int vfio_device_map_region(struct vfio_device *d, unsigned index);

/* `len` bytes at `off` in region `index`, through the device fd. 0,
 * -EINVAL (outside the region or not readable/writable), -EIO (short), or
 * the call's error. */
int vfio_region_read(struct vfio_device *d, unsigned index, uint64_t off, void *buf, size_t len);
int vfio_region_write(struct vfio_device *d, unsigned index, uint64_t off, const void *buf,
		      size_t len);

/* The same in configuration space (VFIO_PCI_CONFIG_REGION_INDEX). */
int vfio_config_read(struct vfio_device *d, uint32_t off, void *buf, size_t len);
int vfio_config_write(struct vfio_device *d, uint32_t off, const void *buf, size_t len);

/*
 * MSI-X on, vectors 0 .. n-1 signalling the caller's eventfds (-1: a
 * vector left unconnected), n at most vfio_device_msix_count. Called again
 * while on, it replaces the set (vfio-pci cannot grow it in place: the
 * caller disables first when n grows). The caller keeps the eventfds
 * (KVM irqfds on MSI routes) and closes them after vfio_msix_disable.
 * 0, -EINVAL, or the kernel's error.
 */
int vfio_msix_enable(struct vfio_device *d, const int32_t *eventfds, uint32_t n);
int vfio_msix_disable(struct vfio_device *d);
/* While on: vector vec signals `eventfd` from now on (the others stay).
 * 0, -EINVAL (MSI-X off, no such vector), or the kernel's error. */
int vfio_msix_set_vector(struct vfio_device *d, uint32_t vec, int32_t eventfd);

/*
 * MSI on with one vector signalling the caller's eventfd (vfio-pci then
 * programs the device's own MSI capability); off. Not while MSI-X is on.
 * 0, -EINVAL (no MSI, or MSI-X on), or the kernel's error.
 */
int vfio_msi_enable(struct vfio_device *d, int32_t eventfd);
int vfio_msi_disable(struct vfio_device *d);

#endif
