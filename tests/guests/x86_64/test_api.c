/* SPDX-License-Identifier: MIT */
/* Tiny assembly guests run through the public API on the local /dev/kvm. */
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

static void read_pipe(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
}

/* The smaps line of the mapping that holds `addr`, e.g. "THPeligible:" */
static long smaps_field(const void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	bool in = false;
	long v = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (in && !strncmp(line, field, strlen(field)))
			v = strtol(line + strlen(field), NULL, 10);
	}
	fclose(f);
	return v;
}

/* vm_alloc_memory_huge (the x86 machine's RAM): 2 MiB aligned, marked for
 * transparent huge pages. */
static void test_guest_ram_offered_to_huge_pages(void **state)
{
	struct vm *vm = vm_create();
	uint8_t *ram;
	char mode[64] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	(void)state;
	assert_non_null(vm);
	assert_int_equal(vm_alloc_memory_huge(vm, 0, GUEST_MEM), 0);
	ram = vm_gpa_to_hva(vm, 0, GUEST_MEM);
	assert_non_null(ram);
	assert_int_equal((uintptr_t)ram % (2u << 20), 0);
	if (f) {
		if (!fgets(mode, sizeof(mode), f))
			mode[0] = '\0';
		fclose(f);
	}
	if (!strstr(mode, "[madvise]") && !strstr(mode, "[always]")) {
		vm_destroy(vm);
		skip(); /* THP off here: nothing to see in smaps */
	}
	/* VM_HUGEPAGE set on the whole of it: THPeligible 1 */
	assert_int_equal(smaps_field(ram, "THPeligible:"), 1);
	assert_int_equal(smaps_field(ram + GUEST_MEM - 1, "THPeligible:"), 1);
	vm_destroy(vm);
}

static void test_hello_debugcon_and_serial(void **state)
{
	struct vm *vm = new_vm();
	int out[2], nr_io = 0, nr_mmio = 0;
	char text[256];
	struct vcpu *vcpu;

	struct device *dbg, *uart, *exitp;
	struct vcpu_stats st;
	char table[2048];

	assert_int_equal(pipe2(out, O_NONBLOCK), 0);
	assert_int_equal(vm_register_device(vm, dbg = debugcon_create(vm, 0x90000000, out[1])), 0);
	assert_int_equal(vm_register_device(vm, uart = serial8250_create(vm, 0x3f8, 4, -1, out[1])), 0);
	assert_int_equal(vm_register_device(vm, exitp = exit_port_create(0xf4)), 0);
	load_guest(vm, "hello");
	vcpu = new_vcpu_long_mode(vm, 0);

	assert_int_equal(run_until_stop(vcpu, &nr_io, &nr_mmio), VCPU_EXIT_GUEST_EXIT);
	assert_int_equal(vcpu->exit.status, 42);
	assert_int_equal(vm_exit_status(vm), 42);
	/* One exit per byte: 20 MMIO bytes, 18 serial bytes (the exit port
	 * write is the 19th I/O but ends the run instead of returning IO). */
	assert_int_equal(nr_mmio, (int)strlen("hello from debugcon\n"));
	assert_int_equal(nr_io, (int)strlen("hello from serial\n"));
	read_pipe(out[0], text, sizeof(text));
	assert_string_equal(text, "hello from debugcon\nhello from serial\n");
	/* The exit counters say the same, by reason and by device: the exit
	 * port's write is an I/O exit too. */
	assert_int_equal(vcpu_get_stats(vcpu, &st), 0);
	assert_int_equal(st.by_reason[VCPU_EXIT_MMIO], 20);
	assert_int_equal(st.by_reason[VCPU_EXIT_IO], 19);
	assert_int_equal(st.exits, 39);
	assert_int_equal(vm_device_exits(vm, dbg, NULL), 20);
	assert_int_equal(vm_device_exits(vm, uart, vcpu), 18);
	assert_int_equal(vm_device_exits(vm, exitp, NULL), 1);
	assert_true(vm_format_stats(vm, table, sizeof(table)) < (int)sizeof(table));
	assert_non_null(strstr(table, "serial8250 port 0x3f8                    18        18\n"));
	assert_non_null(strstr(table, "  mmio                                       20        20\n"));
	/* snprintf-like: the length it needs, whatever the room */
	assert_int_equal(vm_format_stats(vm, NULL, 0), (int)strlen(table));
	vm_destroy(vm);
	close(out[0]);
	close(out[1]);
}

/* The metrics line counts the same exits: hello's 20 debug-console bytes
 * (MMIO), 18 serial bytes and the exit-port write (I/O). */
static void test_metrics_count_guest_exits(void **state)
{
	struct vm *vm = new_vm();
	char line[2048];
	json_error_t jerr;
	json_t *root, *vcpu;
	int n;

	assert_int_equal(vm_register_device(vm, debugcon_create(vm, 0x90000000, -1)), 0);
	assert_int_equal(vm_register_device(vm, serial8250_create(vm, 0x3f8, 4, -1, -1)), 0);
	assert_int_equal(vm_register_device(vm, exit_port_create(0xf4)), 0);
	load_guest(vm, "hello");
	new_vcpu_long_mode(vm, 0);
	assert_int_equal(vm_start(vm), 0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_GUEST_EXIT);

	n = vm_format_metrics(vm, line, sizeof(line));
	assert_true(n > 0 && n < (int)sizeof(line));
	root = json_loads(line, 0, &jerr);
	if (!root)
		fail_msg("not JSON (%s): %s", jerr.text, line);
	vcpu = json_object_get(root, "vcpu");
	assert_int_equal(json_integer_value(json_object_get(vcpu, "exit_mmio")), 20);
	assert_int_equal(json_integer_value(json_object_get(vcpu, "exit_io")), 19);
	assert_int_equal(json_integer_value(json_object_get(vcpu, "exits")), 39);
	assert_int_equal(json_integer_value(json_object_get(vcpu, "exit_hlt")), 0);
	json_decref(root);
	vm_destroy(vm);
}

