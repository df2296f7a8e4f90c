/* 16-bit real mode: CS:IP set by the harness through vcpu_set_regs. */
	.code16
	.text
_start:
	mov $0x1234, %ax
	mov $0x510, %dx
	out %ax, %dx
	hlt
