/* SPDX-License-Identifier: MIT */
/*
 * The arch-neutral half of the guest-test harness: loading an assembled
 * guest image, running a vCPU to its stop, and a recording test device.
 * Included by tests/guests/<arch>/harness.h after it defines GUEST_LOAD.
 * Everything goes through the public API.
 */
#ifndef VIBEVMM_TESTS_GUESTS_COMMON_H
#define VIBEVMM_TESTS_GUESTS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "boot.h"
#include "utils.h"
#include "vm.h"

/* cmocka group setup: the group is skipped where KVM cannot be used. */
static inline int skip_without_kvm(void **state)
{
	int err = hypervisor_init();

	if (err)
		fprintf(stderr, "KVM unusable here (%s)\n", hypervisor_strerror(err));
	return err ? -1 : 0;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* Load <name>.bin (GUEST_DIR, default build/tests/guests) at GUEST_LOAD. */
/* Inside a TCG-emulated test host (tests/host/testhost.sh puts
 * vibevmm.testhost=tcg on its kernel command line): its emulated
 * virtualization has faults of its own (tests/README.md). */
static inline bool in_tcg_test_host(void)
{
	char line[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");

	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
	}
	return strstr(line, "vibevmm.testhost=tcg") != NULL;
}

static inline void load_guest(struct vm *vm, const char *name)
{
	const char *dir = getenv("GUEST_DIR");
	char path[512];
	uint8_t *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s.bin", dir ? dir : "build/tests/guests", name);
	assert_int_equal(read_file(path, &buf, &len), 0);
	assert_int_equal(boot_load_raw(vm, GUEST_LOAD, buf, len), 0);
	free(buf);
}

/* Run until an exit that is not a dispatched I/O; count those on the way. */
static inline int run_until_stop(struct vcpu *vcpu, int *nr_io, int *nr_mmio)
{
	for (int i = 0; i < 100000; i++) {
		int r = vcpu_run(vcpu);
		if (r == VCPU_EXIT_IO && nr_io)
			(*nr_io)++;
		else if (r == VCPU_EXIT_MMIO && nr_mmio)
			(*nr_mmio)++;
		else if (r != VCPU_EXIT_IO && r != VCPU_EXIT_MMIO &&
			 r != VCPU_EXIT_INTERRUPTED)
			return r;
	}
	fail_msg("guest did not stop");
	return -1;
}

/* ---- a test device that records accesses and answers reads ---- */

#define REC_MAX 64
struct access_rec {
	uint64_t offset;
	size_t size;
	int is_write;
	uint64_t value;
};

struct testdev {
	struct device dev;
	pthread_mutex_t lock;
	struct access_rec rec[REC_MAX];
	int nr;
	/* Reads return this pattern, truncated to the access size. */
	uint64_t read_value;
};

static inline void testdev_record(struct testdev *t, uint64_t offset, void *data,
				  size_t size, int is_write)
{
	uint64_t v = 0;

	memcpy(&v, data, size < 8 ? size : 8);
	pthread_mutex_lock(&t->lock);
	if (t->nr < REC_MAX)
		t->rec[t->nr++] = (struct access_rec){ offset, size, is_write, v };
	pthread_mutex_unlock(&t->lock);
}

static inline int testdev_read(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct testdev *t = dev->private;

	memcpy(data, &t->read_value, size);
	testdev_record(t, offset, data, size, 0);
	return 0;
}

static inline int testdev_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	testdev_record(dev->private, offset, data, size, 1);
	return 0;
}

static inline void testdev_destroy(struct device *dev)
{
	struct testdev *t = dev->private;

	pthread_mutex_destroy(&t->lock);
	free(t);
}

static inline struct testdev *testdev_add(struct vm *vm, enum device_space space,
					  uint64_t base, uint64_t size)
{
	struct testdev *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	pthread_mutex_init(&t->lock, NULL);
	t->dev = (struct device){
		.name = "testdev", .base = base, .size = size, .private = t,
		.read = testdev_read, .write = testdev_write,
		.destroy = testdev_destroy, .space = space,
	};
	assert_int_equal(vm_register_device(vm, &t->dev), 0);
	return t;
}

static inline void assert_access(const struct access_rec *r, uint64_t offset,
				 size_t size, int is_write, uint64_t value)
{
	assert_int_equal(r->offset, offset);
	assert_int_equal(r->size, size);
	assert_int_equal(r->is_write, is_write);
	assert_int_equal(r->value, value);
}

#endif
