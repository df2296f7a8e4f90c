/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock without KVM: the packet header checks, the connections on
 * fake rings in a malloc'd guest RAM (vsock_conn.c driven by hand, so each
 * step is deterministic), with real Unix sockets in a temporary directory
 * as the host side, and the device through its MMIO registers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/internal.h"
#include "devices/virtio/vsock.h"
#include "utils.h"
#include "vm.h"

#define RAM_SIZE (4u << 20)
#define QN 256
#define TXQ 0x10000ULL
#define RXQ 0x20000ULL
#define TX_DATA 0x100000ULL     /* QN slots of 0x1000 */
#define RX_DATA 0x200000ULL     /* QN slots of 0x2000 */
#define RX_BUF (VSOCK_HDR_LEN + 4096)
#define CID 42

struct fx {
	struct mem_map mm;
	struct vm vm;
	uint8_t *ram;
	struct virtq tx, rx;
	struct vsock *v;
	char dir[64], path[96];
	uint16_t tx_next, rx_posted, rx_seen;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->ram = calloc(1, RAM_SIZE);
	f->mm = (struct mem_map){ .nr_slots = 1 };
	f->mm.slots[0] = (struct mem_slot){ .gpa = 0, .size = RAM_SIZE, .hva = f->ram };
	f->vm = (struct vm){ .mem_map = &f->mm };
	assert_int_equal(virtq_init(&f->tx, &f->vm, QN, TXQ, TXQ + 0x1000, TXQ + 0x2000, 0), 0);
	assert_int_equal(virtq_init(&f->rx, &f->vm, QN, RXQ, RXQ + 0x1000, RXQ + 0x2000, 0), 0);
	strcpy(f->dir, "/tmp/vsock-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	char why[128] = "";
	f->v = vsock_new(CID, f->path, why, sizeof(why));
	assert_non_null(f->v);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	vsock_free(f->v);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->ram);
	free(f);
	return 0;
}

/* ---- the guest's side ---- */

static void put_hdr(uint8_t *p, const struct vsock_hdr *h)
{
	vsock_pkt_encode(h, p);
}

static struct vsock_hdr guest_hdr(uint16_t op, uint32_t src_port, uint32_t dst_port)
{
	return (struct vsock_hdr){ .src_cid = CID, .dst_cid = VSOCK_HOST_CID,
				   .src_port = src_port, .dst_port = dst_port,
				   .type = VSOCK_TYPE_STREAM, .op = op,
				   .buf_alloc = 1 << 20 };
}

/* Put a packet on TX (header and payload in one buffer) and run TX. */
static int send_pkt(struct fx *f, const struct vsock_hdr *h, const void *data, uint32_t len)
{
	uint16_t slot = f->tx_next % QN;
	uint64_t gpa = TX_DATA + (uint64_t)slot * 0x1000;
	struct virtq_desc *d = (struct virtq_desc *)(f->ram + TXQ) + slot;
	struct virtq_avail *a = (struct virtq_avail *)(f->ram + TXQ + 0x1000);

	assert_true(VSOCK_HDR_LEN + len <= 0x1000);
	put_hdr(f->ram + gpa, h);
	if (len)
		memcpy(f->ram + gpa + VSOCK_HDR_LEN, data, len);
	*d = (struct virtq_desc){ gpa, VSOCK_HDR_LEN + len, 0, 0 };
	a->ring[a->idx % QN] = slot;
	a->idx++;
	f->tx_next++;
	return vsock_tx(f->v, &f->tx);
}

static void post_rx(struct fx *f, unsigned n)
{
	struct virtq_avail *a = (struct virtq_avail *)(f->ram + RXQ + 0x1000);

	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = f->rx_posted % QN;
		struct virtq_desc *d = (struct virtq_desc *)(f->ram + RXQ) + slot;

		*d = (struct virtq_desc){ RX_DATA + (uint64_t)slot * 0x2000, RX_BUF,
					  VIRTQ_DESC_F_WRITE, 0 };
		a->ring[a->idx % QN] = slot;
		a->idx++;
		f->rx_posted++;
	}
}

