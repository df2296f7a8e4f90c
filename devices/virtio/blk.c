/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk on a raw image file: one or more request queues (VIRTIO_BLK_F_MQ,
 * one per vCPU by default), served by a worker thread per disk that waits
 * on the queues' eventfds itself, so disk I/O (fdatasync included) never
 * stalls a vCPU or the VM's I/O thread.
 *
 * Reads, writes and flushes go to io_uring (blk_uring.c) with up to
 * BLK_MAX_INFLIGHT in flight; the worker learns of completions through an
 * eventfd registered with the ring and answers a whole batch before it
 * raises one interrupt per queue (which EVENT_IDX may suppress). Everything
 * else (DISCARD, WRITE_ZEROES, GET_ID, bad requests), and everything when
 * io_uring is unavailable or aio=sync, runs synchronously on the worker,
 * with the queue held. Either way a FLUSH covers every write completed
 * before it was taken, as the spec asks (5.2.6), since a write completes
 * only once the kernel returned it and the flush's fdatasync starts later.
 *
 * Durability (see blk_req.c): a FLUSH completes after fdatasync; a failed
 * sync fails every later FLUSH and write until the driver resets the
 * device; a driver without FLUSH gets a write-through device. The backend
 * state behind this changes only with b->lock held, and a reset waits until
 * no request is in flight.
 *
 * Snapshots: quiesce holds the worker (it answers what it took, takes
 * nothing more, and says so) until unquiesce; requests the guest made
 * available meanwhile stay in the avail ring for the saved last_avail to
 * hand to the restored device. Its own part of the payload (after the
 * transport's, see mmio.c): u8 config[60] (must be this device's: the same
 * image size and queues), u8 write_through (0/1), u32 sync_error (an errno,
 * 0-4095: a failed sync still fails flushes and writes after a restore,
 * until the driver resets the device).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sandbox.h"
#include "core/snapfile.h"
#include "devices/virtio/blk.h"
#include "utils.h"
#include "vm.h"

/* Largest request = seg_max * size_max = 63.5 MiB: under the walker's
 * 64 MiB chain bound, so no request the guest is allowed to make is
 * refused as a broken chain. Two descriptors go to header and status. */
#define BLK_SEG_MAX (BLK_QUEUE_MAX - 2)
#define BLK_SIZE_MAX (256u << 10)

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* struct virtio_blk_config offsets (5.2.4) */
#define CFG_CAPACITY 0
#define CFG_SIZE_MAX 8
#define CFG_SEG_MAX 12
#define CFG_BLK_SIZE 20
#define CFG_NUM_QUEUES 34
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG 40
#define CFG_DISCARD_ALIGNMENT 44
#define CFG_MAX_WZ_SECTORS 48
#define CFG_MAX_WZ_SEG 52
#define CFG_WZ_MAY_UNMAP 56
#define CFG_LEN BLK_CFG_LEN

static void put_le16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v)); /* little-endian host (see queue.c) */
}

static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* ---- slots ---- */

static struct blk_slot *slot_get(struct virtio_blk *b)
{
	struct blk_slot *s;

	if (b->free_slot < 0)
		return NULL;
	s = &b->slots[b->free_slot];
	b->free_slot = s->next_free;
	return s;
}

static void slot_put(struct virtio_blk *b, struct blk_slot *s)
{
	free(s->bounce);
	s->bounce = NULL;
	s->next_free = b->free_slot;
	b->free_slot = (int)(s - b->slots);
}

/* Log the moment a sync first fails (the caller holds b->lock). */
void blk_warn_sync_failure(struct virtio_blk *b, bool failed_before)
{
	if (!failed_before && b->be.sync_error)
		vm_warn(b->vd->vm, "virtio-blk %s: cannot make writes durable (%s): "
			"failing flushes and writes until the guest resets the device",
			b->path, strerror(b->be.sync_error));
}

