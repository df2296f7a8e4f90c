/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2 section 5.3), a single port without MULTIPORT:
 * Linux makes it hvc0. Queue 0 (receiveq) carries host input to the guest,
 * queue 1 (transmitq) guest output to out_fd. Everything runs on the VM's
 * I/O thread (input readiness and queue notifications), so the input
 * buffer and the pause/resume of the input fd need no lock of their own.
 *
 * Snapshots (the I/O thread is quiet: the VM is paused or not started):
 * the device's own part of the payload (after the transport's, see
 * mmio.c) is u8 guest_spoke (0/1), u16 bytes of input waiting for the
 * guest (<= 4096), then those bytes.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "devices/virtio/virtio.h"
#include "utils.h"
#include "vm.h"

#define CONSOLE_QUEUE_MAX 64
#define CONSOLE_RXQ 0
#define CONSOLE_TXQ 1
#define CONSOLE_CFG_LEN 12 /* cols, rows, max_nr_ports, emerg_wr: all 0 */
#define CONSOLE_TX_BATCH 256

struct virtio_console {
	struct virtio_dev *vd;
	int in_fd;
	struct vm_output *out;
	int (*filter)(void *opaque, uint8_t *buf, int len);
	void *filter_opaque;
	bool input_attached;
	/* Input read but not yet taken by the guest. I/O thread only. */
	uint8_t pending[4096];
	size_t pending_len;
	bool input_paused;
	/*
	 * Linux drops input that arrives between filling the receive queue
	 * and setting up the console port (virtio_console.c, in_intr with
	 * !guest_connected). Its first output tells us the port is set up:
	 * until then input waits here. Cleared by a reset (vCPU thread).
	 */
	atomic_bool guest_spoke;
	struct iovec rx_iov[CONSOLE_QUEUE_MAX];
	struct iovec tx_iov[CONSOLE_QUEUE_MAX];
};

/* A chain's readable part goes to the output stream, which never blocks
 * (what the reader does not take in time is dropped, as on the UART). */
static void write_out(struct virtio_console *c, const struct virtq_elem *e)
{
	for (unsigned i = 0; i < e->nr_out; i++)
		vm_output_write(c->out, e->iov[i].iov_base, e->iov[i].iov_len);
}

static void transmit(struct virtio_console *c)
{
	struct virtio_queue *q = virtio_queue_get(c->vd, CONSOLE_TXQ);
	struct virtq_elem e = { .iov = c->tx_iov, .max_iov = CONSOLE_QUEUE_MAX };
	int n = 0;

	if (!q)
		return;
	while (virtio_queue_pop(q, &e)) {
		atomic_store(&c->guest_spoke, true);
		write_out(c, &e);
		virtq_push(&q->vq, e.head, 0);
		if (++n == CONSOLE_TX_BATCH) {
			virtio_queue_kick(q); /* the rest later: let input in */
			break;
		}
	}
	virtio_queue_interrupt(q);
	virtio_queue_put(q);
}

/* Hand buffered input to the guest, as far as it has buffers for it. */
static void deliver_input(struct virtio_console *c)
{
	struct virtio_queue *q;
	struct virtq_elem e = { .iov = c->rx_iov, .max_iov = CONSOLE_QUEUE_MAX };

	if (!c->pending_len || !atomic_load(&c->guest_spoke) ||
	    !(q = virtio_queue_get(c->vd, CONSOLE_RXQ)))
		return;
	while (c->pending_len && virtio_queue_pop(q, &e)) {
		size_t n = iov_from_buf(e.iov + e.nr_out, e.nr_in, 0, c->pending,
					c->pending_len);

		virtq_push(&q->vq, e.head, (uint32_t)n);
		c->pending_len -= n;
		memmove(c->pending, c->pending + n, c->pending_len);
	}
	virtio_queue_interrupt(q);
	virtio_queue_put(q);
}

/*
 * I/O thread: host input is readable. It is read (and filtered, so Ctrl-A x
 * works before the guest driver is up) into a small buffer, then handed to
 * the guest; only a full buffer pauses reading.
 */
