/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk reads and writes on io_uring: many requests in flight per disk
 * while the worker goes on taking new ones. The ring is set up by the
 * thread that creates the device and then restricted (IORING_REGISTER_
 * RESTRICTIONS) to READV and WRITEV: io_uring's operations bypass
 * seccomp, so a compromised worker must not be able to open files or
 * sockets through its ring (read and write it may do anyway). The worker itself only needs
 * io_uring_enter. Completions signal an eventfd registered with the ring,
 * which the worker polls beside the queues' notify eventfds.
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

static int restrict_ring(struct io_uring *ring)
{
	struct io_uring_restriction res[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV },
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
		finish(b, io_uring_cqe_get_data(cqe), cqe->res);
		io_uring_cqe_seen(&b->ring, cqe);
	}
}
