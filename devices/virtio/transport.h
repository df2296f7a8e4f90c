/* SPDX-License-Identifier: MIT */
/*
 * What the virtio transports (mmio.c, pci.c) share, in transport.c: the
 * device status and its reset, feature negotiation, queue set-up, going
 * live, device configuration access, and the queue eventfds with their
 * I/O-thread watches. A transport decodes its own register layout into
 * these calls (with vd->lock held, as noted) and says how an interrupt
 * reaches the guest (struct virtio_transport). Not installed.
 */
#ifndef VIBEVMM_DEVICES_VIRTIO_TRANSPORT_H
#define VIBEVMM_DEVICES_VIRTIO_TRANSPORT_H

#include "devices/virtio/virtio.h"

/* The interrupt source virtio_raise_irq uses: the configuration. */
#define VIRTIO_IRQ_CONFIG (-1)

struct virtio_transport {
	const char *name; /* "virtio-mmio", "virtio-pci" (logs) */
	/* Tell the driver: `source` is a queue index or VIRTIO_IRQ_CONFIG;
	 * vd->isr already has the bit. Any thread, no lock held. */
	void (*interrupt)(struct virtio_dev *vd, int source);
	/* Free the transport's own part (vd->tpriv); vd is freed after. */
	void (*free)(struct virtio_dev *vd);
	/* virtio_queue_call_fd's answer (optional: none). */
	int (*call_fd)(struct virtio_dev *vd, unsigned q);
	/* Snapshots (transport_snap.c): the payload's magic, and the
	 * transport's own state after the queues (optional, all three or
	 * none): save it; parse and check it into vd->tpriv's keeping
	 * (-EINVAL, -ENOMEM), to be put in place by apply (vd->lock held,
	 * after the common state, before the device's part and going live)
	 * or dropped by discard. */
	uint32_t snap_magic;
	void (*save)(struct virtio_dev *vd, struct snap_buf *out);
	int (*parse)(struct virtio_dev *vd, struct snap_cursor *in);
	void (*apply)(struct virtio_dev *vd);
	void (*discard)(struct virtio_dev *vd);
};

/* Features the device offers: the model's and VERSION_1. */
uint64_t virtio_offered(const struct virtio_dev *vd);

/* Signal an eventfd (a full counter means it is signalled already). */
void virtio_eventfd_signal(int fd);

/* The interrupt status bits (ISR / InterruptStatus); no lock needed. */
uint32_t virtio_int_status(struct virtio_dev *vd);

/* ---- register semantics, vd->lock held ---- */

/* Word `sel` of the offered features (0 past word 1). */
uint32_t virtio_device_features_word(const struct virtio_dev *vd, uint32_t sel);
/* Word `sel` of the driver's features; ignored once FEATURES_OK is set. */
void virtio_driver_features_write(struct virtio_dev *vd, uint32_t sel, uint32_t v);
/* device_status: 0 resets; FEATURES_OK only for acceptable features;
 * DRIVER_OK makes the device live. */
void virtio_status_write(struct virtio_dev *vd, uint32_t v);
uint32_t virtio_status_read(struct virtio_dev *vd);
/* The queue queue_sel selects, or NULL. */
struct virtio_queue *virtio_selected_queue(struct virtio_dev *vd);
/* Queue size, as the driver staged it: ignored while the queue is ready;
 * above the maximum it becomes 0, which makes enabling fail. */
void virtio_queue_size_write(struct virtio_dev *vd, struct virtio_queue *q, uint32_t v);
/* One half (high or low 32 bits) of a ring address, while not ready. */
void virtio_queue_addr_write(struct virtio_queue *q, uint64_t *reg, bool high, uint32_t v);
/* queue_enable / QueueReady: v != 0 makes the rings live (after
 * FEATURES_OK), 0 stops the queue. */
void virtio_queue_set_ready(struct virtio_dev *vd, struct virtio_queue *q, uint32_t v);
/* Device reset: every queue stopped and forgotten, registers cleared. */
void virtio_device_reset(struct virtio_dev *vd);
/* Live as at DRIVER_OK: activate the model, look at every queue. */
void virtio_go_live(struct virtio_dev *vd);

/* Device configuration space at `off` (size 1, 2, 4 or 8, inside
 * config_len: else reads 0 and writes are dropped). Takes vd->lock. */
void virtio_config_read(struct virtio_dev *vd, uint64_t off, void *data, size_t size);
void virtio_config_write(struct virtio_dev *vd, uint64_t off, const void *data, size_t size);

/* ---- life cycle ---- */

/*
 * The common part of a transport: vd with its queues and their eventfds,
 * vd->dev as `tmpl` (the transport's struct device; its private is set to
 * vd). NULL when out of memory.
 */
struct virtio_dev *virtio_transport_alloc(struct vm *vm, const struct virtio_dev_ops *ops,
					  void *priv, const struct virtio_transport *t,
					  const struct device *tmpl);
/* The I/O thread's watches on the queue eventfds (not for own_notify
 * queues). 0, or -1 with a reason in why. */
int virtio_transport_watch_queues(struct virtio_dev *vd, char *why, size_t len);
/* Whether a device description can be served: queues, sizes, notify. */
bool virtio_ops_valid(const struct virtio_dev_ops *ops);

/* struct device hooks every transport uses the same way. */
void virtio_dev_destroy(struct device *dev);
void virtio_dev_metrics(struct device *dev, struct device_metrics *m);
int virtio_dev_quiesce(struct device *dev);
/* Snapshots (transport_snap.c): the payload above, and its parse-check-apply. */
int virtio_dev_save(struct device *dev, struct snap_buf *out);
int virtio_dev_load(struct device *dev, struct snap_cursor *in);
void virtio_dev_unquiesce(struct device *dev);

#endif
