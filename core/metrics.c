/* SPDX-License-Identifier: MIT */
/*
 * vm_format_metrics: the VM's counters as one JSON line. Written with
 * snprintf rather than a JSON library: the line is two levels deep, every
 * key is a literal or a checked device id (nothing to escape) and every
 * value a number, so there is nothing a library would catch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "utils.h"

static bool id_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int device_set_id(struct device *dev, const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (!dev || !n || n >= DEVICE_ID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!id_char_ok(id[i]))
			return -EINVAL;
	memcpy(dev->id, id, n + 1);
	return 0;
}

static void put_vcpu_exits(struct text *t, struct vm *vm)
{
	uint64_t by_reason[VCPU_EXIT_REASONS] = { 0 }, total = 0;
	char name[32];

	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu_stats st;

		if (!vm->vcpus[i] || vcpu_get_stats(vm->vcpus[i], &st))
			continue;
		for (int r = 0; r < VCPU_EXIT_REASONS; r++)
			by_reason[r] += st.by_reason[r];
		total += st.exits;
	}
	text_put(t, ",\"vcpu\":{\"exits\":%llu", (unsigned long long)total);
	for (int r = VCPU_EXIT_NONE + 1; r < VCPU_EXIT_REASONS; r++) {
		snprintf(name, sizeof(name), "%s", vcpu_exit_reason_name(r));
		for (char *p = name; *p; p++)
			*p = *p == '-' ? '_' : *p;
		text_put(t, ",\"exit_%s\":%llu", name, (unsigned long long)by_reason[r]);
	}
	text_put(t, "}");
}

/* Device i's counters; false when it has none. */
static bool device_counters(struct vm *vm, int i, struct device_metrics *m)
{
	struct device *d = vm->devices[i];

	memset(m, 0, sizeof(*m));
	if (!d->metrics)
		return false;
	d->metrics(d, m);
	m->nr = MAX(0, MIN(m->nr, DEVICE_METRICS_MAX));
	return m->group != NULL;
}

static void put_object(struct text *t, const char *group, const char *id,
		       const struct device_metrics *m)
{
	text_put(t, ",\"%s%s%s\":{", group, id ? "_" : "", id ? id : "");
	for (int c = 0; c < m->nr; c++)
		text_put(t, "%s\"%s\":%llu", c ? "," : "", m->counter[c].name,
			 (unsigned long long)m->counter[c].value);
	text_put(t, "}");
}

/* Add b's counters into sum, by name (new names appended). */
static void add_counters(struct device_metrics *sum, const struct device_metrics *b)
{
	for (int c = 0; c < b->nr; c++) {
		int k = 0;

		while (k < sum->nr && strcmp(sum->counter[k].name, b->counter[c].name))
			k++;
		if (k == sum->nr && sum->nr == DEVICE_METRICS_MAX)
			continue;
		if (k == sum->nr) {
			sum->counter[k].name = b->counter[c].name;
			sum->counter[k].value = 0;
			sum->nr++;
		}
		sum->counter[k].value += b->counter[c].value;
	}
}

/* The group of device `first` (its first device): the sum, then each. */
static void put_group(struct text *t, struct vm *vm, int first, const char *group)
{
	struct device_metrics sum = { .group = group }, m;
	char ordinal[16];
	int nth = 0;

	for (int i = first; i < vm->num_devices; i++)
		if (device_counters(vm, i, &m) && !strcmp(m.group, group))
			add_counters(&sum, &m);
	put_object(t, group, NULL, &sum);
	for (int i = first; i < vm->num_devices; i++) {
		const char *id = vm->devices[i]->id;

		if (!device_counters(vm, i, &m) || strcmp(m.group, group))
			continue;
		snprintf(ordinal, sizeof(ordinal), "%d", nth++);
		put_object(t, group, id[0] ? id : ordinal, &m);
	}
}

static bool group_seen_before(struct vm *vm, int before, const char *group)
{
	struct device_metrics m;

	for (int i = 0; i < before; i++)
		if (device_counters(vm, i, &m) && !strcmp(m.group, group))
			return true;
	return false;
}

int vm_format_metrics(struct vm *vm, char *buf, size_t len)
{
	struct text t = { .buf = buf, .len = len };
	struct device_metrics m;
	struct timespec now;

	if (!vm || (!buf && len))
		return -EINVAL;
	if (len)
		buf[0] = '\0';
	clock_gettime(CLOCK_REALTIME, &now);
	text_put(&t, "{\"utc_timestamp_ms\":%llu",
		 (unsigned long long)now.tv_sec * 1000ULL + (unsigned long long)now.tv_nsec / 1000000ULL);
	put_vcpu_exits(&t, vm);
	for (int i = 0; i < vm->num_devices; i++)
		if (device_counters(vm, i, &m) && !group_seen_before(vm, i, m.group))
			put_group(&t, vm, i, m.group);
	text_put(&t, "}");
	return (int)MIN(t.used, (size_t)INT32_MAX);
}
