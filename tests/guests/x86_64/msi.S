/* An MSI through KVM's routes: an interrupt gate for vector 0x41, the
 * local APIC on (a software-disabled APIC drops fixed interrupts), then
 * "ready" (1) to the test device's port and interrupts on. The handler
 * writes the vector it came in on to the port, signals EOI and exits
 * with status 0x41. An interrupt that never comes leaves the guest
 * halted (the harness's timeout then says so). */
	.include "guest.inc"
	.set VECTOR, 0x41
	.set LAPIC, 0xfee00000
	.text
_start:
	/* the gate: offset, code selector, present 64-bit interrupt gate */
	lea idt(%rip), %rbx
	lea handler(%rip), %rax
	mov %ax, VECTOR * 16(%rbx)
	mov %cs, %cx
	mov %cx, VECTOR * 16 + 2(%rbx)
	movw $0x8e00, VECTOR * 16 + 4(%rbx)
	shr $16, %rax
	mov %ax, VECTOR * 16 + 6(%rbx)
	shr $16, %rax
	mov %eax, VECTOR * 16 + 8(%rbx)
	lea idtr(%rip), %rdx
	movw $(256 * 16 - 1), (%rdx)
	mov %rbx, 2(%rdx)
	lidt (%rdx)
	/* the APIC: software-enabled (spurious vector 0xff), priority 0 */
	mov $LAPIC, %ecx
	movl $0x1ff, 0xf0(%rcx)
	movl $0, 0x80(%rcx)
	mov $TESTDEV_PORT, %dx
	mov $1, %eax
	out %eax, %dx
	sti
1:	hlt
	jmp 1b

handler:
	mov $TESTDEV_PORT, %dx
	mov $VECTOR, %eax
	out %eax, %dx
	mov $LAPIC, %ecx
	movl $0, 0xb0(%rcx)      /* EOI */
	exit_guest VECTOR

	.balign 16
idtr:	.word 0
	.quad 0
	.balign 16
idt:	.fill 256 * 16, 1, 0
