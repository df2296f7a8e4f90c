/*
 * A PVH kernel in miniature: an ELF64 whose Xen PHYS32_ENTRY note names a
 * 32-bit entry. It checks the state the PVH boot protocol promises (32-bit
 * protected mode, paging off, EBX = hvm_start_info v1 with an RSDP), then
 * prints what the start info points at to the debug console:
 *   "PVH cmdline=<command line> memmap=<entries> modules=<n> initrd=<first
 *   line of module 0>"
 * and exits with 42 through the exit port; 1..5 name the check that failed.
 */
	.set DEBUGCON, 0x90000000
	.set EXIT_PORT, 0xf4

	.include "pvh_note.inc"

	.text
	.code32
	.globl _start
_start:
	mov $0x80000, %esp              /* the protocol gives no stack */
	mov $1, %ecx
	mov %cr0, %eax
	test $1, %eax                   /* PE */
	jz fail
	mov $2, %ecx
	test $0x80000000, %eax          /* PG */
	jnz fail
	mov $3, %ecx
	cmpl $0x336ec578, (%ebx)        /* magic */
	jne fail
	mov $4, %ecx
	cmpl $1, 4(%ebx)                /* version >= 1: memmap fields */
	jb fail
	mov $5, %ecx
	cmpl $0, 32(%ebx)               /* rsdp_paddr */
	je fail

	mov $msg_cmdline, %esi
	call puts
	mov 24(%ebx), %esi              /* cmdline_paddr */
	call puts
	mov $msg_memmap, %esi
	call puts
	mov 48(%ebx), %eax              /* memmap_entries */
	call putdigit
	mov $msg_modules, %esi
	call puts
	mov 12(%ebx), %eax              /* nr_modules */
	call putdigit
	cmpl $0, 12(%ebx)
	je done
	mov $msg_initrd, %esi
	call puts
	mov 16(%ebx), %edi              /* modlist_paddr */
	mov (%edi), %esi                /* module 0: paddr */
1:	movb (%esi), %al
	cmp $'\n', %al
	je done
	movb %al, DEBUGCON
	inc %esi
	jmp 1b
done:
	movb $'\n', DEBUGCON
	mov $42, %eax
	out %eax, $EXIT_PORT
	hlt

fail:
	mov %ecx, %eax
	out %eax, $EXIT_PORT
	hlt

/* puts: the NUL-terminated string at ESI to the debug console */
puts:
	movb (%esi), %al
	test %al, %al
	jz 2f
	movb %al, DEBUGCON
	inc %esi
	jmp puts
2:	ret

/* putdigit: EAX (0-9) as one digit */
putdigit:
	add $'0', %al
	movb %al, DEBUGCON
	ret

	.section .rodata
msg_cmdline: .asciz "PVH cmdline="
msg_memmap:  .asciz " memmap="
msg_modules: .asciz " modules="
msg_initrd:  .asciz " initrd="