/* Count an answered request by type; failures (any status but OK) apart. */
static void count_request(struct virtio_blk *b, const struct virtio_blk_req *r,
			  uint8_t status)
{
	if (status != VIRTIO_BLK_S_OK || r->bad_header) {
		virtio_count(&b->counters.fail_count, 1);
		return;
	}
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		virtio_count(&b->counters.read_count, 1);
		virtio_count(&b->counters.read_bytes, r->data_len);
		break;
	case VIRTIO_BLK_T_OUT:
		virtio_count(&b->counters.write_count, 1);
		virtio_count(&b->counters.write_bytes, r->data_len);
		break;
	case VIRTIO_BLK_T_FLUSH:
		virtio_count(&b->counters.flush_count, 1);
		break;
	case VIRTIO_BLK_T_DISCARD:
		virtio_count(&b->counters.discard_count, 1);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		virtio_count(&b->counters.write_zeroes_count, 1);
		break;
	default:
		break;
	}
}

/* Any thread: Firecracker's names where it has the counter. */
static void blk_metrics(struct virtio_dev *vd, struct device_metrics *m)
{
	struct virtio_blk *b = vd->priv;

	m->group = "block";
	virtio_metric(m, "read_count", &b->counters.read_count);
	virtio_metric(m, "read_bytes", &b->counters.read_bytes);
	virtio_metric(m, "write_count", &b->counters.write_count);
	virtio_metric(m, "write_bytes", &b->counters.write_bytes);
	virtio_metric(m, "flush_count", &b->counters.flush_count);
	virtio_metric(m, "discard_count", &b->counters.discard_count);
	virtio_metric(m, "write_zeroes_count", &b->counters.write_zeroes_count);
	virtio_metric(m, "fail_count", &b->counters.fail_count);
}

/* Put a finished request in its queue's used ring; the interrupt follows
 * for the whole batch (signal_touched). Worker thread. */
void blk_complete(struct virtio_blk *b, struct blk_slot *s, uint8_t status,
		  uint32_t written)
{
	struct virtio_queue *q;

	count_request(b, &s->r, status);
	/* The status byte and the used entry only while the queue still
	 * belongs to this driver (a reset waits for us, so it does). */
	q = virtio_queue_hold(b->vd, s->queue);
	if (q) {
		*s->r.status = status;
		virtq_push(&q->vq, s->head, written + 1);
		virtio_queue_put(q);
		b->touched |= 1ULL << s->queue;
	}
	slot_put(b, s);
	pthread_mutex_lock(&b->lock);
	if (!--b->inflight)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
}

/* One interrupt per queue that got used entries since the last call. */
static void signal_touched(struct virtio_blk *b)
{
	while (b->touched) {
		unsigned i = (unsigned)__builtin_ctzll(b->touched);
		struct virtio_queue *q = virtio_queue_hold(b->vd, i);

		b->touched &= b->touched - 1;
		if (q) {
			virtio_queue_interrupt(q);
			virtio_queue_put(q);
		}
	}
}

/* ---- requests ---- */

static bool is_rw(const struct virtio_blk_req *r)
{
	return !r->bad_header &&
	       (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT);
}

static bool is_flush(const struct virtio_blk_req *r)
{
	return !r->bad_header && r->type == VIRTIO_BLK_T_FLUSH;
}

/* Start one parsed request: on the ring, or carried out now. */
static void start_request(struct virtio_blk *b, struct blk_slot *s)
{
	uint32_t written = 0;
	bool failed_before;
	uint8_t st;

	pthread_mutex_lock(&b->lock);
	b->inflight++; /* until blk_complete: a reset waits for it */
	failed_before = b->be.sync_error != 0;
	if (b->uring && is_flush(&s->r)) {
		if (!virtio_blk_flush_now(&b->be, &st)) {
			pthread_mutex_unlock(&b->lock);
			blk_uring_flush(b, s);
			return;
		}
	} else if (b->uring && is_rw(&s->r) && s->r.data_len) {
		st = virtio_blk_rw_check(&b->be, &s->r);
		if (st == VIRTIO_BLK_S_OK && blk_uring_queue(b, s)) {
			pthread_mutex_unlock(&b->lock);
			return;
		}
		if (st == VIRTIO_BLK_S_OK)
			st = virtio_blk_execute(&b->be, &s->r, &written);
	} else {
		st = virtio_blk_execute(&b->be, &s->r, &written);
	}
	blk_warn_sync_failure(b, failed_before);
	pthread_mutex_unlock(&b->lock);
	/* Completed only now: after the data moved and, for a flush,
	 * after fdatasync returned. */
	blk_complete(b, s, st, written);
}

