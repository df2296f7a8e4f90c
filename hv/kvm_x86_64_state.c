/* SPDX-License-Identifier: MIT */
/*
 * Linux KVM backend, x86_64: a vCPU's and the VM's CPU and interrupt state
 * as snapshot payloads (hypervisor_ops.vcpu_state_save/_load,
 * vm_state_save/_load). The format is in kvm_x86_64.h.
 *
 * A save reads every item into a staging struct, then appends them. A load
 * parses the whole payload into the same struct first (ids known and
 * expected on this VM, each once, lengths exactly the kernel's sizes,
 * counts bounded, nothing left over) and only then makes its first
 * KVM_SET_*, in the order KVM needs: a malformed payload changes nothing.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "hv/kvm.h"
#include "hv/kvm_x86_64.h"
#include "utils.h"

/* KVM_GET_MSRS / KVM_SET_MSRS take fewer than 256 entries a call. */
#define MSR_BATCH 128
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_KVM_ASYNC_PF_INT 0x4b564d06

#define ITEM_BIT(id) (1u << (id))

/* An item of a payload: where it is kept in its staging struct and the
 * ioctls that read and write it. size 0: a variable-size item (XSAVE,
 * MSRS), handled apart. */
struct item {
	uint32_t id;
	size_t offset, size;
	unsigned long get, set;
};

struct vcpu_stage {
	uint32_t have;                /* ITEM_BIT of each item held */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave;      /* xsave_size bytes */
	struct kvm_xcrs xcrs;
	struct kvm_msr_entry *msrs;
	uint32_t nr_msrs;
	uint32_t nr_late_msrs;        /* load: the last ones, set after the LAPIC */
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
};

