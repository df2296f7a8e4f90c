/* SPDX-License-Identifier: MIT */
/*
 * An assigned device as the guest sees it (devices/vfio/vfio_pci.c), on a
 * fake VFIO (fake_vfio.h: BAR0 16 KiB mmap-able, BAR2 64 KiB with its
 * MSI-X table page left out of the mmap-able areas, 5 vectors) and a fake
 * backend recording memory slots, MSI routes and irqfds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "devices/pci/msi.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci.h"
#include "devices/vfio/vfio_attach.h"
#include "devices/vfio/vfio_pci.h"
#include "hypervisor.h"
#include "mm.h"
#include "unit/fake_vfio.h"
#include "utils.h"
#include "vm.h"

#define ECAM 0xe0000000ULL
#define MEM32 0xc0000000ULL
#define MEM32_SIZE 0x10000000ULL
#define MEM64 0x8000000000ULL
#define MEM64_SIZE 0x4000000000ULL
#define MSI_GSI_BASE 24
#define ADDR "0000:00:04.0"
#define MSIX_CAP 0x40
#define PM_CAP 0x60
#define MSI_CAP 0x80
#define PCIE_CAP 0x90
#define WHY_LEN 512

/* ---- a backend that records ---- */

struct slot_call { uint32_t slot; uint64_t gpa, size; void *hva; };
/* vfio_fd: the eventfd VFIO signalled for the GSI's vector at the time */
struct route_call { uint32_t gsi; bool usable; uint64_t addr; uint32_t data; int32_t vfio_fd; };

struct rec {
	struct slot_call slots[64];
	int nr_slots;
	struct route_call routes[64];
	int nr_routes;
	uint32_t irqfd_gsi[64];
	int irqfd_fd[64];
	int nr_irqfds;
};

static struct rec *rec_of(struct vm *vm)
{
	return vm->private;
}

static int rec_vm_create(struct vm *vm)
{
	vm->private = calloc(1, sizeof(struct rec));
	return vm->private ? 0 : -ENOMEM;
}

static void rec_vm_destroy(struct vm *vm)
{
	free(vm->private);
}

static int rec_set_memory(struct vm *vm, uint32_t slot, uint64_t gpa, void *hva, uint64_t size)
{
	struct rec *r = rec_of(vm);

	if (r->nr_slots < 64)
		r->slots[r->nr_slots++] = (struct slot_call){ slot, gpa, size, hva };
	return 0;
}

static int32_t vfio_fd_of_gsi(uint32_t gsi);

static int rec_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data)
{
	struct rec *r = rec_of(vm);

	if (r->nr_routes < 64)
		r->routes[r->nr_routes++] = (struct route_call){
			gsi, usable, addr, data, vfio_fd_of_gsi(gsi) };
	return 0;
}

static int rec_irqfd(struct vm *vm, uint32_t gsi, int fd)
{
	struct rec *r = rec_of(vm);

	if (r->nr_irqfds < 64) {
		r->irqfd_fd[r->nr_irqfds] = fd;
		r->irqfd_gsi[r->nr_irqfds++] = gsi;
	}
	return 0;
}

static int rec_irqchip(struct vm *vm)
{
	return 0;
}

static const struct hypervisor_ops rec_ops = {
	.name = "fake", .vm_create = rec_vm_create, .vm_destroy = rec_vm_destroy,
	.create_irqchip = rec_irqchip,
	.set_memory = rec_set_memory, .msi_route = rec_msi_route, .irqfd = rec_irqfd,
};

/* ---- fixture ---- */

struct fx {
	struct fake_vfio *f;
	struct vm *vm;
	struct pci_bus *bus;
	struct vfio_container *c;
	struct vfio_pci *p;
	struct pci_function *fn;
	int slot;
	char why[WHY_LEN];
	uint64_t bar_reads[16]; /* device-fd offsets read outside config space */
	int nr_bar_reads;
	bool io_started;
};

static struct fx *the_fx; /* for the pread wrapper: the fake's ctx is the fake */

/* The eventfd the fake VFIO signals for the vector on `gsi` (-1: off). */
static int32_t vfio_fd_of_gsi(uint32_t gsi)
{
	uint32_t vec = gsi - MSI_GSI_BASE;

	return the_fx->f->irq_on && vec < the_fx->f->irq_count ? the_fx->f->irq_fds[vec] : -1;
}

static ssize_t recording_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	if (fd >= FAKE_FD_BASE && (uint64_t)off < FAKE_REGION_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX) &&
	    the_fx->nr_bar_reads < 16)
		the_fx->bar_reads[the_fx->nr_bar_reads++] = (uint64_t)off;
	return fake_pread(ctx, fd, buf, len, off);
}

