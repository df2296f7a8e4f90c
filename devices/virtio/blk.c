/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk on a raw image file. One request queue, served by a worker
 * thread per disk that waits on the queue's eventfd itself, so disk I/O
 * (fdatasync included) never stalls a vCPU or the VM's I/O thread. The
 * worker holds the queue while a request runs: a reset waits for it, and no
 * buffer is written after the driver got the device back.
 *
 * Durability (see blk_req.c): a FLUSH completes after fdatasync; a failed
 * sync fails every later FLUSH and write until the driver resets the
 * device; a driver without FLUSH gets a write-through device. The backend
 * state behind this (sync_error, write_through) changes only with the queue
 * held, so a request sees one consistent state.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sandbox.h"
#include "devices/virtio/virtio.h"
#include "utils.h"
#include "vm.h"

#define BLK_QUEUE_MAX 256
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
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* struct virtio_blk_config offsets (5.2.4) */
#define CFG_CAPACITY 0
#define CFG_SIZE_MAX 8
#define CFG_SEG_MAX 12
#define CFG_BLK_SIZE 20
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG 40
#define CFG_DISCARD_ALIGNMENT 44
#define CFG_MAX_WZ_SECTORS 48
#define CFG_MAX_WZ_SEG 52
#define CFG_WZ_MAY_UNMAP 56
#define CFG_LEN 60

struct virtio_blk {
	struct virtio_dev *vd;
	struct virtio_blk_backend be;
	char *path;                /* the image, for log lines */
	struct virtio_dev_ops ops;
	uint8_t config[CFG_LEN];
	int stop_fd;
	pthread_t worker;
	bool worker_started;
	/* Worker-private scratch: the chain and its data segments. */
	struct iovec iov[BLK_QUEUE_MAX];
	struct iovec data[BLK_QUEUE_MAX];
};

static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v)); /* little-endian host (see queue.c) */
}

static void put_le64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* One request: 0, or -errno when it cannot even be answered. */
static int handle_request(struct virtio_blk *b, struct virtq_elem *e,
			  uint32_t *used_len)
{
	struct virtio_blk_req r;
	uint32_t written;
	bool failed_before = b->be.sync_error != 0;
	int err = virtio_blk_parse_request(e->iov, e->nr_out, e->nr_in, b->data,
					   BLK_QUEUE_MAX, &r);

	if (err)
		return err;
	*r.status = virtio_blk_execute(&b->be, &r, &written);
	*used_len = written + 1;
	if (!failed_before && b->be.sync_error)
		vm_warn(b->vd->vm, "virtio-blk %s: cannot make writes durable (%s): "
			"failing flushes and writes until the guest resets the device",
			b->path, strerror(b->be.sync_error));
	return 0;
}

static void process_queue(struct virtio_blk *b)
{
	struct virtio_queue *q = virtio_queue_get(b->vd, 0);
	struct virtq_elem e = { .iov = b->iov, .max_iov = BLK_QUEUE_MAX };

	if (!q)
		return;
	while (virtio_queue_pop(q, &e)) {
		uint32_t len;
		int err = handle_request(b, &e, &len);

		if (err) {
			virtio_set_needs_reset(b->vd, "request without a status byte", err);
			break;
		}
		/* Completed only now: after the data moved and, for a flush,
		 * after fdatasync returned. */
		virtq_push(&q->vq, e.head, len);
		virtio_queue_interrupt(q);
	}
	virtio_queue_put(q);
}

static void *blk_worker(void *arg)
{
	struct virtio_blk *b = arg;
	struct pollfd fds[2] = {
		{ .fd = virtio_queue_fd(b->vd, 0), .events = POLLIN },
		{ .fd = b->stop_fd, .events = POLLIN },
	};

	if (thread_enter(b->vd->vm, OS_THREAD_BLK, "blk-%.11s", b->be.serial))
		return NULL;
	for (;;) {
		uint64_t count;

		if (poll(fds, 2, -1) < 0)
			continue; /* EINTR */
		if (fds[1].revents)
			return NULL;
		if (read(fds[0].fd, &count, sizeof(count)) > 0)
			process_queue(b);
	}
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

/* Backend state changes with the queue held: the worker holds it across a
 * request (transport lock, then queue lock: the order mmio.c's reset uses). */
static void lock_queue(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->vd->queues[0].lock);
}

static void unlock_queue(struct virtio_blk *b)
{
	pthread_mutex_unlock(&b->vd->queues[0].lock);
}

/* DRIVER_OK: the features are settled. A driver that took no FLUSH never
 * asks for durability, so every write must be durable by itself. */
static void blk_activate(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;
	bool flush = vd->drv_features & VIRTIO_F_BIT(VIRTIO_BLK_F_FLUSH);

	lock_queue(b);
	b->be.write_through = !flush;
	unlock_queue(b);
	if (!flush)
		vm_info(vd->vm, "virtio-blk %s: driver without FLUSH: write-through", b->path);
}

/* A reset is the driver's acknowledgement of a failed sync: it starts
 * afresh. Write-through until the next driver's features are known (the
 * safe side for requests that race with DRIVER_OK). */
static void blk_reset(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;

	lock_queue(b);
	if (b->be.sync_error)
		vm_info(vd->vm, "virtio-blk %s: device reset: writes accepted again", b->path);
	b->be.sync_error = 0;
	b->be.write_through = true;
	unlock_queue(b);
}

