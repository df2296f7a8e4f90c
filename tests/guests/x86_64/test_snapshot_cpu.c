/* SPDX-License-Identifier: MIT */
/*
 * Snapshot groundwork on the local /dev/kvm: a VM's CPU and interrupt
 * state saved (vcpu_state_save, vm_state_save) and loaded into a second
 * VM of the same shape (hv/kvm_x86_64_state.c), which goes on where the
 * first one was; malformed payloads refused before anything changes.
 */
#include <stdatomic.h>
#include <time.h>

#include "core/internal.h"
#include "core/snapfile.h"
#include "harness.h"
#include "hv/kvm_x86_64.h"

#define COUNTERS_GPA 0x200000ULL /* snapcount.S */
#define MAX_VCPUS 2
#define MSR_IA32_TSC 0x10

/* ---- a counting VM and its saved state ---- */

struct machine {
	struct vm *vm;
	struct testdev *port; /* the port snapcount.S reads its start from */
	int nr_vcpus;
};

/* snapcount.S on nr_vcpus vCPUs, each starting its count at `start`;
 * with the in-kernel irqchip (LAPIC, PICs, IOAPIC, PIT) or without. */
static struct machine counting_machine(int nr_vcpus, bool irqchip, uint64_t start)
{
	struct machine m = { .vm = new_vm(), .nr_vcpus = nr_vcpus };

	if (irqchip)
		assert_int_equal(vm_create_irqchip(m.vm), 0);
	m.port = testdev_add(m.vm, DEVICE_PIO, TESTDEV_PORT, 0x10);
	m.port->read_value = start;
	load_guest(m.vm, "snapcount");
	for (int i = 0; i < nr_vcpus; i++)
		new_vcpu_long_mode(m.vm, i);
	return m;
}

static volatile uint64_t *counters(struct vm *vm)
{
	volatile uint64_t *c = vm_gpa_to_hva(vm, COUNTERS_GPA, 8 * MAX_VCPUS);

	assert_non_null(c);
	return c;
}

/* Wait (up to 10 s) until vCPU i's counter passes `than`. */
static bool counter_moves_past(struct vm *vm, int i, uint64_t than)
{
	for (int t = 0; t < 1000; t++) {
		if (counters(vm)[i] > than)
			return true;
		sleep_ms(10);
	}
	return false;
}

struct saved {
	struct snap_buf vm, vcpu[MAX_VCPUS];
	uint8_t *ram;
};

static void save_machine(struct machine *m, struct saved *s)
{
	*s = (struct saved){ .ram = malloc(GUEST_MEM) };
	assert_non_null(s->ram);
	assert_int_equal(vm_state_save(m->vm, &s->vm), 0);
	for (int i = 0; i < m->nr_vcpus; i++)
		assert_int_equal(vcpu_state_save(m->vm->vcpus[i], &s->vcpu[i]), 0);
	memcpy(s->ram, vm_gpa_to_hva(m->vm, 0, GUEST_MEM), GUEST_MEM);
}

static void saved_free(struct saved *s)
{
	snap_buf_free(&s->vm);
	for (int i = 0; i < MAX_VCPUS; i++)
		snap_buf_free(&s->vcpu[i]);
	free(s->ram);
}

static struct snap_cursor cursor(const void *p, size_t len)
{
	return (struct snap_cursor){ .p = p, .left = len };
}

static int load_vcpu_bytes(struct vcpu *vcpu, const void *p, size_t len)
{
	struct snap_cursor c = cursor(p, len);

	return vcpu_state_load(vcpu, &c);
}

static int load_vm_bytes(struct vm *vm, const void *p, size_t len)
{
	struct snap_cursor c = cursor(p, len);

	return vm_state_load(vm, &c);
}

/* RAM first, then the VM's state (interrupt controllers, clock), then
 * each vCPU's. */
static void load_machine(struct machine *m, const struct saved *s)
{
	memcpy(vm_gpa_to_hva(m->vm, 0, GUEST_MEM), s->ram, GUEST_MEM);
	assert_int_equal(load_vm_bytes(m->vm, s->vm.data, s->vm.len), 0);
	for (int i = 0; i < m->nr_vcpus; i++)
		assert_int_equal(load_vcpu_bytes(m->vm->vcpus[i], s->vcpu[i].data,
						 s->vcpu[i].len), 0);
}

/* ---- comparing registers and payloads ---- */

