/* SPDX-License-Identifier: MIT */
/*
 * Virtio without KVM: the split-queue walker against hostile rings, the
 * virtio-mmio transport driven register by register, and the blk, rng and
 * console devices end to end. The VM is a real `struct vm` on a fake
 * hypervisor backend whose guest RAM is a malloc'd buffer; the I/O thread is
 * started by hand (no vCPUs here).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <linux/io_uring.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "devices/virtio/virtio.h"
#include "utils.h"
#include "vm.h"

/* How long a wait for the device thread lasts, in 1 ms polls: generous,
 * for the arm64 test host's TCG on a busy CI machine. */
#define WAIT_MS 20000

#define RAM_SIZE (8u << 20)
#define QSZ 16
/* Queue q's rings: desc at QBASE(q), avail +0x1000, used +0x2000. */
#define QBASE(q) (0x100000ULL + (uint64_t)(q) * 0x10000)
#define DATA_GPA 0x200000ULL
#define MMIO_BASE 0xd0000000ULL
#define GSI 5

/* virtio-mmio registers */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LO 0x080
#define R_QUEUE_DESC_HI 0x084
#define R_QUEUE_DRIVER_LO 0x090
#define R_QUEUE_DRIVER_HI 0x094
#define R_QUEUE_DEVICE_LO 0x0a0
#define R_QUEUE_DEVICE_HI 0x0a4
#define R_CONFIG_GENERATION 0x0fc
#define R_CONFIG 0x100

#define F_VERSION_1 (1ULL << 32)
#define F_INDIRECT (1ULL << 28)
#define F_EVENT_IDX (1ULL << 29)
#define ST_DRIVER_UP (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER)

/* ---- a fake backend: memory slots and interrupt lines, nothing else ---- */

struct fake_hv {
	atomic_int irq_pulses;
};

static int fake_vm_create(struct vm *vm) { return 0; }
static void fake_vm_destroy(struct vm *vm) { }
static int fake_set_memory(struct vm *vm, uint32_t slot, uint64_t gpa,
			   void *hva, uint64_t size) { return 0; }
static int fake_irqchip(struct vm *vm) { return 0; }

static int fake_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	struct fake_hv *h = vm->private;

	if (level)
		atomic_fetch_add(&h->irq_pulses, 1);
	return 0;
}

static const struct hypervisor_ops fake_ops = {
	.name = "fake", .vm_create = fake_vm_create, .vm_destroy = fake_vm_destroy,
	.set_memory = fake_set_memory, .create_irqchip = fake_irqchip,
	.irq_line = fake_irq_line,
};

struct fx {
	struct vm *vm;
	uint8_t *ram;
	struct fake_hv hv;
	struct device *dev;
	bool io_started;
	char path[64];
	unsigned aio;             /* the fault tests' disks: VIRTIO_BLK_AIO_* */
	int gate;                 /* > 0: a flush gate, opened wide at teardown */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->ram = aligned_alloc(4096, RAM_SIZE);
	memset(f->ram, 0, RAM_SIZE);
	f->vm = vm_create_on(&fake_ops);
	assert_non_null(f->vm);
	f->vm->private = &f->hv;
	f->vm->log_level = LOG_NONE; /* the tests break rings on purpose */
	assert_int_equal(vm_create_irqchip(f->vm), 0);
	assert_int_equal(vm_add_memory(f->vm, 0, f->ram, RAM_SIZE), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->io_started)
		io_thread_stop(f->vm);
	if (f->gate > 0) {
		/* A failed test may leave a flush at the gate: the disk's
		 * destruction waits for it. */
		uint64_t many = 1000;

		if (write(f->gate, &many, sizeof(many)) != sizeof(many))
			print_message("cannot open the flush gate\n");
	}
	vm_destroy(f->vm);
	if (f->gate > 0)
		close(f->gate);
	free(f->ram);
	if (f->path[0])
		unlink(f->path);
	free(f);
	return 0;
}

/* ---- guest-side helpers ---- */

static struct virtq_desc *gdesc(struct fx *f, unsigned q)
{
	return (struct virtq_desc *)(f->ram + QBASE(q));
}

static struct virtq_avail *gavail(struct fx *f, unsigned q)
{
	return (struct virtq_avail *)(f->ram + QBASE(q) + 0x1000);
}

static struct virtq_used *gused(struct fx *f, unsigned q)
{
	return (struct virtq_used *)(f->ram + QBASE(q) + 0x2000);
}

static void set_desc(struct fx *f, unsigned q, unsigned i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	gdesc(f, q)[i] = (struct virtq_desc){ addr, len, flags, next };
}

static void publish(struct fx *f, unsigned q, uint16_t head)
{
	struct virtq_avail *a = gavail(f, q);

	a->ring[a->idx % QSZ] = head;
	__atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	return __atomic_load_n(&gused(f, q)->idx, __ATOMIC_ACQUIRE);
}

static void init_vq(struct fx *f, struct virtq *vq, uint64_t features)
{
	assert_int_equal(virtq_init(vq, f->vm, QSZ, QBASE(0), QBASE(0) + 0x1000,
				    QBASE(0) + 0x2000, features), 0);
}

static int pop(struct virtq *vq, struct virtq_elem *e, struct iovec *iov,
	       unsigned max)
{
	e->iov = iov;
	e->max_iov = max;
	return virtq_pop(vq, e);
}

/* ---- the queue walker ---- */

static void test_queue_good_chain(void **state)
{
	struct fx *f = *state;
	struct iovec iov[8];
	struct virtq_elem e;
	struct virtq vq;

	init_vq(f, &vq, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), 0); /* empty */
	set_desc(f, 0, 3, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 7);
	set_desc(f, 0, 7, DATA_GPA + 0x100, 100, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	set_desc(f, 0, 1, DATA_GPA + 0x200, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 3);
	assert_int_equal(pop(&vq, &e, iov, 8), 1);
	assert_int_equal(e.head, 3);
	assert_int_equal(e.nr_out, 1);
	assert_int_equal(e.nr_in, 2);
	assert_int_equal(e.out_len, 16);
	assert_int_equal(e.in_len, 101);
	assert_ptr_equal(iov[0].iov_base, f->ram + DATA_GPA);
	assert_ptr_equal(iov[1].iov_base, f->ram + DATA_GPA + 0x100);
	assert_int_equal(iov[2].iov_len, 1);
	assert_int_equal(pop(&vq, &e, iov, 8), 0);

	virtq_push(&vq, e.head, 101);
	assert_int_equal(used_idx(f, 0), 1);
	assert_int_equal(gused(f, 0)->ring[0].id, 3);
	assert_int_equal(gused(f, 0)->ring[0].len, 101);
}

static void test_queue_loop(void **state)
{
	struct fx *f = *state;
	struct iovec iov[64];
	struct virtq_elem e;
	struct virtq vq;

	init_vq(f, &vq, 0);
	set_desc(f, 0, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 0, 1, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	publish(f, 0, 0);
	assert_int_equal(pop(&vq, &e, iov, 64), -ELOOP);
	/* Nothing consumed: the same error again, never a crash. */
	assert_int_equal(pop(&vq, &e, iov, 64), -ELOOP);

	/* Zero-length descriptors make no segments but still count. */
	set_desc(f, 0, 0, 0, 0, VIRTQ_DESC_F_NEXT, 0);
	assert_int_equal(pop(&vq, &e, iov, 64), -ELOOP);
}

static void test_queue_outside_ram(void **state)
{
	struct fx *f = *state;
	struct iovec iov[8];
	struct virtq_elem e;
	struct virtq vq;

	init_vq(f, &vq, 0);
	set_desc(f, 0, 0, RAM_SIZE + 0x1000, 16, 0, 0);
	publish(f, 0, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), -EFAULT);
	set_desc(f, 0, 0, RAM_SIZE - 8, 16, 0, 0); /* crosses the end */
	assert_int_equal(pop(&vq, &e, iov, 8), -EFAULT);
	set_desc(f, 0, 0, ~0ULL - 4, 16, 0, 0);    /* address wraps */
	assert_int_equal(pop(&vq, &e, iov, 8), -EFAULT);
	set_desc(f, 0, 0, RAM_SIZE - 16, 16, 0, 0); /* the last bytes: fine */
	assert_int_equal(pop(&vq, &e, iov, 8), 1);
	assert_ptr_equal(iov[0].iov_base, f->ram + RAM_SIZE - 16);
}