/* The next packet the device gave the guest: 1 and *h, data; 0 none. */
static int recv_pkt(struct fx *f, struct vsock_hdr *h, uint8_t *data)
{
	struct virtq_used *u = (struct virtq_used *)(f->ram + RXQ + 0x2000);
	const uint8_t *p;

	vsock_host_events(f->v);
	assert_true(vsock_rx(f->v, &f->rx) >= 0);
	if (u->idx == f->rx_seen)
		return 0;
	struct virtq_used_elem e = u->ring[f->rx_seen % QN];
	f->rx_seen++;
	p = f->ram + RX_DATA + (uint64_t)e.id * 0x2000;
	memcpy(&h->src_cid, p, 8);
	memcpy(&h->dst_cid, p + 8, 8);
	memcpy(&h->src_port, p + 16, 4);
	memcpy(&h->dst_port, p + 20, 4);
	memcpy(&h->len, p + 24, 4);
	memcpy(&h->type, p + 28, 2);
	memcpy(&h->op, p + 30, 2);
	memcpy(&h->flags, p + 32, 4);
	memcpy(&h->buf_alloc, p + 36, 4);
	memcpy(&h->fwd_cnt, p + 40, 4);
	assert_int_equal(e.len, VSOCK_HDR_LEN + h->len);
	if (data)
		memcpy(data, p + VSOCK_HDR_LEN, h->len);
	post_rx(f, 1);
	return 1;
}

#define expect(...) expect_at(__LINE__, __VA_ARGS__)
static void expect_at(int line, struct fx *f, uint16_t op, uint32_t src_port,
		      uint32_t dst_port, struct vsock_hdr *out, uint8_t *data)
{
	struct vsock_hdr h;

	if (recv_pkt(f, &h, data) != 1)
		fail_msg("line %d: no packet for the guest (op %u wanted)", line, op);
	if (h.op != op)
		fail_msg("line %d: op %u, wanted %u", line, h.op, op);
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.type, VSOCK_TYPE_STREAM);
	if (src_port != UINT32_MAX)
		assert_int_equal(h.src_port, src_port);
	assert_int_equal(h.dst_port, dst_port);
	assert_int_equal(h.buf_alloc, VSOCK_CONN_BUF);
	if (out)
		*out = h;
}

static void expect_nothing(struct fx *f)
{
	struct vsock_hdr h;

	assert_int_equal(recv_pkt(f, &h, NULL), 0);
}

/* ---- the host's side ---- */

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4096), 0);
	return fd;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int service(struct fx *f, uint32_t port)
{
	char p[128];

	snprintf(p, sizeof(p), "%s_%u", f->path, port);
	return unix_listen(p);
}

static void read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (uint8_t *)buf + got, len - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* ---- tests ---- */

/* Field by field: the struct has padding, which nobody sets. */
static void assert_hdr_equal(const struct vsock_hdr *a, const struct vsock_hdr *b)
{
	assert_int_equal(a->src_cid, b->src_cid);
	assert_int_equal(a->dst_cid, b->dst_cid);
	assert_int_equal(a->src_port, b->src_port);
	assert_int_equal(a->dst_port, b->dst_port);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->buf_alloc, b->buf_alloc);
	assert_int_equal(a->fwd_cnt, b->fwd_cnt);
}

