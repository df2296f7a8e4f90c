/* SPDX-License-Identifier: MIT */
/* VM lifecycle: create, run every vCPU on a thread, stop, wait, destroy. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/sandbox.h"
#include "utils.h"

static void vm_free(struct vm *vm)
{
	if (vm->state) {
		output_close_all(vm);
		io_state_destroy(vm->state);
		if (vm->state->done_fd >= 0)
			close(vm->state->done_fd);
		pthread_mutex_destroy(&vm->state->lock);
		pthread_mutex_destroy(&vm->state->unclaimed_lock);
		pthread_mutex_destroy(&vm->state->output_lock);
		pthread_mutex_destroy(&vm->state->devmem_lock);
		pause_state_destroy(vm->state);
		sandbox_free(vm);
	}
	free(vm->state);
	free(vm->mem_map);
	free(vm->vcpus);
	free(vm);
}

struct vm *vm_create_on(const struct hypervisor_ops *ops)
{
	struct vm *vm;
	int err;

	if (!ops) {
		errno = ENODEV;
		return NULL;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		errno = ENOMEM;
		return NULL;
	}
	vm->ops = ops;
	vm->log_level = LOG_DEFAULT_LEVEL;
	vm->mem_map = calloc(1, sizeof(*vm->mem_map));
	vm->vcpus = calloc(VM_MAX_VCPUS, sizeof(*vm->vcpus));
	vm->state = calloc(1, sizeof(*vm->state));
	if (!vm->mem_map || !vm->vcpus || !vm->state) {
		vm_free(vm);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&vm->state->lock, NULL);
	pthread_mutex_init(&vm->state->unclaimed_lock, NULL);
	pthread_mutex_init(&vm->state->output_lock, NULL);
	pthread_mutex_init(&vm->state->devmem_lock, NULL);
	pause_state_init(vm->state);
	io_state_init(vm->state);
	/* The log goes through a stderr stream (best effort: without one,
	 * lines are written directly). */
	vm->state->log_output = vm_output_open(vm, STDERR_FILENO);
	vm->state->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = vm->state->done_fd < 0 ? -errno : ops->vm_create(vm);
	if (err) {
		vm_free(vm);
		errno = -err;
		return NULL;
	}
	return vm;
}

struct vm *vm_create(void)
{
	int err = hypervisor_init();

	if (err) {
		errno = -err;
		return NULL;
	}
	return vm_create_on(hypervisor_get_ops(hypervisor_detect()));
}

int vm_create_irqchip(struct vm *vm)
{
	int err;

	if (!vm)
		return -EINVAL;
	if (vm->state->irqchip)
		return -EEXIST;
	if (!vm->ops->create_irqchip)
		return -ENOTSUP;
	err = vm->ops->create_irqchip(vm);
	if (!err)
		vm->state->irqchip = true;
	return err;
}

enum irqchip_model vm_irqchip_model(struct vm *vm)
{
	if (!vm || !vm->state->irqchip || !vm->ops->irqchip_model)
		return IRQCHIP_NONE;
	return (enum irqchip_model)vm->ops->irqchip_model(vm);
}

int vm_finalize(struct vm *vm)
{
	int err = 0;

	pthread_mutex_lock(&vm->state->lock);
	if (!vm->state->finalized && vm->ops->vm_finalize)
		err = vm->ops->vm_finalize(vm);
	vm->state->finalized = !err;
	pthread_mutex_unlock(&vm->state->lock);
	return err;
}

static void kick_all(struct vm *vm)
{
	for (int i = 0; i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			vcpu_kick(vm->vcpus[i]);
}

struct vcpu *vm_calling_vcpu(struct vm *vm)
{
	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (v && atomic_load(&v->state->has_thread) &&
		    pthread_equal(v->state->thread, pthread_self()))
			return v;
	}
	return NULL;
}

static void record_exit(struct vm *vm, int reason, int status, int error,
			struct vcpu *vcpu)
{
	struct vm_state *st = vm->state;

	bool first;

	pthread_mutex_lock(&st->lock);
	first = !atomic_load(&st->exit_requested);
	if (first) {
		st->exit_reason = reason;
		st->exit_status = status;
		st->error = error;
		st->exit_vcpu = vcpu;
		atomic_store(&st->exit_requested, true);
	}
	pthread_mutex_unlock(&st->lock);
	if (first) {
		kick_all(vm);
		pause_wake_all(vm); /* parked vCPUs, a pauser: the VM ends */
	}
}

void vm_request_exit(struct vm *vm, enum vcpu_exit_reason reason, int status)
{
	record_exit(vm, reason, status, 0, vm_calling_vcpu(vm));
}

void vm_fail(struct vm *vm, int err)
{
	record_exit(vm, 0, 0, err, vm_calling_vcpu(vm));
}

int vm_exit_reason(struct vm *vm)
{
	return atomic_load(&vm->state->exit_requested) ? vm->state->exit_reason : 0;
}

