/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk inside the library: the device state shared by blk.c (the
 * device: config space, queues, the worker thread, the synchronous path)
 * and blk_uring.c (requests in flight on io_uring). Not installed.
 */
#ifndef VIBEVMM_DEVICES_VIRTIO_BLK_H
#define VIBEVMM_DEVICES_VIRTIO_BLK_H

#include <liburing.h>
#include <poll.h>
#include <pthread.h>

#include "devices.h"
#include "devices/virtio/virtio.h"

#define BLK_QUEUE_MAX 256
/* Requests in flight per disk (all queues together): the io_uring's size.
 * Linux keeps at most queue size (256) per queue; beyond this many the
 * worker stops popping until completions come back. */
#define BLK_MAX_INFLIGHT 128
/* Largest bounce buffer (cache=none, guest buffers not aligned for
 * O_DIRECT): bigger misaligned requests go through the page cache instead,
 * so a guest cannot make us allocate more than 128 x 1 MiB. */
#define BLK_BOUNCE_MAX (1u << 20)
#define BLK_CFG_LEN 60

/* One request taken from a queue, until it is answered. */
struct blk_slot {
	struct iovec chain[BLK_QUEUE_MAX]; /* the descriptor chain */
	struct iovec data[BLK_QUEUE_MAX];  /* its data segments (r.data) */
	struct virtio_blk_req r;
	void *bounce;                      /* aligned copy, or NULL */
	struct iovec bounce_iov;
	uint16_t head, queue;
	int next_free;                     /* free list, -1 ends it */
	struct blk_slot *next_flush;       /* a list of flushes (blk_uring.c) */
};

struct virtio_blk {
	struct virtio_dev *vd;
	struct virtio_blk_backend be;
	char *path;                /* the image, for log lines */
	struct virtio_blk_options opt;
	struct virtio_dev_ops ops;
	uint8_t config[BLK_CFG_LEN];
	int stop_fd;
	pthread_t worker;
	bool worker_started;

	/* be's state (sync_error, write_through) and `inflight` change with
	 * `lock` held; `idle` is signalled when inflight drops to 0 (a reset
	 * waits for it: no buffer is written after the driver got the device
	 * back). Lock order: queue lock, then this one. */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight;

	/* virtio_blk_replace_image: the image the worker takes next, and its
	 * path (set with `lock` held; the worker takes them, leaves the old
	 * ones there and NULLs next_image, then signals `swapped`). `path`
	 * changes then, so it is read with `lock` held or on the worker.
	 * stopping: the stop eventfd means the end, not an image to take. */
	struct virtio_blk_backend *next_image;
	char *next_path;
	bool stopping;
	pthread_cond_t swapped;

	/* Snapshots: `hold` (quiesce sets it, unquiesce clears it, `lock`
	 * held) keeps the worker from taking requests; `parked` says it saw
	 * that and has answered every request it took (signalled on idle). */
	bool hold, parked;

	/* Answered requests (metrics): written by the worker alone. */
	struct {
		atomic_uint_least64_t read_count, read_bytes, write_count,
			write_bytes, flush_count, discard_count,
			write_zeroes_count, fail_count;
	} counters;

	/* Worker-private from here on. */
	bool uring;                /* the ring is up; else all synchronous */
	struct io_uring ring;
	int ring_efd;              /* eventfd the ring signals completions on */
	struct blk_slot *slots;
	unsigned nr_slots;
	int free_slot;
	uint64_t starved;          /* queues that stopped popping for lack of slots */
	uint64_t touched;          /* queues with used entries not yet signalled */
	struct pollfd *fds;        /* stop, ring, then each queue's notify fd */
	/* FLUSH on the ring: the flushes the fdatasync under way (or about to
	 * start) answers, and those taken since, which wait for the next. */
	struct blk_slot *flush_running, *flush_waiting;
	bool held;                 /* hold, as the worker last saw it */
	uint64_t gate_buf;         /* the test gate's 8 bytes */
	struct iovec gate_iov;
};

/* blk.c, for blk_uring.c: answer a request and give its slot back. */
void blk_complete(struct virtio_blk *b, struct blk_slot *s, uint8_t status,
		  uint32_t written);

/* blk.c: log the moment a sync first failed (b->lock held). */
void blk_warn_sync_failure(struct virtio_blk *b, bool failed_before);

/* blk_image.c */
/* Open the image at path into be (fds, lock, size, serial, cache=none's
 * O_DIRECT fd): 0, or -errno with a reason in why (be's fds then still to
 * be closed with blk_image_close). */
int blk_image_open(struct virtio_blk_backend *be, struct vm *vm, const char *path,
		   bool readonly, enum virtio_blk_cache cache, char *why, size_t len);
void blk_image_close(struct virtio_blk_backend *be);
/* Whether path is the image be has open (the same file). */
bool blk_image_is(const struct virtio_blk_backend *be, const char *path);
/* cur's image again, as an image to take: its files (new descriptors of
 * the same open files, so the lock stays), its size as it is now (the
 * file may have grown). 0, or -errno with a reason in why. */
int blk_image_again(struct virtio_blk_backend *img, const struct virtio_blk_backend *cur,
		    struct vm *vm, const char *path, char *why, size_t len);
void blk_image_take(struct virtio_blk_backend *be, struct virtio_blk_backend *img);

/* blk_uring.c */
/* Set the ring up: 0, or -errno (then run synchronously; the caller logs). */
int blk_uring_init(struct virtio_blk *b);
void blk_uring_exit(struct virtio_blk *b);
/* Queue an IN/OUT that passed virtio_blk_rw_check: true when it is on the
 * ring, false when it must be carried out synchronously instead. */
bool blk_uring_queue(struct virtio_blk *b, struct blk_slot *s);
/* Queue a FLUSH that virtio_blk_flush_now left to an fdatasync (b->lock
 * not held): on the ring, answered by blk_uring_reap. */
void blk_uring_flush(struct virtio_blk *b, struct blk_slot *s);
/* Hand the queued requests to the kernel. */
void blk_uring_submit(struct virtio_blk *b);
/* Complete what the kernel finished; with `all`, wait until nothing is in
 * flight. */
void blk_uring_reap(struct virtio_blk *b, bool all);

#endif
