/* SPDX-License-Identifier: MIT */
/*
 * virtio-pci (devices/virtio/pci.c) driven as Linux's virtio_pci driver
 * drives it: through configuration space (ECAM) and the function's BAR in
 * the bus's 64-bit window. A fake hypervisor backend records what reaches
 * KVM on the real one (irqfds, MSI routes, ioeventfds); its guest RAM is a
 * malloc'd buffer and the I/O thread is started by hand. The device is
 * virtio-rng, the simplest one with a queue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/snapfile.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci.h"
#include "devices/virtio/virtio.h"
#include "utils.h"
#include "vm.h"

#define WAIT_MS 20000
#define RAM_SIZE (8u << 20)
#define QSZ 16
#define DESC_GPA 0x100000ULL
#define AVAIL_GPA 0x101000ULL
#define USED_GPA 0x102000ULL
#define DATA_GPA 0x200000ULL

#define ECAM 0xe0000000ULL
#define MEM32 0xc0000000ULL
#define MEM32_SIZE 0x10000000ULL
#define MEM64 0x8000000000ULL
#define MEM64_SIZE 0x4000000000ULL
#define MSI_GSI_BASE 24
#define SLOT 1

#define F_VERSION_1 (1ULL << 32)
#define ST_DRIVER_UP (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER)
#define NO_VECTOR 0xffff

/* the common configuration (virtio 1.2, 4.1.4.3) */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX_CONFIG 0x10
#define CC_NUM_QUEUES 0x12
#define CC_STATUS 0x14
#define CC_CFG_GENERATION 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX_VECTOR 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC 0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

/* ---- the fake backend ---- */

#define MAX_IRQFDS 8

struct fake_hv {
	struct { uint32_t gsi; int fd; } irqfd[MAX_IRQFDS];
	int nr_irqfds;
	int routes;
	uint32_t route_gsi;
	bool route_usable;
	uint64_t route_addr;
	uint32_t route_data;
	int ioeventfds, ioeventfd_dels;
	uint64_t ioeventfd_addr, ioeventfd_del_addr;
	uint32_t ioeventfd_len;
};

static int fake_vm_create(struct vm *vm) { return 0; }
static void fake_vm_destroy(struct vm *vm) { }
static int fake_set_memory(struct vm *vm, uint32_t slot, uint64_t gpa,
			   void *hva, uint64_t size) { return 0; }
static int fake_irqchip(struct vm *vm) { return 0; }
static int fake_irq_line(struct vm *vm, uint32_t gsi, int level) { return 0; }

static int fake_irqfd(struct vm *vm, uint32_t gsi, int fd)
{
	struct fake_hv *h = vm->private;

	if (h->nr_irqfds == MAX_IRQFDS)
		return -ENOSPC;
	h->irqfd[h->nr_irqfds].gsi = gsi;
	h->irqfd[h->nr_irqfds].fd = fd;
	h->nr_irqfds++;
	return 0;
}

static int fake_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr,
			  uint32_t data)
{
	struct fake_hv *h = vm->private;

	h->routes++;
	h->route_gsi = gsi;
	h->route_usable = usable;
	h->route_addr = addr;
	h->route_data = data;
	return 0;
}

static int fake_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, int pio, int fd,
			  int datamatch, uint64_t value)
{
	struct fake_hv *h = vm->private;

	h->ioeventfds++;
	h->ioeventfd_addr = addr;
	h->ioeventfd_len = len;
	return 0;
}

static int fake_ioeventfd_del(struct vm *vm, uint64_t addr, uint32_t len, int pio, int fd,
			      int datamatch, uint64_t value)
{
	struct fake_hv *h = vm->private;

	h->ioeventfd_dels++;
	h->ioeventfd_del_addr = addr;
	return 0;
}

static const struct hypervisor_ops fake_ops = {
	.name = "fake", .vm_create = fake_vm_create, .vm_destroy = fake_vm_destroy,
	.set_memory = fake_set_memory, .create_irqchip = fake_irqchip,
	.irq_line = fake_irq_line, .irqfd = fake_irqfd, .msi_route = fake_msi_route,
	.ioeventfd = fake_ioeventfd, .ioeventfd_del = fake_ioeventfd_del,
};

/* ---- fixture: a VM, a PCI bus, virtio-rng on it ---- */

