/* SPDX-License-Identifier: MIT */
/*
 * MSI for a PCI function (PCI Local Bus 3.0, 6.8.1): the capability in
 * configuration space, offering one message and no per-vector masking.
 *
 * One message, because the functions that use it (assigned devices
 * without MSI-X) need no more: Linux then asks for a single vector. No
 * masking, because without it a message only changes when the guest
 * rewrites it, and the owner's route follows every such write (a KVM MSI
 * route is replaced atomically), so no interrupt can fall between an old
 * route and a new one.
 *
 * The function's owner forwards its configuration writes
 * (pci_msi_config_written). Whenever MSI is switched on or off, or its
 * address or data change while on, `route` is called: the owner points
 * the interrupt (KVM: a GSI route and an irqfd) at the message, or takes
 * it away.
 */
#ifndef VIBEVMM_DEVICES_PCI_MSI_H
#define VIBEVMM_DEVICES_PCI_MSI_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/pci/pci.h"

#define PCI_CAP_ID_MSI 0x05
#define PCI_MSI_FLAGS 2               /* Message Control, from the capability */
#define PCI_MSI_FLAGS_ENABLE 0x0001
#define PCI_MSI_FLAGS_QMASK 0x000e    /* messages capable: log2 */
#define PCI_MSI_FLAGS_QSIZE 0x0070    /* messages enabled: log2 */
#define PCI_MSI_FLAGS_64BIT 0x0080
#define PCI_MSI_FLAGS_MASKBIT 0x0100
#define PCI_MSI_ADDRESS_LO 4
#define PCI_MSI_ADDRESS_HI 8          /* 64-bit only */
#define PCI_MSI_DATA_32 8
#define PCI_MSI_DATA_64 12
#define PCI_MSI_CAP_SIZE_32 10
#define PCI_MSI_CAP_SIZE_64 14

struct pci_msi;

struct pci_msi_ops {
	/* The function's interrupt now delivers the message (addr, data), or
	 * nothing (usable false). */
	void (*route)(struct pci_msi *m, bool usable, uint64_t addr, uint32_t data);
};

struct pci_msi {
	struct pci_function *f;
	const struct pci_msi_ops *ops;
	void *opaque;
	uint8_t cap;            /* the capability's offset */
	bool is64;              /* a 64-bit message address */
	bool usable;            /* what `route` was last told */
	uint64_t addr;          /* ... and the message it was told of */
	uint32_t data;
};

/*
 * The capability in f's configuration space, where the next one goes
 * (pci_function_next_cap_at), with a 64-bit message address or a 32-bit
 * one (10 bytes, for a device whose next capability follows closely).
 * MSI starts off. 0 or -ENOSPC (no room for the capability).
 */
int pci_msi_init(struct pci_msi *m, struct pci_function *f, bool is64,
		 const struct pci_msi_ops *ops, void *opaque);

/* After a configuration write (the function's config_write hook). */
void pci_msi_config_written(struct pci_msi *m, uint32_t off, uint32_t size);

/* The capability's size in bytes. */
uint8_t pci_msi_cap_size(const struct pci_msi *m);

#endif