int vm_exit_status(struct vm *vm)
{
	return atomic_load(&vm->state->exit_requested) ? vm->state->exit_status : 0;
}

struct vcpu *vm_exit_vcpu(struct vm *vm)
{
	return vm->state->exit_vcpu;
}

int vm_done_fd(struct vm *vm)
{
	return vm->state->done_fd;
}

/* A vCPU thread that stops for good; the last one out says the VM is done. */
static void vcpu_thread_done(struct vm *vm)
{
	if (atomic_fetch_sub(&vm->state->running_vcpus, 1) == 1) {
		uint64_t one = 1;
		if (write(vm->state->done_fd, &one, sizeof(one)) < 0)
			vm_err(vm, "cannot signal VM end: %s", strerror(errno));
	}
	pause_wake_all(vm); /* a pauser waits for one vCPU fewer */
}

static int exit_ends_vcpu(int reason)
{
	return reason != VCPU_EXIT_IO && reason != VCPU_EXIT_MMIO &&
	       reason != VCPU_EXIT_INTERRUPTED;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	int r;

	vcpu_unblock_kick();
	thread_enter(vm, OS_THREAD_VCPU, "vcpu%d", vcpu->vcpu_id); /* failed: the VM stops */
	do {
		/* Parked here, outside the guest, while the VM is paused. */
		if (atomic_load(&vm->state->pause_requested))
			pause_park_vcpu(vm);
		r = vcpu_run_for_vm(vcpu);
	} while (r > 0 && !exit_ends_vcpu(r));

	if (r < 0) {
		vm_err(vm, "vCPU %d: run failed: %s", vcpu->vcpu_id, strerror(-r));
		record_exit(vm, 0, 0, r, vcpu);
	} else if (r == VCPU_EXIT_HLT) {
		/* A halted vCPU is done; the VM ends when all of them are. */
		if (atomic_fetch_add(&vm->state->halted_vcpus, 1) + 1 == vm->num_vcpus)
			record_exit(vm, VCPU_EXIT_HLT, 0, 0, vcpu);
	} else if (r != VCPU_EXIT_STOPPED) {
		record_exit(vm, r, vcpu->exit.status, 0, vcpu);
	}
	vcpu_thread_done(vm);
	return NULL;
}

/* vCPU threads take no process signals except the kick; the embedding
 * program's main thread keeps SIGINT/SIGTERM. */
static void block_signals_for_threads(sigset_t *saved)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, saved);
}

int vm_start(struct vm *vm)
{
	struct vm_state *st;
	sigset_t saved;
	int err = 0;

	if (!vm)
		return -EINVAL;
	st = vm->state;
	if (st->started)
		return -EBUSY;
	if (!vm->num_vcpus)
		return -EINVAL;
	err = vm_finalize(vm);
	if (!err)
		err = vcpu_install_kick_handler();
	if (!err)
		err = vcpus_claim_for_vm(vm);
	if (err)
		return err;
	st->started = true;
	atomic_store(&st->running_vcpus, vm->num_vcpus);
	err = io_thread_start(vm);
	if (err) {
		st->started = false;
		vcpus_release_from_vm(vm);
		return err;
	}
	block_signals_for_threads(&saved);
	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (!v)
			continue;
		err = -pthread_create(&v->state->runner, NULL, vcpu_thread, v);
		if (err) {
			/* Those not started count as done at once. */
			record_exit(vm, 0, 0, err, NULL);
			for (int j = i; j < VM_MAX_VCPUS; j++)
				if (vm->vcpus[j])
					vcpu_thread_done(vm);
			break;
		}
		v->state->runner_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return err;
}

int vm_wait(struct vm *vm)
{
	struct vm_state *st;

	if (!vm)
		return -EINVAL;
	st = vm->state;
	if (!st->started)
		return -EINVAL;
	if (!st->joined) {
		for (int i = 0; i < VM_MAX_VCPUS; i++) {
			struct vcpu *v = vm->vcpus[i];
			if (v && v->state->runner_started)
				pthread_join(v->state->runner, NULL);
		}
		io_thread_stop(vm);
		st->joined = true;
	}
	return st->error ? st->error : st->exit_reason;
}

int vm_stop(struct vm *vm)
{
	if (!vm)
		return -EINVAL;
	record_exit(vm, VCPU_EXIT_STOPPED, 0, 0, NULL);
	if (!vm->state->started)
		return 0;
	return vm_wait(vm) < 0 ? vm->state->error : 0;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->state->started)
		vm_stop(vm);
	for (int i = 0; i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			vcpu_destroy(vm->vcpus[i]);
	bus_destroy_devices(vm);
	if (vm->state->machine_free)
		vm->state->machine_free(vm->state->machine);
	vm->ops->vm_destroy(vm);
	mm_release(vm->mem_map);
	vm_free(vm);
}
