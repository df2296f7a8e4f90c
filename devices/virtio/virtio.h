/* SPDX-License-Identifier: MIT */
/*
 * Virtio 1.x inside the library: the split-virtqueue walker (queue.c), the
 * transports (what they share in transport.c; the virtio-mmio version 2
 * register block in mmio.c, the virtio-pci modern function in pci.c) and
 * the interface between the transport and the device models (blk, net,
 * console, rng, vsock). Not installed.
 *
 * The guest is the attacker here. Every ring and buffer address goes through
 * vm_gpa_to_hva() with its full length; descriptor fields are copied out of
 * guest memory once and only the copy is checked and used.
 *
 * Threads: MMIO register accesses come from vCPU threads (any number at
 * once) and take the transport lock. Queue processing runs on the VM's I/O
 * thread (or a device worker) under the queue's own lock, and never takes the
 * transport lock: what it needs from the transport (live, needs-reset, the
 * interrupt status) is atomic. Reset takes the transport lock, then each
 * queue lock, so it waits for a request in flight to finish.
 */
#ifndef VIBEVMM_DEVICES_VIRTIO_H
#define VIBEVMM_DEVICES_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "devices.h"

struct vm;

/* ---- spec constants (virtio 1.2) ---- */

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_F_BIT(n) (1ULL << (n))
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

#define VIRTIO_INT_USED 0x1   /* InterruptStatus: used buffer notification */
#define VIRTIO_INT_CONFIG 0x2 /* InterruptStatus: configuration change */

/* ---- split virtqueue (queue.c) ---- */

/* Largest queue the walker accepts; devices offer at most this. */
#define VIRTQ_MAX_SIZE 1024
/* Sum of all buffer lengths of one chain. Far above any real request
 * (Linux sends at most a few MiB), low enough to bound the work a single
 * request can cause. */
#define VIRTQ_MAX_CHAIN_BYTES (64ULL << 20)

/* Guest ring layout, all little-endian. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* num entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* num entries, then avail_event */
};

/* Bytes each part takes for a queue of `num` entries (event fields included). */
#define VIRTQ_DESC_BYTES(num) (16ULL * (num))
#define VIRTQ_AVAIL_BYTES(num) (6ULL + 2ULL * (num))
#define VIRTQ_USED_BYTES(num) (6ULL + 8ULL * (num))

/*
 * One queue as the device sees it. Host pointers are translated once, with
 * the whole ring length, when the driver makes the queue ready; guest RAM
 * never moves while the VM exists. The owner serializes all calls on one
 * queue (the transport's queue lock).
 */
struct virtq {
	struct vm *vm;
	uint16_t num;             /* entries, a power of two */
	bool event_idx;           /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;            /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t last_avail;      /* next avail entry to take */
	uint16_t avail_seen;      /* avail->idx at the last pop (may be ahead of
				   * last_avail when a device put chains back) */
	uint16_t used_idx;        /* our copy of used->idx */
	uint16_t signalled_used;  /* used_idx when we last decided on an interrupt */
	bool signalled_valid;
};

/* A popped chain: readable segments first, then writable ones. */
struct virtq_elem {
	uint16_t head;            /* goes back in the used ring */
	unsigned nr_out, nr_in;   /* iov[0..nr_out) readable, then nr_in writable */
	uint64_t out_len, in_len; /* bytes in each part */
	struct iovec *iov;        /* caller's array ... */
	unsigned max_iov;         /* ... of this many entries */
};

/*
 * Set up `vq` over the rings at the given guest addresses. -EINVAL: num not a
 * power of two in 1..VIRTQ_MAX_SIZE, or a misaligned ring (desc 16, avail 2,
 * used 4 bytes); -EFAULT: a ring is not inside guest RAM.
 */
int virtq_init(struct virtq *vq, struct vm *vm, uint16_t num, uint64_t desc,
	       uint64_t avail, uint64_t used, uint64_t features);

/*
 * Take the next available chain. 1: got one in *e; 0: the ring is empty;
 * negative: the driver broke the ring and the device needs a reset:
 * -E2BIG (avail index more than num ahead, chain too long or too large),
 * -EINVAL (index out of range, bad flags, writable before readable, bad
 * indirect table), -ELOOP (the chain does not end), -EFAULT (a buffer is
 * not guest RAM). Nothing is consumed on error.
 */
int virtq_pop(struct virtq *vq, struct virtq_elem *e);

