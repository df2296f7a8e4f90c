/* SPDX-License-Identifier: MIT */
/*
 * PSCI (Arm Power State Coordination Interface, DEN0022) and the SMCCC
 * calls a guest makes through HVC: function ids and return values.
 *
 * KVM implements PSCI itself (the vCPU feature KVM_ARM_VCPU_PSCI_0_2) and
 * reports only SYSTEM_OFF / SYSTEM_RESET to user space, as
 * KVM_EXIT_SYSTEM_EVENT. Hypervisor.framework delivers every HVC as an exit
 * (EC 0x16) with the function id in X0: its backend answers from this file,
 * so both agree on the numbers.
 *
 * Calling convention: X0 = function id, X1-X3 = arguments; the result
 * comes back in X0 (a PSCI_RET_* value, or the function's result).
 */
#ifndef VIBEVMM_ARM64_PSCI_H
#define VIBEVMM_ARM64_PSCI_H

/* Function ids: 0x8400_00nn for the SMC32 form, 0xC400_00nn for SMC64. */
#define PSCI_FN_BASE 0x84000000u
#define PSCI_FN64_BASE 0xc4000000u
#define PSCI_FN(n) (PSCI_FN_BASE + (n))
#define PSCI_FN64(n) (PSCI_FN64_BASE + (n))

/* PSCI 0.2 */
#define PSCI_VERSION PSCI_FN(0x00)
#define PSCI_CPU_SUSPEND PSCI_FN(0x01)
#define PSCI_CPU_SUSPEND64 PSCI_FN64(0x01)
#define PSCI_CPU_OFF PSCI_FN(0x02)
#define PSCI_CPU_ON PSCI_FN(0x03)
#define PSCI_CPU_ON64 PSCI_FN64(0x03)
#define PSCI_AFFINITY_INFO PSCI_FN(0x04)
#define PSCI_AFFINITY_INFO64 PSCI_FN64(0x04)
#define PSCI_MIGRATE PSCI_FN(0x05)
#define PSCI_MIGRATE64 PSCI_FN64(0x05)
#define PSCI_MIGRATE_INFO_TYPE PSCI_FN(0x06)
#define PSCI_MIGRATE_INFO_UP_CPU PSCI_FN(0x07)
#define PSCI_MIGRATE_INFO_UP_CPU64 PSCI_FN64(0x07)
#define PSCI_SYSTEM_OFF PSCI_FN(0x08)
#define PSCI_SYSTEM_RESET PSCI_FN(0x09)
/* PSCI 1.0 */
#define PSCI_FEATURES PSCI_FN(0x0a)
#define PSCI_CPU_FREEZE PSCI_FN(0x0b)
#define PSCI_CPU_DEFAULT_SUSPEND PSCI_FN(0x0c)
#define PSCI_CPU_DEFAULT_SUSPEND64 PSCI_FN64(0x0c)
#define PSCI_NODE_HW_STATE PSCI_FN(0x0d)
#define PSCI_NODE_HW_STATE64 PSCI_FN64(0x0d)
#define PSCI_SYSTEM_SUSPEND PSCI_FN(0x0e)
#define PSCI_SYSTEM_SUSPEND64 PSCI_FN64(0x0e)
#define PSCI_SET_SUSPEND_MODE PSCI_FN(0x0f)
#define PSCI_STAT_RESIDENCY PSCI_FN(0x10)
#define PSCI_STAT_RESIDENCY64 PSCI_FN64(0x10)
#define PSCI_STAT_COUNT PSCI_FN(0x11)
#define PSCI_STAT_COUNT64 PSCI_FN64(0x11)
/* PSCI 1.1 */
#define PSCI_SYSTEM_RESET2 PSCI_FN(0x12)
#define PSCI_SYSTEM_RESET2_64 PSCI_FN64(0x12)

/* PSCI_VERSION's result: major in bits 31:16, minor in 15:0. */
#define PSCI_VERSION_NUM(major, minor) (((major) << 16) | (minor))
#define PSCI_VERSION_MAJOR(v) (((v) >> 16) & 0x7fff)
#define PSCI_VERSION_MINOR(v) ((v) & 0xffff)

/* Return values (signed 32-bit in W0). */
#define PSCI_RET_SUCCESS 0
#define PSCI_RET_NOT_SUPPORTED (-1)
#define PSCI_RET_INVALID_PARAMS (-2)
#define PSCI_RET_DENIED (-3)
#define PSCI_RET_ALREADY_ON (-4)
#define PSCI_RET_ON_PENDING (-5)
#define PSCI_RET_INTERNAL_FAILURE (-6)
#define PSCI_RET_NOT_PRESENT (-7)
#define PSCI_RET_DISABLED (-8)
#define PSCI_RET_INVALID_ADDRESS (-9)

/* AFFINITY_INFO results. */
#define PSCI_AFFINITY_ON 0
#define PSCI_AFFINITY_OFF 1
#define PSCI_AFFINITY_ON_PENDING 2

/* MIGRATE_INFO_TYPE: no Trusted OS, nothing to migrate. */
#define PSCI_TOS_NOT_PRESENT_MP 2

/* SMCCC 1.1 (DEN0028): what Linux asks before using the Spectre calls. */
#define SMCCC_VERSION 0x80000000u
#define SMCCC_ARCH_FEATURES 0x80000001u
#define SMCCC_ARCH_WORKAROUND_1 0x80008000u
#define SMCCC_ARCH_WORKAROUND_2 0x80007fffu
#define SMCCC_ARCH_WORKAROUND_3 0x80003fffu
#define SMCCC_VERSION_1_1 0x10001
#define SMCCC_RET_SUCCESS 0
#define SMCCC_RET_NOT_SUPPORTED (-1)
#define SMCCC_RET_NOT_REQUIRED (-2)

#endif