static void put16(uint8_t *c, unsigned off, uint16_t v)
{
	c[off] = (uint8_t)v;
	c[off + 1] = (uint8_t)(v >> 8);
}

static uint32_t le32(const uint8_t *c)
{
	return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}

static void put32(uint8_t *c, unsigned off, uint32_t v)
{
	put16(c, off, (uint16_t)v);
	put16(c, off + 2, (uint16_t)(v >> 16));
}

/* The device's configuration space: an NVMe controller, BAR0 32-bit,
 * BAR2 64-bit prefetchable, MSI-X (5 vectors) with table and PBA in BAR2
 * behind a power-management capability. */
static void nvme_config(uint8_t *c)
{
	memset(c, 0, 256);
	put16(c, PCI_VENDOR_ID, 0x1b36);
	put16(c, PCI_DEVICE_ID, 0x0010);
	c[PCI_REVISION_ID] = 2;
	c[PCI_CLASS_PROG] = 0x02;
	put16(c, PCI_CLASS_DEVICE, 0x0108);
	put16(c, PCI_SUBSYSTEM_VENDOR_ID, 0x1af4);
	put16(c, PCI_SUBSYSTEM_ID, 0x1100);
	put16(c, PCI_STATUS, PCI_STATUS_CAP_LIST);
	c[PCI_INTERRUPT_PIN] = 1;
	put32(c, PCI_BASE_ADDRESS_0, 0);
	put32(c, PCI_BASE_ADDRESS_0 + 8, PCI_BAR_MEM_64 | PCI_BAR_PREFETCH);
	/* power management, MSI, MSI-X, PCI Express */
	c[PCI_CAPABILITY_LIST] = PM_CAP;
	c[PM_CAP] = 0x01;
	c[PM_CAP + 1] = MSI_CAP;
	put16(c, PM_CAP + 2, 0x0003);         /* PMC: version 3 */
	c[MSI_CAP] = 0x05;
	c[MSI_CAP + 1] = MSIX_CAP;
	put16(c, MSI_CAP + 2, 0x0080);        /* 64-bit: 14 bytes */
	put32(c, MSI_CAP + 4, 0xfee00000);
	c[MSIX_CAP] = PCI_CAP_ID_MSIX;
	c[MSIX_CAP + 1] = PCIE_CAP;
	put16(c, MSIX_CAP + PCI_MSIX_FLAGS, 4);
	put32(c, MSIX_CAP + PCI_MSIX_TABLE, 0x2000 | 2);
	put32(c, MSIX_CAP + PCI_MSIX_PBA, 0x2800 | 2);
	c[PCIE_CAP] = 0x10;
	c[PCIE_CAP + 1] = 0;
	put16(c, PCIE_CAP + 2, 0x0002);       /* version 2, an endpoint */
	put32(c, PCIE_CAP + 4, 0x10008fc2);   /* Device Capabilities */
	put16(c, PCIE_CAP + 8, 0x2810);       /* Device Control */
}

/* The same device without MSI-X (as QEMU's AHCI controller): its MSI-X
 * capability is a vendor-specific one; MSI has a 64-bit address and
 * per-vector mask bits (24 bytes, up to 0x98: PCI Express moves on). */
static void msi_only_config(uint8_t *c)
{
	nvme_config(c);
	c[MSIX_CAP] = 0x09;
	put16(c, MSI_CAP + 2, 0x0180);
	put32(c, MSI_CAP + 16, 0x1);          /* mask bits */
	c[MSI_CAP + 1] = 0xa0;
	c[0xa0] = 0x10;
	c[0xa1] = MSIX_CAP;
	c[MSIX_CAP + 1] = 0;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	the_fx = x;
	x->f = fake_vfio_new();
	assert_non_null(x->f);
	x->f->sys.pread = recording_pread;
	nvme_config(x->f->config);
	fake_sysfs_device(x->f, ADDR, 7, "vfio-pci", 0x010802);
	x->vm = vm_create_on(&rec_ops);
	assert_non_null(x->vm);
	x->vm->log_level = LOG_NONE;
	assert_int_equal(vm_alloc_memory(x->vm, 0, 1 << 20), 0);
	assert_int_equal(vm_create_irqchip(x->vm), 0); /* irqfds and MSI routes need it */
	x->bus = pci_bus_create(x->vm, ECAM, MEM32, MEM32_SIZE, MEM64, MEM64_SIZE);
	assert_non_null(x->bus);
	x->bus->msi_gsi_next = MSI_GSI_BASE;
	x->bus->msi_gsi_end = MSI_GSI_BASE + 64;
	x->c = vfio_container_create(&x->f->sys, x->vm->mem_map);
	assert_non_null(x->c);
	*state = x;
	return 0;
}

