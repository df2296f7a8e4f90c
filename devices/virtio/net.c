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

#include "devices/virtio/virtio.h"
#include "utils.h"
#include "vm.h"

#define NET_QUEUE_MAX 256
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_HDR_LEN VIRTIO_NET_HDR_LEN
/* Largest frame either way: a 64 KiB GSO packet plus link headers. */
#define NET_MAX_FRAME (65536 + 256)
#define NET_RX_BATCH 64
#define NET_TX_BATCH 256

#define VIRTIO_NET_S_LINK_UP 1
#define NET_CFG_LEN 12          /* mac[6], status, max_virtqueue_pairs, mtu */
#define NET_CFG_STATUS 6

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

struct virtio_net {
	struct virtio_dev *vd;
	struct virtio_dev_ops ops;   /* net_ops, or adjusted for vhost */
	int tap_fd;
	int vhost_fd;                /* -1: frames go through the I/O thread */
	uint64_t vhost_features;
	char ifname[IFNAMSIZ];
	uint8_t config[NET_CFG_LEN];
	bool rx_paused;              /* I/O thread only */
	size_t rx_len;               /* frame in rx_buf waiting for buffers
				      * (RX queue lock) */
	uint64_t rx_dropped, tx_dropped;
	/* Features the driver took, set at DRIVER_OK (vCPU thread) and read
	 * by the I/O thread while the device is live. */
	_Atomic uint64_t features;
	uint8_t tx_hdr[NET_HDR_LEN]; /* our checked copy of the guest's */
	struct iovec rx_iov[2 * NET_QUEUE_MAX]; /* MRG_RXBUF: 2 chains at once */
	struct iovec tx_chain[NET_QUEUE_MAX];
	struct iovec tx_iov[NET_QUEUE_MAX + 1];
	uint8_t rx_buf[NET_HDR_LEN + NET_MAX_FRAME];
};

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

/* Read the next frame from the tap into rx_buf (n->rx_len): 1 got one, 0
 * nothing to read, -EMSGSIZE dropped it, another -errno the tap failed. */
static int rx_read(struct virtio_net *n)
{
	ssize_t r = read(n->tap_fd, n->rx_buf, sizeof(n->rx_buf));

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	/* A frame the tap could not hand over whole is gone: go on. */
	if (r < 0 && errno != EFAULT && errno != EINVAL && errno != EMSGSIZE)
		return -errno;
	if (r <= NET_HDR_LEN ||
	    virtio_net_check_rx_hdr(n->rx_buf, atomic_load(&n->features))) {
		n->rx_dropped++; /* empty, or an offload the guest did not take */
		return -EMSGSIZE;
	}
	n->rx_len = (size_t)r;
	return 1;
}

/* Place the waiting frame: 1 placed (or dropped: too big for the guest's
 * buffers), 0 not enough buffers yet (it waits), -errno the ring is broken. */
static int rx_deliver(struct virtio_net *n, struct virtio_queue *q)
{
	bool mrg = has(atomic_load(&n->features), VIRTIO_NET_F_MRG_RXBUF);

	for (;;) {
		int r = virtio_net_rx_place(&q->vq, mrg, n->rx_buf, n->rx_len,
					    n->rx_iov, ARRAY_SIZE(n->rx_iov));

		if (r == -EMSGSIZE)
			n->rx_dropped++;
		if (r > 0 || r == -EMSGSIZE)
			n->rx_len = 0;
		if (r != 0)
			return r == -EMSGSIZE ? 1 : r;
		/* Out of buffers: ask for a notify, unless more came meanwhile. */
		if (!virtq_enable_notify(&q->vq))
			return 0;
		virtq_disable_notify(&q->vq);
	}
}

/* Up to NET_RX_BATCH frames, one interrupt for all; what the watch does next. */
static int rx_batch(struct virtio_net *n, struct virtio_queue *q)
{
	for (int i = 0; i < NET_RX_BATCH; i++) {
		int r = n->rx_len ? 1 : rx_read(n);

		if (r == -EMSGSIZE)
			continue;
		if (r == 0)
			return VM_WATCH_KEEP; /* the tap is empty */
		if (r < 0) {
			vm_warn(n->vd->vm, "virtio-net: reading %s: %s; receiving stops",
				n->ifname, strerror(-r));
			return VM_WATCH_DROP;
		}
		r = rx_deliver(n, q);
		if (r < 0)
			virtio_set_needs_reset(n->vd, "bad receive buffer", r);
		if (r <= 0) {
			n->rx_paused = true; /* resumed on the next receiveq notify */
			return VM_WATCH_PAUSE;
		}
	}
	return VM_WATCH_KEEP; /* more later: let TX and other devices run */
}

/* I/O thread: the tap has frames for the guest (or the guest gave buffers
 * for a frame that waits). */
