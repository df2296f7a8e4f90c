/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for virtio-net's control queue (devices/virtio/
 * net_ctrl.c) on top of the queue walker: fuzzer-chosen control rings and
 * commands in a fake guest RAM (as in fuzz_net_rx), answered for a device
 * with a fuzzer-chosen max_virtqueue_pairs, with and without MQ. Checks:
 * set_pairs is only ever asked for 1..max pairs, and only with MQ; an
 * answered command takes exactly one chain, a failed pop none; ASan
 * catches any access outside guest RAM or the iovec scratch array.
 *
 * FUZZ_SRCS: devices/virtio/net_ctrl.c devices/virtio/queue.c core/mm.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. \
 *     tests/fuzz/fuzz_net_ctrl.c devices/virtio/net_ctrl.c devices/virtio/queue.c core/mm.c
 *   ./a.out tests/fuzz/corpus/net_ctrl
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "tests/fuzz/fake_ram.h"

#define MAX_ROUNDS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct hdr {
	uint8_t num_log2, features, max_iov, rounds;
	uint16_t desc, avail, used;
	uint8_t max_pairs, fail;
} __attribute__((packed));

struct rec {
	uint16_t max;
	bool mq;
	int fail;
};

static int set_pairs(void *opaque, uint16_t pairs)
{
	struct rec *r = opaque;

	if (!r->mq || pairs < 1 || pairs > r->max)
		abort(); /* a command the parser should have refused */
	return r->fail;
}

static void run_ctrl(struct vm *vm, const struct hdr *h)
{
	unsigned max_iov = (unsigned)h->max_iov % 16 + 1;
	struct iovec *iov = calloc(max_iov, sizeof(*iov));
	uint16_t num = (uint16_t)(1u << (h->num_log2 % 6));
	uint64_t features = (uint64_t)(h->features & 3) << VIRTIO_RING_F_INDIRECT_DESC;
	struct rec r = { .max = (uint16_t)(h->max_pairs % 9), .mq = h->features & 4,
			 .fail = (h->fail & 1) ? -EIO : 0 };
	struct virtq vq;

	if (r.mq)
		features |= VIRTIO_F_BIT(VIRTIO_NET_F_MQ);
	if (!iov || virtq_init(&vq, vm, num, h->desc, h->avail, h->used, features)) {
		free(iov);
		return;
	}
	for (unsigned i = 0; i < (unsigned)h->rounds % MAX_ROUNDS + 1; i++) {
		uint16_t avail = vq.last_avail, used = vq.used_idx;
		int got = virtio_net_ctrl_one(&vq, features, r.max, set_pairs, &r, iov, max_iov);

		if (got == 1 && (vq.used_idx != (uint16_t)(used + 1) ||
				 vq.last_avail != (uint16_t)(avail + 1)))
			abort();
		if (got != 1 && (vq.used_idx != used || vq.last_avail != avail))
			abort(); /* a failed or empty pop consumed something */
		if (got <= 0)
			break;
	}
	free(iov);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake_ram ram;
	struct hdr h;

	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	fake_ram_init(&ram, data + sizeof(h), size - sizeof(h));
	run_ctrl(&ram.vm, &h);
	fake_ram_free(&ram);
	return 0;
}