/* Take what queue qi offers while there are free slots. */
static void process_queue(struct virtio_blk *b, unsigned qi)
{
	struct virtio_queue *q = virtio_queue_get(b->vd, qi);

	b->starved &= ~(1ULL << qi);
	if (!q)
		return;
	for (;;) {
		struct blk_slot *s = slot_get(b);
		struct virtq_elem e;
		int err;

		if (!s) {
			b->starved |= 1ULL << qi; /* notifications stay off */
			break;
		}
		e = (struct virtq_elem){ .iov = s->chain, .max_iov = BLK_QUEUE_MAX };
		if (!virtio_queue_pop(q, &e)) {
			slot_put(b, s);
			break;
		}
		err = virtio_blk_parse_request(e.iov, e.nr_out, e.nr_in, s->data,
					       BLK_QUEUE_MAX, &s->r);
		if (err) {
			slot_put(b, s);
			virtio_set_needs_reset(b->vd, "request without a status byte", err);
			break;
		}
		s->head = e.head;
		s->queue = (uint16_t)qi;
		/* blk_complete holds the queue itself. */
		virtio_queue_put(q);
		start_request(b, s);
		q = virtio_queue_get(b->vd, qi);
		if (!q)
			break;
	}
	if (q)
		virtio_queue_put(q);
}

static bool drain_fd(int fd)
{
	uint64_t count;

	return read(fd, &count, sizeof(count)) > 0;
}

/* The queues whose driver notified us, and those that waited for slots. */
static void serve_queues(struct virtio_blk *b)
{
	for (unsigned i = 0; i < b->opt.num_queues; i++) {
		bool kicked = b->fds[2 + i].revents && drain_fd(b->fds[2 + i].fd);

		if (kicked || (b->starved & (1ULL << i) && b->free_slot >= 0))
			process_queue(b, i);
	}
	if (b->uring)
		blk_uring_submit(b);
	signal_touched(b);
}

/* virtio_blk_replace_image's image becomes the disk's. Requests in flight
 * end on the image they started on; those taken later see the new one. */
static void take_next_image(struct virtio_blk *b)
{
	char *old_path = b->path;

	if (b->uring)
		blk_uring_reap(b, true);
	pthread_mutex_lock(&b->lock);
	blk_image_take(&b->be, b->next_image);
	b->path = b->next_path;
	b->next_path = old_path;
	b->be.sync_error = 0; /* a failed sync was the old image's */
	b->next_image = NULL;
	pthread_cond_broadcast(&b->swapped);
	pthread_mutex_unlock(&b->lock);
}

/* The stop eventfd: the end (blk_destroy), an image to take, or a hold
 * (quiesce) that starts or ends. */
static bool stop_or_swap(struct virtio_blk *b)
{
	bool stop, swap;

	drain_fd(b->stop_fd);
	pthread_mutex_lock(&b->lock);
	stop = b->stopping;
	swap = b->next_image != NULL;
	b->held = b->hold;
	pthread_mutex_unlock(&b->lock);
	if (!stop && swap)
		take_next_image(b);
	return stop;
}

/* Held: answer what was taken (completions still come in); once nothing
 * is in flight, tell quiesce. The queues' fds are not polled meanwhile, so
 * their notifications wait in the eventfds for unquiesce. */
static void park(struct virtio_blk *b)
{
	signal_touched(b);
	pthread_mutex_lock(&b->lock);
	if (!b->inflight && !b->parked) {
		b->parked = true;
		pthread_cond_broadcast(&b->idle);
	}
	pthread_mutex_unlock(&b->lock);
}

