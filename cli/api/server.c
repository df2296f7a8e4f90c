/* SPDX-License-Identifier: MIT */
/*
 * The API socket's thread: accepts up to API_MAX_CONNS connections on the
 * Unix socket and answers their requests one at a time. A request must
 * arrive whole within API_READ_TIMEOUT_MS of its first byte (else 408) and
 * an idle connection is closed after API_IDLE_TIMEOUT_MS, so no client can
 * hold the server. Answers are small and written without blocking: a client
 * that does not read them loses its connection. Actions go to the VM's
 * owner through a one-slot mailbox (api_call / api_run_pending).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/api/internal.h"

#define API_MAX_CONNS 8
#define API_READ_TIMEOUT_MS 5000
#define API_IDLE_TIMEOUT_MS 30000

struct conn {
	int fd;
	size_t len;
	long long deadline; /* ms, monotonic */
	bool continued;     /* "100 Continue" sent for this request */
	char buf[HTTP_MAX_REQUEST];
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the mailbox ---- */

int api_call(struct api_server *s, enum api_action a, const struct api_args *args, char *fault,
	     size_t len)
{
	struct api_mailbox *b = &s->box;
	uint64_t one = 1;
	int r;

	pthread_mutex_lock(&b->lock);
	if (b->closing) {
		pthread_mutex_unlock(&b->lock);
		snprintf(fault, len, "the VMM is shutting down");
		return -ESHUTDOWN;
	}
	b->action = a;
	b->args = args ? *args : (struct api_args){ 0 };
	b->pending = true;
	b->done = false;
	if (write(s->wake_fd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only on overflow: the owner is awake */
	}
	while (!b->done && !b->closing)
		pthread_cond_wait(&b->answered, &b->lock);
	r = b->done ? b->result : -ESHUTDOWN;
	snprintf(fault, len, "%s", b->done ? b->fault : "the VMM is shutting down");
	b->pending = false;
	pthread_mutex_unlock(&b->lock);
	return r;
}

void api_run_pending(struct api_server *s)
{
	struct api_mailbox *b = &s->box;
	char fault[API_FAULT_MAX] = "";
	enum api_action a;
	struct api_args args;
	uint64_t n;
	int r;

	if (read(s->wake_fd, &n, sizeof(n)) < 0) {
		/* nothing was signalled: fine, the slot says */
	}
	pthread_mutex_lock(&b->lock);
	if (!b->pending || b->done) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	a = b->action;
	args = b->args;
	pthread_mutex_unlock(&b->lock);
	r = s->ops.action(s->ops.opaque, a, &args, fault, sizeof(fault));
	pthread_mutex_lock(&b->lock);
	b->result = r;
	snprintf(b->fault, sizeof(b->fault), "%s", fault);
	b->done = true;
	pthread_cond_broadcast(&b->answered);
	pthread_mutex_unlock(&b->lock);
}

enum api_state api_get_state(struct api_server *s)
{
	enum api_state st;

	pthread_mutex_lock(&s->box.lock);
	st = s->box.state;
	pthread_mutex_unlock(&s->box.lock);
	return st;
}

void api_set_state(struct api_server *s, enum api_state state)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->box.lock);
	s->box.state = state;
	pthread_mutex_unlock(&s->box.lock);
}

int api_server_fd(const struct api_server *s)
{
	return s ? s->wake_fd : -1;
}

/* ---- connections ---- */

/* The whole answer at once, or the connection is given up. */
static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool respond(struct conn *c, int status, const char *body, bool keep_alive)
{
	char head[256];
	size_t blen = body ? strlen(body) : 0;
	int n;

	if (status == 204)
		n = snprintf(head, sizeof(head), "HTTP/1.1 204 No Content\r\nServer: vibevmm\r\n%s\r\n",
			     keep_alive ? "" : "Connection: close\r\n");
	else
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: vibevmm\r\nContent-Type: application/json\r\n"
			     "Content-Length: %zu\r\n%s\r\n", status, http_reason(status), blen,
			     keep_alive ? "" : "Connection: close\r\n");
	return send_all(c->fd, head, (size_t)n) && (status == 204 || send_all(c->fd, body, blen));
}

static void close_conn(struct conn **slot)
{
	close((*slot)->fd);
	free(*slot);
	*slot = NULL;
}

