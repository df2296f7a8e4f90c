/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock connections, bridged to host Unix sockets (Firecracker's
 * hybrid vsock):
 *
 *  - host -> guest: a client connects to uds_path and writes "CONNECT
 *    <port>\n"; we send the guest a REQUEST to that port from an ephemeral
 *    port of ours, and on its RESPONSE write "OK <our port>\n" to the client.
 *  - guest -> host: a REQUEST to (CID 2, port P) connects a socket to
 *    "<uds_path>_P"; RESPONSE if that worked, RST if not.
 *
 * Then bytes flow both ways under virtio-vsock's credit (5.10.6.3): we never
 * send the guest more than its buf_alloc minus what it has not yet consumed
 * (and never read more from a host socket than that), and we announce
 * VSOCK_CONN_BUF as ours: what a host socket does not take at once waits in
 * that buffer, so a guest that sends beyond its credit is reset (RST).
 * Anything malformed, unknown, or for a connection that does not exist gets
 * an RST.
 *
 * Host sockets sit in a private epoll set, edge-triggered: an event only
 * sets a connection's readable/writable flag, and data moves when the guest
 * has credit and buffers. The device watches that epoll fd on the VM's I/O
 * thread, so nothing here blocks, and connections come and go without
 * touching the VM's watch table. A timerfd in the same set ends handshakes
 * that take too long (a client that never finishes its CONNECT line, a
 * guest that never answers).
 *
 * Answers without a connection (RST to a bad packet) queue in a small ring;
 * when it is full the TX queue waits for the guest to take them, which is
 * the back-pressure against a guest that floods bad packets. Answers for a
 * connection are flags on it, so they never overflow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"
#include "utils.h"

#define RST_RING 64
#define TX_BATCH 256
#define RX_IOV 64
#define TICK_MS 250
#define CONNECT_MS 5000         /* the guest's RESPONSE to our REQUEST */
#define EPHEMERAL_FIRST (1u << 30)
#define KEY_LISTEN UINT64_MAX
#define KEY_TIMER (UINT64_MAX - 1)
#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)

enum conn_state {
	C_FREE = 0,
	C_HANDSHAKE,   /* host client: waiting for its CONNECT line */
	C_CONNECTING,  /* REQUEST sent (or due) to the guest */
	C_OPEN,
	C_DRAIN,       /* RST sent; flushing what the guest sent, then freed */
};

struct conn {
	enum conn_state state;
	int fd;
	uint32_t gen;                 /* tells a stale epoll key from this one */
	uint32_t local_port;          /* ours (the host side) */
	uint32_t peer_port;           /* the guest's */
	uint64_t deadline_ms;         /* HANDSHAKE / CONNECTING */
	bool readable, writable;      /* epoll said so since our last EAGAIN */
	bool host_eof;                /* told the guest: no more from us */
	bool guest_shut_send, guest_shut_rcv;
	bool shut_wr_done;
	/* Answers due to the guest. */
	bool need_request, need_response, need_credit, need_rst;
	uint32_t need_shutdown;       /* VSOCK_SHUTDOWN_* to send */
	/* Credit: the guest's receive buffer and what it consumed of ours. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* Ours: bytes taken from the guest, given to the socket, announced. */
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_told;
	uint8_t *buf;                 /* VSOCK_CONN_BUF ring, or NULL */
	uint32_t buf_head, buf_len;
};

