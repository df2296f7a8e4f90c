/* SPDX-License-Identifier: MIT */
/*
 * Shared by the kernel-image parsers in boot/: little-endian field readers
 * and the per-format entry points that boot_parse_kernel() dispatches to.
 * Not part of the public API.
 */
#ifndef VIBEVMM_BOOT_INTERNAL_H
#define VIBEVMM_BOOT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "boot.h"

/*
 * Image fields are little endian and often unaligned. Assembling them byte by
 * byte is alignment-safe and gives the same result on any host byte order.
 */
static inline uint16_t le16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t le64_at(const uint8_t *p)
{
	return (uint64_t)le32_at(p) | ((uint64_t)le32_at(p + 4) << 32);
}

/* True when [off, off+size) lies inside a buffer of `len` bytes. */
static inline int in_bounds(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= (uint64_t)len - off;
}

/*
 * ELF64 x86_64 (vmlinux). Fills format (ELF or ELF_PVH), segments, entry and
 * pvh_entry of a zeroed `out`; segment data points into `buf`.
 */
int boot_parse_elf(const uint8_t *buf, size_t len, struct kernel_image *out);

/* x86 bzImage; see boot/bzimage.c for the two modes. */
int boot_parse_bzimage(const uint8_t *buf, size_t len,
		       const struct boot_options *opts,
		       struct kernel_image *out);

/* arm64 Image: the 64-byte header booting.rst defines. */
#define ARM64_IMAGE_HDR_SIZE 64

/* True for a buffer that starts with an arm64 Image header. */
int boot_is_arm64_image(const uint8_t *buf, size_t len);

/* True for a gzip stream whose first bytes are an arm64 Image header
 * (only the header is unpacked). */
int boot_is_arm64_image_gz(const uint8_t *buf, size_t len);

/*
 * arm64 Image or Image.gz (boot/arm64_image.c): one segment at gpa =
 * text_offset, relative to the 2 MiB-aligned load base; an Image.gz is
 * unpacked into `owned`. -EINVAL malformed or truncated, -ENOTSUP
 * big-endian.
 */
int boot_parse_arm64_image(const uint8_t *buf, size_t len, struct kernel_image *out);

#endif