static void *blk_worker(void *arg)
{
	struct virtio_blk *b = arg;

	if (thread_enter(b->vd->vm, OS_THREAD_BLK, "blk-%.11s", b->be.serial))
		return NULL;
	for (;;) {
		nfds_t n = 2 + (b->held ? 0 : b->opt.num_queues);

		if (poll(b->fds, n, -1) < 0)
			continue; /* EINTR */
		if (b->fds[0].revents && stop_or_swap(b))
			break;
		if (b->uring && b->fds[1].revents && drain_fd(b->fds[1].fd))
			blk_uring_reap(b, false);
		if (b->held)
			park(b);
		else
			serve_queues(b); /* (stale revents: their drain_fd fails) */
	}
	/* Guest memory outlives us, but not by much: nothing may still be
	 * writing into it when the VM goes. */
	if (b->uring)
		blk_uring_reap(b, true);
	return NULL;
}

static void blk_config_read(struct virtio_dev *vd, uint32_t off, void *data,
			    uint32_t size)
{
	struct virtio_blk *b = vd->priv;

	memcpy(data, b->config + off, size); /* bounds checked by mmio.c */
}

static void blk_notify(struct virtio_dev *vd, unsigned q)
{
	/* own_notify: the worker polls the eventfd; nothing comes here. */
}

/* DRIVER_OK: the features are settled. A driver that took no FLUSH never
 * asks for durability, so every write must be durable by itself. */
static void blk_activate(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;
	bool flush = vd->drv_features & VIRTIO_F_BIT(VIRTIO_BLK_F_FLUSH);

	pthread_mutex_lock(&b->lock);
	b->be.write_through = !flush;
	if (!flush) /* (b->path changes with the lock held) */
		vm_info(vd->vm, "virtio-blk %s: driver without FLUSH: write-through", b->path);
	pthread_mutex_unlock(&b->lock);
}

/* A reset is the driver's acknowledgement of a failed sync: it starts
 * afresh. Write-through until the next driver's features are known (the
 * safe side for requests that race with DRIVER_OK). The queues are stopped
 * already; requests still in flight finish first (their answers are
 * dropped), so none writes into the driver's memory afterwards. */
static void blk_reset(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;

	pthread_mutex_lock(&b->lock);
	while (b->inflight)
		pthread_cond_wait(&b->idle, &b->lock);
	if (b->be.sync_error)
		vm_info(vd->vm, "virtio-blk %s: device reset: writes accepted again", b->path);
	b->be.sync_error = 0;
	b->be.write_through = true;
	pthread_mutex_unlock(&b->lock);
}

/* ---- snapshots ---- */

static void wake_worker(struct virtio_blk *b)
{
	uint64_t one = 1;

	if (write(b->stop_fd, &one, sizeof(one)) < 0)
		vm_err(b->vd->vm, "virtio-blk %s: cannot wake the worker: %s", b->path,
		       strerror(errno));
}

/* VM paused: wait until the worker holds, with nothing in flight (as
 * blk_reset waits for `inflight`). */