static int net_rx_ready(void *opaque)
{
	struct virtio_net *n = opaque;
	struct virtio_queue *q = virtio_queue_get(n->vd, NET_RXQ);
	int ret;

	if (!q) {
		n->rx_paused = true; /* the driver is not up: frames wait */
		return VM_WATCH_PAUSE;
	}
	ret = rx_batch(n, q);
	virtio_queue_interrupt(q);
	virtio_queue_put(q);
	return ret;
}

/* Send one chain's frame behind our checked copy of its header. */
static void tx_one(struct virtio_net *n, const struct virtq_elem *e)
{
	size_t got;
	unsigned cnt;

	if (e->out_len <= NET_HDR_LEN || e->out_len > NET_HDR_LEN + NET_MAX_FRAME ||
	    iov_to_buf(e->iov, e->nr_out, 0, n->tx_hdr, NET_HDR_LEN) != NET_HDR_LEN ||
	    virtio_net_check_tx_hdr(n->tx_hdr, atomic_load(&n->features))) {
		n->tx_dropped++;
		return;
	}
	n->tx_iov[0] = (struct iovec){ n->tx_hdr, NET_HDR_LEN };
	cnt = iov_slice(e->iov, e->nr_out, NET_HDR_LEN, e->out_len - NET_HDR_LEN,
			n->tx_iov + 1, NET_QUEUE_MAX, &got);
	/* EAGAIN (host queue full), a header the host stack refuses, or the
	 * interface down: the frame is lost, as on a wire. */
	if (writev(n->tap_fd, n->tx_iov, (int)cnt + 1) < 0)
		n->tx_dropped++;
}

static void net_tx(struct virtio_net *n)
{
	struct virtio_queue *q = virtio_queue_get(n->vd, NET_TXQ);
	struct virtq_elem e = { .iov = n->tx_chain, .max_iov = NET_QUEUE_MAX };
	int count = 0;

	if (!q)
		return;
	/* Used elements are published once per batch (count <= num: a
	 * chain is popped at most once before it is used). */
	while (virtio_queue_pop(q, &e)) {
		tx_one(n, &e);
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

static void net_notify(struct virtio_dev *vd, unsigned qi)
{
	struct virtio_net *n = vd->priv;

	if (qi == NET_TXQ) {
		net_tx(n);
	} else if (n->rx_paused) {
		/* New receive buffers: first for the frame that waits (the tap
		 * may have nothing more to wake us), then for the tap's. */
		n->rx_paused = false;
		if (net_rx_ready(n) == VM_WATCH_KEEP)
			vm_resume_fd(vd->vm, n->tap_fd);
	}
}

/* The tap hands us what the guest takes: offloads follow its features. */
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
	return ioctl(n->tap_fd, TUNSETOFFLOAD, off) < 0 ? -errno : 0;
}

/* DRIVER_OK with vhost=on: hand the rings to the kernel, or fail the device. */
static void start_vhost(struct virtio_net *n)
{
	const char *step = "";
	int err = vhost_net_start(n->vhost_fd, n->vd, n->tap_fd, n->vhost_features, &step);
	char why[96];

	if (!err)
		return;
	snprintf(why, sizeof(why), "vhost-net on TAP %s: %s failed", n->ifname, step);
	virtio_set_needs_reset(n->vd, why, err);
}

static void net_activate(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	int err;

	atomic_store(&n->features, vd->drv_features);
	vm_info(vd->vm, "virtio-net %s: driver up, %s receive buffers%s", n->ifname,
		has(vd->drv_features, VIRTIO_NET_F_MRG_RXBUF) ? "mergeable" : "whole-frame",
		n->vhost_fd >= 0 ? ", vhost-net" : "");
	err = set_tap_offload(n, vd->drv_features);
	if (err)
		vm_warn(vd->vm, "virtio-net %s: cannot set TAP offloads: %s; offloaded frames will be dropped",
			n->ifname, strerror(-err));
	if (n->vhost_fd >= 0)
		start_vhost(n);
}

static void net_reset(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;
	struct virtio_queue *rxq = &vd->queues[NET_RXQ];

	/* A waiting frame was checked against the old features: drop it. */
	if (n->vhost_fd >= 0)
		vhost_net_stop(n->vhost_fd, vd);
	pthread_mutex_lock(&rxq->lock);
	n->rx_len = 0;
	pthread_mutex_unlock(&rxq->lock);

	atomic_store(&n->features, 0);
	set_tap_offload(n, 0);
}

static void net_config_read(struct virtio_dev *vd, uint32_t off, void *data,
			    uint32_t size)
{
	struct virtio_net *n = vd->priv;

	memcpy(data, n->config + off, size); /* bounds checked by mmio.c */
}

static void net_free(struct virtio_net *n)
{
	if (n->vhost_fd >= 0)
		close(n->vhost_fd); /* first: vhost holds the tap */
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	free(n);
}

static void net_destroy(struct virtio_dev *vd)
{
	struct virtio_net *n = vd->priv;

	if (n->rx_dropped || n->tx_dropped)
		vm_info(vd->vm, "virtio-net %s: dropped %llu received, %llu sent frames",
			n->ifname, (unsigned long long)n->rx_dropped,
			(unsigned long long)n->tx_dropped);
	net_free(n);
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net", .device_id = VIRTIO_ID_NET,
	.features = NET_FEATURES,
	.num_queues = 2, .queue_max = NET_QUEUE_MAX, .config_len = NET_CFG_LEN,
	.config_read = net_config_read, .queue_notify = net_notify,
	.activate = net_activate, .reset = net_reset, .destroy = net_destroy,
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

static int open_tap(struct virtio_net *n, const char *name, char *why,
		    size_t len)
{
	struct ifreq ifr = { 0 };
	int hdr = NET_HDR_LEN;

	if (!*name || strlen(name) >= IFNAMSIZ)
		return set_why(why, len, "TAP name '%s' is empty or longer than %d bytes",
			    name, IFNAMSIZ - 1);
	snprintf(n->ifname, sizeof(n->ifname), "%s", name);
	n->tap_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (n->tap_fd < 0)
		return set_why(why, len, "/dev/net/tun: %s%s", strerror(errno),
			    errno == ENOENT ? " (no TUN/TAP support: modprobe tun)" : "");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(n->tap_fd, TUNSETIFF, &ifr) < 0)
		return tap_error(name, errno, why, len);
	/* Offloads off until a driver takes them (net_activate). */
	if (ioctl(n->tap_fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(n->tap_fd, TUNSETOFFLOAD, 0) < 0)
		return set_why(why, len, "TAP %s: %s", name, strerror(errno));
	return 0;
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
 * MAC, status) are the TAP's and the config space's business. */
#define NET_RING_FEATURES (VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
			   VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX) | \
			   VIRTIO_F_BIT(VIRTIO_NET_F_MRG_RXBUF))

