/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk reads, writes and flushes on io_uring: many requests in flight
 * per disk while the worker goes on taking new ones. The ring is set up by
 * the thread that creates the device and then restricted (IORING_REGISTER_
 * RESTRICTIONS) to READV, WRITEV and FSYNC: io_uring's operations bypass
 * seccomp, so a compromised worker must not be able to open files or
 * sockets through its ring (read, write and fdatasync it may do anyway).
 * The worker itself only needs io_uring_enter. Completions signal an
 * eventfd registered with the ring, which the worker polls beside the
 * queues' notify eventfds.
 *
 * FLUSH is an IORING_OP_FSYNC (DATASYNC), so a slow fdatasync no longer
 * holds up the other queues. It must cover every write completed before
 * the flush was taken from its queue (virtio 1.2, 5.2.6: "previously
 * completed" writes, as Linux's REQ_PREFLUSH). A write completes only once
 * its CQE came back (its data in the page cache, or O_DIRECT, handed to the
 * disk), so any fdatasync started after the flush was taken covers them:
 * no IOSQE_IO_DRAIN, which would hold back every later read and write on
 * all queues until everything before it finished. Writes still in flight
 * are not the flush's to cover; the driver waits for those it cares about.
 *
 * One fdatasync at a time per disk: Linux reports a writeback error to one
 * fdatasync only, so of two at once one could answer "ok", even before the
 * other's failure reaches us. Flushes taken while one runs wait and then
 * share the next fdatasync (it starts after each of them was taken).
 *
 * cache=none: guest buffers that O_DIRECT cannot take (misaligned address
 * or segment length) go through an aligned bounce buffer up to
 * BLK_BOUNCE_MAX; a misaligned file offset, or a larger request, is done
 * synchronously through the page cache (blk_req.c picks the fd).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "utils.h"

/* user_data of the flush entries; a request's is its slot's address. */
enum { TAG_GATE = 1, TAG_FSYNC = 2 };

static int restrict_ring(struct io_uring *ring)
{
	struct io_uring_restriction res[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC },
	};
	/* The raw register calls: Debian's liburing 2.3 does not export its
	 * wrappers for these two. */
	int err = io_uring_register(ring->ring_fd, IORING_REGISTER_RESTRICTIONS,
				    res, ARRAY_SIZE(res));

	return err < 0 ? err : MIN(io_uring_register(ring->ring_fd,
				   IORING_REGISTER_ENABLE_RINGS, NULL, 0), 0);
}

int blk_uring_init(struct virtio_blk *b)
{
	int err;

	b->ring_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->ring_efd < 0)
		return -errno;
	/* Created disabled so that the restrictions apply from the start. */
	err = io_uring_queue_init(BLK_MAX_INFLIGHT, &b->ring, IORING_SETUP_R_DISABLED);
	if (err) {
		close(b->ring_efd);
		b->ring_efd = -1;
		return err;
	}
	/* No registered files: they would keep the image's flock alive
	 * until the kernel's deferred ring teardown, after we closed it. */
	err = io_uring_register_eventfd(&b->ring, b->ring_efd);
	if (!err)
		err = restrict_ring(&b->ring);
	b->uring = true;
	if (err) {
		blk_uring_exit(b);
		return err;
	}
	return 0;
}

void blk_uring_exit(struct virtio_blk *b)
{
	if (!b->uring)
		return;
	io_uring_queue_exit(&b->ring);
	close(b->ring_efd);
	b->ring_efd = -1;
	b->uring = false;
}

/* cache=none: the transfer's iovec (the guest's buffers, or an aligned
 * bounce buffer holding a write's data); NULL: do it synchronously. */