static void test_queue_length_bounds(void **state)
{
	struct fx *f = *state;
	struct iovec iov[QSZ];
	struct virtq_elem e;
	struct virtq vq;

	init_vq(f, &vq, 0);
	set_desc(f, 0, 0, DATA_GPA, 0xffffffffu, 0, 0); /* 4 GiB: over the bound */
	publish(f, 0, 0);
	assert_int_equal(pop(&vq, &e, iov, QSZ), -E2BIG);
	/* Descriptors that each fit in RAM but together exceed 64 MiB. */
	for (unsigned i = 0; i < 9; i++)
		set_desc(f, 0, i, 0, RAM_SIZE, i < 8 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	assert_int_equal(pop(&vq, &e, iov, QSZ), -E2BIG);
	set_desc(f, 0, 7, 0, RAM_SIZE, 0, 0); /* 8 of them: exactly 64 MiB, fine */
	assert_int_equal(pop(&vq, &e, iov, QSZ), 1);
	publish(f, 0, 0);
	/* More segments than the device's array holds. */
	for (unsigned i = 0; i < 4; i++)
		set_desc(f, 0, i, DATA_GPA, 8, i < 3 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	assert_int_equal(pop(&vq, &e, iov, 3), -E2BIG);
	assert_int_equal(pop(&vq, &e, iov, 4), 1);
}

static void test_queue_bad_indices(void **state)
{
	struct fx *f = *state;
	struct iovec iov[8];
	struct virtq_elem e;
	struct virtq vq;

	init_vq(f, &vq, 0);
	/* avail->idx more than a queue ahead */
	gavail(f, 0)->idx = QSZ + 1;
	assert_int_equal(pop(&vq, &e, iov, 8), -E2BIG);
	gavail(f, 0)->idx = 0;
	/* head out of range */
	publish(f, 0, QSZ);
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
	/* next out of range */
	gavail(f, 0)->ring[0] = 0;
	set_desc(f, 0, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, QSZ);
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
	/* readable after writable */
	set_desc(f, 0, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	set_desc(f, 0, 1, DATA_GPA, 8, 0, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
	/* indirect not negotiated */
	set_desc(f, 0, 0, DATA_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
}

static void test_queue_init_checks(void **state)
{
	struct fx *f = *state;
	struct virtq vq;

	assert_int_equal(virtq_init(&vq, f->vm, 12, QBASE(0), QBASE(0) + 0x1000,
				    QBASE(0) + 0x2000, 0), -EINVAL); /* not 2^n */
	assert_int_equal(virtq_init(&vq, f->vm, 0, QBASE(0), QBASE(0) + 0x1000,
				    QBASE(0) + 0x2000, 0), -EINVAL);
	assert_int_equal(virtq_init(&vq, f->vm, QSZ, QBASE(0) + 8, QBASE(0) + 0x1000,
				    QBASE(0) + 0x2000, 0), -EINVAL); /* misaligned */
	assert_int_equal(virtq_init(&vq, f->vm, QSZ, QBASE(0), QBASE(0) + 0x1001,
				    QBASE(0) + 0x2000, 0), -EINVAL);
	assert_int_equal(virtq_init(&vq, f->vm, QSZ, QBASE(0), QBASE(0) + 0x1000,
				    QBASE(0) + 0x2002, 0), -EINVAL);
	assert_int_equal(virtq_init(&vq, f->vm, QSZ, RAM_SIZE - 16, QBASE(0) + 0x1000,
				    QBASE(0) + 0x2000, 0), -EFAULT); /* desc past RAM */
	assert_int_equal(virtq_init(&vq, f->vm, QSZ, QBASE(0), QBASE(0) + 0x1000,
				    RAM_SIZE - 8, 0), -EFAULT);
}

static void test_queue_indirect(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *table = (struct virtq_desc *)(f->ram + DATA_GPA + 0x10000);
	uint64_t table_gpa = DATA_GPA + 0x10000;
	struct iovec iov[8];
	struct virtq_elem e;
	struct virtq vq;

	init_vq(f, &vq, F_INDIRECT);
	table[0] = (struct virtq_desc){ DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1 };
	table[1] = (struct virtq_desc){ DATA_GPA + 64, 32, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2 };
	table[2] = (struct virtq_desc){ DATA_GPA + 128, 1, VIRTQ_DESC_F_WRITE, 0 };
	set_desc(f, 0, 5, table_gpa, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(f, 0, 5);
	assert_int_equal(pop(&vq, &e, iov, 8), 1);
	assert_int_equal(e.head, 5);
	assert_int_equal(e.nr_out, 1);
	assert_int_equal(e.nr_in, 2);
	assert_int_equal(e.in_len, 33);

	publish(f, 0, 5);
	/* table length not a multiple of 16 */
	set_desc(f, 0, 5, table_gpa, 40, VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
	/* indirect with NEXT */
	set_desc(f, 0, 5, table_gpa, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
	/* nested indirect */
	set_desc(f, 0, 5, table_gpa, 48, VIRTQ_DESC_F_INDIRECT, 0);
	table[1].flags = VIRTQ_DESC_F_INDIRECT;
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
	/* a loop inside the table */
	table[1] = (struct virtq_desc){ DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 0 };
	assert_int_equal(pop(&vq, &e, iov, 8), -ELOOP);
	/* next beyond the table */
	table[1].next = 3;
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
	/* the table itself outside RAM */
	set_desc(f, 0, 5, RAM_SIZE - 16, 48, VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), -EFAULT);
	/* an indirect descriptor in the middle of a chain */
	set_desc(f, 0, 5, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 6);
	set_desc(f, 0, 6, table_gpa, 48, VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(pop(&vq, &e, iov, 8), -EINVAL);
}

static void test_queue_notify_suppression(void **state)
{
	struct fx *f = *state;
	uint16_t *used_event = &gavail(f, 0)->ring[QSZ];
	uint16_t *avail_event = (uint16_t *)&gused(f, 0)->ring[QSZ];
	struct iovec iov[4];
	struct virtq_elem e;
	struct virtq vq;

	/* Without EVENT_IDX: the NO_INTERRUPT / NO_NOTIFY flags. */
	init_vq(f, &vq, 0);
	assert_false(virtq_need_interrupt(&vq)); /* nothing pushed */
	set_desc(f, 0, 0, DATA_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 0);
	assert_int_equal(pop(&vq, &e, iov, 4), 1);
	virtq_push(&vq, e.head, 0);
	gavail(f, 0)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	assert_false(virtq_need_interrupt(&vq));
	gavail(f, 0)->flags = 0;
	publish(f, 0, 0);
	assert_int_equal(pop(&vq, &e, iov, 4), 1);
	virtq_push(&vq, e.head, 0);
	assert_true(virtq_need_interrupt(&vq));
	virtq_disable_notify(&vq);
	assert_int_equal(gused(f, 0)->flags, VIRTQ_USED_F_NO_NOTIFY);
	assert_false(virtq_enable_notify(&vq));
	assert_int_equal(gused(f, 0)->flags, 0);

	/* With EVENT_IDX: used_event / avail_event. */
	memset(f->ram + QBASE(0), 0, 0x3000);
	init_vq(f, &vq, F_EVENT_IDX);
	for (int i = 0; i < 3; i++) {
		publish(f, 0, 0);
		assert_int_equal(pop(&vq, &e, iov, 4), 1);
		virtq_push(&vq, e.head, 0);
	}
	assert_true(virtq_need_interrupt(&vq)); /* first decision: always */
	*used_event = 5; /* "interrupt me when used idx passes 5" */
	publish(f, 0, 0);
	assert_int_equal(pop(&vq, &e, iov, 4), 1);
	virtq_push(&vq, e.head, 0); /* used idx 4 */
	assert_false(virtq_need_interrupt(&vq));
	for (int i = 0; i < 2; i++) {
		publish(f, 0, 0);
		assert_int_equal(pop(&vq, &e, iov, 4), 1);
		virtq_push(&vq, e.head, 0); /* 5, 6: crosses used_event */
	}
	assert_true(virtq_need_interrupt(&vq));
	assert_false(virtq_enable_notify(&vq));
	assert_int_equal(*avail_event, 6);
	publish(f, 0, 0);
	assert_true(virtq_enable_notify(&vq)); /* a buffer slipped in */
}

static void test_iov_helpers(void **state)
{
	uint8_t a[3] = { 1, 2, 3 }, b[5] = { 4, 5, 6, 7, 8 }, out[8] = { 0 };
	struct iovec iov[2] = { { a, 3 }, { b, 5 } }, s[2];
	size_t got;

	assert_int_equal(iov_to_buf(iov, 2, 2, out, 4), 4);
	assert_memory_equal(out, ((uint8_t[]){ 3, 4, 5, 6 }), 4);
	assert_int_equal(iov_to_buf(iov, 2, 7, out, 4), 1);
	assert_int_equal(iov_from_buf(iov, 2, 1, "\x09\x09\x09", 3), 3);
	assert_int_equal(a[1], 9);
	assert_int_equal(b[0], 9);
	assert_int_equal(iov_slice(iov, 2, 2, 5, s, 2, &got), 2);
	assert_int_equal(got, 5);
	assert_ptr_equal(s[0].iov_base, a + 2);
	assert_int_equal(s[1].iov_len, 4);
	assert_int_equal(iov_slice(iov, 2, 2, 100, s, 1, &got), 1);
	assert_int_equal(got, 1);
}

/* ---- the MMIO transport ---- */

static uint32_t rd(struct device *d, uint64_t off)
{
	uint32_t v = 0;

	assert_int_equal(d->read(d, off, &v, 4), 0);
	return v;
}

static void wr(struct device *d, uint64_t off, uint32_t v)
{
	assert_int_equal(d->write(d, off, &v, 4), 0);
}

static void set_features(struct device *d, uint64_t features)
{
	wr(d, R_DRV_FEATURES_SEL, 0);
	wr(d, R_DRV_FEATURES, (uint32_t)features);
	wr(d, R_DRV_FEATURES_SEL, 1);
	wr(d, R_DRV_FEATURES, (uint32_t)(features >> 32));
}

static uint64_t device_features(struct device *d)
{
	wr(d, R_DEV_FEATURES_SEL, 1);
	uint64_t hi = rd(d, R_DEV_FEATURES);
	wr(d, R_DEV_FEATURES_SEL, 0);
	return hi << 32 | rd(d, R_DEV_FEATURES);
}

static void setup_queue(struct device *d, unsigned q)
{
	wr(d, R_QUEUE_SEL, q);
	assert_true(rd(d, R_QUEUE_NUM_MAX) >= QSZ);
	assert_int_equal(rd(d, R_QUEUE_READY), 0);
	wr(d, R_QUEUE_NUM, QSZ);
	wr(d, R_QUEUE_DESC_LO, (uint32_t)QBASE(q));
	wr(d, R_QUEUE_DESC_HI, 0);
	wr(d, R_QUEUE_DRIVER_LO, (uint32_t)(QBASE(q) + 0x1000));
	wr(d, R_QUEUE_DRIVER_HI, 0);
	wr(d, R_QUEUE_DEVICE_LO, (uint32_t)(QBASE(q) + 0x2000));
	wr(d, R_QUEUE_DEVICE_HI, 0);
	wr(d, R_QUEUE_READY, 1);
	assert_int_equal(rd(d, R_QUEUE_READY), 1);
}

/* The Linux driver's sequence (virtio 3.1.1), taking `features`. */
static void driver_up_with(struct device *d, unsigned nr_queues, uint64_t features)
{
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(d, R_STATUS, ST_DRIVER_UP);
	set_features(d, features);
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	assert_true(rd(d, R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < nr_queues; q++)
		setup_queue(d, q);
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* ... with all offered features taken. */
static void driver_up(struct device *d, unsigned nr_queues)
{
	driver_up_with(d, nr_queues, device_features(d));
}

static void add_device(struct fx *f, struct device *dev)
{
	assert_non_null(dev);
	assert_int_equal(vm_register_device(f->vm, dev), 0);
	f->dev = dev;
}

/* The I/O thread, as vm_start would run it. */
static void start_io(struct fx *f)
{
	assert_int_equal(io_thread_start(f->vm), 0);
	f->io_started = true;
}

static bool wait_used(struct fx *f, unsigned q, uint16_t want)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (used_idx(f, q) == want)
			return true;
		usleep(1000);
	}
	return false;
}

/* The interrupt follows the used ring's update from the device's thread:
 * on a slow machine (the arm64 test host's TCG) only a while later. */
static bool wait_irq_pulses(struct fx *f, int want)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (atomic_load(&f->hv.irq_pulses) >= want)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_mmio_identity(void **state)
{
	struct fx *f = *state;

	add_device(f, virtio_rng_create(f->vm, MMIO_BASE, GSI));
	assert_int_equal(f->dev->base, MMIO_BASE);
	assert_int_equal(f->dev->size, VIRTIO_MMIO_SIZE);
	assert_int_equal(rd(f->dev, R_MAGIC), 0x74726976);
	assert_int_equal(rd(f->dev, R_VERSION), 2);
	assert_int_equal(rd(f->dev, R_DEVICE_ID), VIRTIO_ID_RNG);
	assert_true(device_features(f->dev) & F_VERSION_1);
	wr(f->dev, R_DEV_FEATURES_SEL, 2);
	assert_int_equal(rd(f->dev, R_DEV_FEATURES), 0);
	wr(f->dev, R_QUEUE_SEL, 1); /* rng has one queue */
	assert_int_equal(rd(f->dev, R_QUEUE_NUM_MAX), 0);
	/* Odd sizes and offsets read as zero and change nothing. */
	uint16_t half = 0xffff;
	assert_int_equal(f->dev->read(f->dev, R_MAGIC, &half, 2), 0);
	assert_int_equal(half, 0);
	assert_int_equal(rd(f->dev, 0x0ff0), 0); /* beyond config space */
}

static void test_mmio_features_need_version_1(void **state)
{
	struct fx *f = *state;
	struct device *d;

	add_device(f, virtio_rng_create(f->vm, MMIO_BASE, GSI));
	d = f->dev;
	wr(d, R_STATUS, ST_DRIVER_UP);
	set_features(d, 0); /* a legacy driver: no VERSION_1 */
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	assert_false(rd(d, R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	/* DRIVER_OK without FEATURES_OK is refused too, and queues stay off. */
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_DRIVER_OK);
	assert_false(rd(d, R_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	wr(d, R_QUEUE_SEL, 0);
	wr(d, R_QUEUE_NUM, QSZ);
	wr(d, R_QUEUE_READY, 1);
	assert_int_equal(rd(d, R_QUEUE_READY), 0);

	/* A feature the device did not offer. */
	set_features(d, F_VERSION_1 | (1ULL << 40));
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	assert_false(rd(d, R_STATUS) & VIRTIO_STATUS_FEATURES_OK);

	set_features(d, F_VERSION_1);
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	assert_true(rd(d, R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	/* Settled: later feature writes are ignored. */
	set_features(d, 0);
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(rd(d, R_STATUS) & VIRTIO_STATUS_DRIVER_OK);
}

static void test_mmio_bad_rings_need_reset(void **state)
{
	struct fx *f = *state;
	struct device *d;

	add_device(f, virtio_rng_create(f->vm, MMIO_BASE, GSI));
	d = f->dev;
	wr(d, R_STATUS, ST_DRIVER_UP);
	set_features(d, F_VERSION_1);
	wr(d, R_STATUS, ST_DRIVER_UP | VIRTIO_STATUS_FEATURES_OK);
	wr(d, R_QUEUE_SEL, 0);
	wr(d, R_QUEUE_NUM, QSZ);
	wr(d, R_QUEUE_DESC_LO, 0);
	wr(d, R_QUEUE_DESC_HI, 1); /* 4 GiB: not RAM */
	wr(d, R_QUEUE_READY, 1);
	assert_int_equal(rd(d, R_QUEUE_READY), 0);
	assert_true(rd(d, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(rd(d, R_INT_STATUS) & VIRTIO_INT_CONFIG);
	assert_true(atomic_load(&f->hv.irq_pulses) >= 1);
	wr(d, R_STATUS, 0);
	assert_int_equal(rd(d, R_STATUS), 0);
	assert_int_equal(rd(d, R_INT_STATUS), 0);
}

static void test_mmio_rng_and_reset(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = f->ram + DATA_GPA;
	struct device *d;

	add_device(f, virtio_rng_create(f->vm, MMIO_BASE, GSI));
	d = f->dev;
	start_io(f);
	driver_up(d, 1);
	set_desc(f, 0, 0, DATA_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 0);
	wr(d, R_QUEUE_NOTIFY, 0); /* no ioeventfd on this backend: the MMIO path */
	assert_true(wait_used(f, 0, 1));
	assert_int_equal(gused(f, 0)->ring[0].len, 64);
	bool nonzero = false;
	for (int i = 0; i < 64; i++)
		nonzero |= buf[i] != 0;
	assert_true(nonzero);
	assert_true(wait_irq_pulses(f, 1));
	assert_true(rd(d, R_INT_STATUS) & VIRTIO_INT_USED);
	wr(d, R_INT_ACK, VIRTIO_INT_USED);
	assert_int_equal(rd(d, R_INT_STATUS), 0);

	/* Reset: the queue is forgotten; a notify now does nothing. */
	wr(d, R_STATUS, 0);
	assert_int_equal(rd(d, R_STATUS), 0);
	wr(d, R_QUEUE_SEL, 0);
	assert_int_equal(rd(d, R_QUEUE_READY), 0);
	publish(f, 0, 0);
	wr(d, R_QUEUE_NOTIFY, 0);
	usleep(50000);
	assert_int_equal(used_idx(f, 0), 1);

	/* Up again from zeroed rings: works from index 0. */
	memset(f->ram + QBASE(0), 0, 0x3000);
	driver_up(d, 1);
	set_desc(f, 0, 2, DATA_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 2);
	wr(d, R_QUEUE_NOTIFY, 0);
	assert_true(wait_used(f, 0, 1));
	assert_int_equal(gused(f, 0)->ring[0].id, 2);
}

static void test_mmio_bad_chain_needs_reset(void **state)
{
	struct fx *f = *state;
	struct device *d;

	add_device(f, virtio_rng_create(f->vm, MMIO_BASE, GSI));
	d = f->dev;
	start_io(f);
	driver_up(d, 1);
	set_desc(f, 0, 0, DATA_GPA, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	publish(f, 0, 0); /* a loop */
	wr(d, R_QUEUE_NOTIFY, 0);
	/* the I/O thread sets NEEDS_RESET, then raises the configuration
	 * interrupt: wait for both (a slow machine shows the gap) */
	for (int i = 0; i < WAIT_MS && !((rd(d, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET) &&
					 (rd(d, R_INT_STATUS) & VIRTIO_INT_CONFIG)); i++)
		usleep(1000);
	assert_true(rd(d, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(rd(d, R_INT_STATUS) & VIRTIO_INT_CONFIG);
	assert_int_equal(used_idx(f, 0), 0);
	/* Stays dead until reset, even for good chains. */
	set_desc(f, 0, 1, DATA_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 1);
	wr(d, R_QUEUE_NOTIFY, 0);
	usleep(50000);
	assert_int_equal(used_idx(f, 0), 0);
	wr(d, R_STATUS, 0);
	assert_false(rd(d, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- virtio-blk ---- */

#define IMG_SECTORS 64

struct blk_req_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static void make_image(struct fx *f, size_t extra_bytes)
{
	uint8_t sector[512];
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/vibevmm-blk-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	for (int s = 0; s < IMG_SECTORS; s++) {
		memset(sector, s, sizeof(sector));
		assert_int_equal(write(fd, sector, sizeof(sector)), sizeof(sector));
	}
	if (extra_bytes)
		assert_int_equal(write(fd, sector, extra_bytes), (ssize_t)extra_bytes);
	close(fd);
}

/* One request through the device: header, optional data, status. Returns
 * the status byte; *used_len the length the device reported. */
static int blk_request(struct fx *f, uint32_t type, uint64_t sector,
		       uint64_t data_gpa, uint32_t data_len, bool data_in,
		       uint32_t *used_len)
{
	struct blk_req_hdr *h = (void *)(f->ram + DATA_GPA);
	uint8_t *status = f->ram + DATA_GPA + 0x20;
	uint16_t before = used_idx(f, 0), slot = before % QSZ;

	*h = (struct blk_req_hdr){ type, 0, sector };
	*status = 0xee;
	set_desc(f, 0, 0, DATA_GPA, sizeof(*h), VIRTQ_DESC_F_NEXT, data_len ? 1 : 2);
	set_desc(f, 0, 1, data_gpa, data_len,
		 VIRTQ_DESC_F_NEXT | (data_in ? VIRTQ_DESC_F_WRITE : 0), 2);
	set_desc(f, 0, 2, DATA_GPA + 0x20, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 0);
	wr(f->dev, R_QUEUE_NOTIFY, 0);
	assert_true(wait_used(f, 0, (uint16_t)(before + 1)));
	*used_len = gused(f, 0)->ring[slot].len;
	return *status;
}

static void add_blk(struct fx *f, int readonly)
{
	char why[256] = "";

	add_device(f, virtio_blk_create(f->vm, MMIO_BASE, GSI, f->path, readonly,
					why, sizeof(why)));
	driver_up(f->dev, 1);
}

/* A device's counter by name (struct device_metrics), -1 when absent. */
static int64_t metric(struct device *dev, const char *name)
{
	struct device_metrics m = { 0 };

	assert_non_null(dev->metrics);
	dev->metrics(dev, &m);
	for (int i = 0; i < m.nr; i++)
		if (!strcmp(m.counter[i].name, name))
			return (int64_t)m.counter[i].value;
	return -1;
}

static void test_blk_read_write_id(void **state)
{
	struct fx *f = *state;
	uint8_t *data = f->ram + DATA_GPA + 0x1000, back[1024];
	uint32_t len;
	uint64_t cap;
	int fd;

	make_image(f, 0);
	add_blk(f, 0);
	assert_int_equal(f->dev->read(f->dev, R_CONFIG, &cap, 8), 0);
	assert_int_equal(cap, IMG_SECTORS);
	assert_false(device_features(f->dev) & (1ULL << 5)); /* not RO */

	/* read sectors 3-4: bytes 3 then 4 */
	memset(data, 0, 1024);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 3, DATA_GPA + 0x1000, 1024, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1025);
	assert_int_equal(data[0], 3);
	assert_int_equal(data[511], 3);
	assert_int_equal(data[512], 4);
	assert_int_equal(data[1023], 4);

	/* write sectors 10-11, then read the file on the host */
	for (int i = 0; i < 1024; i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, 10, DATA_GPA + 0x1000, 1024, false, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(pread(fd, back, sizeof(back), 10 * 512), sizeof(back));
	close(fd);
	assert_memory_equal(back, data, sizeof(back));

	/* GET_ID: the image's file name */
	memset(data, 0, 32);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA + 0x1000, 20, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(len, 21);
	assert_memory_equal(data, strrchr(f->path, '/') + 1, strlen(strrchr(f->path, '/') + 1));

	/* unknown request type */
	assert_int_equal(blk_request(f, 0x77, 0, 0, 0, false, &len), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(len, 1);

	/* The metrics counted each answer: one read and one write of 1 KiB,
	 * the refused request as a failure, GET_ID nowhere. */
	assert_int_equal(metric(f->dev, "read_count"), 1);
	assert_int_equal(metric(f->dev, "read_bytes"), 1024);
	assert_int_equal(metric(f->dev, "write_count"), 1);
	assert_int_equal(metric(f->dev, "write_bytes"), 1024);
	assert_int_equal(metric(f->dev, "flush_count"), 0);
	assert_int_equal(metric(f->dev, "fail_count"), 1);
}

static void test_blk_out_of_range(void **state)
{
	struct fx *f = *state;
	uint32_t len;

	make_image(f, 100); /* 100 stray bytes: not visible */
	add_blk(f, 0);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA_GPA + 0x1000, 512,
				     true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA_GPA + 0x1000, 1024,
				     true, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, IMG_SECTORS, DATA_GPA + 0x1000, 512,
				     true, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, ~0ULL, DATA_GPA + 0x1000, 512,
				     false, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, ~0ULL / 512, DATA_GPA + 0x1000, 512,
				     false, &len), VIRTIO_BLK_S_IOERR);
	/* not a whole number of sectors */
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 0, DATA_GPA + 0x1000, 100,
				     true, &len), VIRTIO_BLK_S_IOERR);
}

static void test_blk_readonly(void **state)
{
	struct fx *f = *state;
	uint8_t back[512];
	uint32_t len;
	int fd;

	make_image(f, 0);
	add_blk(f, 1);
	assert_true(device_features(f->dev) & (1ULL << 5)); /* VIRTIO_BLK_F_RO */
	memset(f->ram + DATA_GPA + 0x1000, 0xab, 512);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, 5, DATA_GPA + 0x1000, 512, false, &len),
			 VIRTIO_BLK_S_IOERR);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(pread(fd, back, sizeof(back), 5 * 512), sizeof(back));
	close(fd);
	for (int i = 0; i < 512; i++)
		assert_int_equal(back[i], 5);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 5, DATA_GPA + 0x1000, 512, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &len), VIRTIO_BLK_S_OK);
}

/* DISCARD / WRITE_ZEROES segments at DATA_GPA + 0x1000. */
static int blk_dwz(struct fx *f, uint32_t type, const uint64_t (*seg)[3], int n)
{
	uint8_t *p = f->ram + DATA_GPA + 0x1000;
	uint32_t len;

	for (int i = 0; i < n; i++) {
		uint32_t count = (uint32_t)seg[i][1], flags = (uint32_t)seg[i][2];

		memcpy(p + 16 * i, &seg[i][0], 8);
		memcpy(p + 16 * i + 8, &count, 4);
		memcpy(p + 16 * i + 12, &flags, 4);
	}
	return blk_request(f, type, 0, DATA_GPA + 0x1000, (uint32_t)(16 * n), false, &len);
}

/* Sector s of the image still holds byte s (make_image), or all zeroes. */
static void assert_sectors(struct fx *f, uint64_t first, uint64_t count, bool zero)
{
	uint8_t back[512];
	int fd = open(f->path, O_RDONLY);

	for (uint64_t s = first; s < first + count; s++) {
		assert_int_equal(pread(fd, back, sizeof(back), (off_t)(s * 512)), sizeof(back));
		for (int i = 0; i < 512; i++)
			assert_int_equal(back[i], zero ? 0 : (uint8_t)s);
	}
	close(fd);
}

static void test_blk_discard_write_zeroes(void **state)
{
	struct fx *f = *state;
	uint32_t v;

	make_image(f, 0);
	add_blk(f, 0);
	assert_true(device_features(f->dev) & (1ULL << 13)); /* DISCARD */
	assert_true(device_features(f->dev) & (1ULL << 14)); /* WRITE_ZEROES */
	assert_int_equal(f->dev->read(f->dev, R_CONFIG + 40, &v, 4), 0);
	assert_int_equal(v, 16);                               /* max_discard_seg */
	assert_int_equal(f->dev->read(f->dev, R_CONFIG + 52, &v, 4), 0);
	assert_int_equal(v, 1);                                /* max_write_zeroes_seg */

	/* write-zeroes, plain and with unmap: exactly those sectors read 0 */
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, (const uint64_t[][3]){ { 10, 4, 0 } }, 1),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, (const uint64_t[][3]){ { 20, 8, 1 } }, 1),
			 VIRTIO_BLK_S_OK);
	assert_sectors(f, 9, 1, false);
	assert_sectors(f, 10, 4, true);
	assert_sectors(f, 14, 6, false);
	assert_sectors(f, 20, 8, true);
	assert_sectors(f, 28, 1, false);
	/* discard of two ranges leaves the sectors around them alone */
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_DISCARD,
				 (const uint64_t[][3]){ { 32, 8, 0 }, { 48, 8, 0 } }, 2), VIRTIO_BLK_S_OK);
	assert_sectors(f, 31, 1, false);
	assert_sectors(f, 40, 8, false);
	assert_sectors(f, 56, 8, false);

	/* refused: unmap on discard, too many segments, none, a torn one */
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_DISCARD, (const uint64_t[][3]){ { 0, 8, 1 } }, 1),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES,
				 (const uint64_t[][3]){ { 0, 1, 0 }, { 2, 1, 0 } }, 2), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_DISCARD, (const uint64_t[][3]){ { 0, 1, 0 } }, 0),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_DISCARD, 0, DATA_GPA + 0x1000, 20, false, &v),
			 VIRTIO_BLK_S_UNSUPP);
	/* beyond the disk: IOERR, and no segment of the request is carried out */
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_DISCARD,
				 (const uint64_t[][3]){ { 0, 8, 0 }, { 60, 8, 0 } }, 2), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES,
				 (const uint64_t[][3]){ { ~0ULL / 512, 8, 0 } }, 1), VIRTIO_BLK_S_IOERR);
	assert_sectors(f, 0, 8, false);
}

static void test_blk_readonly_refuses_discard(void **state)
{
	struct fx *f = *state;

	make_image(f, 0);
	add_blk(f, 1);
	assert_false(device_features(f->dev) & (1ULL << 13));
	assert_false(device_features(f->dev) & (1ULL << 14));
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, (const uint64_t[][3]){ { 1, 2, 0 } }, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_DISCARD, (const uint64_t[][3]){ { 1, 2, 0 } }, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_sectors(f, 1, 2, false);
}

/*
 * Fault injection for virtio-blk: the device's host I/O (virtio_blk_set_io)
 * goes through hooks that keep a trace of the calls ('w' a plain write, 'd'
 * a write with RWF_DSYNC, 's' a sync: fdatasync on the worker, or the end
 * of the ring's), fail the next ones on demand with EIO, and check, while a
 * slow disk holds the call, that the request was not completed yet (status
 * byte still 0xee, used ring unchanged). On the io_uring path a gate (an
 * eventfd, -1: none) holds each flush's fdatasync back until the test
 * writes to it.
 */
struct blk_faults {
	struct fx *f;
	char trace[64];
	unsigned calls;
	int fail_syncs, fail_writes;   /* fail this many next calls */
	uint16_t used_before;          /* used index before the request */
	bool completed_early;
	int gate;
	atomic_int gate_calls;
	uint8_t gate_saw[4];           /* sector 5's first byte at each gate */
};

static void fault_call(struct blk_faults *p, char kind)
{
	if (p->calls < sizeof(p->trace) - 1)
		p->trace[p->calls++] = kind;
	usleep(20000); /* a slow disk: completion must still wait for us */
	if (used_idx(p->f, 0) != p->used_before || p->f->ram[DATA_GPA + 0x20] != 0xee)
		p->completed_early = true;
}

static int fault_sync(void *opaque, int fd)
{
	struct blk_faults *p = opaque;

	fault_call(p, 's');
	if (p->fail_syncs > 0) {
		p->fail_syncs--;
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

/* The ring's fdatasync of a flush returned res. */
static int fault_flush_done(void *opaque, int res)
{
	struct blk_faults *p = opaque;

	fault_call(p, 's');
	if (p->fail_syncs > 0) {
		p->fail_syncs--;
		return -EIO;
	}
	return res;
}

/* A flush's fdatasync is about to start: what the image holds then is
 * what it covers. */
static int fault_gate(void *opaque)
{
	struct blk_faults *p = opaque;
	int n = atomic_load(&p->gate_calls);
	int fd = open(p->f->path, O_RDONLY);

	/* No cmocka asserts on the worker: a failed read leaves 0. */
	if (fd >= 0 && n < (int)sizeof(p->gate_saw) &&
	    pread(fd, &p->gate_saw[n], 1, 5 * 512) != 1)
		p->gate_saw[n] = 0;
	if (fd >= 0)
		close(fd);
	atomic_fetch_add(&p->gate_calls, 1);
	return p->gate;
}

static ssize_t fault_pwritev2(void *opaque, int fd, const struct iovec *iov,
			      int cnt, off_t off, int flags)
{
	struct blk_faults *p = opaque;

	fault_call(p, flags & RWF_DSYNC ? 'd' : 'w');
	if (p->fail_writes > 0) {
		p->fail_writes--;
		errno = EIO;
		return -1;
	}
	return pwritev2(fd, iov, cnt, off, flags);
}

static void set_faults(struct fx *f, struct blk_faults *p)
{
	const struct virtio_blk_io io = {
		.sync = fault_sync, .pwritev2 = fault_pwritev2,
		.flush_done = fault_flush_done, .flush_gate = fault_gate, .opaque = p,
	};

	virtio_blk_set_io(f->dev, &io);
}

/* Before a request the hooks watch: the trace starts afresh. */
static void trace_start(struct blk_faults *p)
{
	memset(p->trace, 0, sizeof(p->trace));
	p->calls = 0;
	p->used_before = used_idx(p->f, 0);
}

static int blk_traced(struct blk_faults *p, uint32_t type, uint64_t sector,
		      uint32_t data_len, bool data_in)
{
	uint32_t len;

	trace_start(p);
	return blk_request(p->f, type, sector, DATA_GPA + 0x1000, data_len, data_in, &len);
}

/* The last host call of the trace. */
static char last_call(const struct blk_faults *p)
{
	return p->calls ? p->trace[p->calls - 1] : 0;
}

/* A blk device on a new f->path with nq queues and the fault hooks (gate:
 * an eventfd or -1), on f->aio's path; its driver not up yet. */
static void blk_faulty_device(struct fx *f, struct blk_faults *p, unsigned nq, int gate)
{
	struct virtio_blk_options o = { .num_queues = nq, .aio = f->aio };

	*p = (struct blk_faults){ .f = f, .gate = gate };
	make_image(f, 0);
	o.path = f->path;
	add_device(f, virtio_blk_create_opts(f->vm, MMIO_BASE, GSI, &o, NULL, 0));
	set_faults(f, p);
	memset(f->ram + QBASE(0), 0, (size_t)nq * 0x10000);
}

/* ... with one queue, its driver up with `features` (the device's offer
 * without the bits in drop). */
static void add_blk_faulty(struct fx *f, struct blk_faults *p, uint64_t drop)
{
	blk_faulty_device(f, p, 1, -1);
	driver_up_with(f->dev, 1, device_features(f->dev) & ~drop);
}

#define F_BLK_FLUSH (1ULL << 9)

static void test_blk_flush_before_completion(void **state)
{
	struct fx *f = *state;
	struct blk_faults p;

	add_blk_faulty(f, &p, 0);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "s");
	assert_false(p.completed_early);
	/* With FLUSH negotiated, writes are plain (the guest flushes). */
	memset(f->ram + DATA_GPA + 0x1000, 0x3c, 512);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_OUT, 7, 512, false), VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "w");
}

/* The log lines written while fn runs, with warnings on. */
static char *stderr_of(struct fx *f, void (*fn)(struct fx *, struct blk_faults *),
		       struct blk_faults *p)
{
	char tmpl[] = "/tmp/vibevmm-log-XXXXXX", *text = calloc(1, 4096);
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0 && text);
	unlink(tmpl);
	f->vm->log_level = LOG_WARN;
	assert_int_equal(vm_set_log_fd(f->vm, fd), 0);
	fn(f, p);
	assert_int_equal(vm_set_log_fd(f->vm, STDERR_FILENO), 0);
	f->vm->log_level = LOG_NONE;
	assert_true(pread(fd, text, 4095, 0) >= 0);
	close(fd);
	return text;
}

