/* SPDX-License-Identifier: MIT */
/*
 * Console output that never blocks the thread that produces it.
 *
 * Guest consoles write from vCPU threads and the I/O thread; a terminal
 * that is scrolled back, a pager that stopped reading, or a pipe whose
 * reader went away must not stop the guest, nor keep the VMM from ending.
 * So each host fd gets one stream per VM: bytes go out at once when the fd
 * takes them, else into a bounded buffer that the I/O thread drains when
 * the fd becomes writable (a one-shot EPOLLOUT watch). When the buffer is
 * full, or the reader is gone, bytes are dropped and counted, as a serial
 * line without flow control loses them; the first loss and the total are
 * logged once.
 *
 * Non-blocking writes need a file description of our own: O_NONBLOCK on
 * the caller's would also change the shell's terminal (stdin and stdout
 * usually share one). Terminals and pipes are reopened through
 * /proc/self/fd; sockets take MSG_DONTWAIT per call; regular files and
 * block devices never wait for a reader, so they are written directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "utils.h"

#define OUTPUT_BUF_SIZE (64 * 1024)
/* How long vm_destroy waits, in all, for slow readers to take what is left. */
#define OUTPUT_FINAL_FLUSH_MS 1000

enum output_mode {
	OUT_DIRECT,   /* regular file or block device: plain write() */
	OUT_NONBLOCK, /* our own O_NONBLOCK description of a tty, pipe, ... */
	OUT_SHARED,   /* the caller's description, O_NONBLOCK set until close */
	OUT_SOCKET,   /* send(MSG_DONTWAIT) */
	OUT_GONE,     /* the reader is gone or the fd failed: drop everything */
};

struct vm_output {
	struct vm *vm;
	int user_fd;          /* the fd devices name */
	int fd;               /* ours (a reopened or dup'ed description) */
	enum output_mode mode;
	int saved_flags;      /* OUT_SHARED: the description's flags to restore */
	bool is_log;          /* the VM's log: reports its own losses only at close */
	int watch;            /* EPOLLOUT watch on fd, -1 when not pollable */

	pthread_mutex_t lock; /* everything below */
	uint8_t *buf;         /* ring of OUTPUT_BUF_SIZE bytes */
	size_t head, len;
	bool waiting;         /* the watch is armed to drain buf */
	uint64_t dropped;
	bool loss_logged;
	int error;            /* first write error (positive errno), 0 if none */
};

static const char *fd_name(int fd)
{
	return fd == STDOUT_FILENO ? "stdout" : fd == STDERR_FILENO ? "stderr" : "the console fd";
}