/* The 16550 and the exit register memory-mapped (as arm64 machines have
 * them): the same UART registers one byte apart from its base, every access
 * an MMIO exit, no port I/O at all. */
static void test_uart_over_mmio(void **state)
{
	struct vm *vm = new_vm();
	int out[2], nr_io = 0, nr_mmio = 0;
	char text[256];
	struct vcpu *vcpu;
	struct regs regs;

	assert_int_equal(pipe2(out, O_NONBLOCK), 0);
	assert_int_equal(vm_register_device(vm, serial8250_create_mmio(vm, TESTDEV_MMIO + 0x1000,
								       4, -1, out[1])), 0);
	assert_int_equal(vm_register_device(vm, exit_mmio_create(TESTDEV_MMIO + 0x2000)), 0);
	load_guest(vm, "uart_mmio");
	vcpu = new_vcpu_long_mode(vm, 0);

	assert_int_equal(run_until_stop(vcpu, &nr_io, &nr_mmio), VCPU_EXIT_GUEST_EXIT);
	assert_int_equal(vcpu->exit.status, 7);
	assert_int_equal(nr_io, 0);
	assert_true(nr_mmio >= 2 * (int)strlen("hello from the mmio uart\n"));
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	assert_int_equal(regs.r8, 0x03);
	assert_int_equal(regs.r9 & 0x60, 0x60); /* THRE and TEMT */
	read_pipe(out[0], text, sizeof(text));
	assert_string_equal(text, "hello from the mmio uart\n");
	vm_destroy(vm);
	close(out[0]);
	close(out[1]);
}

static void test_mmio_all_widths(void **state)
{
	struct vm *vm = new_vm();
	struct testdev *t = testdev_add(vm, DEVICE_MMIO, TESTDEV_MMIO, 0x1000);
	struct vcpu *vcpu;
	struct regs regs;

	t->read_value = 0x0123456789abcdefULL;
	load_guest(vm, "mmio");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(run_until_stop(vcpu, NULL, NULL), VCPU_EXIT_HLT);

	assert_int_equal(t->nr, 8);
	assert_access(&t->rec[0], 0x00, 1, 1, 0x11);
	assert_access(&t->rec[1], 0x10, 2, 1, 0x2233);
	assert_access(&t->rec[2], 0x20, 4, 1, 0x44556677);
	assert_access(&t->rec[3], 0x30, 8, 1, 0x8899aabbccddeeffULL);
	assert_access(&t->rec[4], 0x40, 1, 0, 0xef);
	assert_access(&t->rec[5], 0x50, 2, 0, 0xcdef);
	assert_access(&t->rec[6], 0x60, 4, 0, 0x89abcdef);
	assert_access(&t->rec[7], 0x70, 8, 0, 0x0123456789abcdefULL);

	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	assert_int_equal(regs.r8, 0xef);
	assert_int_equal(regs.r9, 0xcdef);
	assert_int_equal(regs.r10, 0x89abcdef);
	assert_int_equal(regs.r11, 0x0123456789abcdefULL);
	assert_int_equal(regs.r12, ~0ULL); /* unclaimed: all ones */
	vm_destroy(vm);
}

static void test_pio_all_widths(void **state)
{
	struct vm *vm = new_vm();
	struct testdev *t = testdev_add(vm, DEVICE_PIO, TESTDEV_PORT, 16);
	struct vcpu *vcpu;
	struct regs regs;

	t->read_value = 0xa1b2c3d4;
	load_guest(vm, "pio");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(run_until_stop(vcpu, NULL, NULL), VCPU_EXIT_HLT);

	assert_int_equal(t->nr, 11);
	assert_access(&t->rec[0], 0, 1, 1, 0x5a);
	assert_access(&t->rec[1], 2, 2, 1, 0xbeef);
	assert_access(&t->rec[2], 4, 4, 1, 0xcafef00d);
	assert_access(&t->rec[3], 0, 1, 0, 0xd4);
	assert_access(&t->rec[4], 0, 2, 0, 0xc3d4);
	assert_access(&t->rec[5], 0, 4, 0, 0xa1b2c3d4);
	for (int i = 0; i < 5; i++) /* rep outsb "vibes" */
		assert_access(&t->rec[6 + i], 8, 1, 1, (uint8_t)"vibes"[i]);

	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	assert_int_equal(regs.r8, 0xd4);
	assert_int_equal(regs.r9, 0xc3d4);
	assert_int_equal(regs.r10, 0xa1b2c3d4);
	assert_int_equal(regs.r11, 0xffffffff);
	vm_destroy(vm);
}

