/* SPDX-License-Identifier: MIT */
/* The PL031 RTC's registers, read and written as Linux's rtc-pl031 does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "devices.h"

static uint32_t rd(struct device *d, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(d->read(d, off, &v, 4), 0);
	return v;
}

static void wr(struct device *d, uint64_t off, uint32_t v)
{
	assert_int_equal(d->write(d, off, &v, 4), 0);
}

/* The AMBA bus matches periph id 0x00041031 and the PrimeCell signature. */
static void test_primecell_ids(void **state)
{
	struct device *d = pl031_create(0x90003000);
	uint32_t periph = 0, cell = 0;

	assert_non_null(d);
	assert_int_equal(d->size, PL031_SIZE);
	for (int i = 0; i < 4; i++) {
		periph |= (rd(d, 0xfe0 + 4 * i) & 0xff) << (8 * i);
		cell |= (rd(d, 0xff0 + 4 * i) & 0xff) << (8 * i);
	}
	assert_int_equal(periph & 0x000fffff, 0x00041031);
	assert_int_equal(cell, 0xb105f00d);
	d->destroy(d);
}

/* DR is the host's time until the guest loads another; then it counts on
 * from that. */
static void test_counts_from_host_time_and_load(void **state)
{
	struct device *d = pl031_create(0x90003000);
	int64_t now = time(NULL);
	uint32_t dr = rd(d, 0x000);

	assert_true(dr >= now && dr <= now + 2);
	assert_int_equal(rd(d, 0x00c) & 1, 1); /* counting */
	wr(d, 0x008, 1000);                     /* LR */
	dr = rd(d, 0x000);
	assert_true(dr >= 1000 && dr <= 1002);
	wr(d, 0x004, 4242);                     /* MR */
	assert_int_equal(rd(d, 0x004), 4242);
	assert_int_equal(rd(d, 0x014), 0);      /* no alarm raised */
	d->destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_primecell_ids),
		cmocka_unit_test(test_counts_from_host_time_and_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