static void assert_segment_equal(const struct x86_segment *a, const struct x86_segment *b)
{
	assert_int_equal(a->base, b->base);
	assert_int_equal(a->limit, b->limit);
	assert_int_equal(a->selector, b->selector);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->present, b->present);
	assert_int_equal(a->dpl, b->dpl);
	assert_int_equal(a->db, b->db);
	assert_int_equal(a->s, b->s);
	assert_int_equal(a->l, b->l);
	assert_int_equal(a->g, b->g);
}

static void assert_regs_equal(const struct regs *a, const struct regs *b)
{
	const uint64_t *ga = &a->rax, *gb = &b->rax;

	for (int i = 0; i < 18; i++) /* rax..r15, rip, rflags */
		if (ga[i] != gb[i])
			fail_msg("register %d: %#llx, not %#llx", i, (unsigned long long)gb[i],
				 (unsigned long long)ga[i]);
	assert_segment_equal(&a->cs, &b->cs);
	assert_segment_equal(&a->ds, &b->ds);
	assert_segment_equal(&a->es, &b->es);
	assert_segment_equal(&a->fs, &b->fs);
	assert_segment_equal(&a->gs, &b->gs);
	assert_segment_equal(&a->ss, &b->ss);
	assert_segment_equal(&a->tr, &b->tr);
	assert_segment_equal(&a->ldt, &b->ldt);
	assert_int_equal(a->gdt.base, b->gdt.base);
	assert_int_equal(a->gdt.limit, b->gdt.limit);
	assert_int_equal(a->idt.base, b->idt.base);
	assert_int_equal(a->idt.limit, b->idt.limit);
	assert_int_equal(a->cr0, b->cr0);
	assert_int_equal(a->cr2, b->cr2);
	assert_int_equal(a->cr3, b->cr3);
	assert_int_equal(a->cr4, b->cr4);
	assert_int_equal(a->cr8, b->cr8);
	assert_int_equal(a->efer, b->efer);
	assert_int_equal(a->apic_base, b->apic_base);
}

static struct regs regs_of(struct vcpu *vcpu)
{
	struct regs r;

	assert_int_equal(vcpu_get_regs(vcpu, &r), 0);
	return r;
}

static void assert_vcpu_regs(const struct regs *want, struct vcpu *vcpu)
{
	struct regs now = regs_of(vcpu);

	assert_regs_equal(want, &now);
}

/* One item of a payload, as kvm_x86_64.h lays it out. */
struct item_ref {
	uint32_t id, len;
	size_t at; /* offset of its header */
};

#define MAX_ITEMS 16

static int list_items(const uint8_t *p, size_t len, struct item_ref *items)
{
	size_t at = 0;
	int n = 0;

	while (at < len) {
		assert_true(n < MAX_ITEMS && len - at >= 8);
		memcpy(&items[n].id, p + at, 4);
		memcpy(&items[n].len, p + at + 4, 4);
		items[n].at = at;
		at += 8 + (size_t)items[n].len;
		n++;
	}
	assert_int_equal(at, len);
	return n;
}

static const struct item_ref *find_ref(const struct item_ref *items, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (items[i].id == id)
			return &items[i];
	return NULL;
}

/* MSR values of two MSRS items: the same MSRs with the same values, the
 * TSC aside (it ticks on). */
static void assert_msrs_equal(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	uint32_t n;

	memcpy(&n, a, 4);
	assert_int_equal(len, 4 + 12 * n);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *ea = a + 4 + 12 * i, *eb = b + 4 + 12 * i;
		uint32_t index;

		assert_memory_equal(ea, eb, 4);
		memcpy(&index, ea, 4);
		if (index != MSR_IA32_TSC && memcmp(ea + 4, eb + 4, 8))
			fail_msg("MSR %#x differs", index);
	}
}

/* Two vCPU payloads describe the same vCPU: every item alike, bytes for
 * bytes, but for the TSC. */
static void assert_vcpu_payloads_equal(const struct snap_buf *a, const struct snap_buf *b)
{
	struct item_ref ia[MAX_ITEMS], ib[MAX_ITEMS];
	int na = list_items(a->data, a->len, ia), nb = list_items(b->data, b->len, ib);

	assert_int_equal(na, nb);
	for (int i = 0; i < na; i++) {
		const uint8_t *pa = a->data + ia[i].at + 8, *pb = b->data + ib[i].at + 8;

		assert_int_equal(ia[i].id, ib[i].id);
		assert_int_equal(ia[i].len, ib[i].len);
		if (ia[i].id == KVM_X86_ITEM_MSRS)
			assert_msrs_equal(pa, pb, ia[i].len);
		else if (memcmp(pa, pb, ia[i].len))
			fail_msg("item %u differs", ia[i].id);
	}
}