/* A device without a read callback reads as all ones, like an unclaimed
 * address, not as whatever the exit buffer held from the last write. */
static void test_write_only_device_reads_all_ones(void **state)
{
	struct vm *vm = new_vm();
	struct testdev *pio = testdev_add(vm, DEVICE_PIO, TESTDEV_PORT, 16);
	struct vcpu *vcpu;
	struct regs regs;

	pio->dev.read = NULL; /* write-only from here on */
	load_guest(vm, "pio");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(run_until_stop(vcpu, NULL, NULL), VCPU_EXIT_HLT);
	assert_int_equal(pio->nr, 3 + 5); /* the writes only */
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	assert_int_equal(regs.r8, 0xff);   /* not 0x0d of the last out */
	assert_int_equal(regs.r9, 0xffff);
	assert_int_equal(regs.r10, 0xffffffff);
	vm_destroy(vm);

	vm = new_vm();
	struct testdev *mmio = testdev_add(vm, DEVICE_MMIO, TESTDEV_MMIO, 0x1000);

	mmio->dev.read = NULL;
	load_guest(vm, "mmio");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(run_until_stop(vcpu, NULL, NULL), VCPU_EXIT_HLT);
	assert_int_equal(mmio->nr, 4);
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	assert_int_equal(regs.r8, 0xff);   /* not the 8-byte write before */
	assert_int_equal(regs.r9, 0xffff);
	assert_int_equal(regs.r10, 0xffffffff);
	assert_int_equal(regs.r11, ~0ULL);
	vm_destroy(vm);
}

static void test_regs_in_and_out(void **state)
{
	struct vm *vm = new_vm();
	struct vcpu *vcpu;
	struct regs regs;

	load_guest(vm, "regs");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	regs.rax = 0x1111111100000000ULL;
	regs.rbx = 0x2222;
	regs.rcx = 0xf0f0;
	regs.rdx = 0x0ff0;
	regs.r15 = 0x1515151515151515ULL;
	assert_int_equal(vcpu_set_regs(vcpu, &regs), 0);
	assert_int_equal(run_until_stop(vcpu, NULL, NULL), VCPU_EXIT_HLT);

	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	assert_int_equal(regs.rax, 0x1111111100002222ULL);
	assert_int_equal(regs.rcx, 0xff00);
	assert_int_equal(regs.r15, 0x1515151515151515ULL);
	assert_int_equal(regs.rip, GUEST_LOAD + 7); /* add(3) + xor(3) + hlt(1) */
	assert_int_equal(regs.cs.selector, X86_BOOT_CS);
	assert_int_equal(regs.cs.l, 1);
	assert_true(regs.efer & X86_EFER_LMA);
	assert_true(regs.cr0 & X86_CR0_PG);
	assert_false(regs.rflags & X86_RFLAGS_IF);
	vm_destroy(vm);
}

static struct x86_segment seg(uint16_t sel, uint64_t base, uint32_t limit,
			      uint8_t type, int db, int g)
{
	return (struct x86_segment){ .base = base, .limit = limit, .selector = sel,
		.type = type, .present = 1, .s = 1, .db = (uint8_t)db, .g = (uint8_t)g };
}

/* Set every mode-defining register of a fresh vCPU by hand. */
static struct vcpu *vcpu_in_mode(struct vm *vm, int bits, uint64_t base)
{
	struct vcpu *vcpu = vm_create_vcpu(vm, 0);
	struct regs regs;

	assert_non_null(vcpu);
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	regs.rflags = 2;
	regs.cr0 = bits == 16 ? X86_CR0_ET : X86_CR0_PE | X86_CR0_ET;
	regs.cr3 = regs.cr4 = regs.efer = 0;
	if (bits == 16) {
		regs.cs = seg((uint16_t)(base >> 4), base, 0xffff, 0xb, 0, 0);
		regs.ds = regs.es = regs.fs = regs.gs = regs.ss = seg(0, 0, 0xffff, 0x3, 0, 0);
		regs.rip = 0;
	} else {
		regs.cs = seg(0x8, 0, 0xffffffff, 0xb, 1, 1);
		regs.ds = regs.es = regs.fs = regs.gs = regs.ss = seg(0x10, 0, 0xffffffff, 0x3, 1, 1);
		regs.rip = base;
	}
	assert_int_equal(vcpu_set_regs(vcpu, &regs), 0);
	return vcpu;
}

static void run_mode_guest(const char *name, int bits, uint64_t expect, size_t size)
{
	struct vm *vm = new_vm();
	struct testdev *t = testdev_add(vm, DEVICE_PIO, TESTDEV_PORT, 1);
	struct vcpu *vcpu;
	struct regs regs;

	load_guest(vm, name);
	vcpu = vcpu_in_mode(vm, bits, GUEST_LOAD);
	assert_int_equal(run_until_stop(vcpu, NULL, NULL), VCPU_EXIT_HLT);
	assert_int_equal(t->nr, 1);
	assert_access(&t->rec[0], 0, size, 1, expect);
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	assert_int_equal(regs.cr0 & X86_CR0_PE, bits == 16 ? 0 : X86_CR0_PE);
	vm_destroy(vm);
}

static void test_real_mode(void **state)
{
	run_mode_guest("realmode", 16, 0x1234, 2);
}

static void test_protected_mode(void **state)
{
	run_mode_guest("protmode", 32, 0xdeadbeef, 4);
}