static void test_pkt_parse(void **state)
{
	uint8_t b[VSOCK_HDR_LEN + 8];
	struct iovec iov = { b, sizeof(b) };
	struct vsock_hdr h = guest_hdr(VSOCK_OP_RW, 1, 2), got;

	h.len = 8;
	vsock_pkt_encode(&h, b);
	assert_int_equal(vsock_pkt_parse(&iov, 1, sizeof(b), CID, &got), VSOCK_PKT_OK);
	assert_hdr_equal(&got, &h);
	assert_int_equal(vsock_pkt_parse(&iov, 1, 43, CID, &got), VSOCK_PKT_SHORT);
	assert_int_equal(vsock_pkt_parse(&iov, 1, sizeof(b), CID + 1, &got), VSOCK_PKT_SRC_CID);
	h.len = 9; /* more than the chain holds */
	vsock_pkt_encode(&h, b);
	assert_int_equal(vsock_pkt_parse(&iov, 1, sizeof(b), CID, &got), VSOCK_PKT_LEN);
	h.len = 0;
	h.op = 8;
	vsock_pkt_encode(&h, b);
	assert_int_equal(vsock_pkt_parse(&iov, 1, sizeof(b), CID, &got), VSOCK_PKT_OP);
	h.op = VSOCK_OP_REQUEST;
	h.type = 2; /* SEQPACKET: not offered */
	vsock_pkt_encode(&h, b);
	assert_int_equal(vsock_pkt_parse(&iov, 1, sizeof(b), CID, &got), VSOCK_PKT_TYPE);
	h.type = VSOCK_TYPE_STREAM;
	h.dst_cid = 7;
	vsock_pkt_encode(&h, b);
	assert_int_equal(vsock_pkt_parse(&iov, 1, sizeof(b), CID, &got), VSOCK_PKT_DST_CID);
	h.dst_cid = VSOCK_HOST_CID;
	h.len = 4; /* data on a REQUEST */
	vsock_pkt_encode(&h, b);
	assert_int_equal(vsock_pkt_parse(&iov, 1, sizeof(b), CID, &got), VSOCK_PKT_LEN);
}

static void test_new_refuses(void **state)
{
	struct fx *f = *state;
	char why[160], file[128];
	int fd;

	assert_null(vsock_new(2, "/tmp/x", why, sizeof(why)));
	assert_non_null(strstr(why, "CID 2"));
	snprintf(file, sizeof(file), "%s/plain", f->dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(vsock_new(5, file, why, sizeof(why)));
	assert_non_null(strstr(why, "not a socket"));
	assert_int_equal(access(file, F_OK), 0); /* left alone */
	/* Our listener is there, and goes with the device. */
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
}

/* Guest -> host: REQUEST, RESPONSE, bytes both ways, credit, close. */
static void test_guest_connects(void **state)
{
	struct fx *f = *state;
	int lfd = service(f, 1234), hfd;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 5555, 1234), r;
	uint8_t buf[4096];

	post_rx(f, 8);
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RESPONSE, 1234, 5555, NULL, NULL);
	hfd = accept(lfd, NULL, NULL);
	assert_true(hfd >= 0);

	h = guest_hdr(VSOCK_OP_RW, 5555, 1234);
	h.len = 5;
	assert_int_equal(send_pkt(f, &h, "hello", 5), 0);
	read_exact(hfd, buf, 5);
	assert_memory_equal(buf, "hello", 5);

	/* The guest has room for 8 bytes: 8 of 20 come, the rest waits. */
	h = guest_hdr(VSOCK_OP_CREDIT_UPDATE, 5555, 1234);
	h.buf_alloc = 8;
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	assert_int_equal(write(hfd, "0123456789abcdefghij", 20), 20);
	expect(f, VSOCK_OP_RW, 1234, 5555, &r, buf);
	assert_int_equal(r.len, 8);
	assert_memory_equal(buf, "01234567", 8);
	assert_int_equal(r.fwd_cnt, 5); /* the 5 bytes we forwarded */
	expect_nothing(f);
	h.fwd_cnt = 8; /* it read them */
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RW, 1234, 5555, &r, buf);
	assert_int_equal(r.len, 8);
	assert_memory_equal(buf, "89abcdef", 8);
	h.fwd_cnt = 16;
	h.buf_alloc = 1 << 20;
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RW, 1234, 5555, &r, buf);
	assert_int_equal(r.len, 4);

	/* CREDIT_REQUEST gets our credit. */
	h = guest_hdr(VSOCK_OP_CREDIT_REQUEST, 5555, 1234);
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_CREDIT_UPDATE, 1234, 5555, &r, NULL);
	assert_int_equal(r.fwd_cnt, 5);

	/* The host closes: SHUTDOWN(SEND); the guest closes: RST, gone. */
	close(hfd);
	expect(f, VSOCK_OP_SHUTDOWN, 1234, 5555, &r, NULL);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_SEND);
	h = guest_hdr(VSOCK_OP_SHUTDOWN, 5555, 1234);
	h.flags = VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV;
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RST, 1234, 5555, NULL, NULL);
	h = guest_hdr(VSOCK_OP_RW, 5555, 1234);
	h.len = 1;
	assert_int_equal(send_pkt(f, &h, "x", 1), 0);
	expect(f, VSOCK_OP_RST, 1234, 5555, NULL, NULL); /* no such connection */
	close(lfd);
}