/* The device opened and made a function; its slot found. */
static void create(struct fx *x)
{
	struct vfio_device *d;

	assert_int_equal(vfio_device_open(x->c, ADDR, &d, x->why, sizeof(x->why)), 0);
	if (vfio_pci_create(x->vm, x->bus, d, &x->p, x->why, sizeof(x->why)))
		fail_msg("vfio_pci_create: %s", x->why);
	x->fn = vfio_pci_function(x->p);
	for (x->slot = 1; x->slot < PCI_SLOTS && x->bus->slots[x->slot] != x->fn; x->slot++)
		;
	assert_true(x->slot < PCI_SLOTS);
}

static int teardown(void **state)
{
	struct fx *x = *state;

	if (x->io_started) /* as vm_destroy does before the devices go */
		io_thread_stop(x->vm);
	vfio_pci_destroy(x->p);
	vfio_container_destroy(x->c);
	vm_destroy(x->vm); /* NULL when the test destroyed it */
	fake_vfio_free(x->f);
	free(x);
	return 0;
}

static uint32_t cfg_read(struct fx *x, uint32_t off, unsigned size)
{
	return pci_config_read(x->bus, (unsigned)x->slot, 0, off, size);
}

static void cfg_write(struct fx *x, uint32_t off, unsigned size, uint32_t v)
{
	pci_config_write(x->bus, (unsigned)x->slot, 0, off, size, v);
}

/* The device's own command register, as the fake holds it. */
static uint16_t device_command(struct fx *x)
{
	return (uint16_t)(x->f->config[PCI_COMMAND] | x->f->config[PCI_COMMAND + 1] << 8);
}

/* ---- tests ---- */

/* The guest sees the device's identity, memory BARs of its regions'
 * sizes and kinds, MSI-X with the device's table, no INTx, no ROM, and a
 * list holding MSI-X only. */
