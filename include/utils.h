/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every layer: logging, size parsing, alignment. */
#ifndef VIBEVMM_UTILS_H
#define VIBEVMM_UTILS_H

#include <stddef.h>
#include <stdint.h>

/* Log levels for --log 0-4. 0 is silent; each level includes the ones below. */
enum log_level {
	LOG_NONE = 0,
	LOG_ERROR = 1,
	LOG_WARN = 2,
	LOG_INFO = 3,
	LOG_DEBUG = 4,
};

#define LOG_DEFAULT_LEVEL LOG_WARN

struct vm;

/* Log a line ("vibevmm: LEVEL: ...") to stderr when `level` <= `threshold`. */
void vlog(int threshold, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same for a failure with errno value err (positive): returns -err,
 * so `return fail_why(EINVAL, why, len, "...", ...);`. why may be NULL. */
int fail_why(int err, char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Log for a VM, at its own threshold (vm->log_level), through its stderr
 * stream (see vm_output_open): a stalled stderr never blocks the caller.
 */
void vm_log(const struct vm *vm, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define vm_err(vm, ...) vm_log((vm), LOG_ERROR, __VA_ARGS__)
#define vm_warn(vm, ...) vm_log((vm), LOG_WARN, __VA_ARGS__)
#define vm_info(vm, ...) vm_log((vm), LOG_INFO, __VA_ARGS__)
#define vm_debug(vm, ...) vm_log((vm), LOG_DEBUG, __VA_ARGS__)

/*
 * Parse a size such as "512M", "1G", "4096", "64k" into bytes.
 * Returns 0 on success, -EINVAL on a malformed string or overflow.
 */
int parse_size(const char *s, uint64_t *out);

/* Parse an unsigned integer in C syntax (0x.., decimal). 0 or -EINVAL. */
int parse_u64(const char *s, uint64_t *out);

#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* True when [base, base+len) fits in [0, limit) without wrapping. */
static inline int range_fits(uint64_t base, uint64_t len, uint64_t limit)
{
	return base <= limit && len <= limit - base;
}

/*
 * Write a one-line reason (printf-style) into why[len] for a caller that
 * reports it; returns -1, so `return set_why(why, len, "...", ...);` works.
 */
int set_why(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Read a whole file into a malloc'd buffer. 0 or -errno. */
int read_file(const char *path, uint8_t **buf, size_t *len);

#endif
