/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2 section 5.1) on a TAP interface. The tap speaks
 * virtio_net_hdr_v1 too (IFF_VNET_HDR, header size 12), so checksum and TCP
 * segmentation offloads pass through in both directions: one 64 KiB TCP
 * segment instead of 45 frames, which is what makes TCP fast when every
 * frame costs exits. Headers are copied and checked both ways against what
 * was negotiated: the guest cannot hand the host stack an offload it did
 * not negotiate (nor change the header after our check), and a header from
 * the tap the guest cannot take (e.g. left over from before a reset with
 * other features) drops that frame. The tap's offloads (TUNSETOFFLOAD)
 * follow the guest's GUEST_* features at DRIVER_OK and go off at reset.
 *
 * Receive buffers may be mergeable (MRG_RXBUF, net_rx.c): Linux then posts
 * small buffers and a 64 KiB segment spreads over as many as it needs,
 * instead of a 64 KiB chain of pages per frame.
 *
 * Everything runs on the VM's I/O thread: RX when the tap is readable (the
 * watch pauses while the guest has too few receive buffers, keeping the
 * frame it read, and resumes on its next receiveq notify), TX on transmitq
 * notifications. Both work in batches (up to NET_RX_BATCH frames, or
 * NET_TX_BATCH chains, per wake-up) with one interrupt per batch, when the
 * driver wants one (EVENT_IDX's used_event or NO_INTERRUPT).
 *
 * Multi-queue (VIRTIO_NET_F_MQ, queue_pairs > 1): a pair of queues per
 * TAP queue (IFF_MULTI_QUEUE, one fd each), queues 2p and 2p+1, and the
 * control queue last (2N; 2 when the driver did not take MQ). The TAP
 * spreads flows over its attached queues; the pairs the driver does not use
 * (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, net_ctrl.c; 1 after every reset) are
 * detached (TUNSETQUEUE), so no frame waits where nobody reads. Each pair's
 * fd has its own watch; all of it runs on the I/O thread, control included.
 *
 * Snapshots: the device's own part of the payload (after the transport's,
 * see mmio.c) is u8 config[12] (the MAC, then status, max_virtqueue_pairs
 * and mtu, which must be this device's) and u32 queue pairs in use (1 ..
 * the device's pairs; more than 1 only with MQ negotiated). The features
 * the data path uses, the TAP's offloads and the control queue's answers
 * follow from the transport's state (net_activate at the restored
 * DRIVER_OK; the control queue is a queue like the others). A frame read
 * from the TAP and waiting for receive buffers is not kept: lost, as on a
 * wire. With vhost=on the data rings' positions live in the kernel:
 * quiescing (before a save) takes vhost's backend away, so it stops, and
 * copies each ring's position into the transport's queue, where the save
 * finds it; unquiescing gives the backend back. A restored DRIVER_OK
 * starts vhost's rings at those positions (vhost_net_start).
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "devices/virtio/virtio.h"
#include "utils.h"
#include "vm.h"

#define NET_QUEUE_MAX 256
#define NET_HDR_LEN VIRTIO_NET_HDR_LEN
/* Largest frame either way: a 64 KiB GSO packet plus link headers. */
#define NET_MAX_FRAME (65536 + 256)
#define NET_RX_BATCH 64
#define NET_TX_BATCH 256
#define NET_CTRL_IOV 8

#define VIRTIO_NET_S_LINK_UP 1
#define NET_CFG_LEN 12          /* mac[6], status, max_virtqueue_pairs, mtu */
#define NET_CFG_STATUS 6
#define NET_CFG_MAX_PAIRS 8

#define NET_FEATURES (VIRTIO_F_BIT(VIRTIO_NET_F_CSUM) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_GUEST_CSUM) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_GUEST_TSO4) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_GUEST_TSO6) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_HOST_TSO4) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_HOST_TSO6) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_MAC) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_MRG_RXBUF) | \
		      VIRTIO_F_BIT(VIRTIO_NET_F_STATUS) | \
		      VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
		      VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX))
#define NET_MQ_FEATURES (VIRTIO_F_BIT(VIRTIO_NET_F_CTRL_VQ) | \
			 VIRTIO_F_BIT(VIRTIO_NET_F_MQ))

struct virtio_net;

/* One receive/transmit queue pair and its TAP queue. */
struct net_pair {
	struct virtio_net *n;
	unsigned index;
	int tap_fd;
	int vhost_fd;                /* -1: frames go through the I/O thread */
	bool attached;               /* the TAP steers frames here (TUNSETQUEUE) */
	bool vhost_up;               /* vhost has the rings (since DRIVER_OK) */
	bool rx_paused;              /* I/O thread only */
	size_t rx_len;               /* frame in rx_buf waiting for buffers
				      * (RX queue lock) */
	/* Frames (and their bytes, without the virtio-net header) through
	 * the I/O thread, the only writer (vhost's are not seen here). */
	atomic_uint_least64_t rx_frames, tx_frames, rx_bytes, tx_bytes,
		rx_dropped, tx_dropped;
	uint8_t tx_hdr[NET_HDR_LEN]; /* our checked copy of the guest's */
	struct iovec rx_iov[2 * NET_QUEUE_MAX]; /* MRG_RXBUF: 2 chains at once */
	struct iovec tx_chain[NET_QUEUE_MAX];
	struct iovec tx_iov[NET_QUEUE_MAX + 1];
	uint8_t rx_buf[NET_HDR_LEN + NET_MAX_FRAME];
};