/* Give back the chain just popped (e.g. no input to put in it after all). */
void virtq_unpop(struct virtq *vq);

/* Return a chain to the driver with `len` bytes written into it. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);

/*
 * The same in two steps, for several chains the driver must see together
 * (a frame over several receive buffers) or to publish a batch at once:
 * virtq_fill writes used element `ahead` places past the published index
 * (ahead < num), virtq_flush publishes the next `count` of them.
 */
void virtq_fill(struct virtq *vq, unsigned ahead, uint16_t head, uint32_t len);
void virtq_flush(struct virtq *vq, unsigned count);

/*
 * Whether the driver wants an interrupt for what was pushed since the last
 * call (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
 */
bool virtq_need_interrupt(struct virtq *vq);

/* Ask the driver not to notify while we are busy with the queue anyway. */
void virtq_disable_notify(struct virtq *vq);

/*
 * Ask for a notification on the next buffer beyond those the last pop saw;
 * returns true when buffers arrived meanwhile (then process them: no
 * notification will come for them). Chains a device took and put back
 * (virtio-net waiting for enough buffers for one frame) do not count as
 * new: the driver, which published them already, would not notify again.
 */
bool virtq_enable_notify(struct virtq *vq);

/* Copy between an iovec array and a flat buffer, starting `skip` bytes in.
 * Return the bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf,
		  size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip,
		    const void *buf, size_t len);

/*
 * Point `out` (max_out entries) at bytes [skip, skip+len) of `iov`. Returns
 * the entries used; *got receives the bytes covered (less than len when iov
 * is shorter or max_out too small).
 */
unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip,
		   size_t len, struct iovec *out, unsigned max_out,
		   size_t *got);

/* ---- transport <-> device interface (transport.c) ---- */

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;        /* "virtio-blk", ... (logs, device name) */
	uint32_t device_id;      /* VIRTIO_ID_* */
	uint64_t features;       /* offered; the transport adds VERSION_1 */
	unsigned num_queues;
	uint16_t queue_max;      /* QueueNumMax of every queue */
	uint32_t config_len;     /* bytes of device config space from 0x100 */
	/* Device thread polls the queue eventfds itself (virtio_queue_fd());
	 * otherwise the VM's I/O thread watches them and calls queue_notify. */
	bool own_notify;
	/* The same for some queues only (bit i: queue i), the others going
	 * to queue_notify on the I/O thread: vhost-net's rings, its control
	 * queue staying here. */
	uint64_t own_notify_mask;
	/* Used-buffer interrupts are raised outside the library (vhost
	 * signals the irqfd itself), so InterruptStatus cannot know of them:
	 * it shows VIRTIO_INT_USED at all times while the device is live, and
	 * the driver looks at its rings on every interrupt. */
	bool external_used_irq;
	/* Config space access within config_len; reads fill `data`. Called
	 * with the transport lock held. NULL: reads as zero, writes ignored. */
	void (*config_read)(struct virtio_dev *vd, uint32_t off, void *data,
			    uint32_t size);
	void (*config_write)(struct virtio_dev *vd, uint32_t off,
			     const void *data, uint32_t size);
	/* The driver notified queue `q` (I/O thread, unless own_notify). */
	void (*queue_notify)(struct virtio_dev *vd, unsigned q);
	/* DRIVER_OK was set (vCPU thread, transport lock held). */
	void (*activate)(struct virtio_dev *vd);
	/* Device reset, after every queue has stopped (vCPU thread,
	 * transport lock held). */
	void (*reset)(struct virtio_dev *vd);
	/* Free the device state: join its threads, close its fds. The
	 * transport frees itself afterwards. */
	void (*destroy)(struct virtio_dev *vd);
	/* Optional: the device's counters (struct device's metrics). */
	void (*metrics)(struct virtio_dev *vd, struct device_metrics *m);
	/*
	 * Snapshots (see struct device; mmio.c saves and loads the transport
	 * -- virtio-pci devices cannot be saved: a VM with PCI is refused --
	 * and calls these for the device's own part, which follows the
	 * transport's in the payload). Both or neither: a device without
	 * them has no state of its own (an empty part).
	 * save: append it (transport lock held, VM paused, device quiesced);
	 * 0 or -errno (-EOPNOTSUPP: this configuration cannot be restored).
	 * load: read the part from `in` and check it against this device and
	 * the driver features being restored (drv_features); with apply
	 * false that is all (-EINVAL for a bad part, nothing changed). With
	 * apply true (only after a check of the same bytes passed; transport
	 * lock held, the transport's registers and queues in place, before
	 * the device goes live as at DRIVER_OK) also put it in place: 0, or
	 * -errno when the host refused a step.
	 */
	int (*save)(struct virtio_dev *vd, struct snap_buf *out);
	int (*load)(struct virtio_dev *vd, struct snap_cursor *in, uint64_t drv_features,
		    bool apply);
	/* struct device's quiesce and unquiesce, for a device with a thread
	 * of its own (vm_pause quiets the vCPUs and the I/O thread, not it). */
	int (*quiesce)(struct virtio_dev *vd);
	void (*unquiesce)(struct virtio_dev *vd);
};

