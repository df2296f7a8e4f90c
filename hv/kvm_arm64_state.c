/* SPDX-License-Identifier: MIT */
/*
 * Linux KVM backend, arm64: a vCPU's and the VM's state as snapshot
 * payloads (hypervisor_ops.vcpu_state_save/_load, vm_state_save/_load).
 *
 * vCPU payload (little-endian):
 *   u32 format (VCPU_FORMAT)
 *   u32 n, then n times: u64 KVM register id, its KVM_REG_SIZE bytes
 *       (every register KVM_GET_REG_LIST names that reads back: core and
 *       FP/SIMD registers, system registers, the timer's CTL/CNT/CVAL,
 *       the firmware pseudo-registers)
 *   u32 KVM_GET_MP_STATE
 *   u8 1 if vcpu events follow (KVM_CAP_VCPU_EVENTS), then u32 length
 *       (sizeof(struct kvm_vcpu_events)) and the struct
 *
 * VM payload: the vGICv3 as hv/kvm_arm64.c creates it.
 *   u32 format (GIC_FORMAT), u32 irqchip model (IRQCHIP_NONE: nothing
 *   more), u32 n, then n times: u32 attribute group, u64 attribute, u64
 *   value, in the order a load writes them.
 * Which (group, attribute) pairs there are follows from the VM's shape
 * (its interrupt count and its vCPUs' affinities), so a load works out the
 * list for the VM it loads into and takes only a payload with exactly
 * that list.
 *
 * A load parses and checks the whole payload first (format, ids this
 * vCPU has and each once, sizes, counts, nothing left over) and only then
 * makes its first KVM_SET_*: a malformed payload changes nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/arm64/layout.h"
#include "core/snapfile.h"
#include "hv/kvm.h"
#include "hv/kvm_arm64.h"
#include "utils.h"

#define VCPU_FORMAT 1
#define GIC_FORMAT 1
/* Bounds on what a payload may claim, far above what KVM lists (~500
 * registers today; a vGIC of ARM64_GIC_NR_IRQS lines has ~300 entries
 * plus ~25 a vCPU). */
#define MAX_REGS 8192
#define MAX_GIC_ATTRS 65536
#define MAX_REG_BYTES 256 /* KVM_REG_SIZE_U2048: an SVE Z register */

static int ok_or_err(int r)
{
	return r < 0 ? r : 0;
}

/* ---- vCPU registers ---- */

struct reg_val {
	uint64_t id;
	uint8_t bytes[MAX_REG_BYTES];
};

struct vcpu_stage {
	struct reg_val *regs;
	uint32_t nr_regs;
	struct kvm_mp_state mp;
	bool has_events;
	struct kvm_vcpu_events events;
};

static size_t reg_size(uint64_t id)
{
	return (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

static int one_reg(int fd, unsigned long req, uint64_t id, void *value)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)value };

	return ok_or_err(kvm_ioctl(fd, req, &r));
}

/* KVM_GET_REG_LIST: the count first (E2BIG), then the list. */
static int reg_list(int fd, struct kvm_reg_list **out)
{
	struct kvm_reg_list probe = { .n = 0 };
	struct kvm_reg_list *l;
	int err = kvm_ioctl(fd, KVM_GET_REG_LIST, &probe);

	if (err < 0 && err != -E2BIG)
		return err;
	if (probe.n > MAX_REGS)
		return -E2BIG;
	l = calloc(1, sizeof(*l) + probe.n * sizeof(l->reg[0]));
	if (!l)
		return -ENOMEM;
	l->n = probe.n;
	err = kvm_ioctl(fd, KVM_GET_REG_LIST, l);
	if (err < 0) {
		free(l);
		return err;
	}
	*out = l;
	return 0;
}