/* ---- two vCPUs at once: a barrier only both together can pass ---- */

struct barrier_dev {
	struct device dev;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int arrived;
	int seen[2];
	pthread_t threads[2];
	int timed_out;
};

static int barrier_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct barrier_dev *b = dev->private;
	struct timespec deadline;
	uint32_t id;

	memcpy(&id, data, 4);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 30;
	pthread_mutex_lock(&b->lock);
	if (id < 2) {
		b->seen[id] = 1;
		b->threads[id] = pthread_self();
	}
	b->arrived++;
	pthread_cond_broadcast(&b->cond);
	/* Returns only once the other vCPU is inside the guest's write too:
	 * impossible unless both run at the same time on their own threads. */
	while (b->arrived < 2 && !b->timed_out)
		b->timed_out = pthread_cond_timedwait(&b->cond, &b->lock, &deadline) != 0;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void test_two_vcpus_run_concurrently(void **state)
{
	struct vm *vm = new_vm();
	struct barrier_dev b = { 0 };

	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	b.dev = (struct device){ .name = "barrier", .base = TESTDEV_PORT + 0x10,
		.size = 4, .private = &b, .write = barrier_write, .space = DEVICE_PIO };
	assert_int_equal(vm_register_device(vm, &b.dev), 0);
	load_guest(vm, "smp");
	new_vcpu_long_mode(vm, 0);
	new_vcpu_long_mode(vm, 1);

	assert_int_equal(vm_start(vm), 0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_HLT); /* both halted */
	assert_false(b.timed_out);
	assert_int_equal(b.arrived, 2);
	assert_true(b.seen[0] && b.seen[1]);
	assert_false(pthread_equal(b.threads[0], b.threads[1]));
	assert_false(pthread_equal(b.threads[0], pthread_self()));
	vm_destroy(vm);
	pthread_cond_destroy(&b.cond);
	pthread_mutex_destroy(&b.lock);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_vm_stop_interrupts_running_guest(void **state)
{
	struct vm *vm = new_vm();
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	struct regs regs;
	double t0;

	load_guest(vm, "spin");
	new_vcpu_long_mode(vm, 0);
	assert_int_equal(vm_start(vm), 0);
	nanosleep(&pause, NULL);
	t0 = now_seconds();
	assert_int_equal(vm_stop(vm), 0);
	/* Promptly: a generous bound that only a missed kick would exceed. */
	assert_true(now_seconds() - t0 < 5.0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_STOPPED);
	assert_int_equal(vm_exit_reason(vm), VCPU_EXIT_STOPPED);
	/* The guest really ran: its counter moved. */
	assert_int_equal(vcpu_get_regs(vm->vcpus[0], &regs), 0);
	assert_true(regs.rax > 0);
	vm_destroy(vm);
}

/* ---- vm_pause / vm_resume ---- */

#define COUNTERS_GPA 0x200000ULL /* count.S */

static volatile uint64_t *guest_counters(struct vm *vm)
{
	volatile uint64_t *c = mm_gpa_to_hva(vm->mem_map, COUNTERS_GPA, 8 * 4);

	assert_non_null(c);
	return c;
}

/* Wait (up to 10 s) until vCPU i's counter passes `than`. */
static bool counter_moves_past(volatile uint64_t *c, int i, uint64_t than)
{
	for (int t = 0; t < 1000; t++) {
		if (c[i] > than)
			return true;
		sleep_ms(10);
	}
	return false;
}

static struct vm *start_counting(int nr_vcpus)
{
	struct vm *vm = new_vm();
	volatile uint64_t *c;

	load_guest(vm, "count");
	for (int i = 0; i < nr_vcpus; i++)
		new_vcpu_long_mode(vm, i);
	assert_int_equal(vm_run_state(vm), VM_RUN_CREATED);
	assert_int_equal(vm_start(vm), 0);
	c = guest_counters(vm);
	for (int i = 0; i < nr_vcpus; i++)
		assert_true(counter_moves_past(c, i, 0));
	return vm;
}

static void test_pause_freezes_guest_resume_continues(void **state)
{
	struct vm *vm = start_counting(2);
	volatile uint64_t *c = guest_counters(vm);
	uint64_t a[2];

	assert_int_equal(vm_run_state(vm), VM_RUN_RUNNING);
	assert_string_equal(vm_run_state_name(vm_run_state(vm)), "running");
	assert_int_equal(vm_pause(vm), 0);
	assert_int_equal(vm_run_state(vm), VM_RUN_PAUSED);
	a[0] = c[0];
	a[1] = c[1];
	sleep_ms(100);
	/* Not one more instruction on either vCPU. */
	assert_int_equal(c[0], a[0]);
	assert_int_equal(c[1], a[1]);
	assert_int_equal(vm_pause(vm), -EALREADY);
	assert_int_equal(c[0], a[0]);

	assert_int_equal(vm_resume(vm), 0);
	assert_int_equal(vm_run_state(vm), VM_RUN_RUNNING);
	assert_true(counter_moves_past(c, 0, a[0]));
	assert_true(counter_moves_past(c, 1, a[1]));
	assert_int_equal(vm_resume(vm), -EALREADY);
	assert_int_equal(vm_stop(vm), 0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_STOPPED);
	assert_int_equal(vm_run_state(vm), VM_RUN_STOPPED);
	vm_destroy(vm);
}

static void test_pause_resume_many_times(void **state)
{
	struct vm *vm = start_counting(2);
	volatile uint64_t *c = guest_counters(vm);

	for (int round = 0; round < 50; round++) {
		uint64_t a0, a1;

		assert_int_equal(vm_pause(vm), 0);
		a0 = c[0];
		a1 = c[1];
		sleep_ms(2);
		assert_int_equal(c[0], a0);
		assert_int_equal(c[1], a1);
		assert_int_equal(vm_resume(vm), 0);
		if (round % 10 == 9) /* now and then: really running again */
			assert_true(counter_moves_past(c, round % 2, round % 2 ? a1 : a0));
	}
	assert_int_equal(vm_run_state(vm), VM_RUN_RUNNING);
	assert_int_equal(vm_stop(vm), 0);
	vm_destroy(vm);
}

static void test_stop_and_destroy_while_paused(void **state)
{
	struct vm *vm = start_counting(2);
	double t0;

	assert_int_equal(vm_pause(vm), 0);
	t0 = now_seconds();
	assert_int_equal(vm_stop(vm), 0);
	assert_true(now_seconds() - t0 < 5.0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_STOPPED);
	assert_int_equal(vm_run_state(vm), VM_RUN_STOPPED);
	assert_int_equal(vm_pause(vm), -ESRCH);
	assert_int_equal(vm_resume(vm), -ESRCH);
	vm_destroy(vm);

	/* vm_destroy alone stops a paused VM too. */
	vm = start_counting(1);
	assert_int_equal(vm_pause(vm), 0);
	vm_destroy(vm);
}

static void test_pause_wrong_states(void **state)
{
	struct vm *vm = new_vm();

	assert_int_equal(vm_pause(NULL), -EINVAL);
	assert_int_equal(vm_resume(NULL), -EINVAL);
	load_guest(vm, "hello");
	assert_int_equal(vm_register_device(vm, exit_port_create(0xf4)), 0);
	new_vcpu_long_mode(vm, 0);
	/* Not started: nothing to pause. */
	assert_int_equal(vm_pause(vm), -EINVAL);
	assert_int_equal(vm_resume(vm), -EINVAL);
	assert_int_equal(vm_run_state(vm), VM_RUN_CREATED);
	assert_int_equal(vm_start(vm), 0);
	/* The guest ends by itself (exit port, status 42). */
	assert_int_equal(vm_wait(vm), VCPU_EXIT_GUEST_EXIT);
	assert_int_equal(vm_run_state(vm), VM_RUN_STOPPED);
	assert_int_equal(vm_pause(vm), -ESRCH);
	assert_int_equal(vm_resume(vm), -ESRCH);
	vm_destroy(vm);
}

/* A device callback runs on the vCPU thread that would have to park. */
struct pausing_dev {
	struct device dev;
	int result;
};

static int pausing_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct pausing_dev *p = dev->private;

	if (!offset)
		p->result = vm_pause(dev->vm);
	return 0;
}