/* A counter with one writing thread (a device's worker or the I/O
 * thread) and readers anywhere: a relaxed load and store, no locked
 * instruction on the data path. */
static inline void virtio_count(atomic_uint_least64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void virtio_metric(struct device_metrics *m, const char *name,
				 atomic_uint_least64_t *c)
{
	if (m->nr < DEVICE_METRICS_MAX) {
		m->counter[m->nr].name = name;
		m->counter[m->nr].value = atomic_load_explicit(c, memory_order_relaxed);
		m->nr++;
	}
}

struct virtio_queue {
	pthread_mutex_t lock;  /* processing; held across a request */
	struct virtq vq;
	bool ready;            /* vq valid: the driver set QueueReady */
	int notify_fd;         /* eventfd: QueueNotify for this queue */
	struct virtio_dev *vd;
	unsigned index;
	/* Register values the driver staged before QueueReady. */
	uint16_t num;
	uint64_t desc, driver, device;
};

struct virtio_transport;

struct virtio_dev {
	struct device dev;                 /* what gets registered */
	struct vm *vm;
	const struct virtio_dev_ops *ops;
	void *priv;                        /* the device model's state */
	const struct virtio_transport *transport; /* transport.h */
	void *tpriv;                       /* the transport's own state */
	char where[40];                    /* for logs: "0x... (GSI n)",
					    * "PCI 00:01.0" */
	/* virtio-mmio's one interrupt (virtio-pci: -1 and false; it has an
	 * eventfd per MSI-X vector instead). */
	uint32_t gsi;
	int irq_fd;                        /* irqfd eventfd, or -1 */
	bool irqfd;                        /* irq_fd is wired to the gsi */

	pthread_mutex_t lock;              /* registers below */
	uint32_t status;                   /* without NEEDS_RESET */
	uint32_t dev_features_sel, drv_features_sel;
	uint64_t drv_features;
	uint32_t queue_sel;
	uint32_t config_generation;

	atomic_uint isr;                   /* VIRTIO_INT_* pending */
	atomic_bool live;                  /* DRIVER_OK and not failed */
	atomic_bool needs_reset;           /* a ring was broken */
	struct virtio_queue *queues;
	unsigned nr_queues;                /* ops->num_queues; kept here as
					    * ops may live in the freed device */
};

/*
 * Create the transport for a device model in `slot` (include/devices.h):
 * a virtio-mmio window and interrupt, or a virtio-pci function on a PCI
 * bus. Eventfds per queue (ioeventfds on the notify address, or the
 * register write fallback), interrupts (irqfds), and the I/O thread's
 * watches. Call before vm_start(). Returns NULL with a one-line reason in
 * why on failure; the device state `priv` is then untouched (the caller
 * frees it).
 */
struct virtio_dev *virtio_transport_create(struct vm *vm, const struct virtio_slot *slot,
					   const struct virtio_dev_ops *ops, void *priv,
					   char *why, size_t why_len);

/* Free a transport that was never registered, without calling ops->destroy. */
void virtio_transport_free(struct virtio_dev *vd);

/* The two transports behind virtio_transport_create: virtio-mmio at MMIO
 * `base` (one 4 KiB window) with interrupt `gsi` (mmio.c), and virtio-pci
 * as a function in the next free slot of `bus`, interrupts through MSI-X
 * only (pci.c; needs irqfds). */
struct virtio_dev *virtio_mmio_create(struct vm *vm, uint64_t base,
				      uint32_t gsi,
				      const struct virtio_dev_ops *ops,
				      void *priv, char *why, size_t why_len);
struct pci_bus;
struct virtio_dev *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
				     const struct virtio_dev_ops *ops, void *priv,
				     char *why, size_t why_len);

/* For device models: */