static void blk_free(struct virtio_blk *b)
{
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	if (b->be.fd >= 0)
		close(b->be.fd); /* drops the flock too */
	free(b->path);
	free(b);
}

static void blk_destroy(struct virtio_dev *vd)
{
	struct virtio_blk *b = vd->priv;
	uint64_t one = 1;

	if (b->worker_started) {
		if (write(b->stop_fd, &one, sizeof(one)) < 0)
			vm_err(vd->vm, "virtio-blk: cannot stop the worker: %s", strerror(errno));
		pthread_join(b->worker, NULL);
	}
	blk_free(b);
}

static int open_image(struct virtio_blk *b, struct vm *vm, const char *path,
		      int readonly, char *why, size_t len)
{
	struct stat st;
	off_t size;

	b->be.fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->be.fd < 0)
		return set_why(why, len, "%s: %s%s", path, strerror(errno),
			    !readonly && (errno == EACCES || errno == EROFS) ?
			    " (add ,ro for a read-only disk)" : "");
	if (fstat(b->be.fd, &st) < 0)
		return set_why(why, len, "%s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return set_why(why, len, "%s: is a directory, not a disk image", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return set_why(why, len, "%s: not a regular file or block device", path);
	/* Shared for read-only, exclusive for read-write: two VMs never
	 * write one image, nor read one that another VM writes. */
	if (flock(b->be.fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
		return set_why(why, len, "%s: %s", path, errno == EWOULDBLOCK ?
			    "image is in use (locked by another process)" : strerror(errno));
	size = lseek(b->be.fd, 0, SEEK_END);
	if (size < 0)
		return set_why(why, len, "%s: cannot get its size: %s", path, strerror(errno));
	if (size % VIRTIO_BLK_SECTOR)
		vm_info(vm, "%s: size %lld is not a multiple of 512; the last %lld bytes are not visible",
			path, (long long)size, (long long)(size % VIRTIO_BLK_SECTOR));
	b->be.capacity = (uint64_t)size / VIRTIO_BLK_SECTOR;
	b->be.readonly = readonly;
	b->be.punch_holes = true; /* regular files and block devices take fallocate */
	b->be.write_through = true; /* until a driver negotiates FLUSH */
	return 0;
}

/* GET_ID: the image's file name, at most 20 bytes (the guest shows it in
 * /sys/block/vdX/serial). */
static void make_serial(struct virtio_blk *b, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base && base[1] ? base + 1 : path;
	/* Not a C string: NUL-padded, unterminated when 20 bytes long. */
	memcpy(b->be.serial, base, MIN(strlen(base), sizeof(b->be.serial)));
}

static void fill_config(struct virtio_blk *b)
{
	put_le64(b->config + CFG_CAPACITY, b->be.capacity);
	put_le32(b->config + CFG_SIZE_MAX, BLK_SIZE_MAX);
	put_le32(b->config + CFG_SEG_MAX, BLK_SEG_MAX);
	put_le32(b->config + CFG_BLK_SIZE, VIRTIO_BLK_SECTOR);
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
			    (b->be.readonly ? VIRTIO_F_BIT(VIRTIO_BLK_F_RO) :
			     VIRTIO_F_BIT(VIRTIO_BLK_F_DISCARD) |
			     VIRTIO_F_BIT(VIRTIO_BLK_F_WRITE_ZEROES)) |
			    VIRTIO_F_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
			    VIRTIO_F_BIT(VIRTIO_RING_F_EVENT_IDX),
		.num_queues = 1, .queue_max = BLK_QUEUE_MAX, .config_len = CFG_LEN,
		.own_notify = true, .config_read = blk_config_read,
		.queue_notify = blk_notify, .activate = blk_activate,
		.reset = blk_reset, .destroy = blk_destroy,
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

	lock_queue(b);
	b->be.io = *io;
	unlock_queue(b);
}

struct device *virtio_blk_create(struct vm *vm, uint64_t base, uint32_t gsi,
				 const char *path, int readonly, char *why,
				 size_t why_len)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	int err;

	if (!b) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	b->be.fd = -1;
	b->stop_fd = eventfd(0, EFD_CLOEXEC);
	b->path = strdup(path);
	if (b->stop_fd < 0 || !b->path ||
	    open_image(b, vm, path, readonly, why, why_len)) {
		if (b->stop_fd < 0)
			set_why(why, why_len, "eventfd: %s", strerror(errno));
		else if (!b->path)
			set_why(why, why_len, "out of memory");
		blk_free(b);
		return NULL;
	}
	make_serial(b, path);
	fill_config(b);
	b->vd = virtio_mmio_create(vm, base, gsi, &b->ops, b, why, why_len);
	if (!b->vd) {
		blk_free(b);
		return NULL;
	}
	err = start_worker(b);
	if (err) {
		set_why(why, why_len, "cannot start the disk thread: %s", strerror(-err));
		virtio_mmio_free(b->vd);
		blk_free(b);
		return NULL;
	}
	vm_info(vm, "virtio-blk at 0x%llx (GSI %u): %s, %llu sectors%s",
		(unsigned long long)base, gsi, path,
		(unsigned long long)b->be.capacity, readonly ? ", read-only" : "");
	return &b->vd->dev;
}
