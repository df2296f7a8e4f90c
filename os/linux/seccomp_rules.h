/* SPDX-License-Identifier: MIT */
/* The allow-list tables of os/linux/seccomp.c, the architecture's own
 * (seccomp_arch_<arch>.c) and the extra list a sanitizer build adds
 * (seccomp_extra_san.c or seccomp_extra_none.c), picked by the Makefile. */
#ifndef VIBEVMM_OS_LINUX_SECCOMP_RULES_H
#define VIBEVMM_OS_LINUX_SECCOMP_RULES_H

#include <seccomp.h>
#include <stddef.h>

#include "os/os.h"

/* One allowed system call for some kinds of thread, with up to two
 * argument conditions (all must hold). Several rules for one syscall are
 * alternatives. */
struct seccomp_allow {
	int nr;                      /* SCMP_SYS(name) */
	unsigned kinds;              /* K_* bits */
	unsigned nargs;
	struct scmp_arg_cmp args[2];
};

#define K_VCPU (1u << OS_THREAD_VCPU)
#define K_IO (1u << OS_THREAD_IO)
#define K_BLK (1u << OS_THREAD_BLK)
#define K_MAIN (1u << OS_THREAD_MAIN)
#define K_API (1u << OS_THREAD_API)
#define K_ALL (K_VCPU | K_IO | K_BLK | K_MAIN | K_API)

/* Stands for the process id in an argument condition (filled in when the
 * filters are built: signals only to our own threads). */
#define SECCOMP_OWN_PID 0xfffffffffffffff0ULL

#define ARG_EQ(n, v) { .arg = (n), .op = SCMP_CMP_EQ, .datum_a = (v) }
#define ARG_MASKED_EQ(n, mask, v) \
	{ .arg = (n), .op = SCMP_CMP_MASKED_EQ, .datum_a = (mask), .datum_b = (v) }

#define ALLOW(name, kinds) { SCMP_SYS(name), (kinds), 0, { { 0 } } }
#define ALLOW_IF(name, kinds, a) { SCMP_SYS(name), (kinds), 1, { a } }
#define ALLOW_IF2(name, kinds, a, b) { SCMP_SYS(name), (kinds), 2, { a, b } }

/* An ioctl request, by its number. */
#define IOCTL(kinds, cmd) ALLOW_IF(ioctl, kinds, ARG_EQ(1, cmd))

/* Rules the build adds for its own runtime (sanitizers); n = 0 for none. */
const struct seccomp_allow *seccomp_extra_rules(size_t *n);

/* The architecture's own rules (seccomp_arch_<arch>.c): ioctls whose
 * request numbers only its headers define; n = 0 for none. */
const struct seccomp_allow *seccomp_arch_rules(size_t *n);

#endif
