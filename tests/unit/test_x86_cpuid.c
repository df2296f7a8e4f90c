/* SPDX-License-Identifier: MIT */
/* The per-vCPU CPUID patch (hv/kvm_x86_64.c): APIC id, hypervisor bit and
 * the timing leaf 0x40000010 with the TSC rate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "hv/kvm.h"
#include "hv/kvm_x86_64.h"

/* A table as KVM_GET_SUPPORTED_CPUID returns it, trimmed, with room for
 * the leaf the patch may add. */
static struct kvm_cpuid2 *table(int with_kvm_leaves)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 6 * sizeof(c->entries[0]));
	struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0xd },
		{ .function = 1, .ebx = 0x07080800, .ecx = 0x1 },
		{ .function = 0xb, .index = 1, .edx = 0 },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
		{ .function = 0x40000001, .eax = 0x1 },
	};
	int n = with_kvm_leaves ? 5 : 3;

	assert_non_null(c);
	memcpy(c->entries, e, (size_t)n * sizeof(e[0]));
	c->nent = (uint32_t)n;
	return c;
}

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t f)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == f)
			return &c->entries[i];
	return NULL;
}

static void test_timing_leaf_added_with_tsc_khz(void **state)
{
	struct kvm_cpuid2 *c = table(1);

	kvm_x86_patch_cpuid(c, 3, 2445408);
	assert_int_equal(c->nent, 6);
	assert_non_null(leaf(c, 0x40000010));
	assert_int_equal(leaf(c, 0x40000010)->eax, 2445408);
	assert_int_equal(leaf(c, 0x40000010)->ebx, 1000000); /* APIC timer: 1 GHz */
	/* the signature leaf announces it */
	assert_int_equal(leaf(c, 0x40000000)->eax, 0x40000010);
	assert_int_equal(leaf(c, 0x40000000)->ebx, 0x4b4d564b);
	/* and the rest as before */
	assert_int_equal(leaf(c, 1)->ebx >> 24, 3);
	assert_int_equal(leaf(c, 1)->ebx & 0xffffff, 0x080800);
	assert_true(leaf(c, 1)->ecx & (1u << 31));
	assert_int_equal(leaf(c, 0xb)->edx, 3);
	free(c);
}

static void test_timing_leaf_updated_not_duplicated(void **state)
{
	struct kvm_cpuid2 *c = table(1);

	kvm_x86_patch_cpuid(c, 0, 1000);
	kvm_x86_patch_cpuid(c, 0, 2000);
	assert_int_equal(c->nent, 6);
	assert_int_equal(leaf(c, 0x40000010)->eax, 2000);
	free(c);
}

static void test_no_timing_leaf_without_rate_or_kvm_leaves(void **state)
{
	struct kvm_cpuid2 *c = table(1);

	kvm_x86_patch_cpuid(c, 0, 0); /* KVM_GET_TSC_KHZ failed */
	assert_int_equal(c->nent, 5);
	assert_null(leaf(c, 0x40000010));
	assert_int_equal(leaf(c, 0x40000000)->eax, 0x40000001);
	free(c);
	c = table(0); /* no KVM signature to announce it under */
	kvm_x86_patch_cpuid(c, 0, 2445408);
	assert_int_equal(c->nent, 3);
	assert_null(leaf(c, 0x40000010));
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timing_leaf_added_with_tsc_khz),
		cmocka_unit_test(test_timing_leaf_updated_not_duplicated),
		cmocka_unit_test(test_no_timing_leaf_without_rate_or_kvm_leaves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
