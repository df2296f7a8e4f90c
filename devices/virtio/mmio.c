/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio version 2 transport (virtio 1.2 section 4.2.2): the register
 * block over what all transports share (transport.c: status, features,
 * queue set-up, reset), and the two fast paths: QueueNotify through an
 * ioeventfd per queue (datamatch = queue index), interrupts through an
 * irqfd on the device's one GSI. Where the backend has neither, the MMIO
 * write handler signals the same eventfd and interrupts pulse the GSI.
 *
 * Snapshots: transport_snap.c (magic "VMIO", nothing of its own).
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

/* vhost signals the irqfd itself: every queue's interrupt is the GSI's. */
static int mmio_call_fd(struct virtio_dev *vd, unsigned q)
{
	return vd->irqfd ? vd->irq_fd : -1;
}

static const struct virtio_transport mmio_transport = {
	.name = "virtio-mmio", .interrupt = mmio_interrupt, .call_fd = mmio_call_fd,
	.snap_magic = 0x4f494d56u, /* "VMIO" */
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
		.save = virtio_dev_save, .load = virtio_dev_load,
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
