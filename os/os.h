/* SPDX-License-Identifier: MIT */
/*
 * What core/ needs from the host OS, one implementation per OS under os/<os>/
 * (the Makefile picks the folder: os/linux on Linux, os/none elsewhere).
 * Library-private, not installed.
 */
#ifndef VIBEVMM_OS_H
#define VIBEVMM_OS_H

#include <stddef.h>

/* Name the calling thread (15 bytes at most are kept): it shows in
 * /proc/PID/task/TID/comm, top -H, gdb. Best effort. */
void os_thread_set_name(const char *name);

/* ---- Sandbox: a system-call allow-list per kind of thread ---- */

enum os_thread_kind {
	OS_THREAD_VCPU,   /* runs the guest; MMIO/PIO device callbacks run here */
	OS_THREAD_IO,     /* the VM's I/O thread: console, TAP, virtio queues */
	OS_THREAD_BLK,    /* a virtio-blk worker: disk image I/O */
	OS_THREAD_MAIN,   /* the embedding program's thread after vm_start */
	OS_THREAD_API,    /* the embedding program's control socket server */
	OS_THREAD_KINDS
};

/* Short name of a kind, for logs ("vcpu", "io", "blk", "main", "api"). */
const char *os_thread_kind_name(enum os_thread_kind kind);

struct os_sandbox;

/*
 * Build the allow-list of every kind and prove this process can install
 * each (on a short-lived thread). 0, or -ENOTSUP (no seccomp filters on
 * this OS or kernel), or the error installing gave (e.g. -ENOMEM when the
 * filters inherited from the parent leave no room); `why` says which step.
 */
int os_sandbox_create(struct os_sandbox **out, char *why, size_t why_len);

/* Confine the calling thread to `kind`'s list, for good. 0 or -errno. */
int os_sandbox_confine(const struct os_sandbox *sb, enum os_thread_kind kind);

void os_sandbox_free(struct os_sandbox *sb);

/* What a kind's list holds: system calls allowed (at all), rules (one per
 * allowed syscall or argument pattern) and the BPF program's length. */
struct os_sandbox_size {
	unsigned syscalls, rules, bpf_insns;
};
void os_sandbox_size(const struct os_sandbox *sb, enum os_thread_kind kind,
		     struct os_sandbox_size *size);

#endif