static void test_what_the_guest_sees(void **state)
{
	struct fx *x = *state;
	uint32_t cap;

	create(x);
	assert_int_equal(cfg_read(x, PCI_VENDOR_ID, 4), 0x00101b36);
	assert_int_equal(cfg_read(x, PCI_REVISION_ID, 4), 0x01080202);
	assert_int_equal(cfg_read(x, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
	assert_int_equal(cfg_read(x, PCI_INTERRUPT_PIN, 1), 0);
	assert_int_equal(cfg_read(x, 0x30, 4), 0);
	/* BAR0: 32-bit, 16 KiB; BAR2: 64-bit prefetchable, 64 KiB */
	cfg_write(x, PCI_BASE_ADDRESS_0, 4, ~0u);
	assert_int_equal(cfg_read(x, PCI_BASE_ADDRESS_0, 4), 0xffffc000);
	cfg_write(x, PCI_BASE_ADDRESS_0 + 8, 4, ~0u);
	cfg_write(x, PCI_BASE_ADDRESS_0 + 12, 4, ~0u);
	assert_int_equal(cfg_read(x, PCI_BASE_ADDRESS_0 + 8, 4),
			 0xffff0000 | PCI_BAR_MEM_64 | PCI_BAR_PREFETCH);
	assert_int_equal(cfg_read(x, PCI_BASE_ADDRESS_0 + 12, 4), 0xffffffff);
	assert_int_equal(cfg_read(x, PCI_BASE_ADDRESS_0 + 4, 4), 0);
	/* the list: the device's, at its offsets, without MSI; MSI-X with 5
	 * vectors, table and PBA where the device has them */
	assert_true(cfg_read(x, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_int_equal(cfg_read(x, PCI_CAPABILITY_LIST, 1), PM_CAP);
	assert_int_equal(cfg_read(x, PM_CAP, 2), MSIX_CAP << 8 | 0x01);
	cap = cfg_read(x, PM_CAP + 1, 1);
	assert_int_equal(cfg_read(x, cap, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(cfg_read(x, cap + 1, 1), PCIE_CAP);
	assert_int_equal(cfg_read(x, PCIE_CAP, 2), 0x10);
	assert_int_equal(cfg_read(x, MSI_CAP, 4), 0); /* not there for the guest */
	assert_int_equal(cfg_read(x, cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE, 4);
	assert_int_equal(cfg_read(x, cap + PCI_MSIX_TABLE, 4), 0x2000 | 2);
	assert_int_equal(cfg_read(x, cap + PCI_MSIX_PBA, 4), 0x2800 | 2);
	/* each vector: a GSI from the bus's range with an irqfd */
	assert_int_equal(rec_of(x->vm)->nr_irqfds, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rec_of(x->vm)->irqfd_gsi[i], MSI_GSI_BASE + i);
}

/* Decoding on: BAR0 whole and BAR2 around its MSI-X page become device
 * memory at the BARs' addresses (slots after RAM's), and the device gets
 * the memory and bus-master bits with INTx off; a moved BAR follows;
 * decoding off takes them all away. */
static void test_bars_follow_the_guest(void **state)
{
	struct fx *x = *state;
	struct rec *r;
	uint64_t bar0, bar2;
	int n;

	create(x);
	r = rec_of(x->vm);
	n = r->nr_slots;
	bar0 = cfg_read(x, PCI_BASE_ADDRESS_0, 4) & ~0xfULL;
	bar2 = (cfg_read(x, PCI_BASE_ADDRESS_0 + 8, 4) & ~0xfULL) |
	       (uint64_t)cfg_read(x, PCI_BASE_ADDRESS_0 + 12, 4) << 32;
	assert_true(bar0 >= MEM32 && bar2 >= MEM64);
	cfg_write(x, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(r->nr_slots, n + 3);
	assert_true(r->slots[n].slot >= MM_MAX_SLOTS);
	assert_int_equal(r->slots[n].gpa, bar0);
	assert_int_equal(r->slots[n].size, 0x4000);
	assert_int_equal(r->slots[n + 1].gpa, bar2);
	assert_int_equal(r->slots[n + 1].size, 0x2000);
	assert_int_equal(r->slots[n + 2].gpa, bar2 + 0x3000);
	assert_int_equal(r->slots[n + 2].size, 0xd000);
	assert_int_equal(device_command(x),
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);

	/* BAR0 moved: its slot removed, then made at the new address */
	cfg_write(x, PCI_BASE_ADDRESS_0, 4, (uint32_t)bar0 + 0x100000);
	assert_int_equal(r->nr_slots, n + 5);
	assert_int_equal(r->slots[n + 3].slot, r->slots[n].slot);
	assert_int_equal(r->slots[n + 3].size, 0);
	assert_int_equal(r->slots[n + 4].gpa, bar0 + 0x100000);

	/* decoding off: everything removed; the device's memory bit too */
	cfg_write(x, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
	assert_int_equal(r->nr_slots, n + 8);
	for (int i = n + 5; i < n + 8; i++)
		assert_int_equal(r->slots[i].size, 0);
	assert_int_equal(device_command(x),
			 PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
}

/* The other capabilities' registers are the device's: read live, written
 * through; the links, MSI-X's fields and the hidden MSI are not. */
static void test_capabilities_pass_through(void **state)
{
	struct fx *x = *state;

	create(x);
	assert_int_equal(cfg_read(x, PCIE_CAP + 4, 4), 0x10008fc2);
	assert_int_equal(cfg_read(x, PM_CAP + 2, 2), 0x0003);
	/* the device's status changes: the guest reads it as it is now */
	x->f->config[PCIE_CAP + 10] = 0x04;
	assert_int_equal(cfg_read(x, PCIE_CAP + 8, 4), 0x00042810);
	/* Device Control and PMCSR written whole to the device */
	cfg_write(x, PCIE_CAP + 8, 2, 0x5936);
	assert_int_equal(x->f->config[PCIE_CAP + 8] | x->f->config[PCIE_CAP + 9] << 8, 0x5936);
	cfg_write(x, PM_CAP + 4, 4, 0x00000003);
	assert_int_equal(x->f->config[PM_CAP + 4], 3);
	/* a dword over a link: the link stays ours, the rest goes through */
	cfg_write(x, PCIE_CAP, 4, 0xabcd77ff);
	assert_int_equal(cfg_read(x, PCIE_CAP + 1, 1), 0);
	assert_int_equal(x->f->config[PCIE_CAP + 1], 0);
	assert_int_equal(x->f->config[PCIE_CAP + 2], 0xcd);
	/* MSI-X's table offset and MSI's address are no one's to change */
	cfg_write(x, MSIX_CAP + PCI_MSIX_TABLE, 4, 0x1234);
	assert_int_equal(cfg_read(x, MSIX_CAP + PCI_MSIX_TABLE, 4), 0x2000 | 2);
	assert_int_equal(le32(x->f->config + MSIX_CAP + PCI_MSIX_TABLE), 0x2000 | 2);
	cfg_write(x, MSI_CAP + 4, 4, 0xfee01000);
	assert_int_equal(cfg_read(x, MSI_CAP + 4, 4), 0);
	assert_int_equal(le32(x->f->config + MSI_CAP + 4), 0xfee00000);
	assert_int_equal(x->f->errors, 0);
}

/* The MSI-X table is emulated: a vector's message becomes its GSI's
 * route when usable; the guest's enable bit turns VFIO's MSI-X on with
 * one eventfd per vector, and off. */
static void test_msix_routes_and_vfio(void **state)
{
	struct fx *x = *state;
	struct pci_function *fn;
	uint32_t cap, v;
	struct rec *r;

	create(x);
	fn = x->fn;
	r = rec_of(x->vm);
	cap = MSIX_CAP; /* where the device has it */
	/* vector 1: address 0xfee00000, data 0x4041, unmasked */
	v = 0xfee00000;
	fn->ops->bar_write(fn, 2, 0x2000 + 16, &v, 4);
	v = 0;
	fn->ops->bar_write(fn, 2, 0x2000 + 20, &v, 4);
	v = 0x4041;
	fn->ops->bar_write(fn, 2, 0x2000 + 24, &v, 4);
	v = 0;
	fn->ops->bar_write(fn, 2, 0x2000 + 28, &v, 4);
	assert_int_equal(r->nr_routes, 0); /* MSI-X still off */
	assert_false(x->f->irq_on);

	cfg_write(x, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	assert_true(x->f->irq_on);
	assert_int_equal(x->f->irq_count, 5);
	for (int i = 0; i < 5; i++)
		assert_true(x->f->irq_fds[i] >= 0);
	assert_int_equal(r->nr_routes, 1);
	assert_int_equal(r->routes[0].gsi, MSI_GSI_BASE + 1);
	assert_true(r->routes[0].usable);
	assert_int_equal(r->routes[0].addr, 0xfee00000);
	assert_int_equal(r->routes[0].data, 0x4041);
	/* the table reads back; the table's page is not the device's */
	v = 0;
	fn->ops->bar_read(fn, 2, 0x2000 + 24, &v, 4);
	assert_int_equal(v, 0x4041);
	assert_int_equal(x->nr_bar_reads, 0);

	cfg_write(x, cap + PCI_MSIX_FLAGS, 2, 0);
	assert_false(x->f->irq_on);
	assert_int_equal(r->nr_routes, 2);
	assert_false(r->routes[1].usable);
}

/* The irqfd-attached eventfd of `vec`'s GSI. */
static int irqfd_of(struct fx *x, uint16_t vec)
{
	struct rec *r = rec_of(x->vm);

	for (int i = 0; i < r->nr_irqfds; i++)
		if (r->irqfd_gsi[i] == MSI_GSI_BASE + (uint32_t)vec)
			return r->irqfd_fd[i];
	fail_msg("no irqfd for vector %u", vec);
	return -1;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* What the eventfd counted since last read (0: nothing). */
static uint64_t drain_fd(int fd)
{
	uint64_t n = 0;

	return read(fd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

static void set_vector(struct fx *x, uint16_t vec, uint32_t addr, uint32_t data, uint32_t ctrl)
{
	uint32_t words[4] = { addr, 0, data, ctrl };

	for (int i = 0; i < 4; i++)
		x->fn->ops->bar_write(x->fn, 2, 0x2000 + 16u * vec + 4u * i, &words[i], 4);
}

/* The PBA's first word, as the guest reads it. */
static uint64_t pba(struct fx *x)
{
	uint64_t v = 0;

	x->fn->ops->bar_read(x->fn, 2, 0x2800, &v, 8);
	return v;
}

/* The I/O thread has made vector 0 pending (up to 5 s). */
static bool became_pending(struct fx *x)
{
	for (int i = 0; i < 500 && !(pba(x) & 1); i++)
		usleep(10000);
	return pba(x) & 1;
}

/* A masked vector's interrupts are not lost: VFIO signals another eventfd
 * while the guest masks it, which the I/O thread makes the vector's
 * pending bit, and unmasking sends it, once, on the new route. Masking
 * moves VFIO off the irqfd before the route goes. */
static void test_masked_vector_keeps_its_interrupt(void **state)
{
	struct fx *x = *state;
	struct rec *r;
	uint32_t cap;
	int fd0;

	create(x);
	r = rec_of(x->vm);
	cap = MSIX_CAP; /* where the device has it */
	set_vector(x, 1, 0xfee00000, 0x4041, 0);
	cfg_write(x, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	assert_true(x->f->irq_on);
	assert_int_equal(x->f->irq_fds[1], irqfd_of(x, 1)); /* unmasked: straight to KVM */
	fd0 = irqfd_of(x, 0);
	assert_int_not_equal(x->f->irq_fds[0], fd0);        /* masked: held */

	/* the device raises vector 0 twice while masked: nothing reaches
	 * KVM, the guest sees it pending */
	assert_int_equal(io_thread_start(x->vm), 0);
	x->io_started = true;
	signal_fd(x->f->irq_fds[0]);
	signal_fd(x->f->irq_fds[0]);
	assert_true(became_pending(x));
	assert_int_equal(drain_fd(fd0), 0);

	/* the guest unmasks it: route first, then one interrupt on the irqfd */
	set_vector(x, 0, 0xfee01000, 0x4042, 0);
	assert_int_equal(x->f->irq_fds[0], fd0);
	assert_int_equal(r->routes[r->nr_routes - 1].gsi, MSI_GSI_BASE + 0);
	assert_true(r->routes[r->nr_routes - 1].usable);
	assert_int_equal(r->routes[r->nr_routes - 1].data, 0x4042);
	assert_int_equal(drain_fd(fd0), 1);
	assert_int_equal(pba(x) & 1, 0);
	/* unmasked, VFIO's signal is KVM's */
	signal_fd(x->f->irq_fds[0]);
	assert_int_equal(drain_fd(fd0), 1);

	/* masked again: VFIO off the irqfd before the route went */
	set_vector(x, 0, 0xfee01000, 0x4042, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	assert_int_not_equal(x->f->irq_fds[0], fd0);
	assert_int_equal(r->routes[r->nr_routes - 1].gsi, MSI_GSI_BASE + 0);
	assert_false(r->routes[r->nr_routes - 1].usable);
	assert_int_not_equal(r->routes[r->nr_routes - 1].vfio_fd, fd0);
	/* unmasked with nothing raised meanwhile: no interrupt made up */
	set_vector(x, 0, 0xfee01000, 0x4042, 0);
	assert_int_equal(drain_fd(fd0), 0);
	assert_int_equal(x->f->errors, 0);
}

/* MSI-X in a BAR VFIO lets us map whole (the host remaps interrupts): the
 * table's page still traps, so the guest's messages never reach the
 * device's real table; the rest of the BAR is device memory. */
static void test_msix_page_traps_in_a_mappable_bar(void **state)
{
	struct fx *x = *state;
	struct rec *r;
	uint64_t bar0;
	uint32_t v = 0xfee01000;
	int n;

	put32(x->f->config, MSIX_CAP + PCI_MSIX_TABLE, 0x2000 | 0);
	put32(x->f->config, MSIX_CAP + PCI_MSIX_PBA, 0x2800 | 0);
	create(x);
	r = rec_of(x->vm);
	n = r->nr_slots;
	bar0 = cfg_read(x, PCI_BASE_ADDRESS_0, 4) & ~0xfULL;
	cfg_write(x, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	/* BAR0: [0, 0x2000) and [0x3000, 0x4000); BAR2 whole (no MSI-X there) */
	assert_int_equal(r->nr_slots, n + 4);
	assert_int_equal(r->slots[n].gpa, bar0);
	assert_int_equal(r->slots[n].size, 0x2000);
	assert_int_equal(r->slots[n + 1].gpa, bar0 + 0x3000);
	assert_int_equal(r->slots[n + 1].size, 0x1000);
	assert_int_equal(r->slots[n + 2].size, 0x2000);
	assert_int_equal(r->slots[n + 3].size, 0xd000);
	/* a table write is the emulation's, not the device's */
	x->fn->ops->bar_write(x->fn, 0, 0x2000, &v, 4);
	v = 0;
	x->fn->ops->bar_read(x->fn, 0, 0x2000, &v, 4);
	assert_int_equal(v, 0xfee01000);
	assert_int_equal(x->nr_bar_reads, 0);
}

/* Outside the MSI-X table and PBA, a trapped access reaches the device
 * through its region (here: BAR0 offset 0x100). */
static void test_trapped_access_goes_to_the_device(void **state)
{
	struct fx *x = *state;
	uint32_t v = 0x12345678;

	create(x);
	x->nr_bar_reads = 0;
	assert_int_equal(x->fn->ops->bar_read(x->fn, 0, 0x100, &v, 4), 0);
	assert_int_equal(v, 0); /* the fake device reads as zero */
	assert_int_equal(x->nr_bar_reads, 1);
	assert_int_equal(x->bar_reads[0], FAKE_REGION_OFFSET(0) + 0x100);
}

/* A device without MSI-X gets MSI: at its offset, 64-bit as the device's,
 * one vector, no mask bits. Its route comes before VFIO's MSI (on the
 * irqfd of its GSI) and goes after it; a new message while on is a new
 * route, the same one is nothing; the device's own capability is never
 * written. */
static void test_msi_without_msix(void **state)
{
	struct fx *x = *state;
	struct rec *r;
	uint8_t device_msi[24];

	msi_only_config(x->f->config);
	memcpy(device_msi, x->f->config + MSI_CAP, sizeof(device_msi));
	create(x);
	r = rec_of(x->vm);
	/* the list: PM, MSI, PCI Express, vendor-specific; no MSI-X */
	assert_int_equal(cfg_read(x, PCI_CAPABILITY_LIST, 1), PM_CAP);
	assert_int_equal(cfg_read(x, PM_CAP + 1, 1), MSI_CAP);
	assert_int_equal(cfg_read(x, MSI_CAP, 2), 0xa0 << 8 | PCI_CAP_ID_MSI);
	assert_int_equal(cfg_read(x, 0xa0, 2), MSIX_CAP << 8 | 0x10);
	assert_int_equal(cfg_read(x, MSIX_CAP, 2), 0x09);
	assert_int_equal(cfg_read(x, MSI_CAP + PCI_MSI_FLAGS, 2), PCI_MSI_FLAGS_64BIT);
	assert_int_equal(cfg_read(x, MSI_CAP + 16, 4), 0); /* the mask bits: hidden */
	assert_int_equal(r->nr_irqfds, 1);
	assert_int_equal(r->irqfd_gsi[0], MSI_GSI_BASE);
	/* one message only, nothing to mask */
	cfg_write(x, MSI_CAP + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_QSIZE | PCI_MSI_FLAGS_MASKBIT);
	assert_int_equal(cfg_read(x, MSI_CAP + PCI_MSI_FLAGS, 2), PCI_MSI_FLAGS_64BIT);
	cfg_write(x, MSI_CAP + 16, 4, 1);
	assert_int_equal(cfg_read(x, MSI_CAP + 16, 4), 0);

	cfg_write(x, MSI_CAP + PCI_MSI_ADDRESS_LO, 4, 0xfee01003); /* low bits read as 0 */
	cfg_write(x, MSI_CAP + PCI_MSI_ADDRESS_HI, 4, 0);
	cfg_write(x, MSI_CAP + PCI_MSI_DATA_64, 2, 0x4041);
	assert_int_equal(cfg_read(x, MSI_CAP + PCI_MSI_ADDRESS_LO, 4), 0xfee01000);
	assert_int_equal(r->nr_routes, 0);
	assert_false(x->f->irq_on);

	cfg_write(x, MSI_CAP + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
	assert_int_equal(r->nr_routes, 1);
	assert_int_equal(r->routes[0].gsi, MSI_GSI_BASE);
	assert_true(r->routes[0].usable);
	assert_int_equal(r->routes[0].addr, 0xfee01000);
	assert_int_equal(r->routes[0].data, 0x4041);
	assert_int_equal(r->routes[0].vfio_fd, -1); /* routed before VFIO signals */
	assert_true(x->f->irq_on);
	assert_int_equal(x->f->irq_index, VFIO_PCI_MSI_IRQ_INDEX);
	assert_int_equal(x->f->irq_count, 1);
	assert_int_equal(x->f->irq_fds[0], r->irqfd_fd[0]);

	cfg_write(x, MSI_CAP + PCI_MSI_DATA_64, 2, 0x4042); /* Linux moving the vector */
	assert_int_equal(r->nr_routes, 2);
	assert_true(r->routes[1].usable);
	assert_int_equal(r->routes[1].data, 0x4042);
	assert_int_equal(r->routes[1].vfio_fd, r->irqfd_fd[0]); /* VFIO untouched */
	cfg_write(x, MSI_CAP + PCI_MSI_DATA_64, 2, 0x4042);
	cfg_write(x, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
	assert_int_equal(r->nr_routes, 2);

	cfg_write(x, MSI_CAP + PCI_MSI_FLAGS, 2, 0);
	assert_false(x->f->irq_on);
	assert_int_equal(r->nr_routes, 3);
	assert_false(r->routes[2].usable);
	assert_int_equal(r->routes[2].vfio_fd, -1); /* VFIO off before the route went */
	assert_memory_equal(x->f->config + MSI_CAP, device_msi, sizeof(device_msi));
	cfg_write(x, MSI_CAP + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE); /* on again */
	assert_true(x->f->irq_on);
	vfio_pci_destroy(x->p);
	x->p = NULL;
	assert_false(x->f->irq_on);
	assert_int_equal(x->f->errors, 0);
}

/* A device with both gets MSI-X only: MSI hidden, never enabled. */
static void test_msi_hidden_beside_msix(void **state)
{
	struct fx *x = *state;

	create(x);
	cfg_write(x, MSI_CAP + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
	assert_int_equal(cfg_read(x, MSI_CAP, 4), 0);
	assert_false(x->f->irq_on);
	assert_int_equal(rec_of(x->vm)->nr_routes, 0);
}

/* What cannot be assigned fails with one line, the device closed. */
static void expect_refused(struct fx *x, int err, const char *msg)
{
	struct vfio_device *d;

	assert_int_equal(vfio_device_open(x->c, ADDR, &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_pci_create(x->vm, x->bus, d, &x->p, x->why, sizeof(x->why)), err);
	x->p = NULL;
	assert_string_equal(x->why, msg);
	assert_int_equal(fake_count_fds(x->f, FAKE_DEVICE), 0);
	assert_int_equal(x->f->nr_maps, 0);
}

static void test_refused_devices(void **state)
{
	struct fx *x = *state;
	uint8_t *c = x->f->config;

	c[0x61] = 0; /* neither MSI-X nor MSI in the list */
	expect_refused(x, -EOPNOTSUPP, "vfio " ADDR ": no MSI-X or MSI (a device with INTx only "
		       "cannot be assigned)");
	msi_only_config(c);
	x->f->msi_count = 0; /* MSI, but VFIO cannot signal it */
	expect_refused(x, -EOPNOTSUPP, "vfio " ADDR ": VFIO offers no MSI vector");
	x->f->msi_count = 1;
	nvme_config(c);
	put32(c, MSIX_CAP + PCI_MSIX_PBA, 0x2800 | 0);
	expect_refused(x, -EOPNOTSUPP, "vfio " ADDR ": MSI-X table and PBA in different BARs");
	nvme_config(c);
	c[PCI_HEADER_TYPE] = 1;
	expect_refused(x, -EOPNOTSUPP, "vfio " ADDR ": a bridge (header type 1), not an endpoint");
	nvme_config(c);
	c[0x61] = 0x60; /* a list that loops: no MSI-X found, no hang */
	expect_refused(x, -EOPNOTSUPP, "vfio " ADDR ": no MSI-X or MSI (a device with INTx only "
		       "cannot be assigned)");
}

/* Destroy undoes everything: device memory slots removed, VFIO's MSI-X
 * off, the device's fd and mappings gone. */
static void test_destroy_undoes(void **state)
{
	struct fx *x = *state;
	struct rec *r;
	int n;

	create(x);
	r = rec_of(x->vm);
	cfg_write(x, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cfg_write(x, cfg_read(x, PCI_CAPABILITY_LIST, 1) + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	n = r->nr_slots;
	vfio_pci_destroy(x->p);
	x->p = NULL;
	assert_int_equal(r->nr_slots, n + 3);
	for (int i = n; i < n + 3; i++)
		assert_int_equal(r->slots[i].size, 0);
	assert_false(x->f->irq_on);
	assert_int_equal(fake_count_fds(x->f, FAKE_DEVICE), 0);
	assert_int_equal(x->f->nr_maps, 0);
	assert_int_equal(x->f->errors, 0);
}

/* vfio_attach: each device a function on the bus, all owned by the VM
 * (vm_destroy undoes them); a device that fails leaves nothing open and
 * nothing on the bus. */
static void test_attach(void **state)
{
	struct fx *x = *state;
	const char *two[] = { ADDR, "0000:00:05.0" };
	const char *bad[] = { ADDR, "0000:00:06.0" };
	int fns = 0;

	fake_sysfs_device(x->f, "0000:00:05.0", 8, "vfio-pci", 0x010802);
	fake_sysfs_device(x->f, "0000:00:06.0", 9, "nvme", 0x010802);
	assert_int_equal(vfio_attach(x->vm, x->bus, &x->f->sys, bad, 2, x->why, sizeof(x->why)),
			 -ENXIO);
	assert_non_null(strstr(x->why, "0000:00:06.0"));
	assert_null(strchr(x->why, '\n'));
	for (int s = 1; s < PCI_SLOTS; s++)
		assert_null(x->bus->slots[s]);
	assert_int_equal(fake_count_fds(x->f, FAKE_DEVICE), 0);
	assert_int_equal(fake_count_fds(x->f, FAKE_GROUP), 0);
	assert_int_equal(fake_count_dma(x->f), 0);

	assert_int_equal(vfio_attach(x->vm, x->bus, &x->f->sys, two, 2, x->why, sizeof(x->why)), 0);
	for (int s = 1; s < PCI_SLOTS; s++)
		fns += x->bus->slots[s] != NULL;
	assert_int_equal(fns, 2);
	assert_int_equal(fake_count_fds(x->f, FAKE_DEVICE), 2);
	vm_destroy(x->vm); /* the owner goes with the VM */
	x->vm = NULL;
	assert_int_equal(fake_count_fds(x->f, FAKE_DEVICE), 0);
	assert_int_equal(fake_count_fds(x->f, FAKE_CONTAINER), 0);
	assert_int_equal(fake_count_dma(x->f), 0);
	assert_int_equal(x->f->nr_maps, 0);
	assert_int_equal(x->f->errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_what_the_guest_sees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bars_follow_the_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capabilities_pass_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_routes_and_vfio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masked_vector_keeps_its_interrupt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_msix_page_traps_in_a_mappable_bar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_trapped_access_goes_to_the_device, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_msi_without_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msi_hidden_beside_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_undoes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
