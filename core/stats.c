/* SPDX-License-Identifier: MIT */
/*
 * Exit counters: every vCPU counts its own exits (by reason, by device,
 * unclaimed addresses) so that they can always be on: the vCPU thread is
 * the only writer, a bump is a plain relaxed load and store. Readers sum
 * the vCPUs' counters.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "utils.h"

typedef atomic_uint_least64_t counter_t;

static void bump(counter_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static uint64_t get(const counter_t *c)
{
	return atomic_load_explicit((counter_t *)c, memory_order_relaxed);
}

static uint64_t unclaimed_key(const struct vcpu_exit *exit)
{
	if (exit->reason == VCPU_EXIT_IO)
		return ((uint64_t)DEVICE_PIO << 63) | STATS_UNCLAIMED_USED | exit->io.port;
	return ((uint64_t)DEVICE_MMIO << 63) | STATS_UNCLAIMED_USED |
	       (exit->mmio.addr & (STATS_UNCLAIMED_USED - 1));
}

/* Unclaimed accesses are rare (a probe of an absent device): a short
 * linear search is fine. */
static void count_unclaimed(struct vcpu_counters *c, const struct vcpu_exit *exit)
{
	uint64_t key = unclaimed_key(exit);

	for (int i = 0; i < STATS_MAX_UNCLAIMED; i++) {
		uint64_t k = get(&c->unclaimed_key[i]);

		if (!k)
			atomic_store_explicit(&c->unclaimed_key[i], key, memory_order_relaxed);
		if (!k || k == key) {
			bump(&c->unclaimed[i]);
			return;
		}
	}
	bump(&c->unclaimed[STATS_MAX_UNCLAIMED]);
}

void stats_count_exit(struct vcpu *vcpu, const struct vcpu_exit *exit, int dev)
{
	struct vcpu_counters *c = &vcpu->state->counters;

	if ((unsigned)exit->reason >= VCPU_EXIT_REASONS)
		return;
	bump(&c->by_reason[exit->reason]);
	if (exit->reason != VCPU_EXIT_IO && exit->reason != VCPU_EXIT_MMIO)
		return;
	if (dev < 0)
		count_unclaimed(c, exit);
	else
		bump(&c->by_device[MIN(dev, STATS_MAX_DEVICES)]);
}

int vcpu_get_stats(struct vcpu *vcpu, struct vcpu_stats *stats)
{
	if (!vcpu || !stats)
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	for (int r = 0; r < VCPU_EXIT_REASONS; r++) {
		stats->by_reason[r] = get(&vcpu->state->counters.by_reason[r]);
		stats->exits += stats->by_reason[r];
	}
	return 0;
}

static int device_index(struct vm *vm, const struct device *dev)
{
	for (int i = 0; i < vm->num_devices; i++)
		if (vm->devices[i] == dev)
			return i;
	return -ENOENT;
}

uint64_t vm_device_exits(struct vm *vm, const struct device *dev, struct vcpu *vcpu)
{
	int idx = vm && dev ? device_index(vm, dev) : -ENOENT;
	uint64_t n = 0;

	/* Devices past the table share one counter: not theirs alone. */
	if (idx < 0 || idx >= STATS_MAX_DEVICES)
		return 0;
	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu *v = vm->vcpus[i];

		if (v && (!vcpu || v == vcpu))
			n += get(&v->state->counters.by_device[idx]);
	}
	return n;
}

void text_put(struct text *t, const char *fmt, ...)
{
	size_t room = t->used < t->len ? t->len - t->used : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? t->buf + t->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->used += (size_t)n;
}

typedef uint64_t (*cell_fn)(const struct vcpu *v, const void *what);

