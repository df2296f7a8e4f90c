/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for virtio-blk requests (devices/virtio/blk_req.c):
 *  - mode 0: the parser alone over fuzzer-split segments (some readable, the
 *    rest writable), then the request carried out;
 *  - mode 1: a fuzzer-built virtqueue in fake guest RAM, each popped chain
 *    parsed and carried out, as the device's worker does.
 * Requests run against a small in-memory image (memfd, 64 sectors);
 * read-only, hole punching, write-through, an earlier sync failure and
 * failing syncs are chosen by the input's first byte (bits 0 to 4); bit 5
 * takes IN/OUT the io_uring path's way (virtio_blk_rw_check, the "kernel"
 * moving the first half, virtio_blk_rw_finish completing the rest) against
 * a cache=none backend (O_DIRECT alignment 4096/512: fd_for picks the fd),
 * bit 6 makes that kernel half fail with EIO; with bits 5 and 4 a flush on
 * another queue fails while the kernel half runs; bit 5 takes FLUSH the
 * ring's way too (virtio_blk_flush_now, the "kernel's" fdatasync,
 * virtio_blk_flush_finish); in mode 1 one backend
 * serves all chains, so a sync failure carries over. ASan checks that no byte
 * outside the segments is touched; the oracle checks that the data never
 * leaves the chain, that requests beyond the image fail, and that after a
 * failed sync no FLUSH and no data change succeeds.
 *
 * FUZZ_SRCS: devices/virtio/blk_req.c devices/virtio/queue.c core/mm.c
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "mm.h"
#include "vm.h"

#define IMG_SECTORS 64
#define RAM_SIZE 0x8000u
#define MAX_SEGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int image_fd(void)
{
	static int fd = -1; /* one image for the whole run */

	if (fd < 0) {
		fd = memfd_create("fuzz-blk", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, IMG_SECTORS * 512) < 0)
			abort();
	}
	return fd;
}

static int fake_sync(void *opaque, int fd __attribute__((unused)))
{
	if (!(*(const uint8_t *)opaque & 0x10))
		return 0;
	errno = EIO; /* a failing disk, sometimes */
	return -1;
}

static struct virtio_blk_backend make_backend(uint8_t *flags)
{
	return (struct virtio_blk_backend){
		.fd = image_fd(), .capacity = IMG_SECTORS, .readonly = *flags & 1,
		.punch_holes = *flags & 2, .write_through = *flags & 4,
		.sync_error = *flags & 8 ? EIO : 0,
		.serial = "fuzz-serial", .io = { .sync = fake_sync, .opaque = flags },
		.buf_fd = image_fd(),
		.dio_off_align = *flags & 0x20 ? 4096 : 0,
		.dio_mem_align = *flags & 0x20 ? 512 : 0,
	};
}

static bool changes_data(uint32_t type)
{
	return type == VIRTIO_BLK_T_OUT || type == VIRTIO_BLK_T_DISCARD ||
	       type == VIRTIO_BLK_T_WRITE_ZEROES;
}

/* As blk_uring.c does it, with this function as the kernel: half of the
 * transfer (or EIO, flag bit 6), then rw_finish. */
static uint8_t run_async(struct virtio_blk_backend *b, struct virtio_blk_req *r,
			 uint32_t *written)
{
	const uint8_t *flags = b->io.opaque;
	bool write = r->type == VIRTIO_BLK_T_OUT;
	uint64_t off = r->sector * 512, half = r->data_len / 2;
	struct iovec part[MAX_SEGS * 2];
	size_t got;
	unsigned n;
	int64_t res = -EIO;
	uint8_t st = virtio_blk_rw_check(b, r);

	*written = 0;
	if (st != VIRTIO_BLK_S_OK)
		return st;
	if (!(*flags & 0x40)) {
		n = iov_slice(r->data, r->nr_data, 0, half, part, MAX_SEGS * 2, &got);
		res = write ? pwritev(b->fd, part, (int)n, (off_t)off)
			    : preadv(b->fd, part, (int)n, (off_t)off);
		if (res < 0)
			res = -errno;
	}
	if (*flags & 0x10 && !b->sync_error)
		b->sync_error = EIO; /* another queue's flush failed meanwhile */
	st = virtio_blk_rw_finish(b, write, r->data, r->nr_data, off, res, written);
	if (write && b->sync_error && st == VIRTIO_BLK_S_OK)
		abort(); /* a write answered after a failed sync must fail */
	return st;
}

/* A FLUSH as the ring does it, with fake_sync as the kernel's fdatasync. */
static uint8_t run_async_flush(struct virtio_blk_backend *b)
{
	uint8_t st;

	if (virtio_blk_flush_now(b, &st))
		return st;
	return virtio_blk_flush_finish(b, fake_sync(b->io.opaque, b->fd) ? -errno : 0);
}

