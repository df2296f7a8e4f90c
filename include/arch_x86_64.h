/* SPDX-License-Identifier: MIT */
/* x86_64 definitions: the register state a caller reads and writes. */
#ifndef VIBEVMM_ARCH_X86_64_H
#define VIBEVMM_ARCH_X86_64_H

#include <stdint.h>

struct x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type;    /* descriptor type bits (e.g. 0xb: code, exec/read, accessed) */
	uint8_t present;
	uint8_t dpl;
	uint8_t db;      /* default operation size: 1 = 32-bit */
	uint8_t s;       /* 1 = code/data, 0 = system */
	uint8_t l;       /* 1 = 64-bit code */
	uint8_t g;       /* granularity: limit in 4 KiB units */
	uint8_t avl;
	uint8_t unusable;
};

struct x86_dtable {
	uint64_t base;
	uint16_t limit;
};

/*
 * Everything needed to start a vCPU in real, protected or long mode through
 * vcpu_set_regs() alone.
 */
struct regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	struct x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;
};

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_MP (1ULL << 1)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_NE (1ULL << 5)
#define X86_CR0_WP (1ULL << 16)
#define X86_CR0_AM (1ULL << 18)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_EFER_SCE (1ULL << 0)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)
#define X86_RFLAGS_RESERVED (1ULL << 1)
#define X86_RFLAGS_IF (1ULL << 9)

/* Boot GDT selectors (those the Linux 64-bit boot protocol asks for). */
#define X86_BOOT_CS32 0x08
#define X86_BOOT_CS 0x10
#define X86_BOOT_DS 0x18

struct vm;

/*
 * Allocate `size` bytes of guest RAM: from 0 up to the MMIO hole below
 * 4 GiB, the remainder from 4 GiB up.
 */
int x86_alloc_guest_ram(struct vm *vm, uint64_t size);

/*
 * Write the boot GDT and page tables identity-mapping the low 4 GiB (2 MiB
 * pages, the MMIO hole included) into guest RAM at the addresses of
 * arch/x86_64/layout.h. 0 or -EFAULT when RAM does not cover them.
 */
int x86_setup_boot_tables(struct vm *vm);

/*
 * Set `regs` for 64-bit long mode at `entry` with stack `rsp`: paging on
 * those tables, flat segments, interrupts off. Other fields are kept, so
 * start from vcpu_get_regs().
 */
void x86_regs_long_mode(struct regs *regs, uint64_t entry, uint64_t rsp);

/*
 * Set `regs` for a PVH entry at `entry`: 32-bit protected mode, paging off,
 * flat segments, interrupts off, EBX = `start_info` (the hvm_start_info
 * GPA). Other fields are kept.
 */
void x86_regs_pvh(struct regs *regs, uint64_t entry, uint64_t start_info);

#endif
