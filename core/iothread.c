/* SPDX-License-Identifier: MIT */
/*
 * The VM's I/O thread: waits on the fds devices registered (console input,
 * later TAP and ioeventfds) and calls their handlers, so vCPU threads never
 * block on host I/O.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/internal.h"
#include "utils.h"

void io_state_init(struct vm_state *st)
{
	st->epoll_fd = -1;
	st->wake_fd = -1;
}

void io_state_destroy(struct vm_state *st)
{
	if (st->epoll_fd >= 0)
		close(st->epoll_fd);
	if (st->wake_fd >= 0)
		close(st->wake_fd);
	st->epoll_fd = st->wake_fd = -1;
}

static int epoll_set(struct vm_state *st, int op, int fd, uint32_t events,
		     uint64_t key)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };

	return epoll_ctl(st->epoll_fd, op, fd, &ev) < 0 ? -errno : 0;
}

static int ensure_epoll(struct vm_state *st)
{
	if (st->epoll_fd >= 0)
		return 0;
	st->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (st->epoll_fd < 0 || st->wake_fd < 0)
		return -errno;
	return epoll_set(st, EPOLL_CTL_ADD, st->wake_fd, EPOLLIN, UINT64_MAX);
}

int vm_watch_fd(struct vm *vm, int fd, int (*on_ready)(void *opaque),
		void *opaque)
{
	struct vm_state *st = vm->state;
	int err, idx;

	if (fd < 0 || !on_ready)
		return -EINVAL;
	if (st->started)
		return -EBUSY;
	if (st->nr_watches >= IO_MAX_WATCHES)
		return -ENOSPC;
	err = ensure_epoll(st);
	if (err)
		return err;
	idx = st->nr_watches;
	err = epoll_set(st, EPOLL_CTL_ADD, fd, EPOLLIN, (uint64_t)idx);
	if (err)
		return err; /* e.g. -EPERM for a regular file */
	st->watches[idx] = (struct io_watch){ fd, on_ready, opaque, true };
	st->nr_watches++;
	return 0;
}

int vm_resume_fd(struct vm *vm, int fd)
{
	struct vm_state *st = vm->state;

	for (int i = 0; i < st->nr_watches; i++)
		if (st->watches[i].fd == fd && st->watches[i].active)
			return epoll_set(st, EPOLL_CTL_MOD, fd, EPOLLIN, (uint64_t)i);
	return -ENOENT;
}

int vm_unwatch_fd(struct vm *vm, int fd)
{
	struct vm_state *st = vm->state;

	if (st->io_running)
		return -EBUSY;
	for (int i = 0; i < st->nr_watches; i++) {
		struct io_watch *w = &st->watches[i];

		if (w->fd != fd || !w->active)
			continue;
		epoll_ctl(st->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		w->active = false;
		return 0;
	}
	return -ENOENT;
}

static void handle_ready(struct vm_state *st, uint64_t idx)
{
	struct io_watch *w = &st->watches[idx];
	int r = w->on_ready(w->opaque);

	if (r == VM_WATCH_PAUSE) {
		epoll_set(st, EPOLL_CTL_MOD, w->fd, 0, idx);
	} else if (r == VM_WATCH_DROP) {
		epoll_ctl(st->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
		w->active = false;
	}
}

static void *io_thread(void *arg)
{
	struct vm *vm = arg;
	struct vm_state *st = vm->state;
	struct epoll_event evs[16];

	for (;;) {
		int n = epoll_wait(st->epoll_fd, evs, (int)ARRAY_SIZE(evs), -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vm_err(vm, "I/O thread: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == UINT64_MAX)
				return NULL; /* woken to quit */
			handle_ready(st, evs[i].data.u64);
		}
	}
}

int io_thread_start(struct vm *vm)
{
	struct vm_state *st = vm->state;
	sigset_t all, saved;
	int err;

	if (!st->nr_watches)
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	err = -pthread_create(&st->io_thread, NULL, io_thread, vm);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	st->io_running = err == 0;
	return err;
}

void io_thread_stop(struct vm *vm)
{
	struct vm_state *st = vm->state;
	uint64_t one = 1;

	if (!st->io_running)
		return;
	if (write(st->wake_fd, &one, sizeof(one)) < 0)
		vm_err(vm, "cannot wake the I/O thread: %s", strerror(errno));
	pthread_join(st->io_thread, NULL);
	st->io_running = false;
}
