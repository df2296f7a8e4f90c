/* SPDX-License-Identifier: MIT */
/*
 * Host-side decompression of a kernel: a bzImage payload, an arm64 Image.gz
 * (internal to boot/).
 * Unpacking on the host spares the guest the decompressor, which is very slow
 * when the guest's instructions are emulated (DESIGN.md section 6).
 */
#ifndef VIBEVMM_BOOT_DECOMPRESS_H
#define VIBEVMM_BOOT_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Upper bound on one decompressed kernel. A stock vmlinux is ~50 MiB; the
 * bound stops decompression bombs. Fuzzing builds get a smaller one so a
 * bomb costs little time and memory.
 */
#ifndef BOOT_MAX_DECOMPRESSED
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define BOOT_MAX_DECOMPRESSED ((size_t)64 << 20)
#else
#define BOOT_MAX_DECOMPRESSED ((size_t)512 << 20)
#endif
#endif

enum payload_compression {
	PAYLOAD_UNKNOWN = 0,
	PAYLOAD_GZIP,
	PAYLOAD_XZ,
	PAYLOAD_LZ4,   /* LZ4 legacy frame, as Linux's Makefile writes it */
	PAYLOAD_ZSTD,
	PAYLOAD_BZIP2, /* recognised, not supported */
	PAYLOAD_LZMA,  /* recognised, not supported */
	PAYLOAD_LZO,   /* recognised, not supported */
};

/* Compression of a payload from its magic bytes. */
enum payload_compression boot_detect_compression(const uint8_t *buf,
						  size_t len);

/* Short name ("gzip", "xz", ...) for messages. */
const char *boot_compression_name(enum payload_compression c);

/*
 * Decompress a whole payload into a malloc'd buffer (*out, *out_len; free
 * with free()). Linux appends the uncompressed size as a le32 after the
 * stream; it is used only as a first allocation size, and the trailing bytes
 * are otherwise ignored. Output beyond BOOT_MAX_DECOMPRESSED is refused.
 * 0, -EINVAL (corrupt, truncated or too large), -ENOTSUP (unsupported or
 * unknown compression), -ENOMEM.
 */
int boot_decompress(const uint8_t *in, size_t in_len, uint8_t **out,
		    size_t *out_len);

/*
 * The first `want` bytes (at most INT_MAX) a gzip stream decodes to, for
 * recognising what it wraps without unpacking all of it. Returns the bytes
 * written to `out` (fewer when the stream is shorter or cut short), -ENOTSUP
 * if `in` is not gzip, -EINVAL if it is corrupt before `want` bytes,
 * -ENOMEM.
 */
int boot_gunzip_head(const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t want);

#endif
