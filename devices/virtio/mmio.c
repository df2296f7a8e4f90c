/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio version 2 transport (virtio 1.2 section 4.2.2): the register
 * block over what all transports share (transport.c: status, features,
 * queue set-up, reset), and the two fast paths: QueueNotify through an
 * ioeventfd per queue (datamatch = queue index), interrupts through an
 * irqfd on the device's one GSI. Where the backend has neither, the MMIO
 * write handler signals the same eventfd and interrupts pulse the GSI.
 *
 * Snapshot payload (little-endian; mmio_save / mmio_load):
 *   u32 "VMIO" magic, u32 device id, u32 number of queues (both this
 *   device's)
 *   u32 status (without NEEDS_RESET), u64 driver features (a subset of the
 *   offer), u32 device and driver feature selects, u32 queue select,
 *   u32 config generation, u32 interrupt status (VIRTIO_INT_* bits),
 *   u8 live, u8 needs reset (live exactly when DRIVER_OK, not FAILED and
 *   no reset needed)
 *   per queue: u16 size register (<= QueueNumMax), u8 ready, u64 desc,
 *   driver and device ring addresses; u16 last_avail, avail_seen,
 *   used_idx, signalled_used, u8 signalled_valid (struct virtq; all 0 when
 *   the queue is not ready). A ready queue's size is a power of two and
 *   its rings lie aligned in guest RAM (virtq_init); at most `size`
 *   chains are taken and unanswered, and (unless the device needs a
 *   reset) at most `size` seen and not taken.
 *   then the device's own part (ops->save), to the end
 * A restored device that was live goes live again as at DRIVER_OK
 * (go_live: ops->activate, then every queue looked at), so ioeventfds,
 * irqfds and the device's own data path work as before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "devices/virtio/transport.h"
#include "utils.h"
#include "vm.h"

#define MMIO_MAGIC 0x74726976   /* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR 0x4d4d5656  /* "VVMM" */
#define MMIO_WINDOW 0x1000

enum {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c, REG_DEV_FEATURES = 0x010,
	REG_DEV_FEATURES_SEL = 0x014, REG_DRV_FEATURES = 0x020,
	REG_DRV_FEATURES_SEL = 0x024, REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
	REG_INT_STATUS = 0x060, REG_INT_ACK = 0x064, REG_STATUS = 0x070,
	REG_QUEUE_DESC_LO = 0x080, REG_QUEUE_DESC_HI = 0x084,
	REG_QUEUE_DRIVER_LO = 0x090, REG_QUEUE_DRIVER_HI = 0x094,
	REG_QUEUE_DEVICE_LO = 0x0a0, REG_QUEUE_DEVICE_HI = 0x0a4,
	REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LO = 0x0b0, REG_SHM_LEN_HI = 0x0b4,
	REG_SHM_BASE_LO = 0x0b8, REG_SHM_BASE_HI = 0x0bc,
	REG_CONFIG_GENERATION = 0x0fc, REG_CONFIG = 0x100,
};

/* One interrupt line for every source; InterruptStatus says which. */
static void mmio_interrupt(struct virtio_dev *vd, int source)
{
	(void)source;
	/* Always a fresh edge (the DSDT says edge-triggered): an edge sent
	 * while the pin was masked is gone, so never assume one is pending. */
	if (vd->irqfd) {
		virtio_eventfd_signal(vd->irq_fd);
	} else {
		vm_irq_line(vd->vm, vd->gsi, 1);
		vm_irq_line(vd->vm, vd->gsi, 0);
	}
}

static const struct virtio_transport mmio_transport = {
	.name = "virtio-mmio", .interrupt = mmio_interrupt,
};

/* ---- registers ---- */

/* Queue registers: only while the queue is not ready (4.2.2.2). */
static void write_queue_reg(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
	struct virtio_queue *q = virtio_selected_queue(vd);

	if (!q)
		return;
	switch (off) {
	case REG_QUEUE_READY:
		virtio_queue_set_ready(vd, q, v);
		break;
	case REG_QUEUE_NUM:
		virtio_queue_size_write(vd, q, v);
		break;
	case REG_QUEUE_DESC_LO: case REG_QUEUE_DESC_HI:
		virtio_queue_addr_write(q, &q->desc, off == REG_QUEUE_DESC_HI, v);
		break;
	case REG_QUEUE_DRIVER_LO: case REG_QUEUE_DRIVER_HI:
		virtio_queue_addr_write(q, &q->driver, off == REG_QUEUE_DRIVER_HI, v);
		break;
	case REG_QUEUE_DEVICE_LO: case REG_QUEUE_DEVICE_HI:
		virtio_queue_addr_write(q, &q->device, off == REG_QUEUE_DEVICE_HI, v);
		break;
	}
}

static void write_reg(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
	switch (off) {
	case REG_DEV_FEATURES_SEL:
		vd->dev_features_sel = v;
		return;
	case REG_DRV_FEATURES_SEL:
		vd->drv_features_sel = v;
		return;
	case REG_DRV_FEATURES:
		virtio_driver_features_write(vd, vd->drv_features_sel, v);
		return;
	case REG_QUEUE_SEL:
		vd->queue_sel = v;
		return;
	case REG_STATUS:
		virtio_status_write(vd, v);
		return;
	default:
		write_queue_reg(vd, off, v);
	}
}

static uint32_t read_queue_reg(struct virtio_dev *vd, uint64_t off)
{
	struct virtio_queue *q = virtio_selected_queue(vd);

	if (!q)
		return 0; /* QueueNumMax 0: no such queue */
	if (off == REG_QUEUE_NUM_MAX)
		return vd->ops->queue_max;
	return q->ready; /* REG_QUEUE_READY */
}

static uint32_t read_reg(struct virtio_dev *vd, uint64_t off)
{
	switch (off) {
	case REG_MAGIC: return MMIO_MAGIC;
	case REG_VERSION: return MMIO_VERSION;
	case REG_DEVICE_ID: return vd->ops->device_id;
	case REG_VENDOR_ID: return MMIO_VENDOR;
	case REG_DEV_FEATURES:
		return virtio_device_features_word(vd, vd->dev_features_sel);
	case REG_QUEUE_NUM_MAX: case REG_QUEUE_READY:
		return read_queue_reg(vd, off);
	case REG_INT_STATUS: return virtio_int_status(vd);
	case REG_STATUS: return virtio_status_read(vd);
	case REG_SHM_LEN_LO: case REG_SHM_LEN_HI:
	case REG_SHM_BASE_LO: case REG_SHM_BASE_HI:
		return 0xffffffff; /* no shared memory regions */
	case REG_CONFIG_GENERATION: return vd->config_generation;
	default: return 0;
	}
}

static int mmio_read(struct device *dev, uint64_t off, void *data, size_t size)
{
	struct virtio_dev *vd = dev->private;
	uint32_t v;

	memset(data, 0, size);
	if (off >= REG_CONFIG) {
		virtio_config_read(vd, off - REG_CONFIG, data, size);
		return 0;
	}
	if (size != 4 || (off & 3))
		return 0; /* registers are 32-bit only (4.2.2.2) */
	if (off == REG_INT_STATUS) {
		v = virtio_int_status(vd); /* hot path: no lock */
	} else {
		pthread_mutex_lock(&vd->lock);
		v = read_reg(vd, off);
		pthread_mutex_unlock(&vd->lock);
	}
	memcpy(data, &v, sizeof(v));
	return 0;
}

static int mmio_write(struct device *dev, uint64_t off, void *data, size_t size)
{
	struct virtio_dev *vd = dev->private;
	uint32_t v;

	if (off >= REG_CONFIG) {
		virtio_config_write(vd, off - REG_CONFIG, data, size);
		return 0;
	}
	if (size != 4 || (off & 3))
		return 0;
	memcpy(&v, data, sizeof(v));
	if (off == REG_QUEUE_NOTIFY) {
		/* Reached only without an ioeventfd for this value. */
		if (v < vd->ops->num_queues)
			virtio_eventfd_signal(vd->queues[v].notify_fd);
		return 0;
	}
	if (off == REG_INT_ACK) {
		atomic_fetch_and(&vd->isr, ~v);
		return 0;
	}
	pthread_mutex_lock(&vd->lock);
	write_reg(vd, off, v);
	pthread_mutex_unlock(&vd->lock);
	return 0;
}

/* ---- snapshots ---- */

#define SNAP_MAGIC_MMIO 0x4f494d56u /* "VMIO" */
#define STATUS_BITS (0xff & ~VIRTIO_STATUS_NEEDS_RESET)

/* A payload's transport state, checked, before it is applied. */
struct mmio_snap {
	uint32_t status, dev_features_sel, drv_features_sel, queue_sel;
	uint32_t config_generation, isr;
	uint64_t drv_features;
	bool live, needs_reset;
	struct mmio_snap_queue {
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
	snap_put_u32(out, SNAP_MAGIC_MMIO);
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

static int mmio_save(struct device *dev, struct snap_buf *out)
{
	struct virtio_dev *vd = dev->private;
	size_t start = out->len;
	int err = 0;

	pthread_mutex_lock(&vd->lock);
	save_registers(vd, out);
	for (unsigned i = 0; i < vd->nr_queues; i++)
		save_queue(&vd->queues[i], out);
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
			   struct mmio_snap *st)
{
	uint8_t live, needs_reset;
	bool up;

	if (snap_get_u32(in) != SNAP_MAGIC_MMIO || snap_get_u32(in) != vd->ops->device_id ||
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
	    (st->drv_features & ~virtio_offered(vd)) ||
	    (st->isr & ~(VIRTIO_INT_USED | VIRTIO_INT_CONFIG)))
		return -EINVAL;
	st->live = live;
	st->needs_reset = needs_reset;
	if ((st->status & VIRTIO_STATUS_DRIVER_OK) && !(st->status & VIRTIO_STATUS_FEATURES_OK))
		return -EINVAL;
	if ((st->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(st->drv_features & VIRTIO_F_BIT(VIRTIO_F_VERSION_1)))
		return -EINVAL;
	up = (st->status & VIRTIO_STATUS_DRIVER_OK) && !(st->status & VIRTIO_STATUS_FAILED);
	return st->live == (up && !st->needs_reset) ? 0 : -EINVAL;
}

static bool at_most(uint16_t from, uint16_t to, uint16_t limit)
{
	return (uint16_t)(to - from) <= limit;
}

/* A ready queue's rings over this VM's RAM, with the saved indices. */
static int parse_ring(struct virtio_dev *vd, struct snap_cursor *in,
		      const struct mmio_snap *st, struct mmio_snap_queue *q)
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
		       const struct mmio_snap *st, struct mmio_snap_queue *q)
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
static int parse_snapshot(struct virtio_dev *vd, struct snap_cursor *in, struct mmio_snap *st)
{
	int err = parse_registers(vd, in, st);

	for (unsigned i = 0; !err && i < vd->nr_queues; i++)
		err = parse_queue(vd, in, st, &st->queues[i]);
	if (err)
		return err;
	st->device_part = *in;
	if (vd->ops->load)
		err = vd->ops->load(vd, in, st->drv_features, false);
	if (!err && !snap_cursor_done(in))
		err = -EINVAL;
	return err;
}

/* Transport lock held, after virtio_device_reset: the checked state in place. */
static void apply_snapshot(struct virtio_dev *vd, const struct mmio_snap *st)
{
	vd->status = st->status;
	vd->drv_features = st->drv_features;
	vd->dev_features_sel = st->dev_features_sel;
	vd->drv_features_sel = st->drv_features_sel;
	vd->queue_sel = st->queue_sel;
	vd->config_generation = st->config_generation;
	for (unsigned i = 0; i < vd->nr_queues; i++) {
		struct virtio_queue *q = &vd->queues[i];
		const struct mmio_snap_queue *sq = &st->queues[i];

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

static int mmio_load(struct device *dev, struct snap_cursor *in)
{
	struct virtio_dev *vd = dev->private;
	struct mmio_snap st = { .queues = calloc(vd->nr_queues, sizeof(*st.queues)) };
	int err;

	if (!st.queues)
		return -ENOMEM;
	pthread_mutex_lock(&vd->lock);
	err = parse_snapshot(vd, in, &st);
	if (!err) {
		/* From a clean device, as after the driver's reset. */
		virtio_device_reset(vd);
		apply_snapshot(vd, &st);
		if (vd->ops->load)
			err = vd->ops->load(vd, &st.device_part, st.drv_features, true);
		if (!err && st.live)
			virtio_go_live(vd);
	}
	pthread_mutex_unlock(&vd->lock);
	free(st.queues);
	return err;
}

/* ---- life cycle ---- */

static int wire_irq(struct virtio_dev *vd, char *why, size_t len)
{
	int err;

	vd->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vd->irq_fd < 0)
		return set_why(why, len, "eventfd: %s", strerror(errno));
	err = vm_add_irqfd(vd->vm, vd->gsi, vd->irq_fd);
	if (!err) {
		vd->irqfd = true;
		return 0;
	}
	close(vd->irq_fd);
	vd->irq_fd = -1;
	if (err == -ENOTSUP)
		return 0; /* vm_irq_line from mmio_interrupt instead */
	return set_why(why, len, "cannot wire GSI %u: %s", vd->gsi, strerror(-err));
}

/* An ioeventfd per queue on QueueNotify, told apart by the value written. */
static int wire_notify(struct virtio_dev *vd, char *why, size_t len)
{
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		int fd = vd->queues[i].notify_fd, err;

		if (fd < 0)
			return set_why(why, len, "eventfd: %s", strerror(errno));
		err = vm_add_ioeventfd(vd->vm, vd->dev.base + REG_QUEUE_NOTIFY, 4,
				       DEVICE_MMIO, fd, 1, i);
		if (err && err != -ENOTSUP)
			return set_why(why, len, "ioeventfd: %s", strerror(-err));
	}
	return 0;
}

struct virtio_dev *virtio_mmio_create(struct vm *vm, uint64_t base,
				      uint32_t gsi,
				      const struct virtio_dev_ops *ops,
				      void *priv, char *why, size_t why_len)
{
	const struct device tmpl = {
		.name = ops ? ops->name : NULL, .base = base, .size = MMIO_WINDOW,
		.read = mmio_read, .write = mmio_write,
		.destroy = virtio_dev_destroy, .space = DEVICE_MMIO,
		.metrics = ops && ops->metrics ? virtio_dev_metrics : NULL,
		.save = mmio_save, .load = mmio_load,
		.quiesce = virtio_dev_quiesce, .unquiesce = virtio_dev_unquiesce,
	};
	struct virtio_dev *vd;

	if (!vm || !virtio_ops_valid(ops) || ops->config_len > MMIO_WINDOW - REG_CONFIG) {
		set_why(why, why_len, "invalid virtio device description");
		return NULL;
	}
	vd = virtio_transport_alloc(vm, ops, priv, &mmio_transport, &tmpl);
	if (!vd) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	vd->gsi = gsi;
	snprintf(vd->where, sizeof(vd->where), "0x%llx (GSI %u)", (unsigned long long)base, gsi);
	if (wire_irq(vd, why, why_len) || wire_notify(vd, why, why_len) ||
	    virtio_transport_watch_queues(vd, why, why_len)) {
		virtio_transport_free(vd);
		return NULL;
	}
	return vd;
}
