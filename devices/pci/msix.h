/* SPDX-License-Identifier: MIT */
/*
 * MSI-X for a PCI function (PCI Local Bus 3.0, 6.8.2): the capability in
 * configuration space, the vector table and the pending-bit array (PBA)
 * in one of the function's memory BARs.
 *
 * The function's owner forwards the BAR accesses that fall in the table or
 * the PBA (pci_msix_bar_read/_write) and its configuration writes
 * (pci_msix_config_written). Whenever a vector becomes usable (MSI-X
 * enabled, the function not masked, the vector not masked) or stops being
 * usable, or its address or data change while usable, `route` is called:
 * the owner points the vector's interrupt (KVM: a GSI route and an irqfd)
 * at the message, or takes it away. pci_msix_signal raises a vector: it
 * says whether the message may be sent now; a masked vector's interrupt is
 * kept pending in the PBA and sent (the owner's `fire`) when unmasked.
 */
#ifndef VIBEVMM_DEVICES_PCI_MSIX_H
#define VIBEVMM_DEVICES_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/pci/pci.h"

#define PCI_CAP_ID_MSIX 0x11
#define PCI_MSIX_CAP_SIZE 12
#define PCI_MSIX_FLAGS 2           /* Message Control, from the capability */
#define PCI_MSIX_FLAGS_QSIZE 0x7ff /* table size - 1 */
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_TABLE 4           /* Table Offset/BIR */
#define PCI_MSIX_PBA 8             /* PBA Offset/BIR */
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1
#define PCI_MSIX_MAX_VECTORS 2048

struct snap_buf;
struct snap_cursor;

struct pci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct pci_msix;

struct pci_msix_ops {
	/* Vector `vec` now delivers the message (addr, data), or nothing
	 * (usable false). Called with the MSI-X lock held: it must not call
	 * back into this struct. */
	void (*route)(struct pci_msix *m, uint16_t vec, bool usable, uint64_t addr, uint32_t data);
	/* A pending vector was unmasked: send its message now. */
	void (*fire)(struct pci_msix *m, uint16_t vec);
};

struct pci_msix {
	struct pci_function *f;
	const struct pci_msix_ops *ops;
	void *opaque;
	uint8_t cap;                   /* the capability's offset */
	uint16_t nr;                   /* vectors */
	int bar;                       /* the BAR of both table and PBA */
	uint32_t table_off, pba_off;   /* in that BAR */
	pthread_mutex_t lock;
	uint16_t ctl;                  /* Message Control as last written */
	struct pci_msix_entry *table;
	uint64_t *pba;
	bool *usable;                  /* what `route` was last told */
};

/*
 * The capability in f's configuration space and the table and PBA at
 * `table_off` and `pba_off` of BAR `bar` (8-byte aligned, not
 * overlapping; the BAR is the owner's). Every vector starts masked.
 * 0, -EINVAL, -ENOSPC (no room for the capability) or -ENOMEM.
 */
int pci_msix_init(struct pci_msix *m, struct pci_function *f, uint16_t nr, int bar,
		  uint32_t table_off, uint32_t pba_off, const struct pci_msix_ops *ops,
		  void *opaque);
void pci_msix_free(struct pci_msix *m);

/* Whether the BAR offset is the table's or the PBA's. */
bool pci_msix_owns(const struct pci_msix *m, uint64_t off);
/* A guest access there: 4- or 8-byte aligned accesses (others read as
 * zero and are dropped, as the spec leaves them undefined). */
void pci_msix_bar_read(struct pci_msix *m, uint64_t off, void *data, size_t size);
void pci_msix_bar_write(struct pci_msix *m, uint64_t off, const void *data, size_t size);
/* After a configuration write (the function's config_write hook). */
void pci_msix_config_written(struct pci_msix *m, uint32_t off, uint32_t size);

/* Raise vector vec: true when its message may go now; false when it is
 * not usable (then, if MSI-X is enabled, it is pending until unmasked). */
bool pci_msix_signal(struct pci_msix *m, uint16_t vec);

/* The same, sending the message through the owner's `fire` when it may go
 * now, under the MSI-X lock: a mask the guest sets meanwhile (Linux masks
 * a vector while it rewrites the message) waits for it, so the interrupt
 * goes out on the route it was raised for, or stays pending, never lost
 * in between. */
void pci_msix_raise(struct pci_msix *m, uint16_t vec);

/*
 * Snapshots: the vector table, the PBA and Message Control as the guest
 * left them (u16 control's enable and function-mask bits, then per vector
 * u32 address low and high, data, vector control, then the PBA's u64
 * words). pci_msix_parse checks a payload against this function (its
 * vector count, reserved bits) into *saved (allocated; freed by
 * pci_msix_saved_free); pci_msix_apply puts it in place and routes every
 * usable vector, as after the guest wrote it all.
 */
struct pci_msix_saved {
	uint16_t ctl;
	struct pci_msix_entry *table;
	uint64_t *pba;
};

void pci_msix_save(struct pci_msix *m, struct snap_buf *out);
int pci_msix_parse(const struct pci_msix *m, struct snap_cursor *in, struct pci_msix_saved *saved);
void pci_msix_apply(struct pci_msix *m, struct pci_msix_saved *saved);
void pci_msix_saved_free(struct pci_msix_saved *saved);

#endif
