/* SPDX-License-Identifier: MIT */
/*
 * vm_pause/vm_resume and vm_snapshot/vm_restore on the local arm64 KVM
 * (hv/kvm_arm64.c, hv/kvm_arm64_state.c). snapcount.S counts in x19 and
 * stores each value to a counting device (and to RAM); the count starts
 * from what the device answers, so a vCPU whose registers were not
 * carried over would start again from there. Paused, the count stands
 * still and goes on after the resume. Saved while paused, restored into a
 * second VM built the same way (whose device answers another start), it
 * goes on from the saved value: x19 and PC are the saved ones before the
 * restored VM runs, and the device then sees values just above the saved
 * one. With two vCPUs and an SPI line held high, the vGIC state a restored
 * VM saves again equals the one it was restored from. A truncated or
 * corrupted state file is refused, and so is a well-framed file whose
 * vCPU or vGIC payload is malformed (-EINVAL).
 * make check runs it in the arm64 test host (tests/host/arm64-tests.sh).
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/snapfile.h"
#include "devices.h"
#include "harness.h"
#include "snapshot.h"

#define COUNTER_GPA 0x200000ULL   /* snapcount.S */
#define START_A 1000ULL           /* where A's count starts */
#define START_B 0x70000000ULL     /* what the device says in restored VMs */
#define SEC_VM 3                  /* core/snapshot.c's section tags */
#define SEC_VCPU 4

struct countdev {
	struct device dev;
	uint64_t start;
	_Atomic uint64_t last; /* the last value stored at offset 8 */
};

struct files {
	char dir[64], state[96], mem[96];
};

static int countdev_read(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct countdev *c = dev->private;

	memcpy(data, &c->start, MIN(size, sizeof(c->start)));
	return 0;
}

static int countdev_write(struct device *dev, uint64_t offset, void *data, size_t size)
{
	struct countdev *c = dev->private;
	uint64_t v = 0;

	memcpy(&v, data, MIN(size, sizeof(v)));
	if (offset == 8)
		atomic_store(&c->last, v);
	return 0;
}

static void countdev_destroy(struct device *dev)
{
	free(dev->private);
}

/* The VM as the program builds it, each time the same way: RAM, the vGIC,
 * the counting device, one vCPU (a restore creates its own). */
static struct vm *build(uint64_t start, struct countdev **out)
{
	struct vm *vm = new_vm();
	struct countdev *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_int_equal(vm_create_irqchip(vm), 0);
	c->start = start;
	c->dev = (struct device){
		.name = "countdev", .base = TESTDEV_MMIO, .size = 0x1000, .private = c,
		.read = countdev_read, .write = countdev_write, .destroy = countdev_destroy,
		.space = DEVICE_MMIO, .stateless = true,
	};
	assert_int_equal(vm_register_device(vm, &c->dev), 0);
	*out = c;
	return vm;
}

/* The device saw a value above `than` within ~20 s (the emulated test
 * host makes an MMIO exit take ~60 us, and may be busy). */
