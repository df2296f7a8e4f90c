/*
 * A PVH ELF that ends the VM the way a Linux kernel's last moments do; the
 * first letter of its command line picks how:
 *   r  jump to the reset vector (0xffff0), as Linux's last-resort real-mode
 *      BIOS restart does. The stub vibevmm put there is the same bytes in
 *      16- and 32-bit mode, so running it from here tests what it does.
 *   p  report a panic through pvpanic (port 0x505), after checking that
 *      the port offers the "panicked" event as Linux's driver does.
 *   t  tick: a '.' on COM1, a short busy wait, forever (console output
 *      that a paused VM must stop making).
 *   c  count: "c<8 hex digits>\n" on COM1 with a count kept in EDI that
 *      goes up by one a line, a short busy wait, forever (a restored
 *      snapshot must go on from its count).
 * Anything else, or a failed check: spin (the test then times out).
 */
	.set RESET_VECTOR, 0xffff0
	.set PVPANIC_PORT, 0x505
	.set COM1, 0x3f8

	.include "pvh_note.inc"

	.text
	.code32
	.globl _start
_start:
	mov 24(%ebx), %esi              /* hvm_start_info.cmdline_paddr */
	movb (%esi), %al
	cmp $'r', %al
	je reset
	cmp $'p', %al
	je panic
	cmp $'t', %al
	je tick
	cmp $'c', %al
	je count
spin:
	jmp spin
reset:
	mov $RESET_VECTOR, %eax
	jmp *%eax
panic:
	mov $PVPANIC_PORT, %dx
	inb %dx, %al
	test $1, %al                    /* PVPANIC_PANICKED offered */
	jz spin
	mov $1, %al
	outb %al, %dx
	jmp spin
tick:
	mov $COM1, %dx
	mov $'.', %al
	outb %al, %dx
	mov $200000, %ecx
1:	dec %ecx
	jnz 1b
	jmp tick
count:
	xor %edi, %edi
2:	mov $COM1, %dx
	mov $'c', %al
	outb %al, %dx
	mov $8, %ecx
3:	rol $4, %edi                    /* the top digit first */
	mov %edi, %eax
	and $0xf, %eax
	add $'0', %al
	cmp $'9', %al
	jbe 4f
	add $('a' - '0' - 10), %al
4:	outb %al, %dx
	dec %ecx
	jnz 3b
	mov $'\n', %al
	outb %al, %dx
	inc %edi
	mov $200000, %ecx
5:	dec %ecx
	jnz 5b
	jmp 2b