/* Host -> guest: "CONNECT 5000\n", REQUEST, RESPONSE, "OK <port>\n". */
static void test_host_connects(void **state)
{
	struct fx *f = *state;
	int cfd = unix_connect(f->path);
	struct vsock_hdr h, r;
	uint8_t buf[64];
	char ok[32];

	post_rx(f, 8);
	/* The line and the first data in one write: the data is not lost. */
	assert_int_equal(write(cfd, "CONNECT 5000\nearly", 18), 18);
	expect(f, VSOCK_OP_REQUEST, UINT32_MAX, 5000, &r, NULL);
	assert_true(r.src_port >= (1u << 30));
	expect_nothing(f); /* no data before the guest answers */
	h = guest_hdr(VSOCK_OP_RESPONSE, 5000, r.src_port);
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	int n = snprintf(ok, sizeof(ok), "OK %u\n", r.src_port);
	memset(buf, 0, sizeof(buf));
	read_exact(cfd, buf, (size_t)n);
	assert_string_equal((char *)buf, ok);
	expect(f, VSOCK_OP_RW, r.src_port, 5000, &r, buf);
	assert_int_equal(r.len, 5);
	assert_memory_equal(buf, "early", 5);

	h = guest_hdr(VSOCK_OP_RW, 5000, r.src_port);
	h.len = 3;
	assert_int_equal(send_pkt(f, &h, "abc", 3), 0);
	read_exact(cfd, buf, 3);
	assert_memory_equal(buf, "abc", 3);
	/* The guest resets: the client sees the end. */
	h = guest_hdr(VSOCK_OP_RST, 5000, r.src_port);
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	assert_int_equal(read(cfd, buf, sizeof(buf)), 0);
	close(cfd);
}

static void test_bad_handshakes(void **state)
{
	struct fx *f = *state;
	int a = unix_connect(f->path), b = unix_connect(f->path);
	char buf[8];

	post_rx(f, 4);
	assert_int_equal(write(a, "HELLO 1\n", 8), 8);
	assert_int_equal(write(b, "CONNECT 1111111111111111111111111111", 36), 36);
	expect_nothing(f);
	/* closed: EOF, or ECONNRESET where our bytes were left unread */
	assert_true(read(a, buf, sizeof(buf)) <= 0);
	assert_true(read(b, buf, sizeof(buf)) <= 0);
	close(a);
	close(b);
}

