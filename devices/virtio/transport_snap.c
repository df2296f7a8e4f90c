/* SPDX-License-Identifier: MIT */
/*
 * A virtio device's snapshot, the same for every transport (struct
 * device's save and load: virtio_dev_save, virtio_dev_load). Payload
 * (little-endian):
 *   u32 the transport's magic ("VMIO" virtio-mmio, "VPCI" virtio-pci),
 *   u32 device id, u32 number of queues (both this device's)
 *   u32 status (without NEEDS_RESET), u64 driver features (a subset of the
 *   offer once FEATURES_OK is set; before, whatever the driver wrote), u32 device and driver feature selects, u32 queue select,
 *   u32 config generation, u32 interrupt status (VIRTIO_INT_* bits),
 *   u8 live, u8 needs reset (live only when DRIVER_OK, not FAILED and no
 *   reset needed)
 *   per queue: u16 size register (<= QueueNumMax), u8 ready, u64 desc,
 *   driver and device ring addresses; u16 last_avail, avail_seen,
 *   used_idx, signalled_used, u8 signalled_valid (struct virtq; all 0 when
 *   the queue is not ready). A ready queue's size is a power of two and
 *   its rings lie aligned in guest RAM (virtq_init); at most `size`
 *   chains are taken and unanswered, and (unless the device needs a
 *   reset) at most `size` seen and not taken.
 *   then the transport's own part, if any (transport->save; virtio-pci:
 *   its vectors and MSI-X table), then the device's own part
 *   (ops->save), to the end
 * A restored device that was live goes live again as at DRIVER_OK
 * (go_live: ops->activate, then every queue looked at), so ioeventfds,
 * irqfds and the device's own data path work as before.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/snapfile.h"
#include "devices/virtio/transport.h"

#define STATUS_BITS (0xff & ~VIRTIO_STATUS_NEEDS_RESET)

/* A payload's transport state, checked, before it is applied. */
struct virtio_snap {
	uint32_t status, dev_features_sel, drv_features_sel, queue_sel;
	uint32_t config_generation, isr;
	uint64_t drv_features;
	bool live, needs_reset;
	struct virtio_snap_queue {
		uint16_t num;
		bool ready;
		uint64_t desc, driver, device;
		struct virtq vq; /* ready: over this VM's RAM, indices set */
	} *queues;
	struct snap_cursor device_part;
};

static void save_queue(struct virtio_queue *q, struct snap_buf *out)
{
	pthread_mutex_lock(&q->lock);
	snap_put_u16(out, q->num);
	snap_put_u8(out, q->ready);
	snap_put_u64(out, q->desc);
	snap_put_u64(out, q->driver);
	snap_put_u64(out, q->device);
	snap_put_u16(out, q->vq.last_avail);
	snap_put_u16(out, q->vq.avail_seen);
	snap_put_u16(out, q->vq.used_idx);
	snap_put_u16(out, q->vq.signalled_used);
	snap_put_u8(out, q->vq.signalled_valid);
	pthread_mutex_unlock(&q->lock);
}

static void save_registers(struct virtio_dev *vd, struct snap_buf *out)
{
	snap_put_u32(out, vd->transport->snap_magic);
	snap_put_u32(out, vd->ops->device_id);
	snap_put_u32(out, vd->nr_queues);
	snap_put_u32(out, vd->status);
	snap_put_u64(out, vd->drv_features);
	snap_put_u32(out, vd->dev_features_sel);
	snap_put_u32(out, vd->drv_features_sel);
	snap_put_u32(out, vd->queue_sel);
	snap_put_u32(out, vd->config_generation);
	snap_put_u32(out, atomic_load(&vd->isr));
	snap_put_u8(out, atomic_load(&vd->live));
	snap_put_u8(out, atomic_load(&vd->needs_reset));
}

int virtio_dev_save(struct device *dev, struct snap_buf *out)
{
	struct virtio_dev *vd = dev->private;
	size_t start = out->len;
	int err = 0;

	pthread_mutex_lock(&vd->lock);
	save_registers(vd, out);
	for (unsigned i = 0; i < vd->nr_queues; i++)
		save_queue(&vd->queues[i], out);
	if (vd->transport->save)
		vd->transport->save(vd, out);
	if (vd->ops->save)
		err = vd->ops->save(vd, out);
	pthread_mutex_unlock(&vd->lock);
	if (!err && out->failed)
		err = -ENOMEM;
	if (err && !out->failed)
		out->len = start; /* no half payload for the caller to keep */
	return err;
}

static bool is_bool(uint8_t v)
{
	return v <= 1;
}

/* The registers as write_status and friends could have left them. */
static int parse_registers(struct virtio_dev *vd, struct snap_cursor *in,
			   struct virtio_snap *st)
{
	uint8_t live, needs_reset;
	bool up;