struct virtio_net {
	struct virtio_dev *vd;
	struct virtio_dev_ops ops;   /* net_ops, or adjusted for MQ and vhost */
	bool vhost;
	uint64_t vhost_features;
	char ifname[IFNAMSIZ];
	uint8_t config[NET_CFG_LEN];
	/* Features the driver took, set at DRIVER_OK (vCPU thread) and read
	 * by the I/O thread while the device is live. */
	_Atomic uint64_t features;
	unsigned nr_pairs;
	/* Pairs in use (attached): 1 until the driver asks for more. Changed
	 * under the control queue's lock or at reset, after every queue
	 * stopped; read by the data path. */
	_Atomic unsigned active;
	struct iovec ctrl_iov[NET_CTRL_IOV];
	struct net_pair *pairs;
};

static unsigned rxq(const struct net_pair *p) { return 2 * p->index; }
static unsigned txq(const struct net_pair *p) { return 2 * p->index + 1; }

/* struct virtio_net_hdr_v1 fields (5.1.6) */
enum {
	HDR_FLAGS = 0, HDR_GSO_TYPE = 1, HDR_GSO_SIZE = 4, HDR_NUM_BUFFERS = 10,
};
#define HDR_F_NEEDS_CSUM 1
#define HDR_F_DATA_VALID 2
#define HDR_GSO_NONE 0
#define HDR_GSO_TCPV4 1
#define HDR_GSO_TCPV6 4

static bool has(uint64_t features, int bit)
{
	return features & VIRTIO_F_BIT(bit);
}

/* The GSO type is one this side may use (TCP only: no UDP, no ECN). */
static bool gso_ok(uint8_t type, uint64_t features, int tso4, int tso6)
{
	return type == HDR_GSO_NONE ||
	       (type == HDR_GSO_TCPV4 && has(features, tso4)) ||
	       (type == HDR_GSO_TCPV6 && has(features, tso6));
}

int virtio_net_check_tx_hdr(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint64_t features)
{
	uint8_t flags = hdr[HDR_FLAGS] & HDR_F_NEEDS_CSUM; /* others mean nothing here */

	if ((flags & HDR_F_NEEDS_CSUM) && !has(features, VIRTIO_NET_F_CSUM))
		return -EINVAL;
	if (!gso_ok(hdr[HDR_GSO_TYPE], features, VIRTIO_NET_F_HOST_TSO4,
		    VIRTIO_NET_F_HOST_TSO6))
		return -EINVAL;
	/* A segmented frame needs its checksums done per segment (5.1.6.2). */
	if (hdr[HDR_GSO_TYPE] != HDR_GSO_NONE && !(flags & HDR_F_NEEDS_CSUM))
		return -EINVAL;
	hdr[HDR_FLAGS] = flags;
	if (hdr[HDR_GSO_TYPE] == HDR_GSO_NONE)
		memset(hdr + HDR_GSO_SIZE, 0, 2);
	memset(hdr + HDR_NUM_BUFFERS, 0, 2);
	return 0;
}

int virtio_net_check_rx_hdr(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint64_t features)
{
	if (!has(features, VIRTIO_NET_F_GUEST_CSUM)) {
		if (hdr[HDR_FLAGS] & HDR_F_NEEDS_CSUM)
			return -EINVAL;
		hdr[HDR_FLAGS] = 0;
	}
	hdr[HDR_FLAGS] &= HDR_F_NEEDS_CSUM | HDR_F_DATA_VALID;
	if (!gso_ok(hdr[HDR_GSO_TYPE], features, VIRTIO_NET_F_GUEST_TSO4,
		    VIRTIO_NET_F_GUEST_TSO6))
		return -EINVAL;
	hdr[HDR_NUM_BUFFERS] = 1; /* with MRG_RXBUF net_rx.c sets the count */
	hdr[HDR_NUM_BUFFERS + 1] = 0;
	return 0;
}

/* Read the next frame from the tap into rx_buf (p->rx_len): 1 got one, 0
 * nothing to read, -EMSGSIZE dropped it, another -errno the tap failed. */
static int rx_read(struct net_pair *p)
{
	ssize_t r = read(p->tap_fd, p->rx_buf, sizeof(p->rx_buf));

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	/* A frame the tap could not hand over whole is gone: go on. */
	if (r < 0 && errno != EFAULT && errno != EINVAL && errno != EMSGSIZE)
		return -errno;
	if (r <= NET_HDR_LEN ||
	    virtio_net_check_rx_hdr(p->rx_buf, atomic_load(&p->n->features))) {
		virtio_count(&p->rx_dropped, 1); /* empty, or an offload the guest did not take */
		return -EMSGSIZE;
	}
	p->rx_len = (size_t)r;
	return 1;
}

