/* SPDX-License-Identifier: MIT */
/*
 * The VM's sandbox: vm_enable_seccomp builds an allow-list per kind of
 * thread (os/<os>/), each library thread installs its own when it starts
 * (thread_enter), and the embedding program may confine its controlling
 * thread too. Off unless asked for: an embedding program's device callbacks
 * run on vCPU threads, and must not be killed by a list they never chose.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "core/sandbox.h"
#include "utils.h"

static void log_sizes(struct vm *vm)
{
	for (int k = 0; k < OS_THREAD_KINDS; k++) {
		struct os_sandbox_size s;

		os_sandbox_size(vm->state->sandbox, (enum os_thread_kind)k, &s);
		vm_debug(vm, "seccomp: %s threads: %u syscalls, %u rules, %u BPF instructions",
			 os_thread_kind_name((enum os_thread_kind)k), s.syscalls, s.rules,
			 s.bpf_insns);
	}
}

int vm_enable_seccomp(struct vm *vm)
{
	char why[256] = "";
	int err;

	if (!vm)
		return -EINVAL;
	if (vm->state->sandbox)
		return 0;
	/* Threads already started (a disk's worker, vCPUs) would stay free. */
	if (vm->state->started || vm->num_devices)
		return -EBUSY;
	err = os_sandbox_create(&vm->state->sandbox, why, sizeof(why));
	if (err) {
		vm_info(vm, "seccomp: %s", why);
		return err;
	}
	log_sizes(vm);
	return 0;
}

int vm_seccomp_confine_caller(struct vm *vm)
{
	if (!vm || !vm->state->sandbox || !vm->state->started)
		return -EINVAL;
	return os_sandbox_confine(vm->state->sandbox, OS_THREAD_MAIN);
}

int vm_seccomp_confine_api(struct vm *vm)
{
	if (!vm || !vm->state->sandbox || !vm->state->started)
		return -EINVAL;
	return os_sandbox_confine(vm->state->sandbox, OS_THREAD_API);
}

int thread_enter(struct vm *vm, enum os_thread_kind kind, const char *name_fmt, ...)
{
	char name[16];
	va_list ap;
	int err;

	va_start(ap, name_fmt);
	vsnprintf(name, sizeof(name), name_fmt, ap);
	va_end(ap);
	os_thread_set_name(name);
	if (!vm->state->sandbox)
		return 0;
	err = os_sandbox_confine(vm->state->sandbox, kind);
	if (err) {
		vm_err(vm, "seccomp: cannot confine thread %s: %s", name, strerror(-err));
		vm_fail(vm, err);
	}
	return err;
}

void sandbox_free(struct vm *vm)
{
	os_sandbox_free(vm->state->sandbox);
	vm->state->sandbox = NULL;
}
