/* SPDX-License-Identifier: MIT */
/*
 * The compressions Linux can wrap an x86 kernel in, unpacked on the host.
 * Every decoder streams into one growing buffer capped at
 * BOOT_MAX_DECOMPRESSED, so a hostile payload cannot exhaust memory.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "boot/boot_internal.h"
#include "boot/decompress.h"

#define LZ4_LEGACY_MAGIC 0x184c2102u
/* Linux writes LZ4 legacy frames with `lz4 -l`: 8 MiB of output per chunk. */
#define LZ4_LEGACY_CHUNK ((size_t)8 << 20)
/* Start small when the size hint is missing or tiny; the buffer doubles. */
#define OUT_MIN_ALLOC ((size_t)64 << 10)
/* liblzma's memory limit: Linux uses at most a 32 MiB dictionary. */
#define XZ_MEMLIMIT ((uint64_t)128 << 20)

struct magic {
	enum payload_compression comp;
	size_t len;
	uint8_t bytes[6];
};

static const struct magic magics[] = {
	{ PAYLOAD_GZIP, 2, { 0x1f, 0x8b } },
	{ PAYLOAD_XZ, 6, { 0xfd, '7', 'z', 'X', 'Z', 0x00 } },
	{ PAYLOAD_LZ4, 4, { 0x02, 0x21, 0x4c, 0x18 } },
	{ PAYLOAD_ZSTD, 4, { 0x28, 0xb5, 0x2f, 0xfd } },
	{ PAYLOAD_BZIP2, 3, { 'B', 'Z', 'h' } },
	/* lzma_alone: lc/lp/pb byte 0x5d, then a little-endian dict size. */
	{ PAYLOAD_LZMA, 3, { 0x5d, 0x00, 0x00 } },
	{ PAYLOAD_LZO, 4, { 0x89, 'L', 'Z', 'O' } },
};

enum payload_compression boot_detect_compression(const uint8_t *buf,
						  size_t len)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		if (len >= magics[i].len &&
		    memcmp(buf, magics[i].bytes, magics[i].len) == 0)
			return magics[i].comp;
	}
	return PAYLOAD_UNKNOWN;
}

const char *boot_compression_name(enum payload_compression c)
{
	switch (c) {
	case PAYLOAD_GZIP: return "gzip";
	case PAYLOAD_XZ: return "xz";
	case PAYLOAD_LZ4: return "lz4";
	case PAYLOAD_ZSTD: return "zstd";
	case PAYLOAD_BZIP2: return "bzip2";
	case PAYLOAD_LZMA: return "lzma";
	case PAYLOAD_LZO: return "lzo";
	case PAYLOAD_UNKNOWN: break;
	}
	return "unknown";
}

/* ---- output buffer ---- */

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

struct outbuf {
	uint8_t *p;
	size_t len; /* bytes produced */
	size_t cap; /* bytes allocated */
};

static int outbuf_init(struct outbuf *o, size_t hint)
{
	size_t cap = hint;

	if (cap < OUT_MIN_ALLOC)
		cap = OUT_MIN_ALLOC;
	if (cap > BOOT_MAX_DECOMPRESSED)
		cap = BOOT_MAX_DECOMPRESSED;
	o->p = malloc(cap);
	if (!o->p)
		return -ENOMEM;
	o->len = 0;
	o->cap = cap;
	return 0;
}

/*
 * Make at least `want` free bytes (fewer only at the cap). -EINVAL when the
 * buffer is full at the cap: the payload claims more than any kernel needs.
 */