static int console_input_ready(void *opaque)
{
	struct virtio_console *c = opaque;
	size_t room = sizeof(c->pending) - c->pending_len;
	ssize_t n = room ? read(c->in_fd, c->pending + c->pending_len, room) : 0;
	int ret = VM_WATCH_KEEP;

	if (room && n == 0)
		ret = VM_WATCH_DROP; /* EOF: no more input, the guest runs on */
	else if (n < 0 && errno != EINTR && errno != EAGAIN)
		ret = VM_WATCH_DROP;
	if (n > 0) {
		int len = c->filter ? c->filter(c->filter_opaque,
						c->pending + c->pending_len, (int)n)
				    : (int)n;

		c->pending_len += (size_t)MAX(len, 0);
	}
	deliver_input(c);
	if (ret == VM_WATCH_KEEP && c->pending_len == sizeof(c->pending)) {
		c->input_paused = true; /* resumed when the guest takes some */
		ret = VM_WATCH_PAUSE;
	}
	return ret;
}

static void console_notify(struct virtio_dev *vd, unsigned qi)
{
	struct virtio_console *c = vd->priv;

	if (qi == CONSOLE_TXQ)
		transmit(c); /* may be the guest's first word: then input too */
	deliver_input(c);
	if (c->input_paused && c->pending_len < sizeof(c->pending)) {
		c->input_paused = false;
		vm_resume_fd(vd->vm, c->in_fd);
	}
}

static void console_reset(struct virtio_dev *vd)
{
	struct virtio_console *c = vd->priv;

	atomic_store(&c->guest_spoke, false);
}

static int console_save(struct virtio_dev *vd, struct snap_buf *out)
{
	struct virtio_console *c = vd->priv;

	snap_put_u8(out, atomic_load(&c->guest_spoke));
	snap_put_u16(out, (uint16_t)c->pending_len);
	snap_put_bytes(out, c->pending, c->pending_len);
	return 0;
}

static int console_load(struct virtio_dev *vd, struct snap_cursor *in, uint64_t drv_features,
			bool apply)
{
	struct virtio_console *c = vd->priv;
	uint8_t spoke = snap_get_u8(in), bytes[sizeof(c->pending)];
	uint16_t len = snap_get_u16(in);

	if (in->bad || spoke > 1 || len > sizeof(c->pending))
		return -EINVAL;
	snap_get_bytes(in, bytes, len);
	if (in->bad)
		return -EINVAL;
	if (!apply)
		return 0;
	memcpy(c->pending, bytes, len);
	c->pending_len = len;
	atomic_store(&c->guest_spoke, spoke);
	return 0;
}

static void console_destroy(struct virtio_dev *vd)
{
	free(vd->priv);
}

static const struct virtio_dev_ops console_ops = {
	.name = "virtio-console", .device_id = VIRTIO_ID_CONSOLE,
	.features = VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
		    VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX),
	.num_queues = 2, .queue_max = CONSOLE_QUEUE_MAX,
	.config_len = CONSOLE_CFG_LEN,
	.queue_notify = console_notify, .reset = console_reset,
	.destroy = console_destroy, .save = console_save, .load = console_load,
};

struct device *virtio_console_create_in(struct vm *vm, const struct virtio_slot *slot,
					int in_fd, int out_fd)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	char why[128];

	if (!c)
		return NULL;
	c->in_fd = in_fd;
	if (out_fd >= 0 && !(c->out = vm_output_open(vm, out_fd))) {
		vm_err(vm, "virtio-console: output to fd %d: %s", out_fd, strerror(errno));
		free(c);
		return NULL;
	}
	c->vd = virtio_transport_create(vm, slot, &console_ops, c, why, sizeof(why));
	if (!c->vd) {
		vm_err(vm, "virtio-console: %s", why);
		free(c);
		return NULL;
	}
	return &c->vd->dev;
}

struct device *virtio_console_create(struct vm *vm, uint64_t base,
				     uint32_t gsi, int in_fd, int out_fd)
{
	const struct virtio_slot slot = { .base = base, .gsi = gsi };

	return virtio_console_create_in(vm, &slot, in_fd, out_fd);
}

int virtio_console_attach_input(struct device *dev,
				int (*filter)(void *opaque, uint8_t *buf, int len),
				void *opaque)
{
	struct virtio_dev *vd = dev ? dev->private : NULL;
	struct virtio_console *c = vd ? vd->priv : NULL;
	int err;

	if (!c || c->in_fd < 0 || c->input_attached)
		return -EINVAL;
	c->filter = filter;
	c->filter_opaque = opaque;
	err = vm_watch_fd(vd->vm, c->in_fd, console_input_ready, c);
	c->input_attached = err == 0;
	return err;
}
