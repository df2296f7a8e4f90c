/* SPDX-License-Identifier: MIT */
/*
 * A program outside the tree that boots Linux through the installed library
 * and nothing arch-specific: `boot_linux KERNEL INITRD CMDLINE` builds the
 * arch's machine with 1 vCPU, 256 MiB, a virtio entropy device and the
 * serial console on stdout, runs the guest and prints how it ended
 * ("exit=poweroff"). Built by tests/e2e (test_library_boots_linux) against
 * `make install`'s headers and libraries with pkg-config.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <machine.h>
#include <utils.h>
#include <vm.h>

static int add_rng(struct vm *vm, char *why, size_t len)
{
	uint64_t base;
	uint32_t irq;
	int err = machine_virtio_slot(vm, &base, &irq, why, len);

	return err ? err : machine_add_virtio(vm, virtio_rng_create(vm, base, irq), irq);
}

static int boot(struct vm *vm, const char *kernel, const char *initrd,
		const char *cmdline, char *why, size_t len)
{
	const struct machine_config mc = {
		.nr_cpus = 1, .ram_size = 256 << 20, .flags = MACHINE_LINUX,
		.console_in_fd = -1, .console_out_fd = STDOUT_FILENO,
	};
	struct machine_linux b = { .cmdline = cmdline };
	uint8_t *k = NULL, *i = NULL;
	int err = read_file(kernel, &k, &b.kernel_len);

	if (!err)
		err = read_file(initrd, &i, &b.initrd_len);
	b.kernel = k;
	b.initrd = i;
	if (!err)
		err = machine_create(vm, &mc, why, len);
	if (!err)
		err = add_rng(vm, why, len);
	if (!err)
		err = machine_boot_linux(vm, &b, why, len);
	if (!err)
		err = vm_start(vm);
	free(k);
	free(i);
	return err;
}

int main(int argc, char **argv)
{
	char why[256] = "";
	struct vm *vm;
	int err;

	if (argc != 4) {
		fprintf(stderr, "usage: boot_linux KERNEL INITRD CMDLINE\n");
		return 2;
	}
	if (hypervisor_init() || !(vm = vm_create())) {
		printf("no-kvm\n");
		return 77;
	}
	err = boot(vm, argv[1], argv[2], argv[3], why, sizeof(why));
	if (err) {
		fprintf(stderr, "boot_linux: %s\n", *why ? why : strerror(-err));
		vm_destroy(vm);
		return 1;
	}
	err = vm_wait(vm);
	vm_destroy(vm);
	printf("\nexit=%s\n", err < 0 ? strerror(-err) : vcpu_exit_reason_name(err));
	return 0;
}