struct vsock {
	uint64_t cid;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd, epoll_fd, timer_fd;
	bool bound;                   /* the path is our socket: remove it */
	bool timer_on;
	uint32_t next_port;
	unsigned nr_conns, rr;
	struct conn conns[VSOCK_MAX_CONNS];
	struct vsock_hdr rst[RST_RING];
	unsigned rst_head, rst_len;
	struct vsock_stats stats;
	struct iovec iov[VIRTQ_MAX_SIZE], slice[RX_IOV];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t conn_key(const struct vsock *v, const struct conn *c)
{
	return (uint64_t)c->gen << 32 | (uint64_t)(c - v->conns);
}

/* ---- connections ---- */

static struct conn *conn_alloc(struct vsock *v, int fd, enum conn_state st)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];
		uint32_t gen = c->gen + 1;
		struct epoll_event ev;

		if (c->state != C_FREE)
			continue;
		*c = (struct conn){ .state = st, .fd = fd, .gen = gen };
		ev = (struct epoll_event){ .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
					   .data.u64 = conn_key(v, c) };
		if (epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			c->state = C_FREE;
			return NULL;
		}
		v->nr_conns++;
		v->stats.conns_opened++;
		return c;
	}
	return NULL;
}

static void conn_free(struct vsock *v, struct conn *c)
{
	if (c->state == C_FREE)
		return;
	close(c->fd); /* leaves the epoll set with it */
	free(c->buf);
	c->state = C_FREE;
	c->buf = NULL;
	v->nr_conns--;
}

/* The live connection for a guest packet (our port, the guest's port). */
static struct conn *conn_find(struct vsock *v, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];

		if ((c->state == C_CONNECTING || c->state == C_OPEN) &&
		    c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

/* Tell the guest this connection is gone; freed once the RST is out. */
static void conn_reset(struct conn *c)
{
	c->need_rst = true;
	c->need_request = c->need_response = c->need_credit = false;
	c->need_shutdown = 0;
}

/* A connection both sides finished sending on: close it. */
static void conn_check_done(struct conn *c)
{
	if (c->host_eof && c->guest_shut_send && !c->need_rst)
		conn_reset(c);
}

/* The guest's credit for us: room left in its receive buffer. */
static uint32_t peer_credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static void arm_timer(struct vsock *v)
{
	struct itimerspec its = {
		.it_interval = { 0, TICK_MS * 1000000L },
		.it_value = { 0, TICK_MS * 1000000L },
	};

	if (v->timer_on)
		return;
	if (timerfd_settime(v->timer_fd, 0, &its, NULL) == 0)
		v->timer_on = true;
}

/* ---- the guest's bytes on their way to the host socket ---- */

/* Flush the buffer; true when it is empty. A failing socket resets. */
static bool buf_flush(struct conn *c)
{
	while (c->buf_len) {
		uint32_t first = MIN(c->buf_len, VSOCK_CONN_BUF - c->buf_head);
		struct iovec iov[2] = {
			{ c->buf + c->buf_head, first },
			{ c->buf, c->buf_len - first },
		};
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = iov[1].iov_len ? 2 : 1 };
		ssize_t r = sendmsg(c->fd, &m, SEND_FLAGS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			c->writable = false;
			return false;
		}
		if (r <= 0) {
			conn_reset(c);
			c->buf_len = 0;
			return true;
		}
		c->buf_head = (uint32_t)((c->buf_head + (uint32_t)r) % VSOCK_CONN_BUF);
		c->buf_len -= (uint32_t)r;
		c->fwd_cnt += (uint32_t)r;
	}
	return true;
}

/* Copy [skip, skip+len) of iov to the end of the buffer (room checked). */
static int buf_append(struct conn *c, const struct iovec *iov, unsigned n,
		      size_t skip, uint32_t len)
{
	uint32_t tail, first;

	if (!c->buf && !(c->buf = malloc(VSOCK_CONN_BUF)))
		return -ENOMEM;
	tail = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF;
	first = MIN(len, VSOCK_CONN_BUF - tail);
	iov_to_buf(iov, n, skip, c->buf + tail, first);
	iov_to_buf(iov, n, skip + first, c->buf, len - first);
	c->buf_len += len;
	return 0;
}

/* After the socket took bytes: shut its write side once the guest is done,
 * tell the guest about the room once half the buffer was freed. */
static void after_flush(struct conn *c)
{
	if (c->buf_len)
		return;
	if (c->guest_shut_send && !c->shut_wr_done) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr_done = true;
	}
	if (c->fwd_cnt - c->fwd_cnt_told >= VSOCK_CONN_BUF / 2)
		c->need_credit = true;
}

