/* SPDX-License-Identifier: MIT */
/* Register dump for crash reports: the general registers and the EL1 state
 * that says where and why the guest took its last exception. */
#include <stdio.h>

#include "core/internal.h"
#include "utils.h"

static int format_x(const struct regs *r, char *buf, size_t len)
{
	int n = 0;

	for (int i = 0; i < 31 && n >= 0 && (size_t)n < len; i++)
		n += snprintf(buf + n, len - (size_t)n, "%s x%-2d %016llx%s", i % 4 ? "" : " ",
			      i, (unsigned long long)r->x[i], i % 4 == 3 || i == 30 ? "\n" : "");
	return n;
}

int arch_format_regs(const struct regs *r, char *buf, size_t len)
{
	int n = snprintf(buf, len,
		" pc %016llx sp %016llx pstate %08llx (EL%llu%s)\n",
		(unsigned long long)r->pc, (unsigned long long)r->sp,
		(unsigned long long)r->pstate,
		(unsigned long long)ARM64_PSTATE_EL(r->pstate),
		r->pstate & 1 ? "h" : "t");

	if (n < 0 || (size_t)n >= len)
		return n;
	n += format_x(r, buf + n, len - (size_t)n);
	if (n < 0 || (size_t)n >= len)
		return n;
	n += snprintf(buf + n, len - (size_t)n,
		" elr_el1 %016llx spsr_el1 %08llx esr_el1 %08llx (EC 0x%02llx) far_el1 %016llx\n"
		" sctlr_el1 %08llx (MMU %s) tcr_el1 %016llx vbar_el1 %016llx\n"
		" ttbr0_el1 %016llx ttbr1_el1 %016llx mpidr_el1 %llx\n",
		(unsigned long long)r->elr_el1, (unsigned long long)r->spsr_el1,
		(unsigned long long)r->esr_el1, (unsigned long long)ARM64_ESR_EC(r->esr_el1),
		(unsigned long long)r->far_el1, (unsigned long long)r->sctlr_el1,
		r->sctlr_el1 & ARM64_SCTLR_M ? "on" : "off", (unsigned long long)r->tcr_el1,
		(unsigned long long)r->vbar_el1, (unsigned long long)r->ttbr0_el1,
		(unsigned long long)r->ttbr1_el1, (unsigned long long)r->mpidr_el1);
	return n;
}
