/* SPDX-License-Identifier: MIT */
/*
 * Linux KVM backend: arm64 specifics. The VM asks for the IPA size the
 * layout needs; each vCPU is initialised for the host's preferred target
 * with PSCI 0.2 (secondaries powered off until the guest's PSCI CPU_ON,
 * which KVM handles itself); the vGIC (v3, else v2) is created at the
 * layout's addresses and initialised once every vCPU exists; registers move
 * one by one through KVM_{GET,SET}_ONE_REG. Snapshot state: kvm_arm64_state.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/arm64/layout.h"
#include "hv/kvm.h"
#include "hv/kvm_arm64.h"
#include "utils.h"

struct kvm_arm64_vm {
	struct kvm_vcpu_init target; /* KVM_ARM_PREFERRED_TARGET */
	int gic_fd;                  /* the vGIC device, -1 before it exists */
	int gic_model;               /* IRQCHIP_GICV3 / IRQCHIP_GICV2 */
	bool gic_ready;              /* KVM_DEV_ARM_VGIC_CTRL_INIT done */
	/* irqfds asked for before that: KVM takes them only afterwards */
	struct { uint32_t gsi; int fd; } *early_irqfds;
	int nr_early_irqfds;
};

static struct kvm_arm64_vm *arm64_of(struct vm *vm)
{
	return kvm_of(vm)->arch;
}

int kvm_arch_vm_type(int sys_fd)
{
	int host_bits = ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	int need_bits = 64 - __builtin_clzll(ARM64_MAX_GPA - 1);

	/* 0: KVM's default, 40 bits, the only size hosts without the
	 * capability offer. */
	if (host_bits <= 0)
		return 0;
	return (int)KVM_VM_TYPE_ARM_IPA_SIZE(MIN(host_bits, need_bits));
}

int kvm_arch_vm_init(struct vm *vm)
{
	struct kvm_vm *k = kvm_of(vm);
	struct kvm_arm64_vm *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	a->gic_fd = -1;
	k->arch = a;
	err = kvm_ioctl(k->vm_fd, KVM_ARM_PREFERRED_TARGET, &a->target);
	if (err < 0)
		return err;
	/* PSCI 0.2 is how Linux starts secondaries and powers off. */
	if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2) <= 0)
		return -ENOTSUP;
	return 0;
}

void kvm_arch_vm_destroy(struct vm *vm)
{
	struct kvm_arm64_vm *a = arm64_of(vm);

	if (!a)
		return;
	if (a->gic_fd >= 0)
		close(a->gic_fd);
	free(a->early_irqfds);
	free(a);
	kvm_of(vm)->arch = NULL;
}

static int set_device_attr(int fd, uint32_t group, uint64_t attr, const void *value)
{
	struct kvm_device_attr da = {
		.group = group, .attr = attr, .addr = (uintptr_t)value,
	};
	int err = kvm_ioctl(fd, KVM_SET_DEVICE_ATTR, &da);

	return err < 0 ? err : 0;
}

static int create_gic(struct vm *vm, uint32_t type)
{
	struct kvm_create_device d = { .type = type };
	int err = kvm_ioctl(kvm_of(vm)->vm_fd, KVM_CREATE_DEVICE, &d);

	if (err < 0)
		return err;
	arm64_of(vm)->gic_fd = (int)d.fd;
	return 0;
}

/* Where the guest finds the GIC: the distributor, and per vCPU either a
 * redistributor (v3) or the CPU interface (v2). */
static int place_gic(struct vm *vm)
{
	static const uint64_t dist = ARM64_GIC_DIST_BASE, redist = ARM64_GIC_REDIST_BASE,
			      cpu = ARM64_GIC_CPU_BASE;
	static const uint32_t nr_irqs = ARM64_GIC_NR_IRQS;
	struct kvm_arm64_vm *a = arm64_of(vm);
	int v3 = a->gic_model == IRQCHIP_GICV3;
	int err;

	err = set_device_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
			      v3 ? KVM_VGIC_V3_ADDR_TYPE_DIST : KVM_VGIC_V2_ADDR_TYPE_DIST, &dist);
	if (!err)
		err = set_device_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
				      v3 ? KVM_VGIC_V3_ADDR_TYPE_REDIST : KVM_VGIC_V2_ADDR_TYPE_CPU,
				      v3 ? &redist : &cpu);
	if (!err)
		err = set_device_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs);
	return err;
}