/* An RW packet's payload (iov from `skip`, len bytes) to the host socket:
 * straight from guest memory while nothing waits, the rest buffered. */
static void conn_write(struct vsock *v, struct conn *c, const struct iovec *iov,
		       unsigned n, size_t skip, uint32_t len)
{
	size_t sent = 0;

	if (c->rx_cnt - c->fwd_cnt + len > VSOCK_CONN_BUF) {
		v->stats.bad_packets++; /* beyond the credit we gave */
		conn_reset(c);
		return;
	}
	c->rx_cnt += len;
	if (!c->buf_len) {
		size_t got;
		unsigned cnt = iov_slice(iov, n, skip, len, v->slice, RX_IOV, &got);
		struct msghdr m = { .msg_iov = v->slice, .msg_iovlen = cnt };
		ssize_t r = sendmsg(c->fd, &m, SEND_FLAGS);

		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			conn_reset(c);
			return;
		}
		if (r < 0 || (size_t)r < got)
			c->writable = false; /* the socket is full: EPOLLOUT tells */
		sent = r > 0 ? (size_t)r : 0;
		c->fwd_cnt += (uint32_t)sent;
	}
	if (sent < len && buf_append(c, iov, n, skip + sent, len - (uint32_t)sent)) {
		conn_reset(c);
		return;
	}
	if (c->buf_len && c->writable)
		buf_flush(c);
	after_flush(c);
}

/* ---- packets from the guest ---- */

static bool rst_queue(struct vsock *v, const struct vsock_hdr *to)
{
	struct vsock_hdr *r;

	if (v->rst_len == RST_RING)
		return false;
	r = &v->rst[(v->rst_head + v->rst_len++) % RST_RING];
	*r = (struct vsock_hdr){ .src_cid = VSOCK_HOST_CID, .dst_cid = v->cid,
				 .src_port = to->dst_port, .dst_port = to->src_port,
				 .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
				 .buf_alloc = VSOCK_CONN_BUF };
	v->stats.rst_sent++;
	return true;
}

/* "<uds_path>_<port>": the host service the guest connects to. */
static int connect_host(const struct vsock *v, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->path, port);

	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The guest connects to a host port; false when it gets an RST. */
static bool guest_request(struct vsock *v, const struct vsock_hdr *h)
{
	struct conn *c;
	int fd;

	if (conn_find(v, h->dst_port, h->src_port) || v->nr_conns >= VSOCK_MAX_CONNS)
		return false;
	fd = connect_host(v, h->dst_port);
	if (fd < 0)
		return false;
	c = conn_alloc(v, fd, C_OPEN);
	if (!c) {
		close(fd);
		return false;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->need_response = true;
	c->readable = c->writable = true;
	return true;
}

/* The guest accepted our REQUEST: tell the host client which port it got. */
static void guest_response(struct conn *c)
{
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
	struct iovec iov = { ok, (size_t)n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	/* A fresh socket's buffer takes a few bytes; if not, give up. */
	if (sendmsg(c->fd, &m, SEND_FLAGS) != n) {
		conn_reset(c);
		return;
	}
	c->state = C_OPEN;
	c->readable = true; /* the client may have written already */
}

static void guest_shutdown(struct conn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_RCV)
		c->guest_shut_rcv = true;
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_shut_send = true;
	/* Both: the guest closed its socket and waits for our RST. */
	if ((flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) ==
	    (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) {
		conn_reset(c);
		return;
	}
	after_flush(c);
	conn_check_done(c);
}

/* A checked packet for an existing connection. */
static void conn_packet(struct vsock *v, struct conn *c, const struct vsock_hdr *h,
			const struct iovec *iov, unsigned n)
{
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state == C_CONNECTING && !c->need_request)
			guest_response(c);
		else
			conn_reset(c);
		break;
	case VSOCK_OP_RW:
		if (c->state != C_OPEN || c->guest_shut_send)
			conn_reset(c);
		else if (h->len)
			conn_write(v, c, iov, n, VSOCK_HDR_LEN, h->len);
		break;
	case VSOCK_OP_SHUTDOWN:
		guest_shutdown(c, h->flags);
		break;
	case VSOCK_OP_RST:
		c->need_rst = false;
		c->state = C_DRAIN; /* nothing to tell the guest any more */
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->need_credit = true;
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit above is all it carries */
	default: /* REQUEST for a connection that exists */
		conn_reset(c);
	}
}

