/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock inside the library (virtio 1.2 section 5.10), stream sockets
 * only, bridged to host Unix sockets as Firecracker's "hybrid" vsock does:
 *
 *   vsock_pkt.c   the 44-byte packet header: parse and check a guest's,
 *                 build ours (pure, fuzzed)
 *   vsock_conn.c  the connections: guest packets from the TX queue, packets
 *                 for the guest into the RX queue, the host sockets (the
 *                 listener at uds_path, "CONNECT <port>\n" handshakes,
 *                 connections to uds_path_<port>); no transport, no VM, so
 *                 the fuzz target drives it on a fake RAM
 *   vsock.c       the virtio-mmio device around it, on the VM's I/O thread
 *
 * Not installed.
 */
#ifndef VIBEVMM_DEVICES_VIRTIO_VSOCK_H
#define VIBEVMM_DEVICES_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/virtio.h"

#define VIRTIO_ID_VSOCK 19

#define VSOCK_HOST_CID 2
#define VSOCK_MIN_GUEST_CID 3
#define VSOCK_HDR_LEN 44
#define VSOCK_TYPE_STREAM 1

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SHUTDOWN_RCV 1   /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2  /* the sender will send no more */

/* Largest payload of one packet either way (Linux's
 * VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PAYLOAD (64u << 10)
/* What each connection may have in flight from the guest to its host
 * socket (our buf_alloc): bytes the socket did not take wait in a buffer
 * of this size, allocated only then. */
#define VSOCK_CONN_BUF (64u << 10)
/* Connections at once, either direction; beyond it REQUESTs get RST and
 * host clients are closed at once. With VSOCK_CONN_BUF, at most 64 MiB of
 * buffers. */
#define VSOCK_MAX_CONNS 1024
/* The "CONNECT <port>\n" line: at most this long, within this time. */
#define VSOCK_LINE_MAX 32
#define VSOCK_HANDSHAKE_MS 2000

/* The header, host-endian, as we use it. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

/* Why a guest packet was refused (vsock_pkt_check). */
enum vsock_bad {
	VSOCK_PKT_OK = 0,
	VSOCK_PKT_SHORT,    /* under 44 bytes: cannot even be answered */
	VSOCK_PKT_SRC_CID,  /* not from the guest's CID */
	VSOCK_PKT_DST_CID,  /* not to the host */
	VSOCK_PKT_TYPE,     /* not a stream packet */
	VSOCK_PKT_OP,       /* unknown op */
	VSOCK_PKT_LEN,      /* len over the limit, beyond the chain, or data
			     * on a packet that carries none */
};

/*
 * Read the header of a guest packet from the readable part of a chain
 * (iov, n entries, out_len bytes) and check it: the CIDs, type, op and
 * len (<= VSOCK_MAX_PAYLOAD, within the chain, zero except for RW). *h is
 * filled whenever at least 44 bytes were there.
 */
enum vsock_bad vsock_pkt_parse(const struct iovec *iov, unsigned n,
			       uint64_t out_len, uint64_t guest_cid,
			       struct vsock_hdr *h);

/* The 44 little-endian bytes of h. */
void vsock_pkt_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_LEN]);

/* ---- vsock_conn.c ---- */

struct vsock;

struct vsock_stats {
	uint64_t tx_packets, rx_packets, tx_bytes, rx_bytes;
	uint64_t rst_sent, bad_packets, conns_opened, conns_refused;
};

/*
 * The bridge for guest CID `cid` (>= 3) at Unix socket `uds_path`: binds and
 * listens there (a stale socket file is replaced, anything else refused),
 * and makes the epoll fd the device watches. NULL with a one-line reason.
 */
struct vsock *vsock_new(uint64_t cid, const char *uds_path, char *why,
			size_t why_len);
/* Close everything; the listener's path is removed. */
void vsock_free(struct vsock *v);

/* Readable when host sockets need attention: call vsock_host_events. */
int vsock_epoll_fd(const struct vsock *v);
uint64_t vsock_cid(const struct vsock *v);
void vsock_get_stats(const struct vsock *v, struct vsock_stats *s);

/* Accept clients, read CONNECT lines, note readable and writable
 * sockets, flush waiting bytes, expire slow handshakes. */
void vsock_host_events(struct vsock *v);

/*
 * Take the guest's packets from TX (a popped chain at a time, pushed back at
 * once). Stops early, returning 1, when answers wait that the RX queue must
 * take first (call again after vsock_rx); 0 when the queue is empty;
 * -errno when the driver broke the ring (virtq_pop's errors).
 */
int vsock_tx(struct vsock *v, struct virtq *tx);

/*
 * Fill RX with what waits for the guest: control packets, then data from
 * host sockets as far as the guest's credit goes. Returns the chains used,
 * or -errno for a broken ring.
 */
int vsock_rx(struct vsock *v, struct virtq *rx);

/* Whether vsock_rx has something to send (so it needs RX buffers). */
bool vsock_rx_pending(const struct vsock *v);

/* Device reset: every connection closed, the listener kept. */
void vsock_reset(struct vsock *v);

#endif