/* True while the device may process queues (DRIVER_OK, not failed/reset). */
bool virtio_live(struct virtio_dev *vd);

/* The queue, locked, when it can be processed now; NULL otherwise (unlocked). */
struct virtio_queue *virtio_queue_get(struct virtio_dev *vd, unsigned q);
void virtio_queue_put(struct virtio_queue *vq);

/*
 * Next chain of a held queue: 1 and *e filled, or 0 when there is none (the
 * driver's notifications are then re-armed) or the device stopped or the
 * ring is broken (then DEVICE_NEEDS_RESET is already set).
 */
int virtio_queue_pop(struct virtio_queue *q, struct virtq_elem *e);

/* The queue, locked, if it is ready and the device live, without touching
 * its notifications: for completing requests out of order. NULL otherwise. */
struct virtio_queue *virtio_queue_hold(struct virtio_dev *vd, unsigned q);

/* The eventfd the driver's notifications for queue q arrive on. */
int virtio_queue_fd(struct virtio_dev *vd, unsigned q);

/* An eventfd that, signalled, raises queue q's used-buffer interrupt as
 * the transport delivers it (virtio-mmio: the device's irqfd; virtio-pci:
 * one the I/O thread turns into the queue's MSI-X vector, masks and all),
 * for a data path outside the library (vhost); -1 when there is none. */
int virtio_queue_call_fd(struct virtio_dev *vd, unsigned q);

/* Process the queue again later, as if the driver had notified it (e.g.
 * after stopping at a batch limit with notifications disabled). */
void virtio_queue_kick(struct virtio_queue *q);

/* Raise the used-buffer interrupt if the driver wants one for queue vq
 * (call with the queue held, after pushing). */
void virtio_queue_interrupt(struct virtio_queue *q);

/*
 * The driver broke a ring (virtq_pop < 0 or an unusable request): set
 * DEVICE_NEEDS_RESET, stop all processing and tell the driver through a
 * configuration change interrupt. Safe from any thread.
 */
void virtio_set_needs_reset(struct virtio_dev *vd, const char *why, int err);

/* Raise an interrupt with `bits` (VIRTIO_INT_*) in InterruptStatus. */
void virtio_raise_irq(struct virtio_dev *vd, unsigned bits);

/* The device's configuration space changes: update() runs with the
 * registers' lock held (no driver read sees half of it), the generation
 * moves on, and a live driver gets a configuration-change interrupt. */
void virtio_config_changed(struct virtio_dev *vd,
			   void (*update)(struct virtio_dev *vd, void *arg), void *arg);

/* ---- virtio-blk requests (blk_req.c): pure, fuzzable ---- */

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_HDR_BYTES 16
/* DISCARD / WRITE_ZEROES: 16-byte segments (le64 sector, le32 num_sectors,
 * le32 flags) after the header; the limits the device announces. */
#define VIRTIO_BLK_SEG_BYTES 16
#define VIRTIO_BLK_WZ_UNMAP 1u
#define VIRTIO_BLK_MAX_DISCARD_SEG 16
#define VIRTIO_BLK_MAX_WZ_SEG 1
#define VIRTIO_BLK_MAX_DWZ_SECTORS (1u << 21)   /* 1 GiB per segment */

struct virtio_blk_req {
	uint32_t type;
	uint64_t sector;
	struct iovec *data;   /* the data segments (caller's array) */
	unsigned nr_data;
	uint64_t data_len;
	uint8_t *status;      /* the status byte in guest memory */
	bool bad_header;      /* header shorter than 16 bytes: answer IOERR */
};

/*
 * Split a request chain (iov: nr_out readable then nr_in writable segments)
 * into header, data and status byte. Data is the readable part after the
 * header for writes, discards and write-zeroes, the writable part before the
 * status byte otherwise.
 * 0 on success (r->bad_header may still be set); -EINVAL when there is no
 * writable status byte, so the request cannot be answered at all; -E2BIG
 * when `data` (max_data entries) is too small.
 */
int virtio_blk_parse_request(const struct iovec *iov, unsigned nr_out,
			     unsigned nr_in, struct iovec *data,
			     unsigned max_data, struct virtio_blk_req *r);

/*
 * The host I/O calls of a virtio-blk backend, replaceable so that tests can
 * inject faults and watch the order of calls. A NULL member means the real
 * system call.
 */
