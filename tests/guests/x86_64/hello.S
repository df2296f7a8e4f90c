/* Prints through the MMIO debug console and the UART, then exits with 42. */
	.include "guest.inc"
	.text
	.globl _start
_start:
	lea msg_debugcon(%rip), %rsi
	mov $DEBUGCON, %rbx
1:	movb (%rsi), %al
	test %al, %al
	jz 2f
	movb %al, (%rbx)
	inc %rsi
	jmp 1b
2:	lea msg_serial(%rip), %rsi
	mov $COM1, %dx
3:	movb (%rsi), %al
	test %al, %al
	jz 4f
	out %al, %dx
	inc %rsi
	jmp 3b
4:	exit_guest 42

msg_debugcon: .asciz "hello from debugcon\n"
msg_serial:   .asciz "hello from serial\n"
