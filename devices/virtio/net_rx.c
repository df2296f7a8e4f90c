/* SPDX-License-Identifier: MIT */
/*
 * virtio-net receive placement (virtio 1.2 section 5.1.6.3), kept apart from
 * the TAP so that tests and the fuzzer can drive it on a fake guest RAM.
 *
 * Without VIRTIO_NET_F_MRG_RXBUF a frame goes into one chain or nowhere.
 * With it, a frame is spread over as many chains as it needs, each filled
 * before the next is taken, and the first chain's header says how many
 * (num_buffers). The driver reads that count from the first buffer and then
 * expects the others in the used ring, so all of a frame's chains are
 * published with one used-index store; until the ring holds enough space for
 * the whole frame nothing is consumed and the frame waits.
 */
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtio.h"

#define HDR_NUM_BUFFERS 10

/* Copy `len` bytes of frame from `off` into the writable part of e. */
static uint32_t fill_chain(const struct virtq_elem *e, const uint8_t *frame,
			   size_t off, size_t len)
{
	size_t chunk = len - off < e->in_len ? len - off : (size_t)e->in_len;

	return (uint32_t)iov_from_buf(e->iov + e->nr_out, e->nr_in, 0,
				      frame + off, chunk);
}

static int place_one(struct virtq *vq, const uint8_t *frame, size_t len,
		     struct iovec *iov, unsigned max_iov)
{
	struct virtq_elem e = { .iov = iov, .max_iov = max_iov };
	int r = virtq_pop(vq, &e);

	if (r <= 0)
		return r;
	if (e.in_len < len) {
		virtq_unpop(vq); /* too small for this frame: the next may fit */
		return -EMSGSIZE;
	}
	virtq_push(vq, e.head, fill_chain(&e, frame, 0, len));
	return 1;
}

static int place_merged(struct virtq *vq, uint8_t *frame, size_t len,
			struct iovec *iov, unsigned max_iov)
{
	/* The first chain keeps its half of iov: num_buffers goes there last. */
	struct virtq_elem first = { .iov = iov, .max_iov = max_iov / 2 };
	struct virtq_elem e = { .iov = iov + max_iov / 2, .max_iov = max_iov - max_iov / 2 };
	uint16_t start = vq->last_avail, nb;
	unsigned n = 0;
	size_t off = 0;

	while (off < len) {
		struct virtq_elem *cur = n ? &e : &first;
		int r = virtq_pop(vq, cur);
		uint32_t got;

		if (r <= 0) {
			vq->last_avail = start; /* all or nothing */
			if (r < 0)
				return r;
			/* The whole ring is not enough (tiny buffers): never. */
			return n >= vq->num ? -EMSGSIZE : 0;
		}
		/* 5.1.6.3.1: every buffer holds at least the header. */
		if (cur->in_len < VIRTIO_NET_HDR_LEN) {
			vq->last_avail = start;
			return -EINVAL;
		}
		got = fill_chain(cur, frame, off, len);
		virtq_fill(vq, n++, cur->head, got);
		off += got;
	}
	nb = (uint16_t)n; /* n <= vq->num <= VIRTQ_MAX_SIZE */
	iov_from_buf(first.iov + first.nr_out, first.nr_in, HDR_NUM_BUFFERS, &nb,
		     sizeof(nb));
	virtq_flush(vq, n);
	return (int)n;
}

int virtio_net_rx_place(struct virtq *vq, bool mrg, uint8_t *frame, size_t len,
			struct iovec *iov, unsigned max_iov)
{
	if (len < VIRTIO_NET_HDR_LEN || max_iov < 2)
		return -EMSGSIZE;
	if (!mrg)
		return place_one(vq, frame, len, iov, max_iov);
	return place_merged(vq, frame, len, iov, max_iov);
}