/* Place the waiting frame: 1 placed (or dropped: too big for the guest's
 * buffers), 0 not enough buffers yet (it waits), -errno the ring is broken. */
static int rx_deliver(struct net_pair *p, struct virtio_queue *q)
{
	bool mrg = has(atomic_load(&p->n->features), VIRTIO_NET_F_MRG_RXBUF);

	for (;;) {
		int r = virtio_net_rx_place(&q->vq, mrg, p->rx_buf, p->rx_len,
					    p->rx_iov, ARRAY_SIZE(p->rx_iov));

		if (r == -EMSGSIZE)
			virtio_count(&p->rx_dropped, 1);
		else if (r > 0) {
			virtio_count(&p->rx_frames, 1);
			virtio_count(&p->rx_bytes, p->rx_len - NET_HDR_LEN);
		}
		if (r > 0 || r == -EMSGSIZE)
			p->rx_len = 0;
		if (r != 0)
			return r == -EMSGSIZE ? 1 : r;
		/* Out of buffers: ask for a notify, unless more came meanwhile. */
		if (!virtq_enable_notify(&q->vq))
			return 0;
		virtq_disable_notify(&q->vq);
	}
}

/* Up to NET_RX_BATCH frames, one interrupt for all; what the watch does next. */
static int rx_batch(struct net_pair *p, struct virtio_queue *q)
{
	for (int i = 0; i < NET_RX_BATCH; i++) {
		int r = p->rx_len ? 1 : rx_read(p);

		if (r == -EMSGSIZE)
			continue;
		if (r == 0)
			return VM_WATCH_KEEP; /* the tap is empty */
		if (r < 0) {
			vm_warn(p->n->vd->vm, "virtio-net: reading %s (queue pair %u): %s; receiving stops",
				p->n->ifname, p->index, strerror(-r));
			return VM_WATCH_DROP;
		}
		r = rx_deliver(p, q);
		if (r < 0)
			virtio_set_needs_reset(p->n->vd, "bad receive buffer", r);
		if (r <= 0) {
			p->rx_paused = true; /* resumed on the next receiveq notify */
			return VM_WATCH_PAUSE;
		}
	}
	return VM_WATCH_KEEP; /* more later: let TX and other devices run */
}

/* I/O thread: the tap queue has frames for the guest (or the guest gave
 * buffers for a frame that waits). */
static int net_rx_ready(void *opaque)
{
	struct net_pair *p = opaque;
	struct virtio_queue *q;
	int ret;

	/* A detached TAP queue polls as an error: wait until it is used. */
	if (p->index >= atomic_load(&p->n->active) ||
	    !(q = virtio_queue_get(p->n->vd, rxq(p)))) {
		p->rx_paused = true; /* the driver is not up: frames wait */
		return VM_WATCH_PAUSE;
	}
	ret = rx_batch(p, q);
	virtio_queue_interrupt(q);
	virtio_queue_put(q);
	return ret;
}

/* New receive buffers, or a pair back in use: first for the frame that
 * waits (the tap may have nothing more to wake us), then for the tap's. */
static void rx_resume(struct net_pair *p)
{
	if (!p->rx_paused)
		return;
	p->rx_paused = false;
	if (net_rx_ready(p) == VM_WATCH_KEEP)
		vm_resume_fd(p->n->vd->vm, p->tap_fd);
}

/* Send one chain's frame behind our checked copy of its header. */
static void tx_one(struct net_pair *p, const struct virtq_elem *e)
{
	size_t got;
	unsigned cnt;

	if (e->out_len <= NET_HDR_LEN || e->out_len > NET_HDR_LEN + NET_MAX_FRAME ||
	    iov_to_buf(e->iov, e->nr_out, 0, p->tx_hdr, NET_HDR_LEN) != NET_HDR_LEN ||
	    virtio_net_check_tx_hdr(p->tx_hdr, atomic_load(&p->n->features))) {
		virtio_count(&p->tx_dropped, 1);
		return;
	}
	p->tx_iov[0] = (struct iovec){ p->tx_hdr, NET_HDR_LEN };
	cnt = iov_slice(e->iov, e->nr_out, NET_HDR_LEN, e->out_len - NET_HDR_LEN,
			p->tx_iov + 1, NET_QUEUE_MAX, &got);
	/* EAGAIN (host queue full), a header the host stack refuses, or the
	 * interface down: the frame is lost, as on a wire. */
	if (writev(p->tap_fd, p->tx_iov, (int)cnt + 1) < 0)
		virtio_count(&p->tx_dropped, 1);
	else {
		virtio_count(&p->tx_frames, 1);
		virtio_count(&p->tx_bytes, e->out_len - NET_HDR_LEN);
	}
}

