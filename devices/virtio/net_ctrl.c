/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's control queue (virtio 1.2 section 5.1.6.5), kept apart from
 * the TAP so that tests and the fuzzer can drive it on a fake guest RAM.
 *
 * A command is one chain: class and command bytes and the command's data,
 * readable; then one writable ack byte. The only command this device knows
 * is VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (how many queue pairs the driver uses,
 * once it negotiated VIRTIO_NET_F_MQ); everything else is answered
 * VIRTIO_NET_ERR, as is a command of the wrong size or a pair count outside
 * 1..max_virtqueue_pairs. A chain without a writable byte cannot be
 * answered: it goes back with nothing written (the driver sees no OK).
 */
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtio.h"

#define CTRL_HDR 2        /* class, command */
#define CTRL_PAIRS_LEN 2  /* le16 virtqueue_pairs */

/* VIRTIO_NET_OK, or VIRTIO_NET_ERR: what the driver is told. */
static uint8_t ctrl_run(const struct virtq_elem *e, uint64_t features,
			uint16_t max_pairs, virtio_net_set_pairs_fn set,
			void *opaque)
{
	uint8_t cmd[CTRL_HDR + CTRL_PAIRS_LEN];
	uint16_t pairs;

	/* Exactly header + le16: anything longer or shorter is malformed. */
	if (e->out_len != sizeof(cmd) ||
	    iov_to_buf(e->iov, e->nr_out, 0, cmd, sizeof(cmd)) != sizeof(cmd))
		return VIRTIO_NET_ERR;
	if (cmd[0] != VIRTIO_NET_CTRL_MQ || cmd[1] != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ||
	    !(features & VIRTIO_F_BIT(VIRTIO_NET_F_MQ)))
		return VIRTIO_NET_ERR;
	pairs = (uint16_t)(cmd[2] | cmd[3] << 8);
	if (pairs < 1 || pairs > max_pairs)
		return VIRTIO_NET_ERR;
	return set(opaque, pairs) ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
}

int virtio_net_ctrl_one(struct virtq *vq, uint64_t features, uint16_t max_pairs,
			virtio_net_set_pairs_fn set, void *opaque,
			struct iovec *iov, unsigned max_iov)
{
	struct virtq_elem e = { .iov = iov, .max_iov = max_iov };
	int r = virtq_pop(vq, &e);
	uint8_t ack;

	if (r <= 0)
		return r;
	if (!e.in_len) {
		virtq_push(vq, e.head, 0); /* nowhere to answer */
		return 1;
	}
	ack = ctrl_run(&e, features, max_pairs, set, opaque);
	/* The ack is the chain's last byte (drivers may put more before it). */
	iov_from_buf(e.iov + e.nr_out, e.nr_in, (size_t)e.in_len - 1, &ack, 1);
	virtq_push(vq, e.head, 1);
	return 1;
}
