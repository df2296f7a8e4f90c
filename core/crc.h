/* SPDX-License-Identifier: MIT */
/* CRC-32 (zlib's) of a buffer of any size: the checksum of the kernel
 * cache's entries and of snapshot state files. Not installed. */
#ifndef VIBEVMM_CORE_CRC_H
#define VIBEVMM_CORE_CRC_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* zlib's crc32 takes uInt lengths: fed in pieces. */
static inline uint32_t crc32_of(const uint8_t *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);

	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

#endif
