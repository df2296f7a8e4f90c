/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the virtio-pci transport as a guest drives it
 * (devices/virtio/pci.c over devices/pci/): a PCI bus with virtio-rng as
 * function 00:01.0, then a fuzzer-chosen sequence of accesses to the config
 * ports, ECAM and both BAR windows (any offset, size 1-8, any value): the
 * common configuration, ISR, notify area, MSI-X table and PBA, BAR sizing
 * and moves, MSI-X enable and masks, device status with queue set-up over a
 * fake guest RAM (tests/fuzz/fake_ram.h). The few VM calls are stubs below.
 * Then the snapshot: the bus and the function as the ops left them, saved
 * and loaded into a second bus and function as a restore does, and the
 * input's bytes past the ops loaded into those as payloads.
 * Checks, besides no crash or sanitizer report: MSI routes only for the
 * function's own GSIs, ioeventfds only inside its BAR as placed; every
 * state the guest can reach is saved, loaded back (0) and saved again
 * byte for byte; a load of arbitrary bytes says 0 or -EINVAL.
 *
 * FUZZ_SRCS: devices/virtio/pci.c devices/virtio/transport.c devices/virtio/transport_snap.c devices/virtio/mmio.c devices/virtio/queue.c devices/virtio/rng.c devices/pci/pci.c devices/pci/msix.c core/snapfile.c core/mm.c core/util.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_virtio_pci.c <the FUZZ_SRCS>
 *   ./a.out tests/fuzz/corpus/virtio_pci
 * Seeds (a driver's bring-up, MSI-X set-up, a BAR move): written by hand
 * with the op layout below (target 3 | 0x80: a write to the 64-bit window);
 * snapshot-*: states it found that the load once refused (driver features
 * written but not accepted; FAILED set and taken back).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "devices/pci/pci.h"
#include "devices/virtio/virtio.h"
#include "tests/fuzz/fake_ram.h"

#define MAX_OPS 256
#define GSI_BASE 24
#define NR_GSIS 8
#define ECAM 0xe0000000ULL
#define MEM64 0x140000000ULL
#define MEM64_SIZE 0x1000000000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the VM, as far as the transport reaches it ---- */

struct vm_output *vm_output_open(struct vm *vm, int fd) { return NULL; }
void vm_output_write(struct vm_output *out, const void *data, size_t len) { }
int vm_irq_line(struct vm *vm, uint32_t gsi, int level) { return 0; }
int vm_resume_fd(struct vm *vm, int fd) { return 0; }
int vm_unwatch_fd(struct vm *vm, int fd) { return 0; }
void vm_request_exit(struct vm *vm, enum vcpu_exit_reason reason, int status) { }
void vm_log(const struct vm *vm, int level, const char *fmt, ...) { }

int vm_watch_fd(struct vm *vm, int fd, int (*on_ready)(void *opaque), void *opaque)
{
	return 0;
}

static struct device *registered[16];
static int nr_registered;
static struct pci_bus *the_bus;

int vm_register_device(struct vm *vm, struct device *dev)
{
	if (nr_registered == 16)
		return -ENOSPC;
	registered[nr_registered++] = dev;
	dev->vm = vm;
	return 0;
}

/* An ioeventfd must lie in the function's BAR where it decodes now. */
static void check_in_bar(uint64_t addr, uint32_t len)
{
	const struct pci_bar *b = &the_bus->slots[1]->bars[0];

	if (addr < b->addr || addr + len > b->addr + b->size)
		abort();
}

int vm_add_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, enum device_space space,
		     int fd, int datamatch, uint64_t value)
{
	check_in_bar(addr, len);
	return 0;
}

int vm_del_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, enum device_space space,
		     int fd, int datamatch, uint64_t value)
{
	return 0;
}

int vm_add_irqfd(struct vm *vm, uint32_t gsi, int fd)
{
	return 0;
}