/* A description of our own for fd, and how to write to it. */
static int open_private(struct vm_output *o)
{
	struct stat st;
	char path[32];
	int flags;

	if (fstat(o->user_fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode)) {
		o->mode = S_ISSOCK(st.st_mode) ? OUT_SOCKET : OUT_DIRECT;
		o->fd = fcntl(o->user_fd, F_DUPFD_CLOEXEC, 0);
		return o->fd < 0 ? -errno : 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", o->user_fd);
	o->fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (o->fd >= 0) {
		o->mode = OUT_NONBLOCK;
		return 0;
	}
	if (errno == ENXIO && S_ISFIFO(st.st_mode)) {
		o->mode = OUT_GONE; /* a pipe nobody reads any more */
		o->error = EPIPE;
		return 0;
	}
	/* No /proc, or not reopenable: borrow the caller's description. */
	o->fd = fcntl(o->user_fd, F_DUPFD_CLOEXEC, 0);
	if (o->fd < 0 || (flags = fcntl(o->fd, F_GETFL)) < 0 ||
	    fcntl(o->fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	o->saved_flags = flags;
	o->mode = OUT_SHARED;
	return 0;
}

/* A regular file or block device: all of it, or -errno. */
static ssize_t write_all(int fd, const uint8_t *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, p + done, n - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return (ssize_t)n;
}

/* One non-blocking attempt: bytes taken, or -errno (-EAGAIN: try later). */
static ssize_t try_write(struct vm_output *o, const struct iovec *iov, int n)
{
	ssize_t r;

	do {
		if (o->mode == OUT_SOCKET) {
			struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };

			r = sendmsg(o->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		} else {
			r = writev(o->fd, iov, n);
		}
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* The fd failed for good: from now on everything is dropped. */
static void fail_output(struct vm_output *o, int err)
{
	o->mode = OUT_GONE;
	o->error = err;
	o->dropped += o->len;
	o->len = 0;
}

/* Write from the ring as far as the fd takes it; caller holds the lock.
 * Returns true when bytes remain (the fd would block). */
static bool drain(struct vm_output *o)
{
	while (o->len && o->mode != OUT_GONE) {
		size_t first = MIN(o->len, OUTPUT_BUF_SIZE - o->head);
		struct iovec iov[2] = {
			{ o->buf + o->head, first },
			{ o->buf, o->len - first },
		};
		ssize_t r = try_write(o, iov, iov[1].iov_len ? 2 : 1);

		if (r == -EAGAIN)
			return true;
		if (r <= 0) {
			fail_output(o, r < 0 ? (int)-r : EIO);
			break;
		}
		o->head = (o->head + (size_t)r) % OUTPUT_BUF_SIZE;
		o->len -= (size_t)r;
	}
	o->head = o->len ? o->head : 0;
	return false;
}

/* Keep what fits in the ring; count the rest as lost. */
static void queue(struct vm_output *o, const uint8_t *p, size_t n)
{
	size_t room = OUTPUT_BUF_SIZE - o->len;
	size_t take = MIN(n, room);

	for (size_t i = 0; i < take; i++)
		o->buf[(o->head + o->len + i) % OUTPUT_BUF_SIZE] = p[i];
	o->len += take;
	o->dropped += n - take;
}

/* Log the first loss (outside the lock: the log is an output too). */
static void report_loss(struct vm_output *o, bool first_loss, int first_error)
{
	if (first_error)
		vm_warn(o->vm, "writing guest console output to %s: %s; its output is dropped from now on",
			fd_name(o->user_fd), strerror(first_error));
	else if (first_loss)
		vm_warn(o->vm, "guest console output to %s is not being read fast enough; dropping what does not fit in %d KiB",
			fd_name(o->user_fd), OUTPUT_BUF_SIZE >> 10);
}

void vm_output_write(struct vm_output *o, const void *data, size_t n)
{
	const uint8_t *p = data;
	bool first_loss = false, arm = false;
	int err_before, first_error = 0;

	if (!o || !n)
		return;
	pthread_mutex_lock(&o->lock);
	err_before = o->error;
	if (!o->len && o->mode != OUT_GONE) {
		struct iovec iov = { (void *)p, n };
		ssize_t r = o->mode == OUT_DIRECT ? write_all(o->fd, p, n)
						  : try_write(o, &iov, 1);

		if (r == -EAGAIN)
			r = 0;
		if (r < 0)
			fail_output(o, (int)-r);
		else
			p += r, n -= (size_t)r;
	}
	if (n && o->mode == OUT_GONE) {
		o->dropped += n;
	} else if (n) {
		uint64_t dropped_before = o->dropped;

		queue(o, p, n);
		first_loss = !dropped_before && o->dropped && !o->loss_logged;
		o->loss_logged |= first_loss;
		arm = !o->waiting && o->watch >= 0;
		o->waiting |= arm;
	}
	if (o->error && !err_before)
		first_error = o->error;
	pthread_mutex_unlock(&o->lock);
	if (arm)
		io_watch_arm(o->vm, o->watch);
	if (!o->is_log)
		report_loss(o, first_loss, first_error);
}

/* I/O thread: the fd can take more. */
static int output_writable(void *opaque)
{
	struct vm_output *o = opaque;
	bool more;
	int err_before, first_error = 0;

	pthread_mutex_lock(&o->lock);
	err_before = o->error;
	more = drain(o);
	o->waiting = more;
	if (o->error && !err_before)
		first_error = o->error;
	pthread_mutex_unlock(&o->lock);
	if (!o->is_log)
		report_loss(o, false, first_error);
	return more ? VM_WATCH_KEEP : VM_WATCH_PAUSE;
}

static struct vm_output *find_output(struct vm_state *st, int fd)
{
	for (int i = 0; i < st->nr_outputs; i++)
		if (st->outputs[i]->user_fd == fd)
			return st->outputs[i];
	return NULL;
}

static void output_free(struct vm_output *o)
{
	if (o->mode == OUT_SHARED && fcntl(o->fd, F_SETFL, o->saved_flags) < 0)
		vm_debug(o->vm, "cannot restore the flags of %s: %s", fd_name(o->user_fd),
			 strerror(errno));
	if (o->fd >= 0)
		close(o->fd);
	pthread_mutex_destroy(&o->lock);
	free(o->buf);
	free(o);
}

static struct vm_output *output_create(struct vm *vm, int fd, bool is_log, int *err)
{
	struct vm_output *o = calloc(1, sizeof(*o));

	if (!o || !(o->buf = malloc(OUTPUT_BUF_SIZE))) {
		free(o);
		*err = -ENOMEM;
		return NULL;
	}
	*o = (struct vm_output){ .vm = vm, .user_fd = fd, .fd = -1, .watch = -1,
				 .is_log = is_log, .buf = o->buf };
	pthread_mutex_init(&o->lock, NULL);
	*err = open_private(o);
	if (!*err && (o->mode == OUT_NONBLOCK || o->mode == OUT_SHARED ||
		      o->mode == OUT_SOCKET)) {
		int w = io_watch_add(vm, o->fd, EPOLLOUT, output_writable, o, false);

		/* Not pollable after all: writes that would block are lost. */
		o->watch = w >= 0 ? w : -1;
	}
	if (*err) {
		output_free(o);
		return NULL;
	}
	return o;
}

struct vm_output *vm_output_open(struct vm *vm, int fd)
{
	struct vm_state *st;
	struct vm_output *o;
	int err = 0;

	if (!vm || fd < 0) {
		errno = EINVAL;
		return NULL;
	}
	st = vm->state;
	pthread_mutex_lock(&st->output_lock);
	o = find_output(st, fd);
	if (!o && st->nr_outputs >= VM_MAX_OUTPUTS)
		err = -ENOSPC;
	else if (!o && (o = output_create(vm, fd, fd == STDERR_FILENO, &err)))
		st->outputs[st->nr_outputs++] = o;
	pthread_mutex_unlock(&st->output_lock);
	if (!o)
		errno = -err;
	return o;
}

int vm_set_log_fd(struct vm *vm, int fd)
{
	struct vm_output *o = vm_output_open(vm, fd);

	if (!o)
		return -errno;
	pthread_mutex_lock(&vm->state->output_lock);
	o->is_log = true;
	vm->state->log_output = o;
	pthread_mutex_unlock(&vm->state->output_lock);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Give a slow reader until `deadline` to take what is left. */
static void final_flush(struct vm_output *o, int64_t deadline)
{
	pthread_mutex_lock(&o->lock);
	while (drain(o)) {
		struct pollfd p = { .fd = o->fd, .events = POLLOUT };
		int64_t left = deadline - now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
	}
	o->dropped += o->len;
	o->len = 0;
	pthread_mutex_unlock(&o->lock);
}

/*
 * At vm_destroy, after the devices: flush what the readers take within
 * OUTPUT_FINAL_FLUSH_MS in all, say what was lost, close. The caller's
 * thread may take SIGPIPE here (the VM's own threads block it): it is held
 * off and discarded, the EPIPE is what counts.
 */
void output_close_all(struct vm *vm)
{
	struct vm_state *st = vm->state;
	int64_t deadline = now_ms() + OUTPUT_FINAL_FLUSH_MS;
	sigset_t pipe_set, saved;
	struct timespec zero = { 0, 0 };

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	for (int i = 0; i < st->nr_outputs; i++) {
		struct vm_output *o = st->outputs[i];

		final_flush(o, deadline);
		if (o->dropped && o != st->log_output)
			vm_warn(vm, "%llu bytes of guest console output to %s were dropped",
				(unsigned long long)o->dropped, fd_name(o->user_fd));
	}
	if (st->log_output)
		final_flush(st->log_output, deadline);
	while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	st->log_output = NULL;
	for (int i = 0; i < st->nr_outputs; i++)
		output_free(st->outputs[i]);
	st->nr_outputs = 0;
}

void vm_log(const struct vm *vm, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (!vm || level > vm->log_level)
		return;
	va_start(ap, fmt);
	n = format_log_line(line, sizeof(line), level, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if (vm->state && vm->state->log_output)
		vm_output_write(vm->state->log_output, line, (size_t)n);
	else if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