static bool has_vcpu_events(struct vcpu *vcpu)
{
	return ioctl(kvm_of(vcpu->vm)->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0;
}

/* Every listed register that reads back. One that does not (a register
 * KVM lists but will not read in this vCPU's configuration) is left out:
 * a restore could not set it anyway, and the new vCPU keeps KVM's reset
 * value for it. */
static int read_regs(int fd, const struct kvm_reg_list *l, struct vcpu_stage *st)
{
	st->regs = calloc(l->n ? l->n : 1, sizeof(*st->regs));
	if (!st->regs)
		return -ENOMEM;
	for (uint64_t i = 0; i < l->n; i++) {
		struct reg_val *r = &st->regs[st->nr_regs];

		if (reg_size(l->reg[i]) > MAX_REG_BYTES)
			continue;
		r->id = l->reg[i];
		if (!one_reg(fd, KVM_GET_ONE_REG, r->id, r->bytes))
			st->nr_regs++;
	}
	return 0;
}

static int read_vcpu(struct vcpu *vcpu, struct vcpu_stage *st)
{
	int fd = kvm_vcpu_of(vcpu)->fd;
	struct kvm_reg_list *l = NULL;
	int err = reg_list(fd, &l);

	if (!err)
		err = read_regs(fd, l, st);
	free(l);
	if (!err)
		err = ok_or_err(kvm_ioctl(fd, KVM_GET_MP_STATE, &st->mp));
	st->has_events = !err && has_vcpu_events(vcpu);
	if (st->has_events)
		err = ok_or_err(kvm_ioctl(fd, KVM_GET_VCPU_EVENTS, &st->events));
	return err;
}

static void put_vcpu(struct snap_buf *out, const struct vcpu_stage *st)
{
	snap_put_u32(out, VCPU_FORMAT);
	snap_put_u32(out, st->nr_regs);
	for (uint32_t i = 0; i < st->nr_regs; i++) {
		snap_put_u64(out, st->regs[i].id);
		snap_put_bytes(out, st->regs[i].bytes, reg_size(st->regs[i].id));
	}
	snap_put_u32(out, st->mp.mp_state);
	snap_put_u8(out, st->has_events);
	if (st->has_events) {
		snap_put_u32(out, (uint32_t)sizeof(st->events));
		snap_put_bytes(out, &st->events, sizeof(st->events));
	}
}

int kvm_arch_vcpu_state_save(struct vcpu *vcpu, struct snap_buf *out)
{
	struct vcpu_stage st = { 0 };
	int err = read_vcpu(vcpu, &st);

	if (!err)
		put_vcpu(out, &st);
	free(st.regs);
	return err;
}

/* Index of id in the vCPU's list, or -1. */
static long list_index(const struct kvm_reg_list *l, uint64_t id)
{
	for (uint64_t i = 0; i < l->n; i++)
		if (l->reg[i] == id)
			return (long)i;
	return -1;
}

/* The registers: each one this vCPU has, at most once, whole. */
static int parse_regs(struct snap_cursor *in, const struct kvm_reg_list *l,
		      struct vcpu_stage *st)
{
	uint32_t n = snap_get_u32(in);
	bool *seen;
	int err = 0;

	if (in->bad || n > l->n)
		return -EINVAL;
	st->regs = calloc(n ? n : 1, sizeof(*st->regs));
	seen = calloc(l->n ? l->n : 1, sizeof(*seen));
	if (!st->regs || !seen)
		err = -ENOMEM;
	for (uint32_t i = 0; !err && i < n; i++) {
		uint64_t id = snap_get_u64(in);
		long at = list_index(l, id);

		if (in->bad || at < 0 || seen[at] || reg_size(id) > MAX_REG_BYTES) {
			err = -EINVAL;
			break;
		}
		seen[at] = true;
		st->regs[i].id = id;
		snap_get_bytes(in, st->regs[i].bytes, reg_size(id));
	}
	st->nr_regs = n;
	free(seen);
	return err ? err : in->bad ? -EINVAL : 0;
}

static bool mp_state_known(uint32_t s)
{
	return s == KVM_MP_STATE_RUNNABLE || s == KVM_MP_STATE_STOPPED ||
	       s == KVM_MP_STATE_SUSPENDED;
}

/* What KVM_SET_VCPU_EVENTS would refuse only once the registers are set:
 * flags that are not 0/1, padding or reserved words that are not zero. */
static bool events_well_formed(const struct kvm_vcpu_events *e)
{
	static const struct kvm_vcpu_events zero;

	return e->exception.serror_pending <= 1 && e->exception.serror_has_esr <= 1 &&
	       e->exception.ext_dabt_pending <= 1 &&
	       !memcmp(e->exception.pad, zero.exception.pad, sizeof(zero.exception.pad)) &&
	       !memcmp(e->reserved, zero.reserved, sizeof(zero.reserved));
}

static int parse_vcpu(struct snap_cursor *in, struct vcpu *vcpu, const struct kvm_reg_list *l,
		      struct vcpu_stage *st)
{
	uint8_t events;
	int err;

	if (snap_get_u32(in) != VCPU_FORMAT)
		return -EINVAL;
	err = parse_regs(in, l, st);
	if (err)
		return err;
	st->mp.mp_state = snap_get_u32(in);
	events = snap_get_u8(in);
	if (!mp_state_known(st->mp.mp_state) || events > 1 ||
	    (events && !has_vcpu_events(vcpu)))
		return -EINVAL;
	st->has_events = events;
	if (events && snap_get_u32(in) != sizeof(st->events))
		return -EINVAL;
	if (events)
		snap_get_bytes(in, &st->events, sizeof(st->events));
	if (events && !events_well_formed(&st->events))
		return -EINVAL;
	return snap_cursor_done(in) ? 0 : -EINVAL;
}

static bool is_firmware_reg(uint64_t id)
{
	uint64_t coproc = id & KVM_REG_ARM_COPROC_MASK;

	return coproc == KVM_REG_ARM_FW || coproc == KVM_REG_ARM_FW_FEAT_BMAP;
}

/* Written only when it differs from what the new vCPU holds: KVM takes
 * its ID registers, MPIDR and the firmware bitmaps back only unchanged or
 * only before the first run, and most of the rest already match. */
static int set_reg(int fd, const struct reg_val *r)
{
	uint8_t now[MAX_REG_BYTES];

	if (!one_reg(fd, KVM_GET_ONE_REG, r->id, now) &&
	    !memcmp(now, r->bytes, reg_size(r->id)))
		return 0;
	return one_reg(fd, KVM_SET_ONE_REG, r->id, (void *)r->bytes);
}

/* The firmware pseudo-registers first (the PSCI version and the
 * hypercall bitmaps decide what the vCPU offers), then the rest as saved
 * (the timer's CNT before CVAL and CTL are compared against it at the
 * next run, not at the write). */
static int write_vcpu(int fd, const struct vcpu_stage *st)
{
	int err = 0;

	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; !err && i < st->nr_regs; i++)
			if (is_firmware_reg(st->regs[i].id) == (pass == 0))
				err = set_reg(fd, &st->regs[i]);
	if (!err)
		err = ok_or_err(kvm_ioctl(fd, KVM_SET_MP_STATE, (void *)&st->mp));
	if (!err && st->has_events)
		err = ok_or_err(kvm_ioctl(fd, KVM_SET_VCPU_EVENTS, (void *)&st->events));
	return err;
}

