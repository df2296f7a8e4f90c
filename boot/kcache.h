/* SPDX-License-Identifier: MIT */
/*
 * A content-addressed cache of decompressed kernels (internal to boot/):
 * DIR/SHA256-OF-THE-COMPRESSED-PAYLOAD.vmlinux holds a small header (magic,
 * length, CRC-32 of the data) and the decompressed bytes. Written to a
 * temporary file and renamed, so readers never see half an entry; an entry
 * whose header, length or CRC does not match is treated as a miss.
 */
#ifndef VIBEVMM_BOOT_KCACHE_H
#define VIBEVMM_BOOT_KCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "boot/sha256.h"

/* 0 and the data in a malloc'd *out; -ENOENT (no entry), -EBADMSG (a
 * damaged entry: ignored, the next store replaces it), other -errno. */
int kcache_lookup(const char *dir, const uint8_t key[SHA256_LEN], uint8_t **out,
		  size_t *out_len);

/* Store data under key, creating dir (and its parent) as needed. 0/-errno. */
int kcache_store(const char *dir, const uint8_t key[SHA256_LEN], const uint8_t *data,
		 size_t len);

#endif