static int blk_quiesce(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;

	pthread_mutex_lock(&b->lock);
	b->hold = true;
	b->parked = false;
	pthread_mutex_unlock(&b->lock);
	wake_worker(b);
	pthread_mutex_lock(&b->lock);
	while (!b->parked)
		pthread_cond_wait(&b->idle, &b->lock);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void blk_unquiesce(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;

	pthread_mutex_lock(&b->lock);
	b->hold = false;
	b->parked = false;
	pthread_mutex_unlock(&b->lock);
	wake_worker(b);
}

/* Transport lock held (the config changes under it). */
static int blk_save(struct virtio_dev *vd, struct snap_buf *out)
{
	struct virtio_blk *b = vd->priv;

	snap_put_bytes(out, b->config, sizeof(b->config));
	pthread_mutex_lock(&b->lock);
	snap_put_u8(out, b->be.write_through);
	snap_put_u32(out, (uint32_t)b->be.sync_error);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

#define MAX_ERRNO 4095

/* write_through follows the features at DRIVER_OK (blk_activate, which
 * go_live calls again on a device that was live): any value is one a
 * device had before its driver came up. */
static int blk_load(struct virtio_dev *vd, struct snap_cursor *in, uint64_t drv_features,
		    bool apply)
{
	struct virtio_blk *b = vd->priv;
	uint8_t config[BLK_CFG_LEN], write_through;
	uint32_t sync_error;

	snap_get_bytes(in, config, sizeof(config));
	write_through = snap_get_u8(in);
	sync_error = snap_get_u32(in);
	if (in->bad || write_through > 1 || sync_error > MAX_ERRNO)
		return -EINVAL;
	if (memcmp(config, b->config, sizeof(config))) {
		vm_warn(vd->vm, "virtio-blk %s: the snapshot's disk has another size or "
			"other queues than this one", b->path);
		return -EINVAL;
	}
	if (!apply)
		return 0;
	pthread_mutex_lock(&b->lock);
	b->be.write_through = write_through;
	b->be.sync_error = (int)sync_error;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void blk_free(struct virtio_blk *b)
{
	if (b->uring)
		blk_uring_exit(b);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	blk_image_close(&b->be);
	pthread_cond_destroy(&b->swapped);
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->lock);
	free(b->fds);
	free(b->slots);
	free(b->path);
	free(b);
}

static void blk_destroy(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;
	uint64_t one = 1;

	if (b->worker_started) {
		pthread_mutex_lock(&b->lock);
		b->stopping = true;
		pthread_mutex_unlock(&b->lock);
		if (write(b->stop_fd, &one, sizeof(one)) < 0)
			vm_err(vd->vm, "virtio-blk: cannot stop the worker: %s", strerror(errno));
		pthread_join(b->worker, NULL);
	}
	blk_free(b);
}

static void fill_config(struct virtio_blk *b)
{
	put_le64(b->config + CFG_CAPACITY, b->be.capacity);
	put_le32(b->config + CFG_SIZE_MAX, BLK_SIZE_MAX);
	put_le32(b->config + CFG_SEG_MAX, BLK_SEG_MAX);
	put_le32(b->config + CFG_BLK_SIZE, VIRTIO_BLK_SECTOR);
	put_le16(b->config + CFG_NUM_QUEUES, (uint16_t)b->opt.num_queues);
	put_le32(b->config + CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_MAX_DWZ_SECTORS);
	put_le32(b->config + CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
	put_le32(b->config + CFG_DISCARD_ALIGNMENT, 4096 / VIRTIO_BLK_SECTOR);
	put_le32(b->config + CFG_MAX_WZ_SECTORS, VIRTIO_BLK_MAX_DWZ_SECTORS);
	put_le32(b->config + CFG_MAX_WZ_SEG, VIRTIO_BLK_MAX_WZ_SEG);
	b->config[CFG_WZ_MAY_UNMAP] = 1;
	b->ops = (struct virtio_dev_ops){
		.name = "virtio-blk", .device_id = VIRTIO_ID_BLOCK,
		.features = VIRTIO_F_BIT(VIRTIO_BLK_F_SIZE_MAX) |
			    VIRTIO_F_BIT(VIRTIO_BLK_F_SEG_MAX) |
			    VIRTIO_F_BIT(VIRTIO_BLK_F_BLK_SIZE) |
			    VIRTIO_F_BIT(VIRTIO_BLK_F_FLUSH) |
			    VIRTIO_F_BIT(VIRTIO_BLK_F_MQ) |
			    (b->be.readonly ? VIRTIO_F_BIT(VIRTIO_BLK_F_RO) :
			     VIRTIO_F_BIT(VIRTIO_BLK_F_DISCARD) |
			     VIRTIO_F_BIT(VIRTIO_BLK_F_WRITE_ZEROES)) |
			    VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
			    VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX),
		.num_queues = b->opt.num_queues, .queue_max = BLK_QUEUE_MAX, .config_len = CFG_LEN,
		.own_notify = true, .config_read = blk_config_read,
		.queue_notify = blk_notify, .activate = blk_activate,
		.reset = blk_reset, .destroy = blk_destroy, .metrics = blk_metrics,
		.save = blk_save, .load = blk_load,
		.quiesce = blk_quiesce, .unquiesce = blk_unquiesce,
	};
}

/* The worker takes no signals: the embedding program's threads do. */
static int start_worker(struct virtio_blk *b)
{
	sigset_t all, saved;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	err = pthread_create(&b->worker, NULL, blk_worker, b);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	b->worker_started = err == 0;
	return -err;
}

void virtio_blk_set_io(struct device *dev, const struct virtio_blk_io *io)
{
	struct virtio_dev *vd = dev->private;
	struct virtio_blk *b = vd->priv;

	pthread_mutex_lock(&b->lock);
	b->be.io = *io;
	pthread_mutex_unlock(&b->lock);
}

/* The worker's poll set and request slots (one when synchronous). */
static int alloc_worker_state(struct virtio_blk *b)
{
	unsigned n = 2 + b->opt.num_queues;

	b->nr_slots = b->uring ? BLK_MAX_INFLIGHT : 1;
	/* calloc'd and touched only when used: idle slots cost no RSS. */
	b->slots = calloc(b->nr_slots, sizeof(*b->slots));
	b->fds = calloc(n, sizeof(*b->fds));
	if (!b->slots || !b->fds)
		return -ENOMEM;
	for (unsigned i = 0; i < b->nr_slots; i++)
		b->slots[i].next_free = i + 1 < b->nr_slots ? (int)i + 1 : -1;
	b->free_slot = 0;
	b->fds[0] = (struct pollfd){ .fd = b->stop_fd, .events = POLLIN };
	b->fds[1] = (struct pollfd){ .fd = b->uring ? b->ring_efd : -1, .events = POLLIN };
	for (unsigned i = 0; i < b->opt.num_queues; i++)
		b->fds[2 + i] = (struct pollfd){ .fd = virtio_queue_fd(b->vd, i), .events = POLLIN };
	return 0;
}

/* io_uring unless asked not to, or unavailable (old kernel, disabled by
 * sysctl, refused by a container's seccomp policy): then synchronous. */
static void choose_engine(struct virtio_blk *b, struct vm *vm)
{
	int err;

	if (b->opt.aio == VIRTIO_BLK_AIO_SYNC)
		return;
	err = blk_uring_init(b);
	if (err)
		vm_info(vm, "virtio-blk %s: io_uring unavailable (%s): synchronous I/O, "
			"one request at a time", b->path, strerror(-err));
}

static int check_options(struct vm *vm, struct virtio_blk_options *o,
			 char *why, size_t why_len)
{
	if (!o->path)
		return set_why(why, why_len, "no image path");
	if (!o->num_queues)
		o->num_queues = vm->num_vcpus > 0 ? (unsigned)vm->num_vcpus : 1;
	if (o->num_queues > VIRTIO_BLK_MAX_QUEUES)
		return set_why(why, why_len, "num_queues=%u: at most %d", o->num_queues,
			       VIRTIO_BLK_MAX_QUEUES);
	if (o->cache > VIRTIO_BLK_CACHE_NONE || o->aio > VIRTIO_BLK_AIO_SYNC)
		return set_why(why, why_len, "unknown cache or aio mode");
	return 0;
}

static struct virtio_blk *blk_alloc(const struct virtio_blk_options *o)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->be.fd = b->be.buf_fd = b->ring_efd = -1;
	b->opt = *o;
	b->stop_fd = eventfd(0, EFD_CLOEXEC);
	b->path = strdup(o->path);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->idle, NULL);
	pthread_cond_init(&b->swapped, NULL);
	b->opt.path = NULL; /* b->path: it changes with the image */
	return b;
}

