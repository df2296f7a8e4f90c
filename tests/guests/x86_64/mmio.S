/* MMIO of every width: writes known values, reads back into r8-r11. */
	.include "guest.inc"
	.text
_start:
	mov $TESTDEV_MMIO, %rbx
	movb $0x11, 0x0(%rbx)
	movw $0x2233, 0x10(%rbx)
	movl $0x44556677, 0x20(%rbx)
	mov $0x8899aabbccddeeff, %rax
	mov %rax, 0x30(%rbx)
	xor %r8, %r8
	xor %r9, %r9
	xor %r10, %r10
	movb 0x40(%rbx), %r8b
	movw 0x50(%rbx), %r9w
	movl 0x60(%rbx), %r10d
	mov 0x70(%rbx), %r11
	/* unclaimed MMIO reads as all ones */
	mov $0xc8000000, %rcx
	mov (%rcx), %r12
	hlt