int kvm_arch_create_irqchip(struct vm *vm)
{
	struct kvm_arm64_vm *a = arm64_of(vm);
	int err;

	if (a->gic_fd >= 0)
		return -EEXIST;
	a->gic_model = IRQCHIP_GICV3;
	err = create_gic(vm, KVM_DEV_TYPE_ARM_VGIC_V3);
	if (err == -ENODEV) {
		/* A host GIC without v3 system registers, or a v2 one. */
		a->gic_model = IRQCHIP_GICV2;
		if (vm->num_vcpus > ARM64_GICV2_MAX_CPUS)
			return -E2BIG;
		err = create_gic(vm, KVM_DEV_TYPE_ARM_VGIC_V2);
	}
	if (!err)
		err = place_gic(vm);
	if (err && a->gic_fd >= 0) {
		close(a->gic_fd);
		a->gic_fd = -1;
	}
	return err;
}

int kvm_arm64_gic_fd(struct vm *vm)
{
	return arm64_of(vm)->gic_fd;
}

int kvm_arch_irqchip_model(struct vm *vm)
{
	return arm64_of(vm)->gic_fd >= 0 ? arm64_of(vm)->gic_model : IRQCHIP_NONE;
}

int kvm_arch_vm_finalize(struct vm *vm)
{
	struct kvm_arm64_vm *a = arm64_of(vm);
	int err;

	if (a->gic_fd < 0 || a->gic_ready)
		return 0;
	err = set_device_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
			      KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
	if (err)
		return err;
	a->gic_ready = true;
	for (int i = 0; !err && i < a->nr_early_irqfds; i++)
		err = kvm_irqfd_now(vm, a->early_irqfds[i].gsi, a->early_irqfds[i].fd);
	free(a->early_irqfds);
	a->early_irqfds = NULL;
	a->nr_early_irqfds = 0;
	return err;
}

int kvm_arch_irqfd_later(struct vm *vm, uint32_t gsi, int fd)
{
	struct kvm_arm64_vm *a = arm64_of(vm);
	void *more;

	if (a->gic_ready)
		return -EAGAIN;
	more = realloc(a->early_irqfds, (size_t)(a->nr_early_irqfds + 1) *
		       sizeof(*a->early_irqfds));
	if (!more)
		return -ENOMEM;
	a->early_irqfds = more;
	a->early_irqfds[a->nr_early_irqfds].gsi = gsi;
	a->early_irqfds[a->nr_early_irqfds].fd = fd;
	a->nr_early_irqfds++;
	return 0;
}

uint32_t kvm_arch_irq_line_number(uint32_t line)
{
	return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | ARM64_SPI_INTID(line);
}

int kvm_arch_vcpu_init(struct vcpu *vcpu)
{
	struct kvm_vcpu_init init = arm64_of(vcpu->vm)->target;
	int err;

	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	/* Secondaries wait for the guest's PSCI CPU_ON, as on hardware. */
	if (vcpu->vcpu_id)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	err = kvm_ioctl(kvm_vcpu_of(vcpu)->fd, KVM_ARM_VCPU_INIT, &init);
	return err < 0 ? err : 0;
}

/* ---- registers ---- */

#define CORE_REG(field) \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
	 (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))
#define SYS_REG(id) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | (id))
#define REGS_FIELD(f) offsetof(struct regs, f)