struct vm_stage {
	uint32_t have;
	struct kvm_irqchip pic_master, pic_slave, ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

#define FIELD(stage, id, field, get, set) \
	{ (id), offsetof(struct stage, field), sizeof(((struct stage *)0)->field), (get), (set) }
#define VARIABLE(id) { (id), 0, 0, 0, 0 }

/* In the order a save writes them. */
static const struct item vcpu_items[] = {
	FIELD(vcpu_stage, KVM_X86_ITEM_REGS, regs, KVM_GET_REGS, KVM_SET_REGS),
	FIELD(vcpu_stage, KVM_X86_ITEM_SREGS, sregs, KVM_GET_SREGS, KVM_SET_SREGS),
	VARIABLE(KVM_X86_ITEM_XSAVE),
	FIELD(vcpu_stage, KVM_X86_ITEM_XCRS, xcrs, KVM_GET_XCRS, KVM_SET_XCRS),
	VARIABLE(KVM_X86_ITEM_MSRS),
	FIELD(vcpu_stage, KVM_X86_ITEM_LAPIC, lapic, KVM_GET_LAPIC, KVM_SET_LAPIC),
	FIELD(vcpu_stage, KVM_X86_ITEM_EVENTS, events, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS),
	FIELD(vcpu_stage, KVM_X86_ITEM_MP_STATE, mp_state, KVM_GET_MP_STATE, KVM_SET_MP_STATE),
	FIELD(vcpu_stage, KVM_X86_ITEM_DEBUGREGS, debugregs, KVM_GET_DEBUGREGS,
	      KVM_SET_DEBUGREGS),
};

/* In the order a save writes them, and a load sets them: the interrupt
 * controllers, then the clock (set apart: see set_clock). */
static const struct item vm_items[] = {
	FIELD(vm_stage, KVM_X86_ITEM_PIC_MASTER, pic_master, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP),
	FIELD(vm_stage, KVM_X86_ITEM_PIC_SLAVE, pic_slave, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP),
	FIELD(vm_stage, KVM_X86_ITEM_IOAPIC, ioapic, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP),
	FIELD(vm_stage, KVM_X86_ITEM_PIT, pit, KVM_GET_PIT2, KVM_SET_PIT2),
	FIELD(vm_stage, KVM_X86_ITEM_CLOCK, clock, KVM_GET_CLOCK, 0),
};

static const struct item *find_item(const struct item *items, size_t nr, uint32_t id)
{
	for (size_t i = 0; i < nr; i++)
		if (items[i].id == id)
			return &items[i];
	return NULL;
}

static void *field_of(void *stage, const struct item *it)
{
	return (uint8_t *)stage + it->offset;
}

static int ok_or_err(int r)
{
	return r < 0 ? r : 0;
}

/* ---- once per VM ---- */

/* KVM_GET_MSR_INDEX_LIST: the count first (E2BIG), then the list. */
static int read_msr_list(int sys_fd, struct kvm_msr_list **out)
{
	struct kvm_msr_list count = { 0 };
	struct kvm_msr_list *l;
	int err = kvm_ioctl(sys_fd, KVM_GET_MSR_INDEX_LIST, &count);

	if (err < 0 && err != -E2BIG)
		return err;
	l = calloc(1, sizeof(*l) + count.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return -ENOMEM;
	l->nmsrs = count.nmsrs;
	err = kvm_ioctl(sys_fd, KVM_GET_MSR_INDEX_LIST, l);
	if (err < 0) {
		free(l);
		return err;
	}
	*out = l;
	return 0;
}

int kvm_x86_state_vm_init(struct vm *vm)
{
	struct kvm_vm *k = kvm_of(vm);
	struct kvm_x86_vm *x = k->arch;
	/* The legacy 4 KiB area (KVM_GET_XSAVE): asking the VM for
	 * KVM_CAP_XSAVE2's size made Linux guests hang after a few VMs in one
	 * process in the test host (tests/e2e/test_soak.py); not understood
	 * yet. A host with AMX state beyond 4 KiB then cannot save. */
	int size = -1;

	x->xsave2 = size > 0;
	x->xsave_size = (uint32_t)MAX(size, (int)sizeof(struct kvm_xsave));
	x->xcrs = kvm_ioctl(k->sys_fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_XCRS) > 0;
	x->msr_list_err = read_msr_list(k->sys_fd, &x->msr_list);
	/* Otherwise not fatal: the VM runs, only its snapshot would fail. */
	return x->msr_list_err == -ENOMEM ? -ENOMEM : 0;
}

void kvm_x86_state_vm_destroy(struct vm *vm)
{
	struct kvm_x86_vm *x = kvm_x86_of(vm);

	free(x->msr_list);
	x->msr_list = NULL;
}

/* ---- writing a payload ---- */

static void put_item(struct snap_buf *out, uint32_t id, const void *p, size_t len)
{
	snap_put_u32(out, id);
	snap_put_u32(out, (uint32_t)len);
	snap_put_bytes(out, p, len);
}

static void put_msrs(struct snap_buf *out, const struct kvm_msr_entry *e, uint32_t n)
{
	snap_put_u32(out, KVM_X86_ITEM_MSRS);
	snap_put_u32(out, 4 + 12 * n);
	snap_put_u32(out, n);
	for (uint32_t i = 0; i < n; i++) {
		snap_put_u32(out, e[i].index);
		snap_put_u64(out, e[i].data);
	}
}

/* ---- MSRs ---- */

/* KVM_GET_MSRS or KVM_SET_MSRS over e[0..n) in batches. KVM stops at the
 * first MSR it refuses: how many it did before that, or -errno. */
static int msrs_io(int fd, unsigned long req, struct kvm_msr_entry *e, uint32_t n)
{
	struct kvm_msrs *m = malloc(sizeof(*m) + MSR_BATCH * sizeof(*e));
	uint32_t done = 0;
	int r = 0;

	if (!m)
		return -ENOMEM;
	while (done < n) {
		uint32_t k = MIN(n - done, MSR_BATCH);

		*m = (struct kvm_msrs){ .nmsrs = k };
		memcpy(m->entries, e + done, k * sizeof(*e));
		r = kvm_ioctl(fd, req, m);
		if (r < 0)
			break;
		memcpy(e + done, m->entries, (size_t)r * sizeof(*e));
		done += (uint32_t)r;
		if ((uint32_t)r < k)
			break;
	}
	free(m);
	return r < 0 ? r : (int)done;
}

/* Without an in-kernel LAPIC, KVM reads MSR_KVM_ASYNC_PF_INT (as 0, all
 * it can be) but refuses to write it, 0 included: not saved then. */
static bool msr_saved(const struct kvm_x86_vm *x, uint32_t index)
{
	return x->irqchip || index != MSR_KVM_ASYNC_PF_INT;
}

/* Every MSR of KVM's list that this vCPU has: one it refuses (a feature
 * its CPUID does not offer) is left out, and the rest read on. */
static int read_msrs(int fd, const struct kvm_x86_vm *x, struct vcpu_stage *s)
{
	uint32_t n = 0, done = 0;
	struct kvm_msr_entry *e;

	if (!x->msr_list)
		return x->msr_list_err;
	e = calloc(x->msr_list->nmsrs ? x->msr_list->nmsrs : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (uint32_t i = 0; i < x->msr_list->nmsrs; i++)
		if (msr_saved(x, x->msr_list->indices[i]))
			e[n++].index = x->msr_list->indices[i];
	while (done < n) {
		int r = msrs_io(fd, KVM_GET_MSRS, e + done, n - done);

		if (r < 0) {
			free(e);
			return r;
		}
		done += (uint32_t)r;
		if (done < n) {
			memmove(e + done, e + done + 1, (n - done - 1) * sizeof(*e));
			n--;
		}
	}
	s->msrs = e;
	s->nr_msrs = n;
	return 0;
}

/* When an MSR is set: 0 before the others, 1 in the saved order, 2 after
 * the local APIC. */
static int msr_load_rank(uint32_t index)
{
	switch (index) {
	case MSR_KVM_ASYNC_PF_INT: /* the vector, before ASYNC_PF_EN uses it */
		return 0;
	case MSR_IA32_TSC_DEADLINE: /* ignored unless the APIC timer is in
				     * TSC-deadline mode, which KVM_SET_LAPIC sets */
		return 2;
	default:
		return 1;
	}
}

static int order_msrs_for_load(struct vcpu_stage *s)
{
	struct kvm_msr_entry *sorted = calloc(s->nr_msrs ? s->nr_msrs : 1, sizeof(*sorted));
	uint32_t n = 0;

	if (!sorted)
		return -ENOMEM;
	for (int rank = 0; rank < 3; rank++)
		for (uint32_t i = 0; i < s->nr_msrs; i++)
			if (msr_load_rank(s->msrs[i].index) == rank)
				sorted[n++] = s->msrs[i];
	s->nr_late_msrs = 0;
	for (uint32_t i = 0; i < s->nr_msrs; i++)
		s->nr_late_msrs += msr_load_rank(s->msrs[i].index) == 2;
	free(s->msrs);
	s->msrs = sorted;
	return 0;
}

static int set_msrs(struct vcpu *vcpu, struct kvm_msr_entry *e, uint32_t n)
{
	int r = msrs_io(kvm_vcpu_of(vcpu)->fd, KVM_SET_MSRS, e, n);

	if (r < 0 || (uint32_t)r == n)
		return ok_or_err(r);
	vm_err(vcpu->vm, "vCPU %d: KVM refused the saved MSR %#x", vcpu->vcpu_id, e[r].index);
	return -EIO;
}

/* ---- parsing a payload ---- */

static int parse_fixed(struct snap_cursor *in, const struct item *it, uint32_t len,
		       void *stage)
{
	if (len != it->size)
		return -EINVAL;
	snap_get_bytes(in, field_of(stage, it), it->size);
	return in->bad ? -EINVAL : 0;
}

static int parse_xsave(struct snap_cursor *in, const struct kvm_x86_vm *x, uint32_t len,
		       struct vcpu_stage *s)
{
	if (len != x->xsave_size)
		return -EINVAL; /* another host's XSAVE layout */
	s->xsave = malloc(len);
	if (!s->xsave)
		return -ENOMEM;
	snap_get_bytes(in, s->xsave, len);
	return in->bad ? -EINVAL : 0;
}

static int parse_msrs(struct snap_cursor *in, uint32_t len, struct vcpu_stage *s)
{
	uint32_t n = snap_get_u32(in);

	if (in->bad || n > KVM_X86_STATE_MAX_MSRS || len != 4 + 12 * n)
		return -EINVAL;
	s->msrs = calloc(n ? n : 1, sizeof(*s->msrs));
	if (!s->msrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		s->msrs[i].index = snap_get_u32(in);
		s->msrs[i].data = snap_get_u64(in);
	}
	s->nr_msrs = n;
	return in->bad ? -EINVAL : order_msrs_for_load(s);
}

/* The vCPU payload's variable-size items. */
static int parse_vcpu_variable(struct snap_cursor *in, uint32_t id, uint32_t len,
			       void *stage, const struct kvm_x86_vm *x)
{
	if (id == KVM_X86_ITEM_XSAVE)
		return parse_xsave(in, x, len, stage);
	return parse_msrs(in, len, stage);
}

typedef int parse_variable_fn(struct snap_cursor *in, uint32_t id, uint32_t len,
			      void *stage, const struct kvm_x86_vm *x);

/* Every item of `in` into stage: each an id of items[] that `want` has,
 * once; in the end exactly `want`, and in used up. 0 or -EINVAL (-ENOMEM). */
static int parse_items(struct snap_cursor *in, const struct item *items, size_t nr,
		       uint32_t want, void *stage, uint32_t *have,
		       const struct kvm_x86_vm *x, parse_variable_fn *parse_variable)
{
	while (!in->bad && in->left) {
		uint32_t id = snap_get_u32(in), len = snap_get_u32(in);
		const struct item *it = find_item(items, nr, id);
		int err;

		if (in->bad || !it || !(want & ITEM_BIT(id)) || (*have & ITEM_BIT(id)))
			return -EINVAL;
		if (it->size)
			err = parse_fixed(in, it, len, stage);
		else
			err = parse_variable(in, id, len, stage, x);
		if (err)
			return err;
		*have |= ITEM_BIT(id);
	}
	return snap_cursor_done(in) && *have == want ? 0 : -EINVAL;
}

/* ---- a vCPU ---- */

static uint32_t vcpu_items_wanted(const struct kvm_x86_vm *x)
{
	uint32_t want = 0;

	for (size_t i = 0; i < ARRAY_SIZE(vcpu_items); i++)
		want |= ITEM_BIT(vcpu_items[i].id);
	if (!x->irqchip)
		want &= ~ITEM_BIT(KVM_X86_ITEM_LAPIC);
	if (!x->xcrs) /* no XSAVE on the host: XCR0 cannot be but 1 */
		want &= ~ITEM_BIT(KVM_X86_ITEM_XCRS);
	return want;
}

static void vcpu_stage_free(struct vcpu_stage *s)
{
	free(s->xsave);
	free(s->msrs);
}

static int read_xsave(int fd, const struct kvm_x86_vm *x, struct vcpu_stage *s)
{
	s->xsave = calloc(1, x->xsave_size);
	if (!s->xsave)
		return -ENOMEM;
	return ok_or_err(kvm_ioctl(fd, x->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave));
}

static int read_vcpu(int fd, const struct kvm_x86_vm *x, struct vcpu_stage *s)
{
	int err = 0;

	for (size_t i = 0; !err && i < ARRAY_SIZE(vcpu_items); i++) {
		const struct item *it = &vcpu_items[i];

		if (!(s->have & ITEM_BIT(it->id)))
			continue;
		if (it->id == KVM_X86_ITEM_XSAVE)
			err = read_xsave(fd, x, s);
		else if (it->id == KVM_X86_ITEM_MSRS)
			err = read_msrs(fd, x, s);
		else
			err = ok_or_err(kvm_ioctl(fd, it->get, field_of(s, it)));
	}
	return err;
}

static void put_vcpu(struct snap_buf *out, const struct kvm_x86_vm *x, struct vcpu_stage *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(vcpu_items); i++) {
		const struct item *it = &vcpu_items[i];

		if (!(s->have & ITEM_BIT(it->id)))
			continue;
		if (it->id == KVM_X86_ITEM_XSAVE)
			put_item(out, it->id, s->xsave, x->xsave_size);
		else if (it->id == KVM_X86_ITEM_MSRS)
			put_msrs(out, s->msrs, s->nr_msrs);
		else
			put_item(out, it->id, field_of(s, it), it->size);
	}
}

int kvm_arch_vcpu_state_save(struct vcpu *vcpu, struct snap_buf *out)
{
	struct kvm_x86_vm *x = kvm_x86_of(vcpu->vm);
	struct vcpu_stage s = { .have = vcpu_items_wanted(x) };
	int err = read_vcpu(kvm_vcpu_of(vcpu)->fd, x, &s);

	if (!err)
		put_vcpu(out, x, &s);
	vcpu_stage_free(&s);
	return err;
}

/* A fixed-size item, if the payload has it. */
static int set_fixed(int fd, const struct item *items, size_t nr, void *stage,
		     uint32_t have, uint32_t id)
{
	const struct item *it = find_item(items, nr, id);

	if (!(have & ITEM_BIT(id)))
		return 0;
	return ok_or_err(kvm_ioctl(fd, it->set, field_of(stage, it)));
}

/*
 * In the order KVM needs: special registers first (CR0/CR4/EFER, which the
 * rest is checked against, and the APIC base); general registers (their
 * KVM_SET_REGS drops a pending exception, so the events come last); XCR0
 * before the XSAVE area whose components it enables; MSRs after the
 * special registers; the local APIC after the APIC base, and the
 * TSC-deadline MSR after the APIC; then MP state, debug registers and the
 * pending events.
 */
static int write_vcpu(struct vcpu *vcpu, struct vcpu_stage *s)
{
	int fd = kvm_vcpu_of(vcpu)->fd;
	uint32_t early = s->nr_msrs - s->nr_late_msrs;
	size_t nr = ARRAY_SIZE(vcpu_items);
	int err = set_fixed(fd, vcpu_items, nr, s, s->have, KVM_X86_ITEM_SREGS);

	if (!err)
		err = set_fixed(fd, vcpu_items, nr, s, s->have, KVM_X86_ITEM_REGS);
	if (!err)
		err = set_fixed(fd, vcpu_items, nr, s, s->have, KVM_X86_ITEM_XCRS);
	if (!err)
		err = ok_or_err(kvm_ioctl(fd, KVM_SET_XSAVE, s->xsave));
	if (!err)
		err = set_msrs(vcpu, s->msrs, early);
	if (!err)
		err = set_fixed(fd, vcpu_items, nr, s, s->have, KVM_X86_ITEM_LAPIC);
	if (!err)
		err = set_msrs(vcpu, s->msrs + early, s->nr_late_msrs);
	if (!err)
		err = set_fixed(fd, vcpu_items, nr, s, s->have, KVM_X86_ITEM_MP_STATE);
	if (!err)
		err = set_fixed(fd, vcpu_items, nr, s, s->have, KVM_X86_ITEM_DEBUGREGS);
	if (!err)
		err = set_fixed(fd, vcpu_items, nr, s, s->have, KVM_X86_ITEM_EVENTS);
	return err;
}

int kvm_arch_vcpu_state_load(struct vcpu *vcpu, struct snap_cursor *in)
{
	struct kvm_x86_vm *x = kvm_x86_of(vcpu->vm);
	struct vcpu_stage s = { 0 };
	int err = parse_items(in, vcpu_items, ARRAY_SIZE(vcpu_items), vcpu_items_wanted(x), &s,
			      &s.have, x, parse_vcpu_variable);

	if (!err)
		err = write_vcpu(vcpu, &s);
	vcpu_stage_free(&s);
	return err;
}

/* ---- the VM ---- */

static uint32_t vm_items_wanted(const struct kvm_x86_vm *x)
{
	uint32_t want = ITEM_BIT(KVM_X86_ITEM_CLOCK);

	if (x->irqchip) /* the PIT comes with it (kvm_arch_create_irqchip) */
		want |= ITEM_BIT(KVM_X86_ITEM_PIC_MASTER) | ITEM_BIT(KVM_X86_ITEM_PIC_SLAVE) |
			ITEM_BIT(KVM_X86_ITEM_IOAPIC) | ITEM_BIT(KVM_X86_ITEM_PIT);
	return want;
}

static int read_vm(int fd, const struct kvm_x86_vm *x, struct vm_stage *s)
{
	int err = 0;

	s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	for (size_t i = 0; !err && i < ARRAY_SIZE(vm_items); i++)
		if (s->have & ITEM_BIT(vm_items[i].id))
			err = ok_or_err(kvm_ioctl(fd, vm_items[i].get, field_of(s, &vm_items[i])));
	/* Paused: the guest's time stands where the pause left it, which is
	 * what vm_resume would give it back (the host clock ran on since). */
	if (!err && x->clock_saved)
		s->clock.clock = x->paused_clock;
	return err;
}

int kvm_arch_vm_state_save(struct vm *vm, struct snap_buf *out)
{
	struct kvm_x86_vm *x = kvm_x86_of(vm);
	struct vm_stage s = { .have = vm_items_wanted(x) };
	int err = read_vm(kvm_of(vm)->vm_fd, x, &s);

	for (size_t i = 0; !err && i < ARRAY_SIZE(vm_items); i++)
		if (s.have & ITEM_BIT(vm_items[i].id))
			put_item(out, vm_items[i].id, field_of(&s, &vm_items[i]), vm_items[i].size);
	return err;
}

/* Each interrupt controller's item holds that controller. */
static bool chips_match(const struct vm_stage *s)
{
	return (!(s->have & ITEM_BIT(KVM_X86_ITEM_PIC_MASTER)) ||
		s->pic_master.chip_id == KVM_IRQCHIP_PIC_MASTER) &&
	       (!(s->have & ITEM_BIT(KVM_X86_ITEM_PIC_SLAVE)) ||
		s->pic_slave.chip_id == KVM_IRQCHIP_PIC_SLAVE) &&
	       (!(s->have & ITEM_BIT(KVM_X86_ITEM_IOAPIC)) ||
		s->ioapic.chip_id == KVM_IRQCHIP_IOAPIC);
}

/* The saved time, flags 0: the guest goes on from there, as after
 * vm_resume (KVM_CLOCK_REALTIME would add the time since the save). */
static int set_clock(struct vm *vm, uint64_t clock)
{
	struct kvm_x86_vm *x = kvm_x86_of(vm);
	struct kvm_clock_data data = { .clock = clock };
	int err = kvm_ioctl(kvm_of(vm)->vm_fd, KVM_SET_CLOCK, &data);

	if (err < 0)
		return err;
	/* Loaded into a paused VM: vm_resume sets this time, not the one of
	 * its own pause. */
	if (x->clock_saved)
		x->paused_clock = clock;
	return 0;
}

int kvm_arch_vm_state_load(struct vm *vm, struct snap_cursor *in)
{
	struct kvm_x86_vm *x = kvm_x86_of(vm);
	struct vm_stage s = { 0 };
	int fd = kvm_of(vm)->vm_fd;
	int err = parse_items(in, vm_items, ARRAY_SIZE(vm_items), vm_items_wanted(x), &s,
			      &s.have, x, NULL);

	if (!err && !chips_match(&s))
		err = -EINVAL;
	for (size_t i = 0; !err && i < ARRAY_SIZE(vm_items); i++)
		if (vm_items[i].set)
			err = set_fixed(fd, vm_items, ARRAY_SIZE(vm_items), &s, s.have,
					vm_items[i].id);
	return err ? err : set_clock(vm, s.clock.clock);
}
