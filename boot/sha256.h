/* SPDX-License-Identifier: MIT */
/* SHA-256 of a buffer (internal to boot/). */
#ifndef VIBEVMM_BOOT_SHA256_H
#define VIBEVMM_BOOT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

/* 0, or -EIO when libcrypto fails (out of memory): then there is no key. */
int sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

#endif