	if (snap_get_u32(in) != vd->transport->snap_magic || snap_get_u32(in) != vd->ops->device_id ||
	    snap_get_u32(in) != vd->nr_queues)
		return -EINVAL;
	st->status = snap_get_u32(in);
	st->drv_features = snap_get_u64(in);
	st->dev_features_sel = snap_get_u32(in);
	st->drv_features_sel = snap_get_u32(in);
	st->queue_sel = snap_get_u32(in);
	st->config_generation = snap_get_u32(in);
	st->isr = snap_get_u32(in);
	live = snap_get_u8(in);
	needs_reset = snap_get_u8(in);
	if (in->bad || (st->status & ~STATUS_BITS) || !is_bool(live) || !is_bool(needs_reset) ||
	    (st->isr & ~(VIRTIO_INT_USED | VIRTIO_INT_CONFIG)))
		return -EINVAL;
	/* Until FEATURES_OK the driver may have written any bits (they are
	 * refused at FEATURES_OK); from then on only offered ones. */
	if ((st->status & VIRTIO_STATUS_FEATURES_OK) && (st->drv_features & ~virtio_offered(vd)))
		return -EINVAL;
	st->live = live;
	st->needs_reset = needs_reset;
	if ((st->status & VIRTIO_STATUS_DRIVER_OK) && !(st->status & VIRTIO_STATUS_FEATURES_OK))
		return -EINVAL;
	if ((st->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(st->drv_features & VIRTIO_F_BIT(VIRTIO_F_VERSION_1)))
		return -EINVAL;
	up = (st->status & VIRTIO_STATUS_DRIVER_OK) && !(st->status & VIRTIO_STATUS_FAILED);
	/* live only when up and not needing a reset; not live while up is
	 * what a driver that took FAILED back leaves (nothing re-arms it) */
	return !st->live || (up && !st->needs_reset) ? 0 : -EINVAL;
}

static bool at_most(uint16_t from, uint16_t to, uint16_t limit)
{
	return (uint16_t)(to - from) <= limit;
}

/* A ready queue's rings over this VM's RAM, with the saved indices. */
static int parse_ring(struct virtio_dev *vd, struct snap_cursor *in,
		      const struct virtio_snap *st, struct virtio_snap_queue *q)
{
	uint16_t last_avail = snap_get_u16(in), avail_seen = snap_get_u16(in);
	uint16_t used_idx = snap_get_u16(in), signalled_used = snap_get_u16(in);
	uint8_t signalled_valid = snap_get_u8(in);

	if (in->bad || !is_bool(signalled_valid))
		return -EINVAL;
	if (!q->ready) /* its struct virtq is all zero (queue_stop) */
		return (last_avail | avail_seen | used_idx | signalled_used | signalled_valid) ?
		       -EINVAL : 0;
	if (virtq_init(&q->vq, vd->vm, q->num, q->desc, q->driver, q->device, st->drv_features))
		return -EINVAL;
	if (!at_most(used_idx, last_avail, q->num) ||
	    (!st->needs_reset && !at_most(last_avail, avail_seen, q->num)))
		return -EINVAL;
	q->vq.last_avail = last_avail;
	q->vq.avail_seen = avail_seen;
	q->vq.used_idx = used_idx;
	q->vq.signalled_used = signalled_used;
	q->vq.signalled_valid = signalled_valid;
	return 0;
}

static int parse_queue(struct virtio_dev *vd, struct snap_cursor *in,
		       const struct virtio_snap *st, struct virtio_snap_queue *q)
{
	uint8_t ready;

	q->num = snap_get_u16(in);
	ready = snap_get_u8(in);
	q->desc = snap_get_u64(in);
	q->driver = snap_get_u64(in);
	q->device = snap_get_u64(in);
	if (in->bad || !is_bool(ready) || q->num > vd->ops->queue_max)
		return -EINVAL;
	q->ready = ready;
	return parse_ring(vd, in, st, q);
}

/* The whole payload, checked (the device's part by its own hook). */
static int parse_snapshot(struct virtio_dev *vd, struct snap_cursor *in, struct virtio_snap *st)
{
	int err = parse_registers(vd, in, st);

	for (unsigned i = 0; !err && i < vd->nr_queues; i++)
		err = parse_queue(vd, in, st, &st->queues[i]);
	if (!err && vd->transport->parse)
		err = vd->transport->parse(vd, in);
	if (err)
		return err;
	st->device_part = *in;
	if (vd->ops->load)
		err = vd->ops->load(vd, in, st->drv_features, false);
	if (!err && !snap_cursor_done(in))
		err = -EINVAL;
	if (err && vd->transport->discard)
		vd->transport->discard(vd);
	return err;
}

/* Transport lock held, after virtio_device_reset: the checked state in place. */
static void apply_snapshot(struct virtio_dev *vd, const struct virtio_snap *st)
{
	vd->status = st->status;
	vd->drv_features = st->drv_features;
	vd->dev_features_sel = st->dev_features_sel;
	vd->drv_features_sel = st->drv_features_sel;
	vd->queue_sel = st->queue_sel;
	vd->config_generation = st->config_generation;
	for (unsigned i = 0; i < vd->nr_queues; i++) {
		struct virtio_queue *q = &vd->queues[i];
		const struct virtio_snap_queue *sq = &st->queues[i];

		pthread_mutex_lock(&q->lock);
		q->num = sq->num;
		q->desc = sq->desc;
		q->driver = sq->driver;
		q->device = sq->device;
		q->vq = sq->vq;
		q->ready = sq->ready;
		pthread_mutex_unlock(&q->lock);
	}
	atomic_store(&vd->isr, st->isr);
	atomic_store(&vd->needs_reset, st->needs_reset);
}

int virtio_dev_load(struct device *dev, struct snap_cursor *in)
{
	struct virtio_dev *vd = dev->private;
	struct virtio_snap st = { .queues = calloc(vd->nr_queues, sizeof(*st.queues)) };
	int err;

	if (!st.queues)
		return -ENOMEM;
	pthread_mutex_lock(&vd->lock);
	err = parse_snapshot(vd, in, &st);
	if (!err) {
		/* From a clean device, as after the driver's reset. */
		virtio_device_reset(vd);
		apply_snapshot(vd, &st);
		if (vd->transport->apply)
			vd->transport->apply(vd);
		if (vd->ops->load)
			err = vd->ops->load(vd, &st.device_part, st.drv_features, true);
		if (!err && st.live)
			virtio_go_live(vd);
	}
	pthread_mutex_unlock(&vd->lock);
	free(st.queues);
	return err;
}