/* ---- carried over to a new VM ---- */

/* The count goes on in the new VM from where the first one stopped: it
 * was in a register, and the RAM copy's word is cleared before the start,
 * so nothing else could carry it. Without carried-over registers the new
 * VM would read the port again and count from its value. */
static void assert_counts_on(struct machine *b, int i, uint64_t from)
{
	volatile uint64_t *c = counters(b->vm);

	for (int t = 0; t < 1000 && !c[i]; t++)
		sleep_ms(10);
	if (c[i] < from)
		fail_msg("vCPU %d counted from %llu, not %llu", i, (unsigned long long)c[i],
			 (unsigned long long)from);
	assert_true(counter_moves_past(b->vm, i, from + 1000));
}

static void carry_over(int nr_vcpus, bool irqchip)
{
	struct machine a = counting_machine(nr_vcpus, irqchip, 0);
	struct machine b = counting_machine(nr_vcpus, irqchip, 7);
	struct regs before[MAX_VCPUS];
	uint64_t count[MAX_VCPUS];
	struct saved s;

	assert_int_equal(vm_start(a.vm), 0);
	for (int i = 0; i < nr_vcpus; i++)
		assert_true(counter_moves_past(a.vm, i, 10000));
	assert_int_equal(vm_pause(a.vm), 0);
	for (int i = 0; i < nr_vcpus; i++) {
		before[i] = regs_of(a.vm->vcpus[i]);
		count[i] = counters(a.vm)[i];
		/* paused between the increment and the store, or after both */
		assert_true(before[i].r12 == count[i] || before[i].r12 == count[i] + 1);
	}
	save_machine(&a, &s);

	load_machine(&b, &s);
	for (int i = 0; i < nr_vcpus; i++) {
		assert_vcpu_regs(&before[i], b.vm->vcpus[i]);
		counters(b.vm)[i] = 0;
	}
	assert_int_equal(vm_start(b.vm), 0);
	for (int i = 0; i < nr_vcpus; i++)
		assert_counts_on(&b, i, count[i]);
	/* the port was read once per vCPU, in the first VM only */
	assert_int_equal(b.port->nr, 0);
	assert_int_equal(a.port->nr, nr_vcpus);

	/* and the first VM goes on as well: a save changes nothing */
	assert_int_equal(vm_resume(a.vm), 0);
	assert_true(counter_moves_past(a.vm, 0, count[0]));
	vm_destroy(a.vm);
	vm_destroy(b.vm);
	saved_free(&s);
}

static void test_paused_vm_goes_on_in_a_new_vm(void **state)
{
	carry_over(1, true);
}

/* Two vCPUs, no in-kernel irqchip (without one, KVM would hold vCPU 1 in
 * wait-for-SIPI): no LAPIC item, the VM's payload just the clock. */
static void test_two_vcpus_without_irqchip(void **state)
{
	carry_over(2, false);
}

