/* SPDX-License-Identifier: MIT */
/* Library threads enter here: a name, and the VM's sandbox if it has one.
 * Library-private. */
#ifndef VIBEVMM_CORE_SANDBOX_H
#define VIBEVMM_CORE_SANDBOX_H

#include "os/os.h"

struct vm;

/*
 * First thing in every thread the library starts, after its own set-up
 * (signal mask): names the thread (printf-style, at most 15 bytes kept:
 * "vcpu0", "vmm-io", "blk-disk.img") and, when vm_enable_seccomp() was
 * called, confines it to `kind`'s allow-list. 0, or -errno when the filter
 * could not be installed: then the VM has failed with that error (vm_wait
 * returns it; vCPUs stop before entering the guest) and the thread must
 * end without doing its work.
 */
int thread_enter(struct vm *vm, enum os_thread_kind kind, const char *name_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* vm_destroy: the sandbox's filters (threads keep theirs). */
void sandbox_free(struct vm *vm);

#endif