int vm_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data)
{
	if (gsi < GSI_BASE || gsi >= GSI_BASE + NR_GSIS)
		abort(); /* a GSI the function was not given */
	return 0;
}

/* ---- the accesses ---- */

struct op {
	uint8_t target, size;
	uint32_t off, value;
} __attribute__((packed));

static void run_op(const struct op *o)
{
	struct device *d = registered[o->target % nr_registered];
	/* the big BAR windows: their first 64 KiB, where the BAR starts out */
	uint64_t span = d->size > 0x10000 && d != &the_bus->ecam ? 0x10000 : d->size;
	uint64_t v = o->value, off = o->off % span;
	size_t size = (size_t)(o->size % 8) + 1;

	if (off + size > d->size)
		return; /* the bus never hands a device an access past its end */
	if (o->target & 0x80)
		d->write(d, off, &v, size);
	else
		d->read(d, off, &v, size);
}

/* The BAR decoding with MSI-X on, so most inputs reach the registers. */
static void prime(struct pci_bus *bus)
{
	pci_config_write(bus, 1, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
}

/* A bus like the machine's, with virtio-rng at 00:01.0. */
static struct device *new_bus(struct fake_ram *ram)
{
	struct virtio_slot pci_slot;
	struct device *rng;

	the_bus = pci_bus_create(&ram->vm, ECAM, 0xc0000000, 0x10000000, MEM64, MEM64_SIZE);
	if (!the_bus)
		abort();
	the_bus->msi_gsi_next = GSI_BASE;
	the_bus->msi_gsi_end = GSI_BASE + NR_GSIS;
	pci_slot = (struct virtio_slot){ .pci = the_bus };
	rng = virtio_rng_create_in(&ram->vm, &pci_slot);
	if (!rng)
		abort();
	return rng;
}

static void free_bus(struct pci_bus *bus, struct device *rng)
{
	rng->destroy(rng);
	bus->ports.destroy(&bus->ports);
}

static void must_load(struct device *d, const struct snap_buf *b)
{
	struct snap_cursor c = { b->data, b->len, false };

	if (d->load(d, &c))
		abort(); /* a state the guest reached, refused */
}

static void any_load(struct device *d, const uint8_t *p, size_t len)
{
	struct snap_cursor c = { p, len, false };
	int r = d->load(d, &c);

	if (r && r != -EINVAL)
		abort();
}

/* The first bus's state into a second one, then raw bytes into it. */
static void round_trip(struct fake_ram *ram, struct device *rng, const uint8_t *raw, size_t len)
{
	struct snap_buf bus_state = { 0 }, dev_state = { 0 }, again = { 0 };
	struct pci_bus *first = the_bus;
	struct device *rng2;

	if (first->ports.save(&first->ports, &bus_state) || rng->save(rng, &dev_state))
		abort();
	rng2 = new_bus(ram);
	must_load(&the_bus->ports, &bus_state);
	must_load(rng2, &dev_state);
	if (rng2->save(rng2, &again) || again.len != dev_state.len ||
	    memcmp(again.data, dev_state.data, again.len))
		abort();
	any_load(&the_bus->ports, raw, len);
	any_load(rng2, raw, len);
	free_bus(the_bus, rng2);
	the_bus = first;
	snap_buf_free(&bus_state);
	snap_buf_free(&dev_state);
	snap_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake_ram ram;
	struct device *rng;
	size_t n;

	fake_ram_init(&ram, data, size); /* rings the ops may point at */
	nr_registered = 0;
	rng = new_bus(&ram);
	prime(the_bus);
	n = size / sizeof(struct op);
	for (size_t i = 0; i < n && i < MAX_OPS; i++) {
		struct op o;

		memcpy(&o, data + i * sizeof(o), sizeof(o));
		run_op(&o);
	}
	/* the same bytes as payloads too: the fuzzer finds the magics */
	round_trip(&ram, rng, data, size);
	free_bus(the_bus, rng);
	fake_ram_free(&ram);
	return 0;
}