static void check_and_run(struct virtio_blk_backend *b, const struct iovec *iov,
			  unsigned nr_out, unsigned nr_in)
{
	struct iovec data[MAX_SEGS * 2];
	struct virtio_blk_req r;
	int sync_error = b->sync_error;
	uint32_t written;
	uint8_t st;

	if (virtio_blk_parse_request(iov, nr_out, nr_in, data, MAX_SEGS * 2, &r))
		return;
	if (b->dio_off_align && !r.bad_header &&
	    (r.type == VIRTIO_BLK_T_IN || r.type == VIRTIO_BLK_T_OUT))
		st = run_async(b, &r, &written);
	else if (b->dio_off_align && !r.bad_header && r.type == VIRTIO_BLK_T_FLUSH)
		st = run_async_flush(b), written = 0;
	else
		st = virtio_blk_execute(b, &r, &written);
	if (st > VIRTIO_BLK_S_UNSUPP || written > r.data_len)
		abort();
	if (st == VIRTIO_BLK_S_OK && !r.bad_header &&
	    (r.type == VIRTIO_BLK_T_IN || r.type == VIRTIO_BLK_T_OUT) &&
	    (r.sector > IMG_SECTORS || r.data_len / 512 > IMG_SECTORS - r.sector))
		abort(); /* beyond the end must fail */
	if (st == VIRTIO_BLK_S_OK && !r.bad_header && b->readonly && changes_data(r.type))
		abort(); /* a read-only image is never changed */
	if (st == VIRTIO_BLK_S_OK && !r.bad_header && r.type == VIRTIO_BLK_T_FLUSH &&
	    b->sync_error && !b->readonly)
		abort(); /* no flush succeeds once a sync failed */
	if (sync_error && (b->sync_error != sync_error ||
			   (st == VIRTIO_BLK_S_OK && !r.bad_header && !b->readonly &&
			    (changes_data(r.type) || r.type == VIRTIO_BLK_T_FLUSH))))
		abort(); /* a failed sync sticks, and nothing claims durability */
	*r.status = st;
}

/* Mode 0: segments of fuzzer-chosen lengths cut from the input. */
static void run_segments(const uint8_t *p, size_t n, uint8_t flags)
{
	struct iovec iov[MAX_SEGS];
	uint8_t *copy[MAX_SEGS] = { 0 };
	unsigned nseg, nr_out, i;

	if (n < 2)
		return;
	nseg = p[0] % MAX_SEGS + 1;
	nr_out = p[1] % (nseg + 1);
	p += 2, n -= 2;
	for (i = 0; i < nseg; i++) {
		size_t len = n ? (size_t)p[0] * 8 + 1 : 1;

		if (n)
			p++, n--;
		/* Exact-size heap copies: ASan sees any overrun. */
		copy[i] = malloc(len);
		memset(copy[i], 0, len);
		memcpy(copy[i], p, len < n ? len : n);
		iov[i] = (struct iovec){ copy[i], len };
	}
	struct virtio_blk_backend b = make_backend(&flags);
	check_and_run(&b, iov, nr_out, nseg - nr_out);
	for (i = 0; i < nseg; i++)
		free(copy[i]);
}

/* Mode 1: a queue in fake RAM, as the device's worker sees it. */
static void run_queue(const uint8_t *p, size_t n, uint8_t flags)
{
	struct mem_map mm = { .nr_slots = 1 };
	struct vm vm = { .mem_map = &mm };
	struct iovec iov[MAX_SEGS];
	struct virtq_elem e = { .iov = iov, .max_iov = MAX_SEGS };
	struct virtq vq;
	struct virtio_blk_backend b = make_backend(&flags);
	uint8_t *ram = calloc(1, RAM_SIZE);

	if (!ram)
		abort();
	memcpy(ram, p, n < RAM_SIZE ? n : RAM_SIZE);
	mm.slots[0] = (struct mem_slot){ .gpa = 0, .size = RAM_SIZE, .hva = ram };
	/* Rings at fixed places; the fuzzer writes their contents. */
	if (!virtq_init(&vq, &vm, 8, 0x0, 0x100, 0x200,
			VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC))) {
		for (int i = 0; i < 16 && virtq_pop(&vq, &e) > 0; i++) {
			check_and_run(&b, iov, e.nr_out, e.nr_in);
			virtq_push(&vq, e.head, 1);
		}
	}
	free(ram);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 0x80)
		run_queue(data + 1, size - 1, data[0]);
	else
		run_segments(data + 1, size - 1, data[0]);
	return 0;
}
