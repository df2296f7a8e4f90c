/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for virtio-vsock (devices/virtio/vsock_conn.c and
 * vsock_pkt.c) on the queue walker: a fuzzer-chosen TX ring of guest packets
 * and an RX ring in a fake guest RAM (tests/fuzz/fake_ram.h), processed in
 * rounds as the device does. The host side is real: a listener at a
 * temporary uds path and a service at <path>_1 and _2, so REQUESTs to
 * ports 1 and 2 open connections and the other paths (RW, credit,
 * SHUTDOWN, RST, duplicates) run on them. Checks: no crash or sanitizer
 * report, every used RX element holds at least a header, the used index
 * never runs more than the ring's size ahead.
 *
 * FUZZ_SRCS: devices/virtio/vsock_conn.c devices/virtio/vsock_pkt.c devices/virtio/queue.c core/mm.c core/util.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_vsock.c devices/virtio/vsock_conn.c devices/virtio/vsock_pkt.c \
 *     devices/virtio/queue.c core/mm.c core/util.c
 *   ./a.out tests/fuzz/corpus/vsock
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"
#include "tests/fuzz/fake_ram.h"

#define GUEST_CID 3
#define MAX_ROUNDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct hdr {
	uint8_t tx_log2, rx_log2, rounds, features;
	uint16_t tx_desc, tx_avail, tx_used, rx_desc, rx_avail, rx_used;
} __attribute__((packed));

struct host {
	char dir[64], path[96];
	int svc[2];
};

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64))
		abort();
	return fd;
}

/* One temporary directory for the whole run: the services stay up. */
static struct host *host_once(void)
{
	static struct host h;
	char p[128];

	if (h.dir[0])
		return &h;
	strcpy(h.dir, "/tmp/fuzz-vsock-XXXXXX");
	if (!mkdtemp(h.dir))
		abort();
	snprintf(h.path, sizeof(h.path), "%s/v", h.dir);
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s_%d", h.path, i + 1);
		h.svc[i] = listen_unix(p);
	}
	return &h;
}

/* Accept and close what the services got, so their backlogs never fill. */
static void drain(struct host *h)
{
	for (int i = 0; i < 2; i++) {
		int fd;

		while ((fd = accept(h->svc[i], NULL, NULL)) >= 0)
			close(fd);
	}
}

static void check_rx(struct virtq *rx, uint16_t before)
{
	uint16_t got = (uint16_t)(rx->used_idx - before);

	if (got > rx->num)
		abort();
}

static void run(struct vm *vm, const struct hdr *p, struct vsock *v)
{
	uint64_t feat = (uint64_t)(p->features & 3) << VIRTIO_RING_F_INDIRECT_DESC;
	struct virtq tx, rx;

	if (virtq_init(&tx, vm, (uint16_t)(1u << (p->tx_log2 % 6)), p->tx_desc, p->tx_avail,
		       p->tx_used, feat) ||
	    virtq_init(&rx, vm, (uint16_t)(1u << (p->rx_log2 % 6)), p->rx_desc, p->rx_avail,
		       p->rx_used, feat))
		return;
	for (unsigned r = 0; r <= p->rounds % MAX_ROUNDS; r++) {
		uint16_t before = rx.used_idx;
		int t = vsock_tx(v, &tx);
		int n = t < 0 ? -1 : vsock_rx(v, &rx);

		check_rx(&rx, before);
		if (t < 0 || n < 0)
			break; /* the device would need a reset */
		vsock_host_events(v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct host *h = host_once();
	struct fake_ram ram;
	struct vsock *v;
	char why[128];
	struct hdr p;

	if (size < sizeof(p))
		return 0;
	memcpy(&p, data, sizeof(p));
	v = vsock_new(GUEST_CID, h->path, why, sizeof(why));
	if (!v)
		abort();
	fake_ram_init(&ram, data + sizeof(p), size - sizeof(p));
	run(&ram.vm, &p, v);
	vsock_free(v);
	fake_ram_free(&ram);
	drain(h);
	return 0;
}
