/* SPDX-License-Identifier: MIT */
/* The PCI bus: configuration space through the ports and ECAM as Linux
 * uses them, BAR sizing and placement, the BAR windows' dispatch,
 * capabilities. On a VM of a do-nothing backend. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci/msix.h"
#include "devices/pci/pci.h"
#include "hypervisor.h"
#include "vm.h"

#define ECAM 0xe0000000ULL
#define MEM32 0xc0000000ULL
#define MEM32_SIZE 0x10000000ULL
#define MEM64 0x8000000000ULL
#define MEM64_SIZE 0x4000000000ULL

static int fake_vm_create(struct vm *vm) { return 0; }
static void fake_vm_destroy(struct vm *vm) { }

static const struct hypervisor_ops fake_ops = {
	.name = "fake", .vm_create = fake_vm_create, .vm_destroy = fake_vm_destroy,
};

/* A function that remembers what reached its BARs. */
struct testfn {
	struct pci_function f;
	int reads, writes, last_bar;
	uint64_t last_off;
	uint32_t last_value;
	int moves;
	uint64_t moved_to;
	bool moved_enabled;
	uint32_t config_writes;
};

static int tf_read(struct pci_function *f, int bar, uint64_t off, void *data, size_t size)
{
	struct testfn *t = f->opaque;
	uint32_t v = 0xa0000000u | (uint32_t)bar << 24 | (uint32_t)off;

	t->reads++;
	t->last_bar = bar;
	t->last_off = off;
	memcpy(data, &v, size < 4 ? size : 4);
	return 0;
}

static int tf_write(struct pci_function *f, int bar, uint64_t off, const void *data, size_t size)
{
	struct testfn *t = f->opaque;

	t->writes++;
	t->last_bar = bar;
	t->last_off = off;
	t->last_value = 0;
	memcpy(&t->last_value, data, size < 4 ? size : 4);
	return 0;
}

static void tf_moved(struct pci_function *f, int bar, uint64_t addr, bool enabled)
{
	struct testfn *t = f->opaque;

	t->moves++;
	t->moved_to = addr;
	t->moved_enabled = enabled;
}

static void tf_config_write(struct pci_function *f, uint32_t off, uint32_t size)
{
	((struct testfn *)f->opaque)->config_writes++;
}

static const struct pci_function_ops tf_ops = {
	.bar_read = tf_read, .bar_write = tf_write, .bar_moved = tf_moved,
	.config_write = tf_config_write,
};

struct fx {
	struct vm *vm;
	struct pci_bus *bus;
	struct testfn t;
	int slot;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->vm = vm_create_on(&fake_ops);
	assert_non_null(x->vm);
	x->bus = pci_bus_create(x->vm, ECAM, MEM32, MEM32_SIZE, MEM64, MEM64_SIZE);
	assert_non_null(x->bus);
	pci_function_init(&x->t.f, 0x1af4, 0x1042, 0x010000, 0x1af4, 0x0002);
	x->t.f.ops = &tf_ops;
	x->t.f.opaque = &x->t;
	assert_int_equal(pci_function_add_bar(x->bus, &x->t.f, 0, PCI_BAR_MEM32, 0x4000, false), 0);
	assert_int_equal(pci_function_add_bar(x->bus, &x->t.f, 2, PCI_BAR_MEM64, 0x100000, true), 0);
	x->slot = pci_bus_add(x->bus, &x->t.f);
	assert_int_equal(x->slot, 1);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	vm_destroy(x->vm);
	free(x);
	return 0;
}

/* ---- the two ways in, as Linux's pci_conf1 and ECAM accessors use them ---- */

static struct device *dev_at(struct fx *x, enum device_space sp, uint64_t addr)
{
	struct device *d = vm_find_device(x->vm, sp, addr);

	assert_non_null(d);
	return d;
}