static int outbuf_reserve(struct outbuf *o, size_t want)
{
	size_t cap = o->cap;
	uint8_t *p;

	if (o->cap - o->len >= want)
		return 0;
	if (o->cap == BOOT_MAX_DECOMPRESSED)
		return o->len < o->cap ? 0 : -EINVAL;
	while (cap - o->len < want && cap < BOOT_MAX_DECOMPRESSED)
		cap = cap > BOOT_MAX_DECOMPRESSED / 2 ? BOOT_MAX_DECOMPRESSED
						      : cap * 2;
	p = realloc(o->p, cap);
	if (!p)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

/* ---- gzip ---- */

static int gzip_step(z_stream *zs, struct outbuf *o)
{
	int ret;

	ret = outbuf_reserve(o, 1);
	if (ret)
		return ret;
	zs->next_out = o->p + o->len;
	zs->avail_out = (uInt)min_size(o->cap - o->len, UINT_MAX);
	ret = inflate(zs, Z_NO_FLUSH);
	o->len = (size_t)(zs->next_out - o->p);
	switch (ret) {
	case Z_STREAM_END:
		return 1;
	case Z_OK:
		return 0;
	case Z_BUF_ERROR:
		/* No progress: lack of output room is fine, of input not. */
		return zs->avail_out == 0 ? 0 : -EINVAL;
	case Z_MEM_ERROR:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
}

static int gunzip(const uint8_t *in, size_t in_len, struct outbuf *o)
{
	z_stream zs;
	int ret;

	/* The payload is at most 4 GiB - 1 (a u32 field), so it fits a uInt. */
	if (in_len > UINT_MAX)
		return -EINVAL;
	memset(&zs, 0, sizeof(zs));
	/* 16 + MAX_WBITS: expect a gzip wrapper and check its CRC. */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)in_len;
	do
		ret = gzip_step(&zs, o);
	while (ret == 0);
	inflateEnd(&zs);
	/* The trailing size word Linux appends is left unread on purpose. */
	return ret < 0 ? ret : 0;
}

int boot_gunzip_head(const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t want)
{
	z_stream zs;
	int ret;

	if (boot_detect_compression(in, in_len) != PAYLOAD_GZIP)
		return -ENOTSUP;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	/* The head comes from the first blocks: the rest need not be fed. */
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)min_size(in_len, UINT_MAX);
	zs.next_out = out;
	zs.avail_out = (uInt)min_size(want, INT_MAX);
	do
		ret = inflate(&zs, Z_NO_FLUSH);
	while (ret == Z_OK && zs.avail_out && zs.avail_in);
	inflateEnd(&zs);
	if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
		return ret == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
	return (int)(zs.next_out - out);
}

/* ---- xz ---- */

