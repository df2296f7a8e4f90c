/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the devices' snapshot loads (struct device's load):
 * the first byte picks a device, the rest is its payload. The devices are
 * built without a VM (the few VM calls they make are stubs below; virtio's
 * rings are checked against a fake guest RAM, tests/fuzz/fake_ram.h):
 * serial8250, i8042, pl031, and the virtio-mmio transport under virtio-rng
 * (no part of its own) and virtio-console (a part of its own).
 *
 * Checks, besides no crash or sanitizer report: a load says 0 or -EINVAL;
 * a refused payload leaves the device as it was (it saves what a new one
 * saves); an accepted one saves bytes that a second new device loads and
 * saves again unchanged.
 *
 * FUZZ_SRCS: devices/serial8250.c devices/i8042.c devices/pl031.c devices/virtio/mmio.c devices/virtio/transport.c devices/virtio/transport_snap.c devices/virtio/pci.c devices/pci/pci.c devices/pci/msix.c devices/virtio/queue.c devices/virtio/rng.c devices/virtio/console.c core/snapfile.c core/mm.c core/util.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_devload.c <the FUZZ_SRCS> -lz
 *   ./a.out tests/fuzz/corpus/devload
 * Seeds: tests/fuzz/make_devload_seeds.py.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "devices/virtio/virtio.h"
#include "tests/fuzz/fake_ram.h"
#include "utils.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the VM, as far as these devices reach it ---- */

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

int vm_add_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, enum device_space space,
		     int fd, int datamatch, uint64_t value)
{
	return -ENOTSUP;
}

int vm_add_irqfd(struct vm *vm, uint32_t gsi, int fd)
{
	return -ENOTSUP;
}

/* Linked in with the transports (virtio_transport_create), never called:
 * these devices are virtio-mmio here. */
int vm_del_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, enum device_space space,
		     int fd, int datamatch, uint64_t value)
{
	return -ENOTSUP;
}

int vm_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data)
{
	return -ENOTSUP;
}

int vm_register_device(struct vm *vm, struct device *dev)
{
	return -ENOTSUP;
}

/* ---- the devices ---- */

enum kind { SERIAL, I8042, PL031, VIRTIO_RNG, VIRTIO_CONSOLE, NR_KINDS };

static struct device *create(enum kind k, struct vm *vm)
{
	switch (k) {
	case SERIAL: return serial8250_create(vm, 0x3f8, 4, -1, -1);
	case I8042: return i8042_create();
	case PL031: return pl031_create(0x9010000);
	case VIRTIO_RNG: return virtio_rng_create(vm, 0xd0000000, 5);
	default: return virtio_console_create(vm, 0xd0000000, 5, -1, -1);
	}
}

static struct snap_buf save(struct device *d)
{
	struct snap_buf b = { 0 };

	if (d->save(d, &b) || b.failed)
		abort();
	return b;
}

static int load(struct device *d, const uint8_t *p, size_t len)
{
	struct snap_cursor c = { p, len, false };

	return d->load(d, &c);
}

static bool same(const struct snap_buf *x, const struct snap_buf *y)
{
	return x->len == y->len && !memcmp(x->data, y->data, x->len);
}

/* What `payload` made of a new device: saved again by another new one. */
static void check_accepted(enum kind k, struct vm *vm, struct device *d)
{
	struct snap_buf once = save(d), twice;
	struct device *again = create(k, vm);

	if (!again || load(again, once.data, once.len))
		abort();
	twice = save(again);
	if (!same(&once, &twice))
		abort();
	snap_buf_free(&once);
	snap_buf_free(&twice);
	again->destroy(again);
}

/* A refused payload changed nothing: the device saves what a new one does. */
static void check_refused(enum kind k, struct vm *vm, struct device *d)
{
	struct device *fresh = create(k, vm);
	struct snap_buf mine = save(d), theirs;

	if (!fresh)
		abort();
	theirs = save(fresh);
	if (!same(&mine, &theirs))
		abort();
	snap_buf_free(&mine);
	snap_buf_free(&theirs);
	fresh->destroy(fresh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t none[1];
	struct fake_ram ram;
	struct device *d;
	enum kind k;
	int r;

	if (!size)
		return 0;
	k = (enum kind)(data[0] % NR_KINDS);
	fake_ram_init(&ram, none, 0);
	d = create(k, &ram.vm);
	if (!d)
		abort();
	r = load(d, data + 1, size - 1);
	if (r == 0)
		check_accepted(k, &ram.vm, d);
	else if (r == -EINVAL)
		check_refused(k, &ram.vm, d);
	else
		abort();
	d->destroy(d);
	fake_ram_free(&ram);
	return 0;
}