static struct iovec *direct_iov(struct virtio_blk *b, struct blk_slot *s,
				uint64_t off, bool write, unsigned *n)
{
	const struct virtio_blk_req *r = &s->r;
	struct iovec whole = { NULL, r->data_len };

	*n = r->nr_data;
	if (virtio_blk_direct_ok(&b->be, r->data, r->nr_data, off))
		return r->data;
	/* The offset and length must suit O_DIRECT by themselves. */
	if (r->data_len > BLK_BOUNCE_MAX || !virtio_blk_direct_ok(&b->be, &whole, 0, off) ||
	    r->data_len % b->be.dio_off_align)
		return NULL;
	if (posix_memalign(&s->bounce, MAX(b->be.dio_mem_align, sizeof(void *)),
			   r->data_len))
		return s->bounce = NULL;
	if (write)
		iov_to_buf(r->data, r->nr_data, 0, s->bounce, r->data_len);
	s->bounce_iov = (struct iovec){ s->bounce, r->data_len };
	*n = 1;
	return &s->bounce_iov;
}

bool blk_uring_queue(struct virtio_blk *b, struct blk_slot *s)
{
	bool write = s->r.type == VIRTIO_BLK_T_OUT;
	uint64_t off = s->r.sector * VIRTIO_BLK_SECTOR;
	struct io_uring_sqe *sqe;
	struct iovec *iov = s->r.data;
	unsigned n = s->r.nr_data;

	/* Test hooks see every write: those go the synchronous way. */
	if (write && b->be.io.pwritev2)
		return false;
	if (b->be.dio_off_align && !(iov = direct_iov(b, s, off, write, &n)))
		return false;
	sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) { /* cannot happen: as many entries as slots */
		free(s->bounce);
		s->bounce = NULL;
		return false;
	}
	/* be.fd: O_DIRECT with cache=none. */
	if (write)
		io_uring_prep_writev(sqe, b->be.fd, iov, n, off);
	else
		io_uring_prep_readv(sqe, b->be.fd, iov, n, off);
	/* Write-through: durable before the write completes, as pwritev2's. */
	if (write && b->be.write_through)
		sqe->rw_flags = RWF_DSYNC;
	io_uring_sqe_set_data(sqe, s);
	return true;
}

/* ---- FLUSH ---- */

static void answer_flushes(struct virtio_blk *b, struct blk_slot *list, uint8_t st)
{
	while (list) {
		struct blk_slot *next = list->next_flush;

		blk_complete(b, list, st, 0);
		list = next;
	}
}

static struct io_uring_sqe *flush_sqe(struct virtio_blk *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

	if (!sqe) { /* cannot happen (an entry per slot): make room anyway */
		blk_uring_submit(b);
		sqe = io_uring_get_sqe(&b->ring);
	}
	return sqe;
}

static void start_batch(struct virtio_blk *b);

/* The fdatasync of flush_running returned res: answer those flushes, then
 * start the next fdatasync for the ones that waited. */
static void flush_done(struct virtio_blk *b, int res)
{
	struct blk_slot *done = b->flush_running;
	struct virtio_blk_io io;
	bool failed_before;
	uint8_t st;

	pthread_mutex_lock(&b->lock);
	io = b->be.io;
	pthread_mutex_unlock(&b->lock);
	if (io.flush_done)
		res = io.flush_done(io.opaque, res);
	pthread_mutex_lock(&b->lock);
	failed_before = b->be.sync_error != 0;
	st = virtio_blk_flush_finish(&b->be, res);
	blk_warn_sync_failure(b, failed_before);
	pthread_mutex_unlock(&b->lock);
	b->flush_running = NULL;
	answer_flushes(b, done, st);
	if (b->flush_waiting)
		start_batch(b);
}

static void start_fsync(struct virtio_blk *b)
{
	struct io_uring_sqe *sqe = flush_sqe(b);

	if (!sqe) { /* still no room: the same, synchronously */
		flush_done(b, fdatasync(b->be.fd) ? -errno : 0);
		return;
	}
	io_uring_prep_fsync(sqe, b->be.fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, TAG_FSYNC);
}

/* The waiting flushes get an fdatasync of their own: after the test gate,
 * if there is one; none at all when a sync failed meanwhile. */