static int count_of(const char *text, const char *word)
{
	int n = 0;

	for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
		n++;
	return n;
}

/* A failed sync, then everything the driver tries before a reset. */
static void fail_a_flush(struct fx *f, struct blk_faults *p)
{
	uint8_t *data = f->ram + DATA_GPA + 0x1000;

	memset(data, 0xaa, 512);
	assert_int_equal(blk_traced(p, VIRTIO_BLK_T_OUT, 10, 512, false), VIRTIO_BLK_S_OK);
	p->fail_syncs = 1; /* one report, as Linux gives it */
	assert_int_equal(blk_traced(p, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_IOERR);
	assert_string_equal(p->trace, "s");
	assert_false(p->completed_early);
	/* The retry finds a sync that would succeed: it must fail anyway. */
	assert_int_equal(blk_traced(p, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_IOERR);
	/* Every data change is refused, and nothing reaches the image. */
	memset(data, 0xbb, 512);
	assert_int_equal(blk_traced(p, VIRTIO_BLK_T_OUT, 12, 512, false), VIRTIO_BLK_S_IOERR);
	assert_string_equal(p->trace, "");
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, (const uint64_t[][3]){ { 20, 2, 0 } }, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_DISCARD, (const uint64_t[][3]){ { 30, 8, 0 } }, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_sectors(f, 12, 1, false);
	assert_sectors(f, 20, 2, false);
	assert_sectors(f, 30, 8, false);
	/* Reads and GET_ID go on. */
	memset(data, 0, 512);
	assert_int_equal(blk_traced(p, VIRTIO_BLK_T_IN, 10, 512, true), VIRTIO_BLK_S_OK);
	assert_int_equal(data[0], 0xaa);
	assert_int_equal(data[511], 0xaa);
	assert_int_equal(blk_traced(p, VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_traced(p, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_IOERR);
}

static void test_blk_failed_flush_sticks_until_reset(void **state)
{
	struct fx *f = *state;
	struct blk_faults p;
	char *log;

	add_blk_faulty(f, &p, 0);
	log = stderr_of(f, fail_a_flush, &p);
	/* Said once, with the errno. */
	assert_int_equal(count_of(log, "cannot make writes durable"), 1);
	assert_non_null(strstr(log, strerror(EIO)));
	free(log);
	/* The driver resets the device: writes and flushes work again. */
	memset(f->ram + QBASE(0), 0, 0x3000);
	driver_up(f->dev, 1);
	memset(f->ram + DATA_GPA + 0x1000, 0xcc, 512);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_OUT, 12, 512, false), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "s");
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, (const uint64_t[][3]){ { 20, 2, 0 } }, 1),
			 VIRTIO_BLK_S_OK);
	assert_sectors(f, 20, 2, true);
}