int kvm_arch_vcpu_state_load(struct vcpu *vcpu, struct snap_cursor *in)
{
	int fd = kvm_vcpu_of(vcpu)->fd;
	struct vcpu_stage st = { 0 };
	struct kvm_reg_list *l = NULL;
	int err = reg_list(fd, &l);

	if (!err)
		err = parse_vcpu(in, vcpu, l, &st);
	if (!err)
		err = write_vcpu(fd, &st);
	free(l);
	free(st.regs);
	return err;
}

/* ---- the vGIC ---- */

/* GICv3 register offsets (the architecture's): distributor, and a
 * redistributor's SGI frame (the second 64 KiB page). */
enum {
	GICD_CTLR = 0x0000,
	GICD_IGROUPR = 0x0080,
	GICD_ISENABLER = 0x0100,
	GICD_ICENABLER = 0x0180,
	GICD_ISPENDR = 0x0200,
	GICD_ICPENDR = 0x0280,
	GICD_ISACTIVER = 0x0300,
	GICD_ICACTIVER = 0x0380,
	GICD_IPRIORITYR = 0x0400,
	GICD_ICFGR = 0x0c00,
	GICD_IROUTER = 0x6000,
	GICR_SGI_BASE = 0x10000,
};

/* What a load writes before the value: the register's clear half, all
 * ones (set-only registers cannot take a bit away). */