/* The fault body of an error the parser found. */
static void respond_error(struct conn *c, int status, const char *why)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"fault_message\":\"%s\"}", why);
	respond(c, status, body, false);
}

static const char *parse_error_text(int status)
{
	switch (status) {
	case 411: return "chunked bodies are not supported: send Content-Length";
	case 413: return "request larger than 64 KiB";
	case 414: return "path too long";
	case 505: return "HTTP/1.0 or HTTP/1.1 only";
	default: return "malformed HTTP request";
	}
}

/* Serve what is buffered: false when the connection is to be closed. */
static bool serve_buffered(struct api_server *s, struct conn *c, bool *started)
{
	while (c->len) {
		struct http_request req;
		struct api_response resp;
		long n = http_parse_request(c->buf, c->len, &req);
		bool ok;

		if (n < 0) {
			respond_error(c, (int)-n, parse_error_text((int)-n));
			return false;
		}
		if (n == 0) {
			if (req.headers_done && req.expect_continue && !c->continued) {
				c->continued = true;
				return send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
			}
			return true;
		}
		api_route(s, &req, &resp);
		*started |= resp.status == 204 && !strcmp(req.path, "/actions") &&
			    api_get_state(s) != API_NOT_STARTED;
		ok = respond(c, resp.status, resp.body, req.keep_alive);
		free(resp.body);
		memmove(c->buf, c->buf + n, c->len - (size_t)n);
		c->len -= (size_t)n;
		c->continued = false;
		c->deadline = now_ms() + (c->len ? API_READ_TIMEOUT_MS : API_IDLE_TIMEOUT_MS);
		if (!ok || !req.keep_alive)
			return false;
	}
	return true;
}

static bool read_conn(struct api_server *s, struct conn *c, bool *started)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	if (!c->len)
		c->deadline = now_ms() + API_READ_TIMEOUT_MS;
	c->len += (size_t)n;
	return serve_buffered(s, c, started);
}

static void accept_conn(struct api_server *s, struct conn **conns)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int i = 0;

	if (fd < 0)
		return;
	while (i < API_MAX_CONNS && conns[i])
		i++;
	if (i == API_MAX_CONNS || !(conns[i] = calloc(1, sizeof(**conns)))) {
		close(fd); /* busy: the client sees the connection closed */
		return;
	}
	conns[i]->fd = fd;
	conns[i]->deadline = now_ms() + API_IDLE_TIMEOUT_MS;
}

/* Time out slow and idle connections; the poll timeout until the next. */
static int expire(struct conn **conns)
{
	long long now = now_ms(), next = -1;

	for (int i = 0; i < API_MAX_CONNS; i++) {
		if (!conns[i])
			continue;
		if (conns[i]->deadline <= now) {
			if (conns[i]->len)
				respond_error(conns[i], 408, "request not received in time");
			close_conn(&conns[i]);
			continue;
		}
		if (next < 0 || conns[i]->deadline - now < next)
			next = conns[i]->deadline - now;
	}
	return (int)next;
}

/* One round of poll; false when the server is to end. */
static bool serve_once(struct api_server *s, struct conn **conns)
{
	struct pollfd fds[2 + API_MAX_CONNS] = {
		{ .fd = s->stop_fd, .events = POLLIN }, { .fd = s->listen_fd, .events = POLLIN },
	};
	int timeout = expire(conns);
	bool started = false;

	for (int i = 0; i < API_MAX_CONNS; i++)
		fds[2 + i] = (struct pollfd){ .fd = conns[i] ? conns[i]->fd : -1, .events = POLLIN };
	if (poll(fds, 2 + API_MAX_CONNS, timeout) < 0)
		return errno == EINTR;
	if (fds[0].revents)
		return false;
	for (int i = 0; i < API_MAX_CONNS; i++)
		if (conns[i] && fds[2 + i].revents && !read_conn(s, conns[i], &started))
			close_conn(&conns[i]);
	if (fds[1].revents)
		accept_conn(s, conns);
	/* The VM runs now: from here on this thread keeps to its allow-list. */
	if (started && !s->confined) {
		s->confined = true;
		if (s->ops.confine && s->ops.confine(s->ops.opaque))
			return false;
	}
	return true;
}