static void test_blk_write_through_without_flush(void **state)
{
	struct fx *f = *state;
	uint8_t *data = f->ram + DATA_GPA + 0x1000, back[512];
	struct blk_faults p;
	int fd;

	add_blk_faulty(f, &p, F_BLK_FLUSH);
	/* Each write is durable (RWF_DSYNC) before it completes. */
	memset(data, 0x5e, 512);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_OUT, 3, 512, false), VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "d");
	assert_false(p.completed_early);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(pread(fd, back, sizeof(back), 3 * 512), sizeof(back));
	close(fd);
	assert_memory_equal(back, data, sizeof(back));
	/* Write-zeroes and discard: the change (fallocate, or plain writes
	 * of zeroes where it cannot), then a sync, then completion. */
	trace_start(&p);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, (const uint64_t[][3]){ { 20, 2, 0 } }, 1),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(last_call(&p), 's');
	assert_false(p.completed_early);
	assert_sectors(f, 20, 2, true);
	trace_start(&p);
	assert_int_equal(blk_dwz(f, VIRTIO_BLK_T_DISCARD, (const uint64_t[][3]){ { 32, 8, 0 } }, 1),
			 VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "s");
	assert_false(p.completed_early);
	/* A write whose durability fails fails, and so does every later one. */
	p.fail_writes = 1;
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_OUT, 4, 512, false), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_OUT, 5, 512, false), VIRTIO_BLK_S_IOERR);
	assert_string_equal(p.trace, "");
	assert_sectors(f, 5, 1, false);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_IN, 3, 512, true), VIRTIO_BLK_S_OK);
	/* A driver that takes FLUSH after the reset gets a write-back disk. */
	memset(f->ram + QBASE(0), 0, 0x3000);
	driver_up(f->dev, 1);
	assert_int_equal(blk_traced(&p, VIRTIO_BLK_T_OUT, 5, 512, false), VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "w");
}

/* The durability tests again with aio=sync (above: io_uring, where the ring
 * does a flush's fdatasync). */
#define ON_SYNC_PATH(test)						\
	static void test##_sync(void **state)				\
	{								\
		((struct fx *)*state)->aio = VIRTIO_BLK_AIO_SYNC;	\
		test(state);						\
	}
ON_SYNC_PATH(test_blk_flush_before_completion)
ON_SYNC_PATH(test_blk_failed_flush_sticks_until_reset)
ON_SYNC_PATH(test_blk_write_through_without_flush)

/* ---- the disk worker under the seccomp sandbox ---- */

/* Flush hooks that also open a socket, on the worker thread (the sync
 * path's fdatasync, the end of the ring's). */
static int sync_with_socket(void *opaque, int fd)
{
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (s < 0)
		return -1;
	close(s);
	return fdatasync(fd);
}

static int flush_done_with_socket(void *opaque, int res)
{
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (s < 0)
		return -errno;
	close(s);
	return res;
}

/* In a child (the filter is for good): write, read back, write zeroes,
 * discard and flush through a worker that confined itself. 0 = all done. */
static int blk_sandboxed(struct fx *f, bool seccomp, bool socket_in_flush)
{
	static const uint64_t zero[][3] = { { 20, 8, 1 } }, hole[][3] = { { 32, 8, 0 } };
	uint8_t *data = f->ram + DATA_GPA + 0x1000;
	uint32_t len;

	if (seccomp && vm_enable_seccomp(f->vm))
		return 10;
	add_blk(f, 0);
	if (socket_in_flush)
		virtio_blk_set_io(f->dev, &(const struct virtio_blk_io){
			.sync = sync_with_socket, .flush_done = flush_done_with_socket });
	memset(data, 0xa5, 1024);
	if (blk_request(f, VIRTIO_BLK_T_OUT, 10, DATA_GPA + 0x1000, 1024, false, &len) != VIRTIO_BLK_S_OK)
		return 11;
	memset(data, 0, 1024);
	if (blk_request(f, VIRTIO_BLK_T_IN, 10, DATA_GPA + 0x1000, 1024, true, &len) != VIRTIO_BLK_S_OK ||
	    data[0] != 0xa5 || data[1023] != 0xa5)
		return 12;
	if (blk_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, zero, 1) != VIRTIO_BLK_S_OK ||
	    blk_dwz(f, VIRTIO_BLK_T_DISCARD, hole, 1) != VIRTIO_BLK_S_OK)
		return 13;
	if (blk_request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &len) != VIRTIO_BLK_S_OK)
		return 14;
	return 0;
}

