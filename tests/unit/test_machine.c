/* SPDX-License-Identifier: MIT */
/*
 * The arch-neutral machine calls (machine.h) and the backend's last set-up
 * step (vm_finalize), on a fake backend that records what it was asked:
 * nothing here names an architecture, so the same tests hold for any arch
 * the library is built for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"
#include "mm.h"
#include "utils.h"
#include "vm.h"

struct memory_call {
	uint32_t slot;
	uint64_t gpa, size;
	void *hva;
};

struct fake_hv {
	struct memory_call memory[64];
	int memory_calls;
	int memory_result;     /* what set_memory returns */
	int finalize_calls;
	int vcpus_at_finalize;
	int finalize_result;
	int irqchips;
	int runs;
};

static struct fake_hv *hv_of(struct vm *vm)
{
	return vm->private;
}

static int fake_vm_create(struct vm *vm)
{
	vm->private = calloc(1, sizeof(struct fake_hv));
	return vm->private ? 0 : -ENOMEM;
}

static void fake_vm_destroy(struct vm *vm)
{
	free(vm->private);
}

static int fake_set_memory(struct vm *vm, uint32_t slot, uint64_t gpa,
			   void *hva, uint64_t size)
{
	struct fake_hv *hv = hv_of(vm);

	if (hv->memory_result)
		return hv->memory_result;
	if (hv->memory_calls < (int)ARRAY_SIZE(hv->memory))
		hv->memory[hv->memory_calls] = (struct memory_call){ slot, gpa, size, hva };
	hv->memory_calls++;
	return 0;
}

static int fake_irqchip(struct vm *vm)
{
	hv_of(vm)->irqchips++;
	return 0;
}

static int fake_finalize(struct vm *vm)
{
	hv_of(vm)->finalize_calls++;
	hv_of(vm)->vcpus_at_finalize = vm->num_vcpus;
	return hv_of(vm)->finalize_result;
}

static int fake_vcpu_create(struct vcpu *vcpu) { return 0; }
static void fake_vcpu_destroy(struct vcpu *vcpu) { }
static void fake_vcpu_kick(struct vcpu *vcpu) { }

static int fake_vcpu_run(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	hv_of(vcpu->vm)->runs++;
	exit->reason = VCPU_EXIT_HLT;
	return 0;
}

static int fake_regs(struct vcpu *vcpu, struct regs *regs) { return 0; }
static int fake_set_regs(struct vcpu *vcpu, const struct regs *regs) { return 0; }

static const struct hypervisor_ops fake_ops = {
	.name = "fake", .vm_create = fake_vm_create, .vm_destroy = fake_vm_destroy,
	.set_memory = fake_set_memory, .create_irqchip = fake_irqchip,
	.vm_finalize = fake_finalize, .vcpu_create = fake_vcpu_create,
	.vcpu_destroy = fake_vcpu_destroy, .vcpu_run = fake_vcpu_run,
	.vcpu_kick = fake_vcpu_kick, .vcpu_get_regs = fake_regs,
	.vcpu_set_regs = fake_set_regs,
};

static struct vm *fake_vm(void)
{
	struct vm *vm = vm_create_on(&fake_ops);

	assert_non_null(vm);
	vm->log_level = LOG_NONE;
	return vm;
}

/* vm_finalize runs once, after every vCPU exists, before the first run. */
static void test_finalize_once_before_first_run(void **state)
{
	struct vm *vm = fake_vm();

	assert_non_null(vm_create_vcpu(vm, 0));
	assert_non_null(vm_create_vcpu(vm, 1));
	assert_int_equal(hv_of(vm)->finalize_calls, 0);
	assert_int_equal(vcpu_run(vm->vcpus[1]), VCPU_EXIT_HLT);
	assert_int_equal(hv_of(vm)->finalize_calls, 1);
	assert_int_equal(hv_of(vm)->vcpus_at_finalize, 2);
	assert_int_equal(vcpu_run(vm->vcpus[0]), VCPU_EXIT_HLT);
	assert_int_equal(hv_of(vm)->finalize_calls, 1);
	vm_destroy(vm);
}

/* A backend that cannot finish set-up: no vCPU enters the guest. */
static void test_finalize_failure_stops_the_run(void **state)
{
	struct vm *vm = fake_vm();

	hv_of(vm)->finalize_result = -ENODEV;
	assert_non_null(vm_create_vcpu(vm, 0));
	assert_int_equal(vcpu_run(vm->vcpus[0]), -ENODEV);
	assert_int_equal(vm_start(vm), -ENODEV);
	assert_int_equal(hv_of(vm)->runs, 0);
	vm_destroy(vm);
}

