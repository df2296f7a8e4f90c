/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (virtio 1.2 section 5.4): every writable buffer the driver
 * offers is filled from getrandom(). Runs on the VM's I/O thread; a request
 * gets at most RNG_MAX_REQUEST bytes so one chain cannot hog the thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "devices/virtio/virtio.h"
#include "utils.h"
#include "vm.h"

#define RNG_QUEUE_MAX 64
#define RNG_MAX_REQUEST (64u << 10)

struct virtio_rng {
	struct virtio_dev *vd;
	struct iovec iov[RNG_QUEUE_MAX];
};

uint32_t virtio_rng_fill(const struct iovec *iov, unsigned n, uint32_t max)
{
	uint32_t done = 0;

	for (unsigned i = 0; i < n && done < max; i++) {
		size_t want = MIN(iov[i].iov_len, (size_t)(max - done)), got = 0;

		while (got < want) {
			ssize_t r = getrandom((uint8_t *)iov[i].iov_base + got,
					      want - got, 0);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return done + (uint32_t)got;
			got += (size_t)r;
		}
		done += (uint32_t)got;
	}
	return done;
}

static void rng_notify(struct virtio_dev *vd, unsigned qi)
{
	struct virtio_rng *r = vd->priv;
	struct virtio_queue *q = virtio_queue_get(vd, 0);
	struct virtq_elem e = { .iov = r->iov, .max_iov = RNG_QUEUE_MAX };

	if (!q)
		return;
	while (virtio_queue_pop(q, &e))
		virtq_push(&q->vq, e.head,
			   virtio_rng_fill(e.iov + e.nr_out, e.nr_in, RNG_MAX_REQUEST));
	virtio_queue_interrupt(q);
	virtio_queue_put(q);
}

static void rng_destroy(struct virtio_dev *vd)
{
	free(vd->priv);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng", .device_id = VIRTIO_ID_RNG,
	.features = VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
		    VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX),
	.num_queues = 1, .queue_max = RNG_QUEUE_MAX,
	.queue_notify = rng_notify, .destroy = rng_destroy,
};

struct device *virtio_rng_create_in(struct vm *vm, const struct virtio_slot *slot)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	char why[128];

	if (!r)
		return NULL;
	r->vd = virtio_transport_create(vm, slot, &rng_ops, r, why, sizeof(why));
	if (!r->vd) {
		vm_err(vm, "virtio-rng: %s", why);
		free(r);
		return NULL;
	}
	return &r->vd->dev;
}

struct device *virtio_rng_create(struct vm *vm, uint64_t base, uint32_t gsi)
{
	const struct virtio_slot slot = { .base = base, .gsi = gsi };

	return virtio_rng_create_in(vm, &slot);
}