static int blk_sandboxed_status(struct fx *f, bool seccomp, bool socket_in_flush)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(blk_sandboxed(f, seccomp, socket_in_flush));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_blk_worker_under_seccomp(void **state)
{
	struct fx *f = *state;
	int status;

	make_image(f, 0);
	/* Everything a disk does works under the worker's list ... */
	status = blk_sandboxed_status(f, true, false);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* ... which is real: a socket from the worker kills the process, */
	status = blk_sandboxed_status(f, true, true);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
	/* and only because of it. */
	status = blk_sandboxed_status(f, false, true);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_blk_bad_requests(void **state)
{
	struct fx *f = *state;
	uint32_t len;

	make_image(f, 0);
	add_blk(f, 0);
	/* header too short (8 bytes): answered with IOERR */
	set_desc(f, 0, 0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
	set_desc(f, 0, 2, DATA_GPA + 0x20, 1, VIRTQ_DESC_F_WRITE, 0);
	f->ram[DATA_GPA + 0x20] = 0xee;
	publish(f, 0, 0);
	wr(f->dev, R_QUEUE_NOTIFY, 0);
	assert_true(wait_used(f, 0, 1));
	assert_int_equal(f->ram[DATA_GPA + 0x20], VIRTIO_BLK_S_IOERR);
	/* data pointing outside RAM: the queue is broken, device needs reset */
	set_desc(f, 0, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 0, 1, RAM_SIZE, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	publish(f, 0, 0);
	wr(f->dev, R_QUEUE_NOTIFY, 0);
	for (int i = 0; i < WAIT_MS && !(rd(f->dev, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f->dev, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(used_idx(f, 0), 1);
	/* after a reset the disk works again */
	memset(f->ram + QBASE(0), 0, 0x3000);
	driver_up(f->dev, 1);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 1, DATA_GPA + 0x1000, 512, true, &len),
			 VIRTIO_BLK_S_OK);
}

static void test_blk_create_errors(void **state)
{
	struct fx *f = *state;
	char why[256];
	struct device *d;

	assert_null(virtio_blk_create(f->vm, MMIO_BASE, GSI, "/nonexistent/disk.img", 0,
				      why, sizeof(why)));
	assert_non_null(strstr(why, "No such file"));
	assert_null(virtio_blk_create(f->vm, MMIO_BASE, GSI, "/tmp", 0, why, sizeof(why)));
	assert_non_null(strstr(why, "directory"));
	assert_null(virtio_blk_create(f->vm, MMIO_BASE, GSI, "/dev/null", 1, why, sizeof(why)));
	assert_non_null(strstr(why, "not a regular file"));

	/* A second writer of the same image is refused; so is a reader. */
	make_image(f, 0);
	d = virtio_blk_create(f->vm, MMIO_BASE, GSI, f->path, 0, why, sizeof(why));
	assert_non_null(d);
	assert_null(virtio_blk_create(f->vm, MMIO_BASE + 0x1000, GSI + 1, f->path, 0,
				      why, sizeof(why)));
	assert_non_null(strstr(why, "in use"));
	assert_null(virtio_blk_create(f->vm, MMIO_BASE + 0x1000, GSI + 1, f->path, 1,
				      why, sizeof(why)));
	d->destroy(d);
	/* Readers share. */
	d = virtio_blk_create(f->vm, MMIO_BASE, GSI, f->path, 1, why, sizeof(why));
	assert_non_null(d);
	struct device *d2 = virtio_blk_create(f->vm, MMIO_BASE + 0x1000, GSI + 1, f->path, 1,
					      why, sizeof(why));
	assert_non_null(d2);
	d2->destroy(d2);
	d->destroy(d);
}

/* ---- virtio-blk: io_uring, multi-queue, cache=none ---- */

#define HDR_GPA(i) (0x300000ULL + (uint64_t)(i) * 0x40)
#define BUF_GPA(i) (0x400000ULL + (uint64_t)(i) * 0x2000)
#define BLK_CFG_NUM_QUEUES 34

struct breq {
	uint32_t type;
	uint64_t sector;
	uint32_t len;
	uint32_t misalign; /* bytes past a page boundary: O_DIRECT bounces */
};

/* Requests n of queue q: header, data and status of request k at slots
 * HDR_GPA/BUF_GPA(q * 8 + k), descriptors 3k..3k+2. Published together. */
static void blk_post(struct fx *f, unsigned q, const struct breq *r, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = q * 8 + k;
		struct blk_req_hdr *h = (void *)(f->ram + HDR_GPA(i));
		bool in = r[k].type == VIRTIO_BLK_T_IN;

		*h = (struct blk_req_hdr){ r[k].type, 0, r[k].sector };
		f->ram[HDR_GPA(i) + 0x20] = 0xee;
		set_desc(f, q, 3 * k, HDR_GPA(i), sizeof(*h), VIRTQ_DESC_F_NEXT,
			 (uint16_t)(3 * k + (r[k].len ? 1 : 2)));
		set_desc(f, q, 3 * k + 1, BUF_GPA(i) + r[k].misalign, r[k].len,
			 VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(3 * k + 2));
		set_desc(f, q, 3 * k + 2, HDR_GPA(i) + 0x20, 1, VIRTQ_DESC_F_WRITE, 0);
		publish(f, q, (uint16_t)(3 * k));
	}
}

static uint8_t blk_status(struct fx *f, unsigned q, unsigned k)
{
	return f->ram[HDR_GPA(q * 8 + k) + 0x20];
}

static uint8_t *blk_buf(struct fx *f, unsigned q, unsigned k, uint32_t misalign)
{
	return f->ram + BUF_GPA(q * 8 + k) + misalign;
}

/* Device k of a test (window and GSI of its own), driver up on nq queues. */
static struct device *add_blk_opts(struct fx *f, unsigned k,
				   const struct virtio_blk_options *o, unsigned nq)
{
	char why[256] = "";
	struct device *d = virtio_blk_create_opts(f->vm, MMIO_BASE + k * 0x1000, GSI + k,
						   o, why, sizeof(why));

	if (!d)
		print_message("virtio_blk_create_opts: %s\n", why);
	add_device(f, d);
	memset(f->ram + QBASE(0), 0, (size_t)nq * 0x10000);
	driver_up(d, nq);
	return d;
}

/* Four queues, four requests on each in flight at once: every queue gets
 * its answers, the data is right, the guest sees num_queues. */
static void test_blk_multiqueue(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_options o = { .num_queues = 4 };
	struct breq r[4][4];
	uint16_t nq = 0;

	make_image(f, 0);
	o.path = f->path;
	add_blk_opts(f, 0, &o, 4);
	assert_int_equal(f->dev->read(f->dev, R_CONFIG + BLK_CFG_NUM_QUEUES, &nq, 2), 0);
	assert_int_equal(nq, 4);
	assert_true(device_features(f->dev) & (1ULL << 12)); /* VIRTIO_BLK_F_MQ */
	for (unsigned q = 0; q < 4; q++) {
		for (unsigned k = 0; k < 4; k++) {
			r[q][k] = (struct breq){ VIRTIO_BLK_T_IN, q * 16 + k * 4, 1024, 0 };
			memset(blk_buf(f, q, k, 0), 0, 1024);
		}
		blk_post(f, q, r[q], 4);
	}
	for (unsigned q = 0; q < 4; q++)
		wr(f->dev, R_QUEUE_NOTIFY, q);
	for (unsigned q = 0; q < 4; q++) {
		assert_true(wait_used(f, q, 4));
		for (unsigned k = 0; k < 4; k++) {
			uint8_t *b = blk_buf(f, q, k, 0);

			assert_int_equal(blk_status(f, q, k), VIRTIO_BLK_S_OK);
			assert_int_equal(b[0], q * 16 + k * 4);
			assert_int_equal(b[1023], q * 16 + k * 4 + 1);
		}
		for (unsigned u = 0; u < 4; u++)
			assert_int_equal(gused(f, q)->ring[u].len, 1025);
	}
}

/* The same writes through io_uring and synchronously, through the page
 * cache and O_DIRECT (with buffers that need bouncing, and offsets O_DIRECT
 * cannot take): the same bytes on disk and read back. */
static void blk_workload(struct fx *f, unsigned dev_k, const struct virtio_blk_options *base,
			 uint8_t img[IMG_SECTORS * 512])
{
	struct virtio_blk_options o = *base;
	static const uint32_t misalign[3] = { 0, 1, 512 };
	struct breq w[4][4];
	int fd;

	o.path = f->path;
	o.num_queues = 4;
	add_blk_opts(f, dev_k, &o, 4);
	for (unsigned q = 0; q < 4; q++) {
		for (unsigned k = 0; k < 4; k++) {
			unsigned i = q * 4 + k;

			w[q][k] = (struct breq){ VIRTIO_BLK_T_OUT, i * 4, 512 * (1 + i % 4),
						 misalign[i % 3] };
			for (uint32_t b = 0; b < w[q][k].len; b++)
				blk_buf(f, q, k, w[q][k].misalign)[b] = (uint8_t)(b * 31 + i * 7 + 1);
		}
		blk_post(f, q, w[q], 4);
		wr(f->dev, R_QUEUE_NOTIFY, q);
	}
	for (unsigned q = 0; q < 4; q++) {
		assert_true(wait_used(f, q, 4));
		for (unsigned k = 0; k < 4; k++)
			assert_int_equal(blk_status(f, q, k), VIRTIO_BLK_S_OK);
	}
	/* Read each back into zeroed buffers (same alignment), and a read
	 * beyond the disk: IOERR. */
	for (unsigned q = 0; q < 4; q++) {
		struct breq rd4[4];

		for (unsigned k = 0; k < 4; k++) {
			rd4[k] = w[q][k];
			rd4[k].type = VIRTIO_BLK_T_IN;
			memset(blk_buf(f, q, k, rd4[k].misalign), 0, rd4[k].len);
		}
		if (q == 3)
			rd4[3] = (struct breq){ VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 1024, 0 };
		blk_post(f, q, rd4, 4);
		wr(f->dev, R_QUEUE_NOTIFY, q);
		assert_true(wait_used(f, q, 8));
		for (unsigned k = 0; k < 4; k++) {
			unsigned i = q * 4 + k;

			if (q == 3 && k == 3) {
				assert_int_equal(blk_status(f, q, k), VIRTIO_BLK_S_IOERR);
				continue;
			}
			assert_int_equal(blk_status(f, q, k), VIRTIO_BLK_S_OK);
			for (uint32_t b = 0; b < rd4[k].len; b++)
				assert_int_equal(blk_buf(f, q, k, rd4[k].misalign)[b],
						 (uint8_t)(b * 31 + i * 7 + 1));
		}
	}
	/* A FLUSH, then the image as the host sees it. */
	{
		uint32_t len;

		assert_int_equal(blk_request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &len),
				 VIRTIO_BLK_S_OK);
	}
	wr(f->dev, R_STATUS, 0); /* stop it: the next device reuses the rings */
	fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, img, IMG_SECTORS * 512, 0), IMG_SECTORS * 512);
	close(fd);
}

/* Whether files at path can be opened with O_DIRECT (tmpfs cannot). */
static bool has_o_direct(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void test_blk_uring_sync_direct_identical(void **state)
{
	struct fx *f = *state;
	static const struct virtio_blk_options modes[] = {
		{ .aio = VIRTIO_BLK_AIO_IO_URING },
		{ .aio = VIRTIO_BLK_AIO_SYNC },
		{ .aio = VIRTIO_BLK_AIO_IO_URING, .cache = VIRTIO_BLK_CACHE_NONE },
		{ .aio = VIRTIO_BLK_AIO_SYNC, .cache = VIRTIO_BLK_CACHE_NONE },
	};
	static uint8_t img[4][IMG_SECTORS * 512];

	for (unsigned m = 0; m < ARRAY_SIZE(modes); m++) {
		if (f->path[0])
			unlink(f->path);
		make_image(f, 0);
		if (modes[m].cache == VIRTIO_BLK_CACHE_NONE && !has_o_direct(f->path)) {
			/* tmpfs (the arm64 test host's only file system) */
			printf("skipping cache=none: %s's file system has no O_DIRECT\n", f->path);
			continue;
		}
		blk_workload(f, m, &modes[m], img[m]);
		if (m)
			assert_memory_equal(img[0], img[m], sizeof(img[0]));
	}
	/* and the writes did land: sector 0 is no longer all 0 bytes */
	assert_int_equal(img[0][0], 1);
}

/* The image shrank under a running disk: the ring's short or empty read
 * fails the request with IOERR; the device goes on. */
static void test_blk_uring_short_read(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_options o = { .num_queues = 1 };
	uint32_t len;

	make_image(f, 0);
	o.path = f->path;
	add_blk_opts(f, 0, &o, 1);
	assert_int_equal(truncate(f->path, 32 * 512), 0);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 40, DATA_GPA + 0x1000, 1024, true, &len),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 31, DATA_GPA + 0x1000, 1024, true, &len),
			 VIRTIO_BLK_S_IOERR);
	f->ram[DATA_GPA + 0x1000] = 0;
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 30, DATA_GPA + 0x1000, 1024, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1025);
	assert_int_equal(f->ram[DATA_GPA + 0x1000], 30);
}

static void post_one(struct fx *f, unsigned q, uint32_t type, uint64_t sector, uint32_t len)
{
	blk_post(f, q, &(const struct breq){ type, sector, len, 0 }, 1);
	wr(f->dev, R_QUEUE_NOTIFY, q);
}

static bool wait_gate(struct blk_faults *p, int want)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if (atomic_load(&p->gate_calls) >= want)
			return true;
		usleep(1000);
	}
	return false;
}

static void open_gate(int gate)
{
	uint64_t one = 1;

	assert_int_equal(write(gate, &one, sizeof(one)), sizeof(one));
}