/* What was saved is what the new VM's vCPU and VM then hold. */
static void test_loaded_state_saves_the_same(void **state)
{
	struct machine a = counting_machine(1, true, 0), b = counting_machine(1, true, 0);
	struct snap_buf again = { 0 }, vm_again = { 0 };
	struct item_ref ia[MAX_ITEMS], ib[MAX_ITEMS];
	int na, nb;
	struct saved s;

	assert_int_equal(vm_start(a.vm), 0);
	assert_true(counter_moves_past(a.vm, 0, 1000));
	assert_int_equal(vm_pause(a.vm), 0);
	save_machine(&a, &s);
	load_machine(&b, &s);
	assert_int_equal(vcpu_state_save(b.vm->vcpus[0], &again), 0);
	assert_vcpu_payloads_equal(&s.vcpu[0], &again);

	/* the interrupt controllers as they were; the clock from the saved time on */
	assert_int_equal(vm_state_save(b.vm, &vm_again), 0);
	na = list_items(s.vm.data, s.vm.len, ia);
	nb = list_items(vm_again.data, vm_again.len, ib);
	assert_int_equal(na, 5);
	assert_int_equal(nb, 5);
	for (uint32_t id = KVM_X86_ITEM_PIC_MASTER; id <= KVM_X86_ITEM_IOAPIC; id++)
		assert_memory_equal(s.vm.data + find_ref(ia, na, id)->at,
				    vm_again.data + find_ref(ib, nb, id)->at,
				    8 + sizeof(struct kvm_irqchip));
	{
		struct kvm_clock_data ca, cb;

		memcpy(&ca, s.vm.data + find_ref(ia, na, KVM_X86_ITEM_CLOCK)->at + 8, sizeof(ca));
		memcpy(&cb, vm_again.data + find_ref(ib, nb, KVM_X86_ITEM_CLOCK)->at + 8, sizeof(cb));
		assert_true(cb.clock >= ca.clock);
		assert_true(cb.clock - ca.clock < 5000000000ULL); /* not the host's uptime */
	}
	{
		struct kvm_pit_state2 pa, pb;

		memcpy(&pa, s.vm.data + find_ref(ia, na, KVM_X86_ITEM_PIT)->at + 8, sizeof(pa));
		memcpy(&pb, vm_again.data + find_ref(ib, nb, KVM_X86_ITEM_PIT)->at + 8, sizeof(pb));
		for (int i = 0; i < 3; i++) /* when a count was loaded: host time */
			pa.channels[i].count_load_time = pb.channels[i].count_load_time = 0;
		assert_memory_equal(&pa, &pb, sizeof(pa));
	}
	snap_buf_free(&again);
	snap_buf_free(&vm_again);
	vm_destroy(a.vm);
	vm_destroy(b.vm);
	saved_free(&s);
}

/* A vCPU stopped at a port read (the caller running vcpu_run itself):
 * KVM puts the value into EAX and moves RIP past the IN only at the next
 * entry. The save does that entry (without running guest code), so the
 * state holds the finished read, and the new VM does not read again. */
static void test_save_finishes_a_port_read(void **state)
{
	struct machine a = counting_machine(1, false, 0x12345678);
	struct machine b = counting_machine(1, false, 0);
	struct vcpu *v = a.vm->vcpus[0];
	struct regs at_in, saved_regs;
	struct saved s;

	assert_int_equal(vcpu_run(v), VCPU_EXIT_IO);
	assert_int_equal(v->exit.io.port, TESTDEV_PORT);
	at_in = regs_of(v);
	save_machine(&a, &s);
	saved_regs = regs_of(v);
	assert_int_equal(saved_regs.rip, at_in.rip + 1); /* IN %dx, %eax: one byte */
	assert_int_equal(saved_regs.rax & 0xffffffff, 0x12345678);

	load_machine(&b, &s);
	assert_vcpu_regs(&saved_regs, b.vm->vcpus[0]);
	assert_int_equal(vm_start(b.vm), 0);
	assert_true(counter_moves_past(b.vm, 0, 0x12345678));
	assert_int_equal(b.port->nr, 0);
	vm_destroy(a.vm);
	vm_destroy(b.vm);
	saved_free(&s);
}

/* ---- malformed payloads change nothing ---- */

struct bad_case {
	struct machine target;
	struct regs regs;
	struct snap_buf state; /* the target's own, before */
};

static void bad_case_init(struct bad_case *c)
{
	c->target = counting_machine(1, true, 0);
	c->regs = regs_of(c->target.vm->vcpus[0]);
	c->state = (struct snap_buf){ 0 };
	assert_int_equal(vcpu_state_save(c->target.vm->vcpus[0], &c->state), 0);
}

static void bad_case_free(struct bad_case *c)
{
	snap_buf_free(&c->state);
	vm_destroy(c->target.vm);
}

/* -EINVAL, and the target vCPU just as it was. */
static void assert_refused(struct bad_case *c, const uint8_t *p, size_t len, const char *what)
{
	struct vcpu *v = c->target.vm->vcpus[0];
	struct snap_buf now = { 0 };
	int r = load_vcpu_bytes(v, p, len);

	if (r != -EINVAL)
		fail_msg("%s: %d, not -EINVAL", what, r);
	assert_vcpu_regs(&c->regs, v);
	assert_int_equal(vcpu_state_save(v, &now), 0);
	assert_vcpu_payloads_equal(&c->state, &now);
	snap_buf_free(&now);
}

static uint8_t *copy_of(const struct snap_buf *b, size_t extra)
{
	uint8_t *p = calloc(1, b->len + extra);

	assert_non_null(p);
	memcpy(p, b->data, b->len);
	return p;
}