struct gic_attr {
	uint32_t group;
	uint64_t attr;
	uint64_t clear; /* the attribute of its clear register, 0: none */
	uint64_t value;
};

struct gic_list {
	struct gic_attr *a;
	size_t n, cap;
	bool failed;
};

static void gic_add(struct gic_list *l, uint32_t group, uint64_t attr, uint64_t clear)
{
	if (l->failed || l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *more = l->failed ? NULL : realloc(l->a, cap * sizeof(*l->a));

		if (!more) {
			l->failed = true;
			return;
		}
		l->a = more;
		l->cap = cap;
	}
	l->a[l->n++] = (struct gic_attr){ .group = group, .attr = attr, .clear = clear };
}

static bool is_sysreg_group(uint32_t group)
{
	return group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
}

static int gic_access(int fd, bool set, uint32_t group, uint64_t attr, uint64_t *value)
{
	uint32_t v32 = (uint32_t)*value;
	struct kvm_device_attr da = {
		.group = group, .attr = attr,
		.addr = is_sysreg_group(group) ? (uintptr_t)value : (uintptr_t)&v32,
	};
	int err = ok_or_err(kvm_ioctl(fd, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, &da));

	if (!err && !set && !is_sysreg_group(group))
		*value = v32;
	return err;
}

/* A vCPU's affinity as the vGIC's attributes take it (Aff3.Aff2.Aff1.Aff0
 * in bits 63:32). */
static int vgic_mpidr(struct vcpu *vcpu, uint64_t *attr)
{
	uint64_t mpidr;
	int err = one_reg(kvm_vcpu_of(vcpu)->fd, KVM_GET_ONE_REG,
			  KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG |
			  ARM64_SYSREG_MPIDR_EL1, &mpidr);

	if (err)
		return err;
	*attr = ((((mpidr >> 32) & 0xff) << 24) | (mpidr & 0xffffff)) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT;
	return 0;
}

/* The distributor: the SPIs' configuration (group, priority, trigger,
 * target), their line levels once the trigger is known, then their state
 * (pending, active, enabled). SGIs and PPIs live in the redistributors;
 * the distributor's copies are RAZ/WI with affinity routing, which KVM's
 * GICv3 always has. IGRPMODR too is RAZ/WI (no Secure state). */
static void add_distributor(struct gic_list *l, uint64_t vcpu0)
{
	const uint32_t g = KVM_DEV_ARM_VGIC_GRP_DIST_REGS, nr = ARM64_GIC_NR_IRQS;

	gic_add(l, g, GICD_CTLR, 0);
	for (uint32_t irq = 32; irq < nr; irq += 32)
		gic_add(l, g, GICD_IGROUPR + irq / 8, 0);
	for (uint32_t irq = 32; irq < nr; irq += 4)
		gic_add(l, g, GICD_IPRIORITYR + irq, 0);
	for (uint32_t irq = 32; irq < nr; irq += 16)
		gic_add(l, g, GICD_ICFGR + irq / 4, 0);
	/* 64-bit registers, reached 32 bits at a time */
	for (uint32_t irq = 32; irq < nr; irq++) {
		gic_add(l, g, GICD_IROUTER + 8 * irq, 0);
		gic_add(l, g, GICD_IROUTER + 8 * irq + 4, 0);
	}
	for (uint32_t irq = 32; irq < nr; irq += 32)
		gic_add(l, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
			vcpu0 | (VGIC_LEVEL_INFO_LINE_LEVEL << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) |
			irq, 0);
	for (uint32_t irq = 32; irq < nr; irq += 32) {
		gic_add(l, g, GICD_ISPENDR + irq / 8, GICD_ICPENDR + irq / 8);
		gic_add(l, g, GICD_ISACTIVER + irq / 8, GICD_ICACTIVER + irq / 8);
		gic_add(l, g, GICD_ISENABLER + irq / 8, GICD_ICENABLER + irq / 8);
	}
}

