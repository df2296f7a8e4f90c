/* SPDX-License-Identifier: MIT */
/* A program outside the tree, built against the installed library with
 * `cc prog.c $(pkg-config --cflags --libs vibevmm)`: it runs a 3-byte guest
 * (mov $42, %al; hlt) and prints what it saw. */
#include <stdio.h>
#include <string.h>

#include <vm.h>

int main(void)
{
	static const unsigned char guest[] = { 0xb0, 0x2a, 0xf4 }; /* mov $42,%al; hlt */
	struct vm *vm;
	struct vcpu *vcpu;
	struct regs regs;
	int r;

	if (hypervisor_init() != 0) {
		printf("no-kvm\n");
		return 77;
	}
	vm = vm_create();
	if (!vm || vm_alloc_memory(vm, 0, 4 << 20) || x86_setup_boot_tables(vm) ||
	    vm_write_guest(vm, 0x100000, guest, sizeof(guest)))
		return 1;
	vcpu = vm_create_vcpu(vm, 0);
	if (!vcpu || vcpu_get_regs(vcpu, &regs))
		return 1;
	x86_regs_long_mode(&regs, 0x100000, 0x20000);
	regs.rax = 0;
	if (vcpu_set_regs(vcpu, &regs))
		return 1;
	r = vcpu_run(vcpu);
	vcpu_get_regs(vcpu, &regs);
	printf("exit=%s rax=%llu\n", vcpu_exit_reason_name(r), (unsigned long long)regs.rax);
	vm_destroy(vm);
	return 0;
}
