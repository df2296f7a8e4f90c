/* SPDX-License-Identifier: MIT */
/*
 * The VM's I/O thread: waits on the fds devices registered (console input,
 * TAP, virtio queue eventfds, console output that could not be written at
 * once) and calls their handlers, so vCPU threads never block on host I/O.
 *
 * Every watch is one-shot (EPOLLONESHOT): the kernel disarms it when it
 * reports it, and the I/O thread re-arms it after the handler unless the
 * handler paused it. So pausing needs no epoll call that could race with a
 * resume from another thread (a resume simply re-arms), and a paused fd that
 * hangs up is not reported again and again (epoll reports EPOLLHUP even for
 * an empty event mask, but never for a disarmed one-shot watch).
 *
 * Fds epoll cannot watch (a regular file or /dev/null as stdin) are "polled":
 * always ready, so their handler runs on every loop while they are armed.
 *
 * While the VM is paused (core/pause.c) the thread keeps serving output
 * (EPOLLOUT watches: console bytes drain to the host) but no input: an
 * EPOLLIN watch that fires is noted and its handler runs at resume (its
 * one-shot watch stays disarmed meanwhile), polled watches wait too.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/sandbox.h"
#include "utils.h"

#define WAKE_KEY UINT64_MAX

void io_state_init(struct vm_state *st)
{
	st->epoll_fd = -1;
	st->wake_fd = -1;
	pthread_mutex_init(&st->watch_lock, NULL);
}

void io_state_destroy(struct vm_state *st)
{
	if (st->epoll_fd >= 0)
		close(st->epoll_fd);
	if (st->wake_fd >= 0)
		close(st->wake_fd);
	st->epoll_fd = st->wake_fd = -1;
	pthread_mutex_destroy(&st->watch_lock);
}

static int epoll_set(struct vm_state *st, int op, int fd, uint32_t events,
		     uint64_t key)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };

	return epoll_ctl(st->epoll_fd, op, fd, &ev) < 0 ? -errno : 0;
}

static int io_ensure_epoll(struct vm_state *st)
{
	if (st->epoll_fd >= 0)
		return 0;
	st->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (st->epoll_fd < 0 || st->wake_fd < 0)
		return -errno;
	return epoll_set(st, EPOLL_CTL_ADD, st->wake_fd, EPOLLIN, WAKE_KEY);
}

static void io_wake(struct vm_state *st)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is full, so a wake-up is pending anyway. */
	if (write(st->wake_fd, &one, sizeof(one)) < 0) {
	}
}

static bool fd_watched(struct vm_state *st, int fd, uint32_t events)
{
	for (int i = 0; i < atomic_load(&st->nr_watches); i++)
		if (st->watches[i].fd == fd && st->watches[i].events == events &&
		    atomic_load(&st->watches[i].active))
			return true;
	return false;
}

int io_watch_add(struct vm *vm, int fd, uint32_t events,
		 int (*on_ready)(void *opaque), void *opaque, bool armed)
{
	struct vm_state *st = vm->state;
	struct io_watch *w;
	int err, idx;

	if (fd < 0 || !on_ready)
		return -EINVAL;
	pthread_mutex_lock(&st->watch_lock);
	err = io_ensure_epoll(st);
	if (!err && fd_watched(st, fd, events))
		err = -EEXIST;
	if (!err && st->nr_watches >= IO_MAX_WATCHES)
		err = -ENOSPC;
	if (err) {
		pthread_mutex_unlock(&st->watch_lock);
		return err;
	}
	idx = atomic_load(&st->nr_watches);
	w = &st->watches[idx];
	*w = (struct io_watch){ .fd = fd, .events = events, .on_ready = on_ready,
				.opaque = opaque };
	/* Live before epoll knows it: its first event may come at once. */
	atomic_store(&w->armed, armed);
	atomic_store(&w->active, true);
	err = epoll_set(st, EPOLL_CTL_ADD, fd, (armed ? events : 0) | EPOLLONESHOT,
			(uint64_t)idx);
	if (err == -EPERM) {
		/* Not pollable (regular file, /dev/null): always ready. */
		w->polled = true;
		err = 0;
	}
	if (err)
		atomic_store(&w->active, false);
	else
		atomic_fetch_add(&st->nr_watches, 1);
	pthread_mutex_unlock(&st->watch_lock);
	if (!err && w->polled && armed)
		io_wake(st);
	return err ? err : idx;
}

void io_watch_arm(struct vm *vm, int idx)
{
	struct vm_state *st = vm->state;
	struct io_watch *w = &st->watches[idx];

	if (!atomic_load(&w->active))
		return;
	if (w->polled) {
		atomic_store(&w->armed, true);
		io_wake(st);
		return;
	}
	/* Fails only for a watch dropped meanwhile: nothing to arm then. */
	epoll_set(st, EPOLL_CTL_MOD, w->fd, w->events | EPOLLONESHOT, (uint64_t)idx);
}

int vm_watch_fd(struct vm *vm, int fd, int (*on_ready)(void *opaque),
		void *opaque)
{
	int r = io_watch_add(vm, fd, EPOLLIN, on_ready, opaque, true);

	return r < 0 ? r : 0;
}