static void test_machine_slots_and_limits(void **state)
{
	struct machine_config mc = {
		.nr_cpus = 1, .ram_size = 64 << 20, .flags = MACHINE_LINUX,
		.console_in_fd = -1, .console_out_fd = -1,
	};
	struct vm *vm = fake_vm();
	uint64_t base, prev_base = 0;
	uint32_t irq, prev_irq = 0;
	char why[256] = "";
	int n = 0;

	assert_int_equal(machine_create(vm, &mc, why, sizeof(why)), 0);
	assert_int_equal(hv_of(vm)->irqchips, 1);
	assert_non_null(machine_serial(vm));
	assert_int_equal(machine_create(vm, &mc, why, sizeof(why)), -EINVAL); /* once */
	/* Each slot gets its own window and line, until there are no more. */
	while (machine_virtio_slot(vm, &base, &irq, why, sizeof(why)) == 0) {
		struct device *rng = virtio_rng_create(vm, base, irq);

		assert_non_null(rng);
		if (n) {
			assert_true(base > prev_base);
			assert_true(irq != prev_irq);
		}
		assert_int_equal(machine_add_virtio(vm, rng, irq), 0);
		prev_base = base;
		prev_irq = irq;
		assert_true(++n < 1000);
	}
	assert_true(n >= 8);
	assert_non_null(strstr(why, "too many virtio devices"));
	vm_destroy(vm);
}

static void test_machine_rejects_bad_configs(void **state)
{
	struct machine_config mc = {
		.nr_cpus = 0, .ram_size = 64 << 20, .console_in_fd = -1, .console_out_fd = -1,
	};
	struct vm *vm = fake_vm();
	char why[256] = "";

	assert_int_equal(machine_create(vm, &mc, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "0 vCPUs"));
	mc.nr_cpus = machine_max_cpus() + 1;
	assert_int_equal(machine_create(vm, &mc, why, sizeof(why)), -EINVAL);
	vm_destroy(vm);
}

/* A raw binary runs at its entry with every vCPU created; one that does
 * not fit, or an entry outside RAM, is refused with a reason. */
static void test_machine_boot_raw(void **state)
{
	struct machine_config mc = {
		.nr_cpus = 2, .ram_size = 32 << 20, .flags = MACHINE_DEBUGCON | MACHINE_EXIT_DEVICE,
		.console_in_fd = -1, .console_out_fd = -1,
	};
	static const uint8_t image[] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04 };
	uint64_t entry = machine_raw_default_entry();
	uint8_t back[sizeof(image)];
	struct vm *vm = fake_vm();
	char why[256] = "";

	int err;

	err = machine_create(vm, &mc, why, sizeof(why));
	assert_string_equal(why, "");
	assert_int_equal(err, 0);
	assert_int_equal(hv_of(vm)->irqchips, 0); /* test guests get none */
	assert_int_equal(machine_check_raw_entry(mc.ram_size, mc.ram_size, why, sizeof(why)),
			 -ERANGE);
	assert_non_null(strstr(why, "outside guest RAM"));
	/* (word-aligned: arm64 refuses other entries for that first) */
	assert_int_not_equal(machine_boot_raw(vm, image, sizeof(image), mc.ram_size - 4, why,
					      sizeof(why)), 0);
	assert_non_null(strstr(why, "do not fit"));
	assert_int_equal(machine_boot_raw(vm, image, sizeof(image), entry, why, sizeof(why)), 0);
	assert_int_equal(vm->num_vcpus, 2);
	assert_int_equal(vm_read_guest(vm, entry, back, sizeof(back)), 0);
	assert_memory_equal(back, image, sizeof(image));
	vm_destroy(vm);
}

/* Not a kernel: one line that names what this arch boots. */
static void test_machine_boot_linux_refuses_non_kernels(void **state)
{
	struct machine_config mc = {
		.nr_cpus = 1, .ram_size = 64 << 20, .flags = MACHINE_LINUX,
		.console_in_fd = -1, .console_out_fd = -1,
	};
	static const uint8_t text[] = "#!/bin/sh\necho not a kernel\n";
	struct machine_linux b = { .kernel = text, .kernel_len = sizeof(text) };
	struct vm *vm = fake_vm();
	char why[256] = "";

	assert_int_equal(machine_create(vm, &mc, why, sizeof(why)), 0);
	assert_int_equal(machine_boot_linux(vm, &b, why, sizeof(why)), -ENOEXEC);
	assert_non_null(strstr(why, "not a Linux kernel (want "));
	assert_int_equal(vm->num_vcpus, 0);
	vm_destroy(vm);
}