static void net_tx(struct net_pair *p)
{
	struct virtio_queue *q = virtio_queue_get(p->n->vd, txq(p));
	struct virtq_elem e = { .iov = p->tx_chain, .max_iov = NET_QUEUE_MAX };
	int count = 0;

	if (!q)
		return;
	/* Used elements are published once per batch (count <= num: a
	 * chain is popped at most once before it is used). */
	while (virtio_queue_pop(q, &e)) {
		tx_one(p, &e);
		virtq_fill(&q->vq, (unsigned)count, e.head, 0);
		if (++count == NET_TX_BATCH) {
			virtio_queue_kick(q); /* the rest later: let RX run */
			break;
		}
	}
	virtq_flush(&q->vq, (unsigned)count);
	virtio_queue_interrupt(q);
	virtio_queue_put(q);
}

/* ---- queue pairs in use (VIRTIO_NET_F_MQ) ---- */

/* The control queue's index: 2N with MQ, else 2 (5.1.2); none with 1 pair. */
static unsigned ctrl_index(const struct virtio_net *n, uint64_t features)
{
	if (n->nr_pairs < 2)
		return UINT32_MAX;
	return has(features, VIRTIO_NET_F_MQ) ? 2 * n->nr_pairs : 2;
}

/* Attach or detach a pair's TAP queue, vhost's backend following it (vhost
 * refuses a detached queue, so it goes first and comes back last). */
static int pair_attach(struct net_pair *p, bool on)
{
	struct ifreq ifr = { .ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE };
	int err = 0;

	if (p->attached == on)
		return 0;
	if (!on && p->vhost_up)
		vhost_net_set_backend(p->vhost_fd, -1);
	if (ioctl(p->tap_fd, TUNSETQUEUE, &ifr) < 0)
		err = -errno;
	else
		p->attached = on;
	if (on && !err && p->vhost_up) {
		err = vhost_net_set_backend(p->vhost_fd, p->tap_fd);
		/* No backend: the TAP must not steer frames there either. */
		if (err && ioctl(p->tap_fd, TUNSETQUEUE,
				 &(struct ifreq){ .ifr_flags = IFF_DETACH_QUEUE }) == 0)
			p->attached = false;
	}
	return err;
}

/* Use the first `pairs` pairs: 0 or -errno (then the old count stays in
 * use where it can). */
static int set_pairs(void *opaque, uint16_t pairs)
{
	struct virtio_net *n = opaque;
	int err = 0;

	/* Shrinking: stop the data path first, then detach. */
	if (pairs < atomic_load(&n->active))
		atomic_store(&n->active, pairs);
	for (unsigned i = 1; i < n->nr_pairs && !err; i++)
		err = pair_attach(&n->pairs[i], i < pairs);
	if (err) {
		if (n->vd)
			vm_warn(n->vd->vm, "virtio-net %s: cannot use %u queue pairs: %s",
				n->ifname, pairs, strerror(-err));
		return err;
	}
	atomic_store(&n->active, pairs);
	return 0;
}

/* I/O thread: the driver sent control commands. */
static void net_ctrl(struct virtio_net *n, unsigned qi)
{
	struct virtio_queue *q = virtio_queue_get(n->vd, qi);
	unsigned before = atomic_load(&n->active);
	int r = 0;

	if (!q)
		return;
	for (;;) {
		r = virtio_net_ctrl_one(&q->vq, atomic_load(&n->features),
					(uint16_t)n->nr_pairs, set_pairs, n,
					n->ctrl_iov, NET_CTRL_IOV);
		if (r < 0)
			virtio_set_needs_reset(n->vd, "bad control command chain", r);
		if (r < 0 || (r == 0 && !virtq_enable_notify(&q->vq)))
			break;
		if (r == 0)
			virtq_disable_notify(&q->vq); /* more came meanwhile */
	}
	virtio_queue_interrupt(q);
	virtio_queue_put(q);
	if (atomic_load(&n->active) != before)
		vm_info(n->vd->vm, "virtio-net %s: %u queue pairs in use", n->ifname,
			atomic_load(&n->active));
	/* Pairs back in use: their frames may have waited. */
	for (unsigned i = before; !n->vhost && i < atomic_load(&n->active); i++)
		rx_resume(&n->pairs[i]);
}

static void net_notify(struct virtio_dev *vd, unsigned qi)
{
	struct virtio_net *n = vd->priv;
	struct net_pair *p;

	if (qi == ctrl_index(n, atomic_load(&n->features))) {
		net_ctrl(n, qi);
		return;
	}
	/* vhost's rings: it took the kick itself. Unused pairs: ignored. */
	if (n->vhost || qi / 2 >= atomic_load(&n->active))
		return;
	p = &n->pairs[qi / 2];
	if (qi == txq(p))
		net_tx(p);
	else
		rx_resume(p);
}

/* The tap hands us what the guest takes: offloads follow its features
 * (the TAP's, whichever queue fd sets them: pair 0's is always attached). */