static int xz_step(lzma_stream *xs, struct outbuf *o)
{
	lzma_ret lr;
	int ret;

	ret = outbuf_reserve(o, 1);
	if (ret)
		return ret;
	xs->next_out = o->p + o->len;
	xs->avail_out = o->cap - o->len;
	/* All input is present, so LZMA_FINISH from the first call. */
	lr = lzma_code(xs, LZMA_FINISH);
	o->len = (size_t)(xs->next_out - o->p);
	switch (lr) {
	case LZMA_STREAM_END:
		return 1;
	case LZMA_OK:
		return 0;
	case LZMA_BUF_ERROR:
		return xs->avail_out == 0 ? 0 : -EINVAL;
	case LZMA_MEM_ERROR:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
}

static int unxz(const uint8_t *in, size_t in_len, struct outbuf *o)
{
	lzma_stream xs = LZMA_STREAM_INIT;
	int ret;

	/*
	 * No LZMA_CONCATENATED: decoding stops after the first stream, so the
	 * size word Linux appends is not mistaken for stream padding.
	 */
	if (lzma_stream_decoder(&xs, XZ_MEMLIMIT, 0) != LZMA_OK)
		return -ENOMEM;
	xs.next_in = in;
	xs.avail_in = in_len;
	do
		ret = xz_step(&xs, o);
	while (ret == 0);
	lzma_end(&xs);
	return ret < 0 ? ret : 0;
}

/* ---- zstd ---- */

static int zstd_step(ZSTD_DCtx *dctx, ZSTD_inBuffer *zin, struct outbuf *o)
{
	ZSTD_outBuffer zout;
	size_t r;
	int ret;

	ret = outbuf_reserve(o, 1);
	if (ret)
		return ret;
	zout.dst = o->p;
	zout.size = o->cap;
	zout.pos = o->len;
	r = ZSTD_decompressStream(dctx, &zout, zin);
	o->len = zout.pos;
	if (ZSTD_isError(r))
		return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation
			       ? -ENOMEM : -EINVAL;
	/* 0: the frame is decoded and flushed. Linux writes a single frame. */
	if (r == 0)
		return 1;
	/* Input used up with output room left: the frame is truncated. */
	if (zin->pos == zin->size && zout.pos < zout.size)
		return -EINVAL;
	return 0;
}

static int unzstd(const uint8_t *in, size_t in_len, struct outbuf *o)
{
	ZSTD_inBuffer zin = { in, in_len, 0 };
	ZSTD_DCtx *dctx;
	int ret;

	dctx = ZSTD_createDCtx();
	if (!dctx)
		return -ENOMEM;
	/*
	 * The default window limit (2^27) matches `zstd -22 --ultra` as used
	 * by Linux and bounds the decoder's memory for hostile input.
	 */
	do
		ret = zstd_step(dctx, &zin, o);
	while (ret == 0);
	ZSTD_freeDCtx(dctx);
	return ret < 0 ? ret : 0;
}

/* ---- lz4 legacy ---- */

static int lz4_chunk(const uint8_t *in, size_t size, struct outbuf *o)
{
	size_t room;
	int n, ret;

	if (size == 0 || size > LZ4_COMPRESSBOUND(LZ4_LEGACY_CHUNK))
		return -EINVAL;
	ret = outbuf_reserve(o, LZ4_LEGACY_CHUNK);
	if (ret)
		return ret;
	room = min_size(o->cap - o->len, LZ4_LEGACY_CHUNK);
	n = LZ4_decompress_safe((const char *)in, (char *)o->p + o->len,
				(int)size, (int)room);
	if (n < 0)
		return -EINVAL;
	o->len += (size_t)n;
	return 0;
}

/*
 * Legacy frame: magic, then chunks of [le32 compressed size][data]. The magic
 * may repeat (concatenated frames). A lone final le32 is the uncompressed
 * size Linux appends, not a chunk.
 */
static int unlz4_legacy(const uint8_t *in, size_t in_len, struct outbuf *o)
{
	size_t pos = 4;
	int ret;

	while (in_len - pos >= 4) {
		uint32_t size = le32_at(in + pos);

		pos += 4;
		if (size == LZ4_LEGACY_MAGIC || pos == in_len)
			continue;
		if (size > in_len - pos)
			return -EINVAL;
		ret = lz4_chunk(in + pos, size, o);
		if (ret)
			return ret;
		pos += size;
	}
	return 0;
}

/* ---- dispatch ---- */

/*
 * First allocation: Linux's appended le32 uncompressed size. Kernels shrink
 * 3-5x, so a hint far beyond that is bogus and would only reserve memory for
 * nothing; such streams grow the buffer as they really decode.
 */
static size_t size_hint(const uint8_t *in, size_t in_len)
{
	size_t hint = in_len >= 8 ? le32_at(in + in_len - 4) : 0;

	return min_size(hint, in_len > SIZE_MAX / 16 ? SIZE_MAX : in_len * 16);
}

static int run_decoder(enum payload_compression comp, const uint8_t *in,
		       size_t in_len, struct outbuf *o)
{
	switch (comp) {
	case PAYLOAD_GZIP: return gunzip(in, in_len, o);
	case PAYLOAD_XZ: return unxz(in, in_len, o);
	case PAYLOAD_LZ4: return unlz4_legacy(in, in_len, o);
	case PAYLOAD_ZSTD: return unzstd(in, in_len, o);
	default: return -ENOTSUP;
	}
}

int boot_decompress(const uint8_t *in, size_t in_len, uint8_t **out,
		    size_t *out_len)
{
	enum payload_compression comp = boot_detect_compression(in, in_len);
	struct outbuf o;
	int ret;

	*out = NULL;
	*out_len = 0;
	if (comp == PAYLOAD_UNKNOWN || comp == PAYLOAD_BZIP2 ||
	    comp == PAYLOAD_LZMA || comp == PAYLOAD_LZO)
		return -ENOTSUP;
	ret = outbuf_init(&o, size_hint(in, in_len));
	if (ret)
		return ret;
	ret = run_decoder(comp, in, in_len, &o);
	if (ret) {
		free(o.p);
		return ret;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}