/* One row: label, total, then a column per vCPU; none when all are 0. */
static void put_row(struct text *t, struct vm *vm, const char *label,
		    cell_fn cell, const void *what)
{
	uint64_t total = 0;

	for (int i = 0; i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			total += cell(vm->vcpus[i], what);
	if (!total)
		return;
	text_put(t, "  %-34s %10llu", label, (unsigned long long)total);
	for (int i = 0; i < VM_MAX_VCPUS; i++)
		if (vm->vcpus[i])
			text_put(t, " %9llu", (unsigned long long)cell(vm->vcpus[i], what));
	text_put(t, "\n");
}

static uint64_t cell_reason(const struct vcpu *v, const void *what)
{
	return get(&v->state->counters.by_reason[*(const int *)what]);
}

static uint64_t cell_device(const struct vcpu *v, const void *what)
{
	return get(&v->state->counters.by_device[*(const int *)what]);
}

/* what: the key to match; the slot is looked up per vCPU (each vCPU
 * filled its table in its own order). */
static uint64_t cell_unclaimed(const struct vcpu *v, const void *what)
{
	uint64_t key = *(const uint64_t *)what;

	if (!key)
		return get(&v->state->counters.unclaimed[STATS_MAX_UNCLAIMED]);
	for (int i = 0; i < STATS_MAX_UNCLAIMED; i++)
		if (get(&v->state->counters.unclaimed_key[i]) == key)
			return get(&v->state->counters.unclaimed[i]);
	return 0;
}

static void put_header(struct text *t, struct vm *vm)
{
	char name[16];

	text_put(t, "  %-34s %10s", "exits", "total");
	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		if (!vm->vcpus[i])
			continue;
		snprintf(name, sizeof(name), "vCPU%d", i);
		text_put(t, " %9s", name);
	}
	text_put(t, "\n");
}

static void put_devices(struct text *t, struct vm *vm)
{
	char label[64];

	for (int i = 0; i <= STATS_MAX_DEVICES && i < vm->num_devices; i++) {
		const struct device *d = vm->devices[i];

		if (i == STATS_MAX_DEVICES)
			snprintf(label, sizeof(label), "  other devices");
		else
			snprintf(label, sizeof(label), "  %s %s 0x%llx", d->name,
				 d->space == DEVICE_PIO ? "port" : "mmio",
				 (unsigned long long)d->base);
		put_row(t, vm, label, cell_device, &i);
	}
}

/* Unclaimed keys in the order the vCPUs met them, each once. */
static void put_unclaimed(struct text *t, struct vm *vm)
{
	uint64_t seen[STATS_MAX_UNCLAIMED * 4], none = 0;
	int nr_seen = 0;
	char label[64];

	for (int v = 0; v < VM_MAX_VCPUS; v++) {
		for (int i = 0; vm->vcpus[v] && i < STATS_MAX_UNCLAIMED; i++) {
			uint64_t key = get(&vm->vcpus[v]->state->counters.unclaimed_key[i]);
			int dup = !key;

			for (int j = 0; j < nr_seen && !dup; j++)
				dup = seen[j] == key;
			if (dup || nr_seen == (int)ARRAY_SIZE(seen))
				continue;
			seen[nr_seen++] = key;
			snprintf(label, sizeof(label), "  unclaimed %s 0x%llx",
				 key >> 63 == DEVICE_PIO ? "port" : "mmio",
				 (unsigned long long)(key & (STATS_UNCLAIMED_USED - 1)));
			put_row(t, vm, label, cell_unclaimed, &seen[nr_seen - 1]);
		}
	}
	put_row(t, vm, "  unclaimed, other addresses", cell_unclaimed, &none);
}

int vm_format_stats(struct vm *vm, char *buf, size_t len)
{
	struct text t = { .buf = buf, .len = len };

	if (!vm || (!buf && len))
		return -EINVAL;
	if (len)
		buf[0] = '\0';
	put_header(&t, vm);
	for (int r = 0; r < VCPU_EXIT_REASONS; r++)
		put_row(&t, vm, vcpu_exit_reason_name(r), cell_reason, &r);
	text_put(&t, "  io and mmio exits by device:\n");
	put_devices(&t, vm);
	put_unclaimed(&t, vm);
	return (int)MIN(t.used, (size_t)INT32_MAX);
}
