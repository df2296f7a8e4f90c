/* SPDX-License-Identifier: MIT */
/*
 * ARM64 definitions: the register file vcpu_get_regs/vcpu_set_regs move,
 * PSTATE and exception-level constants, and system register ids. Nothing
 * here is KVM's: the ids use the architecture's own (op0, op1, CRn, CRm,
 * op2) encoding, which KVM (KVM_REG_ARM64_SYSREG) and Hypervisor.framework
 * (hv_sys_reg_t) both pack the same way.
 */
#ifndef VIBEVMM_ARCH_ARM64_H
#define VIBEVMM_ARCH_ARM64_H

#include <stdint.h>

struct regs {
	uint64_t x[31];   /* x0-x30 (x29 = frame pointer, x30 = link register) */
	uint64_t sp;      /* SP_EL1: the stack pointer of EL1h, where kernels run */
	uint64_t pc;
	uint64_t pstate;  /* ARM64_PSTATE_*: mode, DAIF, NZCV */
	/* EL1 state a debugger wants (read and written like the others) */
	uint64_t sp_el0;
	uint64_t elr_el1;   /* where an exception to EL1 came from */
	uint64_t spsr_el1;  /* PSTATE at that exception */
	uint64_t esr_el1;   /* why: exception class and syndrome */
	uint64_t far_el1;   /* faulting address */
	uint64_t vbar_el1;  /* exception vectors */
	uint64_t sctlr_el1; /* MMU and cache enables */
	uint64_t tcr_el1;
	uint64_t ttbr0_el1;
	uint64_t ttbr1_el1;
	uint64_t mair_el1;
	uint64_t tpidr_el1;
	uint64_t mpidr_el1; /* read-only: this vCPU's affinity (set_regs ignores it) */
};

/* PSTATE (SPSR layout): mode in M[3:0], interrupt masks D, A, I, F. */
#define ARM64_PSTATE_MODE_MASK 0xfULL
#define ARM64_PSTATE_MODE_EL0T 0x0ULL
#define ARM64_PSTATE_MODE_EL1T 0x4ULL
#define ARM64_PSTATE_MODE_EL1H 0x5ULL
#define ARM64_PSTATE_F (1ULL << 6)
#define ARM64_PSTATE_I (1ULL << 7)
#define ARM64_PSTATE_A (1ULL << 8)
#define ARM64_PSTATE_D (1ULL << 9)
#define ARM64_PSTATE_DAIF (ARM64_PSTATE_D | ARM64_PSTATE_A | ARM64_PSTATE_I | ARM64_PSTATE_F)
/* The exception level of a PSTATE value. */
#define ARM64_PSTATE_EL(pstate) (((pstate) >> 2) & 3)

/* PSTATE for entering a kernel: EL1h, DAIF masked. */
#define ARM64_PSTATE_EL1H_DAIF (ARM64_PSTATE_MODE_EL1H | ARM64_PSTATE_DAIF)

/* SCTLR_EL1.M: the stage 1 MMU is on. */
#define ARM64_SCTLR_M (1ULL << 0)

/* ESR_ELx: exception class. */
#define ARM64_ESR_EC(esr) (((esr) >> 26) & 0x3f)

/* A system register id: op0, op1, CRn, CRm, op2 packed as KVM and HVF do. */
#define ARM64_SYSREG(op0, op1, crn, crm, op2) \
	((uint32_t)(((op0) << 14) | ((op1) << 11) | ((crn) << 7) | ((crm) << 3) | (op2)))

#define ARM64_SYSREG_MPIDR_EL1 ARM64_SYSREG(3, 0, 0, 0, 5)
#define ARM64_SYSREG_SCTLR_EL1 ARM64_SYSREG(3, 0, 1, 0, 0)
#define ARM64_SYSREG_TTBR0_EL1 ARM64_SYSREG(3, 0, 2, 0, 0)
#define ARM64_SYSREG_TTBR1_EL1 ARM64_SYSREG(3, 0, 2, 0, 1)
#define ARM64_SYSREG_TCR_EL1 ARM64_SYSREG(3, 0, 2, 0, 2)
#define ARM64_SYSREG_ESR_EL1 ARM64_SYSREG(3, 0, 5, 2, 0)
#define ARM64_SYSREG_FAR_EL1 ARM64_SYSREG(3, 0, 6, 0, 0)
#define ARM64_SYSREG_MAIR_EL1 ARM64_SYSREG(3, 0, 10, 2, 0)
#define ARM64_SYSREG_VBAR_EL1 ARM64_SYSREG(3, 0, 12, 0, 0)
#define ARM64_SYSREG_TPIDR_EL1 ARM64_SYSREG(3, 0, 13, 0, 4)
#define ARM64_SYSREG_CNTFRQ_EL0 ARM64_SYSREG(3, 3, 14, 0, 0)

/* MPIDR affinity fields (Aff0-Aff2 in bits 0-23, Aff3 in 32-39). */
#define ARM64_MPIDR_AFFINITY_MASK 0xff00ffffffULL

#endif
