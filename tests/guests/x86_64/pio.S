/* Port I/O of every width, a rep outsb, and an unclaimed port read. */
	.include "guest.inc"
	.text
_start:
	mov $TESTDEV_PORT, %dx
	mov $0x5a, %al
	out %al, %dx
	add $2, %dx
	mov $0xbeef, %ax
	out %ax, %dx
	add $2, %dx
	mov $0xcafef00d, %eax
	out %eax, %dx
	xor %r8, %r8
	xor %r9, %r9
	xor %r10, %r10
	mov $TESTDEV_PORT, %dx
	in %dx, %al
	movzbq %al, %r8
	in %dx, %ax
	movzwq %ax, %r9
	in %dx, %eax
	mov %eax, %r10d
	/* rep outsb: 5 bytes to one port */
	lea text(%rip), %rsi
	mov $5, %rcx
	mov $(TESTDEV_PORT + 8), %dx
	rep outsb
	/* unclaimed port reads as all ones */
	mov $0x7777, %dx
	in %dx, %eax
	mov %eax, %r11d
	hlt
text:	.ascii "vibes"
