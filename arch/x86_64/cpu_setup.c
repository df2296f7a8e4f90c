/* SPDX-License-Identifier: MIT */
/* Boot-time CPU state: GDT, identity page tables, long-mode registers. */
#include <errno.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "mm.h"
#include "vcpu.h"

#define PTE_PRESENT 0x1ULL
#define PTE_WRITE 0x2ULL
#define PTE_HUGE 0x80ULL /* 2 MiB page in a PD entry */
#define IDENTITY_MAP_GIB 4

/* Flat descriptors; index = selector >> 3. */
static const uint64_t boot_gdt[] = {
	0,                     /* null */
	0x00cf9b000000ffffULL, /* 0x08: 32-bit code (PVH entry), 4 GiB */
	0x00af9b000000ffffULL, /* 0x10: 64-bit code, present, exec/read */
	0x00cf93000000ffffULL, /* 0x18: data, present, read/write, 4 GiB */
};

static int write_page_tables(struct vm *vm)
{
	uint64_t *pml4 = vm_gpa_to_hva(vm, X86_PML4_ADDR, 4096);
	uint64_t *pdpt = vm_gpa_to_hva(vm, X86_PDPT_ADDR, 4096);
	uint64_t *pd = vm_gpa_to_hva(vm, X86_PD_ADDR, 4096 * IDENTITY_MAP_GIB);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = X86_PDPT_ADDR | PTE_PRESENT | PTE_WRITE;
	for (uint64_t g = 0; g < IDENTITY_MAP_GIB; g++)
		pdpt[g] = (X86_PD_ADDR + g * 4096) | PTE_PRESENT | PTE_WRITE;
	for (uint64_t i = 0; i < 512 * IDENTITY_MAP_GIB; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_WRITE | PTE_HUGE;
	return 0;
}

int x86_setup_boot_tables(struct vm *vm)
{
	int err = vm_write_guest(vm, X86_BOOT_GDT_ADDR, boot_gdt, sizeof(boot_gdt));

	return err ? err : write_page_tables(vm);
}

static struct x86_segment flat_segment(uint16_t selector, uint8_t type, int code64)
{
	return (struct x86_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .s = 1, .g = 1, .l = code64 ? 1 : 0, .db = code64 ? 0 : 1,
	};
}

/* Flat segments with code segment `cs`, the boot GDT, no IDT, IF clear. */
static void flat_boot_state(struct regs *r, uint64_t entry, struct x86_segment cs)
{
	struct x86_segment data = flat_segment(X86_BOOT_DS, 0x3, 0);

	r->rip = entry;
	r->rflags = X86_RFLAGS_RESERVED; /* interrupts off */
	r->cs = cs;
	r->ds = r->es = r->fs = r->gs = r->ss = data;
	r->tr = (struct x86_segment){ .limit = 0x67, .type = 0xb, .present = 1 };
	r->ldt = (struct x86_segment){ .limit = 0xffff, .type = 0x2, .present = 1 };
	r->gdt = (struct x86_dtable){ X86_BOOT_GDT_ADDR, sizeof(boot_gdt) - 1 };
	r->idt = (struct x86_dtable){ 0, 0 };
}

void x86_regs_long_mode(struct regs *r, uint64_t entry, uint64_t rsp)
{
	flat_boot_state(r, entry, flat_segment(X86_BOOT_CS, 0xb, 1));
	r->rsp = rsp;
	r->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	r->cr3 = X86_PML4_ADDR;
	r->cr4 = X86_CR4_PAE;
	r->efer = X86_EFER_LME | X86_EFER_LMA;
}

void x86_regs_pvh(struct regs *r, uint64_t entry, uint64_t start_info)
{
	flat_boot_state(r, entry, flat_segment(X86_BOOT_CS32, 0xb, 0));
	r->rbx = start_info;
	/* The protocol: PE set, every other writable CR0 bit clear, CR4 0. */
	r->cr0 = X86_CR0_PE | X86_CR0_ET;
	r->cr3 = 0;
	r->cr4 = 0;
	r->efer = 0;
}
