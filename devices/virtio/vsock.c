/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (device id 19) over virtio-mmio: queues 0 (rx), 1 (tx) and 2
 * (event: used once after a snapshot is restored, see below), config space
 * the guest's CID (le64). The connections and the host side are
 * vsock_conn.c's; this file runs them on the VM's I/O thread, whenever the
 * driver notifies a queue or a host socket needs attention (one watch on
 * vsock_conn's epoll fd), under one lock that a device reset (vCPU thread)
 * takes too.
 *
 * Snapshots: the device's own part of the payload (after the transport's,
 * see mmio.c) is u64 the guest's CID, which must be this device's. The
 * connections cannot be kept: their host sockets belong to the process
 * that saved them. So a restored device tells the driver with a
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET event (5.10.6.6) in its first event
 * buffer (go_live's look at every queue, or the driver's next notify when
 * it has none posted): Linux then drops every connection (ECONNRESET),
 * re-reads the CID, and listening sockets stay.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "devices/virtio/vsock.h"
#include "utils.h"
#include "vm.h"

#define VSOCK_QUEUE_MAX 256
#define Q_RX 0
#define Q_TX 1
#define Q_EVENT 2
#define EVENT_TRANSPORT_RESET 0 /* struct virtio_vsock_event: le32 id */
#define EVENT_LEN 4
#define EVENT_IOV 4
/* TX waiting for room in RX and RX making room: a few rounds per wake-up. */
#define ROUNDS 4

struct virtio_vsock {
	struct virtio_dev *vd;
	struct vsock *core;
	pthread_mutex_t lock;
	uint8_t config[8];
	bool reset_event;  /* restored: the driver must drop its connections */
	struct iovec event_iov[EVENT_IOV];
};

/* Move packets both ways; a broken ring resets the device. */
static void run_queues(struct virtio_vsock *s, struct virtio_queue *rx,
		       struct virtio_queue *tx)
{
	int t = 0, r = 0;

	for (int i = 0; i < ROUNDS; i++) {
		t = vsock_tx(s->core, &tx->vq);
		r = t < 0 ? 0 : vsock_rx(s->core, &rx->vq);
		if (t < 0 || r < 0) {
			virtio_set_needs_reset(s->vd, t < 0 ? "bad transmit chain" :
					       "bad receive buffer", t < 0 ? t : r);
			return;
		}
		if (t != 2 || r == 0)
			break;
	}
	if (t == 1)
		virtio_queue_kick(tx); /* more later: let other devices run */
}

static void vsock_run(struct virtio_vsock *s)
{
	struct virtio_queue *rx, *tx;

	pthread_mutex_lock(&s->lock);
	vsock_host_events(s->core);
	rx = virtio_queue_get(s->vd, Q_RX);
	tx = rx ? virtio_queue_get(s->vd, Q_TX) : NULL;
	if (tx) {
		run_queues(s, rx, tx);
		virtio_queue_interrupt(tx);
		virtio_queue_put(tx);
	}
	if (rx) {
		virtio_queue_interrupt(rx);
		virtio_queue_put(rx);
	}
	pthread_mutex_unlock(&s->lock);
}

/* After a restore: the transport reset event into the driver's next event
 * buffer (none posted yet: its notify when it posts one brings us back). */
static void send_reset_event(struct virtio_vsock *s)
{
	static const uint8_t reset[EVENT_LEN] = { EVENT_TRANSPORT_RESET };
	struct virtq_elem e = { .iov = s->event_iov, .max_iov = EVENT_IOV };
	struct virtio_queue *q;

	pthread_mutex_lock(&s->lock);
	if (s->reset_event && (q = virtio_queue_get(s->vd, Q_EVENT))) {
		if (virtio_queue_pop(q, &e)) {
			size_t n = iov_from_buf(e.iov + e.nr_out, e.nr_in, 0, reset, sizeof(reset));

			virtq_push(&q->vq, e.head, (uint32_t)n);
			s->reset_event = false;
		}
		virtio_queue_interrupt(q);
		virtio_queue_put(q);
	}
	pthread_mutex_unlock(&s->lock);
}

static void vsock_notify(struct virtio_dev *vd, unsigned q)
{
	if (q == Q_RX || q == Q_TX)
		vsock_run(vd->priv);
	else if (q == Q_EVENT)
		send_reset_event(vd->priv);
}

/* I/O thread: a host socket, the listener or the handshake timer. */
static int host_ready(void *opaque)
{
	vsock_run(opaque);
	return VM_WATCH_KEEP;
}

static void vsock_reset_dev(struct virtio_dev *vd)
{
	struct virtio_vsock *s = vd->priv;

	pthread_mutex_lock(&s->lock);
	vsock_reset(s->core);
	s->reset_event = false; /* a new driver has no connections to drop */
	pthread_mutex_unlock(&s->lock);
}

