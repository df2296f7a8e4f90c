/* Echoes what arrives on the UART back through it, polling the line status
 * register, until a 'Q' arrives: then exits with 7. */
	.include "guest.inc"
	.set LSR, COM1 + 5
	.set LSR_DR, 0x01
	.text
	.globl _start
_start:
1:	mov $LSR, %dx
	in %dx, %al
	test $LSR_DR, %al
	jz 1b
	mov $COM1, %dx
	in %dx, %al
	cmp $'Q', %al
	je 2f
	out %al, %dx
	jmp 1b
2:	exit_guest 7