/* One packet: false when an RST was due and the ring was full (retry). */
static bool tx_packet(struct vsock *v, const struct virtq_elem *e)
{
	struct vsock_hdr h;
	enum vsock_bad bad = vsock_pkt_parse(e->iov, e->nr_out, e->out_len, v->cid, &h);
	struct conn *c;

	if (bad == VSOCK_PKT_SHORT) {
		v->stats.bad_packets++; /* no addresses to answer */
		return true;
	}
	if (bad != VSOCK_PKT_OK) {
		if (h.op == VSOCK_OP_RST)
			return true; /* never answer an RST with one */
		if (v->rst_len == RST_RING)
			return false;
		v->stats.bad_packets++;
		return rst_queue(v, &h);
	}
	v->stats.tx_packets++;
	v->stats.tx_bytes += h.len;
	c = conn_find(v, h.dst_port, h.src_port);
	if (c) {
		conn_packet(v, c, &h, e->iov, e->nr_out);
		if (c->state == C_DRAIN && !c->buf_len)
			conn_free(v, c);
		return true;
	}
	if (h.op == VSOCK_OP_RST)
		return true;
	if (v->rst_len == RST_RING)
		return false;
	if (h.op == VSOCK_OP_REQUEST && guest_request(v, &h))
		return true;
	if (h.op == VSOCK_OP_REQUEST)
		v->stats.conns_refused++;
	return rst_queue(v, &h);
}

int vsock_tx(struct vsock *v, struct virtq *tx)
{
	struct virtq_elem e = { .iov = v->iov, .max_iov = ARRAY_SIZE(v->iov) };

	for (int count = 0; count < TX_BATCH; count++) {
		int r = virtq_pop(tx, &e);

		if (r < 0)
			return r;
		if (r == 0) {
			if (!virtq_enable_notify(tx))
				return 0;
			virtq_disable_notify(tx);
			count--;
			continue;
		}
		if (!tx_packet(v, &e)) {
			virtq_unpop(tx); /* the RSTs must go out first */
			return 2;
		}
		virtq_push(tx, e.head, 0);
	}
	return 1;
}

/* ---- packets to the guest ---- */

static void fill_hdr(const struct vsock *v, const struct conn *c,
		     struct vsock_hdr *h, uint16_t op)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID, .dst_cid = v->cid,
		.src_port = c->local_port, .dst_port = c->peer_port,
		.type = VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = VSOCK_CONN_BUF, .fwd_cnt = c->fwd_cnt,
	};
}

static bool can_send_data(const struct conn *c)
{
	return c->state == C_OPEN && c->readable && !c->host_eof &&
	       !c->guest_shut_rcv && !c->need_response && peer_credit(c) > 0;
}

/* The control packet a connection owes the guest (op 0: none). */
static uint16_t conn_control(struct conn *c, uint32_t *flags)
{
	*flags = 0;
	if (c->state == C_FREE || c->state == C_DRAIN)
		return 0;
	if (c->need_rst)
		return VSOCK_OP_RST;
	if (c->need_request)
		return VSOCK_OP_REQUEST;
	if (c->need_response)
		return VSOCK_OP_RESPONSE;
	if (c->need_shutdown) {
		*flags = c->need_shutdown;
		return VSOCK_OP_SHUTDOWN;
	}
	if (c->need_credit)
		return VSOCK_OP_CREDIT_UPDATE;
	return 0;
}