static void test_pause_from_device_callback_refused(void **state)
{
	struct vm *vm = new_vm();
	struct pausing_dev p = { .dev = { .name = "pausing", .base = TESTDEV_PORT,
		.size = 16, .write = pausing_write, .space = DEVICE_PIO }, .result = 1 };

	p.dev.private = &p;
	assert_int_equal(vm_register_device(vm, &p.dev), 0);
	load_guest(vm, "pio"); /* writes the port, then halts */
	new_vcpu_long_mode(vm, 0);
	assert_int_equal(vm_start(vm), 0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_HLT);
	assert_int_equal(p.result, -EDEADLK);
	vm_destroy(vm);
}

/* Device input waits while paused: a watched pipe's handler does not run
 * until resume, then gets what was written meanwhile. */
struct input_count {
	int fd;
	atomic_int bytes;
};

static int count_input(void *opaque)
{
	struct input_count *in = opaque;
	char buf[64];
	ssize_t n = read(in->fd, buf, sizeof(buf));

	if (n > 0)
		atomic_fetch_add(&in->bytes, (int)n);
	return VM_WATCH_KEEP;
}

static void test_pause_holds_device_input(void **state)
{
	struct vm *vm = start_counting(1);
	struct input_count in = { 0 };
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	in.fd = p[0];
	assert_int_equal(vm_watch_fd(vm, p[0], count_input, &in), 0);
	assert_int_equal(write(p[1], "ab", 2), 2);
	for (int t = 0; t < 500 && atomic_load(&in.bytes) < 2; t++)
		sleep_ms(10);
	assert_int_equal(atomic_load(&in.bytes), 2);

	assert_int_equal(vm_pause(vm), 0);
	assert_int_equal(write(p[1], "cde", 3), 3);
	sleep_ms(100);
	assert_int_equal(atomic_load(&in.bytes), 2); /* held back */
	assert_int_equal(vm_resume(vm), 0);
	for (int t = 0; t < 500 && atomic_load(&in.bytes) < 5; t++)
		sleep_ms(10);
	assert_int_equal(atomic_load(&in.bytes), 5);
	vm_destroy(vm);
	close(p[0]);
	close(p[1]);
}

/* ---- one thread per vCPU: vcpu_run answers -EBUSY to a second one ---- */

