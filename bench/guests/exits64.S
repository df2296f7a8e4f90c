/* The benchmark guest as a flat 64-bit binary: for `vibevmm --binary`
 * (entry 0x100000, long mode) and for bench/exitbench.c (library and bare
 * KVM_RUN loop). See params.inc for what it does. */
	.code64
	.text
	.globl _start
_start:
	jmp main
	.include "params.inc"
main:
	mov hello(%rip), %eax
	test %eax, %eax
	jz 1f
	mov $COM1, %dx
	out %al, %dx
1:	mov pio_n(%rip), %ecx
	mov $NULL_PORT, %dx
	test %ecx, %ecx
	jz 3f
2:	out %al, %dx
	dec %ecx
	jnz 2b
3:	mov mmio_n(%rip), %ecx
	mov $NULL_MMIO, %ebx
	test %ecx, %ecx
	jz 5f
4:	movl %eax, (%rbx)
	dec %ecx
	jnz 4b
5:	xor %eax, %eax
	out %al, $EXIT_PORT
6:	hlt
	jmp 6b