static int set_tap_offload(struct virtio_net *n, uint64_t features)
{
	unsigned off = 0;

	if (has(features, VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (has(features, VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (has(features, VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	return ioctl(n->pairs[0].tap_fd, TUNSETOFFLOAD, off) < 0 ? -errno : 0;
}

/* DRIVER_OK with vhost=on: hand the rings to the kernel, or fail the
 * device. Every pair the driver set up gets its rings; only attached ones
 * (pair 0 now) a backend. */
static void start_vhost(struct virtio_net *n)
{
	unsigned pairs = has(n->vd->drv_features, VIRTIO_NET_F_MQ) ? n->nr_pairs : 1;

	for (unsigned i = 0; i < pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		const char *step = "";
		char why[96];
		int err = vhost_net_start(p->vhost_fd, n->vd, rxq(p),
					  p->attached ? p->tap_fd : -1,
					  n->vhost_features, &step);

		if (!err) {
			p->vhost_up = true;
			continue;
		}
		snprintf(why, sizeof(why), "vhost-net on TAP %s (queue pair %u): %s failed",
			 n->ifname, i, step);
		virtio_set_needs_reset(n->vd, why, err);
		return;
	}
}

static void net_activate(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	int err;

	atomic_store(&n->features, vd->drv_features);
	vm_info(vd->vm, "virtio-net %s: driver up, %s receive buffers%s", n->ifname,
		has(vd->drv_features, VIRTIO_NET_F_MRG_RXBUF) ? "mergeable" : "whole-frame",
		n->vhost ? ", vhost-net" : "");
	err = set_tap_offload(n, vd->drv_features);
	if (err)
		vm_warn(vd->vm, "virtio-net %s: cannot set TAP offloads: %s; offloaded frames will be dropped",
			n->ifname, strerror(-err));
	if (n->vhost)
		start_vhost(n);
}

static void net_reset(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	for (unsigned i = 0; i < n->nr_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		struct virtio_queue *rxq_ = &vd->queues[rxq(p)];

		if (p->vhost_fd >= 0)
			vhost_net_stop(p->vhost_fd);
		p->vhost_up = false;
		/* A waiting frame was checked against the old features: drop it. */
		pthread_mutex_lock(&rxq_->lock);
		p->rx_len = 0;
		pthread_mutex_unlock(&rxq_->lock);
	}
	/* One pair until the next driver asks for more (5.1.6.5.5). */
	if (n->nr_pairs > 1 && set_pairs(n, 1))
		vm_warn(vd->vm, "virtio-net %s: a TAP queue stays attached after reset",
			n->ifname);
	atomic_store(&n->features, 0);
	set_tap_offload(n, 0);
}

static void net_config_read(struct virtio_dev *vd, uint32_t off, void *data,
			    uint32_t size)
{
	struct virtio_net *n = vd->priv;

	memcpy(data, n->config + off, size); /* bounds checked by mmio.c */
}

/* ---- snapshots ---- */

#define NET_CFG_MAC_LEN 6

/* A vhost ring's position as the transport keeps a queue's: every buffer
 * vhost took is used (a detached vhost-net finishes or puts back what it
 * took), so used = avail = vhost's base. */
static int take_ring_position(struct net_pair *p, struct virtio_queue *q, unsigned ring)
{
	uint16_t base;
	int err = vhost_net_ring_base(p->vhost_fd, ring, &base);

	if (err)
		return err;
	pthread_mutex_lock(&q->lock);
	q->vq.last_avail = q->vq.avail_seen = base;
	q->vq.used_idx = q->vq.signalled_used =
		__atomic_load_n(&q->vq.used->idx, __ATOMIC_ACQUIRE);
	q->vq.signalled_valid = false;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* The backend back, and each ring kicked: a kick that came while vhost had
 * no backend found nothing to do, and the driver may not kick again. */
static void net_unquiesce(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	uint64_t one = 1;

	for (unsigned i = 0; i < n->nr_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		if (!p->vhost_up || !p->attached)
			continue;
		if (vhost_net_set_backend(p->vhost_fd, p->tap_fd)) {
			virtio_set_needs_reset(vd, "vhost-net: the TAP did not come back after a snapshot",
					       -EIO);
			continue;
		}
		for (unsigned r = 0; r < VHOST_NET_RINGS; r++)
			if (write(vd->queues[rxq(p) + r].notify_fd, &one, sizeof(one)) < 0)
				vm_warn(vd->vm, "virtio-net %s: cannot kick vhost: %s", n->ifname,
					strerror(errno));
	}
}

static int net_quiesce(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	int err = 0;

	for (unsigned i = 0; !err && i < n->nr_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		if (!p->vhost_up)
			continue;
		err = vhost_net_set_backend(p->vhost_fd, -1);
		for (unsigned r = 0; !err && r < VHOST_NET_RINGS; r++)
			err = take_ring_position(p, &vd->queues[rxq(p) + r], r);
	}
	if (err)
		net_unquiesce(vd); /* no snapshot: vhost goes on */
	return err;
}

static int net_save(struct virtio_dev *vd, struct snap_buf *out)
{
	struct virtio_net *n = vd->priv;

	snap_put_bytes(out, n->config, sizeof(n->config));
	snap_put_u32(out, atomic_load(&n->active));
	return 0;
}

static int net_load(struct virtio_dev *vd, struct snap_cursor *in, uint64_t drv_features,
		    bool apply)
{
	struct virtio_net *n = vd->priv;
	uint8_t config[NET_CFG_LEN];
	uint32_t active;

	snap_get_bytes(in, config, sizeof(config));
	active = snap_get_u32(in);
	if (in->bad || memcmp(config + NET_CFG_MAC_LEN, n->config + NET_CFG_MAC_LEN,
			      NET_CFG_LEN - NET_CFG_MAC_LEN))
		return -EINVAL;
	if (active < 1 || active > n->nr_pairs ||
	    (active > 1 && !has(drv_features, VIRTIO_NET_F_MQ)))
		return -EINVAL;
	if (!apply)
		return 0;
	/* The MAC the guest read, even if this device was given another. */
	memcpy(n->config, config, NET_CFG_MAC_LEN);
	return set_pairs(n, (uint16_t)active);
}

static void net_free(struct virtio_net *n)
{
	for (unsigned i = 0; n->pairs && i < n->nr_pairs; i++) {
		if (n->pairs[i].vhost_fd >= 0)
			close(n->pairs[i].vhost_fd); /* first: vhost holds the tap */
		if (n->pairs[i].tap_fd >= 0)
			close(n->pairs[i].tap_fd);
	}
	free(n->pairs);
	free(n);
}

/* Drops always; with several pairs each one's frames, which show that the
 * TAP and the driver spread the traffic. */
static void log_counts(struct virtio_net *n)
{
	uint64_t rxd = 0, txd = 0;

	for (unsigned i = 0; i < n->nr_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		rxd += atomic_load(&p->rx_dropped);
		txd += atomic_load(&p->tx_dropped);
		if (n->nr_pairs > 1 && !n->vhost)
			vm_info(n->vd->vm, "virtio-net %s: queue pair %u: %llu frames to the guest, %llu from it",
				n->ifname, i, (unsigned long long)atomic_load(&p->rx_frames),
				(unsigned long long)atomic_load(&p->tx_frames));
	}
	if (rxd || txd)
		vm_info(n->vd->vm, "virtio-net %s: dropped %llu received, %llu sent frames",
			n->ifname, (unsigned long long)rxd, (unsigned long long)txd);
}

/* Any thread: the pairs summed, under Firecracker's names where it has
 * the counter (rx: to the guest, tx: from it). */
static void net_metrics(struct virtio_dev *vd, struct device_metrics *m)
{
	struct virtio_net *n = vd->priv;
	static const char *const names[] = {
		"rx_packets_count", "rx_bytes_count", "rx_dropped",
		"tx_packets_count", "tx_bytes_count", "tx_dropped",
	};

	m->group = "net";
	m->nr = (int)ARRAY_SIZE(names);
	for (int i = 0; i < m->nr; i++)
		m->counter[i].name = names[i];
	for (unsigned i = 0; i < n->nr_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		m->counter[0].value += atomic_load_explicit(&p->rx_frames, memory_order_relaxed);
		m->counter[1].value += atomic_load_explicit(&p->rx_bytes, memory_order_relaxed);
		m->counter[2].value += atomic_load_explicit(&p->rx_dropped, memory_order_relaxed);
		m->counter[3].value += atomic_load_explicit(&p->tx_frames, memory_order_relaxed);
		m->counter[4].value += atomic_load_explicit(&p->tx_bytes, memory_order_relaxed);
		m->counter[5].value += atomic_load_explicit(&p->tx_dropped, memory_order_relaxed);
	}
}

static void net_destroy(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	log_counts(n);
	net_free(n);
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net", .device_id = VIRTIO_ID_NET,
	.features = NET_FEATURES,
	.num_queues = 2, .queue_max = NET_QUEUE_MAX, .config_len = NET_CFG_LEN,
	.config_read = net_config_read, .queue_notify = net_notify,
	.activate = net_activate, .reset = net_reset, .destroy = net_destroy,
	.metrics = net_metrics, .save = net_save, .load = net_load,
};

static int tap_error(const char *name, int err, char *why, size_t len)
{
	switch (err) {
	case EPERM: case EACCES:
		return set_why(why, len, "TAP %s: permission denied (create it first: ip tuntap add %s mode tap user $USER; or run as root)",
			    name, name);
	case EBUSY:
		return set_why(why, len, "TAP %s is busy: another process has it open", name);
	case EINVAL:
		return set_why(why, len, "%s exists and is not a TAP device with vnet headers", name);
	default:
		return set_why(why, len, "TAP %s: %s", name, strerror(err));
	}
}

/* One fd on TAP `name`, a queue of a multi-queue TAP if mq: the fd, or
 * -errno of /dev/net/tun (-ENODEV) or TUNSETIFF. */
static int tap_queue(const char *name, bool mq)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int err;

	if (fd < 0)
		return errno == ENOENT ? -ENODEV : -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0);
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) == 0)
		return fd;
	err = -errno;
	close(fd);
	return err;
}

/* vnet headers of our size; offloads off until a driver takes them. */
static int tap_setup(int fd)
{
	int hdr = NET_HDR_LEN;

	return ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	       ioctl(fd, TUNSETOFFLOAD, 0) < 0 ? -errno : 0;
}

/* Pair 0's fd. An existing TAP is single- or multi-queue (TUNSETIFF says
 * EINVAL to the other kind): one pair works on either; several need a
 * multi-queue TAP, or fall back to one when they were only a default. */
static int open_first(struct virtio_net *n, struct vm *vm,
		      const struct virtio_net_options *o, char *why, size_t len)
{
	bool mq = n->nr_pairs > 1;
	int fd = tap_queue(n->ifname, mq);

	if (fd == -EINVAL && (fd = tap_queue(n->ifname, !mq)) >= 0 && mq) {
		if (!o->mq_fallback) {
			close(fd);
			return set_why(why, len, "TAP %s is single-queue: queues=%u needs one made with 'ip tuntap add %s mode tap multi_queue' (or queues=1)",
				       n->ifname, n->nr_pairs, n->ifname);
		}
		vm_info(vm, "virtio-net: TAP %s is single-queue (not made with multi_queue): 1 queue pair instead of %u",
			n->ifname, n->nr_pairs);
		n->nr_pairs = 1;
	}
	if (fd == -ENODEV)
		return set_why(why, len, "/dev/net/tun: %s (no TUN/TAP support: modprobe tun)",
			       strerror(ENOENT));
	if (fd < 0)
		return tap_error(n->ifname, -fd, why, len);
	n->pairs[0].tap_fd = fd;
	return 0;
}

static int open_tap(struct virtio_net *n, struct vm *vm,
		    const struct virtio_net_options *o, char *why, size_t len)
{
	const char *name = o->tap;

	if (!*name || strlen(name) >= IFNAMSIZ)
		return set_why(why, len, "TAP name '%s' is empty or longer than %d bytes",
			    name, IFNAMSIZ - 1);
	snprintf(n->ifname, sizeof(n->ifname), "%s", name);
	if (open_first(n, vm, o, why, len))
		return -1;
	n->pairs[0].attached = true;
	for (unsigned i = 1; i < n->nr_pairs; i++) {
		int fd = tap_queue(name, true);

		if (fd < 0)
			return set_why(why, len, "TAP %s, queue %u: %s", name, i, strerror(-fd));
		n->pairs[i].tap_fd = fd;
		n->pairs[i].attached = true;
	}
	for (unsigned i = 0; i < n->nr_pairs; i++) {
		int err = tap_setup(n->pairs[i].tap_fd);

		if (err)
			return set_why(why, len, "TAP %s: %s", name, strerror(-err));
	}
	/* Pair 0 only until a driver asks for more. */
	return set_pairs(n, 1) ? set_why(why, len, "TAP %s: TUNSETQUEUE: cannot detach a queue", name) : 0;
}

/* A stable default: 52:54:00 (locally administered, unicast) and three
 * bytes of an FNV-1a hash of the interface name. */
static void default_mac(const char *name, uint8_t mac[6])
{
	uint32_t h = 2166136261u;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	mac[0] = 0x52, mac[1] = 0x54, mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16), mac[4] = (uint8_t)(h >> 8), mac[5] = (uint8_t)h;
}

/* Ring features vhost must support for us to offer them; the rest (offloads,
 * MAC, status, the control queue) are the TAP's and this file's business. */
#define NET_RING_FEATURES (VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
			   VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX) | \
			   VIRTIO_F_BIT(VIRTIO_NET_F_MRG_RXBUF))

