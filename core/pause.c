/* SPDX-License-Identifier: MIT */
/*
 * vm_pause / vm_resume. A pause raises pause_requested and kicks every
 * vCPU as vm_stop does: each vCPU thread, back outside vcpu_run, parks in
 * pause_park_vcpu before its next guest entry; the I/O thread, woken,
 * stops running device-input handlers (pause_io_point). The pauser waits
 * until every live vCPU thread is parked and the I/O thread has said so,
 * then saves the guest clock through the backend. Resume puts the clock
 * back before it lets anyone go. The VM ending (vm_stop, an exit request
 * from any thread, a vCPU thread ending) wakes every waiter here, so a
 * paused VM stops like a running one.
 */
#include <errno.h>
#include <string.h>

#include "core/internal.h"
#include "utils.h"

void pause_state_init(struct vm_state *st)
{
	pthread_mutex_init(&st->control_lock, NULL);
	pthread_mutex_init(&st->pause_lock, NULL);
	pthread_cond_init(&st->pause_cond, NULL);
}

void pause_state_destroy(struct vm_state *st)
{
	pthread_cond_destroy(&st->pause_cond);
	pthread_mutex_destroy(&st->pause_lock);
	pthread_mutex_destroy(&st->control_lock);
}

static bool vm_ended(const struct vm_state *st)
{
	return atomic_load(&st->exit_requested);
}

void pause_wake_all(struct vm *vm)
{
	struct vm_state *st = vm->state;

	/* Under the lock: a waiter between its check and its wait would
	 * otherwise miss this. */
	pthread_mutex_lock(&st->pause_lock);
	pthread_cond_broadcast(&st->pause_cond);
	pthread_mutex_unlock(&st->pause_lock);
}

void pause_park_vcpu(struct vm *vm)
{
	struct vm_state *st = vm->state;

	pthread_mutex_lock(&st->pause_lock);
	st->parked_vcpus++;
	pthread_cond_broadcast(&st->pause_cond);
	while (atomic_load(&st->pause_requested) && !vm_ended(st))
		pthread_cond_wait(&st->pause_cond, &st->pause_lock);
	st->parked_vcpus--;
	pthread_mutex_unlock(&st->pause_lock);
}

bool pause_io_point(struct vm *vm, bool was_paused)
{
	struct vm_state *st = vm->state;
	bool now = atomic_load(&st->pause_requested);

	if (now != was_paused) {
		pthread_mutex_lock(&st->pause_lock);
		st->io_paused = now;
		pthread_cond_broadcast(&st->pause_cond);
		pthread_mutex_unlock(&st->pause_lock);
	}
	return now;
}

/* Pausing from a thread that has to park itself would wait for ever. */
static int check_caller(struct vm *vm)
{
	struct vm_state *st;

	if (!vm || !vm->state->started)
		return -EINVAL;
	st = vm->state;
	if (vm_calling_vcpu(vm) ||
	    (st->io_running && pthread_equal(st->io_thread, pthread_self())))
		return -EDEADLK;
	return 0;
}

/* pause_lock held. Live vCPU threads only: one that ended (a halted vCPU
 * without an irqchip) has nothing left to park. */
static bool all_parked(const struct vm_state *st)
{
	return st->parked_vcpus >= atomic_load(&st->running_vcpus) &&
	       (!st->io_running || st->io_paused);
}

static void kick_vcpus(struct vm *vm)
{
	for (int i = 0; i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			vcpu_kick(vm->vcpus[i]);
}

/* Tell each vCPU's guest it was stopped, then remember the clock. The
 * first error is returned; the VM stays paused either way. */
static int save_clock(struct vm *vm)
{
	const struct hypervisor_ops *ops = vm->ops;
	int err = 0;

	for (int i = 0; i < VM_MAX_VCPUS && ops->vcpu_pause_notify; i++) {
		int e = vm->vcpus[i] ? ops->vcpu_pause_notify(vm->vcpus[i]) : 0;

		err = err ? err : e;
	}
	if (!err && ops->clock_save)
		err = ops->clock_save(vm);
	if (err && err != -EOPNOTSUPP)
		vm_warn(vm, "pause: guest clock not saved: %s", strerror(-err));
	return err;
}

static int unpark_all(struct vm *vm);

static int park_all(struct vm *vm)
{
	struct vm_state *st = vm->state;
	bool ended;
	int err;

	atomic_store(&st->pause_requested, true);
	kick_vcpus(vm);
	io_thread_wake(vm);
	pthread_mutex_lock(&st->pause_lock);
	while (!all_parked(st) && !vm_ended(st))
		pthread_cond_wait(&st->pause_cond, &st->pause_lock);
	ended = vm_ended(st);
	pthread_mutex_unlock(&st->pause_lock);
	if (ended) {
		atomic_store(&st->pause_requested, false);
		pause_wake_all(vm);
		return -ESRCH;
	}
	atomic_store(&st->paused, true);
	err = save_clock(vm);
	if (err == -EOPNOTSUPP) /* the backend cannot pause: go on */
		unpark_all(vm);
	return err;
}

static int unpark_all(struct vm *vm)
{
	struct vm_state *st = vm->state;
	int err = vm->ops->clock_restore ? vm->ops->clock_restore(vm) : 0;

	if (err)
		vm_warn(vm, "resume: guest clock not restored: %s", strerror(-err));
	atomic_store(&st->paused, false);
	pthread_mutex_lock(&st->pause_lock);
	atomic_store(&st->pause_requested, false);
	pthread_cond_broadcast(&st->pause_cond);
	pthread_mutex_unlock(&st->pause_lock);
	io_thread_wake(vm);
	return err;
}

/* Pause or resume (to_paused), under control_lock: -ESRCH once the VM
 * ended, -EALREADY when it is in that state already. */
static int change_state(struct vm *vm, bool to_paused)
{
	int err = check_caller(vm);
	struct vm_state *st;

	if (err)
		return err;
	st = vm->state;
	pthread_mutex_lock(&st->control_lock);
	if (vm_ended(st))
		err = -ESRCH;
	else if (atomic_load(&st->paused) == to_paused)
		err = -EALREADY;
	else
		err = to_paused ? park_all(vm) : unpark_all(vm);
	pthread_mutex_unlock(&st->control_lock);
	return err;
}

int vm_pause(struct vm *vm)
{
	return change_state(vm, true);
}

int vm_resume(struct vm *vm)
{
	return change_state(vm, false);
}

enum vm_run_state vm_run_state(struct vm *vm)
{
	if (!vm || !vm->state->started)
		return VM_RUN_CREATED;
	if (vm_ended(vm->state))
		return VM_RUN_STOPPED;
	return atomic_load(&vm->state->paused) ? VM_RUN_PAUSED : VM_RUN_RUNNING;
}

const char *vm_run_state_name(enum vm_run_state state)
{
	static const char *const names[] = {
		[VM_RUN_CREATED] = "created", [VM_RUN_RUNNING] = "running",
		[VM_RUN_PAUSED] = "paused", [VM_RUN_STOPPED] = "stopped",
	};

	if ((unsigned)state >= ARRAY_SIZE(names))
		return "invalid";
	return names[state];
}