static void *serve(void *arg)
{
	struct api_server *s = arg;
	struct conn *conns[API_MAX_CONNS] = { 0 };

	while (serve_once(s, conns))
		;
	for (int i = 0; i < API_MAX_CONNS; i++)
		if (conns[i])
			close_conn(&conns[i]);
	close(s->listen_fd);
	s->listen_fd = -1;
	unlink(s->path);
	return NULL;
}

/* ---- the socket ---- */

/* Replace a stale socket file, never anything else. */
static int clear_path(const char *path, char *why, size_t len)
{
	struct stat st;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, len, "--api-sock %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, len, "--api-sock %s: exists and is not a socket (not replaced)", path);
		return -EEXIST;
	}
	if (unlink(path)) {
		snprintf(why, len, "--api-sock %s: cannot remove the old socket: %s", path,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

/* A listening socket at `at`, 0600 from the start (the umask of a process
 * that has no other thread yet), so no other user ever gets to connect. */
static int listen_at(const char *at)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err = 0;
	mode_t old;

	if (fd < 0)
		return -errno;
	memcpy(addr.sun_path, at, strlen(at) + 1); /* the caller checked the length */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		err = -errno;
	umask(old);
	if (!err && listen(fd, API_MAX_CONNS))
		err = -errno;
	if (err) {
		close(fd);
		unlink(at);
		return err;
	}
	return fd;
}

/* The socket appears at `path` only once it listens: clients (and the
 * tests) wait for the file and connect at once, and a socket that is bound
 * but not yet listening refuses them. So it listens under a temporary name
 * first and is renamed into place (unless that name would not fit). */
static int bind_socket(const char *path, char *why, size_t len)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd, err;

	if (strlen(path) >= sizeof(tmp)) {
		snprintf(why, len, "--api-sock %s: path too long (at most %zu bytes)", path,
			 sizeof(tmp) - 1);
		return -ENAMETOOLONG;
	}
	if ((err = clear_path(path, why, len)))
		return err;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= sizeof(tmp))
		snprintf(tmp, sizeof(tmp), "%s", path);
	fd = listen_at(tmp);
	if (fd >= 0 && strcmp(tmp, path) && rename(tmp, path)) {
		err = -errno;
		close(fd);
		unlink(tmp);
		fd = err;
	}
	if (fd < 0)
		snprintf(why, len, "--api-sock %s: %s", path, strerror(-fd));
	return fd;
}

static void free_server(struct api_server *s)
{
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	pthread_mutex_destroy(&s->box.lock);
	pthread_cond_destroy(&s->box.answered);
	free(s->path);
	free(s);
}

/* The thread with every signal blocked: they are the main thread's. */
static int start_thread(struct api_server *s)
{
	sigset_t all, saved;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	err = pthread_create(&s->thread, NULL, serve, s);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return -err;
}

int api_server_start(struct api_server **out, const char *path, struct fc_config *fc,
		     const struct api_ops *ops, char *why, size_t why_len)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int err;

	if (!s || !(s->path = strdup(path))) {
		free(s);
		snprintf(why, why_len, "--api-sock: out of memory");
		return -ENOMEM;
	}
	s->fc = fc;
	s->ops = *ops;
	s->wake_fd = s->stop_fd = s->listen_fd = -1;
	pthread_mutex_init(&s->box.lock, NULL);
	pthread_cond_init(&s->box.answered, NULL);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0 || s->stop_fd < 0) {
		err = -errno;
		snprintf(why, why_len, "--api-sock: eventfd: %s", strerror(errno));
	} else if ((err = bind_socket(path, why, why_len)) >= 0) {
		s->listen_fd = err;
		err = start_thread(s);
		if (err)
			snprintf(why, why_len, "--api-sock: cannot start its thread: %s", strerror(-err));
	}
	if (err < 0) {
		free_server(s);
		return err;
	}
	*out = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	pthread_mutex_lock(&s->box.lock);
	s->box.closing = true;
	pthread_cond_broadcast(&s->box.answered);
	pthread_mutex_unlock(&s->box.lock);
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* cannot fail for a fresh eventfd; the join below would tell */
	}
	pthread_join(s->thread, NULL);
	free_server(s);
}
