/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the split-virtqueue walker (devices/virtio/queue.c).
 * The input is a small header (queue size, negotiated features, where the
 * rings are, how big the device's iovec array is) followed by the contents
 * of a fake guest RAM: descriptor tables, avail ring, indirect tables, all
 * fuzzer-chosen. The walker pops, pushes and re-arms notifications as a
 * device would; every segment it returns is checked to lie inside one RAM
 * slot and is read and written end to end, so ASan catches any host pointer
 * outside guest RAM. RAM is two slots that touch ([0, 64K) and [64K, 68K))
 * so chains that cross a slot edge are exercised too.
 *
 * FUZZ_SRCS: devices/virtio/queue.c core/mm.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. \
 *     tests/fuzz/fuzz_virtqueue.c devices/virtio/queue.c core/mm.c
 *   ./a.out tests/fuzz/corpus/virtqueue
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "tests/fuzz/fake_ram.h"

#define MAX_ROUNDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct hdr {
	uint8_t num_log2, features, max_iov, rounds;
	uint16_t desc, avail, used;
} __attribute__((packed));

static int inside(const struct mem_map *mm, const struct iovec *v)
{
	for (int i = 0; i < mm->nr_slots; i++) {
		const struct mem_slot *s = &mm->slots[i];
		const uint8_t *p = v->iov_base;

		if (p >= s->hva && p < s->hva + s->size)
			return v->iov_len <= (size_t)(s->hva + s->size - p);
	}
	return 0;
}

/* Check and touch every byte of a popped chain, as a device would. */
static uint32_t consume(const struct mem_map *mm, const struct virtq_elem *e)
{
	uint64_t out = 0, in = 0;
	uint32_t sum = 0;

	if (e->nr_out + e->nr_in > e->max_iov)
		abort();
	for (unsigned i = 0; i < e->nr_out + e->nr_in; i++) {
		const struct iovec *v = &e->iov[i];
		uint8_t *p = v->iov_base;

		if (!v->iov_len || !inside(mm, v))
			abort();
		if (i < e->nr_out) {
			out += v->iov_len;
			sum += p[0] + p[v->iov_len - 1];
		} else {
			in += v->iov_len;
			memset(p, 0xa5, v->iov_len);
		}
	}
	if (out != e->out_len || in != e->in_len || out + in > VIRTQ_MAX_CHAIN_BYTES)
		abort();
	return sum;
}

static void run_queue(struct vm *vm, const struct hdr *h)
{
	unsigned max_iov = (unsigned)h->max_iov % 64 + 1;
	struct iovec *iov = calloc(max_iov, sizeof(*iov));
	struct virtq_elem e = { .iov = iov, .max_iov = max_iov };
	uint16_t num = (uint16_t)(1u << (h->num_log2 % 6));
	uint64_t features = (uint64_t)(h->features & 3) << VIRTIO_RING_F_INDIRECT_DESC;
	struct virtq vq;
	volatile uint32_t sink = 0;

	if (!iov || virtq_init(&vq, vm, num, h->desc, h->avail, h->used, features)) {
		free(iov);
		return;
	}
	virtq_disable_notify(&vq);
	for (unsigned r = 0; r < (unsigned)h->rounds % MAX_ROUNDS + 1; r++) {
		int got = virtq_pop(&vq, &e);

		if (got < 0)
			break; /* the device would now need a reset */
		if (got == 0) {
			if (!virtq_enable_notify(&vq))
				break;
			virtq_disable_notify(&vq);
			continue;
		}
		sink += consume(vm->mem_map, &e);
		virtq_push(&vq, e.head, (uint32_t)e.in_len);
		if (r & 1)
			sink += virtq_need_interrupt(&vq);
	}
	sink += virtq_need_interrupt(&vq);
	(void)sink;
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
	run_queue(&ram.vm, &h);
	fake_ram_free(&ram);
	return 0;
}