struct fx {
	struct vm *vm;
	uint8_t *ram;
	struct fake_hv hv;
	struct pci_bus *bus;
	struct device *dev;
	bool io_started;
	/* found by walking the capability list */
	uint8_t msix_cap;
	uint32_t common, notify, isr, device, notify_mult;
	bool have_device_cap;
	uint32_t table, pba;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ram = aligned_alloc(4096, RAM_SIZE);
	memset(f->ram, 0, RAM_SIZE);
	f->vm = vm_create_on(&fake_ops);
	assert_non_null(f->vm);
	f->vm->private = &f->hv;
	f->vm->log_level = LOG_NONE;
	assert_int_equal(vm_create_irqchip(f->vm), 0);
	assert_int_equal(vm_add_memory(f->vm, 0, f->ram, RAM_SIZE), 0);
	f->bus = pci_bus_create(f->vm, ECAM, MEM32, MEM32_SIZE, MEM64, MEM64_SIZE);
	assert_non_null(f->bus);
	f->bus->msi_gsi_next = MSI_GSI_BASE;
	f->bus->msi_gsi_end = MSI_GSI_BASE + 64;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->io_started)
		io_thread_stop(f->vm);
	vm_destroy(f->vm);
	free(f->ram);
	free(f);
	return 0;
}

/* ---- configuration space and BAR, as the guest reaches them ---- */

static uint32_t cfg_rd(struct fx *f, uint32_t off, unsigned size)
{
	struct device *d = vm_find_device(f->vm, DEVICE_MMIO, ECAM);
	uint32_t v = 0;

	assert_non_null(d);
	assert_int_equal(d->read(d, (uint64_t)SLOT << 15 | off, &v, size), 0);
	return v;
}

static void cfg_wr(struct fx *f, uint32_t off, unsigned size, uint32_t v)
{
	struct device *d = vm_find_device(f->vm, DEVICE_MMIO, ECAM);

	assert_non_null(d);
	assert_int_equal(d->write(d, (uint64_t)SLOT << 15 | off, &v, size), 0);
}

static uint64_t bar_addr(struct fx *f)
{
	return (cfg_rd(f, PCI_BASE_ADDRESS_0, 4) & ~0xfull) |
	       (uint64_t)cfg_rd(f, PCI_BASE_ADDRESS_0 + 4, 4) << 32;
}

/* An access of `size` bytes at `off` of the BAR: the window's return. */
static int bar_access(struct fx *f, uint64_t off, bool write, void *data, size_t size)
{
	uint64_t addr = bar_addr(f) + off;
	struct device *d = vm_find_device(f->vm, DEVICE_MMIO, addr);

	assert_non_null(d);
	return write ? d->write(d, addr - d->base, data, size) :
		       d->read(d, addr - d->base, data, size);
}

static uint64_t rd(struct fx *f, uint64_t off, size_t size)
{
	uint64_t v = 0;

	assert_int_equal(bar_access(f, off, false, &v, size), 0);
	return v;
}

static void wr(struct fx *f, uint64_t off, size_t size, uint64_t v)
{
	assert_int_equal(bar_access(f, off, true, &v, size), 0);
}

/* The common configuration's registers. */
static uint64_t cc_rd(struct fx *f, uint32_t reg, size_t size)
{
	return rd(f, f->common + reg, size);
}

static void cc_wr(struct fx *f, uint32_t reg, size_t size, uint64_t v)
{
	wr(f, f->common + reg, size, v);
}