struct virtio_blk_io {
	/* fdatasync(fd): 0, or -1 with errno set */
	int (*sync)(void *opaque, int fd);
	/* pwritev2(fd, iov, cnt, off, flags), flags 0 or RWF_DSYNC: bytes
	 * written, or -1 with errno set */
	ssize_t (*pwritev2)(void *opaque, int fd, const struct iovec *iov,
			    int cnt, off_t off, int flags);
	/* io_uring path, where the ring does a FLUSH's fdatasync: called on
	 * the worker with the ring's result (0 or -errno) before the flush
	 * completes; returns the result to use. */
	int (*flush_done)(void *opaque, int res);
	/* io_uring path: an fd (an eventfd) the ring reads 8 bytes from
	 * before each fdatasync it starts, so that a test holds a flush back
	 * while other requests go on; -1: none. Called on the worker. Release
	 * it before a reset or destroy: both wait for the flush. */
	int (*flush_gate)(void *opaque);
	void *opaque;
};

struct virtio_blk_backend {
	int fd;
	/* cache=none: fd is O_DIRECT and takes only requests whose file
	 * offset and segment lengths are multiples of dio_off_align and whose
	 * buffers are dio_mem_align-aligned (both powers of two); the rest go
	 * to buf_fd, the same file through the page cache. dio_off_align 0:
	 * fd takes everything (buf_fd unused). */
	int buf_fd;
	uint32_t dio_mem_align, dio_off_align;
	uint64_t capacity;    /* 512-byte sectors */
	bool readonly;
	/* Use fallocate for DISCARD (punch a hole) and WRITE_ZEROES (zero
	 * range, or a hole with unmap); without it, or when the file system
	 * refuses, discard does nothing and write-zeroes writes zeroes. */
	bool punch_holes;
	/* The driver did not negotiate VIRTIO_BLK_F_FLUSH, so it cannot ask
	 * for durability: every request that changes data completes only
	 * once the change is on stable storage (writes with RWF_DSYNC,
	 * discard and write-zeroes followed by a sync). */
	bool write_through;
	/* errno of the first failed sync (FLUSH, or a write-through write)
	 * since the device was reset; 0: none. Linux reports a writeback
	 * error to one fdatasync only, and the next one succeeds although
	 * the data never reached the disk. So the failure is kept: every
	 * later FLUSH fails, and so does every request that changes data
	 * (OUT, DISCARD, WRITE_ZEROES), until the driver resets the device.
	 * Reads and GET_ID go on. */
	int sync_error;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_io io;
};

/*
 * Carry out a parsed request against the backend. Returns the status byte
 * (VIRTIO_BLK_S_*) and the bytes written into the guest's data buffers in
 * *written; may set b->sync_error. Synchronous: a FLUSH (and, write-through,
 * any data change) returns only after the data is durable, so the caller
 * completes the request (status, used ring) strictly afterwards.
 */
uint8_t virtio_blk_execute(struct virtio_blk_backend *b,
			   const struct virtio_blk_req *r, uint32_t *written);

/* Whether O_DIRECT takes a transfer of `iov` at file offset `off` (always
 * true without cache=none). */
bool virtio_blk_direct_ok(const struct virtio_blk_backend *b,
			  const struct iovec *iov, unsigned n, uint64_t off);

/*
 * Asynchronous IN/OUT (blk.c's io_uring path) in two halves. rw_check: the
 * status to answer at once (IOERR: misaligned, beyond the disk, a write on a
 * read-only disk or after a failed sync), or S_OK: submit the transfer.
 * rw_finish: the status once the kernel answered `res` (bytes, or -errno)
 * for the transfer of `iov` (n entries, changed) at byte `off`; a short
 * transfer is finished synchronously, a failed write-through write sets
 * sync_error, a write still in flight when a sync failed fails too;
 * *written: bytes read into the guest's buffers.
 */
uint8_t virtio_blk_rw_check(const struct virtio_blk_backend *b,
			    const struct virtio_blk_req *r);
uint8_t virtio_blk_rw_finish(struct virtio_blk_backend *b, bool write,
			     struct iovec *iov, unsigned n, uint64_t off,
			     int64_t res, uint32_t *written);

/*
 * FLUSH in two halves (blk.c's io_uring path; virtio_blk_execute uses them
 * too). flush_now: true when the flush is answered at once with *st (OK on a
 * read-only disk, IOERR after a failed sync); false: an fdatasync is due.
 * flush_finish: the status once that fdatasync returned `res` (0 or
 * -errno); a failure sets sync_error, and a success does not hide one that
 * was set meanwhile (another sync may have taken the kernel's one report).
 */