/* A redistributor: its SGIs' and PPIs' configuration, then their state.
 * GICR_ICFGR0 (SGIs: always edge) is read-only; GICR_CTLR, PROPBASER and
 * PENDBASER only matter for LPIs, which need an ITS this VMM does not
 * create. */
static void add_redistributor(struct gic_list *l, uint64_t mpidr)
{
	const uint32_t g = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS;
	const uint64_t sgi = mpidr | GICR_SGI_BASE;

	gic_add(l, g, sgi + GICD_IGROUPR, 0);
	for (uint32_t irq = 0; irq < 32; irq += 4)
		gic_add(l, g, sgi + GICD_IPRIORITYR + irq, 0);
	gic_add(l, g, sgi + GICD_ICFGR + 4, 0);
	gic_add(l, g, sgi + GICD_ISPENDR, sgi + GICD_ICPENDR);
	gic_add(l, g, sgi + GICD_ISACTIVER, sgi + GICD_ICACTIVER);
	gic_add(l, g, sgi + GICD_ISENABLER, sgi + GICD_ICENABLER);
}

/* A CPU interface's ICC_* registers. SRE and CTLR first: CTLR sets how
 * many priority bits there are, which decides which active-priority
 * registers exist (those that read back here: the list is probed). The
 * group enables last. */
static void add_cpu_interface(struct gic_list *l, int fd, uint64_t mpidr)
{
	static const uint32_t fixed[] = {
		ARM64_SYSREG(3, 0, 12, 12, 5), /* ICC_SRE_EL1 */
		ARM64_SYSREG(3, 0, 12, 12, 4), /* ICC_CTLR_EL1 */
		ARM64_SYSREG(3, 0, 4, 6, 0),   /* ICC_PMR_EL1 */
		ARM64_SYSREG(3, 0, 12, 8, 3),  /* ICC_BPR0_EL1 */
		ARM64_SYSREG(3, 0, 12, 12, 3), /* ICC_BPR1_EL1 */
	};
	const uint32_t g = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		gic_add(l, g, mpidr | fixed[i], 0);
	/* ICC_AP0R<n>_EL1 before ICC_AP1R<n>_EL1, as the architecture wants */
	for (int grp = 0; grp < 2; grp++)
		for (uint32_t n = 0; n < 4; n++) {
			uint64_t attr = mpidr | (grp ? ARM64_SYSREG(3, 0, 12, 9, n)
						     : ARM64_SYSREG(3, 0, 12, 8, 4 + n));
			uint64_t v;

			if (!gic_access(fd, false, g, attr, &v))
				gic_add(l, g, attr, 0);
		}
	gic_add(l, g, mpidr | ARM64_SYSREG(3, 0, 12, 12, 6), 0); /* ICC_IGRPEN0_EL1 */
	gic_add(l, g, mpidr | ARM64_SYSREG(3, 0, 12, 12, 7), 0); /* ICC_IGRPEN1_EL1 */
}