struct device *virtio_blk_create_in(struct vm *vm, const struct virtio_slot *slot,
				    const struct virtio_blk_options *opts,
				    char *why, size_t why_len)
{
	struct virtio_blk_options o = *opts;
	struct virtio_blk *b;
	int err;

	if (check_options(vm, &o, why, why_len))
		return NULL;
	b = blk_alloc(&o);
	if (!b) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	if (b->stop_fd < 0 || !b->path ||
	    blk_image_open(&b->be, vm, o.path, o.readonly, o.cache, why, why_len)) {
		if (b->stop_fd < 0)
			set_why(why, why_len, "eventfd: %s", strerror(errno));
		else if (!b->path)
			set_why(why, why_len, "out of memory");
		blk_free(b);
		return NULL;
	}
	fill_config(b);
	b->vd = virtio_transport_create(vm, slot, &b->ops, b, why, why_len);
	if (!b->vd) {
		blk_free(b);
		return NULL;
	}
	choose_engine(b, vm);
	err = alloc_worker_state(b);
	if (!err)
		err = start_worker(b);
	if (err) {
		set_why(why, why_len, "cannot start the disk thread: %s", strerror(-err));
		virtio_transport_free(b->vd);
		blk_free(b);
		return NULL;
	}
	vm_info(vm, "virtio-blk at %s: %s, %llu sectors, %u queue%s, %s%s%s",
		b->vd->where, o.path,
		(unsigned long long)b->be.capacity, o.num_queues,
		o.num_queues == 1 ? "" : "s", b->uring ? "io_uring" : "sync",
		o.cache == VIRTIO_BLK_CACHE_NONE ? ", cache=none" : "",
		o.readonly ? ", read-only" : "");
	return &b->vd->dev;
}

