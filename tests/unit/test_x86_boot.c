/* SPDX-License-Identifier: MIT */
/* Placing an x86 kernel in guest RAM: what is wrong, in words. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/linux_boot.h"
#include "boot.h"
#include "elf_image.h"
#include "vm.h"

static int fake_vm_create(struct vm *vm) { return 0; }
static void fake_vm_destroy(struct vm *vm) { }
static int fake_set_memory(struct vm *vm, uint32_t slot, uint64_t gpa,
			   void *hva, uint64_t size) { return 0; }

/* Memory slots and nothing else: enough to place a kernel, no KVM. */
static const struct hypervisor_ops fake_ops = {
	.name = "fake", .vm_create = fake_vm_create,
	.vm_destroy = fake_vm_destroy, .set_memory = fake_set_memory,
};

/* x86_boot_linux's one-line reason for the test ELF with segment 0 at gpa. */
static int boot_elf_at(uint64_t gpa, char *why, size_t len)
{
	const uint64_t ram = 64ULL << 20;
	uint8_t b[ELF_LEN], *mem = aligned_alloc(4096, ram);
	struct kernel_image img;
	struct x86_linux_boot boot = {
		.kernel = &img, .cmdline = "console=ttyS0",
		.platform = { .nr_cpus = 1, .ram_size = ram },
	};
	struct vm *vm = vm_create_on(&fake_ops);
	int err;

	assert_non_null(mem);
	assert_non_null(vm);
	assert_int_equal(vm_add_memory(vm, 0, mem, ram), 0);
	make_elf(b, 0);
	put_le64(b + PHDR(0) + 24, gpa);
	put_le64(b + 24, gpa); /* e_entry */
	assert_int_equal(boot_parse_kernel(b, sizeof(b), NULL, &img), 0);
	why[0] = '\0';
	/* The segments are placed before the boot vCPU is touched. */
	err = x86_boot_linux(vm, NULL, &boot, why, len);
	kernel_image_free(&img);
	vm_destroy(vm);
	free(mem);
	return err;
}

static void test_elf_placement_errors(void **state)
{
	char why[256];

	/* Below 1 MiB: more memory would not help; say so. */
	assert_int_equal(boot_elf_at(0x10000, why, sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "kernel segment at 0x10000 is below 1 MiB"));
	assert_non_null(strstr(why, "link the kernel at 0x100000 or above"));
	assert_null(strstr(why, "--mem"));
	assert_int_equal(boot_elf_at(X86_HIGH_MEMORY_START - 0x1000, why, sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "below 1 MiB"));
	/* Past the end of guest RAM: there more --mem is the answer. */
	assert_int_equal(boot_elf_at(100ULL << 20, why, sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "kernel segment at 0x6400000 (4 KiB) is outside guest RAM; try more --mem"));
	/* In the device hole below 4 GiB: no --mem puts RAM there. */
	assert_int_equal(boot_elf_at(X86_VIRTIO_MMIO_BASE, why, sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "overlaps the device area at 0x80000000-0xffffffff"));
	assert_null(strstr(why, "--mem"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_placement_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