/* The attributes this VM's vGIC has, in the order a load writes them. */
static int gic_attrs(struct vm *vm, int fd, struct gic_list *l)
{
	uint64_t mpidr, vcpu0 = 0;
	int err = 0;

	/* The line levels are read through a vCPU (any: SPIs are shared). */
	for (int i = 0; i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i]) {
			err = vgic_mpidr(vm->vcpus[i], &vcpu0);
			break;
		}
	if (!err)
		add_distributor(l, vcpu0);
	for (int i = 0; !err && i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i] && !(err = vgic_mpidr(vm->vcpus[i], &mpidr)))
			add_redistributor(l, mpidr);
	for (int i = 0; !err && i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i] && !(err = vgic_mpidr(vm->vcpus[i], &mpidr)))
			add_cpu_interface(l, fd, mpidr);
	if (!err && (l->failed || l->n > MAX_GIC_ATTRS))
		err = -ENOMEM;
	return err;
}

/* The vGIC's attributes can only be read and written once it is
 * initialised; that is vm_finalize's step (also done at vm_start, where
 * it is then nothing more to do). GICv2 is not saved. */
static int gic_ready(struct vm *vm, int *fd)
{
	int model = kvm_arch_irqchip_model(vm);

	*fd = kvm_arm64_gic_fd(vm);
	if (model == IRQCHIP_NONE)
		return 0;
	if (model != IRQCHIP_GICV3)
		return -EOPNOTSUPP;
	return kvm_arch_vm_finalize(vm);
}

int kvm_arch_vm_state_save(struct vm *vm, struct snap_buf *out)
{
	struct gic_list l = { 0 };
	int fd, err = gic_ready(vm, &fd);

	if (!err && fd >= 0)
		err = gic_attrs(vm, fd, &l);
	for (size_t i = 0; !err && i < l.n; i++)
		err = gic_access(fd, false, l.a[i].group, l.a[i].attr, &l.a[i].value);
	if (!err) {
		snap_put_u32(out, GIC_FORMAT);
		snap_put_u32(out, (uint32_t)kvm_arch_irqchip_model(vm));
		snap_put_u32(out, (uint32_t)l.n);
		for (size_t i = 0; i < l.n; i++) {
			snap_put_u32(out, l.a[i].group);
			snap_put_u64(out, l.a[i].attr);
			snap_put_u64(out, l.a[i].value);
		}
	}
	free(l.a);
	return err;
}

/* The payload against the list worked out for this VM: the same
 * attributes in the same order, 32-bit registers' values within 32 bits. */
static int parse_gic(struct snap_cursor *in, struct vm *vm, struct gic_list *l)
{
	uint32_t format = snap_get_u32(in), model = snap_get_u32(in), n = snap_get_u32(in);

	if (in->bad || format != GIC_FORMAT || model != (uint32_t)kvm_arch_irqchip_model(vm) ||
	    n != l->n)
		return -EINVAL;
	for (size_t i = 0; i < l->n; i++) {
		uint32_t group = snap_get_u32(in);
		uint64_t attr = snap_get_u64(in), value = snap_get_u64(in);

		if (in->bad || group != l->a[i].group || attr != l->a[i].attr ||
		    (!is_sysreg_group(group) && value > UINT32_MAX))
			return -EINVAL;
		l->a[i].value = value;
	}
	return snap_cursor_done(in) ? 0 : -EINVAL;
}

static int write_gic(int fd, const struct gic_list *l)
{
	int err = 0;

	for (size_t i = 0; !err && i < l->n; i++) {
		const struct gic_attr *a = &l->a[i];
		uint64_t value = a->value, all = UINT32_MAX;

		if (a->clear)
			err = gic_access(fd, true, a->group, a->clear, &all);
		if (!err)
			err = gic_access(fd, true, a->group, a->attr, &value);
	}
	return err;
}

int kvm_arch_vm_state_load(struct vm *vm, struct snap_cursor *in)
{
	struct gic_list l = { 0 };
	int fd, err = gic_ready(vm, &fd);

	if (!err && fd >= 0)
		err = gic_attrs(vm, fd, &l);
	if (!err)
		err = parse_gic(in, vm, &l);
	if (!err && fd >= 0)
		err = write_gic(fd, &l);
	free(l.a);
	return err;
}