/* Without the -EBUSY a second KVM_RUN would wait for the first, and the
 * test for ever: end the process with a message instead. */
struct watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	const char *what;
	pthread_t thread;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec deadline;
	bool done;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	pthread_mutex_lock(&w->lock);
	while (!w->done && pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == 0)
		;
	done = w->done;
	pthread_mutex_unlock(&w->lock);
	if (!done) {
		fprintf(stderr, "FAILED: %s blocked for 20 s instead of returning -EBUSY\n", w->what);
		_exit(1);
	}
	return NULL;
}

static void watchdog_arm(struct watchdog *w, const char *what)
{
	*w = (struct watchdog){ .what = what };
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

static void watchdog_disarm(struct watchdog *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

static void test_vcpu_run_after_vm_start_is_busy(void **state)
{
	struct vm *vm = new_vm();
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	struct watchdog w;
	struct vcpu *vcpu;

	load_guest(vm, "spin");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(vm_start(vm), 0);
	nanosleep(&pause, NULL);
	watchdog_arm(&w, "vcpu_run on a vCPU that vm_start runs");
	/* The seed's example does this: vm_start, then its own vcpu_run loop. */
	assert_int_equal(vcpu_run(vcpu), -EBUSY);
	watchdog_disarm(&w);
	assert_int_equal(vm_start(vm), -EBUSY);
	assert_int_equal(vm_stop(vm), 0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_STOPPED);
	/* Still vm_start's after the VM ended: nobody else runs it. */
	assert_int_equal(vcpu_run(vcpu), -EBUSY);
	vm_destroy(vm);
}

/* A device whose first write blocks until the test releases it: the vCPU's
 * thread stays inside vcpu_run meanwhile. */
struct gate_dev {
	struct device dev;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered, released;
};

static int gate_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct gate_dev *g = dev->private;
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&g->lock);
	g->entered = true;
	pthread_cond_broadcast(&g->cond);
	while (!g->released &&
	       pthread_cond_timedwait(&g->cond, &g->lock, &deadline) == 0)
		;
	g->released = true; /* later writes pass */
	pthread_mutex_unlock(&g->lock);
	return 0;
}

struct runner {
	struct vcpu *vcpu;
	int result;
};

static void *run_once_on_thread(void *arg)
{
	struct runner *r = arg;

	r->result = vcpu_run(r->vcpu);
	return NULL;
}

static void test_vcpu_run_from_two_threads_is_busy(void **state)
{
	struct vm *vm = new_vm();
	struct gate_dev g = { .dev = { .name = "gate", .base = TESTDEV_PORT, .size = 16,
		.write = gate_write, .space = DEVICE_PIO } };
	struct watchdog w;
	struct runner r;
	pthread_t t;

	g.dev.private = &g;
	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	assert_int_equal(vm_register_device(vm, &g.dev), 0);
	load_guest(vm, "pio"); /* its first instruction with an exit: out to the gate */
	r = (struct runner){ .vcpu = new_vcpu_long_mode(vm, 0) };
	assert_int_equal(pthread_create(&t, NULL, run_once_on_thread, &r), 0);
	pthread_mutex_lock(&g.lock);
	while (!g.entered)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);

	/* The other thread is inside vcpu_run, in the device's callback. */
	watchdog_arm(&w, "a second thread's vcpu_run");
	assert_int_equal(vcpu_run(r.vcpu), -EBUSY);
	assert_int_equal(vm_start(vm), -EBUSY);
	watchdog_disarm(&w);
	pthread_mutex_lock(&g.lock);
	g.released = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	pthread_join(t, NULL);
	assert_int_equal(r.result, VCPU_EXIT_IO);
	/* Free again: this thread runs the guest to its end. */
	assert_int_equal(run_until_stop(r.vcpu, NULL, NULL), VCPU_EXIT_HLT);
	vm_destroy(vm);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
}

/* A GSI routed to an MSI (vm_msi_route) and raised through its irqfd
 * reaches the guest's local APIC as the message's vector: msi.S has a gate
 * for 0x41 only, and its handler reports the vector and exits with it. */
struct stopper {
	struct vm *vm;
	int seconds;
	atomic_bool done;
};

static void *stopper_thread(void *arg)
{
	struct stopper *w = arg;

	for (int i = 0; i < w->seconds * 10 && !atomic_load(&w->done); i++)
		sleep_ms(100);
	if (!atomic_load(&w->done))
		vm_stop(w->vm);
	return NULL;
}

/* run_until_stop, but vm_stop after `seconds` (VCPU_EXIT_STOPPED): a guest
 * waiting for an interrupt that never comes does not hang the test. */
static int run_with_watchdog(struct vm *vm, struct vcpu *vcpu, int seconds)
{
	struct stopper w = { .vm = vm, .seconds = seconds };
	pthread_t t;
	int r;

	assert_int_equal(pthread_create(&t, NULL, stopper_thread, &w), 0);
	r = run_until_stop(vcpu, NULL, NULL);
	atomic_store(&w.done, true);
	pthread_join(t, NULL);
	return r;
}

