/* SPDX-License-Identifier: MIT */
/* MSI-X: capability, vector table and PBA; see msix.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "devices/pci/msix.h"
#include "utils.h"

/* Whether vec's message may be sent: enabled, function not masked,
 * vector not masked. Lock held. */
static bool vector_usable(const struct pci_msix *m, uint16_t vec)
{
	uint16_t ctl = m->ctl;

	return (ctl & PCI_MSIX_FLAGS_ENABLE) && !(ctl & PCI_MSIX_FLAGS_MASKALL) &&
	       !(m->table[vec].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static uint64_t msg_addr(const struct pci_msix_entry *e)
{
	return (uint64_t)e->addr_hi << 32 | e->addr_lo;
}

static bool pending(const struct pci_msix *m, uint16_t vec)
{
	return m->pba[vec / 64] & (1ULL << (vec % 64));
}

static void set_pending(struct pci_msix *m, uint16_t vec, bool on)
{
	if (on)
		m->pba[vec / 64] |= 1ULL << (vec % 64);
	else
		m->pba[vec / 64] &= ~(1ULL << (vec % 64));
}

/* Tell the owner what vec delivers now, if that changed (or `force`:
 * the message changed while usable); a pending vector that became usable
 * fires. Lock held. */
static void refresh(struct pci_msix *m, uint16_t vec, bool force)
{
	bool now = vector_usable(m, vec);
	const struct pci_msix_entry *e = &m->table[vec];

	if (now != m->usable[vec] || (now && force)) {
		m->usable[vec] = now;
		if (m->ops && m->ops->route)
			m->ops->route(m, vec, now, msg_addr(e), e->data);
	}
	if (now && pending(m, vec)) {
		set_pending(m, vec, false);
		if (m->ops && m->ops->fire)
			m->ops->fire(m, vec);
	}
}

int pci_msix_init(struct pci_msix *m, struct pci_function *f, uint16_t nr, int bar,
		  uint32_t table_off, uint32_t pba_off, const struct pci_msix_ops *ops,
		  void *opaque)
{
	uint32_t table_len = (uint32_t)nr * PCI_MSIX_ENTRY_SIZE, pba_len = ALIGN_UP(nr, 64u) / 8;

	memset(m, 0, sizeof(*m));
	if (!nr || nr > PCI_MSIX_MAX_VECTORS || bar < 0 || bar >= PCI_NR_BARS ||
	    (table_off | pba_off) & 7 ||
	    (table_off < pba_off + pba_len && pba_off < table_off + table_len))
		return -EINVAL;
	m->cap = pci_function_add_cap(f, PCI_CAP_ID_MSIX, PCI_MSIX_CAP_SIZE);
	if (!m->cap)
		return -ENOSPC;
	m->table = calloc(nr, sizeof(*m->table));
	m->pba = calloc(ALIGN_UP(nr, 64u) / 64, sizeof(*m->pba));
	m->usable = calloc(nr, sizeof(*m->usable));
	if (!m->table || !m->pba || !m->usable) {
		pci_msix_free(m);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nr; i++)
		m->table[i].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	m->f = f;
	m->ops = ops;
	m->opaque = opaque;
	m->nr = nr;
	m->bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	pthread_mutex_init(&m->lock, NULL);
	pci_cfg_set16(f, m->cap + PCI_MSIX_FLAGS, (uint16_t)(nr - 1));
	pci_cfg_set32(f, m->cap + PCI_MSIX_TABLE, table_off | (uint32_t)bar);
	pci_cfg_set32(f, m->cap + PCI_MSIX_PBA, pba_off | (uint32_t)bar);
	/* The guest switches MSI-X and the function mask; the rest is fixed. */
	f->wmask[m->cap + PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	return 0;
}

void pci_msix_free(struct pci_msix *m)
{
	if (m->f)
		pthread_mutex_destroy(&m->lock);
	free(m->table);
	free(m->pba);
	free(m->usable);
	memset(m, 0, sizeof(*m));
}

static bool in_table(const struct pci_msix *m, uint64_t off)
{
	return off >= m->table_off && off - m->table_off < (uint64_t)m->nr * PCI_MSIX_ENTRY_SIZE;
}

static bool in_pba(const struct pci_msix *m, uint64_t off)
{
	return off >= m->pba_off && off - m->pba_off < ALIGN_UP(m->nr, 64u) / 8;
}

bool pci_msix_owns(const struct pci_msix *m, uint64_t off)
{
	return in_table(m, off) || in_pba(m, off);
}

static bool size_ok(uint64_t off, size_t size)
{
	return (size == 4 || size == 8) && !(off & (size - 1));
}

/* The 32-bit word at `off` of the table or the PBA. Lock held. */
static uint32_t read_word(const struct pci_msix *m, uint64_t off)
{
	if (in_table(m, off)) {
		uint64_t rel = off - m->table_off;
		const uint32_t *e = (const uint32_t *)&m->table[rel / PCI_MSIX_ENTRY_SIZE];

		return e[(rel % PCI_MSIX_ENTRY_SIZE) / 4];
	}
	if (in_pba(m, off)) {
		uint64_t rel = off - m->pba_off;

		return (uint32_t)(m->pba[rel / 8] >> (32 * ((rel % 8) / 4)));
	}
	return 0;
}

void pci_msix_bar_read(struct pci_msix *m, uint64_t off, void *data, size_t size)
{
	uint64_t v = 0;

	if (size_ok(off, size)) {
		pthread_mutex_lock(&m->lock);
		v = read_word(m, off);
		if (size == 8)
			v |= (uint64_t)read_word(m, off + 4) << 32;
		pthread_mutex_unlock(&m->lock);
	}
	memcpy(data, &v, size < sizeof(v) ? size : sizeof(v));
}

/* A table word written (the PBA is read-only). Lock held. */
static void write_word(struct pci_msix *m, uint64_t off, uint32_t v)
{
	uint64_t rel = off - m->table_off;
	uint16_t vec = (uint16_t)(rel / PCI_MSIX_ENTRY_SIZE);
	uint32_t *e = (uint32_t *)&m->table[vec];
	unsigned word = (unsigned)(rel % PCI_MSIX_ENTRY_SIZE) / 4;

	if (!in_table(m, off) || e[word] == v)
		return;
	/* Only the mask bit of Vector Control is writable; the rest reserved. */
	e[word] = word == 3 ? v & PCI_MSIX_ENTRY_CTRL_MASKBIT : v;
	refresh(m, vec, word != 3);
}

void pci_msix_bar_write(struct pci_msix *m, uint64_t off, const void *data, size_t size)
{
	uint64_t v = 0;

	if (!size_ok(off, size))
		return;
	memcpy(&v, data, size);
	pthread_mutex_lock(&m->lock);
	write_word(m, off, (uint32_t)v);
	if (size == 8)
		write_word(m, off + 4, (uint32_t)(v >> 32));
	pthread_mutex_unlock(&m->lock);
}

void pci_msix_config_written(struct pci_msix *m, uint32_t off, uint32_t size)
{
	uint32_t ctl = m->cap + PCI_MSIX_FLAGS;

	if (off > ctl + 1 || off + size <= ctl)
		return; /* not Message Control */
	pthread_mutex_lock(&m->lock);
	m->ctl = pci_cfg_get16(m->f, ctl); /* the bus lock is held: stable */
	for (uint16_t v = 0; v < m->nr; v++)
		refresh(m, v, false);
	pthread_mutex_unlock(&m->lock);
}

void pci_msix_raise(struct pci_msix *m, uint16_t vec)
{
	if (vec >= m->nr)
		return;
	pthread_mutex_lock(&m->lock);
	if (vector_usable(m, vec)) {
		if (m->ops && m->ops->fire)
			m->ops->fire(m, vec);
	} else if (m->ctl & PCI_MSIX_FLAGS_ENABLE) {
		set_pending(m, vec, true);
	}
	pthread_mutex_unlock(&m->lock);
}

bool pci_msix_signal(struct pci_msix *m, uint16_t vec)
{
	bool now;

	if (vec >= m->nr)
		return false;
	pthread_mutex_lock(&m->lock);
	now = vector_usable(m, vec);
	if (!now && (m->ctl & PCI_MSIX_FLAGS_ENABLE))
		set_pending(m, vec, true);
	pthread_mutex_unlock(&m->lock);
	return now;
}

/* ---- snapshots ---- */

/* Message Control's bits the guest sets (the table size is fixed). */
#define CTL_WRITABLE (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)

static size_t pba_words(const struct pci_msix *m)
{
	return ALIGN_UP(m->nr, 64u) / 64;
}

void pci_msix_save(struct pci_msix *m, struct snap_buf *out)
{
	pthread_mutex_lock(&m->lock);
	snap_put_u16(out, m->ctl & CTL_WRITABLE);
	for (uint16_t v = 0; v < m->nr; v++) {
		snap_put_u32(out, m->table[v].addr_lo);
		snap_put_u32(out, m->table[v].addr_hi);
		snap_put_u32(out, m->table[v].data);
		snap_put_u32(out, m->table[v].ctrl);
	}
	for (size_t i = 0; i < pba_words(m); i++)
		snap_put_u64(out, m->pba[i]);
	pthread_mutex_unlock(&m->lock);
}

void pci_msix_saved_free(struct pci_msix_saved *saved)
{
	free(saved->table);
	free(saved->pba);
	saved->table = NULL;
	saved->pba = NULL;
}

/* What the guest can make of the registers, nothing else. */
static bool saved_valid(const struct pci_msix *m, const struct pci_msix_saved *s)
{
	if (s->ctl & ~CTL_WRITABLE)
		return false;
	for (uint16_t v = 0; v < m->nr; v++)
		if (s->table[v].ctrl & ~PCI_MSIX_ENTRY_CTRL_MASKBIT)
			return false;
	if (m->nr % 64 && s->pba[m->nr / 64] >> (m->nr % 64))
		return false; /* bits past the last vector */
	return true;
}

int pci_msix_parse(const struct pci_msix *m, struct snap_cursor *in, struct pci_msix_saved *s)
{
	s->ctl = snap_get_u16(in);
	s->table = calloc(m->nr, sizeof(*s->table));
	s->pba = calloc(pba_words(m), sizeof(*s->pba));
	if (!s->table || !s->pba) {
		pci_msix_saved_free(s);
		return -ENOMEM;
	}
	for (uint16_t v = 0; v < m->nr; v++) {
		s->table[v].addr_lo = snap_get_u32(in);
		s->table[v].addr_hi = snap_get_u32(in);
		s->table[v].data = snap_get_u32(in);
		s->table[v].ctrl = snap_get_u32(in);
	}
	for (size_t i = 0; i < pba_words(m); i++)
		s->pba[i] = snap_get_u64(in);
	if (in->bad || !saved_valid(m, s)) {
		pci_msix_saved_free(s);
		return -EINVAL;
	}
	return 0;
}

void pci_msix_apply(struct pci_msix *m, struct pci_msix_saved *s)
{
	pthread_mutex_lock(&m->lock);
	m->ctl = s->ctl;
	memcpy(m->table, s->table, m->nr * sizeof(*m->table));
	memcpy(m->pba, s->pba, pba_words(m) * sizeof(*m->pba));
	for (uint16_t v = 0; v < m->nr; v++)
		refresh(m, v, true);
	pthread_mutex_unlock(&m->lock);
	pci_msix_saved_free(s);
}
