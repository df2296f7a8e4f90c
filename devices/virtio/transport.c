/* SPDX-License-Identifier: MIT */
/*
 * What virtio-mmio and virtio-pci share (see transport.h): the calls for
 * device models (virtio.h), the status machine, feature negotiation, queue
 * set-up and reset, the device configuration space, and the queue
 * eventfds. Register layouts and interrupt delivery are the transports'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio/transport.h"
#include "utils.h"
#include "vm.h"

uint64_t virtio_offered(const struct virtio_dev *vd)
{
	return vd->ops->features | VIRTIO_F_BIT(VIRTIO_F_VERSION_1);
}

void virtio_eventfd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: already signalled. */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

/* ---- for device models ---- */

bool virtio_live(struct virtio_dev *vd)
{
	return atomic_load(&vd->live);
}

struct virtio_queue *virtio_queue_get(struct virtio_dev *vd, unsigned idx)
{
	struct virtio_queue *q;

	if (idx >= vd->ops->num_queues)
		return NULL;
	q = &vd->queues[idx];
	pthread_mutex_lock(&q->lock);
	if (q->ready && atomic_load(&vd->live)) {
		virtq_disable_notify(&q->vq);
		return q;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

struct virtio_queue *virtio_queue_hold(struct virtio_dev *vd, unsigned idx)
{
	struct virtio_queue *q;

	if (idx >= vd->ops->num_queues)
		return NULL;
	q = &vd->queues[idx];
	pthread_mutex_lock(&q->lock);
	if (q->ready && atomic_load(&vd->live))
		return q;
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

void virtio_queue_put(struct virtio_queue *q)
{
	pthread_mutex_unlock(&q->lock);
}

int virtio_queue_pop(struct virtio_queue *q, struct virtq_elem *e)
{
	for (;;) {
		int r;

		if (!atomic_load(&q->vd->live))
			return 0; /* reset or failed meanwhile: stop */
		r = virtq_pop(&q->vq, e);
		if (r > 0)
			return 1;
		if (r < 0) {
			virtio_set_needs_reset(q->vd, "bad descriptor chain", r);
			return 0;
		}
		if (!virtq_enable_notify(&q->vq))
			return 0;
		virtq_disable_notify(&q->vq); /* more came: keep going */
	}
}

int virtio_queue_fd(struct virtio_dev *vd, unsigned idx)
{
	return idx < vd->ops->num_queues ? vd->queues[idx].notify_fd : -1;
}

int virtio_queue_call_fd(struct virtio_dev *vd, unsigned q)
{
	return q < vd->ops->num_queues && vd->transport->call_fd ? vd->transport->call_fd(vd, q) :
								   -1;
}

void virtio_queue_kick(struct virtio_queue *q)
{
	virtio_eventfd_signal(q->notify_fd);
}

void virtio_raise_irq(struct virtio_dev *vd, unsigned bits)
{
	atomic_fetch_or(&vd->isr, bits);
	vd->transport->interrupt(vd, VIRTIO_IRQ_CONFIG);
}

void virtio_queue_interrupt(struct virtio_queue *q)
{
	if (!virtq_need_interrupt(&q->vq))
		return;
	atomic_fetch_or(&q->vd->isr, VIRTIO_INT_USED);
	q->vd->transport->interrupt(q->vd, (int)q->index);
}

void virtio_set_needs_reset(struct virtio_dev *vd, const char *why, int err)
{
	/* Lock-free: called with a queue lock held, and the register path
	 * takes the transport lock before queue locks. virtio_status_write()
	 * re-checks needs_reset after going live, so one side always wins. */
	if (atomic_exchange(&vd->needs_reset, true))
		return;
	atomic_store(&vd->live, false);
	/* the driver told first: the log line can wait (a slow stderr) */
	virtio_raise_irq(vd, VIRTIO_INT_CONFIG);
	vm_warn(vd->vm, "%s at %s: %s (%s): device needs reset", vd->ops->name,
		vd->where, why, strerror(err < 0 ? -err : err));
}

void virtio_config_changed(struct virtio_dev *vd,
			   void (*update)(struct virtio_dev *vd, void *arg), void *arg)
{
	pthread_mutex_lock(&vd->lock);
	update(vd, arg);
	vd->config_generation++;
	pthread_mutex_unlock(&vd->lock);
	/* A driver not up yet reads the configuration when it is. */
	if (atomic_load(&vd->live))
		virtio_raise_irq(vd, VIRTIO_INT_CONFIG);
}

/* ---- register semantics ---- */

uint32_t virtio_int_status(struct virtio_dev *vd)
{
	uint32_t v = atomic_load(&vd->isr);

	if (vd->ops->external_used_irq && atomic_load(&vd->live))
		v |= VIRTIO_INT_USED;
	return v;
}

uint32_t virtio_device_features_word(const struct virtio_dev *vd, uint32_t sel)
{
	uint64_t f = virtio_offered(vd);

	return sel == 0 ? (uint32_t)f : sel == 1 ? (uint32_t)(f >> 32) : 0;
}

static void set_half(uint64_t *reg, bool high, uint32_t v)
{
	if (high)
		*reg = (*reg & 0xffffffffULL) | ((uint64_t)v << 32);
	else
		*reg = (*reg & ~0xffffffffULL) | v;
}

void virtio_driver_features_write(struct virtio_dev *vd, uint32_t sel, uint32_t v)
{
	/* Settled once FEATURES_OK is set; only words 0 and 1 exist. */
	if (!(vd->status & VIRTIO_STATUS_FEATURES_OK) && sel < 2)
		set_half(&vd->drv_features, sel == 1, v);
}

struct virtio_queue *virtio_selected_queue(struct virtio_dev *vd)
{
	return vd->queue_sel < vd->ops->num_queues ? &vd->queues[vd->queue_sel] : NULL;
}

static void queue_stop(struct virtio_queue *q)
{
	pthread_mutex_lock(&q->lock); /* waits for a request in flight */
	q->ready = false;
	memset(&q->vq, 0, sizeof(q->vq));
	pthread_mutex_unlock(&q->lock);
}

/* Status 0: stop everything and forget the queues (2.4). */
void virtio_device_reset(struct virtio_dev *vd)
{
	atomic_store(&vd->live, false);
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		struct virtio_queue *q = &vd->queues[i];

		queue_stop(q);
		q->num = vd->ops->queue_max;
		q->desc = q->driver = q->device = 0;
	}
	if (vd->ops->reset)
		vd->ops->reset(vd);
	vd->status = 0;
	vd->dev_features_sel = vd->drv_features_sel = 0;
	vd->drv_features = 0;
	vd->queue_sel = 0;
	atomic_store(&vd->isr, 0);
	atomic_store(&vd->needs_reset, false);
}

static bool features_acceptable(const struct virtio_dev *vd)
{
	return (vd->drv_features & VIRTIO_F_BIT(VIRTIO_F_VERSION_1)) &&
	       !(vd->drv_features & ~virtio_offered(vd));
}

void virtio_go_live(struct virtio_dev *vd)
{
	atomic_store(&vd->live, true);
	if (atomic_load(&vd->needs_reset)) {
		atomic_store(&vd->live, false);
		return;
	}
	if (vd->ops->activate)
		vd->ops->activate(vd);
	/* Buffers made available before DRIVER_OK were not processed (the
	 * device must not, 2.2.1): look at every queue now. */
	for (unsigned i = 0; i < vd->ops->num_queues; i++)
		virtio_eventfd_signal(vd->queues[i].notify_fd);
}

void virtio_status_write(struct virtio_dev *vd, uint32_t v)
{
	uint32_t added;
	bool live;

	if (v == 0) {
		virtio_device_reset(vd);
		return;
	}
	v &= 0xff & ~VIRTIO_STATUS_NEEDS_RESET; /* the device's bit */
	added = v & ~vd->status;
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(vd)) {
		vm_info(vd->vm, "%s: driver features 0x%llx refused (offered 0x%llx)",
			vd->ops->name, (unsigned long long)vd->drv_features,
			(unsigned long long)virtio_offered(vd));
		v &= ~VIRTIO_STATUS_FEATURES_OK;
	}
	if (!(v & VIRTIO_STATUS_FEATURES_OK))
		v &= ~VIRTIO_STATUS_DRIVER_OK;
	vd->status = v;
	live = (v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FAILED);
	if (live && !atomic_load(&vd->live) && (added & VIRTIO_STATUS_DRIVER_OK))
		virtio_go_live(vd);
	else if (!live)
		atomic_store(&vd->live, false);
}

uint32_t virtio_status_read(struct virtio_dev *vd)
{
	return vd->status | (atomic_load(&vd->needs_reset) ? VIRTIO_STATUS_NEEDS_RESET : 0);
}

void virtio_queue_set_ready(struct virtio_dev *vd, struct virtio_queue *q, uint32_t v)
{
	struct virtq vq;
	int err;

	if (!v) {
		queue_stop(q);
		return;
	}
	if (q->ready)
		return;
	/* Rings are only meaningful once features are settled (3.1.1). */
	if (!(vd->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	err = virtq_init(&vq, vd->vm, q->num, q->desc, q->driver, q->device,
			 vd->drv_features);
	if (err) {
		virtio_set_needs_reset(vd, "queue rings outside guest RAM or misaligned", err);
		return;
	}
	pthread_mutex_lock(&q->lock);
	q->vq = vq;
	q->ready = true;
	pthread_mutex_unlock(&q->lock);
}

void virtio_queue_size_write(struct virtio_dev *vd, struct virtio_queue *q, uint32_t v)
{
	/* 0 makes enabling fail: virtq_init checks the rest. */
	if (!q->ready)
		q->num = v <= vd->ops->queue_max ? (uint16_t)v : 0;
}

void virtio_queue_addr_write(struct virtio_queue *q, uint64_t *reg, bool high, uint32_t v)
{
	if (!q->ready)
		set_half(reg, high, v);
}

static bool config_access_ok(const struct virtio_dev *vd, uint64_t off, size_t size)
{
	return (size == 1 || size == 2 || size == 4 || size == 8) &&
	       off < vd->ops->config_len && size <= vd->ops->config_len - off;
}

void virtio_config_read(struct virtio_dev *vd, uint64_t off, void *data, size_t size)
{
	memset(data, 0, size);
	if (!config_access_ok(vd, off, size) || !vd->ops->config_read)
		return;
	pthread_mutex_lock(&vd->lock);
	vd->ops->config_read(vd, (uint32_t)off, data, (uint32_t)size);
	pthread_mutex_unlock(&vd->lock);
}

void virtio_config_write(struct virtio_dev *vd, uint64_t off, const void *data, size_t size)
{
	if (!config_access_ok(vd, off, size) || !vd->ops->config_write)
		return;
	pthread_mutex_lock(&vd->lock);
	vd->ops->config_write(vd, (uint32_t)off, data, (uint32_t)size);
	pthread_mutex_unlock(&vd->lock);
}

/* ---- life cycle ---- */

/* I/O thread: the driver notified a queue. */
static int queue_fd_ready(void *opaque)
{
	struct virtio_queue *q = opaque;
	struct virtio_dev *vd = q->vd;
	uint64_t count;

	if (read(q->notify_fd, &count, sizeof(count)) < 0)
		return VM_WATCH_KEEP; /* EAGAIN: someone else took it */
	if (atomic_load(&vd->live))
		vd->ops->queue_notify(vd, q->index);
	return VM_WATCH_KEEP;
}

void virtio_transport_free(struct virtio_dev *vd)
{
	if (!vd)
		return;
	if (vd->transport && vd->transport->free)
		vd->transport->free(vd);
	for (unsigned i = 0; vd->queues && i < vd->nr_queues; i++) {
		if (vd->queues[i].notify_fd >= 0) {
			/* -ENOENT when never watched (own_notify) */
			vm_unwatch_fd(vd->vm, vd->queues[i].notify_fd);
			close(vd->queues[i].notify_fd);
		}
		pthread_mutex_destroy(&vd->queues[i].lock);
	}
	if (vd->irq_fd >= 0)
		close(vd->irq_fd);
	pthread_mutex_destroy(&vd->lock);
	free(vd->queues);
	free(vd);
}

void virtio_dev_metrics(struct device *dev, struct device_metrics *m)
{
	struct virtio_dev *vd = dev->private;

	vd->ops->metrics(vd, m);
}

void virtio_dev_destroy(struct device *dev)
{
	struct virtio_dev *vd = dev->private;

	/* The device model first: its threads may still use the queues. */
	if (vd->ops->destroy)
		vd->ops->destroy(vd);
	virtio_transport_free(vd);
}

int virtio_dev_quiesce(struct device *dev)
{
	struct virtio_dev *vd = dev->private;

	return vd->ops->quiesce ? vd->ops->quiesce(vd) : 0;
}

void virtio_dev_unquiesce(struct device *dev)
{
	struct virtio_dev *vd = dev->private;

	if (vd->ops->unquiesce)
		vd->ops->unquiesce(vd);
}

bool virtio_ops_valid(const struct virtio_dev_ops *ops)
{
	return ops && ops->num_queues && ops->queue_max && ops->queue_max <= VIRTQ_MAX_SIZE &&
	       ops->queue_notify;
}

struct virtio_dev *virtio_transport_alloc(struct vm *vm, const struct virtio_dev_ops *ops,
					  void *priv, const struct virtio_transport *t,
					  const struct device *tmpl)
{
	struct virtio_dev *vd = calloc(1, sizeof(*vd));

	if (!vd)
		return NULL;
	vd->queues = calloc(ops->num_queues, sizeof(*vd->queues));
	if (!vd->queues) {
		free(vd);
		return NULL;
	}
	pthread_mutex_init(&vd->lock, NULL);
	vd->vm = vm;
	vd->ops = ops;
	vd->priv = priv;
	vd->transport = t;
	vd->irq_fd = -1;
	vd->nr_queues = ops->num_queues;
	for (unsigned i = 0; i < ops->num_queues; i++) {
		struct virtio_queue *q = &vd->queues[i];

		pthread_mutex_init(&q->lock, NULL);
		q->vd = vd;
		q->index = i;
		q->num = ops->queue_max;
		q->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	}
	vd->dev = *tmpl;
	vd->dev.private = vd;
	return vd;
}

int virtio_transport_watch_queues(struct virtio_dev *vd, char *why, size_t len)
{
	const struct virtio_dev_ops *ops = vd->ops;

	for (unsigned i = 0; i < ops->num_queues; i++)
		if (vd->queues[i].notify_fd < 0)
			return set_why(why, len, "eventfd: %s", strerror(errno));
	for (unsigned i = 0; !ops->own_notify && i < ops->num_queues; i++) {
		int err;

		if (i < 64 && (ops->own_notify_mask & (1ULL << i)))
			continue;
		err = vm_watch_fd(vd->vm, vd->queues[i].notify_fd, queue_fd_ready, &vd->queues[i]);
		if (err)
			return set_why(why, len, "cannot watch queue %u: %s", i, strerror(-err));
	}
	return 0;
}

struct virtio_dev *virtio_transport_create(struct vm *vm, const struct virtio_slot *slot,
					   const struct virtio_dev_ops *ops, void *priv,
					   char *why, size_t why_len)
{
	if (!slot) {
		set_why(why, why_len, "no virtio slot");
		return NULL;
	}
	if (slot->pci)
		return virtio_pci_create(vm, slot->pci, ops, priv, why, why_len);
	return virtio_mmio_create(vm, slot->base, slot->gsi, ops, priv, why, why_len);
}
