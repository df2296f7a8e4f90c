/* 32-bit protected mode, no paging. */
	.code32
	.text
_start:
	mov $0xdeadbeef, %eax
	mov $0x510, %dx
	out %eax, %dx
	hlt
