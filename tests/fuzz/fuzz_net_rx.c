/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for virtio-net's receive placement (devices/virtio/
 * net_rx.c) on top of the queue walker: fuzzer-chosen receive rings in a
 * fake guest RAM (as in fuzz_virtqueue), frames of fuzzer-chosen lengths put
 * in with and without MRG_RXBUF. Checks: a placed frame takes as many chains
 * as it publishes, at most the ring's size (one without MRG_RXBUF); nothing
 * is consumed when placement fails; ASan catches any write outside guest RAM
 * or the iovec scratch array. (The used elements themselves are not
 * checked: a hostile guest may put its buffers over its own used ring.)
 *
 * FUZZ_SRCS: devices/virtio/net_rx.c devices/virtio/queue.c core/mm.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. \
 *     tests/fuzz/fuzz_net_rx.c devices/virtio/net_rx.c devices/virtio/queue.c core/mm.c
 *   ./a.out tests/fuzz/corpus/net_rx
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "tests/fuzz/fake_ram.h"

#define MAX_ROUNDS 32
#define MAX_FRAME 0x4000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct hdr {
	uint8_t num_log2, features, max_iov, rounds;
	uint16_t desc, avail, used;
	uint16_t frame_len, frame_step;
} __attribute__((packed));

static void run_rx(struct vm *vm, const struct hdr *h, uint8_t *frame)
{
	unsigned max_iov = (unsigned)h->max_iov % 64 + 2;
	struct iovec *iov = calloc(max_iov, sizeof(*iov));
	uint16_t num = (uint16_t)(1u << (h->num_log2 % 6));
	uint64_t features = (uint64_t)(h->features & 3) << VIRTIO_RING_F_INDIRECT_DESC;
	bool mrg = h->features & 4;
	size_t len = h->frame_len % MAX_FRAME;
	struct virtq vq;

	if (!iov || virtq_init(&vq, vm, num, h->desc, h->avail, h->used, features)) {
		free(iov);
		return;
	}
	for (unsigned r = 0; r < (unsigned)h->rounds % MAX_ROUNDS + 1; r++) {
		uint16_t avail = vq.last_avail, used = vq.used_idx;
		int got = virtio_net_rx_place(&vq, mrg, frame, len, iov, max_iov);

		if (got > 0) {
			if ((!mrg && got != 1) || got > num ||
			    vq.used_idx != (uint16_t)(used + got) ||
			    vq.last_avail != (uint16_t)(avail + got))
				abort();
		} else if (vq.last_avail != avail || vq.used_idx != used) {
			abort(); /* a failed placement consumed something */
		}
		if (got < 0 && got != -EMSGSIZE)
			break; /* the device would now need a reset */
		if (got == 0 && !virtq_enable_notify(&vq))
			break;
		len = (len + h->frame_step) % MAX_FRAME;
	}
	free(iov);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake_ram ram;
	uint8_t *frame;
	struct hdr h;

	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	frame = malloc(MAX_FRAME);
	if (!frame)
		abort();
	memset(frame, 0x5a, MAX_FRAME);
	fake_ram_init(&ram, data + sizeof(h), size - sizeof(h));
	run_rx(&ram.vm, &h, frame);
	fake_ram_free(&ram);
	free(frame);
	return 0;
}
