/* SPDX-License-Identifier: MIT */
/* MSI: one message, no masking; see msi.h. */
#include <errno.h>
#include <string.h>

#include "devices/pci/msi.h"

uint8_t pci_msi_cap_size(const struct pci_msi *m)
{
	return m->is64 ? PCI_MSI_CAP_SIZE_64 : PCI_MSI_CAP_SIZE_32;
}

static uint32_t data_offset(const struct pci_msi *m)
{
	return m->cap + (m->is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32);
}

/* What the guest wrote: the enable bit, and the message. */
static bool enabled(const struct pci_msi *m)
{
	return pci_cfg_get16(m->f, m->cap + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE;
}

static uint64_t guest_addr(const struct pci_msi *m)
{
	uint64_t hi = m->is64 ? pci_cfg_get32(m->f, m->cap + PCI_MSI_ADDRESS_HI) : 0;

	return hi << 32 | pci_cfg_get32(m->f, m->cap + PCI_MSI_ADDRESS_LO);
}

int pci_msi_init(struct pci_msi *m, struct pci_function *f, bool is64,
		 const struct pci_msi_ops *ops, void *opaque)
{
	uint8_t cap;

	memset(m, 0, sizeof(*m));
	m->f = f;
	m->ops = ops;
	m->opaque = opaque;
	m->is64 = is64;
	cap = pci_function_add_cap(f, PCI_CAP_ID_MSI, pci_msi_cap_size(m));
	if (!cap)
		return -ENOSPC;
	m->cap = cap;
	/* one message capable (QMASK 0), so enabled stays 0 too: read-only */
	pci_cfg_set16(f, cap + PCI_MSI_FLAGS, is64 ? PCI_MSI_FLAGS_64BIT : 0);
	f->wmask[cap + PCI_MSI_FLAGS] = PCI_MSI_FLAGS_ENABLE;
	/* the address is dword-aligned: its two low bits are zero */
	f->wmask[cap + PCI_MSI_ADDRESS_LO] = 0xfc;
	memset(&f->wmask[cap + PCI_MSI_ADDRESS_LO + 1], 0xff, 3);
	if (is64)
		memset(&f->wmask[cap + PCI_MSI_ADDRESS_HI], 0xff, 4);
	memset(&f->wmask[data_offset(m)], 0xff, 2);
	return 0;
}

void pci_msi_config_written(struct pci_msi *m, uint32_t off, uint32_t size)
{
	bool now;
	uint64_t addr;
	uint32_t data;

	if (!m->f || off >= m->cap + pci_msi_cap_size(m) || off + size <= m->cap)
		return;
	now = enabled(m);
	addr = guest_addr(m);
	data = pci_cfg_get16(m->f, data_offset(m));
	if (now == m->usable && (!now || (addr == m->addr && data == m->data)))
		return;
	m->usable = now;
	m->addr = addr;
	m->data = data;
	if (m->ops && m->ops->route)
		m->ops->route(m, now, addr, data);
}
