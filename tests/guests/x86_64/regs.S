/* rax = rax + rbx; rcx = rcx ^ rdx; then HLT. The harness sets the inputs. */
	.include "guest.inc"
	.text
_start:
	add %rbx, %rax
	xor %rdx, %rcx
	hlt