static void test_msi_route_delivers_the_vector(void **state)
{
	struct vm *vm = new_vm();
	struct testdev *t;
	struct vcpu *vcpu;
	uint64_t one = 1;
	int r;
	int efd = eventfd(0, EFD_CLOEXEC);

	assert_true(efd >= 0);
	assert_int_equal(vm_msi_route(vm, 24, true, 0xfee00000, 0x41), -ENOTSUP); /* no irqchip */
	assert_int_equal(vm_create_irqchip(vm), 0);
	t = testdev_add(vm, DEVICE_PIO, TESTDEV_PORT, 8);
	assert_int_equal(vm_register_device(vm, exit_port_create(0xf4)), 0);
	load_guest(vm, "msi");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(vm_msi_route(vm, 3, true, 0xfee00000, 0x41), -EINVAL); /* an IOAPIC pin */
	/* routed once elsewhere, then moved: the last message counts */
	assert_int_equal(vm_msi_route(vm, 24, true, 0xfee00000, 0x42), 0);
	assert_int_equal(vm_msi_route(vm, 24, true, 0xfee00000, 0x41), 0);
	assert_int_equal(vm_msi_route(vm, 25, true, 0xfee00000, 0x43), 0);
	assert_int_equal(vm_msi_route(vm, 25, false, 0, 0), 0); /* masked: no route */
	assert_int_equal(vm_add_irqfd(vm, 24, efd), 0);
	assert_int_equal(vcpu_run(vcpu), VCPU_EXIT_IO); /* "ready": its APIC is on */
	assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
	r = run_with_watchdog(vm, vcpu, 20);
	assert_int_equal(r, VCPU_EXIT_GUEST_EXIT); /* STOPPED: no interrupt came */
	assert_int_equal(vm_exit_status(vm), 0x41);
	assert_int_equal(t->nr, 2);
	assert_access(&t->rec[0], 0, 4, 1, 1);
	assert_access(&t->rec[1], 0, 4, 1, 0x41);
	vm_destroy(vm);
	close(efd);
}

static void test_triple_fault_is_shutdown(void **state)
{
	struct vm *vm = new_vm();
	struct vcpu *vcpu;

	load_guest(vm, "triple_fault");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(run_until_stop(vcpu, NULL, NULL), VCPU_EXIT_SHUTDOWN);
	vm_destroy(vm);
}

static void test_unemulated_instruction_reported(void **state)
{
	struct vm *vm = new_vm();
	struct vcpu *vcpu;
	int r;

	assert_int_equal(vm_register_device(vm, exit_port_create(0xf4)), 0);
	load_guest(vm, "fwait");
	vcpu = new_vcpu_long_mode(vm, 0);
	r = run_until_stop(vcpu, NULL, NULL);
	if (r == VCPU_EXIT_INTERNAL_ERROR) {
		/* PVM: reported with the bytes of the failing instruction. */
		assert_true(vcpu->exit.internal.insn_len >= 1);
		assert_int_equal(vcpu->exit.internal.insn[0], 0x9b);
	} else {
		/* Hardware virtualization ran it and went on. */
		assert_int_equal(r, VCPU_EXIT_GUEST_EXIT);
		assert_int_equal(vcpu->exit.status, 7);
	}
	vm_destroy(vm);
}

static void test_registration_rules(void **state)
{
	struct vm *vm = new_vm();
	struct device zero = { .name = "zero", .base = 0xd0000000, .size = 0,
		.read = testdev_read, .space = DEVICE_MMIO };
	struct device wraps = { .name = "wraps", .base = ~0ULL - 4, .size = 16,
		.read = testdev_read, .space = DEVICE_MMIO };
	struct device bigport = { .name = "bigport", .base = 0xfff0, .size = 0x20,
		.read = testdev_read, .space = DEVICE_PIO };
	struct device overlap = { .name = "overlap", .base = TESTDEV_MMIO + 0xfff,
		.size = 2, .read = testdev_read, .space = DEVICE_MMIO };
	struct device other_space = { .name = "pio", .base = 0x100, .size = 1,
		.read = testdev_read, .space = DEVICE_PIO };
	static uint8_t unaligned_mem[8192] __attribute__((aligned(4096)));

	testdev_add(vm, DEVICE_MMIO, TESTDEV_MMIO, 0x1000);
	assert_int_equal(vm_register_device(vm, &zero), -EINVAL);
	assert_int_equal(vm_register_device(vm, &wraps), -EINVAL);
	assert_int_equal(vm_register_device(vm, &bigport), -EINVAL);
	assert_int_equal(vm_register_device(vm, &overlap), -EEXIST);
	assert_int_equal(vm_register_device(vm, &other_space), 0);
	assert_ptr_equal(vm_find_device(vm, DEVICE_PIO, 0x100), &other_space);
	assert_null(vm_find_device(vm, DEVICE_MMIO, 0x100));

	assert_int_equal(vm_add_memory(vm, 0x1000, unaligned_mem, 4096), -EEXIST);
	assert_int_equal(vm_add_memory(vm, 0x40000800, unaligned_mem, 4096), -EINVAL);
	assert_int_equal(vm_add_memory(vm, 0x40000000, unaligned_mem + 1, 4096), -EINVAL);
	assert_int_equal(vm_add_memory(vm, 0x40000000, unaligned_mem, 8192), 0);
	assert_ptr_equal(vm_gpa_to_hva(vm, 0x40001000, 4096), unaligned_mem + 4096);
	assert_null(vm_gpa_to_hva(vm, 0x40001000, 4097)); /* crosses the end */
	assert_null(vm_gpa_to_hva(vm, GUEST_MEM - 8, 16));
	assert_non_null(vm_gpa_to_hva(vm, GUEST_MEM - 8, 8));
	assert_null(vm_create_vcpu(vm, VM_MAX_VCPUS));
	assert_int_equal(errno, EINVAL);
	assert_non_null(vm_create_vcpu(vm, 3));
	assert_null(vm_create_vcpu(vm, 3));
	assert_int_equal(errno, EEXIST);
	vm_destroy(vm);
}

