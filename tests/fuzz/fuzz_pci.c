/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the PCI bus as a guest drives it (devices/pci/):
 * a bus with its host bridge and one function with two BARs, 5 MSI-X
 * vectors and an MSI capability, then a fuzzer-chosen sequence of accesses to the config ports,
 * ECAM and both BAR windows (any offset, size 1-8, any value): BAR sizing
 * and moves, MSI-X enable/masks/table/PBA, MSI enable and message. ASan/UBSan
 * watch every access; the checks: a BAR is always naturally aligned to its
 * size, MSI-X's `route` is only ever told of vectors that exist, and MSI's
 * only of a change (off when it was on, or a new message).
 *
 * FUZZ_SRCS: devices/pci/pci.c devices/pci/msix.c devices/pci/msi.c core/snapfile.c core/util.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. \
 *     tests/fuzz/fuzz_pci.c devices/pci/pci.c devices/pci/msix.c
 *   ./a.out tests/fuzz/corpus/pci
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci/msi.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci.h"

#define NVEC 5
#define MAX_OPS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What pci.c registers, kept here instead of a VM (core/bus.c). */
static struct device *registered[8];
static int nr_registered;

int vm_register_device(struct vm *vm, struct device *dev)
{
	if (nr_registered == 8)
		return -ENOSPC;
	registered[nr_registered++] = dev;
	dev->vm = vm;
	return 0;
}

struct fn {
	struct pci_function f;
	struct pci_msix m;
	struct pci_msi msi;
	bool msi_on;
	uint64_t msi_addr;
	uint32_t msi_data;
};

static void route(struct pci_msix *m, uint16_t vec, bool usable, uint64_t addr, uint32_t d)
{
	if (vec >= NVEC)
		abort();
}

static void fire(struct pci_msix *m, uint16_t vec)
{
	if (vec >= NVEC)
		abort();
}

static const struct pci_msix_ops mops = { .route = route, .fire = fire };

static void msi_route(struct pci_msi *m, bool usable, uint64_t addr, uint32_t data)
{
	struct fn *t = m->opaque;

	if (usable == t->msi_on && (!usable || (addr == t->msi_addr && data == t->msi_data)))
		abort(); /* told of nothing new */
	if (addr & 3 || data > 0xffff)
		abort();
	t->msi_on = usable;
	t->msi_addr = addr;
	t->msi_data = data;
}

static const struct pci_msi_ops msi_ops = { .route = msi_route };

static int bar_read(struct pci_function *f, int bar, uint64_t off, void *d, size_t size)
{
	struct fn *t = f->opaque;

	if (off >= f->bars[bar].size)
		abort(); /* the window handed over an offset outside the BAR */
	if (bar == 0 && pci_msix_owns(&t->m, off))
		pci_msix_bar_read(&t->m, off, d, size);
	return 0;
}

static int bar_write(struct pci_function *f, int bar, uint64_t off, const void *d, size_t size)
{
	struct fn *t = f->opaque;

	if (off >= f->bars[bar].size)
		abort();
	if (bar == 0 && pci_msix_owns(&t->m, off))
		pci_msix_bar_write(&t->m, off, d, size);
	return 0;
}

static void config_write(struct pci_function *f, uint32_t off, uint32_t size)
{
	pci_msix_config_written(&((struct fn *)f->opaque)->m, off, size);
	pci_msi_config_written(&((struct fn *)f->opaque)->msi, off, size);
}

static void bar_moved(struct pci_function *f, int bar, uint64_t addr, bool on)
{
	if (on && (addr & (f->bars[bar].size - 1)))
		abort();
}

static const struct pci_function_ops fops = {
	.bar_read = bar_read, .bar_write = bar_write, .config_write = config_write,
	.bar_moved = bar_moved,
};

struct op {
	uint8_t target, size;
	uint32_t off, value;
} __attribute__((packed));

static void run_op(const struct op *o)
{
	struct device *d = registered[o->target % nr_registered];
	uint64_t v = o->value, off = o->off % d->size;
	size_t size = (size_t)(o->size % 8) + 1;

	if (off + size > d->size)
		return; /* the bus never hands a device an access past its end */
	if (o->target & 0x80)
		d->write(d, off, &v, size);
	else
		d->read(d, off, &v, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pci_bus *bus;
	struct fn *t = calloc(1, sizeof(*t));
	size_t n = size / sizeof(struct op);

	nr_registered = 0;
	bus = pci_bus_create(NULL, 0xe0000000, 0xc0000000, 0x10000000, 0x140000000, 0x1000000000);
	if (!bus || !t)
		abort();
	pci_function_init(&t->f, 0x1af4, 0x1041, 0x020000, 0, 0);
	t->f.ops = &fops;
	t->f.opaque = t;
	if (pci_function_add_bar(bus, &t->f, 0, PCI_BAR_MEM32, 0x1000, false) ||
	    pci_function_add_bar(bus, &t->f, 2, PCI_BAR_MEM64, 0x4000, true) ||
	    pci_msix_init(&t->m, &t->f, NVEC, 0, 0, 0x800, &mops, t) ||
	    pci_msi_init(&t->msi, &t->f, true, &msi_ops, t) || pci_bus_add(bus, &t->f) < 0)
		abort();
	for (size_t i = 0; i < n && i < MAX_OPS; i++) {
		struct op o;

		memcpy(&o, data + i * sizeof(o), sizeof(o));
		run_op(&o);
	}
	pci_msix_free(&t->m);
	free(t);
	bus->ports.destroy(&bus->ports);
	return 0;
}