/* What Linux's virtio_pci_find_capability does: walk the list. */
static void find_caps(struct fx *f)
{
	unsigned seen = 0;

	assert_true(cfg_rd(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (uint8_t at = (uint8_t)cfg_rd(f, PCI_CAPABILITY_LIST, 1); at;
	     at = (uint8_t)cfg_rd(f, at + 1, 1)) {
		uint8_t id = (uint8_t)cfg_rd(f, at, 1);

		assert_true(++seen < 16); /* the list ends */
		if (id == PCI_CAP_ID_MSIX) {
			f->msix_cap = at;
			f->table = cfg_rd(f, at + PCI_MSIX_TABLE, 4);
			f->pba = cfg_rd(f, at + PCI_MSIX_PBA, 4);
			continue;
		}
		assert_int_equal(id, 0x09); /* vendor-specific */
		assert_int_equal(cfg_rd(f, at + 4, 1), 0); /* BAR 0 */
		uint32_t off = cfg_rd(f, at + 8, 4), len = cfg_rd(f, at + 12, 4);

		switch (cfg_rd(f, at + 3, 1)) {
		case 1: f->common = off; assert_true(len >= 0x38); break;
		case 2:
			f->notify = off;
			assert_int_equal(cfg_rd(f, at + 2, 1), 20);
			f->notify_mult = cfg_rd(f, at + 16, 4);
			break;
		case 3: f->isr = off; assert_true(len >= 1); break;
		case 4: f->device = off; f->have_device_cap = true; break;
		default: fail_msg("unknown cfg_type %u", cfg_rd(f, at + 3, 1));
		}
	}
	assert_int_not_equal(f->msix_cap, 0);
	assert_int_not_equal(f->notify, 0);
	assert_int_not_equal(f->isr, 0);
	assert_int_equal(f->table & 7, 0); /* BIR 0 */
	assert_int_equal(f->pba & 7, 0);
}

/* virtio-rng on the bus, as the VM is built: decoding off. */
static void create_rng(struct fx *f)
{
	const struct virtio_slot slot = { .pci = f->bus };

	f->dev = virtio_rng_create_in(f->vm, &slot);
	assert_non_null(f->dev);
	assert_int_equal(vm_register_device(f->vm, f->dev), 0);
	find_caps(f);
}

/* virtio-rng on the bus, memory decoding on, its capabilities found. */
static void add_rng(struct fx *f)
{
	create_rng(f);
	cfg_wr(f, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* MSI-X entry `vec`: message (addr, data), masked or not. */
static void msix_entry(struct fx *f, unsigned vec, uint64_t addr, uint32_t data, bool masked)
{
	uint32_t e = f->table + 16 * vec;

	wr(f, e, 4, (uint32_t)addr);
	wr(f, e + 4, 4, (uint32_t)(addr >> 32));
	wr(f, e + 8, 4, data);
	wr(f, e + 12, 4, masked);
}

static void msix_enable(struct fx *f, uint16_t ctl)
{
	cfg_wr(f, f->msix_cap + PCI_MSIX_FLAGS, 2, ctl);
}

/* vector vec's eventfd (the irqfd the transport wired to its GSI) */
static int vector_fd(struct fx *f, unsigned vec)
{
	for (int i = 0; i < f->hv.nr_irqfds; i++)
		if (f->hv.irqfd[i].gsi == MSI_GSI_BASE + vec)
			return f->hv.irqfd[i].fd;
	fail_msg("no irqfd for vector %u", vec);
	return -1;
}

/* How often the vector fired since the last look (its eventfd's count). */
static uint64_t fired(struct fx *f, unsigned vec)
{
	uint64_t n = 0;

	if (read(vector_fd(f, vec), &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static bool wait_fired(struct fx *f, unsigned vec)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (fired(f, vec))
			return true;
		usleep(1000);
	}
	return false;
}

static void negotiate(struct fx *f)
{
	uint64_t offered;

	cc_wr(f, CC_STATUS, 1, 0);
	cc_wr(f, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP);
	cc_wr(f, CC_DFSELECT, 4, 1);
	offered = cc_rd(f, CC_DF, 4) << 32;
	cc_wr(f, CC_DFSELECT, 4, 0);
	offered |= cc_rd(f, CC_DF, 4);
	assert_true(offered & F_VERSION_1);
	/* VERSION_1 only: without EVENT_IDX every used buffer interrupts */
	cc_wr(f, CC_GFSELECT, 4, 0);
	cc_wr(f, CC_GF, 4, 0);
	cc_wr(f, CC_GFSELECT, 4, 1);
	cc_wr(f, CC_GF, 4, 1);
	assert_int_equal(cc_rd(f, CC_GF, 4), 1);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	assert_true(cc_rd(f, CC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
}

static void setup_queue(struct fx *f, uint16_t vector)
{
	cc_wr(f, CC_Q_SELECT, 2, 0);
	assert_true(cc_rd(f, CC_Q_SIZE, 2) >= QSZ);
	cc_wr(f, CC_Q_SIZE, 2, QSZ);
	cc_wr(f, CC_Q_MSIX_VECTOR, 2, vector);
	assert_int_equal(cc_rd(f, CC_Q_MSIX_VECTOR, 2), vector);
	/* 64-bit addresses as Linux writes them: two 32-bit halves */
	cc_wr(f, CC_Q_DESC, 4, (uint32_t)DESC_GPA);
	cc_wr(f, CC_Q_DESC + 4, 4, 0);
	cc_wr(f, CC_Q_DRIVER, 4, (uint32_t)AVAIL_GPA);
	cc_wr(f, CC_Q_DRIVER + 4, 4, 0);
	cc_wr(f, CC_Q_DEVICE, 4, (uint32_t)USED_GPA);
	cc_wr(f, CC_Q_DEVICE + 4, 4, 0);
	assert_int_equal(cc_rd(f, CC_Q_DRIVER, 4), (uint32_t)AVAIL_GPA);
	cc_wr(f, CC_Q_ENABLE, 2, 1);
	assert_int_equal(cc_rd(f, CC_Q_ENABLE, 2), 1);
}

/* ---- the guest's rings ---- */

static struct virtq_used *gused(struct fx *f)
{
	return (struct virtq_used *)(f->ram + USED_GPA);
}

static void post_buffer(struct fx *f, uint16_t head, uint32_t len)
{
	struct virtq_desc *d = (struct virtq_desc *)(f->ram + DESC_GPA);
	struct virtq_avail *a = (struct virtq_avail *)(f->ram + AVAIL_GPA);

	d[head] = (struct virtq_desc){ DATA_GPA + 0x1000u * head, len, VIRTQ_DESC_F_WRITE, 0 };
	a->ring[a->idx % QSZ] = head;
	__atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
}

static bool wait_used(struct fx *f, uint16_t want)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (__atomic_load_n(&gused(f)->idx, __ATOMIC_ACQUIRE) == want)
			return true;
		usleep(1000);
	}
	return false;
}

/* The driver's notify: a 16-bit write of the queue index at its address. */
static void kick(struct fx *f, unsigned q)
{
	uint32_t off = (uint32_t)cc_rd(f, CC_Q_NOTIFY_OFF, 2);

	wr(f, f->notify + off * f->notify_mult, 2, q);
}

static void start_io(struct fx *f)
{
	assert_int_equal(io_thread_start(f->vm), 0);
	f->io_started = true;
}

/* ---- tests ---- */

static void test_identity_and_capabilities(void **state)
{
	struct fx *f = *state;

	add_rng(f);
	assert_int_equal(cfg_rd(f, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_rd(f, PCI_DEVICE_ID, 2), 0x1040 + VIRTIO_ID_RNG);
	assert_int_equal(cfg_rd(f, PCI_REVISION_ID, 1), 1);
	assert_int_equal(cfg_rd(f, PCI_REVISION_ID, 4) >> 8, 0x00ff00);
	assert_int_equal(cfg_rd(f, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_rd(f, PCI_SUBSYSTEM_ID, 2), VIRTIO_ID_RNG);
	assert_int_equal(cfg_rd(f, PCI_INTERRUPT_PIN, 1), 0); /* MSI-X only */
	/* one 64-bit memory BAR in the 64-bit window */
	assert_int_equal(cfg_rd(f, PCI_BASE_ADDRESS_0, 4) & 0x7, PCI_BAR_MEM_64);
	assert_true(bar_addr(f) >= MEM64 && bar_addr(f) < MEM64 + MEM64_SIZE);
	/* rng has no configuration: no device structure */
	assert_false(f->have_device_cap);
	assert_int_equal(f->notify_mult, 4);
	/* two vectors: the configuration's and the queue's */
	assert_int_equal(cfg_rd(f, f->msix_cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE, 1);
	assert_int_equal(cc_rd(f, CC_NUM_QUEUES, 2), 1);
	assert_int_equal(cc_rd(f, CC_MSIX_CONFIG, 2), NO_VECTOR);
	cc_wr(f, CC_Q_SELECT, 2, 0);
	assert_int_equal(cc_rd(f, CC_Q_MSIX_VECTOR, 2), NO_VECTOR);
	assert_int_equal(cc_rd(f, CC_Q_NOTIFY_OFF, 2), 0);
	cc_wr(f, CC_Q_SELECT, 2, 1); /* no such queue: size 0 */
	assert_int_equal(cc_rd(f, CC_Q_SIZE, 2), 0);
	/* an irqfd per vector, on GSIs of the MSI range */
	assert_int_equal(f->hv.nr_irqfds, 2);
	assert_int_equal(f->hv.irqfd[0].gsi, MSI_GSI_BASE);
	/* decoding on: the notify address got its ioeventfd */
	assert_int_equal(f->hv.ioeventfds, 1);
	assert_int_equal(f->hv.ioeventfd_addr, bar_addr(f) + f->notify);
	assert_int_equal(f->hv.ioeventfd_len, 2);
}

static void test_features_and_status(void **state)
{
	struct fx *f = *state;

	add_rng(f);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP);
	/* no VERSION_1: FEATURES_OK refused, and DRIVER_OK with it */
	cc_wr(f, CC_GFSELECT, 4, 1);
	cc_wr(f, CC_GF, 4, 0);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	assert_false(cc_rd(f, CC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_DRIVER_OK);
	assert_false(cc_rd(f, CC_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK);
	/* a feature not offered */
	cc_wr(f, CC_GF, 4, 1 | 1u << 8);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	assert_false(cc_rd(f, CC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
	negotiate(f);
	/* settled: later writes change nothing */
	cc_wr(f, CC_GFSELECT, 4, 1);
	cc_wr(f, CC_GF, 4, 0);
	assert_int_equal(cc_rd(f, CC_GF, 4), 1);
	/* the device's words past 1 are zero */
	cc_wr(f, CC_DFSELECT, 4, 2);
	assert_int_equal(cc_rd(f, CC_DF, 4), 0);
	assert_int_equal(cc_rd(f, CC_CFG_GENERATION, 1), 0);
}

static void test_queue_notify_and_msix(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = f->ram + DATA_GPA;
	bool nonzero = false;

	add_rng(f);
	start_io(f);
	negotiate(f);
	/* Linux's order: entries, then MSI-X enabled, then the vectors named */
	msix_entry(f, 0, 0xfee00000, 0x4021, false);
	msix_entry(f, 1, 0xfee01000, 0x4022, false);
	assert_int_equal(f->hv.routes, 0); /* MSI-X still off */
	msix_enable(f, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(f->hv.routes, 2);
	assert_int_equal(f->hv.route_gsi, MSI_GSI_BASE + 1);
	assert_true(f->hv.route_usable);
	assert_int_equal(f->hv.route_addr, 0xfee01000);
	assert_int_equal(f->hv.route_data, 0x4022);
	cc_wr(f, CC_MSIX_CONFIG, 2, 0);
	assert_int_equal(cc_rd(f, CC_MSIX_CONFIG, 2), 0);
	setup_queue(f, 1);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(cc_rd(f, CC_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK);

	/* a request, kicked at the notify address: consumed, vector 1 fires */
	post_buffer(f, 0, 64);
	kick(f, 0);
	assert_true(wait_used(f, 1));
	assert_int_equal(gused(f)->ring[0].len, 64);
	for (int i = 0; i < 64; i++)
		nonzero |= buf[i] != 0;
	assert_true(nonzero);
	assert_true(wait_fired(f, 1));
	assert_int_equal(fired(f, 0), 0); /* not the configuration's */

	/* masked: the interrupt waits in the PBA, goes at unmask */
	f->hv.routes = 0;
	wr(f, f->table + 16 + 12, 4, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	assert_int_equal(f->hv.routes, 1);
	assert_false(f->hv.route_usable);
	post_buffer(f, 1, 32);
	kick(f, 0);
	assert_true(wait_used(f, 2));
	for (int i = 0; i < WAIT_MS && !(rd(f, f->pba, 4) & 2); i++)
		usleep(1000);
	assert_int_equal(rd(f, f->pba, 4), 2);
	assert_int_equal(fired(f, 1), 0);
	wr(f, f->table + 16 + 12, 4, 0);
	assert_true(f->hv.route_usable);
	assert_int_equal(fired(f, 1), 1);
	assert_int_equal(rd(f, f->pba, 4), 0);

	/* the function mask does the same for every vector */
	msix_enable(f, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	post_buffer(f, 2, 16);
	kick(f, 0);
	assert_true(wait_used(f, 3));
	for (int i = 0; i < WAIT_MS && !(rd(f, f->pba, 4) & 2); i++)
		usleep(1000);
	assert_int_equal(fired(f, 1), 0);
	msix_enable(f, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(fired(f, 1), 1);

	/* no vector for the queue: no interrupt at all */
	cc_wr(f, CC_STATUS, 1, 0);
	memset(f->ram + DESC_GPA, 0, 0x3000);
	negotiate(f);
	setup_queue(f, NO_VECTOR);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	post_buffer(f, 0, 8);
	kick(f, 0);
	assert_true(wait_used(f, 1));
	usleep(20000);
	assert_int_equal(fired(f, 1), 0);
	assert_int_equal(fired(f, 0), 0);
}

static void test_bad_vectors_refused(void **state)
{
	struct fx *f = *state;

	add_rng(f);
	negotiate(f);
	cc_wr(f, CC_MSIX_CONFIG, 2, 2); /* the table has vectors 0 and 1 */
	assert_int_equal(cc_rd(f, CC_MSIX_CONFIG, 2), NO_VECTOR);
	cc_wr(f, CC_MSIX_CONFIG, 2, 0x7ff);
	assert_int_equal(cc_rd(f, CC_MSIX_CONFIG, 2), NO_VECTOR);
	cc_wr(f, CC_MSIX_CONFIG, 2, 1);
	assert_int_equal(cc_rd(f, CC_MSIX_CONFIG, 2), 1);
	cc_wr(f, CC_Q_SELECT, 2, 0);
	cc_wr(f, CC_Q_MSIX_VECTOR, 2, 0xfffe);
	assert_int_equal(cc_rd(f, CC_Q_MSIX_VECTOR, 2), NO_VECTOR);
	/* a queue that does not exist takes no vector */
	cc_wr(f, CC_Q_SELECT, 2, 5);
	cc_wr(f, CC_Q_MSIX_VECTOR, 2, 0);
	assert_int_equal(cc_rd(f, CC_Q_MSIX_VECTOR, 2), 0);
	cc_wr(f, CC_Q_SELECT, 2, 0);
	assert_int_equal(cc_rd(f, CC_Q_MSIX_VECTOR, 2), NO_VECTOR);
}

static void test_reset_clears_state(void **state)
{
	struct fx *f = *state;

	add_rng(f);
	negotiate(f);
	cc_wr(f, CC_MSIX_CONFIG, 2, 0);
	setup_queue(f, 1);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	cc_wr(f, CC_STATUS, 1, 0);
	assert_int_equal(cc_rd(f, CC_STATUS, 1), 0);
	assert_int_equal(cc_rd(f, CC_MSIX_CONFIG, 2), NO_VECTOR);
	assert_int_equal(cc_rd(f, CC_Q_SELECT, 2), 0);
	assert_int_equal(cc_rd(f, CC_Q_ENABLE, 2), 0);
	assert_int_equal(cc_rd(f, CC_Q_MSIX_VECTOR, 2), NO_VECTOR);
	assert_int_equal(cc_rd(f, CC_Q_DESC, 4), 0);
	assert_int_equal(cc_rd(f, CC_Q_SIZE, 2), 64); /* back to rng's maximum */
	cc_wr(f, CC_GFSELECT, 4, 1);
	assert_int_equal(cc_rd(f, CC_GF, 4), 0);
	/* queue registers cannot change while the queue is enabled */
	negotiate(f);
	setup_queue(f, 1);
	cc_wr(f, CC_Q_SIZE, 2, 4);
	assert_int_equal(cc_rd(f, CC_Q_SIZE, 2), QSZ);
	cc_wr(f, CC_Q_DESC, 4, 0x1000);
	assert_int_equal(cc_rd(f, CC_Q_DESC, 4), (uint32_t)DESC_GPA);
}

static void test_bad_rings_need_reset(void **state)
{
	struct fx *f = *state;

	add_rng(f);
	negotiate(f);
	msix_entry(f, 0, 0xfee00000, 0x4021, false);
	msix_enable(f, PCI_MSIX_FLAGS_ENABLE);
	cc_wr(f, CC_MSIX_CONFIG, 2, 0);
	cc_wr(f, CC_Q_SELECT, 2, 0);
	cc_wr(f, CC_Q_SIZE, 2, QSZ);
	cc_wr(f, CC_Q_DESC, 4, 0);
	cc_wr(f, CC_Q_DESC + 4, 4, 1); /* 4 GiB: not RAM */
	cc_wr(f, CC_Q_ENABLE, 2, 1);
	assert_int_equal(cc_rd(f, CC_Q_ENABLE, 2), 0);
	assert_true(cc_rd(f, CC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* the configuration change went to the configuration's vector */
	assert_int_equal(fired(f, 0), 1);
	assert_int_equal(rd(f, f->isr, 1), VIRTIO_INT_CONFIG);
	assert_int_equal(rd(f, f->isr, 1), 0); /* reading cleared it */
}

/* Every width at every offset, reads and writes of junk: nothing breaks,
 * nonsense reads as zero, and the device still works afterwards. */
static void test_hostile_widths_and_offsets(void **state)
{
	struct fx *f = *state;
	static const size_t sizes[] = { 1, 2, 3, 4, 8 };

	add_rng(f);
	for (uint64_t off = 0; off < 0x8000; off += 1) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			uint64_t v = ~0ull;

			if (off + sizes[s] <= 0x8000)
				assert_int_equal(bar_access(f, off, false, &v, sizes[s]), 0);
		}
	}
	/* nonsense reads as zero: odd widths, unaligned, wider than the
	 * register, between the structures */
	assert_int_equal(rd(f, f->common + CC_NUM_QUEUES, 3), 0);
	assert_int_equal(rd(f, f->common + CC_NUM_QUEUES + 1, 2), 0);
	assert_int_equal(rd(f, f->common + CC_NUM_QUEUES, 4), 0);
	assert_int_equal(rd(f, f->common + CC_Q_DESC, 8), 0);
	assert_int_equal(rd(f, f->common + 0x100, 4), 0);
	assert_int_equal(rd(f, 0x7ffc, 4), 0);
	assert_int_equal(rd(f, f->table + 1, 4), 0);
	/* junk everywhere but the status register (whose 0 would reset it,
	 * which is fine, but then the check below is of little use) */
	for (uint64_t off = 0; off < 0x8000; off += 2) {
		uint64_t junk = 0xdeadbeefcafef00dull * (off + 1);

		if (off >= f->common + CC_STATUS - 2 && off <= f->common + CC_STATUS)
			continue;
		bar_access(f, off, true, &junk, (off & 2) ? 2 : 4);
		bar_access(f, off + 1, true, &junk, 1);
		bar_access(f, off, true, &junk, 3);
	}
	/* still a working device */
	assert_int_equal(cc_rd(f, CC_NUM_QUEUES, 2), 1);
	start_io(f);
	cc_wr(f, CC_STATUS, 1, 0);
	memset(f->ram + DESC_GPA, 0, 0x3000);
	msix_enable(f, 0);
	negotiate(f);
	setup_queue(f, NO_VECTOR);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	post_buffer(f, 0, 64);
	kick(f, 0);
	assert_true(wait_used(f, 1));
}

static void test_bar_move_moves_ioeventfds(void **state)
{
	struct fx *f = *state;
	uint64_t old;

	add_rng(f);
	old = bar_addr(f);
	cfg_wr(f, PCI_BASE_ADDRESS_0, 4, (uint32_t)(old + 0x100000) | PCI_BAR_MEM_64);
	assert_int_equal(f->hv.ioeventfd_dels, 1);
	assert_int_equal(f->hv.ioeventfd_del_addr, old + f->notify);
	assert_int_equal(f->hv.ioeventfds, 2);
	assert_int_equal(f->hv.ioeventfd_addr, old + 0x100000 + f->notify);
	assert_int_equal(bar_addr(f), old + 0x100000);
	assert_int_equal(cc_rd(f, CC_NUM_QUEUES, 2), 1); /* answers at the new place */
	/* decoding off: taken away, nothing added */
	cfg_wr(f, PCI_COMMAND, 2, 0);
	assert_int_equal(f->hv.ioeventfd_dels, 2);
	assert_int_equal(f->hv.ioeventfds, 2);
}

/* ---- a data path outside the library (vhost) ---- */

static void no_notify(struct virtio_dev *vd, unsigned q)
{
}

/* A device like vhost-net's for the transport: its queue's used buffers
 * are signalled from outside, on virtio_queue_call_fd. */
static const struct virtio_dev_ops external_ops = {
	.name = "external", .device_id = 4, .num_queues = 1, .queue_max = QSZ,
	.own_notify = true, .external_used_irq = true, .queue_notify = no_notify,
};

/* What vhost signals on a queue's call eventfd reaches the queue's MSI-X
 * vector through the I/O thread, and waits in the PBA while the vector is
 * masked (an irqfd signalled directly would be lost then). */
static void test_external_call_fd_takes_the_vector(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *vd;
	char why[256];
	uint64_t one = 1;
	int call;

	vd = virtio_pci_create(f->vm, f->bus, &external_ops, NULL, why, sizeof(why));
	if (!vd)
		fail_msg("virtio_pci_create: %s", why);
	f->dev = &vd->dev;
	assert_int_equal(vm_register_device(f->vm, f->dev), 0);
	cfg_wr(f, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	find_caps(f);
	start_io(f);
	negotiate(f);
	msix_entry(f, 1, 0xfee01000, 0x4022, false);
	msix_enable(f, PCI_MSIX_FLAGS_ENABLE);
	setup_queue(f, 1);
	cc_wr(f, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	call = virtio_queue_call_fd(vd, 0);
	assert_true(call >= 0);
	assert_true(call != vector_fd(f, 1)); /* not the irqfd itself */
	assert_int_equal(virtio_queue_call_fd(vd, 1), -1);

	assert_int_equal(write(call, &one, sizeof(one)), sizeof(one));
	assert_true(wait_fired(f, 1));

	/* masked: pending, then sent at unmask */
	wr(f, f->table + 16 + 12, 4, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	assert_int_equal(write(call, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < WAIT_MS && !(rd(f, f->pba, 4) & 2); i++)
		usleep(1000);
	assert_int_equal(rd(f, f->pba, 4), 2);
	assert_int_equal(fired(f, 1), 0);
	wr(f, f->table + 16 + 12, 4, 0);
	assert_int_equal(fired(f, 1), 1);
}

/* ---- snapshots ---- */

static struct snap_cursor cursor_of(const struct snap_buf *b, size_t len)
{
	return (struct snap_cursor){ b->data, len, false };
}

static struct device *ports_of(struct fx *f)
{
	struct device *d = vm_find_device(f->vm, DEVICE_PIO, 0xcf8);

	assert_non_null(d);
	return d;
}

/* A driven device: its BAR moved, vector 0 masked, vector 1 the queue's
 * and unmasked, the configuration on vector 0, DRIVER_OK. */
static void drive_for_snapshot(struct fx *a, uint64_t bar)
{
	add_rng(a);
	cfg_wr(a, PCI_BASE_ADDRESS_0, 4, (uint32_t)bar | PCI_BAR_MEM_64);
	cfg_wr(a, PCI_BASE_ADDRESS_0 + 4, 4, (uint32_t)(bar >> 32));
	negotiate(a);
	msix_entry(a, 0, 0xfee00000, 0x4021, true);
	msix_entry(a, 1, 0xfee01000, 0x4022, false);
	msix_enable(a, PCI_MSIX_FLAGS_ENABLE);
	cc_wr(a, CC_MSIX_CONFIG, 2, 0);
	setup_queue(a, 1);
	cc_wr(a, CC_STATUS, 1, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Saved (the bus with the ports, the function with its device) and
 * loaded into a VM built the same way with the RAM restored: the BAR,
 * decoding, the notify ioeventfd, the MSI-X table and routes, the
 * vectors and the queue are back, and a request on the queue fires the
 * queue's vector. */
static void test_snapshot_round_trip(void **state)
{
	struct fx *a = *state, *b;
	struct snap_buf bus = { 0 }, dev = { 0 };
	struct snap_cursor c;
	uint64_t bar = MEM64 + 0x200000;
	void *sb;

	drive_for_snapshot(a, bar);
	assert_int_equal(ports_of(a)->save(ports_of(a), &bus), 0);
	assert_int_equal(a->dev->save(a->dev, &dev), 0);

	setup(&sb);
	b = sb;
	create_rng(b);
	memcpy(b->ram, a->ram, RAM_SIZE);
	c = cursor_of(&bus, bus.len);
	assert_int_equal(ports_of(b)->load(ports_of(b), &c), 0);
	c = cursor_of(&dev, dev.len);
	assert_int_equal(b->dev->load(b->dev, &c), 0);

	assert_int_equal(bar_addr(b), bar);
	assert_int_equal(cfg_rd(b, PCI_COMMAND, 2) & 6, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(b->hv.ioeventfd_addr, bar + b->notify);
	assert_int_equal(b->hv.routes, 1); /* vector 1 only: 0 is masked */
	assert_int_equal(b->hv.route_gsi, MSI_GSI_BASE + 1);
	assert_true(b->hv.route_usable);
	assert_int_equal(b->hv.route_addr, 0xfee01000);
	assert_int_equal(b->hv.route_data, 0x4022);
	assert_int_equal(rd(b, b->table + 8, 4), 0x4021);
	assert_int_equal(rd(b, b->table + 12, 4), 1);
	assert_true(cc_rd(b, CC_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(cc_rd(b, CC_MSIX_CONFIG, 2), 0);
	cc_wr(b, CC_Q_SELECT, 2, 0);
	assert_int_equal(cc_rd(b, CC_Q_MSIX_VECTOR, 2), 1);
	assert_int_equal(cc_rd(b, CC_Q_DESC, 4), (uint32_t)DESC_GPA);
	assert_int_equal(cc_rd(b, CC_Q_ENABLE, 2), 1);

	start_io(b);
	post_buffer(b, 0, 64);
	kick(b, 0);
	assert_true(wait_used(b, 1));
	assert_true(wait_fired(b, 1));
	teardown(&sb);
	snap_buf_free(&bus);
	snap_buf_free(&dev);
}

/* Every cut-short payload, a function that is not the saved one, and a
 * vector past the table are refused, and the VM then loads the right
 * payload as if nothing had been tried. */
static void test_snapshot_bad_payloads(void **state)
{
	struct fx *a = *state, *b;
	struct snap_buf bus = { 0 }, dev = { 0 };
	struct snap_cursor c;
	uint8_t *bad;
	void *sb;

	drive_for_snapshot(a, MEM64 + 0x200000);
	assert_int_equal(ports_of(a)->save(ports_of(a), &bus), 0);
	assert_int_equal(a->dev->save(a->dev, &dev), 0);
	setup(&sb);
	b = sb;
	create_rng(b);
	for (size_t n = 0; n < bus.len; n++) {
		c = cursor_of(&bus, n);
		assert_int_equal(ports_of(b)->load(ports_of(b), &c), -EINVAL);
	}
	for (size_t n = 0; n < dev.len; n++) {
		c = cursor_of(&dev, n);
		assert_int_equal(b->dev->load(b->dev, &c), -EINVAL);
	}
	bad = malloc(bus.len);
	assert_non_null(bad);
	memcpy(bad, bus.data, bus.len);
	bad[8 + 1 + 256 + 1 + PCI_DEVICE_ID] ^= 1; /* slot 1's device id */
	c = (struct snap_cursor){ bad, bus.len, false };
	assert_int_equal(ports_of(b)->load(ports_of(b), &c), -EINVAL);
	free(bad);
	assert_int_equal(bar_addr(b), MEM64); /* where it was built */

	c = cursor_of(&bus, bus.len);
	assert_int_equal(ports_of(b)->load(ports_of(b), &c), 0);
	c = cursor_of(&dev, dev.len);
	assert_int_equal(b->dev->load(b->dev, &c), 0);
	assert_int_equal(bar_addr(b), MEM64 + 0x200000);
	teardown(&sb);
	snap_buf_free(&bus);
	snap_buf_free(&dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_and_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_notify_and_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_vectors_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_clears_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rings_need_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_widths_and_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_move_moves_ioeventfds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_external_call_fd_takes_the_vector, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_bad_payloads, setup, teardown),
	};

	return cmocka_run_group_tests_name("virtio-pci", tests, NULL, NULL);
}
