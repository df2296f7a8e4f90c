/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock packet headers (virtio 1.2 section 5.10.6): 44 little-endian
 * bytes, copied out of guest memory once and checked as a copy. Pure: the
 * fuzz target and the device share it.
 */
#include <string.h>

#include "devices/virtio/vsock.h"

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static void decode(const uint8_t b[VSOCK_HDR_LEN], struct vsock_hdr *h)
{
	h->src_cid = le64(b);
	h->dst_cid = le64(b + 8);
	h->src_port = le32(b + 16);
	h->dst_port = le32(b + 20);
	h->len = le32(b + 24);
	h->type = le16(b + 28);
	h->op = le16(b + 30);
	h->flags = le32(b + 32);
	h->buf_alloc = le32(b + 36);
	h->fwd_cnt = le32(b + 40);
}

void vsock_pkt_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_LEN])
{
	put_le(out, h->src_cid, 8);
	put_le(out + 8, h->dst_cid, 8);
	put_le(out + 16, h->src_port, 4);
	put_le(out + 20, h->dst_port, 4);
	put_le(out + 24, h->len, 4);
	put_le(out + 28, h->type, 2);
	put_le(out + 30, h->op, 2);
	put_le(out + 32, h->flags, 4);
	put_le(out + 36, h->buf_alloc, 4);
	put_le(out + 40, h->fwd_cnt, 4);
}

enum vsock_bad vsock_pkt_parse(const struct iovec *iov, unsigned n,
			       uint64_t out_len, uint64_t guest_cid,
			       struct vsock_hdr *h)
{
	uint8_t b[VSOCK_HDR_LEN];

	memset(h, 0, sizeof(*h));
	if (out_len < VSOCK_HDR_LEN ||
	    iov_to_buf(iov, n, 0, b, sizeof(b)) != sizeof(b))
		return VSOCK_PKT_SHORT;
	decode(b, h);
	if (h->src_cid != guest_cid)
		return VSOCK_PKT_SRC_CID;
	if (h->dst_cid != VSOCK_HOST_CID)
		return VSOCK_PKT_DST_CID;
	if (h->type != VSOCK_TYPE_STREAM)
		return VSOCK_PKT_TYPE;
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		return VSOCK_PKT_OP;
	if (h->len > VSOCK_MAX_PAYLOAD || h->len > out_len - VSOCK_HDR_LEN ||
	    (h->op != VSOCK_OP_RW && h->len))
		return VSOCK_PKT_LEN;
	return VSOCK_PKT_OK;
}