/* Whether this kernel (and its seccomp policy) gives us io_uring. */
static bool have_io_uring(void)
{
	struct io_uring_params prm = { 0 };
	int fd = (int)syscall(__NR_io_uring_setup, 4, &prm);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* A 3-queue io_uring disk whose first flush (queue 0) waits at the gate;
 * skipped where io_uring is unavailable (the disk would be synchronous). */
static int gated_flush(struct fx *f, struct blk_faults *p)
{
	int gate;

	if (!have_io_uring())
		skip();
	gate = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
	assert_true(gate > 0);
	f->gate = gate;
	blk_faulty_device(f, p, 3, gate);
	driver_up(f->dev, 3);
	post_one(f, 0, VIRTIO_BLK_T_FLUSH, 0, 0);
	assert_true(wait_gate(p, 1));
	return gate;
}

/* io_uring: while a flush's fdatasync is under way, the other queues go on;
 * a flush taken meanwhile, after a write completed, gets an fdatasync of
 * its own that starts with the write in the image (so it covers it). */
static void test_blk_ring_flush_leaves_other_queues(void **state)
{
	struct fx *f = *state;
	struct blk_faults p;
	int gate = gated_flush(f, &p);
	const struct breq rw[2] = { { VIRTIO_BLK_T_OUT, 5, 512, 0 }, { VIRTIO_BLK_T_IN, 3, 512, 0 } };

	memset(blk_buf(f, 1, 0, 0), 0x77, 512);
	memset(blk_buf(f, 1, 1, 0), 0, 512);
	blk_post(f, 1, rw, 2);
	wr(f->dev, R_QUEUE_NOTIFY, 1);
	assert_true(wait_used(f, 1, 2));
	assert_int_equal(blk_status(f, 1, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_status(f, 1, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_buf(f, 1, 1, 0)[511], 3);
	assert_int_equal(used_idx(f, 0), 0); /* the flush still waits */
	trace_start(&p);
	post_one(f, 2, VIRTIO_BLK_T_FLUSH, 0, 0);
	usleep(50000);
	assert_int_equal(used_idx(f, 2), 0);
	open_gate(gate); /* the first fdatasync runs and answers queue 0 only */
	assert_true(wait_used(f, 0, 1));
	assert_int_equal(blk_status(f, 0, 0), VIRTIO_BLK_S_OK);
	assert_true(wait_gate(&p, 2));
	usleep(50000);
	assert_int_equal(used_idx(f, 2), 0);
	assert_int_equal(p.gate_saw[0], 5);    /* taken before the write */
	assert_int_equal(p.gate_saw[1], 0x77); /* taken after it */
	open_gate(gate);
	assert_true(wait_used(f, 2, 1));
	assert_int_equal(blk_status(f, 2, 0), VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "ss");
}

/* A failed ring fdatasync fails the flushes waiting for the next one
 * without a sync, and every data change after it, until a reset. */
static void fail_gated_flushes(struct fx *f, struct blk_faults *p)
{
	int gate = gated_flush(f, p);

	post_one(f, 1, VIRTIO_BLK_T_FLUSH, 0, 0);
	usleep(50000);
	assert_int_equal(used_idx(f, 1), 0);
	trace_start(p);
	p->fail_syncs = 1;
	open_gate(gate);
	assert_true(wait_used(f, 0, 1));
	assert_true(wait_used(f, 1, 1));
	assert_int_equal(blk_status(f, 0, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_status(f, 1, 0), VIRTIO_BLK_S_IOERR);
	assert_string_equal(p->trace, "s");
	assert_int_equal(atomic_load(&p->gate_calls), 1);
	memset(blk_buf(f, 2, 0, 0), 0xbb, 512);
	post_one(f, 2, VIRTIO_BLK_T_OUT, 12, 512);
	assert_true(wait_used(f, 2, 1));
	assert_int_equal(blk_status(f, 2, 0), VIRTIO_BLK_S_IOERR);
	assert_sectors(f, 12, 1, false);
	p->gate = -1; /* no more waiting */
}

static void test_blk_ring_failed_flush_fails_waiting(void **state)
{
	struct fx *f = *state;
	struct blk_faults p;
	char *log = stderr_of(f, fail_gated_flushes, &p);

	assert_int_equal(count_of(log, "cannot make writes durable"), 1);
	assert_non_null(strstr(log, strerror(EIO)));
	free(log);
	/* After a reset, flushes are ring fdatasyncs again. */
	memset(f->ram + QBASE(0), 0, 3 * 0x10000);
	driver_up(f->dev, 3);
	trace_start(&p);
	post_one(f, 0, VIRTIO_BLK_T_FLUSH, 0, 0);
	assert_true(wait_used(f, 0, 1));
	assert_int_equal(blk_status(f, 0, 0), VIRTIO_BLK_S_OK);
	assert_string_equal(p.trace, "s");
}

/* Options the library refuses. */
/* A second image of `sectors` sectors, each byte `fill`, at path. */
static void make_other_image(char path[64], unsigned sectors, uint8_t fill)
{
	uint8_t sector[512];
	int fd;

	snprintf(path, 64, "/tmp/vibevmm-blk2-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	memset(sector, fill, sizeof(sector));
	for (unsigned s = 0; s < sectors; s++)
		assert_int_equal(write(fd, sector, sizeof(sector)), sizeof(sector));
	close(fd);
}

static bool can_lock(const char *path)
{
	int fd = open(path, O_RDONLY);
	bool ok = flock(fd, LOCK_EX | LOCK_NB) == 0;

	close(fd);
	return ok;
}

/* virtio_blk_replace_image: requests after it see the new image (reads,
 * writes, GET_ID), the guest gets the new capacity with a new config
 * generation and a config interrupt, the old image is unlocked; a path
 * that cannot be opened fails and leaves the old image in place. */
static void blk_replace_image(struct fx *f, enum virtio_blk_aio aio)
{
	struct virtio_blk_options o = { .num_queues = 1, .aio = aio };
	uint8_t *data = f->ram + DATA_GPA + 0x1000, back[512];
	char other[64], why[256] = "";
	uint32_t len, gen;
	uint64_t cap = 0;
	int fd;

	make_image(f, 0);
	make_other_image(other, 2 * IMG_SECTORS, 0x5a);
	o.path = f->path;
	add_blk_opts(f, 0, &o, 1);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 3, DATA_GPA + 0x1000, 512, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(data[0], 3);
	assert_false(can_lock(f->path));
	gen = rd(f->dev, R_CONFIG_GENERATION);
	wr(f->dev, R_INT_ACK, rd(f->dev, R_INT_STATUS));

	assert_int_equal(virtio_blk_replace_image(f->dev, other, why, sizeof(why)), 0);
	assert_int_equal(f->dev->read(f->dev, R_CONFIG, &cap, 8), 0);
	assert_int_equal(cap, 2 * IMG_SECTORS);
	assert_int_not_equal(rd(f->dev, R_CONFIG_GENERATION), gen);
	assert_true(rd(f->dev, R_INT_STATUS) & 0x2); /* configuration change */
	assert_true(can_lock(f->path)); /* the old image was let go */
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 3, DATA_GPA + 0x1000, 512, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(data[0], 0x5a);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, IMG_SECTORS + 1, DATA_GPA + 0x1000, 512,
				     true, &len), VIRTIO_BLK_S_OK); /* beyond the old size */
	memset(data, 0xc3, 512);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_OUT, 1, DATA_GPA + 0x1000, 512, false, &len),
			 VIRTIO_BLK_S_OK);
	fd = open(other, O_RDONLY);
	assert_int_equal(pread(fd, back, 512, 512), 512);
	close(fd);
	assert_int_equal(back[0], 0xc3);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(pread(fd, back, 512, 512), 512);
	close(fd);
	assert_int_equal(back[0], 1); /* the old image untouched */
	memset(data, 0, 32);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA + 0x1000, 20, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(data, strrchr(other, '/') + 1, strlen(strrchr(other, '/') + 1));

	/* A missing file, and an image locked by somebody else: refused. */
	assert_int_equal(virtio_blk_replace_image(f->dev, "/nonexistent/disk.img", why,
						  sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/disk.img"));
	fd = open(f->path, O_RDONLY);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(virtio_blk_replace_image(f->dev, f->path, why, sizeof(why)), -EWOULDBLOCK);
	assert_non_null(strstr(why, "in use"));
	close(fd);
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 1, DATA_GPA + 0x1000, 512, true, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(data[0], 0xc3); /* still the second image */

	/* The same image, grown: kept open and locked, the new size told. */
	fd = open(other, O_WRONLY | O_APPEND);
	memset(back, 0x77, 512);
	for (int i = 0; i < 8; i++)
		assert_int_equal(write(fd, back, 512), 512);
	close(fd);
	gen = rd(f->dev, R_CONFIG_GENERATION);
	assert_int_equal(virtio_blk_replace_image(f->dev, other, why, sizeof(why)), 0);
	assert_int_equal(f->dev->read(f->dev, R_CONFIG, &cap, 8), 0);
	assert_int_equal(cap, 2 * IMG_SECTORS + 8);
	assert_int_not_equal(rd(f->dev, R_CONFIG_GENERATION), gen);
	assert_false(can_lock(other));
	assert_int_equal(blk_request(f, VIRTIO_BLK_T_IN, 2 * IMG_SECTORS + 7, DATA_GPA + 0x1000,
				     512, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(data[0], 0x77);
	unlink(other);
}

static void test_blk_replace_image(void **state)
{
	blk_replace_image(*state, VIRTIO_BLK_AIO_IO_URING);
}

static void test_blk_replace_image_sync(void **state)
{
	blk_replace_image(*state, VIRTIO_BLK_AIO_SYNC);
}

static void test_blk_options(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_options o = { .num_queues = VIRTIO_BLK_MAX_QUEUES + 1 };
	char why[256] = "";

	make_image(f, 0);
	o.path = f->path;
	assert_null(virtio_blk_create_opts(f->vm, MMIO_BASE, GSI, &o, why, sizeof(why)));
	assert_non_null(strstr(why, "num_queues"));
	o.num_queues = 1;
	o.cache = 7;
	assert_null(virtio_blk_create_opts(f->vm, MMIO_BASE, GSI, &o, why, sizeof(why)));
}

static void test_blk_parse(void **state)
{
	uint8_t hdr[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t data[1024], st[1];
	struct iovec iov[4] = {
		{ hdr, 10 }, { hdr + 10, 6 },  /* header split in two */
		{ data, 1024 }, { st, 1 },
	}, out[4];
	struct virtio_blk_req r;

	/* OUT: data is the readable part after the header */
	iov[2].iov_len = 1024;
	assert_int_equal(virtio_blk_parse_request(iov, 3, 1, out, 4, &r), 0);
	assert_int_equal(r.type, VIRTIO_BLK_T_OUT);
	assert_int_equal(r.sector, 9);
	assert_int_equal(r.data_len, 1024);
	assert_ptr_equal(r.status, st);
	/* IN: the writable part before the status */
	hdr[0] = VIRTIO_BLK_T_IN;
	assert_int_equal(virtio_blk_parse_request(iov, 2, 2, out, 4, &r), 0);
	assert_int_equal(r.data_len, 1024);
	assert_ptr_equal(r.data[0].iov_base, data);
	/* status and data in one writable buffer */
	struct iovec merged[3] = { { hdr, 16 }, { data, 513 } };
	assert_int_equal(virtio_blk_parse_request(merged, 1, 1, out, 4, &r), 0);
	assert_int_equal(r.data_len, 512);
	assert_ptr_equal(r.status, data + 512);
	/* no writable byte at all: cannot be answered */
	assert_int_equal(virtio_blk_parse_request(iov, 3, 0, out, 4, &r), -EINVAL);
	/* short header: answered with IOERR */
	assert_int_equal(virtio_blk_parse_request(iov, 1, 1, out, 4, &r), 0);
	assert_true(r.bad_header);
}

/* ---- virtio-console ---- */

static int drop_x(void *opaque, uint8_t *buf, int len)
{
	int out = 0;

	for (int i = 0; i < len; i++)
		if (buf[i] != 'x')
			buf[out++] = buf[i];
	return out;
}

static void test_console(void **state)
{
	struct fx *f = *state;
	int in[2], out[2];
	char got[16] = "";

	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	add_device(f, virtio_console_create(f->vm, MMIO_BASE, GSI, in[0], out[1]));
	assert_int_equal(rd(f->dev, R_DEVICE_ID), VIRTIO_ID_CONSOLE);
	assert_int_equal(virtio_console_attach_input(f->dev, drop_x, NULL), 0);
	start_io(f);
	/* Input typed before the driver is up waits for it. */
	assert_int_equal(write(in[1], "axbxc", 5), 5);
	usleep(20000);
	driver_up(f->dev, 2);
	/* receiveq: one 16-byte buffer; the input waits for the guest's first
	 * output (Linux drops input before its console port is set up). */
	set_desc(f, 0, 0, DATA_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 0);
	wr(f->dev, R_QUEUE_NOTIFY, 0);
	usleep(50000);
	assert_int_equal(used_idx(f, 0), 0);
	/* transmitq: "hello" in two pieces */
	memcpy(f->ram + DATA_GPA + 0x100, "hel", 3);
	memcpy(f->ram + DATA_GPA + 0x200, "lo", 2);
	set_desc(f, 1, 4, DATA_GPA + 0x100, 3, VIRTQ_DESC_F_NEXT, 5);
	set_desc(f, 1, 5, DATA_GPA + 0x200, 2, 0, 0);
	publish(f, 1, 4);
	wr(f->dev, R_QUEUE_NOTIFY, 1);
	assert_true(wait_used(f, 1, 1));
	assert_int_equal(read(out[0], got, sizeof(got)), 5);
	assert_string_equal(got, "hello");
	/* now the held input, filtered */
	assert_true(wait_used(f, 0, 1));
	assert_int_equal(gused(f, 0)->ring[0].len, 3);
	assert_memory_equal(f->ram + DATA_GPA, "abc", 3);
	/* more input, straight through */
	set_desc(f, 0, 1, DATA_GPA + 0x40, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 1);
	wr(f->dev, R_QUEUE_NOTIFY, 0);
	assert_int_equal(write(in[1], "xyz", 3), 3);
	assert_true(wait_used(f, 0, 2));
	assert_memory_equal(f->ram + DATA_GPA + 0x40, "yz", 2);
	io_thread_stop(f->vm);
	f->io_started = false;
	close(in[0]), close(in[1]), close(out[0]), close(out[1]);
}

/* ---- virtio-net (needs /dev/net/tun and CAP_NET_ADMIN) ---- */

static void test_net_config(void **state)
{
	struct fx *f = *state;
	const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint8_t cfg[8];
	char why[256];
	struct device *d;

	assert_null(virtio_net_create(f->vm, MMIO_BASE, GSI, "a-name-longer-than-15", NULL,
				      why, sizeof(why)));
	assert_non_null(strstr(why, "longer"));
	d = virtio_net_create(f->vm, MMIO_BASE, GSI, "vvtest0", mac, why, sizeof(why));
	if (!d) {
		skip(); /* no TUN/TAP or no permission here */
		return;
	}
	add_device(f, d);
	assert_int_equal(rd(d, R_DEVICE_ID), VIRTIO_ID_NET);
	for (int i = 0; i < 8; i++)
		assert_int_equal(d->read(d, R_CONFIG + (uint64_t)i, &cfg[i], 1), 0);
	assert_memory_equal(cfg, mac, 6);
	assert_int_equal(cfg[6], 1); /* VIRTIO_NET_S_LINK_UP */
	assert_true(device_features(d) & (1ULL << 5));  /* MAC */
	assert_true(device_features(d) & (1ULL << 16)); /* STATUS */
	assert_true(device_features(d) & (1ULL << VIRTIO_NET_F_CSUM));
	assert_true(device_features(d) & (1ULL << VIRTIO_NET_F_MRG_RXBUF));
}

/* vhost=on without /dev/vhost-net is a one-line error, never a fallback. */
static void test_net_vhost_missing(void **state)
{
	struct fx *f = *state;
	struct virtio_net_options o = { .tap = "vvtest1", .vhost = 1 };
	char why[256] = "";
	struct device *d;

	if (access("/dev/vhost-net", F_OK) == 0 || access("/dev/net/tun", R_OK | W_OK)) {
		skip(); /* vhost-net is here (the e2e tests use it), or no TAP */
		return;
	}
	d = virtio_net_create_opts(f->vm, MMIO_BASE, GSI, &o, why, sizeof(why));
	if (!d && strstr(why, "TAP")) {
		skip(); /* no permission for TAPs here */
		return;
	}
	assert_null(d);
	assert_non_null(strstr(why, "vhost=on: /dev/vhost-net: "));
	assert_null(strchr(why, '\n'));
}

static void test_net_headers(void **state)
{
	const uint64_t all = (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
			     (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
			     (1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6);
	/* flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers */
	const uint8_t tso4[12] = { 1, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0, 7, 7 };
	uint8_t h[12];

	/* TX: offloads only when negotiated; num_buffers cleared */
	memcpy(h, tso4, 12);
	assert_int_equal(virtio_net_check_tx_hdr(h, all), 0);
	assert_int_equal(h[10] | h[11], 0);
	assert_int_equal(h[4], 0xa8); /* gso_size kept */
	memcpy(h, tso4, 12);
	assert_int_equal(virtio_net_check_tx_hdr(h, 0), -EINVAL);
	memcpy(h, tso4, 12);
	assert_int_equal(virtio_net_check_tx_hdr(h, 1ULL << VIRTIO_NET_F_CSUM), -EINVAL);
	memcpy(h, tso4, 12);
	h[1] = 3; /* UDP (UFO): never offered */
	assert_int_equal(virtio_net_check_tx_hdr(h, all), -EINVAL);
	memcpy(h, tso4, 12);
	h[1] = 0x81; /* TCPv4 with ECN: not offered */
	assert_int_equal(virtio_net_check_tx_hdr(h, all), -EINVAL);
	memcpy(h, tso4, 12);
	h[0] = 0; /* segmentation without checksum offload */
	assert_int_equal(virtio_net_check_tx_hdr(h, all), -EINVAL);
	memset(h, 0, 12);
	h[0] = 0x6; /* DATA_VALID, RSC_INFO: meaningless on TX, dropped */
	h[4] = 0x55; /* gso_size without GSO */
	assert_int_equal(virtio_net_check_tx_hdr(h, 0), 0);
	assert_int_equal(h[0], 0);
	assert_int_equal(h[4], 0);

	/* RX: the tap's header checked against GUEST_* features */
	memcpy(h, tso4, 12);
	assert_int_equal(virtio_net_check_rx_hdr(h, all), 0);
	assert_int_equal(h[10], 1);
	assert_int_equal(h[11], 0);
	memcpy(h, tso4, 12);
	assert_int_equal(virtio_net_check_rx_hdr(h, 1ULL << VIRTIO_NET_F_HOST_TSO4), -EINVAL);
	memset(h, 0, 12);
	h[0] = 2; /* DATA_VALID without GUEST_CSUM: cleared */
	assert_int_equal(virtio_net_check_rx_hdr(h, 0), 0);
	assert_int_equal(h[0], 0);
	assert_int_equal(h[10], 1);
}

/* ---- virtio-net receive placement (net_rx.c), on a fake ring ---- */

#define RXBUF(i) (DATA_GPA + (uint64_t)(i) * 0x1000)

/* Offer receive chain `i` (descriptor i): one writable buffer of len bytes. */
static void offer_rx(struct fx *f, unsigned i, uint32_t len)
{
	set_desc(f, 0, i, RXBUF(i), len, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, (uint16_t)i);
}

/* A frame: header (num_buffers 1, as check_rx_hdr leaves it), then a pattern. */
static void make_frame(uint8_t *fr, size_t len, uint8_t seed)
{
	memset(fr, 0, VIRTIO_NET_HDR_LEN);
	fr[10] = 1;
	for (size_t i = VIRTIO_NET_HDR_LEN; i < len; i++)
		fr[i] = (uint8_t)(i * 7 + seed);
}

static void test_net_rx_mergeable(void **state)
{
	struct fx *f = *state;
	static uint8_t fr[4000], back[4000];
	struct iovec iov[8];
	struct virtq vq;
	uint16_t nb;

	init_vq(f, &vq, F_VERSION_1);
	make_frame(fr, sizeof(fr), 1);
	offer_rx(f, 0, 1500);
	offer_rx(f, 1, 1500);
	/* 3000 bytes of buffers for 4000: nothing consumed, the frame waits */
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), 0);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(used_idx(f, 0), 0);
	offer_rx(f, 2, 1500);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), 3);
	/* all three published together, in order, the last one partly used */
	assert_int_equal(used_idx(f, 0), 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(gused(f, 0)->ring[i].id, i);
		assert_int_equal(gused(f, 0)->ring[i].len, i < 2 ? 1500 : 1000);
		memcpy(back + i * 1500, f->ram + RXBUF(i), i < 2 ? 1500 : 1000);
	}
	memcpy(&nb, back + 10, 2);
	assert_int_equal(nb, 3); /* num_buffers in the first buffer's header */
	back[10] = 1, back[11] = 0;
	assert_memory_equal(back, fr, sizeof(fr));

	/* a small frame: one buffer, num_buffers 1 */
	make_frame(fr, 100, 2);
	offer_rx(f, 3, 1500);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, 100, iov, 8), 1);
	assert_int_equal(used_idx(f, 0), 4);
	assert_int_equal(gused(f, 0)->ring[3].len, 100);
	assert_memory_equal(f->ram + RXBUF(3), fr, 100);
}

/*
 * A frame waiting for more merged buffers than the driver has offered: the
 * device must ask to be notified of the *next* buffer. The driver notifies
 * only when its new avail index passes avail_event; left at the put-back
 * chains (behind what it already published), it never would, and the I/O
 * thread would poll the ring forever (a host->guest TCP stall, seen in the
 * iperf3 bench).
 */
static void test_net_rx_waits_for_next_buffer(void **state)
{
	struct fx *f = *state;
	uint16_t *avail_event = (uint16_t *)&gused(f, 0)->ring[QSZ];
	static uint8_t fr[4000];
	struct iovec iov[8];
	struct virtq vq;

	init_vq(f, &vq, F_VERSION_1 | F_EVENT_IDX);
	make_frame(fr, sizeof(fr), 3);
	offer_rx(f, 0, 1500);
	offer_rx(f, 1, 1500);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), 0);
	assert_int_equal(vq.last_avail, 0);
	assert_false(virtq_enable_notify(&vq)); /* nothing new: wait */
	assert_int_equal(*avail_event, 2);    /* notify when index 2 is used */
	offer_rx(f, 2, 1500);
	assert_true(virtq_enable_notify(&vq)); /* it came: place now */
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), 3);
	assert_int_equal(used_idx(f, 0), 3);
}