/* Every struct regs field but x0-x30 and where KVM keeps it. */
static const struct {
	uint64_t id;
	size_t offset;
	int read_only;
} named_regs[] = {
	{ CORE_REG(sp_el1), REGS_FIELD(sp), 0 },
	{ CORE_REG(regs.pc), REGS_FIELD(pc), 0 },
	{ CORE_REG(regs.pstate), REGS_FIELD(pstate), 0 },
	{ CORE_REG(regs.sp), REGS_FIELD(sp_el0), 0 },
	{ CORE_REG(elr_el1), REGS_FIELD(elr_el1), 0 },
	{ CORE_REG(spsr[KVM_SPSR_EL1]), REGS_FIELD(spsr_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_ESR_EL1), REGS_FIELD(esr_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_FAR_EL1), REGS_FIELD(far_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_VBAR_EL1), REGS_FIELD(vbar_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_SCTLR_EL1), REGS_FIELD(sctlr_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_TCR_EL1), REGS_FIELD(tcr_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_TTBR0_EL1), REGS_FIELD(ttbr0_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_TTBR1_EL1), REGS_FIELD(ttbr1_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_MAIR_EL1), REGS_FIELD(mair_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_TPIDR_EL1), REGS_FIELD(tpidr_el1), 0 },
	{ SYS_REG(ARM64_SYSREG_MPIDR_EL1), REGS_FIELD(mpidr_el1), 1 },
};

static int one_reg(int fd, unsigned long req, uint64_t id, uint64_t *value)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)value };
	int err = kvm_ioctl(fd, req, &r);

	return err < 0 ? err : 0;
}

static uint64_t *field(struct regs *regs, size_t offset)
{
	return (uint64_t *)((uint8_t *)regs + offset);
}

int kvm_arch_get_regs(struct vcpu *vcpu, struct regs *regs)
{
	int fd = kvm_vcpu_of(vcpu)->fd, err = 0;

	memset(regs, 0, sizeof(*regs));
	for (int i = 0; !err && i < 31; i++)
		err = one_reg(fd, KVM_GET_ONE_REG, CORE_REG(regs.regs[i]), &regs->x[i]);
	for (size_t i = 0; !err && i < ARRAY_SIZE(named_regs); i++)
		err = one_reg(fd, KVM_GET_ONE_REG, named_regs[i].id,
			      field(regs, named_regs[i].offset));
	return err;
}

int kvm_arch_set_regs(struct vcpu *vcpu, const struct regs *regs)
{
	struct regs copy = *regs;
	int fd = kvm_vcpu_of(vcpu)->fd, err = 0;

	for (int i = 0; !err && i < 31; i++)
		err = one_reg(fd, KVM_SET_ONE_REG, CORE_REG(regs.regs[i]), &copy.x[i]);
	for (size_t i = 0; !err && i < ARRAY_SIZE(named_regs); i++)
		if (!named_regs[i].read_only)
			err = one_reg(fd, KVM_SET_ONE_REG, named_regs[i].id,
				      field(&copy, named_regs[i].offset));
	return err;
}

/* ---- exits ---- */

/* MMIO, PSCI system events and the rest are decoded by hv/kvm.c. */
/* Pause and resume: arm64 has no kvmclock to tell or step. The guest's
 * virtual counter runs on while the VM is paused (as if the guest had
 * been descheduled for that long): stepping it back needs
 * KVM_ARM_SET_COUNTER_OFFSET (Linux 6.4+, KVM_CAP_COUNTER_OFFSET) or,
 * before that, writing KVM_REG_ARM_TIMER_CNT at resume; neither is done
 * yet (the test host's Linux 6.1 has no counter offset, and the guests
 * tested so far do not mind). */
int kvm_arch_vcpu_pause_notify(struct vcpu *vcpu)
{
	return 0;
}

int kvm_arch_clock_save(struct vm *vm)
{
	return 0;
}

int kvm_arch_clock_restore(struct vm *vm)
{
	return 0;
}

int kvm_arch_decode_exit(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	return -ENOENT;
}

/* KVM reports no instruction bytes on arm64, and an instruction is one
 * aligned word the register dump's PC already points at. */
void kvm_arch_fetch_insn(struct vcpu *vcpu, struct vcpu_exit *exit)
{
}

/* MSI routes need an ITS (GICv3) or GICv2m: not created yet. */
int kvm_arch_default_routes(struct vm *vm, struct kvm_irq_routing_entry *e, int max)
{
	return -EOPNOTSUPP;
}

uint32_t kvm_arch_msi_gsi_base(void)
{
	return UINT32_MAX;
}