/* The payload with one byte of item i's header (byte 0-3: id, 4-7:
 * length) xor-ed with x. */
static void refuse_header_flip(struct bad_case *c, const struct snap_buf *good,
			       const struct item_ref *it, int byte, uint8_t x, const char *what)
{
	uint8_t *p = copy_of(good, 0);

	p[it->at + (size_t)byte] ^= x;
	assert_refused(c, p, good->len, what);
	free(p);
}

static void test_malformed_vcpu_payload_changes_nothing(void **state)
{
	struct machine a = counting_machine(1, true, 0);
	struct item_ref items[MAX_ITEMS];
	struct snap_buf good = { 0 };
	struct regs a_regs;
	struct bad_case c;
	uint8_t *p;
	int n;

	assert_int_equal(vm_start(a.vm), 0);
	assert_true(counter_moves_past(a.vm, 0, 1000));
	assert_int_equal(vm_pause(a.vm), 0);
	assert_int_equal(vcpu_state_save(a.vm->vcpus[0], &good), 0);
	a_regs = regs_of(a.vm->vcpus[0]);
	n = list_items(good.data, good.len, items);
	assert_int_equal(n, 9); /* every item: this VM has the irqchip */
	bad_case_init(&c);
	/* what the good payload would change: RIP, the count */
	assert_true(a_regs.rip != c.regs.rip && a_regs.r12 != c.regs.r12);

	/* a length one off, or far off, in the first, the MSRs' and the last item */
	refuse_header_flip(&c, &good, &items[0], 4, 0x01, "REGS length");
	refuse_header_flip(&c, &good, find_ref(items, n, KVM_X86_ITEM_XSAVE), 5, 0x10,
			   "XSAVE length");
	refuse_header_flip(&c, &good, find_ref(items, n, KVM_X86_ITEM_MSRS), 4, 0x0c,
			   "MSRS length");
	refuse_header_flip(&c, &good, &items[n - 1], 7, 0x80, "last length");
	/* the MSR count no longer the length's */
	refuse_header_flip(&c, &good, find_ref(items, n, KVM_X86_ITEM_MSRS), 8, 0x01,
			   "MSR count");
	/* an unknown id, and a known one that comes twice */
	refuse_header_flip(&c, &good, &items[n - 1], 0, 0x40, "unknown id");
	refuse_header_flip(&c, &good, &items[n - 1], 0, items[n - 1].id ^ KVM_X86_ITEM_REGS,
			   "REGS twice");

	/* truncated: by a byte, in the middle, to nothing but a header */
	assert_refused(&c, good.data, good.len - 1, "a byte short");
	assert_refused(&c, good.data, good.len / 2, "half");
	assert_refused(&c, good.data, 6, "six bytes");
	/* an item left out (the last), and bytes left over */
	assert_refused(&c, good.data, items[n - 1].at, "no DEBUGREGS");
	p = copy_of(&good, 16);
	assert_refused(&c, p, good.len + 3, "3 bytes after");
	/* an item of an unknown id, empty, at the end */
	memcpy(p + good.len, &(uint32_t){ 99 }, 4);
	assert_refused(&c, p, good.len + 8, "unknown item after");
	free(p);
	/* an empty payload */
	assert_refused(&c, good.data, 0, "empty");

	/* and the good one loads */
	assert_int_equal(load_vcpu_bytes(c.target.vm->vcpus[0], good.data, good.len), 0);
	assert_vcpu_regs(&a_regs, c.target.vm->vcpus[0]);
	bad_case_free(&c);
	snap_buf_free(&good);
	vm_destroy(a.vm);
}

/* The VM's payload: the same checks, and each interrupt controller's item
 * must hold that controller. A payload with the irqchip's items does not
 * go into a VM without one, nor the other way. */