static void test_net_rx_single_buffer(void **state)
{
	struct fx *f = *state;
	static uint8_t fr[3000];
	struct iovec iov[8];
	struct virtq vq;

	init_vq(f, &vq, F_VERSION_1);
	make_frame(fr, sizeof(fr), 3);
	offer_rx(f, 0, 1500);
	/* without MRG_RXBUF a frame never spans chains: dropped, chain kept */
	assert_int_equal(virtio_net_rx_place(&vq, false, fr, sizeof(fr), iov, 8), -EMSGSIZE);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(virtio_net_rx_place(&vq, false, fr, 1500, iov, 8), 1);
	assert_int_equal(gused(f, 0)->ring[0].len, 1500);
	assert_int_equal(f->ram[RXBUF(0) + 10], 1);
	assert_memory_equal(f->ram + RXBUF(0), fr, 1500);
	assert_int_equal(virtio_net_rx_place(&vq, false, fr, 100, iov, 8), 0); /* empty */
}

static void test_net_rx_hostile_buffers(void **state)
{
	struct fx *f = *state;
	static uint8_t fr[2000];
	struct iovec iov[8], big[64];
	struct virtq vq;

	make_frame(fr, sizeof(fr), 4);
	/* a mergeable buffer shorter than the header (5.1.6.3.1): reset */
	init_vq(f, &vq, F_VERSION_1);
	offer_rx(f, 0, 1500);
	offer_rx(f, 1, 8);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), -EINVAL);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(used_idx(f, 0), 0);

	/* a read-only buffer where a receive buffer should be */
	memset(f->ram + QBASE(0), 0, 0x3000);
	init_vq(f, &vq, F_VERSION_1);
	set_desc(f, 0, 0, RXBUF(0), 1500, 0, 0);
	publish(f, 0, 0);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), -EINVAL);

	/* a second buffer outside guest RAM, and a loop: the walker's errors */
	memset(f->ram + QBASE(0), 0, 0x3000);
	init_vq(f, &vq, F_VERSION_1);
	offer_rx(f, 0, 1500);
	set_desc(f, 0, 1, RAM_SIZE - 16, 1500, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, 1);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), -EFAULT);
	assert_int_equal(vq.last_avail, 0);
	memset(f->ram + QBASE(0), 0, 0x3000);
	init_vq(f, &vq, F_VERSION_1);
	set_desc(f, 0, 0, RXBUF(0), 100, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	publish(f, 0, 0);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), big, 64), -ELOOP);

	/* a whole ring of header-sized buffers can never take the frame:
	 * dropped rather than waiting for ever */
	memset(f->ram + QBASE(0), 0, 0x3000);
	init_vq(f, &vq, F_VERSION_1);
	for (unsigned i = 0; i < QSZ; i++)
		offer_rx(f, i, VIRTIO_NET_HDR_LEN);
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, sizeof(fr), iov, 8), -EMSGSIZE);
	assert_int_equal(vq.last_avail, 0);
	/* ... but a frame that fits in them goes in (16 x 12 = 192 bytes) */
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, 192, iov, 8), QSZ);
	assert_int_equal(used_idx(f, 0), QSZ);
	assert_int_equal(f->ram[RXBUF(0) + 10], QSZ);

	/* frames shorter than a header are refused before touching the ring */
	assert_int_equal(virtio_net_rx_place(&vq, true, fr, 4, iov, 8), -EMSGSIZE);
}

