/* SPDX-License-Identifier: MIT */
/*
 * vm_snapshot / vm_restore (core/snapshot.c) on the local /dev/kvm: a
 * guest counting in a register (snapcount.S) with an interrupt controller,
 * a UART and a port device is paused and saved to two files; a second VM
 * built the same way is restored from them and goes on counting from
 * where the first was (not from the port's value); the memory file is
 * sparse and never written by the restored VM (copy-on-write), so two VMs
 * restore from it at once; a state file damaged in any way, or a VM built
 * differently, is refused with a reason before anything changes.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices.h"
#include "harness.h"
#include "snapshot.h"

#define COUNTERS_GPA 0x200000ULL /* snapcount.S */
#define START_A 1000ULL /* where A's count starts (a 32-bit port read) */
#define START_B 0xf0000000ULL /* what the port says in restored VMs */
#define UART_PORT 0x3f8

struct files {
	char dir[64], state[96], mem[96];
};

static volatile uint64_t *counter(struct vm *vm)
{
	volatile uint64_t *c = vm_gpa_to_hva(vm, COUNTERS_GPA, 8);

	assert_non_null(c);
	return c;
}

static bool counter_passes(struct vm *vm, uint64_t than)
{
	for (int t = 0; t < 1000; t++) {
		if (*counter(vm) > than)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* The VM as the program builds it, each time the same way: RAM, the
 * interrupt controller, a UART, the port the count starts from. */
static struct vm *build(uint64_t start, bool uart)
{
	struct vm *vm = new_vm();
	struct testdev *port;

	assert_int_equal(vm_create_irqchip(vm), 0);
	if (uart)
		assert_int_equal(vm_register_device(vm, serial8250_create(vm, UART_PORT, 4, -1, -1)),
				 0);
	port = testdev_add(vm, DEVICE_PIO, TESTDEV_PORT, 0x10);
	port->read_value = start;
	port->dev.stateless = true;
	return vm;
}

static void make_files(struct files *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/vibevmm-snap-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->mem, sizeof(f->mem), "%s/mem", f->dir);
}

static void remove_files(const struct files *f)
{
	unlink(f->state);
	unlink(f->mem);
	rmdir(f->dir);
}

/* A: counting, paused, saved. Returns its count at the save. */
static uint64_t snapshot_a(const struct files *f)
{
	struct vm *a = build(START_A, true);
	char why[256] = "";
	uint64_t at;

	load_guest(a, "snapcount");
	new_vcpu_long_mode(a, 0);
	assert_int_equal(vm_start(a), 0);
	assert_true(counter_passes(a, START_A + 1000));
	assert_int_equal(vm_snapshot(a, f->state, f->mem, NULL, 0, why, sizeof(why)), -EBUSY);
	assert_int_equal(vm_pause(a), 0);
	at = *counter(a);
	if (vm_snapshot(a, f->state, f->mem, "app-data", 8, why, sizeof(why)))
		fail_msg("vm_snapshot: %s", why);
	sleep_ms(50);
	assert_true(*counter(a) == at); /* still paused */
	assert_int_equal(vm_stop(a), 0);
	vm_destroy(a);
	return at;
}

static struct vm *restore_b(const struct files *f, bool read_memory)
{
	struct vm_restore_options o = { .read_memory = read_memory };
	struct vm *b = build(START_B, true);
	char why[256] = "";

	if (vm_restore(b, f->state, f->mem, &o, why, sizeof(why)))
		fail_msg("vm_restore: %s", why);
	return b;
}

static void test_restored_vm_goes_on_counting(void **state)
{
	struct files f;
	struct stat st;
	uint64_t at, later;
	struct vm *b;
	void *app;
	size_t app_len;
	char why[256];

	make_files(&f);
	at = snapshot_a(&f);
	assert_true(at > START_A && at < START_B);
	/* the memory file: RAM's size, but only what the guest used on disk */
	assert_int_equal(stat(f.mem, &st), 0);
	assert_int_equal(st.st_size, GUEST_MEM);
	assert_true((uint64_t)st.st_blocks * 512 < GUEST_MEM / 4);
	assert_int_equal(vm_snapshot_app_data(f.state, &app, &app_len, why, sizeof(why)), 0);
	assert_int_equal(app_len, 8);
	assert_memory_equal(app, "app-data", 8);
	free(app);

	b = restore_b(&f, false);
	assert_true(*counter(b) == at); /* RAM as saved */
	assert_int_equal(vm_start(b), 0);
	assert_true(counter_passes(b, at + 1000));
	later = *counter(b);
	assert_true(later < START_B); /* went on; a fresh vCPU would read START_B */
	assert_int_equal(vm_stop(b), 0);
	vm_destroy(b);
	remove_files(&f);
}

/* Two VMs from one snapshot at once, one mapping the memory file and one
 * reading it: each counts on in its own RAM, and the file is unchanged. */
static void test_two_restores_share_the_file(void **state)
{
	struct files f;
	struct stat before, after;
	struct vm *b, *c;
	uint64_t at;

	make_files(&f);
	at = snapshot_a(&f);
	assert_int_equal(stat(f.mem, &before), 0);
	b = restore_b(&f, false);
	c = restore_b(&f, true);
	assert_int_equal(vm_start(b), 0);
	assert_int_equal(vm_start(c), 0);
	assert_true(counter_passes(b, at + 1000));
	assert_true(counter_passes(c, at + 1000));
	assert_true(*counter(b) < START_B && *counter(c) < START_B);
	assert_int_equal(vm_stop(b), 0);
	assert_int_equal(vm_stop(c), 0);
	vm_destroy(b);
	vm_destroy(c);
	assert_int_equal(stat(f.mem, &after), 0);
	assert_true(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
		    after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
	remove_files(&f);
}

static int restore_fresh(const struct files *f, bool uart, char *why, size_t len)
{
	struct vm *b = build(START_B, uart);
	int r = vm_restore(b, f->state, f->mem, NULL, why, len);

	vm_destroy(b);
	return r;
}

static void rewrite(const char *path, const uint8_t *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

/* Damaged files and a VM built otherwise: refused, with the reason. */
static void test_bad_snapshots_refused(void **state)
{
	struct files f;
	uint8_t *buf;
	size_t n;
	char why[256];

	make_files(&f);
	snapshot_a(&f);
	assert_int_equal(read_file(f.state, &buf, &n), 0);
	rewrite(f.state, buf, n / 2);
	assert_int_equal(restore_fresh(&f, true, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "truncated"));
	buf[n - 3] ^= 0x10;
	rewrite(f.state, buf, n);
	assert_int_equal(restore_fresh(&f, true, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "corrupted"));
	buf[n - 3] ^= 0x10;
	rewrite(f.state, buf, n);
	/* a VM without the UART */
	assert_int_equal(restore_fresh(&f, false, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "devices"));
	/* a memory file of another size */
	assert_int_equal(truncate(f.mem, GUEST_MEM / 2), 0);
	assert_int_equal(restore_fresh(&f, true, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "memory file"));
	assert_int_equal(restore_fresh(&(struct files){ .state = "/nonexistent" }, true, why,
				       sizeof(why)), -ENOENT);
	free(buf);
	remove_files(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restored_vm_goes_on_counting),
		cmocka_unit_test(test_two_restores_share_the_file),
		cmocka_unit_test(test_bad_snapshots_refused),
	};

	return cmocka_run_group_tests(tests, skip_without_kvm, NULL);
}