static int vsock_save(struct virtio_dev *vd, struct snap_buf *out)
{
	struct virtio_vsock *s = vd->priv;

	snap_put_u64(out, vsock_cid(s->core));
	return 0;
}

static int vsock_load(struct virtio_dev *vd, struct snap_cursor *in, uint64_t drv_features,
		      bool apply)
{
	struct virtio_vsock *s = vd->priv;
	uint64_t cid = snap_get_u64(in);

	if (in->bad || cid != vsock_cid(s->core))
		return -EINVAL;
	if (apply) {
		pthread_mutex_lock(&s->lock);
		s->reset_event = true;
		pthread_mutex_unlock(&s->lock);
	}
	return 0;
}

static void vsock_config_read(struct virtio_dev *vd, uint32_t off, void *data,
			      uint32_t size)
{
	struct virtio_vsock *s = vd->priv;

	memcpy(data, s->config + off, size); /* bounds checked by mmio.c */
}

static void vsock_dev_free(struct virtio_vsock *s)
{
	vsock_free(s->core);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void vsock_destroy(struct virtio_dev *vd)
{
	struct virtio_vsock *s = vd->priv;
	struct vsock_stats st;

	vsock_get_stats(s->core, &st);
	vm_info(vd->vm, "virtio-vsock: %llu connections (%llu refused), %llu packets / %llu bytes from the guest, %llu / %llu to it, %llu bad packets, %llu RST",
		(unsigned long long)st.conns_opened, (unsigned long long)st.conns_refused,
		(unsigned long long)st.tx_packets, (unsigned long long)st.tx_bytes,
		(unsigned long long)st.rx_packets, (unsigned long long)st.rx_bytes,
		(unsigned long long)st.bad_packets, (unsigned long long)st.rst_sent);
	vsock_dev_free(s);
}

static void put_metric(struct device_metrics *m, const char *name, uint64_t value)
{
	if (m->nr < DEVICE_METRICS_MAX) {
		m->counter[m->nr].name = name;
		m->counter[m->nr].value = value;
		m->nr++;
	}
}

/* Firecracker's names where it has the counter; rx is towards the guest.
 * The lock is held only while packets move (host sockets never block). */
static void vsock_metrics(struct virtio_dev *vd, struct device_metrics *m)
{
	struct virtio_vsock *s = vd->priv;
	struct vsock_stats st;

	pthread_mutex_lock(&s->lock);
	vsock_get_stats(s->core, &st);
	pthread_mutex_unlock(&s->lock);
	m->group = "vsock";
	m->nr = 0;
	put_metric(m, "rx_packets_count", st.rx_packets);
	put_metric(m, "rx_bytes_count", st.rx_bytes);
	put_metric(m, "tx_packets_count", st.tx_packets);
	put_metric(m, "tx_bytes_count", st.tx_bytes);
	put_metric(m, "conns_added", st.conns_opened);
	put_metric(m, "conns_refused", st.conns_refused);
	put_metric(m, "rst_count", st.rst_sent);
	put_metric(m, "bad_packets", st.bad_packets);
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock", .device_id = VIRTIO_ID_VSOCK,
	.features = VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
		    VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX),
	.num_queues = 3, .queue_max = VSOCK_QUEUE_MAX, .config_len = 8,
	.config_read = vsock_config_read, .queue_notify = vsock_notify,
	.reset = vsock_reset_dev, .destroy = vsock_destroy, .metrics = vsock_metrics,
	.save = vsock_save, .load = vsock_load,
};

struct device *virtio_vsock_create_in(struct vm *vm, const struct virtio_slot *slot,
				      uint64_t guest_cid, const char *uds_path,
				      char *why, size_t why_len)
{
	struct virtio_vsock *s = calloc(1, sizeof(*s));
	int err;

	if (!s) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < 8; i++)
		s->config[i] = (uint8_t)(guest_cid >> (8 * i));
	s->core = vsock_new(guest_cid, uds_path, why, why_len);
	if (!s->core) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	s->vd = virtio_transport_create(vm, slot, &vsock_ops, s, why, why_len);
	if (!s->vd) {
		vsock_dev_free(s);
		return NULL;
	}
	err = vm_watch_fd(vm, vsock_epoll_fd(s->core), host_ready, s);
	if (err) {
		set_why(why, why_len, "cannot watch the vsock sockets: %s", strerror(-err));
		virtio_transport_free(s->vd);
		vsock_dev_free(s);
		return NULL;
	}
	vm_info(vm, "virtio-vsock at %s: guest CID %llu, host socket %s",
		s->vd->where, (unsigned long long)guest_cid, uds_path);
	return &s->vd->dev;
}

struct device *virtio_vsock_create(struct vm *vm, uint64_t base, uint32_t gsi,
				   uint64_t guest_cid, const char *uds_path,
				   char *why, size_t why_len)
{
	const struct virtio_slot slot = { .base = base, .gsi = gsi };

	return virtio_vsock_create_in(vm, &slot, guest_cid, uds_path, why, why_len);
}