int vm_resume_fd(struct vm *vm, int fd)
{
	struct vm_state *st = vm->state;

	for (int i = 0; i < atomic_load(&st->nr_watches); i++) {
		struct io_watch *w = &st->watches[i];

		if (w->fd == fd && w->events == EPOLLIN && atomic_load(&w->active)) {
			io_watch_arm(vm, i);
			return 0;
		}
	}
	return -ENOENT;
}

int vm_unwatch_fd(struct vm *vm, int fd)
{
	struct vm_state *st = vm->state;

	if (st->io_running)
		return -EBUSY;
	for (int i = 0; i < atomic_load(&st->nr_watches); i++) {
		struct io_watch *w = &st->watches[i];

		if (w->fd != fd || !atomic_load(&w->active))
			continue;
		if (!w->polled)
			epoll_ctl(st->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		atomic_store(&w->active, false);
		return 0;
	}
	return -ENOENT;
}

/* Run a handler and do what it asks: re-arm, stay paused, or drop. */
static void handle_ready(struct vm *vm, int idx)
{
	struct vm_state *st = vm->state;
	struct io_watch *w = &st->watches[idx];
	int r;

	if (!atomic_load(&w->active))
		return;
	r = w->on_ready(w->opaque);
	if (r == VM_WATCH_KEEP) {
		io_watch_arm(vm, idx);
	} else if (r == VM_WATCH_DROP) {
		atomic_store(&w->active, false);
		if (!w->polled)
			epoll_ctl(st->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
	}
	/* VM_WATCH_PAUSE: stays disarmed until io_watch_arm/vm_resume_fd. */
}

/* Handlers of armed polled watches; returns whether any is still armed. */
static bool run_polled(struct vm *vm)
{
	struct vm_state *st = vm->state;
	int n = atomic_load(&st->nr_watches);
	bool again = false;

	for (int i = 0; i < n; i++) {
		struct io_watch *w = &st->watches[i];

		if (!w->polled || !atomic_exchange(&w->armed, false))
			continue;
		handle_ready(vm, i);
		again |= atomic_load(&w->armed);
	}
	return again;
}

/* Input that fired while the VM was paused, handled at resume. */
struct io_deferred {
	bool idx[IO_MAX_WATCHES];
	int nr;
};

static void run_deferred(struct vm *vm, struct io_deferred *d)
{
	for (int i = 0; d->nr && i < IO_MAX_WATCHES; i++) {
		if (d->idx[i]) {
			d->idx[i] = false;
			d->nr--;
			handle_ready(vm, i);
		}
	}
}

static void dispatch(struct vm *vm, const struct epoll_event *ev, bool paused,
		     struct io_deferred *d)
{
	struct vm_state *st = vm->state;
	int idx = (int)ev->data.u64;
	uint64_t count;

	if (ev->data.u64 == WAKE_KEY) {
		if (read(st->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			vm_err(vm, "I/O thread: wake-up: %s", strerror(errno));
		return;
	}
	if (paused && st->watches[idx].events == EPOLLIN) {
		d->nr += !d->idx[idx];
		d->idx[idx] = true;
		return;
	}
	handle_ready(vm, idx);
}

static void *io_thread(void *arg)
{
	struct vm *vm = arg;
	struct vm_state *st = vm->state;
	struct epoll_event evs[16];
	struct io_deferred deferred = { 0 };
	bool polled_ready = true, paused = false;

	if (thread_enter(vm, OS_THREAD_IO, "vmm-io"))
		return NULL;

	while (!atomic_load(&st->io_quit)) {
		bool was_paused = paused;
		int n;

		paused = pause_io_point(vm, was_paused);
		if (was_paused && !paused) {
			run_deferred(vm, &deferred);
			polled_ready = true;
		}
		n = epoll_wait(st->epoll_fd, evs, (int)ARRAY_SIZE(evs),
			       polled_ready && !paused ? 0 : -1);
		if (n < 0 && errno != EINTR) {
			vm_err(vm, "I/O thread: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++)
			dispatch(vm, &evs[i], paused, &deferred);
		if (!paused)
			polled_ready = run_polled(vm);
	}
	return NULL;
}

int io_thread_start(struct vm *vm)
{
	struct vm_state *st = vm->state;
	sigset_t all, saved;
	int err;

	pthread_mutex_lock(&st->watch_lock);
	err = io_ensure_epoll(st);
	pthread_mutex_unlock(&st->watch_lock);
	if (err)
		return err;
	atomic_store(&st->io_quit, false);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	err = -pthread_create(&st->io_thread, NULL, io_thread, vm);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	st->io_running = err == 0;
	return err;
}

void io_thread_wake(struct vm *vm)
{
	if (vm->state->wake_fd >= 0)
		io_wake(vm->state);
}

void io_thread_stop(struct vm *vm)
{
	struct vm_state *st = vm->state;

	if (!st->io_running)
		return;
	atomic_store(&st->io_quit, true);
	io_wake(st);
	pthread_join(st->io_thread, NULL);
	st->io_running = false;
}
