/* Drives a memory-mapped 16550 at UART_MMIO as Linux's 8250 driver does on
 * arm64: 8N1 through LCR, then each byte after LSR says THR is empty.
 * R8 = LCR read back, R9 = LSR after the last byte; ends with status 7
 * through the memory-mapped exit register (no port I/O at all). */
	.include "guest.inc"
	.set UART_MMIO, 0xc0001000      /* registered by the C harness */
	.set EXIT_MMIO, 0xc0002000      /* registered by the C harness */
	.text
	.globl _start
_start:
	mov $UART_MMIO, %rbx
	movb $0x03, 3(%rbx)             /* LCR: 8 bits, no parity, 1 stop */
	movzbq 3(%rbx), %r8
	lea msg(%rip), %rsi
1:	movb (%rsi), %cl
	test %cl, %cl
	jz 3f
2:	movb 5(%rbx), %al               /* LSR */
	test $0x20, %al                 /* THRE */
	jz 2b
	movb %cl, (%rbx)                /* THR */
	inc %rsi
	jmp 1b
3:	movzbq 5(%rbx), %r9
	mov $EXIT_MMIO, %rcx
	movl $7, (%rcx)
4:	hlt
	jmp 4b

msg: .asciz "hello from the mmio uart\n"