/* A vhost-net fd per pair; vhost takes the data queues' kicks, the I/O
 * thread keeps the control queue's (2N, or 2 without MQ: that one both
 * watch, vhost for pair 1's receive queue never minds). */
static int use_vhost(struct virtio_net *n, char *why, size_t len)
{
	for (unsigned i = 0; i < n->nr_pairs; i++) {
		int fd = vhost_net_open(&n->vhost_features, why, len);

		if (fd < 0)
			return fd;
		n->pairs[i].vhost_fd = fd;
	}
	n->vhost = true;
	if (!(n->vhost_features & VIRTIO_F_BIT(VIRTIO_F_VERSION_1)))
		return set_why(why, len, "vhost=on: this kernel's vhost-net has no VIRTIO_F_VERSION_1");
	n->ops.features &= ~(NET_RING_FEATURES & ~n->vhost_features);
	if (n->nr_pairs == 1)
		n->ops.own_notify = true;
	else
		n->ops.own_notify_mask = ((1ULL << (2 * n->nr_pairs)) - 1) & ~(1ULL << 2);
	n->ops.external_used_irq = true; /* vhost signals virtio_queue_call_fd */
	n->ops.quiesce = net_quiesce;
	n->ops.unquiesce = net_unquiesce;
	return 0;
}

