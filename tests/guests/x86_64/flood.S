/* Prints "flood\n" through the UART forever: a guest whose console output
 * outruns any reader. Only a signal or Ctrl-A x ends it. */
	.include "guest.inc"
	.text
	.globl _start
_start:
	mov $COM1, %dx
1:	lea msg(%rip), %rsi
2:	movb (%rsi), %al
	test %al, %al
	jz 1b
	out %al, %dx
	inc %rsi
	jmp 2b

msg:	.asciz "flood\n"