static void set_capacity(struct virtio_dev *vd, void *arg)
{
	struct virtio_blk *b = vd->priv;

	put_le64(b->config + CFG_CAPACITY, *(const uint64_t *)arg);
}

/* Hand img (and path) to the worker and wait until it took them; img then
 * holds the old image, path the old path. */
static int hand_to_worker(struct virtio_blk *b, struct virtio_blk_backend *img, char **path)
{
	uint64_t one = 1;

	pthread_mutex_lock(&b->lock);
	if (b->next_image || b->stopping) {
		pthread_mutex_unlock(&b->lock);
		return -EBUSY;
	}
	b->next_image = img;
	b->next_path = *path;
	pthread_mutex_unlock(&b->lock);
	if (write(b->stop_fd, &one, sizeof(one)) < 0) {
		int err = -errno;

		pthread_mutex_lock(&b->lock);
		b->next_image = NULL;
		b->next_path = NULL;
		pthread_mutex_unlock(&b->lock);
		return err;
	}
	pthread_mutex_lock(&b->lock);
	while (b->next_image)
		pthread_cond_wait(&b->swapped, &b->lock);
	*path = b->next_path;
	b->next_path = NULL;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

int virtio_blk_replace_image(struct device *dev, const char *path, char *why, size_t why_len)
{
	struct virtio_dev *vd = dev->private;
	struct virtio_blk *b = vd->priv;
	struct virtio_blk_backend img = { 0 };
	char *copy;
	uint64_t sectors;
	int err;

	if (vd->ops->config_read != blk_config_read)
		return set_why(why, why_len, "not a virtio-blk device"), -EINVAL;
	copy = strdup(path);
	if (!copy)
		return set_why(why, why_len, "out of memory"), -ENOMEM;
	/* The image it has (Firecracker's way to say the file was resized):
	 * opening it again would find it locked, by this very disk. Only
	 * this thread changes b->be's files, so reading them is safe. */
	if (blk_image_is(&b->be, path))
		err = blk_image_again(&img, &b->be, vd->vm, path, why, why_len);
	else
		err = blk_image_open(&img, vd->vm, path, b->be.readonly, b->opt.cache, why,
				     why_len);
	if (!err)
		err = hand_to_worker(b, &img, &copy);
	if (err == -EBUSY)
		set_why(why, why_len, "%s: the disk is changing image already", path);
	blk_image_close(&img); /* the old image, or the new one on failure */
	free(copy);
	if (err)
		return err;
	pthread_mutex_lock(&b->lock);
	sectors = b->be.capacity;
	pthread_mutex_unlock(&b->lock);
	virtio_config_changed(vd, set_capacity, &sectors);
	vm_info(vd->vm, "virtio-blk at %s: now %s, %llu sectors",
		vd->where, path, (unsigned long long)sectors);
	return 0;
}

struct device *virtio_blk_create(struct vm *vm, uint64_t base, uint32_t gsi,
				 const char *path, int readonly, char *why,
				 size_t why_len)
{
	struct virtio_blk_options o = { .path = path, .readonly = readonly };

	return virtio_blk_create_opts(vm, base, gsi, &o, why, why_len);
}

struct device *virtio_blk_create_opts(struct vm *vm, uint64_t base,
				      uint32_t gsi,
				      const struct virtio_blk_options *o,
				      char *why, size_t why_len)
{
	const struct virtio_slot slot = { .base = base, .gsi = gsi };

	return virtio_blk_create_in(vm, &slot, o, why, why_len);
}