static void control_sent(struct vsock *v, struct conn *c, uint16_t op)
{
	switch (op) {
	case VSOCK_OP_RST:
		c->need_rst = false;
		c->state = C_DRAIN;
		if (!c->buf_len)
			conn_free(v, c);
		break;
	case VSOCK_OP_REQUEST: c->need_request = false; break;
	case VSOCK_OP_RESPONSE: c->need_response = false; break;
	case VSOCK_OP_SHUTDOWN: c->need_shutdown = 0; break;
	}
	c->need_credit = false; /* every packet carries our credit */
}

/* Read from the host socket into the chain after the header: the bytes
 * read, 0 when there was nothing (or the connection changed state). */
static uint32_t read_data(struct vsock *v, struct conn *c, const struct virtq_elem *e)
{
	const struct iovec *in = e->iov + e->nr_out;
	size_t want = MIN(MIN(e->in_len - VSOCK_HDR_LEN, (uint64_t)peer_credit(c)),
			  (uint64_t)VSOCK_MAX_PAYLOAD), got;
	unsigned cnt = iov_slice(in, e->nr_in, VSOCK_HDR_LEN, want, v->slice, RX_IOV, &got);
	ssize_t r;

	if (!cnt)
		return 0; /* a buffer with no room after the header */
	r = readv(c->fd, v->slice, (int)cnt);
	if (r > 0)
		return (uint32_t)r;
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->readable = false;
	} else if (r == 0) {
		c->host_eof = true; /* the client is done sending */
		c->need_shutdown |= VSOCK_SHUTDOWN_SEND;
		conn_check_done(c);
	} else {
		conn_reset(c);
	}
	return 0;
}

/* The next packet into chain e: true when one was written (*len bytes). */
static bool next_packet(struct vsock *v, const struct virtq_elem *e, uint32_t *len)
{
	struct vsock_hdr h;
	uint8_t raw[VSOCK_HDR_LEN];

	if (v->rst_len) {
		h = v->rst[v->rst_head];
		v->rst_head = (v->rst_head + 1) % RST_RING;
		v->rst_len--;
		h.dst_cid = v->cid;
		goto out;
	}
	for (unsigned k = 0; k < VSOCK_MAX_CONNS; k++) {
		struct conn *c = &v->conns[(v->rr + k) % VSOCK_MAX_CONNS];
		uint32_t flags, n = 0;
		uint16_t op = conn_control(c, &flags);

		/* Data first when nothing else is due; a read that found the
		 * end (or an error) leaves a control packet due instead. */
		if (!op && can_send_data(c) && !(n = read_data(v, c, e)))
			op = conn_control(c, &flags);
		if (n) {
			fill_hdr(v, c, &h, VSOCK_OP_RW);
			h.len = n;
			c->tx_cnt += n;
			c->fwd_cnt_told = c->fwd_cnt;
			c->need_credit = false;
			v->stats.rx_bytes += n;
		} else if (op) {
			fill_hdr(v, c, &h, op);
			h.flags = flags;
			c->fwd_cnt_told = c->fwd_cnt;
			control_sent(v, c, op);
		} else {
			continue;
		}
		v->rr = (v->rr + k + 1) % VSOCK_MAX_CONNS;
		goto out;
	}
	return false;
out:
	vsock_pkt_encode(&h, raw);
	iov_from_buf(e->iov + e->nr_out, e->nr_in, 0, raw, sizeof(raw));
	*len = VSOCK_HDR_LEN + h.len;
	v->stats.rx_packets++;
	return true;
}

bool vsock_rx_pending(const struct vsock *v)
{
	if (v->rst_len)
		return true;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = (struct conn *)&v->conns[i];
		uint32_t flags;

		if (conn_control(c, &flags) || can_send_data(c))
			return true;
	}
	return false;
}

