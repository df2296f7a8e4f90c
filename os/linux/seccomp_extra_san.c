/* SPDX-License-Identifier: MIT */
/*
 * Sanitizer builds (make SAN=1: ASan + UBSan + LSan): the system calls the
 * sanitizer runtimes make on our threads, on top of seccomp.c's lists, so
 * that SAN builds test the real filters instead of running without them.
 * Never compiled into ordinary builds.
 */
#include <fcntl.h>
#include <sched.h>

#include "os/linux/seccomp_rules.h"

/* How LSan's StopTheWorld starts its tracer: a task that shares our memory
 * and files (not a thread of ours), so it can ptrace every thread. */
#define LSAN_TRACER_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED)
#define READ_ONLY_FLAGS (O_ACCMODE | O_CREAT | O_TRUNC)

static const struct seccomp_allow san_rules[] = {
	/* Every thread: its alternate signal stack goes at exit; the
	 * allocator's spin locks yield. */
	ALLOW(sigaltstack, K_ALL),
	ALLOW(sched_yield, K_ALL),

	/* The leak check at exit, on the main thread, and its tracer, which
	 * inherits the main thread's filter: it lists /proc/PID/task, ptraces
	 * each thread for its registers, and reports through stderr. */
	ALLOW_IF(clone, K_MAIN, ARG_EQ(0, LSAN_TRACER_FLAGS)),
	ALLOW(prctl, K_MAIN),
	ALLOW(ptrace, K_MAIN),
	ALLOW(wait4, K_MAIN),
	ALLOW(getppid, K_MAIN),
	ALLOW(rt_sigaction, K_MAIN),
	ALLOW_IF(open, K_MAIN, ARG_MASKED_EQ(1, READ_ONLY_FLAGS, O_RDONLY)),
	ALLOW_IF(openat, K_MAIN, ARG_MASKED_EQ(2, READ_ONLY_FLAGS, O_RDONLY)),
	ALLOW(getdents, K_MAIN),
	ALLOW(getdents64, K_MAIN),
	ALLOW(lseek, K_MAIN), /* rewinding /proc/PID/task */
};

const struct seccomp_allow *seccomp_extra_rules(size_t *n)
{
	*n = sizeof(san_rules) / sizeof(san_rules[0]);
	return san_rules;
}