static void start_batch(struct virtio_blk *b)
{
	struct io_uring_sqe *sqe;
	struct virtio_blk_io io;
	int gate = -1;
	uint8_t st;
	bool now;

	pthread_mutex_lock(&b->lock);
	now = virtio_blk_flush_now(&b->be, &st);
	io = b->be.io;
	pthread_mutex_unlock(&b->lock);
	b->flush_running = b->flush_waiting;
	b->flush_waiting = NULL;
	if (now) {
		struct blk_slot *list = b->flush_running;

		b->flush_running = NULL;
		answer_flushes(b, list, st);
		return;
	}
	if (io.flush_gate)
		gate = io.flush_gate(io.opaque);
	if (gate >= 0 && (sqe = flush_sqe(b))) {
		b->gate_iov = (struct iovec){ &b->gate_buf, sizeof(b->gate_buf) };
		io_uring_prep_readv(sqe, gate, &b->gate_iov, 1, 0);
		io_uring_sqe_set_data64(sqe, TAG_GATE);
		return;
	}
	start_fsync(b);
}

void blk_uring_flush(struct virtio_blk *b, struct blk_slot *s)
{
	s->next_flush = b->flush_waiting;
	b->flush_waiting = s;
	if (!b->flush_running)
		start_batch(b);
}

void blk_uring_submit(struct virtio_blk *b)
{
	/* Other errors (-EAGAIN, -ENOMEM) leave the entries queued for the
	 * next call, at the next notify or completion; the ring has room for
	 * every slot, so nothing is lost meanwhile. */
	while (io_uring_sq_ready(&b->ring) && io_uring_submit(&b->ring) == -EINTR)
		;
}

/* One completion: finish a short transfer, copy a read's bounce buffer
 * out, answer the request. */
static void finish(struct virtio_blk *b, struct blk_slot *s, int res)
{
	bool write = s->r.type == VIRTIO_BLK_T_OUT;
	uint64_t off = s->r.sector * VIRTIO_BLK_SECTOR;
	struct iovec *iov = s->bounce ? &s->bounce_iov : s->r.data;
	unsigned n = s->bounce ? 1 : s->r.nr_data;
	uint32_t written;
	bool failed_before;
	uint8_t st;

	pthread_mutex_lock(&b->lock);
	failed_before = b->be.sync_error != 0;
	st = virtio_blk_rw_finish(&b->be, write, iov, n, off, res, &written);
	blk_warn_sync_failure(b, failed_before);
	pthread_mutex_unlock(&b->lock);
	if (s->bounce && !write && st == VIRTIO_BLK_S_OK)
		iov_from_buf(s->r.data, s->r.nr_data, 0, s->bounce, written);
	blk_complete(b, s, st, written);
}

static void complete_one(struct virtio_blk *b, uint64_t tag, int res)
{
	if (tag != TAG_GATE && tag != TAG_FSYNC) {
		finish(b, (struct blk_slot *)(uintptr_t)tag, res);
		return;
	}
	if (tag == TAG_GATE)
		start_fsync(b);
	else
		flush_done(b, res);
	/* Now, not at the next notify: when the worker drains the ring
	 * before it exits, nobody else would. */
	blk_uring_submit(b);
}

void blk_uring_reap(struct virtio_blk *b, bool all)
{
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned inflight;
		int err;

		pthread_mutex_lock(&b->lock);
		inflight = b->inflight;
		pthread_mutex_unlock(&b->lock);
		if (all && !inflight)
			return;
		err = all ? io_uring_wait_cqe(&b->ring, &cqe)
			  : io_uring_peek_cqe(&b->ring, &cqe);
		if (err == -EINTR)
			continue;
		if (err)
			return; /* -EAGAIN: nothing more for now */
		complete_one(b, io_uring_cqe_get_data64(cqe), cqe->res);
		io_uring_cqe_seen(&b->ring, cqe);
	}
}