/* Whatever the guest gets wrong is answered with an RST, never more. */
static void test_rst_on_bad_packets(void **state)
{
	struct fx *f = *state;
	struct vsock_hdr h;

	post_rx(f, 16);
	h = guest_hdr(VSOCK_OP_REQUEST, 1, 9); /* nobody listens at _9 */
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RST, 9, 1, NULL, NULL);
	h = guest_hdr(VSOCK_OP_RW, 2, 9); /* no such connection */
	h.len = 2;
	assert_int_equal(send_pkt(f, &h, "hi", 2), 0);
	expect(f, VSOCK_OP_RST, 9, 2, NULL, NULL);
	h = guest_hdr(42, 3, 9); /* unknown op */
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RST, 9, 3, NULL, NULL);
	h = guest_hdr(VSOCK_OP_REQUEST, 4, 9);
	h.dst_cid = 99;
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RST, 9, 4, NULL, NULL);
	h = guest_hdr(VSOCK_OP_RW, 5, 9);
	h.len = VSOCK_MAX_PAYLOAD + 1;
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RST, 9, 5, NULL, NULL);
	h = guest_hdr(VSOCK_OP_RST, 6, 9); /* an RST is never answered */
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect_nothing(f);
	struct vsock_stats st;
	vsock_get_stats(f->v, &st);
	assert_int_equal(st.rst_sent, 5);
}

/* A guest beyond the credit we gave is reset. */
static void test_credit_violation(void **state)
{
	struct fx *f = *state;
	int lfd = service(f, 77), hfd;
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 1, 77);
	static uint8_t chunk[4000];
	unsigned sent = 0;

	post_rx(f, 8);
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RESPONSE, 77, 1, NULL, NULL);
	hfd = accept(lfd, NULL, NULL);
	/* The host reads nothing: its socket buffer fills, then ours. */
	int small = 4096;
	setsockopt(hfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	h = guest_hdr(VSOCK_OP_RW, 1, 77);
	h.len = sizeof(chunk);
	for (int i = 0; i < 200; i++) {
		struct vsock_hdr r = { 0 };

		assert_int_equal(send_pkt(f, &h, chunk, sizeof(chunk)), 0);
		sent += sizeof(chunk);
		while (recv_pkt(f, &r, NULL) && r.op == VSOCK_OP_CREDIT_UPDATE)
			r.op = 0; /* room the socket made: the guest ignores it */
		if (r.op) {
			assert_int_equal(r.op, VSOCK_OP_RST);
			break;
		}
	}
	/* Reset only once more than what the socket took plus our buffer. */
	assert_true(sent > VSOCK_CONN_BUF);
	assert_true(sent < 4u << 20);
	close(hfd);
	close(lfd);
}

/* At most VSOCK_MAX_CONNS connections; the next REQUEST gets an RST. */
static void test_connection_cap(void **state)
{
	struct fx *f = *state;
	struct rlimit rl;
	int lfd;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * VSOCK_MAX_CONNS + 64)
		skip();
	lfd = service(f, 80);
	post_rx(f, QN / 2);
	for (unsigned i = 0; i <= VSOCK_MAX_CONNS; i++) {
		struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 10000 + i, 80);

		assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
		expect(f, i < VSOCK_MAX_CONNS ? VSOCK_OP_RESPONSE : VSOCK_OP_RST, 80,
		       10000 + i, NULL, NULL);
		if (i < VSOCK_MAX_CONNS)
			assert_true(accept(lfd, NULL, NULL) >= 0); /* closed at exit */
	}
	/* Host clients beyond the cap are closed at once. */
	int c = unix_connect(f->path);
	char b;
	vsock_host_events(f->v);
	assert_int_equal(read(c, &b, 1), 0);
	close(c);
	close(lfd);
}

/* A duplicate REQUEST for a live connection resets it. */
static void test_duplicate_request(void **state)
{
	struct fx *f = *state;
	int lfd = service(f, 90);
	struct vsock_hdr h = guest_hdr(VSOCK_OP_REQUEST, 7, 90);

	post_rx(f, 8);
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RESPONSE, 90, 7, NULL, NULL);
	assert_int_equal(send_pkt(f, &h, NULL, 0), 0);
	expect(f, VSOCK_OP_RST, 90, 7, NULL, NULL);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkt_parse),
		cmocka_unit_test_setup_teardown(test_new_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_handshakes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_on_bad_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_violation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_request, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
