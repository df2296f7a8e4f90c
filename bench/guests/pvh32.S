/* The same benchmark guest as a PVH ELF for QEMU (`-kernel`): QEMU (and its
 * firmware) enter it at the XEN_ELFNOTE_PHYS32_ENTRY address in 32-bit
 * protected mode, paging off, flat segments. Linked at 0x100000 by pvh.ld.
 * See params.inc for what it does. */
	.code32
	.text
	.globl pvh_start
pvh_start:
	jmp main
	.include "params.inc"
main:
	mov hello, %eax
	test %eax, %eax
	jz 1f
	mov $COM1, %dx
	out %al, %dx
1:	mov pio_n, %ecx
	mov $NULL_PORT, %dx
	test %ecx, %ecx
	jz 3f
2:	out %al, %dx
	dec %ecx
	jnz 2b
3:	mov mmio_n, %ecx
	mov $NULL_MMIO, %ebx
	test %ecx, %ecx
	jz 5f
4:	movl %eax, (%ebx)
	dec %ecx
	jnz 4b
5:	xor %eax, %eax
	out %al, $EXIT_PORT
6:	hlt
	jmp 6b

/* Xen ELF note 18 (XEN_ELFNOTE_PHYS32_ENTRY): the 32-bit entry point. As
 * in Linux's vmlinux: name "Xen", an 8-byte descriptor, 4-byte alignment. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz */
	.long 8			/* descsz */
	.long 18		/* type */
	.asciz "Xen"
	.balign 4
	.quad pvh_start