static bool count_passes(struct countdev *c, uint64_t than)
{
	for (int t = 0; t < 2000; t++) {
		if (atomic_load(&c->last) > than)
			return true;
		sleep_ms(10);
	}
	return false;
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

/* Paused: no vCPU in the guest, the count stands still (device and x19
 * agree); resumed: the vCPU enters the guest again and counts on. Twice,
 * so a second pause after a resume works too. */
static void test_pause_resume(void **state)
{
	struct countdev *c;
	struct vm *vm = build(START_A, &c);
	struct regs regs;
	uint64_t at = START_A;

	load_guest(vm, "snapcount");
	new_vcpu(vm, 0);
	assert_int_equal(vm_start(vm), 0);
	for (int round = 0; round < 2; round++) {
		assert_true(count_passes(c, at + 100));
		assert_int_equal(vm_pause(vm), 0);
		assert_int_equal(vm_run_state(vm), VM_RUN_PAUSED);
		assert_int_equal(vm_pause(vm), -EALREADY);
		at = atomic_load(&c->last);
		assert_int_equal(vcpu_get_regs(vm->vcpus[0], &regs), 0);
		assert_int_equal(regs.x[19], at);
		sleep_ms(200);
		assert_int_equal(atomic_load(&c->last), at); /* still paused */
		assert_int_equal(vm_resume(vm), 0);
		assert_int_equal(vm_run_state(vm), VM_RUN_RUNNING);
		assert_true(count_passes(c, at + 100)); /* it entered the guest again */
		at = atomic_load(&c->last);
	}
	assert_int_equal(vm_stop(vm), 0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_STOPPED);
	vm_destroy(vm);
}

/* A: counting, paused, saved, stopped. Returns the count at the save and
 * the saved registers. */
static uint64_t snapshot_a(const struct files *f, struct regs *saved)
{
	struct countdev *c;
	struct vm *a = build(START_A, &c);
	char why[256] = "";
	uint64_t at;

	load_guest(a, "snapcount");
	new_vcpu(a, 0);
	assert_int_equal(vm_start(a), 0);
	assert_true(count_passes(c, START_A + 100));
	assert_int_equal(vm_snapshot(a, f->state, f->mem, NULL, 0, why, sizeof(why)), -EBUSY);
	assert_int_equal(vm_pause(a), 0);
	at = atomic_load(&c->last);
	if (vm_snapshot(a, f->state, f->mem, "app", 3, why, sizeof(why)))
		fail_msg("vm_snapshot: %s", why);
	assert_int_equal(vcpu_get_regs(a->vcpus[0], saved), 0);
	assert_int_equal(saved->x[19], at);
	sleep_ms(50);
	assert_int_equal(atomic_load(&c->last), at); /* still paused after the save */
	assert_int_equal(vm_stop(a), 0);
	vm_destroy(a);
	return at;
}

static void test_restored_vm_goes_on_counting(void **state)
{
	struct files f;
	struct regs saved, now;
	struct countdev *c;
	struct vm *b;
	char why[256] = "";
	uint64_t at, ram;

	make_files(&f);
	at = snapshot_a(&f, &saved);
	assert_true(at > START_A && at < START_B);
	b = build(START_B, &c);
	if (vm_restore(b, f.state, f.mem, NULL, why, sizeof(why)))
		fail_msg("vm_restore: %s", why);
	/* Registers and RAM as saved, before the restored VM runs. */
	assert_int_equal(b->num_vcpus, 1);
	assert_int_equal(vcpu_get_regs(b->vcpus[0], &now), 0);
	assert_int_equal(now.x[19], at);
	assert_int_equal(now.x[20], TESTDEV_MMIO);
	assert_int_equal(now.x[21], COUNTER_GPA);
	assert_int_equal(now.pc, saved.pc);
	assert_int_equal(now.pstate, saved.pstate);
	assert_int_equal(now.sp, saved.sp);
	assert_int_equal(now.mpidr_el1, saved.mpidr_el1);
	/* RAM: the guest stores to the device first, then to RAM, so the
	 * pause may fall between the two. */
	ram = *(volatile uint64_t *)vm_gpa_to_hva(b, COUNTER_GPA, 8);
	assert_true(ram == at || ram == at - 1);
	assert_int_equal(vm_start(b), 0);
	assert_true(count_passes(c, at + 100));
	/* Went on from the saved count: a fresh vCPU would count from START_B. */
	assert_true(atomic_load(&c->last) < START_B);
	assert_int_equal(vm_pause(b), 0); /* and a restored VM pauses too */
	assert_int_equal(vm_stop(b), 0);
	vm_destroy(b);
	remove_files(&f);
}

static int restore_fresh(const struct files *f, char *why, size_t len)
{
	struct countdev *c;
	struct vm *b = build(START_B, &c);
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

static void test_bad_state_files_refused(void **state)
{
	struct files f;
	struct regs saved;
	uint8_t *buf;
	size_t n;
	char why[256];

	make_files(&f);
	snapshot_a(&f, &saved);
	assert_int_equal(read_file(f.state, &buf, &n), 0);
	rewrite(f.state, buf, n / 2);
	assert_int_equal(restore_fresh(&f, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "truncated"));
	buf[n / 3] ^= 0x04;
	rewrite(f.state, buf, n);
	assert_int_equal(restore_fresh(&f, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "corrupted"));
	buf[n / 3] ^= 0x04;
	rewrite(f.state, buf, n);
	assert_int_equal(restore_fresh(&f, why, sizeof(why)), 0); /* whole again */
	free(buf);
	remove_files(&f);
}

/* The state file framed anew (valid checksums) with one byte of section
 * (tag, 0)'s payload at `at` (from its end when negative) XORed with x,
 * or the payload cut short by `cut` bytes. */
static void reframe(const char *path, uint32_t tag, long at, uint8_t x, size_t cut)
{
	struct snap_writer w;
	struct snap_file f;
	uint8_t *buf, *out;
	size_t n, out_len;
	char why[256];

	assert_int_equal(read_file(path, &buf, &n), 0);
	assert_int_equal(snap_parse(buf, n, SNAP_ARCH_ARM64, &f, why, sizeof(why)), 0);
	snap_writer_init(&w, SNAP_ARCH_ARM64);
	for (unsigned i = 0; i < f.nr; i++) {
		struct snap_section *s = &f.sections[i];
		uint8_t *p = malloc(s->len + 1);
		size_t len = (size_t)s->len;

		assert_non_null(p);
		memcpy(p, s->payload, len);
		if (s->tag == tag && s->instance == 0) {
			size_t off = at < 0 ? len - (size_t)-at : (size_t)at;

			assert_true(off < len && cut <= len);
			p[off] ^= x;
			len -= cut;
		}
		snap_add(&w, s->tag, s->instance, p, len);
		free(p);
	}
	assert_int_equal(snap_file_bytes(&w, &out, &out_len), 0);
	rewrite(path, out, out_len);
	snap_writer_free(&w);
	snap_file_free(&f);
	free(out);
	free(buf);
}

/* Well-framed files whose vCPU or vGIC payload is malformed: refused with
 * -EINVAL and the part named; the original goes through. */
static void test_malformed_payloads_refused(void **state)
{
	struct files f;
	struct regs saved;
	uint8_t *orig;
	size_t n;
	char why[256];
	static const struct { uint32_t tag; long at; uint8_t x; size_t cut; const char *part; } bad[] = {
		{ SEC_VCPU, 0, 0x01, 0, "vCPU 0" },      /* format */
		{ SEC_VCPU, 8, 0x01, 0, "vCPU 0" },      /* the first register's id */
		{ SEC_VCPU, 4, 0x10, 0, "vCPU 0" },      /* the register count */
		{ SEC_VCPU, 0, 0x00, 3, "vCPU 0" },      /* cut short */
		{ SEC_VCPU, -1, 0x00, 0, "" },           /* (control: unchanged) */
		{ SEC_VM, 4, 0x01, 0, "interrupt" },     /* the irqchip model */
		{ SEC_VM, 12, 0x01, 0, "interrupt" },    /* the first attribute's group */
		{ SEC_VM, 16, 0x01, 0, "interrupt" },    /* the first attribute */
		{ SEC_VM, 28, 0x01, 0, "interrupt" },    /* GICD_CTLR's value: above 32 bits */
		{ SEC_VM, 0, 0x00, 8, "interrupt" },     /* cut short */
	};

	make_files(&f);
	snapshot_a(&f, &saved);
	assert_int_equal(read_file(f.state, &orig, &n), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r;

		reframe(f.state, bad[i].tag, bad[i].at, bad[i].x, bad[i].cut);
		r = restore_fresh(&f, why, sizeof(why));
		if (!bad[i].part[0]) {
			assert_int_equal(r, 0);
		} else if (r != -EINVAL || !strstr(why, bad[i].part)) {
			fail_msg("case %zu: %d (%s)", i, r, why);
		}
		rewrite(f.state, orig, n);
	}
	free(orig);
	remove_files(&f);
}

/* Section (tag, instance)'s payload of a state file, malloc'ed. */
static uint8_t *section_of(const char *path, uint32_t tag, uint32_t instance, size_t *len)
{
	const struct snap_section *sec;
	struct snap_file f;
	uint8_t *buf, *p;
	size_t n;
	char why[256];

	assert_int_equal(read_file(path, &buf, &n), 0);
	assert_int_equal(snap_parse(buf, n, SNAP_ARCH_ARM64, &f, why, sizeof(why)), 0);
	sec = snap_find(&f, tag, instance);
	assert_non_null(sec);
	*len = (size_t)sec->len;
	p = malloc(*len);
	assert_non_null(p);
	memcpy(p, sec->payload, *len);
	snap_file_free(&f);
	free(buf);
	return p;
}

/* Bit `bit` of the saved value of vGIC attribute (group, attr) in a vGIC
 * payload (format, model, count, then u32 group, u64 attribute, u64 value
 * each). */
static int saved_bit(const uint8_t *p, size_t len, uint32_t group, uint64_t attr,
		     unsigned bit)
{
	uint32_t n;

	assert_true(len >= 12);
	memcpy(&n, p + 8, 4);
	assert_int_equal(len, 12 + (size_t)n * 20);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + 12 + (size_t)i * 20;
		uint32_t g;
		uint64_t a, value;

		memcpy(&g, e, 4);
		memcpy(&a, e + 4, 8);
		memcpy(&value, e + 12, 8);
		if (g == group && a == attr)
			return (int)((value >> bit) & 1);
	}
	fail_msg("no vGIC attribute %u/0x%llx saved", group, (unsigned long long)attr);
	return -1;
}

#define TEST_SPI 3
#define GICD_ISPENDR_SPI32 0x204 /* GICD_ISPENDR1: INTIDs 32-63 */

/* Two vCPUs (the second left powered off, so a second redistributor and
 * CPU interface) and an SPI raised: the vGIC a restored VM saves again is
 * the one it was restored from, byte for byte, the SPI still pending (the
 * guest has interrupts masked and the distributor off; KVM makes SPIs
 * edge-triggered until told otherwise, so raising the line latches it
 * pending). A vGIC not restored would have it clear. */
static void test_vgic_state_carried_over(void **state)
{
	struct files f1, f2;
	struct countdev *c;
	struct vm *a = build(START_A, &c), *b;
	char why[256] = "";
	uint8_t *va, *vb;
	size_t la, lb;
	uint64_t at;

	make_files(&f1);
	make_files(&f2);
	load_guest(a, "snapcount");
	new_vcpu(a, 0);
	new_vcpu(a, 1);
	assert_int_equal(vm_start(a), 0);
	assert_true(count_passes(c, START_A + 100));
	assert_int_equal(vm_irq_line(a, TEST_SPI, 1), 0);
	assert_int_equal(vm_pause(a), 0);
	at = atomic_load(&c->last);
	if (vm_snapshot(a, f1.state, f1.mem, NULL, 0, why, sizeof(why)))
		fail_msg("vm_snapshot: %s", why);
	assert_int_equal(vm_stop(a), 0);
	vm_destroy(a);

	b = build(START_B, &c);
	if (vm_restore(b, f1.state, f1.mem, NULL, why, sizeof(why)))
		fail_msg("vm_restore: %s", why);
	assert_int_equal(b->num_vcpus, 2);
	assert_int_equal(vm_start(b), 0);
	assert_true(count_passes(c, at + 10));
	assert_true(atomic_load(&c->last) < START_B);
	assert_int_equal(vm_pause(b), 0);
	if (vm_snapshot(b, f2.state, f2.mem, NULL, 0, why, sizeof(why)))
		fail_msg("vm_snapshot of the restored VM: %s", why);
	assert_int_equal(vm_stop(b), 0);
	vm_destroy(b);

	va = section_of(f1.state, SEC_VM, 0, &la);
	vb = section_of(f2.state, SEC_VM, 0, &lb);
	assert_int_equal(saved_bit(va, la, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISPENDR_SPI32,
				   TEST_SPI), 1);
	assert_int_equal(saved_bit(va, la, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISPENDR_SPI32,
				   TEST_SPI + 1), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(va, vb, la);
	free(va);
	free(vb);
	remove_files(&f1);
	remove_files(&f2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_restored_vm_goes_on_counting),
		cmocka_unit_test(test_vgic_state_carried_over),
		cmocka_unit_test(test_bad_state_files_refused),
		cmocka_unit_test(test_malformed_payloads_refused),
	};

	return cmocka_run_group_tests_name("arm64 snapshots", tests, skip_without_kvm, NULL);
}