static void test_malformed_vm_payload_refused(void **state)
{
	struct machine a = counting_machine(1, true, 0), b = counting_machine(1, true, 0);
	struct machine plain = counting_machine(1, false, 0);
	struct item_ref items[MAX_ITEMS];
	struct snap_buf good = { 0 }, plain_state = { 0 };
	uint8_t *p;
	int n;

	assert_int_equal(vm_state_save(a.vm, &good), 0);
	assert_int_equal(vm_state_save(plain.vm, &plain_state), 0);
	n = list_items(good.data, good.len, items);
	assert_int_equal(n, 5);
	assert_int_equal(list_items(plain_state.data, plain_state.len, items + n), 1);

	p = copy_of(&good, 8);
	p[items[3].at + 4] ^= 1; /* the PIT's length */
	assert_int_equal(load_vm_bytes(b.vm, p, good.len), -EINVAL);
	memcpy(p, good.data, good.len);
	p[items[0].at + 8] = KVM_IRQCHIP_PIC_SLAVE; /* the master's item holds the slave */
	assert_int_equal(load_vm_bytes(b.vm, p, good.len), -EINVAL);
	memcpy(p, good.data, good.len);
	p[items[4].at] = 21; /* an unknown id */
	assert_int_equal(load_vm_bytes(b.vm, p, good.len), -EINVAL);
	assert_int_equal(load_vm_bytes(b.vm, good.data, good.len - 1), -EINVAL);
	memcpy(p, good.data, good.len);
	assert_int_equal(load_vm_bytes(b.vm, p, good.len + 3), -EINVAL); /* left over */
	assert_int_equal(load_vm_bytes(b.vm, p, good.len + 8), -EINVAL); /* an item 0 */
	free(p);

	assert_int_equal(load_vm_bytes(plain.vm, good.data, good.len), -EINVAL);
	assert_int_equal(load_vm_bytes(b.vm, plain_state.data, plain_state.len), -EINVAL);
	assert_int_equal(load_vm_bytes(b.vm, good.data, good.len), 0);
	assert_int_equal(load_vm_bytes(plain.vm, plain_state.data, plain_state.len), 0);
	snap_buf_free(&good);
	snap_buf_free(&plain_state);
	vm_destroy(a.vm);
	vm_destroy(b.vm);
	vm_destroy(plain.vm);
}

/* ---- when the calls refuse ---- */

static void test_refused_while_running_or_unsupported(void **state)
{
	struct machine m = counting_machine(1, false, 0);
	struct hypervisor_ops without = *m.vm->ops;
	struct snap_buf b = { 0 };
	struct snap_cursor c = cursor("", 0);
	struct vm *other;
	struct vcpu *v;

	assert_int_equal(vcpu_state_save(NULL, &b), -EINVAL);
	assert_int_equal(vm_state_save(m.vm, NULL), -EINVAL);
	assert_int_equal(vm_state_load(NULL, &c), -EINVAL);
	assert_int_equal(vm_start(m.vm), 0);
	assert_true(counter_moves_past(m.vm, 0, 0));
	/* running: the vCPUs would change under the call */
	assert_int_equal(vcpu_state_save(m.vm->vcpus[0], &b), -EBUSY);
	assert_int_equal(vm_state_save(m.vm, &b), -EBUSY);
	assert_int_equal(vcpu_state_load(m.vm->vcpus[0], &c), -EBUSY);
	assert_int_equal(b.len, 0);
	/* stopped and waited for: fine again */
	assert_int_equal(vm_stop(m.vm), 0);
	assert_int_equal(vcpu_state_save(m.vm->vcpus[0], &b), 0);
	assert_true(b.len > 0);
	vm_destroy(m.vm);

	/* a backend without the ops */
	without.vcpu_state_save = NULL;
	without.vcpu_state_load = NULL;
	without.vm_state_save = NULL;
	without.vm_state_load = NULL;
	other = vm_create_on(&without);
	assert_non_null(other);
	v = vm_create_vcpu(other, 0);
	assert_non_null(v);
	assert_int_equal(vcpu_state_save(v, &b), -EOPNOTSUPP);
	assert_int_equal(vcpu_state_load(v, &c), -EOPNOTSUPP);
	assert_int_equal(vm_state_save(other, &b), -EOPNOTSUPP);
	assert_int_equal(vm_state_load(other, &c), -EOPNOTSUPP);
	vm_destroy(other);
	snap_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paused_vm_goes_on_in_a_new_vm),
		cmocka_unit_test(test_two_vcpus_without_irqchip),
		cmocka_unit_test(test_loaded_state_saves_the_same),
		cmocka_unit_test(test_save_finishes_a_port_read),
		cmocka_unit_test(test_malformed_vcpu_payload_changes_nothing),
		cmocka_unit_test(test_malformed_vm_payload_refused),
		cmocka_unit_test(test_refused_while_running_or_unsupported),
	};

	return cmocka_run_group_tests_name("snapshot_cpu", tests, skip_without_kvm, NULL);
}
