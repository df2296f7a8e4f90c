/* SPDX-License-Identifier: MIT */
/* vCPU creation, one guest entry per vcpu_run(), register access. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "utils.h"

/*
 * vm_stop() interrupts a vCPU blocked in the guest with this signal; its
 * handler does nothing, the point is that the blocking ioctl returns EINTR.
 */
#define VCPU_KICK_SIGNAL SIGUSR2

/* vcpu_finish_exit: exits a string instruction may still make (each
 * moves it on by a page of data at least). */
#define FINISH_EXIT_TRIES 64

static void kick_handler(int sig)
{
	(void)sig;
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
static int kick_install_error;

static void install_kick(void)
{
	/* SA_RESTART: a kick landing while a device callback is in a host
	 * syscall must not make that syscall fail; KVM_RUN itself still
	 * returns EINTR (KVM never restarts it). */
	struct sigaction sa = { .sa_handler = kick_handler, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		kick_install_error = -errno;
}

int vcpu_install_kick_handler(void)
{
	pthread_once(&kick_once, install_kick);
	return kick_install_error;
}

void vcpu_unblock_kick(void)
{
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
}

struct vcpu *vm_create_vcpu(struct vm *vm, int id)
{
	struct vcpu *vcpu;
	int err;

	if (!vm || id < 0 || id >= VM_MAX_VCPUS) {
		errno = EINVAL;
		return NULL;
	}
	if (vm->vcpus[id]) {
		errno = EEXIST;
		return NULL;
	}
	if (vm->state->started) {
		errno = EBUSY;
		return NULL;
	}
	err = vcpu_install_kick_handler();
	if (err) {
		errno = -err;
		return NULL;
	}
	vcpu = calloc(1, sizeof(*vcpu));
	if (!vcpu || !(vcpu->state = calloc(1, sizeof(*vcpu->state)))) {
		free(vcpu);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&vcpu->state->kick_lock, NULL);
	vcpu->vm = vm;
	vcpu->vcpu_id = id;
	vcpu->ops = vm->ops;
	err = vm->ops->vcpu_create(vcpu);
	if (err) {
		pthread_mutex_destroy(&vcpu->state->kick_lock);
		free(vcpu->state);
		free(vcpu);
		errno = -err;
		return NULL;
	}
	vm->vcpus[id] = vcpu;
	vm->num_vcpus++;
	return vcpu;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	vm->ops->vcpu_destroy(vcpu);
	vm->vcpus[vcpu->vcpu_id] = NULL;
	vm->num_vcpus--;
	pthread_mutex_destroy(&vcpu->state->kick_lock);
	free(vcpu->state);
	free(vcpu);
}

void vcpu_kick(struct vcpu *vcpu)
{
	struct vcpu_state *st = vcpu->state;

	vcpu->ops->vcpu_kick(vcpu);
	/* Order matters: the backend's "exit at once" flag is set first, so a
	 * thread that has not yet entered the guest will not block there;
	 * the signal covers one that already has. Only a thread inside
	 * vcpu_run is signalled: one that left may be gone. */
	pthread_mutex_lock(&st->kick_lock);
	if (atomic_load(&st->has_thread) && !pthread_equal(st->thread, pthread_self()))
		pthread_kill(st->thread, VCPU_KICK_SIGNAL);
	pthread_mutex_unlock(&st->kick_lock);
}

/*
 * Make the calling thread the one inside vcpu_run. -EBUSY when another
 * thread already is (KVM would serialise the two, and a device exit would
 * be dispatched on the wrong one), or when the caller is not vm_start's
 * thread but vm_start owns the vCPU. Under kick_lock, so the check and
 * the claim are one step against both a second caller and vm_start.
 */
static int enter_run(struct vcpu_state *st, bool for_vm)
{
	int err = 0;

	pthread_mutex_lock(&st->kick_lock);
	if (atomic_load(&st->has_thread) || (!for_vm && st->owned_by_vm)) {
		err = -EBUSY;
	} else {
		st->thread = pthread_self();
		atomic_store(&st->has_thread, true);
	}
	pthread_mutex_unlock(&st->kick_lock);
	return err;
}

static void leave_run(struct vcpu_state *st)
{
	pthread_mutex_lock(&st->kick_lock);
	atomic_store(&st->has_thread, false);
	pthread_mutex_unlock(&st->kick_lock);
}

static int stop_reason(struct vcpu *vcpu)
{
	vcpu->exit.reason = VCPU_EXIT_STOPPED;
	return VCPU_EXIT_STOPPED;
}

/* A device on this vCPU's access asked the VM to end: report that here. */
static int exit_requested_by_access(struct vcpu *vcpu)
{
	struct vm_state *st = vcpu->vm->state;
	int reason = 0;

	pthread_mutex_lock(&st->lock);
	if (st->exit_vcpu == vcpu && st->exit_reason) {
		reason = st->exit_reason;
		vcpu->exit.status = st->exit_status;
	}
	pthread_mutex_unlock(&st->lock);
	return reason;
}

/* One guest entry and the dispatch of its exit. */
static int run_once(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct vcpu_exit *exit = &vcpu->exit;
	int err, reason, dev = -ENODEV;

	if (atomic_load(&vm->state->exit_requested))
		return stop_reason(vcpu);
	memset(exit, 0, sizeof(*exit));
	err = vm->ops->vcpu_run(vcpu, exit);
	if (err)
		return err;

	switch (exit->reason) {
	case VCPU_EXIT_IO:
		dev = bus_dispatch_io(vm, exit);
		break;
	case VCPU_EXIT_MMIO:
		dev = bus_dispatch_mmio(vm, exit);
		break;
	default:
		break;
	}
	stats_count_exit(vcpu, exit, dev);
	if (exit->reason == VCPU_EXIT_INTERRUPTED && atomic_load(&vm->state->exit_requested))
		return stop_reason(vcpu);
	if (atomic_load(&vm->state->exit_requested)) {
		reason = exit_requested_by_access(vcpu);
		exit->reason = reason ? (enum vcpu_exit_reason)reason : exit->reason;
	}
	return (int)exit->reason;
}

static int run_claimed(struct vcpu *vcpu, bool for_vm)
{
	int r = enter_run(vcpu->state, for_vm);

	if (r)
		return r;
	/* Registered as "inside vcpu_run" for the whole call, device dispatch
	 * included: vm_request_exit() from a device finds its vCPU that way. */
	r = run_once(vcpu);
	leave_run(vcpu->state);
	return r;
}

int vcpu_run(struct vcpu *vcpu)
{
	int err;

	if (!vcpu)
		return -EINVAL;
	err = vm_finalize(vcpu->vm);
	return err ? err : run_claimed(vcpu, false);
}

int vcpu_run_for_vm(struct vcpu *vcpu)
{
	return run_claimed(vcpu, true);
}

/*
 * An I/O or MMIO exit is finished only when the vCPU next enters: KVM then
 * puts a port or MMIO read's value into its register and moves RIP past
 * the instruction. Until then its registers are not the guest's whole
 * state. Entering with the kick set finishes the access and returns at
 * once, without running guest code; a string instruction may first make
 * one more exit, dispatched as any.
 */
int vcpu_finish_exit(struct vcpu *vcpu)
{
	for (int i = 0; i < FINISH_EXIT_TRIES; i++) {
		int r;

		if (vcpu->exit.reason != VCPU_EXIT_IO && vcpu->exit.reason != VCPU_EXIT_MMIO)
			return 0;
		vcpu->ops->vcpu_kick(vcpu);
		/* As vm_start's own thread when it owns the vCPU: that one is
		 * parked or gone (the caller made sure). */
		r = run_claimed(vcpu, vcpu->state->owned_by_vm);
		if (r < 0)
			return r;
	}
	return -EAGAIN;
}

/* Mark every vCPU of vm owned by vm_start (or not); true if a thread was
 * inside vcpu_run on any of them. */
static bool set_owned_by_vm(struct vm *vm, bool owned)
{
	bool busy = false;

	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu_state *st = vm->vcpus[i] ? vm->vcpus[i]->state : NULL;

		if (!st)
			continue;
		pthread_mutex_lock(&st->kick_lock);
		busy |= atomic_load(&st->has_thread);
		st->owned_by_vm = owned;
		pthread_mutex_unlock(&st->kick_lock);
	}
	return busy;
}

int vcpus_claim_for_vm(struct vm *vm)
{
	if (!set_owned_by_vm(vm, true))
		return 0;
	/* A thread of the caller's is inside vcpu_run: give them all back. */
	vcpus_release_from_vm(vm);
	return -EBUSY;
}

void vcpus_release_from_vm(struct vm *vm)
{
	set_owned_by_vm(vm, false);
}

int vcpu_get_regs(struct vcpu *vcpu, struct regs *regs)
{
	if (!vcpu || !regs)
		return -EINVAL;
	return vcpu->ops->vcpu_get_regs(vcpu, regs);
}

int vcpu_set_regs(struct vcpu *vcpu, struct regs *regs)
{
	if (!vcpu || !regs)
		return -EINVAL;
	return vcpu->ops->vcpu_set_regs(vcpu, regs);
}

const char *vcpu_exit_reason_name(int reason)
{
	static const char *const names[] = {
		[VCPU_EXIT_NONE] = "none",
		[VCPU_EXIT_IO] = "io",
		[VCPU_EXIT_MMIO] = "mmio",
		[VCPU_EXIT_HLT] = "hlt",
		[VCPU_EXIT_SHUTDOWN] = "shutdown",
		[VCPU_EXIT_GUEST_EXIT] = "guest-exit",
		[VCPU_EXIT_POWEROFF] = "poweroff",
		[VCPU_EXIT_RESET] = "reset",
		[VCPU_EXIT_INTERNAL_ERROR] = "internal-error",
		[VCPU_EXIT_FAIL_ENTRY] = "fail-entry",
		[VCPU_EXIT_STOPPED] = "stopped",
		[VCPU_EXIT_INTERRUPTED] = "interrupted",
		[VCPU_EXIT_UNKNOWN] = "unknown",
		[VCPU_EXIT_PANIC] = "panic",
	};

	if (reason < 0 || (size_t)reason >= ARRAY_SIZE(names) || !names[reason])
		return "invalid";
	return names[reason];
}



/* What ended the run, in words: "vCPU 0: exit shutdown ...\n". */
static int format_exit(const struct vcpu *vcpu, char *buf, size_t len)
{
	const struct vcpu_exit *e = &vcpu->exit;
	int n = snprintf(buf, len, "vCPU %d: exit %s", vcpu->vcpu_id,
			 vcpu_exit_reason_name(e->reason));

	if (e->reason == VCPU_EXIT_INTERNAL_ERROR) {
		n += snprintf(buf + n, len - (size_t)n, " (suberror %u), instruction bytes:",
			      e->internal.suberror);
		for (int i = 0; i < e->internal.insn_len && (size_t)n < len; i++)
			n += snprintf(buf + n, len - (size_t)n, " %02x", e->internal.insn[i]);
		if (!e->internal.insn_len && (size_t)n < len)
			n += snprintf(buf + n, len - (size_t)n, " unavailable");
	} else if (e->reason == VCPU_EXIT_FAIL_ENTRY) {
		n += snprintf(buf + n, len - (size_t)n, " (hardware reason 0x%llx)",
			      (unsigned long long)e->fail_entry.hw_reason);
	} else if (e->reason == VCPU_EXIT_UNKNOWN) {
		n += snprintf(buf + n, len - (size_t)n, " (backend exit %u)", e->unknown.code);
	}
	if ((size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "\n");
	return MIN(n, (int)len - 1);
}

void vcpu_dump(struct vcpu *vcpu, int fd)
{
	struct vm_output *out = vm_output_open(vcpu->vm, fd);
	char buf[2048];
	struct regs regs;
	int n = format_exit(vcpu, buf, sizeof(buf));

	if (vcpu_get_regs(vcpu, &regs) == 0)
		n += arch_format_regs(&regs, buf + n, sizeof(buf) - (size_t)n);
	n = MIN(n, (int)sizeof(buf) - 1);
	/* Through the VM's stream for fd, so a stalled reader cannot block. */
	if (out)
		vm_output_write(out, buf, (size_t)n);
	else if (write(fd, buf, (size_t)n) < 0)
		return;
}