static int use_vhost(struct virtio_net *n, char *why, size_t len)
{
	int fd = vhost_net_open(&n->vhost_features, why, len);

	if (fd < 0)
		return fd;
	n->vhost_fd = fd;
	if (!(n->vhost_features & VIRTIO_F_BIT(VIRTIO_F_VERSION_1)))
		return set_why(why, len, "vhost=on: this kernel's vhost-net has no VIRTIO_F_VERSION_1");
	n->ops.features &= ~(NET_RING_FEATURES & ~n->vhost_features);
	n->ops.own_notify = true;        /* vhost takes the kicks */
	n->ops.external_used_irq = true; /* and signals the irqfd */
	return 0;
}

/* What the data path needs once the transport exists. */
static int wire_data_path(struct virtio_net *n, struct vm *vm, char *why,
			  size_t len)
{
	int err;

	if (n->vhost_fd >= 0)
		return n->vd->irqfd ? 0 :
		       set_why(why, len, "vhost=on needs an irqfd for the device's interrupt, and this VM has none");
	err = vm_watch_fd(vm, n->tap_fd, net_rx_ready, n);
	return err ? set_why(why, len, "cannot watch TAP %s: %s", n->ifname, strerror(-err)) : 0;
}

struct device *virtio_net_create_opts(struct vm *vm, uint64_t base, uint32_t gsi,
				      const struct virtio_net_options *o,
				      char *why, size_t why_len)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	const char *tap = o ? o->tap : NULL;

	if (!n) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	n->tap_fd = n->vhost_fd = -1;
	n->ops = net_ops;
	if (!tap || open_tap(n, tap, why, why_len) ||
	    (o->vhost && use_vhost(n, why, why_len))) {
		if (!tap)
			set_why(why, why_len, "no TAP interface given");
		net_free(n);
		return NULL;
	}
	if (o->mac)
		memcpy(n->config, o->mac, 6);
	else
		default_mac(tap, n->config);
	n->config[NET_CFG_STATUS] = VIRTIO_NET_S_LINK_UP;
	n->vd = virtio_mmio_create(vm, base, gsi, &n->ops, n, why, why_len);
	if (!n->vd) {
		net_free(n);
		return NULL;
	}
	if (wire_data_path(n, vm, why, why_len)) {
		virtio_mmio_free(n->vd);
		net_free(n);
		return NULL;
	}
	vm_info(vm, "virtio-net at 0x%llx (GSI %u): TAP %s, MAC %02x:%02x:%02x:%02x:%02x:%02x%s",
		(unsigned long long)base, gsi, tap, n->config[0], n->config[1],
		n->config[2], n->config[3], n->config[4], n->config[5],
		n->vhost_fd >= 0 ? " via vhost-net" : "");
	return &n->vd->dev;
}

struct device *virtio_net_create(struct vm *vm, uint64_t base, uint32_t gsi,
				 const char *tap, const uint8_t mac[6],
				 char *why, size_t why_len)
{
	struct virtio_net_options o = { .tap = tap, .mac = mac };

	return virtio_net_create_opts(vm, base, gsi, &o, why, why_len);
}
