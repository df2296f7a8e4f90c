/* SPDX-License-Identifier: MIT */
/* ARM64 definitions (backend planned; see README support table). */
#ifndef VIBEVMM_ARCH_ARM64_H
#define VIBEVMM_ARCH_ARM64_H

#include <stdint.h>

struct regs {
	uint64_t x[31];
	uint64_t sp;     /* SP_EL1 */
	uint64_t pc;
	uint64_t pstate;
};

/* PSTATE for entering a kernel: EL1h, DAIF masked. */
#define ARM64_PSTATE_EL1H_DAIF 0x3c5ULL

#endif