/* Device memory: its own backend slots after RAM's, mapped while the VM
 * runs, never overlapping RAM or itself, unmapped with a size-0 slot, and
 * never guest RAM for vm_gpa_to_hva. */
static void test_device_memory_slots(void **state)
{
	struct vm *vm = fake_vm();
	static uint8_t page[3][4096] __attribute__((aligned(4096)));
	struct fake_hv *hv = hv_of(vm);
	int a, b, calls;

	assert_int_equal(vm_alloc_memory(vm, 0, 1 << 20), 0);
	assert_non_null(vm_create_vcpu(vm, 0));
	assert_int_equal(vcpu_run(vm->vcpus[0]), VCPU_EXIT_HLT); /* built and run */
	calls = hv->memory_calls;
	a = vm_map_device_memory(vm, 0xc0000000, page[0], 4096);
	assert_true(a >= 0);
	assert_int_equal(hv->memory_calls, calls + 1);
	assert_int_equal(hv->memory[calls].slot, MM_MAX_SLOTS + (uint32_t)a);
	assert_int_equal(hv->memory[calls].gpa, 0xc0000000);
	assert_int_equal(hv->memory[calls].size, 4096);
	assert_ptr_equal(hv->memory[calls].hva, page[0]);
	assert_null(vm_gpa_to_hva(vm, 0xc0000000, 4));

	/* overlapping RAM, itself, misaligned, empty, wrapping */
	assert_int_equal(vm_map_device_memory(vm, 0x80000, page[1], 4096), -EEXIST);
	assert_int_equal(vm_map_device_memory(vm, 0xc0000000, page[1], 4096), -EEXIST);
	assert_int_equal(vm_map_device_memory(vm, 0xc0000800, page[1], 4096), -EINVAL);
	assert_int_equal(vm_map_device_memory(vm, 0xc0001000, page[1] + 8, 4096), -EINVAL);
	assert_int_equal(vm_map_device_memory(vm, 0xc0001000, page[1], 0), -EINVAL);
	assert_int_equal(vm_map_device_memory(vm, ~0xfffULL, page[1], 8192), -EINVAL);
	assert_int_equal(hv->memory_calls, calls + 1);

	b = vm_map_device_memory(vm, 0xc0001000, page[1], 4096);
	assert_true(b >= 0 && b != a);
	/* unmapped: a slot of size 0, and the range is free again */
	assert_int_equal(vm_unmap_device_memory(vm, a), 0);
	assert_int_equal(hv->memory[calls + 2].slot, MM_MAX_SLOTS + (uint32_t)a);
	assert_int_equal(hv->memory[calls + 2].size, 0);
	assert_int_equal(vm_unmap_device_memory(vm, a), -EINVAL);
	assert_int_equal(vm_unmap_device_memory(vm, -1), -EINVAL);
	assert_int_equal(vm_unmap_device_memory(vm, 4096), -EINVAL);
	a = vm_map_device_memory(vm, 0xc0000000, page[2], 4096);
	assert_true(a >= 0);

	/* the backend's error is returned and takes no slot */
	hv->memory_result = -ENOMEM;
	assert_int_equal(vm_map_device_memory(vm, 0xd0000000, page[2], 4096), -ENOMEM);
	hv->memory_result = 0;
	assert_int_equal(vm_unmap_device_memory(vm, a), 0);
	assert_int_equal(vm_unmap_device_memory(vm, b), 0);
	vm_destroy(vm);
}

/* At most VM_MAX_DEVMEM (32) device mappings at once. */
static void test_device_memory_limit(void **state)
{
	struct vm *vm = fake_vm();
	static uint8_t page[4096] __attribute__((aligned(4096)));
	int i, h;

	for (i = 0; i < 32; i++)
		assert_true(vm_map_device_memory(vm, 0xc0000000 + i * 4096ULL, page, 4096) >= 0);
	assert_int_equal(vm_map_device_memory(vm, 0xc0000000 + i * 4096ULL, page, 4096), -ENOSPC);
	h = 7;
	assert_int_equal(vm_unmap_device_memory(vm, h), 0);
	assert_int_equal(vm_map_device_memory(vm, 0xd0000000, page, 4096), h);
	vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_finalize_once_before_first_run),
		cmocka_unit_test(test_device_memory_slots),
		cmocka_unit_test(test_device_memory_limit),
		cmocka_unit_test(test_finalize_failure_stops_the_run),
		cmocka_unit_test(test_machine_slots_and_limits),
		cmocka_unit_test(test_machine_rejects_bad_configs),
		cmocka_unit_test(test_machine_boot_raw),
		cmocka_unit_test(test_machine_boot_linux_refuses_non_kernels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
