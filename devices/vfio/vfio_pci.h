/* SPDX-License-Identifier: MIT */
/*
 * An assigned device as the guest sees it: a PCI function on the VM's bus.
 *
 * - Configuration space: the device's identity (IDs, class, revision,
 *   subsystem) read from it once; BARs, the command register, the
 *   capability list's links and MSI-X emulated here. The command
 *   register's memory and bus-master bits go to the device too (it needs
 *   bus mastering for DMA). The list is the device's, at its offsets, less
 *   MSI when it has MSI-X: MSI-X emulated with the device's table size,
 *   the others (power
 *   management, PCI Express, vendor-specific) passed through, their
 *   registers read from and written to the device. A device without
 *   MSI-X gets MSI instead, emulated at its offset with one vector. INTx,
 *   the expansion ROM and extended configuration space (0x100 on) are
 *   not offered.
 * - BARs: each memory BAR of the device gets a BAR of its size (at least a
 *   page) in the bus's 32- or 64-bit window, as the device's own BAR says.
 *   Its mmap-able parts are device memory (vm_map_device_memory) at the
 *   address the guest gave the BAR, remapped when the guest moves it or
 *   switches decoding; the rest (the MSI-X table and PBA, or a BAR VFIO
 *   lets nobody map) traps here: the table and PBA are emulated, other
 *   accesses go to the device through its region.
 * - MSI-X: vector i is GSI gsi_base + i with an eventfd VFIO signals and
 *   an irqfd on the GSI; the guest's table decides the GSI's MSI route
 *   (vm_msi_route). MSI-X on in the guest's capability turns VFIO's MSI-X
 *   on with those eventfds; off turns it off.
 */
#ifndef VIBEVMM_DEVICES_VFIO_VFIO_PCI_H
#define VIBEVMM_DEVICES_VFIO_VFIO_PCI_H

#include <stddef.h>

#include "devices/pci/pci.h"
#include "devices/vfio/vfio.h"

struct vm;
struct vfio_pci;

/*
 * The opened device d as a function on bus (added to it), its mmap-able
 * BAR parts mapped into this process. From here on the function owns d
 * (vfio_pci_destroy closes it). 0 and *out, or -errno with one line in
 * why: -EOPNOTSUPP for what is not supported (an I/O BAR, MSI-X table and
 * PBA in different BARs, neither MSI-X nor MSI), -ENOSPC (no room on the bus or in its
 * windows), or the failing call's error.
 */
int vfio_pci_create(struct vm *vm, struct pci_bus *bus, struct vfio_device *d,
		    struct vfio_pci **out, char *why, size_t why_len);

/* Off the bus, MSI-X off, the BARs' device memory unmapped, the device
 * closed, all freed. After the VM stopped running, before its bus goes.
 * NULL is ignored. */
void vfio_pci_destroy(struct vfio_pci *p);

/* The function on the bus (tests). */
struct pci_function *vfio_pci_function(struct vfio_pci *p);

#endif
