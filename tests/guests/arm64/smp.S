/* smp: vCPU 0 starts vCPUs 1..x20-1 with PSCI CPU_ON64 at `secondary`,
 * context id 0x5ec0 + i (their MPIDR is i: KVM's default Aff0 for i < 16).
 * Each secondary stores its context id (x0) at test device offset
 * 8 * MPIDR.Aff0 and turns itself off (CPU_OFF). vCPU 0 waits until
 * AFFINITY_INFO says each is off, stores its own record (0x5ec0 at offset
 * 0) and powers off. A CPU_ON that fails exits with status 100 + i. */
	.include "guest.inc"
_start:
	movl x22, TESTDEV_MMIO
	mov x21, #1
start_next:
	cmp x21, x20
	b.ge wait_all
	mov x1, x21                 /* target MPIDR */
	adr x2, secondary           /* entry point */
	mov x3, #0x5ec0
	add x3, x3, x21             /* context id */
	psci PSCI_CPU_ON64
	cbnz x0, cpu_on_failed
	add x21, x21, #1
	b start_next
wait_all:
	mov x21, #1
wait_next:
	cmp x21, x20
	b.ge all_off
poll:
	mov x1, x21
	mov x2, #0                  /* affinity level 0 */
	psci PSCI_AFFINITY_INFO64
	cmp x0, #PSCI_AFFINITY_OFF
	b.ne poll
	add x21, x21, #1
	b wait_next
all_off:
	mov x1, #0x5ec0
	str x1, [x22]
	psci PSCI_SYSTEM_OFF
cpu_on_failed:
	add w0, w21, #100
	movl x1, EXIT_MMIO
	str w0, [x1]
	psci PSCI_SYSTEM_OFF

secondary:
	mrs x1, mpidr_el1
	and x1, x1, #0xff
	movl x2, TESTDEV_MMIO
	str x0, [x2, x1, lsl #3]
	psci PSCI_CPU_OFF
	b .                         /* CPU_OFF does not return */
