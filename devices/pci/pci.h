/* SPDX-License-Identifier: MIT */
/*
 * A PCI bus (segment 0, bus 0) with type-0 functions: configuration space
 * through the legacy ports (CONFIG_ADDRESS 0xcf8, CONFIG_DATA 0xcfc) and
 * through ECAM (4 KiB per function), BARs the guest sizes and places in
 * the bus's windows, and the capability list.
 *
 * The bus registers four struct devices with the VM: the port pair, the
 * ECAM window, and the 32- and 64-bit memory windows BARs live in. An
 * access to a window goes to the function whose BAR (as the guest has
 * programmed it, memory decoding on) holds the address, so a guest moving
 * a BAR changes no registration; a function that must follow its BARs
 * (ioeventfds, mapped device memory) gets ops->bar_moved.
 *
 * Each function's configuration space is 4 KiB of bytes the guest reads,
 * with a mask of the bits it may write and a mask of those a written 1
 * clears. BARs are handled here (sizing, placement); ops->config_write
 * sees every write after it took effect, for capabilities with side
 * effects (MSI-X enable and mask).
 */
#ifndef VIBEVMM_DEVICES_PCI_PCI_H
#define VIBEVMM_DEVICES_PCI_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices.h"

#define PCI_SLOTS 32
#define PCI_CFG_SIZE 4096     /* PCIe's extended configuration space */
#define PCI_ECAM_SIZE (PCI_SLOTS * 8 * PCI_CFG_SIZE) /* bus 0: 1 MiB */
#define PCI_NR_BARS 6

/* Standard header offsets and bits (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_HEADER_TYPE 0x0e
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_STD_HEADER_SIZE 0x40

#define PCI_BAR_IO 0x1
#define PCI_BAR_MEM_64 0x4
#define PCI_BAR_PREFETCH 0x8

enum pci_bar_kind {
	PCI_BAR_NONE = 0,
	PCI_BAR_MEM32,
	PCI_BAR_MEM64, /* takes two BAR registers: idx and idx + 1 */
};

struct pci_bar {
	enum pci_bar_kind kind;
	uint64_t size;  /* a power of two, at least 4 KiB */
	bool prefetch;
	uint64_t addr;  /* where the guest put it (what the register says) */
};

struct pci_function;

struct pci_function_ops {
	/* An access inside BAR `bar` (offset from its start). 0 or -errno
	 * (a read then returns all ones). */
	int (*bar_read)(struct pci_function *f, int bar, uint64_t off, void *data, size_t size);
	int (*bar_write)(struct pci_function *f, int bar, uint64_t off, const void *data,
			 size_t size);
	/* After the guest's write of `size` bytes at `off` took effect
	 * (optional). */
	void (*config_write)(struct pci_function *f, uint32_t off, uint32_t size);
	/* A read of `size` bytes at `off`, *v holding them as config space
	 * has them: the function may put others there, such as a device's
	 * own registers it passes through (optional; bus lock held). */
	void (*config_read)(struct pci_function *f, uint32_t off, uint32_t size, uint32_t *v);
	/* BAR `bar` now decodes at `addr`, or at nothing (addr 0, enabled
	 * false): memory decoding switched or the BAR moved (optional). */
	void (*bar_moved)(struct pci_function *f, int bar, uint64_t addr, bool enabled);
};

struct pci_function {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may change */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits a written 1 clears */
	struct pci_bar bars[PCI_NR_BARS];
	const struct pci_function_ops *ops;
	void *opaque;
	struct pci_bus *bus;
	uint8_t slot;
	uint8_t next_cap_free;         /* where the next capability goes */
	uint8_t *last_cap_next;        /* the "next" byte to link a new one */
};

struct pci_window {
	uint64_t base, size;
	uint64_t next; /* where the next BAR goes at start */
};

struct pci_bus {
	struct vm *vm;
	struct pci_function host;      /* 00:00.0, the host bridge */
	struct pci_function *slots[PCI_SLOTS];
	pthread_mutex_t lock;          /* config space and BAR placement */
	uint32_t config_address;       /* the 0xcf8 latch */
	struct pci_window mem32, mem64;
	struct device ports, ecam, win32, win64;
	/* GSIs for MSI-X vectors (pci_bus_alloc_msi_gsis): the machine sets
	 * the arch's MSI range [msi_gsi_next, msi_gsi_end); empty: none. */
	uint32_t msi_gsi_next, msi_gsi_end;
};

/*
 * A bus with ECAM at `ecam_base` and the two BAR windows; its devices are
 * registered with vm (vm_register_device). Its host bridge (00:00.0) is
 * added here. NULL with errno set on failure. Freed by vm_destroy (the
 * ports device owns the bus).
 */
struct pci_bus *pci_bus_create(struct vm *vm, uint64_t ecam_base, uint64_t mem32_base,
			       uint64_t mem32_size, uint64_t mem64_base, uint64_t mem64_size);

/* A function's header: IDs, class (base << 16 | sub << 8 | prog-if). */
void pci_function_init(struct pci_function *f, uint16_t vendor, uint16_t device,
		       uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys);

/* A memory BAR (size a power of two >= 4 KiB), placed in its window now
 * (mem32 or mem64) as firmware would. 0, -EINVAL or -ENOSPC. Before the
 * function is added. */
int pci_function_add_bar(struct pci_bus *bus, struct pci_function *f, int bar,
			 enum pci_bar_kind kind, uint64_t size, bool prefetch);

/* A capability of `len` bytes (header included) with ID `id`, linked into
 * the list: its offset in config space, or 0 when it does not fit. */
uint8_t pci_function_add_cap(struct pci_function *f, uint8_t id, uint8_t len);
/* The next capability added (by pci_function_add_cap, or pci_msix_init)
 * goes at `off` (a dword offset in 0x40..0xfc), where an assigned device
 * has it; the list stays in the order they are added. */
void pci_function_next_cap_at(struct pci_function *f, uint8_t off);

/* Into the first free slot (1 and up): the slot, or -ENOSPC. The bus
 * does not own f. Before vm_start. */
int pci_bus_add(struct pci_bus *bus, struct pci_function *f);

/* Take f out of its slot again (a device whose creation failed after
 * pci_bus_add). Before vm_start. */
void pci_bus_remove(struct pci_bus *bus, struct pci_function *f);

/* `n` consecutive GSIs of the bus's MSI range: the first in *first, or
 * -ENOSPC. They are never given back (the VM is short-lived). */
int pci_bus_alloc_msi_gsis(struct pci_bus *bus, uint32_t n, uint32_t *first);

/* Configuration access as the ports and ECAM make it (bus lock taken):
 * `size` 1, 2 or 4 at an offset aligned to it. A missing function reads
 * as all ones and ignores writes. */
uint32_t pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t off,
			 unsigned size);
void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t off,
		      unsigned size, uint32_t value);

/* Little-endian helpers on config space, for functions' own setup. */
void pci_cfg_set8(struct pci_function *f, uint32_t off, uint8_t v);
void pci_cfg_set16(struct pci_function *f, uint32_t off, uint16_t v);
void pci_cfg_set32(struct pci_function *f, uint32_t off, uint32_t v);
uint16_t pci_cfg_get16(const struct pci_function *f, uint32_t off);
uint32_t pci_cfg_get32(const struct pci_function *f, uint32_t off);

#endif