/* What the data path needs once the transport exists. */
static int wire_data_path(struct virtio_net *n, struct vm *vm, char *why,
			  size_t len)
{
	if (n->vhost)
		return virtio_queue_call_fd(n->vd, 0) >= 0 ? 0 :
		       set_why(why, len, "vhost=on needs an irqfd for the device's interrupt, and this VM has none");
	for (unsigned i = 0; i < n->nr_pairs; i++) {
		int err = vm_watch_fd(vm, n->pairs[i].tap_fd, net_rx_ready, &n->pairs[i]);

		if (err)
			return set_why(why, len, "cannot watch TAP %s: %s", n->ifname, strerror(-err));
	}
	return 0;
}

static struct virtio_net *net_alloc(const struct virtio_net_options *o)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	unsigned pairs = o->queue_pairs ? o->queue_pairs : 1;

	if (!n)
		return NULL;
	n->nr_pairs = pairs;
	n->pairs = calloc(pairs, sizeof(*n->pairs));
	if (!n->pairs) {
		free(n);
		return NULL;
	}
	for (unsigned i = 0; i < pairs; i++) {
		n->pairs[i] = (struct net_pair){ .n = n, .index = i, .tap_fd = -1, .vhost_fd = -1 };
	}
	n->ops = net_ops;
	atomic_store(&n->active, 1);
	return n;
}

