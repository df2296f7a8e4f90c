/* SPDX-License-Identifier: MIT */
/*
 * Assigning host devices to a VM (`--vfio`): each one opened through VFIO
 * (vfio.h) and made a function on the VM's PCI bus (vfio_pci.h), all in
 * one container, owned by one device the VM destroys: the functions first
 * (their interrupts off, their BARs out of the guest, each device reset
 * and closed), then the container, whose DMA mappings of guest RAM go
 * before the RAM does.
 */
#ifndef VIBEVMM_DEVICES_VFIO_VFIO_ATTACH_H
#define VIBEVMM_DEVICES_VFIO_VFIO_ATTACH_H

#include <stddef.h>

#include "devices/pci/pci.h"
#include "devices/vfio/vfio_sys.h"

struct vm;

/*
 * The n devices `names` (PCI addresses or sysfs paths) on bus, after the
 * VM's RAM exists and before it starts. sys NULL: the host. 0, or -errno
 * with one line in why (what vfio_device_open and vfio_pci_create say);
 * on failure nothing stays open.
 */
int vfio_attach(struct vm *vm, struct pci_bus *bus, const struct vfio_sys *sys,
		const char *const *names, int n, char *why, size_t why_len);

#endif