int vsock_rx(struct vsock *v, struct virtq *rx)
{
	struct virtq_elem e = { .iov = v->iov, .max_iov = ARRAY_SIZE(v->iov) };
	int used = 0;

	while (vsock_rx_pending(v)) {
		uint32_t len;
		int r = virtq_pop(rx, &e);

		if (r < 0)
			return r;
		if (r == 0) {
			if (!virtq_enable_notify(rx))
				break; /* the driver's next buffers wake us */
			virtq_disable_notify(rx);
			continue;
		}
		if (e.nr_out || e.in_len < VSOCK_HDR_LEN)
			return -EINVAL; /* not a receive buffer */
		if (!next_packet(v, &e, &len)) {
			virtq_unpop(rx); /* the data was not there after all */
			break;
		}
		virtq_push(rx, e.head, len);
		used++;
	}
	return used;
}

/* ---- host sockets ---- */

/* "CONNECT <port>\n" -> port; -1 when it is anything else. */
static int64_t parse_connect(const char *line, size_t len)
{
	static const char word[] = "CONNECT ";
	uint64_t port = 0;
	size_t i = sizeof(word) - 1;

	if (len <= i + 1 || memcmp(line, word, i) || line[len - 1] != '\n' || len - i - 1 > 10)
		return -1;
	for (; i < len - 1; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -1;
		port = port * 10 + (uint64_t)(line[i] - '0');
	}
	return port > UINT32_MAX ? -1 : (int64_t)port;
}

static uint32_t ephemeral_port(struct vsock *v, uint32_t peer)
{
	for (;;) {
		uint32_t p = v->next_port++;

		if (v->next_port < EPHEMERAL_FIRST)
			v->next_port = EPHEMERAL_FIRST;
		if (!conn_find(v, p, peer))
			return p;
	}
}

/* The client's line, without reading past it: what follows is data. */
static void read_handshake(struct vsock *v, struct conn *c)
{
	char line[VSOCK_LINE_MAX];
	ssize_t r = recv(c->fd, line, sizeof(line), MSG_PEEK | MSG_DONTWAIT);
	char *nl = r > 0 ? memchr(line, '\n', (size_t)r) : NULL;
	int64_t port;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (!nl) {
		if (r <= 0 || r == (ssize_t)sizeof(line))
			conn_free(v, c); /* gone, or a line too long */
		return;
	}
	r = read(c->fd, line, (size_t)(nl - line + 1));
	port = r == nl - line + 1 ? parse_connect(line, (size_t)r) : -1;
	if (port < 0) {
		conn_free(v, c);
		return;
	}
	c->peer_port = (uint32_t)port;
	c->local_port = ephemeral_port(v, c->peer_port);
	c->state = C_CONNECTING;
	c->need_request = true;
	c->deadline_ms = now_ms() + CONNECT_MS;
	c->peer_buf_alloc = 0; /* no credit until the guest's RESPONSE */
}

static void accept_clients(struct vsock *v)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		c = v->nr_conns < VSOCK_MAX_CONNS ? conn_alloc(v, fd, C_HANDSHAKE) : NULL;
		if (!c) {
			v->stats.conns_refused++;
			close(fd);
			continue;
		}
		c->deadline_ms = now_ms() + VSOCK_HANDSHAKE_MS;
		arm_timer(v);
		read_handshake(v, c); /* the line may be there already */
	}
}

/* Handshakes past their time are closed; the timer stops when none is left. */
static void expire(struct vsock *v)
{
	uint64_t ticks, now = now_ms();
	bool waiting = false;

	if (read(v->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN: nothing to read, look anyway */
	}
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];

		if (c->state != C_HANDSHAKE && c->state != C_CONNECTING)
			continue;
		if (now < c->deadline_ms) {
			waiting = true;
		} else if (c->state == C_HANDSHAKE || c->need_request) {
			conn_free(v, c); /* the guest never heard of it */
		} else {
			conn_reset(c);
		}
	}
	if (!waiting && timerfd_settime(v->timer_fd, 0, &(struct itimerspec){ 0 }, NULL) == 0)
		v->timer_on = false;
}

