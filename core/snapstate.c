/* SPDX-License-Identifier: MIT */
/*
 * Snapshot state through the backend: the library's vcpu_state_save/load
 * and vm_state_save/load (declared in core/internal.h). They make sure no
 * vCPU is in the guest, and keep vm_pause/vm_resume off meanwhile; a save
 * first finishes the vCPU's last I/O exit (vcpu_finish_exit). What a
 * payload holds is the backend's business.
 */
#include <errno.h>

#include "core/internal.h"
#include "core/snapfile.h"

static bool inside_vcpu_run(struct vm *vm, struct vcpu *only)
{
	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu *v = vm->vcpus[i];

		if (v && (!only || v == only) && atomic_load(&v->state->has_thread))
			return true;
	}
	return false;
}

/*
 * Take control_lock (no pause or resume until hold_off) when no vCPU can
 * enter the guest: vm_start's threads are parked (paused) or gone
 * (joined), or were never started, and no caller's thread is inside
 * vcpu_run on `only` (NULL: on any vCPU). 0 with the lock held, or -EBUSY.
 */
static int hold_still(struct vm *vm, struct vcpu *only)
{
	struct vm_state *st = vm->state;
	bool still;

	pthread_mutex_lock(&st->control_lock);
	still = (!st->started || atomic_load(&st->paused) || st->joined) &&
		!inside_vcpu_run(vm, only);
	if (!still)
		pthread_mutex_unlock(&st->control_lock);
	return still ? 0 : -EBUSY;
}

static void hold_off(struct vm *vm)
{
	pthread_mutex_unlock(&vm->state->control_lock);
}

/* A save's result: -ENOMEM if out could not grow; on failure, out as it
 * was before (a caller may go on appending other sections). */
static int finish_save(struct snap_buf *out, size_t start, int err)
{
	if (!err && out->failed)
		err = -ENOMEM;
	if (err && out->len > start)
		out->len = start;
	return err;
}

int vcpu_state_save(struct vcpu *vcpu, struct snap_buf *out)
{
	size_t start;
	int err;

	if (!vcpu || !out)
		return -EINVAL;
	if (!vcpu->ops->vcpu_state_save)
		return -EOPNOTSUPP;
	err = hold_still(vcpu->vm, vcpu);
	if (err)
		return err;
	start = out->len;
	err = vcpu_finish_exit(vcpu);
	if (!err)
		err = vcpu->ops->vcpu_state_save(vcpu, out);
	hold_off(vcpu->vm);
	return finish_save(out, start, err);
}

int vcpu_state_load(struct vcpu *vcpu, struct snap_cursor *in)
{
	int err;

	if (!vcpu || !in)
		return -EINVAL;
	if (!vcpu->ops->vcpu_state_load)
		return -EOPNOTSUPP;
	err = hold_still(vcpu->vm, vcpu);
	if (err)
		return err;
	err = vcpu->ops->vcpu_state_load(vcpu, in);
	hold_off(vcpu->vm);
	return err;
}

int vm_state_save(struct vm *vm, struct snap_buf *out)
{
	size_t start;
	int err;

	if (!vm || !out)
		return -EINVAL;
	if (!vm->ops->vm_state_save)
		return -EOPNOTSUPP;
	err = hold_still(vm, NULL);
	if (err)
		return err;
	start = out->len;
	err = vm->ops->vm_state_save(vm, out);
	hold_off(vm);
	return finish_save(out, start, err);
}

int vm_state_load(struct vm *vm, struct snap_cursor *in)
{
	int err;

	if (!vm || !in)
		return -EINVAL;
	if (!vm->ops->vm_state_load)
		return -EOPNOTSUPP;
	err = hold_still(vm, NULL);
	if (err)
		return err;
	err = vm->ops->vm_state_load(vm, in);
	hold_off(vm);
	return err;
}