static int never_ready(void *opaque)
{
	(void)opaque;
	return VM_WATCH_DROP;
}

/* vm_unwatch_fd really takes the fd out of the I/O thread's epoll set:
 * watching it again works, which epoll refuses (-EEXIST) while it is in. */
static void test_watch_and_unwatch(void **state)
{
	struct vm *vm = new_vm();
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(vm_watch_fd(vm, p[0], never_ready, NULL), 0);
	assert_int_equal(vm_watch_fd(vm, p[0], never_ready, NULL), -EEXIST);
	assert_int_equal(vm_unwatch_fd(vm, p[0]), 0);
	assert_int_equal(vm_unwatch_fd(vm, p[0]), -ENOENT);
	assert_int_equal(vm_watch_fd(vm, p[0], never_ready, NULL), 0);
	assert_int_equal(vm_unwatch_fd(vm, p[1]), -ENOENT);
	assert_int_equal(vm_watch_fd(vm, -1, never_ready, NULL), -EINVAL);
	vm_destroy(vm);
	close(p[0]);
	close(p[1]);
}

/* The next value the devmem guest writes to the test port (runs past its
 * MMIO exit, if it makes one, to its port exit). */
static uint64_t next_out(struct vcpu *vcpu, struct testdev *port)
{
	int before = port->nr, r;

	while ((r = vcpu_run(vcpu)) == VCPU_EXIT_MMIO)
		;
	assert_int_equal(r, VCPU_EXIT_IO);
	assert_int_equal(port->nr, before + 1);
	return port->rec[before].value;
}

/* Device memory mapped once the VM runs is what the guest reads, without
 * an exit, host writes included; unmapped, the address is MMIO again. */
static void test_device_memory_mapped_while_running(void **state)
{
	struct vm *vm = new_vm();
	struct testdev *mmio = testdev_add(vm, DEVICE_MMIO, TESTDEV_MMIO + 0x1000, 0x1000);
	struct testdev *port = testdev_add(vm, DEVICE_PIO, TESTDEV_PORT, 4);
	uint32_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct vcpu *vcpu;
	int h;

	assert_true(page != MAP_FAILED);
	page[0] = 0x2222;
	mmio->read_value = 0x1111;
	load_guest(vm, "devmem");
	vcpu = new_vcpu_long_mode(vm, 0);
	assert_int_equal(next_out(vcpu, port), 0x1111);
	assert_int_equal(mmio->nr, 1);

	h = vm_map_device_memory(vm, TESTDEV_MMIO + 0x1000, page, 4096);
	assert_true(h >= 0);
	assert_int_equal(next_out(vcpu, port), 0x2222);
	page[0] = 0x3333;
	assert_int_equal(next_out(vcpu, port), 0x3333);
	assert_int_equal(mmio->nr, 1); /* no MMIO exit while mapped */

	assert_int_equal(vm_unmap_device_memory(vm, h), 0);
	assert_int_equal(next_out(vcpu, port), 0x1111);
	assert_int_equal(mmio->nr, 2);
	vm_destroy(vm);
	munmap(page, 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_ram_offered_to_huge_pages),
		cmocka_unit_test(test_hello_debugcon_and_serial),
		cmocka_unit_test(test_metrics_count_guest_exits),
		cmocka_unit_test(test_uart_over_mmio),
		cmocka_unit_test(test_mmio_all_widths),
		cmocka_unit_test(test_device_memory_mapped_while_running),
		cmocka_unit_test(test_pio_all_widths),
		cmocka_unit_test(test_write_only_device_reads_all_ones),
		cmocka_unit_test(test_regs_in_and_out),
		cmocka_unit_test(test_real_mode),
		cmocka_unit_test(test_protected_mode),
		cmocka_unit_test(test_two_vcpus_run_concurrently),
		cmocka_unit_test(test_vm_stop_interrupts_running_guest),
		cmocka_unit_test(test_pause_freezes_guest_resume_continues),
		cmocka_unit_test(test_pause_resume_many_times),
		cmocka_unit_test(test_stop_and_destroy_while_paused),
		cmocka_unit_test(test_pause_wrong_states),
		cmocka_unit_test(test_pause_from_device_callback_refused),
		cmocka_unit_test(test_pause_holds_device_input),
		cmocka_unit_test(test_vcpu_run_after_vm_start_is_busy),
		cmocka_unit_test(test_vcpu_run_from_two_threads_is_busy),
		cmocka_unit_test(test_msi_route_delivers_the_vector),
		cmocka_unit_test(test_triple_fault_is_shutdown),
		cmocka_unit_test(test_unemulated_instruction_reported),
		cmocka_unit_test(test_registration_rules),
		cmocka_unit_test(test_watch_and_unwatch),
	};

	return cmocka_run_group_tests_name("guests", tests, skip_without_kvm, NULL);
}