static void conn_event(struct vsock *v, uint64_t key, uint32_t events)
{
	struct conn *c = &v->conns[(uint32_t)key % VSOCK_MAX_CONNS];

	if (c->state == C_FREE || c->gen != (uint32_t)(key >> 32))
		return; /* closed since */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	if (c->state == C_HANDSHAKE && c->readable) {
		read_handshake(v, c);
		return;
	}
	if (c->writable && c->buf_len && buf_flush(c))
		after_flush(c);
	if (c->state == C_DRAIN && !c->buf_len)
		conn_free(v, c);
}

void vsock_host_events(struct vsock *v)
{
	struct epoll_event evs[32];
	int n;

	do {
		n = epoll_wait(v->epoll_fd, evs, (int)ARRAY_SIZE(evs), 0);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == KEY_LISTEN)
				accept_clients(v);
			else if (evs[i].data.u64 == KEY_TIMER)
				expire(v);
			else
				conn_event(v, evs[i].data.u64, evs[i].events);
		}
	} while (n == (int)ARRAY_SIZE(evs));
}

/* ---- life cycle ---- */

void vsock_reset(struct vsock *v)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		conn_free(v, &v->conns[i]);
	v->rst_len = v->rst_head = 0;
}

int vsock_epoll_fd(const struct vsock *v) { return v->epoll_fd; }
uint64_t vsock_cid(const struct vsock *v) { return v->cid; }

void vsock_get_stats(const struct vsock *v, struct vsock_stats *s)
{
	*s = v->stats;
}

/* Listen at the path; a socket file left by a dead VMM is replaced, any
 * other file is not. */
static int listen_at(struct vsock *v, char *why, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	memcpy(sa.sun_path, v->path, sizeof(sa.sun_path));
	if (lstat(v->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return set_why(why, len, "uds=%s exists and is not a socket: not replacing it", v->path);
		unlink(v->path);
	}
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->listen_fd < 0 || bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (v->bound = true, listen(v->listen_fd, 64) < 0))
		return set_why(why, len, "uds=%s: %s", v->path, strerror(errno));
	return 0;
}

static int add_fd(struct vsock *v, int fd, uint64_t key)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = key };

	return epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int setup(struct vsock *v, const char *path, char *why, size_t len)
{
	/* "<path>_<port>" must fit too: 11 bytes for "_4294967295". */
	if (!*path || strlen(path) + 11 >= sizeof(v->path))
		return set_why(why, len, "uds=%s: empty, or longer than %zu bytes", path,
			       sizeof(v->path) - 12);
	memcpy(v->path, path, strlen(path) + 1);
	if (listen_at(v, why, len))
		return -1;
	v->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->epoll_fd < 0 || v->timer_fd < 0 || add_fd(v, v->listen_fd, KEY_LISTEN) ||
	    add_fd(v, v->timer_fd, KEY_TIMER))
		return set_why(why, len, "vsock: %s", strerror(errno));
	return 0;
}

struct vsock *vsock_new(uint64_t cid, const char *uds_path, char *why, size_t why_len)
{
	struct vsock *v;

	if (cid < VSOCK_MIN_GUEST_CID || cid > UINT32_MAX) {
		set_why(why, why_len, "guest CID %llu: want 3 to 4294967295",
			(unsigned long long)cid);
		return NULL;
	}
	if (!uds_path) {
		set_why(why, why_len, "no uds path given");
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		set_why(why, why_len, "out of memory");
		return NULL;
	}
	v->cid = cid;
	v->listen_fd = v->epoll_fd = v->timer_fd = -1;
	v->next_port = EPHEMERAL_FIRST;
	if (setup(v, uds_path, why, why_len)) {
		vsock_free(v);
		return NULL;
	}
	return v;
}

void vsock_free(struct vsock *v)
{
	if (!v)
		return;
	vsock_reset(v);
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->bound)
		unlink(v->path);
	if (v->epoll_fd >= 0)
		close(v->epoll_fd);
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	free(v);
}