bool virtio_blk_flush_now(const struct virtio_blk_backend *b, uint8_t *st);
uint8_t virtio_blk_flush_finish(struct virtio_blk_backend *b, int res);

/* Replace the host I/O calls of a virtio-blk device (tests: fault
 * injection, call order). Call before the driver is up. */
void virtio_blk_set_io(struct device *dev, const struct virtio_blk_io *io);

/* ---- virtio-net headers (net.c) ---- */

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_HDR_LEN 12 /* virtio_net_hdr_v1, num_buffers included */

/*
 * Check (and tidy) a header against the negotiated features, in place: a
 * guest's before its frame goes to the tap (only checksum/TSO offloads the
 * driver took; num_buffers zeroed), the tap's before the frame goes to the
 * guest (only GUEST_* offloads it took; num_buffers 1, which
 * virtio_net_rx_place changes when the frame takes more buffers). 0, or -EINVAL: drop
 * the frame.
 */
int virtio_net_check_tx_hdr(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint64_t features);
int virtio_net_check_rx_hdr(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint64_t features);

/*
 * Put one received frame (its checked header first, len bytes in all) into
 * the receive queue (net_rx.c): one chain, or with `mrg` (MRG_RXBUF) as many
 * as it takes, num_buffers set in the first and all published at once. iov
 * (max_iov entries; with mrg half for the first chain, half for the others)
 * is scratch space. Returns the chains used; 0 when the ring has too little
 * space for now (nothing consumed: try again on the next notify);
 * -EMSGSIZE when this frame cannot be placed (drop it; nothing consumed);
 * another -errno when the driver broke the ring (virtq_pop's errors, or
 * -EINVAL for a mergeable buffer shorter than the header): reset it.
 */
int virtio_net_rx_place(struct virtq *vq, bool mrg, uint8_t *frame, size_t len,
			struct iovec *iov, unsigned max_iov);

/*
 * Answer one command of the control queue (net_ctrl.c): pop a chain, run
 * it, write its ack byte, push it. A valid VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
 * (MQ in `features`, 1 <= pairs <= max_pairs) calls set(opaque, pairs),
 * whose 0 or -errno makes the ack OK or ERR; anything else is ERR. iov
 * (max_iov entries) is scratch space. 1: a command answered; 0: the queue
 * is empty; -errno: the driver broke the ring (virtq_pop's errors).
 */
typedef int (*virtio_net_set_pairs_fn)(void *opaque, uint16_t pairs);
int virtio_net_ctrl_one(struct virtq *vq, uint64_t features, uint16_t max_pairs,
			virtio_net_set_pairs_fn set, void *opaque,
			struct iovec *iov, unsigned max_iov);

/*
 * The vhost-net data path (net_vhost.c). vhost_net_open: open
 * /dev/vhost-net, become its owner, read its features; the fd, or -errno
 * with a one-line reason in why. vhost_net_start (at DRIVER_OK, every queue
 * ready): features, memory table, the rings of queues first and first + 1
 * (one pair), kick = the queue's notify eventfd, call = virtio_queue_call_fd, the TAP
 * as backend (unless tap_fd is -1); 0, or -errno with *step naming the
 * call that failed; each ring starts at its queue's vq.last_avail (0 after
 * a reset, a restored position after a snapshot load).
 * vhost_net_stop: take the backend away (at reset). vhost_net_ring_base:
 * ring i's next avail entry (VHOST_GET_VRING_BASE; with no backend, so
 * that it stands still).
 */
#define VHOST_NET_RINGS 2 /* receive, transmit: one queue pair per vhost fd */
int vhost_net_open(uint64_t *features, char *why, size_t why_len);
int vhost_net_start(int fd, struct virtio_dev *vd, unsigned first, int tap_fd,
		    uint64_t vhost_features, const char **step);
void vhost_net_stop(int fd);
int vhost_net_ring_base(int fd, unsigned i, uint16_t *base);
/* The TAP queue (tap_fd) behind both rings of a vhost fd, or none (-1). */
int vhost_net_set_backend(int fd, int tap_fd);

/* ---- virtio-rng (rng.c) ---- */

/* Fill `n` writable segments with random bytes, at most `max`; returns the
 * bytes written. */
uint32_t virtio_rng_fill(const struct iovec *iov, unsigned n, uint32_t max);

#endif