/* ---- virtio-net control queue (net_ctrl.c), on a fake ring ---- */

#define CMD_GPA(i) (DATA_GPA + (uint64_t)(i) * 0x100)
#define F_MQ (1ULL << VIRTIO_NET_F_MQ)

struct pairs_rec {
	int calls;
	uint16_t last;
	int fail; /* what set_pairs returns */
};

static int rec_set_pairs(void *opaque, uint16_t pairs)
{
	struct pairs_rec *r = opaque;

	r->calls++;
	r->last = pairs;
	return r->fail;
}

/* Command `i` (descriptors 2i, 2i+1): `len` readable bytes, then `ack_len`
 * writable ones (0: none) prefilled with 0xee. */
static void offer_cmd(struct fx *f, unsigned i, const uint8_t *cmd, uint32_t len,
		      uint32_t ack_len)
{
	memcpy(f->ram + CMD_GPA(i), cmd, len);
	memset(f->ram + CMD_GPA(i) + 0x80, 0xee, 8);
	set_desc(f, 0, 2 * i, CMD_GPA(i), len, ack_len ? VIRTQ_DESC_F_NEXT : 0,
		 (uint16_t)(2 * i + 1));
	set_desc(f, 0, 2 * i + 1, CMD_GPA(i) + 0x80, ack_len, VIRTQ_DESC_F_WRITE, 0);
	publish(f, 0, (uint16_t)(2 * i));
}

/* Run command i: its ack byte (at the writable buffer's end), or -1 when
 * it went back with nothing written. */
static int run_cmd(struct fx *f, struct virtq *vq, uint64_t features, unsigned i,
		   uint32_t ack_len, struct pairs_rec *rec)
{
	struct iovec iov[8];
	uint16_t before = vq->used_idx;

	assert_int_equal(virtio_net_ctrl_one(vq, features, 4, rec_set_pairs, rec, iov, 8), 1);
	assert_int_equal(vq->used_idx, (uint16_t)(before + 1));
	assert_int_equal(gused(f, 0)->ring[before % QSZ].id, 2 * i);
	if (!gused(f, 0)->ring[before % QSZ].len)
		return -1;
	assert_int_equal(gused(f, 0)->ring[before % QSZ].len, 1);
	if (ack_len > 1) /* the bytes before the ack are left alone */
		assert_int_equal(f->ram[CMD_GPA(i) + 0x80], 0xee);
	return f->ram[CMD_GPA(i) + 0x80 + ack_len - 1];
}

static void test_net_ctrl_commands(void **state)
{
	struct fx *f = *state;
	const uint8_t set2[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 0 };
	const uint8_t set5[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 5, 0 };
	const uint8_t set0[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 0, 0 };
	const uint8_t big[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 1, 1 };
	const uint8_t rx_promisc[] = { 0, 0, 1 };
	const uint8_t longer[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 0, 0 };
	struct pairs_rec rec = { 0 };
	struct iovec iov[8];
	struct virtq vq;

	init_vq(f, &vq, F_VERSION_1);
	assert_int_equal(virtio_net_ctrl_one(&vq, F_MQ, 4, rec_set_pairs, &rec, iov, 8), 0);
	/* the good command: set_pairs(2), OK */
	offer_cmd(f, 0, set2, 4, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 0, 1, &rec), VIRTIO_NET_OK);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.last, 2);
	/* the ack is the last writable byte */
	offer_cmd(f, 1, set2, 4, 4);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 1, 4, &rec), VIRTIO_NET_OK);
	/* refused without set_pairs: beyond max_virtqueue_pairs (4), 0, 257,
	 * MQ not negotiated, another class, short and long commands */
	rec.calls = 0;
	offer_cmd(f, 2, set5, 4, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 2, 1, &rec), VIRTIO_NET_ERR);
	offer_cmd(f, 3, set0, 4, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 3, 1, &rec), VIRTIO_NET_ERR);
	offer_cmd(f, 4, big, 4, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 4, 1, &rec), VIRTIO_NET_ERR);
	offer_cmd(f, 5, set2, 4, 1);
	assert_int_equal(run_cmd(f, &vq, 0, 5, 1, &rec), VIRTIO_NET_ERR);
	offer_cmd(f, 6, rx_promisc, 3, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 6, 1, &rec), VIRTIO_NET_ERR);
	offer_cmd(f, 7, set2, 3, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 7, 1, &rec), VIRTIO_NET_ERR);
	offer_cmd(f, 0, longer, 5, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 0, 1, &rec), VIRTIO_NET_ERR);
	offer_cmd(f, 1, set2, 0, 1); /* nothing readable at all */
	assert_int_equal(run_cmd(f, &vq, F_MQ, 1, 1, &rec), VIRTIO_NET_ERR);
	assert_int_equal(rec.calls, 0);
	/* no ack byte: back with nothing written, nothing done */
	offer_cmd(f, 2, set2, 4, 0);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 2, 0, &rec), -1);
	assert_int_equal(rec.calls, 0);
	/* the device could not do it: ERR */
	rec.fail = -EINVAL;
	offer_cmd(f, 3, set2, 4, 1);
	assert_int_equal(run_cmd(f, &vq, F_MQ, 3, 1, &rec), VIRTIO_NET_ERR);
	assert_int_equal(rec.calls, 1);
}

/* Hostile chains break the ring (the device resets), consume nothing and
 * change nothing. */
static void test_net_ctrl_hostile(void **state)
{
	struct fx *f = *state;
	const uint8_t set2[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 0 };
	struct pairs_rec rec = { 0 };
	struct iovec iov[8];
	struct virtq vq;

	init_vq(f, &vq, F_VERSION_1);
	offer_cmd(f, 0, set2, 4, 1);
	set_desc(f, 0, 0, RAM_SIZE - 2, 4, VIRTQ_DESC_F_NEXT, 1); /* past RAM's end */
	assert_int_equal(virtio_net_ctrl_one(&vq, F_MQ, 4, rec_set_pairs, &rec, iov, 8), -EFAULT);
	set_desc(f, 0, 0, CMD_GPA(0), 4, VIRTQ_DESC_F_NEXT, 0); /* a loop */
	assert_true(virtio_net_ctrl_one(&vq, F_MQ, 4, rec_set_pairs, &rec, iov, 8) < 0);
	/* writable before readable */
	set_desc(f, 0, 0, CMD_GPA(0), 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 0, 1, CMD_GPA(0) + 0x80, 4, 0, 0);
	assert_int_equal(virtio_net_ctrl_one(&vq, F_MQ, 4, rec_set_pairs, &rec, iov, 8), -EINVAL);
	/* more segments than the scratch space */
	for (unsigned i = 0; i < 12; i++)
		set_desc(f, 0, i, CMD_GPA(0), 1, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	set_desc(f, 0, 12, CMD_GPA(0) + 0x80, 1, VIRTQ_DESC_F_WRITE, 0);
	assert_true(virtio_net_ctrl_one(&vq, F_MQ, 4, rec_set_pairs, &rec, iov, 8) < 0);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(used_idx(f, 0), 0);
	assert_int_equal(rec.calls, 0);
}

/* ---- virtio-net with several queue pairs (needs TAPs, as above) ---- */

static const struct virtio_net_options mq_opts = { .tap = "vvtest2", .queue_pairs = 2 };

/* A control command on queue q, descriptors 0 and 1: its ack. */
static int mq_ctrl(struct fx *f, unsigned q, uint16_t pairs, uint16_t n)
{
	uint8_t cmd[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
			  (uint8_t)pairs, (uint8_t)(pairs >> 8) };

	memcpy(f->ram + CMD_GPA(n), cmd, sizeof(cmd));
	f->ram[CMD_GPA(n) + 0x80] = 0xee;
	set_desc(f, q, 2 * n, CMD_GPA(n), 4, VIRTQ_DESC_F_NEXT, (uint16_t)(2 * n + 1));
	set_desc(f, q, 2 * n + 1, CMD_GPA(n) + 0x80, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(f, q, (uint16_t)(2 * n));
	wr(f->dev, R_QUEUE_NOTIFY, q);
	assert_true(wait_used(f, q, (uint16_t)(n + 1)));
	return f->ram[CMD_GPA(n) + 0x80];
}

static void test_net_multiqueue(void **state)
{
	struct fx *f = *state;
	char why[256] = "";
	uint64_t feat;
	struct device *d = virtio_net_create_opts(f->vm, MMIO_BASE, GSI, &mq_opts, why, sizeof(why));
	uint16_t max_pairs = 0;

	if (!d) {
		skip(); /* no TUN/TAP or no permission here */
		return;
	}
	add_device(f, d);
	feat = device_features(d);
	assert_true(feat & (1ULL << VIRTIO_NET_F_MQ));
	assert_true(feat & (1ULL << VIRTIO_NET_F_CTRL_VQ));
	for (int i = 0; i < 2; i++)
		assert_int_equal(d->read(d, R_CONFIG + 8 + (uint64_t)i, (uint8_t *)&max_pairs + i, 1), 0);
	assert_int_equal(max_pairs, 2);
	wr(d, R_QUEUE_SEL, 4); /* 2 pairs and the control queue: 5 queues */
	assert_true(rd(d, R_QUEUE_NUM_MAX) > 0);
	wr(d, R_QUEUE_SEL, 5);
	assert_int_equal(rd(d, R_QUEUE_NUM_MAX), 0);
	start_io(f);
	driver_up(d, 5);
	assert_int_equal(mq_ctrl(f, 4, 2, 0), VIRTIO_NET_OK);
	assert_int_equal(mq_ctrl(f, 4, 3, 1), VIRTIO_NET_ERR); /* beyond the 2 */
	assert_int_equal(mq_ctrl(f, 4, 1, 2), VIRTIO_NET_OK);
	assert_int_equal(mq_ctrl(f, 4, 2, 3), VIRTIO_NET_OK); /* pair 1 back */
	assert_false(rd(d, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	/* a driver without MQ: the control queue is queue 2, pairs are refused */
	driver_up_with(d, 3, feat & ~(1ULL << VIRTIO_NET_F_MQ));
	memset(f->ram + QBASE(2), 0, 0x3000);
	assert_int_equal(mq_ctrl(f, 2, 2, 0), VIRTIO_NET_ERR);
}

static int tap_persist(const char *name, int on, int flags)
{
	struct ifreq ifr = { .ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | flags) };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, on) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* An existing single-queue TAP: queues=2 given is a one-line error; as a
 * default it falls back to one pair (no MQ, 2 queues). */
static void test_net_single_queue_tap(void **state)
{
	struct fx *f = *state;
	struct virtio_net_options o = { .tap = "vvtest3", .queue_pairs = 2 };
	char why[256] = "";
	struct device *d;

	if (tap_persist("vvtest3", 1, 0)) {
		skip(); /* no TUN/TAP or no permission here */
		return;
	}
	assert_null(virtio_net_create_opts(f->vm, MMIO_BASE, GSI, &o, why, sizeof(why)));
	assert_non_null(strstr(why, "single-queue"));
	assert_non_null(strstr(why, "multi_queue"));
	assert_null(strchr(why, '\n'));
	o.mq_fallback = 1;
	d = virtio_net_create_opts(f->vm, MMIO_BASE, GSI, &o, why, sizeof(why));
	assert_non_null(d);
	assert_false(device_features(d) & (1ULL << VIRTIO_NET_F_MQ));
	wr(d, R_QUEUE_SEL, 2);
	assert_int_equal(rd(d, R_QUEUE_NUM_MAX), 0);
	d->destroy(d); /* closes the TAP: it can stop persisting */
	assert_int_equal(tap_persist("vvtest3", 0, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_queue_good_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_length_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_bad_indices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_init_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_notify_suppression, setup, teardown),
		cmocka_unit_test(test_iov_helpers),
		cmocka_unit_test_setup_teardown(test_mmio_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio_features_need_version_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio_bad_rings_need_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio_rng_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio_bad_chain_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_read_write_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_replace_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_replace_image_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_discard_write_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_readonly_refuses_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_flush_before_completion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_failed_flush_sticks_until_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_write_through_without_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_flush_before_completion_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_failed_flush_sticks_until_reset_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_write_through_without_flush_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_ring_flush_leaves_other_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_ring_failed_flush_fails_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_worker_under_seccomp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_create_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_multiqueue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_uring_sync_direct_identical, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_uring_short_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_options, setup, teardown),
		cmocka_unit_test(test_blk_parse),
		cmocka_unit_test_setup_teardown(test_console, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_vhost_missing, setup, teardown),
		cmocka_unit_test(test_net_headers),
		cmocka_unit_test_setup_teardown(test_net_rx_mergeable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_rx_waits_for_next_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_rx_single_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_rx_hostile_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_ctrl_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_ctrl_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_multiqueue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_single_queue_tap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