/* The device as the driver sees it: MQ and the control queue with pairs. */
static void set_config(struct virtio_net *n, const struct virtio_net_options *o)
{
	if (o->mac)
		memcpy(n->config, o->mac, 6);
	else
		default_mac(o->tap, n->config);
	n->config[NET_CFG_STATUS] = VIRTIO_NET_S_LINK_UP;
	if (n->nr_pairs < 2)
		return;
	n->config[NET_CFG_MAX_PAIRS] = (uint8_t)n->nr_pairs;
	n->ops.features |= NET_MQ_FEATURES;
	n->ops.num_queues = 2 * n->nr_pairs + 1;
}

static struct virtio_net *net_open(struct vm *vm, const struct virtio_net_options *o,
				   char *why, size_t why_len)
{
	struct virtio_net *n;

	if (!o || !o->tap) {
		set_why(why, why_len, "no TAP interface given");
		return NULL;
	}
	if (o->queue_pairs > VIRTIO_NET_MAX_QUEUE_PAIRS) {
		set_why(why, why_len, "queues=%u: at most %d", o->queue_pairs, VIRTIO_NET_MAX_QUEUE_PAIRS);
		return NULL;
	}
	n = net_alloc(o);
	if (!n) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	if (open_tap(n, vm, o, why, why_len) || (o->vhost && use_vhost(n, why, why_len))) {
		net_free(n);
		return NULL;
	}
	set_config(n, o);
	return n;
}

struct device *virtio_net_create_in(struct vm *vm, const struct virtio_slot *slot,
				    const struct virtio_net_options *o,
				    char *why, size_t why_len)
{
	struct virtio_net *n = net_open(vm, o, why, why_len);

	if (!n)
		return NULL;
	n->vd = virtio_transport_create(vm, slot, &n->ops, n, why, why_len);
	if (!n->vd) {
		net_free(n);
		return NULL;
	}
	if (wire_data_path(n, vm, why, why_len)) {
		virtio_transport_free(n->vd);
		net_free(n);
		return NULL;
	}
	vm_info(vm, "virtio-net at %s: TAP %s, MAC %02x:%02x:%02x:%02x:%02x:%02x%s",
		n->vd->where, o->tap, n->config[0], n->config[1],
		n->config[2], n->config[3], n->config[4], n->config[5],
		n->vhost ? " via vhost-net" : "");
	if (n->nr_pairs > 1)
		vm_info(vm, "virtio-net %s: %u queue pairs (multi-queue TAP)", n->ifname,
			n->nr_pairs);
	return &n->vd->dev;
}

struct device *virtio_net_create(struct vm *vm, uint64_t base, uint32_t gsi,
				 const char *tap, const uint8_t mac[6],
				 char *why, size_t why_len)
{
	struct virtio_net_options o = { .tap = tap, .mac = mac };

	return virtio_net_create_opts(vm, base, gsi, &o, why, why_len);
}

struct device *virtio_net_create_opts(struct vm *vm, uint64_t base, uint32_t gsi,
				      const struct virtio_net_options *o,
				      char *why, size_t why_len)
{
	const struct virtio_slot slot = { .base = base, .gsi = gsi };

	return virtio_net_create_in(vm, &slot, o, why, why_len);
}
