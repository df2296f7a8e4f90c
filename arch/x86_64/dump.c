/* SPDX-License-Identifier: MIT */
/* Register dump for crash reports (triple fault, internal error). */
#include <stdbool.h>
#include <stdio.h>

#include "core/internal.h"

/* CS:IP F000:FFF0 is where a CPU starts after reset. On AMD, KVM reinitialises
 * the vCPU when the guest triple-faults, so a crash dump that shows it has lost
 * the faulting state: say so rather than let it be read as the crash site. */
static bool is_reset_state(const struct regs *r)
{
	return r->rip == 0xfff0 && r->cs.selector == 0xf000;
}

int arch_format_regs(const struct regs *r, char *buf, size_t len)
{
	int n = snprintf(buf, len,
		" rip %016llx rflags %016llx\n"
		" rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		" rsi %016llx rdi %016llx rsp %016llx rbp %016llx\n"
		" r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
		" r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n"
		" cs %04x (base %llx l %u db %u) ss %04x\n"
		" cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx\n"
		" gdt %llx/%x idt %llx/%x\n",
		(unsigned long long)r->rip, (unsigned long long)r->rflags,
		(unsigned long long)r->rax, (unsigned long long)r->rbx,
		(unsigned long long)r->rcx, (unsigned long long)r->rdx,
		(unsigned long long)r->rsi, (unsigned long long)r->rdi,
		(unsigned long long)r->rsp, (unsigned long long)r->rbp,
		(unsigned long long)r->r8, (unsigned long long)r->r9,
		(unsigned long long)r->r10, (unsigned long long)r->r11,
		(unsigned long long)r->r12, (unsigned long long)r->r13,
		(unsigned long long)r->r14, (unsigned long long)r->r15,
		r->cs.selector, (unsigned long long)r->cs.base, r->cs.l, r->cs.db,
		r->ss.selector,
		(unsigned long long)r->cr0, (unsigned long long)r->cr2,
		(unsigned long long)r->cr3, (unsigned long long)r->cr4,
		(unsigned long long)r->efer,
		(unsigned long long)r->gdt.base, r->gdt.limit,
		(unsigned long long)r->idt.base, r->idt.limit);

	if (is_reset_state(r) && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n,
			      " (these are the CPU's reset values: the backend reset it after the\n"
			      "  triple fault, so the faulting state is lost)\n");
	return n;
}