static uint32_t port_cfg_read(struct fx *x, unsigned slot, uint32_t reg, unsigned size)
{
	struct device *d = dev_at(x, DEVICE_PIO, 0xcf8);
	uint32_t a = 0x80000000u | slot << 11 | (reg & 0xfc), v = 0;

	assert_int_equal(d->write(d, 0, &a, 4), 0);
	assert_int_equal(d->read(d, 4 + (reg & 3), &v, size), 0);
	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void port_cfg_write(struct fx *x, unsigned slot, uint32_t reg, unsigned size, uint32_t v)
{
	struct device *d = dev_at(x, DEVICE_PIO, 0xcf8);
	uint32_t a = 0x80000000u | slot << 11 | (reg & 0xfc);

	assert_int_equal(d->write(d, 0, &a, 4), 0);
	assert_int_equal(d->write(d, 4 + (reg & 3), &v, size), 0);
}

static uint32_t ecam_read(struct fx *x, unsigned slot, uint32_t reg, unsigned size)
{
	struct device *d = dev_at(x, DEVICE_MMIO, ECAM);
	uint32_t v = 0;

	assert_int_equal(d->read(d, (uint64_t)slot << 15 | reg, &v, size), 0);
	return v;
}

static void ecam_write(struct fx *x, unsigned slot, uint32_t reg, unsigned size, uint32_t v)
{
	struct device *d = dev_at(x, DEVICE_MMIO, ECAM);

	assert_int_equal(d->write(d, (uint64_t)slot << 15 | reg, &v, size), 0);
}

static void test_ids_through_ports_and_ecam(void **state)
{
	struct fx *x = *state;

	/* the host bridge at 00:00.0, class 06 00 00 */
	assert_int_equal(port_cfg_read(x, 0, PCI_VENDOR_ID, 4), 0x00081b36);
	assert_int_equal(ecam_read(x, 0, PCI_CLASS_DEVICE, 2), 0x0600);
	/* the function at 00:01.0, byte, word and dword reads alike */
	assert_int_equal(port_cfg_read(x, 1, PCI_VENDOR_ID, 4), 0x10421af4);
	assert_int_equal(port_cfg_read(x, 1, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(port_cfg_read(x, 1, PCI_CLASS_DEVICE + 1, 1), 0x01);
	assert_int_equal(ecam_read(x, 1, PCI_SUBSYSTEM_ID, 2), 0x0002);
	/* nothing at 00:02.0, nor at 00:01.1: all ones */
	assert_int_equal(port_cfg_read(x, 2, PCI_VENDOR_ID, 4), 0xffffffff);
	assert_int_equal(ecam_read(x, 1, (1 << 12) | PCI_VENDOR_ID, 2), 0xffff);
	/* a disabled CONFIG_ADDRESS reads nothing */
	struct device *d = dev_at(x, DEVICE_PIO, 0xcf8);
	uint32_t a = 1 << 11, v = 0;

	assert_int_equal(d->write(d, 0, &a, 4), 0);
	assert_int_equal(d->read(d, 4, &v, 4), 0);
	assert_int_equal(v, 0xffffffff);
	a = 0;
	assert_int_equal(d->read(d, 0, &a, 4), 0);
	assert_int_equal(a, 1 << 11); /* the latch reads back */
}

static void test_read_only_and_write_one_to_clear(void **state)
{
	struct fx *x = *state;

	ecam_write(x, 1, PCI_VENDOR_ID, 4, 0x12345678); /* IDs are read-only */
	assert_int_equal(ecam_read(x, 1, PCI_VENDOR_ID, 4), 0x10421af4);
	ecam_write(x, 1, PCI_COMMAND, 2, 0xffff); /* only decode, master, INTx off */
	assert_int_equal(ecam_read(x, 1, PCI_COMMAND, 2),
			 PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			 PCI_COMMAND_INTX_DISABLE);
	x->t.f.cfg[PCI_STATUS + 1] = 0x80; /* a parity error was detected */
	ecam_write(x, 1, PCI_STATUS, 2, 0x8000);
	assert_int_equal(ecam_read(x, 1, PCI_STATUS, 2) & 0x8000, 0);
	port_cfg_write(x, 1, PCI_INTERRUPT_LINE, 1, 0x0b); /* through the ports too */
	assert_int_equal(ecam_read(x, 1, PCI_INTERRUPT_LINE, 1), 0x0b);
	/* unaligned and odd sizes are dropped */
	ecam_write(x, 1, PCI_INTERRUPT_LINE + 1, 2, 0xffff);
	assert_int_equal(ecam_read(x, 1, PCI_INTERRUPT_PIN, 1), 0);
	assert_true(x->t.config_writes >= 3);
}

static void test_bar_sizing_and_placement(void **state)
{
	struct fx *x = *state;
	uint32_t bar0 = ecam_read(x, 1, PCI_BASE_ADDRESS_0, 4);
	uint32_t bar2 = ecam_read(x, 1, PCI_BASE_ADDRESS_0 + 8, 4);
	uint32_t bar3 = ecam_read(x, 1, PCI_BASE_ADDRESS_0 + 12, 4);

	/* placed as firmware would, each in its window, naturally aligned */
	assert_int_equal(bar0, MEM32);
	assert_int_equal(bar2, (uint32_t)MEM64 | PCI_BAR_MEM_64 | PCI_BAR_PREFETCH);
	assert_int_equal(bar3, (uint32_t)(MEM64 >> 32));
	assert_int_equal(ecam_read(x, 1, PCI_BASE_ADDRESS_0 + 4, 4), 0); /* unused */
	/* Linux's sizing: all ones written, the size mask read, put back */
	ecam_write(x, 1, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	assert_int_equal(ecam_read(x, 1, PCI_BASE_ADDRESS_0, 4), 0xffffc000);
	ecam_write(x, 1, PCI_BASE_ADDRESS_0, 4, bar0);
	ecam_write(x, 1, PCI_BASE_ADDRESS_0 + 8, 4, 0xffffffff);
	ecam_write(x, 1, PCI_BASE_ADDRESS_0 + 12, 4, 0xffffffff);
	assert_int_equal(ecam_read(x, 1, PCI_BASE_ADDRESS_0 + 8, 4),
			 0xfff00000 | PCI_BAR_MEM_64 | PCI_BAR_PREFETCH);
	assert_int_equal(ecam_read(x, 1, PCI_BASE_ADDRESS_0 + 12, 4), 0xffffffff);
	ecam_write(x, 1, PCI_BASE_ADDRESS_0 + 8, 4, bar2);
	ecam_write(x, 1, PCI_BASE_ADDRESS_0 + 12, 4, bar3);
	assert_int_equal(x->t.f.bars[2].addr, MEM64);
	/* a second function's BARs go after the first's */
	struct testfn u = { 0 };

	pci_function_init(&u.f, 0x1af4, 0x1041, 0x020000, 0, 0);
	assert_int_equal(pci_function_add_bar(x->bus, &u.f, 0, PCI_BAR_MEM32, 0x1000, false), 0);
	assert_int_equal(u.f.bars[0].addr, MEM32 + 0x4000);
	/* bad BARs */
	assert_int_equal(pci_function_add_bar(x->bus, &u.f, 1, PCI_BAR_MEM32, 0x3000, false),
			 -EINVAL);
	assert_int_equal(pci_function_add_bar(x->bus, &u.f, 5, PCI_BAR_MEM64, 0x1000, false),
			 -EINVAL);
	assert_int_equal(pci_function_add_bar(x->bus, &u.f, 0, PCI_BAR_MEM32, 0x1000, false),
			 -EINVAL); /* taken */
	assert_int_equal(pci_function_add_bar(x->bus, &u.f, 1, PCI_BAR_MEM32, 1ULL << 31, false),
			 -ENOSPC);
}

static int window_access(struct fx *x, uint64_t addr, bool write, uint32_t *v)
{
	struct device *d = vm_find_device(x->vm, DEVICE_MMIO, addr);

	assert_non_null(d);
	return write ? d->write(d, addr - d->base, v, 4) : d->read(d, addr - d->base, v, 4);
}

static void test_bar_dispatch_follows_decoding_and_moves(void **state)
{
	struct fx *x = *state;
	uint32_t v = 0;

	/* memory decoding off (as at reset): nothing answers */
	assert_int_equal(window_access(x, MEM32 + 0x10, false, &v), -ENODEV);
	assert_int_equal(x->t.reads, 0);
	ecam_write(x, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(x->t.moves, 2); /* both BARs now decode */
	assert_true(x->t.moved_enabled);
	assert_int_equal(window_access(x, MEM32 + 0x10, false, &v), 0);
	assert_int_equal(v, 0xa0000010);
	v = 0x55aa;
	assert_int_equal(window_access(x, MEM64 + 0xff000, true, &v), 0);
	assert_int_equal(x->t.last_bar, 2);
	assert_int_equal(x->t.last_off, 0xff000);
	assert_int_equal(x->t.last_value, 0x55aa);
	/* past the BAR: nobody */
	assert_int_equal(window_access(x, MEM32 + 0x4000, false, &v), -ENODEV);
	/* the guest moves BAR 0: told, and it answers only at the new place */
	x->t.moves = 0;
	ecam_write(x, 1, PCI_BASE_ADDRESS_0, 4, (uint32_t)MEM32 + 0x100000);
	assert_int_equal(x->t.moves, 1);
	assert_int_equal(x->t.moved_to, MEM32 + 0x100000);
	assert_int_equal(window_access(x, MEM32 + 0x10, false, &v), -ENODEV);
	assert_int_equal(window_access(x, MEM32 + 0x100020, false, &v), 0);
	assert_int_equal(v, 0xa0000020);
	/* sizing with decoding on: the BAR is out of the window meanwhile */
	ecam_write(x, 1, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	assert_false(x->t.moved_enabled);
	assert_int_equal(window_access(x, MEM32 + 0x100020, false, &v), -ENODEV);
	/* decoding off: told for both */
	ecam_write(x, 1, PCI_BASE_ADDRESS_0, 4, (uint32_t)MEM32);
	x->t.moves = 0;
	ecam_write(x, 1, PCI_COMMAND, 2, 0);
	assert_int_equal(x->t.moves, 2);
	assert_false(x->t.moved_enabled);
}

static void test_capability_list(void **state)
{
	struct fx *x = *state;
	struct testfn u = { 0 };
	uint8_t a, b;

	pci_function_init(&u.f, 0x1af4, 0x1041, 0x020000, 0, 0);
	a = pci_function_add_cap(&u.f, 0x11, 12); /* MSI-X */
	b = pci_function_add_cap(&u.f, 0x09, 16); /* vendor-specific */
	assert_int_equal(a, PCI_STD_HEADER_SIZE);
	assert_int_equal(b, PCI_STD_HEADER_SIZE + 12);
	assert_int_equal(pci_bus_add(x->bus, &u.f), 2);
	assert_true(ecam_read(x, 2, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_int_equal(ecam_read(x, 2, PCI_CAPABILITY_LIST, 1), a);
	assert_int_equal(ecam_read(x, 2, a, 1), 0x11);
	assert_int_equal(ecam_read(x, 2, a + 1, 1), b);
	assert_int_equal(ecam_read(x, 2, b, 1), 0x09);
	assert_int_equal(ecam_read(x, 2, b + 1, 1), 0);
	/* the list ends within the 256-byte space */
	assert_int_equal(pci_function_add_cap(&u.f, 0x09, 200), 0);
	/* no list at all: the status bit is off */
	assert_false(ecam_read(x, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
}

static void test_slots_run_out(void **state)
{
	struct fx *x = *state;
	static struct pci_function many[PCI_SLOTS];
	int last = 0;

	for (int i = 0; i < PCI_SLOTS; i++) {
		pci_function_init(&many[i], 0x1af4, 0x1000, 0, 0, 0);
		int s = pci_bus_add(x->bus, &many[i]);

		if (s < 0) {
			assert_int_equal(s, -ENOSPC);
			break;
		}
		last = s;
	}
	assert_int_equal(last, PCI_SLOTS - 1);
}

/* ---- MSI-X ---- */

#define NVEC 3
#define TABLE_OFF 0x0
#define PBA_OFF 0x800

struct msix_fn {
	struct pci_function f;
	struct pci_msix m;
	int routes, fires, last_vec;
	bool last_usable;
	uint64_t last_addr;
	uint32_t last_data;
};

static void mx_route(struct pci_msix *m, uint16_t vec, bool usable, uint64_t addr, uint32_t data)
{
	struct msix_fn *t = m->opaque;

	t->routes++;
	t->last_vec = vec;
	t->last_usable = usable;
	t->last_addr = addr;
	t->last_data = data;
}

static void mx_fire(struct pci_msix *m, uint16_t vec)
{
	struct msix_fn *t = m->opaque;

	t->fires++;
	t->last_vec = vec;
}

static const struct pci_msix_ops mx_ops = { .route = mx_route, .fire = mx_fire };

static int mx_bar_read(struct pci_function *f, int bar, uint64_t off, void *data, size_t size)
{
	struct msix_fn *t = f->opaque;

	if (!pci_msix_owns(&t->m, off))
		return -EINVAL;
	pci_msix_bar_read(&t->m, off, data, size);
	return 0;
}

static int mx_bar_write(struct pci_function *f, int bar, uint64_t off, const void *data,
			size_t size)
{
	struct msix_fn *t = f->opaque;

	if (!pci_msix_owns(&t->m, off))
		return -EINVAL;
	pci_msix_bar_write(&t->m, off, data, size);
	return 0;
}

static void mx_config_write(struct pci_function *f, uint32_t off, uint32_t size)
{
	pci_msix_config_written(&((struct msix_fn *)f->opaque)->m, off, size);
}

static const struct pci_function_ops mx_fn_ops = {
	.bar_read = mx_bar_read, .bar_write = mx_bar_write, .config_write = mx_config_write,
};

/* A function with NVEC vectors in BAR 0, on slot 2, memory decoding on. */
static struct msix_fn *msix_function(struct fx *x)
{
	struct msix_fn *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	pci_function_init(&t->f, 0x1af4, 0x1041, 0x020000, 0, 0);
	t->f.ops = &mx_fn_ops;
	t->f.opaque = t;
	assert_int_equal(pci_function_add_bar(x->bus, &t->f, 0, PCI_BAR_MEM32, 0x1000, false), 0);
	assert_int_equal(pci_msix_init(&t->m, &t->f, NVEC, 0, TABLE_OFF, PBA_OFF, &mx_ops, t), 0);
	assert_int_equal(pci_bus_add(x->bus, &t->f), 2);
	ecam_write(x, 2, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	return t;
}

static void msix_free(struct msix_fn *t)
{
	pci_msix_free(&t->m);
	free(t);
}

static uint32_t bar_rd(struct fx *x, struct msix_fn *t, uint64_t off)
{
	uint32_t v = 0;

	assert_int_equal(window_access(x, t->f.bars[0].addr + off, false, &v), 0);
	return v;
}

static void bar_wr(struct fx *x, struct msix_fn *t, uint64_t off, uint32_t v)
{
	assert_int_equal(window_access(x, t->f.bars[0].addr + off, true, &v), 0);
}

static void msix_ctl(struct fx *x, struct msix_fn *t, uint16_t v)
{
	ecam_write(x, 2, t->m.cap + PCI_MSIX_FLAGS, 2, v);
}

static void test_msix_capability(void **state)
{
	struct fx *x = *state;
	struct msix_fn *t = msix_function(x);
	uint8_t cap = (uint8_t)ecam_read(x, 2, PCI_CAPABILITY_LIST, 1);

	assert_int_equal(cap, t->m.cap);
	assert_int_equal(ecam_read(x, 2, cap, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(ecam_read(x, 2, cap + PCI_MSIX_FLAGS, 2), NVEC - 1);
	assert_int_equal(ecam_read(x, 2, cap + PCI_MSIX_TABLE, 4), TABLE_OFF | 0);
	assert_int_equal(ecam_read(x, 2, cap + PCI_MSIX_PBA, 4), PBA_OFF | 0);
	/* the table size is read-only; enable and function mask are not */
	msix_ctl(x, t, 0xffff);
	assert_int_equal(ecam_read(x, 2, cap + PCI_MSIX_FLAGS, 2),
			 PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL | (NVEC - 1));
	/* every vector starts masked, its message empty */
	for (int v = 0; v < NVEC; v++) {
		assert_int_equal(bar_rd(x, t, TABLE_OFF + 16 * v + 12), PCI_MSIX_ENTRY_CTRL_MASKBIT);
		assert_int_equal(bar_rd(x, t, TABLE_OFF + 16 * v + 8), 0);
	}
	assert_int_equal(t->routes, 0);
	/* init's bad arguments */
	struct pci_msix bad;

	assert_int_equal(pci_msix_init(&bad, &t->f, 0, 0, 0, 0x800, &mx_ops, NULL), -EINVAL);
	assert_int_equal(pci_msix_init(&bad, &t->f, 4, 0, 0, 0x20, &mx_ops, NULL), -EINVAL);
	assert_int_equal(pci_msix_init(&bad, &t->f, 4, 0, 4, 0x800, &mx_ops, NULL), -EINVAL);
	msix_free(t);
}

static void test_msix_routes_follow_enable_and_masks(void **state)
{
	struct fx *x = *state;
	struct msix_fn *t = msix_function(x);

	/* Linux's order: program the entry, unmask, then enable */
	bar_wr(x, t, TABLE_OFF + 0, 0xfee01000);
	bar_wr(x, t, TABLE_OFF + 4, 0);
	bar_wr(x, t, TABLE_OFF + 8, 0x4041);
	bar_wr(x, t, TABLE_OFF + 12, 0);
	assert_int_equal(t->routes, 0); /* MSI-X still off */
	msix_ctl(x, t, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(t->routes, 1);
	assert_true(t->last_usable);
	assert_int_equal(t->last_vec, 0);
	assert_int_equal(t->last_addr, 0xfee01000);
	assert_int_equal(t->last_data, 0x4041);
	assert_true(pci_msix_signal(&t->m, 0));
	/* a new message while usable: routed again */
	bar_wr(x, t, TABLE_OFF + 8, 0x4042);
	assert_int_equal(t->routes, 2);
	assert_int_equal(t->last_data, 0x4042);
	/* the function mask takes it away, and gives it back */
	msix_ctl(x, t, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	assert_int_equal(t->routes, 3);
	assert_false(t->last_usable);
	assert_false(pci_msix_signal(&t->m, 0));
	msix_ctl(x, t, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(t->routes, 4);
	assert_true(t->last_usable);
	assert_int_equal(t->fires, 1); /* raised while masked: sent at unmask */
	/* vector control's reserved bits stay zero */
	bar_wr(x, t, TABLE_OFF + 16 + 12, 0xfffffffe);
	assert_int_equal(bar_rd(x, t, TABLE_OFF + 16 + 12), 0);
	/* disabling takes every usable vector away */
	t->routes = 0;
	msix_ctl(x, t, 0);
	assert_int_equal(t->routes, 2); /* vectors 0 and 1 (unmasked above) */
	assert_false(pci_msix_signal(&t->m, 1)); /* off: not even pending */
	assert_int_equal(bar_rd(x, t, PBA_OFF), 0);
	msix_free(t);
}

static void test_msix_pending_bit(void **state)
{
	struct fx *x = *state;
	struct msix_fn *t = msix_function(x);

	msix_ctl(x, t, PCI_MSIX_FLAGS_ENABLE);
	bar_wr(x, t, TABLE_OFF + 32 + 8, 0x4043);
	assert_false(pci_msix_signal(&t->m, 2)); /* masked */
	assert_int_equal(bar_rd(x, t, PBA_OFF), 1u << 2);
	bar_wr(x, t, PBA_OFF, 0); /* the PBA is read-only */
	assert_int_equal(bar_rd(x, t, PBA_OFF), 1u << 2);
	assert_int_equal(t->fires, 0);
	bar_wr(x, t, TABLE_OFF + 32 + 12, 0); /* unmask: routed, then fired */
	assert_int_equal(t->fires, 1);
	assert_int_equal(t->last_vec, 2);
	assert_int_equal(bar_rd(x, t, PBA_OFF), 0);
	assert_false(pci_msix_signal(&t->m, NVEC)); /* no such vector */
	/* odd-sized or misaligned accesses read zero and change nothing */
	uint16_t half = 0xffff;
	struct device *d = vm_find_device(x->vm, DEVICE_MMIO, t->f.bars[0].addr);

	assert_int_equal(d->read(d, t->f.bars[0].addr - d->base + TABLE_OFF + 32 + 8, &half, 2), 0);
	assert_int_equal(half, 0);
	assert_int_equal(bar_rd(x, t, TABLE_OFF + 32 + 8), 0x4043);
	msix_free(t);
}

/* pci_msix_raise: fired at once when usable, else pending (if enabled). */
static void test_msix_raise(void **state)
{
	struct fx *x = *state;
	struct msix_fn *t = msix_function(x);

	pci_msix_raise(&t->m, 0); /* MSI-X off: dropped */
	assert_int_equal(t->fires, 0);
	assert_int_equal(bar_rd(x, t, PBA_OFF), 0);
	msix_ctl(x, t, PCI_MSIX_FLAGS_ENABLE);
	bar_wr(x, t, TABLE_OFF + 12, 0);
	pci_msix_raise(&t->m, 0);
	assert_int_equal(t->fires, 1);
	assert_int_equal(t->last_vec, 0);
	pci_msix_raise(&t->m, 1); /* masked: pending */
	assert_int_equal(t->fires, 1);
	assert_int_equal(bar_rd(x, t, PBA_OFF), 1u << 1);
	bar_wr(x, t, TABLE_OFF + 16 + 12, 0);
	assert_int_equal(t->fires, 2);
	assert_int_equal(t->last_vec, 1);
	pci_msix_raise(&t->m, NVEC); /* no such vector */
	assert_int_equal(t->fires, 2);
	msix_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ids_through_ports_and_ecam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_and_write_one_to_clear, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing_and_placement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_dispatch_follows_decoding_and_moves, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_capability_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_run_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_capability, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_routes_follow_enable_and_masks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_msix_pending_bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_raise, setup, teardown),
	};

	return cmocka_run_group_tests_name("pci", tests, NULL, NULL);
}
