/* SPDX-License-Identifier: MIT */
/*
 * Firecracker's configuration JSON -> struct fc_config -> struct vmm_config.
 * Field names, requirements and defaults follow Firecracker's API
 * description (its swagger file); the differences are listed in README
 * ("Driving vibevmm like Firecracker"). Every body is checked whole before
 * anything changes: unknown fields, wrong types, out-of-range numbers each
 * fail with a message naming the field, as Firecracker's do.
 */
#include <errno.h>
#include <jansson.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api/fc_config.h"
#include "utils.h"
#include "vm.h"

#define FC_DEFAULT_MEM_MIB 128
#define MAX_TAP_NAME 15 /* IFNAMSIZ - 1 */

enum ftype { F_STR, F_BOOL, F_UINT, F_ARRAY, F_OBJ, F_UNSUPPORTED };

struct field {
	const char *name;
	enum ftype type;
	bool required;
};

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool type_ok(const json_t *v, enum ftype t)
{
	switch (t) {
	case F_STR: return json_is_string(v);
	case F_BOOL: return json_is_boolean(v);
	case F_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
	case F_ARRAY: return json_is_array(v);
	case F_OBJ: return json_is_object(v);
	default: return false;
	}
}

static const char *type_name(enum ftype t)
{
	static const char *const names[] = {
		[F_STR] = "a string", [F_BOOL] = "true or false",
		[F_UINT] = "a non-negative integer", [F_ARRAY] = "an array",
		[F_OBJ] = "an object", [F_UNSUPPORTED] = "null (not supported by vibevmm)",
	};
	return names[t];
}

/* An object holding only the listed fields, each of its type; optional
 * fields may also be null (as absent). */
static int check_fields(const json_t *obj, const char *section, const struct field *f,
			size_t n, char *err, size_t len)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return fail(err, len, "%s: want a JSON object", section);
	json_object_foreach((json_t *)obj, key, v) {
		size_t i = 0;

		while (i < n && strcmp(f[i].name, key))
			i++;
		if (i == n)
			return fail(err, len, "%s: unknown field '%s'", section, key);
		if (json_is_null(v) && !f[i].required)
			continue;
		if (!type_ok(v, f[i].type))
			return fail(err, len, "%s: %s: want %s", section, key, type_name(f[i].type));
	}
	for (size_t i = 0; i < n; i++)
		if (f[i].required && !json_object_get(obj, f[i].name))
			return fail(err, len, "%s: missing field '%s'", section, f[i].name);
	return 0;
}

/* Present and not null: the caller checked its type. */
static const json_t *get(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v && !json_is_null(v) ? v : NULL;
}

static const char *get_str(const json_t *obj, const char *key)
{
	const json_t *v = get(obj, key);

	return v ? json_string_value(v) : NULL;
}

static bool get_bool(const json_t *obj, const char *key)
{
	const json_t *v = get(obj, key);

	return v && json_is_true(v);
}

/* A string field must be non-empty and without NULs (jansson allows
 * "\u0000" in strings): it becomes a C string, a path or a name. */
static int check_str(const json_t *obj, const char *section, const char *key,
		     char *err, size_t len)
{
	const json_t *v = get(obj, key);

	if (!v)
		return 0;
	if (!json_string_length(v) || strlen(json_string_value(v)) != json_string_length(v))
		return fail(err, len, "%s: %s: want a non-empty string without NUL", section, key);
	return 0;
}

/* Replace *slot by a copy of s (NULL: cleared). */
static int set_str(char **slot, const char *s)
{
	char *copy = s ? strdup(s) : NULL;

	if (s && !copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

static int valid_id(const char *id)
{
	size_t n = strlen(id);

	if (!n || n >= FC_MAX_ID)
		return 0;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

/* ---- sections ---- */

static int apply_boot_source(struct fc_config *fc, const json_t *o, char *err, size_t len)
{
	static const struct field f[] = {
		{ "kernel_image_path", F_STR, true }, { "boot_args", F_STR, false },
		{ "initrd_path", F_STR, false },
	};
	int r = check_fields(o, "boot-source", f, ARRAY_SIZE(f), err, len);

	if (!r)
		r = check_str(o, "boot-source", "kernel_image_path", err, len);
	if (!r)
		r = check_str(o, "boot-source", "initrd_path", err, len);
	if (!r && get(o, "boot_args") &&
	    strlen(get_str(o, "boot_args")) != json_string_length(get(o, "boot_args")))
		r = fail(err, len, "boot-source: boot_args: contains a NUL");
	if (r)
		return r;
	if (set_str(&fc->kernel, get_str(o, "kernel_image_path")) ||
	    set_str(&fc->initrd, get_str(o, "initrd_path")) ||
	    set_str(&fc->boot_args, get_str(o, "boot_args")))
		return fail(err, len, "boot-source: out of memory");
	return 0;
}

static int apply_machine_config(struct fc_config *fc, const json_t *o, char *err, size_t len)
{
	static const struct field f[] = {
		{ "vcpu_count", F_UINT, true }, { "mem_size_mib", F_UINT, true },
		{ "smt", F_BOOL, false }, { "track_dirty_pages", F_BOOL, false },
		{ "cpu_template", F_STR, false }, { "huge_pages", F_STR, false },
	};
	int max_cpus = VM_MAX_VCPUS < FC_MAX_VCPUS ? VM_MAX_VCPUS : FC_MAX_VCPUS;
	int r = check_fields(o, "machine-config", f, ARRAY_SIZE(f), err, len);
	json_int_t cpus, mib;
	const char *s;

	if (r)
		return r;
	cpus = json_integer_value(get(o, "vcpu_count"));
	mib = json_integer_value(get(o, "mem_size_mib"));
	if (cpus < 1 || cpus > max_cpus)
		return fail(err, len, "machine-config: vcpu_count: want 1 to %d", max_cpus);
	if (mib < (json_int_t)(CLI_MIN_MEM >> 20) || mib > (json_int_t)(CLI_MAX_MEM >> 20))
		return fail(err, len, "machine-config: mem_size_mib: want %llu to %llu",
			    CLI_MIN_MEM >> 20, CLI_MAX_MEM >> 20);
	if (get_bool(o, "smt"))
		return fail(err, len, "machine-config: smt: true is not supported (one thread per core)");
	if ((s = get_str(o, "cpu_template")) && strcmp(s, "None"))
		return fail(err, len, "machine-config: cpu_template: only \"None\" is supported");
	if ((s = get_str(o, "huge_pages")) && strcmp(s, "None"))
		return fail(err, len, "machine-config: huge_pages: only \"None\" is supported");
	fc->vcpus = (int)cpus;
	fc->mem_mib = (uint64_t)mib;
	fc->track_dirty_pages = get_bool(o, "track_dirty_pages"); /* stored, ignored */
	return 0;
}

/* The path's {id} must be the body's, as Firecracker insists. */
static int check_id(const char *section, const char *key, const char *path_id,
		    const char *body_id, char *err, size_t len)
{
	if (!valid_id(body_id))
		return fail(err, len, "%s: %s: want 1 to %d letters, digits or '_'", section, key,
			    FC_MAX_ID - 1);
	if (path_id && strcmp(path_id, body_id))
		return fail(err, len, "%s: %s: the id in the path (%s) differs from the body's (%s)",
			    section, key, path_id, body_id);
	return 0;
}

static int check_drive(const struct fc_config *fc, const json_t *o, const char *id,
		       char *err, size_t len)
{
	static const struct field f[] = {
		{ "drive_id", F_STR, true }, { "path_on_host", F_STR, true },
		{ "is_root_device", F_BOOL, true }, { "is_read_only", F_BOOL, false },
		{ "cache_type", F_STR, false }, { "io_engine", F_STR, false },
		{ "partuuid", F_UNSUPPORTED, false }, { "rate_limiter", F_UNSUPPORTED, false },
		{ "socket", F_UNSUPPORTED, false },
	};
	const char *s, *did;
	int r = check_fields(o, "drives", f, ARRAY_SIZE(f), err, len);

	if (!r)
		r = check_str(o, "drives", "path_on_host", err, len);
	if (r)
		return r;
	did = get_str(o, "drive_id");
	if ((r = check_id("drives", "drive_id", id, did, err, len)))
		return r;
	if ((s = get_str(o, "cache_type")) && strcmp(s, "Unsafe") && strcmp(s, "Writeback"))
		return fail(err, len, "drives: cache_type: want \"Unsafe\" or \"Writeback\"");
	if ((s = get_str(o, "io_engine")) && strcmp(s, "Sync") && strcmp(s, "Async"))
		return fail(err, len, "drives: io_engine: want \"Sync\" or \"Async\"");
	for (int i = 0; get_bool(o, "is_root_device") && i < fc->nr_drives; i++)
		if (fc->drives[i].root && strcmp(fc->drives[i].id, did))
			return fail(err, len, "drives: is_root_device: drive %s is the root device already",
				    fc->drives[i].id);
	return 0;
}

/* The drive with this id, or a new slot; NULL when all are taken. */
static struct fc_drive *drive_slot(struct fc_config *fc, const char *id, bool *is_new)
{
	for (int i = 0; i < fc->nr_drives; i++)
		if (!strcmp(fc->drives[i].id, id))
			return *is_new = false, &fc->drives[i];
	*is_new = true;
	return fc->nr_drives < CLI_MAX_DISKS ? &fc->drives[fc->nr_drives] : NULL;
}

static int apply_drive(struct fc_config *fc, const json_t *o, const char *id, char *err,
		       size_t len)
{
	struct fc_drive *d;
	const char *s;
	bool is_new;
	int r = check_drive(fc, o, id, err, len);

	if (r)
		return r;
	d = drive_slot(fc, get_str(o, "drive_id"), &is_new);
	if (!d)
		return fail(err, len, "drives: at most %d drives", CLI_MAX_DISKS);
	if (set_str(&d->path, get_str(o, "path_on_host")))
		return fail(err, len, "drives: out of memory");
	snprintf(d->id, sizeof(d->id), "%s", get_str(o, "drive_id"));
	d->root = get_bool(o, "is_root_device");
	d->read_only = get_bool(o, "is_read_only");
	s = get_str(o, "cache_type");
	snprintf(d->cache_type, sizeof(d->cache_type), "%s", s ? s : "Unsafe");
	d->io_sync = (s = get_str(o, "io_engine")) && !strcmp(s, "Sync");
	fc->nr_drives += is_new;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &tail) != 6 || strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return (mac[0] & 1) ? -EINVAL : 0;
}

/* Another interface on the same TAP or with the same MAC would fight over
 * frames. */
static int check_net_clash(const struct fc_config *fc, const struct fc_net *n, char *err,
			   size_t len)
{
	for (int i = 0; i < fc->nr_nets; i++) {
		const struct fc_net *o = &fc->nets[i];

		if (!strcmp(o->id, n->id))
			continue;
		if (!strcmp(o->tap, n->tap))
			return fail(err, len, "network-interfaces: host_dev_name: %s is used by %s",
				    n->tap, o->id);
		if (o->have_mac && n->have_mac && !memcmp(o->mac, n->mac, 6))
			return fail(err, len, "network-interfaces: guest_mac: used by %s", o->id);
	}
	return 0;
}

static int apply_net(struct fc_config *fc, const json_t *o, const char *id, char *err,
		     size_t len)
{
	static const struct field f[] = {
		{ "iface_id", F_STR, true }, { "host_dev_name", F_STR, true },
		{ "guest_mac", F_STR, false }, { "rx_rate_limiter", F_UNSUPPORTED, false },
		{ "tx_rate_limiter", F_UNSUPPORTED, false },
	};
	struct fc_net n = { 0 }, *slot = NULL;
	const char *tap, *mac;
	char *tap_copy;
	int r = check_fields(o, "network-interfaces", f, ARRAY_SIZE(f), err, len);

	if (!r)
		r = check_str(o, "network-interfaces", "host_dev_name", err, len);
	if (!r)
		r = check_id("network-interfaces", "iface_id", id, get_str(o, "iface_id"), err, len);
	if (r)
		return r;
	tap = get_str(o, "host_dev_name");
	if (strlen(tap) > MAX_TAP_NAME || strchr(tap, '/'))
		return fail(err, len, "network-interfaces: host_dev_name: not an interface name");
	mac = get_str(o, "guest_mac");
	if (mac && parse_mac(mac, n.mac))
		return fail(err, len, "network-interfaces: guest_mac: want a unicast XX:XX:XX:XX:XX:XX");
	n.have_mac = mac != NULL;
	snprintf(n.id, sizeof(n.id), "%s", get_str(o, "iface_id"));
	n.tap = (char *)tap;
	if ((r = check_net_clash(fc, &n, err, len)))
		return r;
	for (int i = 0; i < fc->nr_nets && !slot; i++)
		if (!strcmp(fc->nets[i].id, n.id))
			slot = &fc->nets[i];
	if (!slot && fc->nr_nets >= CLI_MAX_NETS)
		return fail(err, len, "network-interfaces: at most %d interfaces", CLI_MAX_NETS);
	if (!(tap_copy = strdup(tap)))
		return fail(err, len, "network-interfaces: out of memory");
	if (!slot)
		slot = &fc->nets[fc->nr_nets++];
	free(slot->tap);
	n.tap = tap_copy;
	*slot = n;
	return 0;
}

static int apply_logger(struct fc_config *fc, const json_t *o, char *err, size_t len)
{
	static const struct field f[] = {
		{ "log_path", F_STR, false }, { "level", F_STR, false },
		{ "show_level", F_BOOL, false }, { "show_log_origin", F_BOOL, false },
		{ "module", F_STR, false },
	};
	static const char *const levels[] = { "Off", "Error", "Warning", "Info", "Debug", "Trace" };
	const char *level;
	int r = check_fields(o, "logger", f, ARRAY_SIZE(f), err, len);
	size_t i = 0;

	if (!r)
		r = check_str(o, "logger", "log_path", err, len);
	if (r)
		return r;
	if ((level = get_str(o, "level"))) {
		while (i < ARRAY_SIZE(levels) && strcasecmp(level, levels[i]))
			i++;
		if (i == ARRAY_SIZE(levels))
			return fail(err, len, "logger: level: want Off, Error, Warning, Info, Debug or Trace");
	}
	if (set_str(&fc->log_path, get_str(o, "log_path")) ||
	    set_str(&fc->log_level, level ? levels[i] : "Warning"))
		return fail(err, len, "logger: out of memory");
	return 0;
}

static int apply_metrics(struct fc_config *fc, const json_t *o, char *err, size_t len)
{
	static const struct field f[] = { { "metrics_path", F_STR, true } };
	int r = check_fields(o, "metrics", f, ARRAY_SIZE(f), err, len);

	if (!r)
		r = check_str(o, "metrics", "metrics_path", err, len);
	if (r)
		return r;
	return set_str(&fc->metrics_path, get_str(o, "metrics_path")) ?
		fail(err, len, "metrics: out of memory") : 0;
}

static int apply_entropy(struct fc_config *fc, const json_t *o, char *err, size_t len)
{
	static const struct field f[] = { { "rate_limiter", F_UNSUPPORTED, false } };
	int r = check_fields(o, "entropy", f, ARRAY_SIZE(f), err, len);

	if (!r)
		fc->entropy = true;
	return r;
}

static int apply_vsock(struct fc_config *fc, const json_t *o, char *err, size_t len)
{
	static const struct field f[] = {
		{ "guest_cid", F_UINT, true }, { "uds_path", F_STR, true },
		{ "vsock_id", F_STR, false },
	};
	int r = check_fields(o, "vsock", f, ARRAY_SIZE(f), err, len);
	json_int_t cid;

	if (!r)
		r = check_str(o, "vsock", "uds_path", err, len);
	if (r)
		return r;
	cid = json_integer_value(get(o, "guest_cid"));
	if (cid < 3 || cid > 0xffffffffLL)
		return fail(err, len, "vsock: guest_cid: want 3 to 4294967295");
	if (set_str(&fc->vsock_uds, get_str(o, "uds_path")))
		return fail(err, len, "vsock: out of memory");
	fc->vsock_cid = (uint32_t)cid;
	fc->have_vsock = true;
	return 0;
}

static int apply_json(struct fc_config *fc, enum fc_section s, const char *id,
		      const json_t *o, char *err, size_t len)
{
	switch (s) {
	case FC_BOOT_SOURCE: return apply_boot_source(fc, o, err, len);
	case FC_MACHINE_CONFIG: return apply_machine_config(fc, o, err, len);
	case FC_DRIVE: return apply_drive(fc, o, id, err, len);
	case FC_NET: return apply_net(fc, o, id, err, len);
	case FC_LOGGER: return apply_logger(fc, o, err, len);
	case FC_METRICS: return apply_metrics(fc, o, err, len);
	case FC_ENTROPY: return apply_entropy(fc, o, err, len);
	case FC_VSOCK: return apply_vsock(fc, o, err, len);
	}
	return fail(err, len, "internal: section %d", (int)s);
}

/* Strict: one JSON value, nothing after it, no key twice. */
static json_t *load(const char *json, size_t len, const char *what, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);

	if (!root)
		fail(err, errlen, "%s: bad JSON: %s (line %d, column %d)", what, je.text, je.line,
		     je.column);
	return root;
}

static const char *const section_names[] = {
	[FC_BOOT_SOURCE] = "boot-source", [FC_MACHINE_CONFIG] = "machine-config",
	[FC_DRIVE] = "drives", [FC_NET] = "network-interfaces", [FC_LOGGER] = "logger",
	[FC_METRICS] = "metrics", [FC_ENTROPY] = "entropy", [FC_VSOCK] = "vsock",
};

int fc_apply(struct fc_config *fc, enum fc_section s, const char *id, const char *json,
	     size_t len, char *err, size_t errlen)
{
	json_t *root = load(json, len, section_names[s], err, errlen);
	int r;

	if (!root)
		return -EINVAL;
	r = apply_json(fc, s, id, root, err, errlen);
	json_decref(root);
	return r;
}

/* "drives" / "network-interfaces": an array of bodies, ids inside. */
static int apply_array(struct fc_config *fc, enum fc_section s, const json_t *a, char *err,
		       size_t len)
{
	size_t i;
	json_t *o;

	if (!json_is_array(a))
		return fail(err, len, "%s: want an array", section_names[s]);
	json_array_foreach(a, i, o) {
		int r = apply_json(fc, s, NULL, o, err, len);

		if (r)
			return r;
	}
	return 0;
}

int fc_patch_machine_config(struct fc_config *fc, const char *json, size_t len, char *err,
			    size_t errlen)
{
	json_t *body = load(json, len, "machine-config", err, errlen), *merged;
	int r;

	if (!body)
		return -EINVAL;
	if (!json_is_object(body)) {
		json_decref(body);
		return fail(err, errlen, "machine-config: want a JSON object");
	}
	merged = json_pack("{s:i, s:I, s:b, s:b}", "vcpu_count", fc->vcpus, "mem_size_mib",
			   (json_int_t)fc->mem_mib, "smt", 0, "track_dirty_pages",
			   fc->track_dirty_pages);
	r = merged && !json_object_update(merged, body) ?
		apply_machine_config(fc, merged, err, errlen) :
		fail(err, errlen, "machine-config: out of memory");
	json_decref(merged);
	json_decref(body);
	return r;
}

/* Two malloc'ed copies, or neither. */
static int copy_paths(const char *a, const char *b, char **pa, char **pb, const char *section,
		      char *err, size_t len)
{
	*pa = strdup(a);
	*pb = strdup(b);
	if (*pa && *pb)
		return 0;
	free(*pa);
	free(*pb);
	*pa = *pb = NULL;
	return fail(err, len, "%s: out of memory", section);
}

static int check_snapshot_create(const json_t *o, char *err, size_t len)
{
	static const struct field f[] = {
		{ "snapshot_type", F_STR, false }, { "snapshot_path", F_STR, true },
		{ "mem_file_path", F_STR, true }, { "version", F_STR, false },
	};
	const char *type;
	int r = check_fields(o, "snapshot/create", f, ARRAY_SIZE(f), err, len);

	if (!r)
		r = check_str(o, "snapshot/create", "snapshot_path", err, len);
	if (!r)
		r = check_str(o, "snapshot/create", "mem_file_path", err, len);
	if (!r && (type = get_str(o, "snapshot_type")) && strcmp(type, "Full"))
		r = fail(err, len, "snapshot/create: snapshot_type: only \"Full\" is supported");
	return r;
}

int fc_snapshot_create(const char *json, size_t len, char **state_path, char **mem_path,
		       char *err, size_t errlen)
{
	json_t *root = load(json, len, "snapshot/create", err, errlen);
	int r;

	*state_path = *mem_path = NULL;
	if (!root)
		return -EINVAL;
	r = check_snapshot_create(root, err, errlen);
	if (!r)
		r = copy_paths(get_str(root, "snapshot_path"), get_str(root, "mem_file_path"),
			       state_path, mem_path, "snapshot/create", err, errlen);
	json_decref(root);
	return r;
}

/* mem_backend {backend_path, backend_type "File"}, or the older
 * mem_file_path: one of them. */
static const char *load_mem_path(const json_t *o, char *err, size_t len)
{
	static const struct field f[] = {
		{ "backend_path", F_STR, true }, { "backend_type", F_STR, true },
	};
	const json_t *b = get(o, "mem_backend");

	if (!b == !get(o, "mem_file_path"))
		return fail(err, len, "snapshot/load: give mem_backend or mem_file_path, one of them"),
		       NULL;
	if (!b)
		return check_str(o, "snapshot/load", "mem_file_path", err, len) ? NULL :
		       get_str(o, "mem_file_path");
	if (check_fields(b, "snapshot/load: mem_backend", f, ARRAY_SIZE(f), err, len) ||
	    check_str(b, "snapshot/load: mem_backend", "backend_path", err, len))
		return NULL;
	if (strcmp(get_str(b, "backend_type"), "File"))
		return fail(err, len, "snapshot/load: mem_backend: backend_type: only \"File\" is supported"),
		       NULL;
	return get_str(b, "backend_path");
}

/* network_overrides [{iface_id, host_dev_name}]: copied into l. */
static int load_net_overrides(const json_t *a, struct fc_snapshot_load *l, char *err, size_t len)
{
	static const struct field f[] = {
		{ "iface_id", F_STR, true }, { "host_dev_name", F_STR, true },
	};
	const char *sec = "snapshot/load: network_overrides";
	size_t i;
	json_t *o;

	if (json_array_size(a) > CLI_MAX_NETS)
		return fail(err, len, "%s: at most %d", sec, CLI_MAX_NETS);
	json_array_foreach(a, i, o) {
		struct snap_override *ov = &l->overrides[l->nr_overrides];
		const char *tap;

		if (check_fields(o, sec, f, ARRAY_SIZE(f), err, len) ||
		    check_str(o, sec, "iface_id", err, len) || check_str(o, sec, "host_dev_name", err, len))
			return -EINVAL;
		tap = get_str(o, "host_dev_name");
		if (strlen(tap) >= IFNAMSIZ)
			return fail(err, len, "%s: host_dev_name: at most %d characters", sec,
				    IFNAMSIZ - 1);
		ov->key = strdup(get_str(o, "iface_id"));
		ov->to = strdup(tap);
		l->nr_overrides++;
		if (!ov->key || !ov->to)
			return fail(err, len, "%s: out of memory", sec);
	}
	return 0;
}

int fc_snapshot_load(const char *json, size_t len, struct fc_snapshot_load *l, char *err,
		     size_t errlen)
{
	static const struct field f[] = {
		{ "snapshot_path", F_STR, true }, { "mem_backend", F_OBJ, false },
		{ "mem_file_path", F_STR, false }, { "enable_diff_snapshots", F_BOOL, false },
		{ "resume_vm", F_BOOL, false }, { "network_overrides", F_ARRAY, false },
	};
	json_t *root = load(json, len, "snapshot/load", err, errlen);
	const char *mem = NULL;
	const json_t *ovr;
	int r;

	*l = (struct fc_snapshot_load){ 0 };
	if (!root)
		return -EINVAL;
	r = check_fields(root, "snapshot/load", f, ARRAY_SIZE(f), err, errlen);
	if (!r)
		r = check_str(root, "snapshot/load", "snapshot_path", err, errlen);
	if (!r && get_bool(root, "enable_diff_snapshots"))
		r = fail(err, errlen, "snapshot/load: enable_diff_snapshots: not supported");
	if (!r && !(mem = load_mem_path(root, err, errlen)))
		r = -EINVAL;
	if (!r && (ovr = get(root, "network_overrides")))
		r = load_net_overrides(ovr, l, err, errlen);
	if (!r)
		r = copy_paths(get_str(root, "snapshot_path"), mem, &l->state_path, &l->mem_path,
			       "snapshot/load", err, errlen);
	l->resume = !r && get_bool(root, "resume_vm");
	json_decref(root);
	if (r)
		fc_snapshot_load_free(l);
	return r;
}

void fc_snapshot_load_free(struct fc_snapshot_load *l)
{
	free(l->state_path);
	free(l->mem_path);
	for (int i = 0; i < l->nr_overrides; i++) {
		free((char *)l->overrides[i].key);
		free((char *)l->overrides[i].to);
	}
	*l = (struct fc_snapshot_load){ 0 };
}

static int find_drive(const struct fc_config *fc, const char *id)
{
	for (int i = 0; i < fc->nr_drives; i++)
		if (!strcmp(fc->drives[i].id, id))
			return i;
	return -1;
}

static int check_drive_patch(const struct fc_config *fc, const json_t *o, const char *id,
			     int *drive, char *err, size_t len)
{
	static const struct field f[] = {
		{ "drive_id", F_STR, true }, { "path_on_host", F_STR, false },
		{ "rate_limiter", F_UNSUPPORTED, false },
	};
	int r = check_fields(o, "drives", f, ARRAY_SIZE(f), err, len);

	if (!r)
		r = check_str(o, "drives", "path_on_host", err, len);
	if (!r)
		r = check_id("drives", "drive_id", id, get_str(o, "drive_id"), err, len);
	if (r)
		return r;
	*drive = find_drive(fc, get_str(o, "drive_id"));
	if (*drive < 0)
		return fail(err, len, "drives: no drive %s", get_str(o, "drive_id"));
	return 0;
}

int fc_patch_drive(const struct fc_config *fc, const char *id, const char *json, size_t len,
		   int *drive, char **path, char *err, size_t errlen)
{
	json_t *root = load(json, len, "drives", err, errlen);
	const char *p;
	int r;

	*path = NULL;
	if (!root)
		return -EINVAL;
	r = check_drive_patch(fc, root, id, drive, err, errlen);
	p = r ? NULL : get_str(root, "path_on_host");
	if (p && !(*path = strdup(p)))
		r = fail(err, errlen, "drives: out of memory");
	json_decref(root);
	return r;
}

void fc_take_drive_path(struct fc_config *fc, int drive, char *path)
{
	free(fc->drives[drive].path);
	fc->drives[drive].path = path;
}

int fc_patch_net(const struct fc_config *fc, const char *id, const char *json, size_t len,
		 char *err, size_t errlen)
{
	static const struct field f[] = {
		{ "iface_id", F_STR, true }, { "rx_rate_limiter", F_UNSUPPORTED, false },
		{ "tx_rate_limiter", F_UNSUPPORTED, false },
	};
	json_t *root = load(json, len, "network-interfaces", err, errlen);
	const char *iid;
	int r, i = 0;

	if (!root)
		return -EINVAL;
	r = check_fields(root, "network-interfaces", f, ARRAY_SIZE(f), err, errlen);
	iid = r ? NULL : get_str(root, "iface_id");
	if (!r)
		r = check_id("network-interfaces", "iface_id", id, iid, err, errlen);
	while (!r && i < fc->nr_nets && strcmp(fc->nets[i].id, iid))
		i++;
	if (!r && i == fc->nr_nets)
		r = fail(err, errlen, "network-interfaces: no interface %s", iid);
	json_decref(root);
	return r;
}

int fc_apply_file(struct fc_config *fc, const char *json, size_t len, char *err, size_t errlen)
{
	/* Firecracker's order: a logger first, so later errors are logged. */
	static const enum fc_section order[] = {
		FC_LOGGER, FC_METRICS, FC_MACHINE_CONFIG, FC_BOOT_SOURCE, FC_DRIVE, FC_NET,
		FC_VSOCK, FC_ENTROPY,
	};
	static const struct field f[] = {
		{ "boot-source", F_OBJ, true }, { "drives", F_ARRAY, false },
		{ "machine-config", F_OBJ, false }, { "network-interfaces", F_ARRAY, false },
		{ "vsock", F_OBJ, false }, { "logger", F_OBJ, false }, { "metrics", F_OBJ, false },
		{ "entropy", F_OBJ, false }, { "balloon", F_UNSUPPORTED, false },
		{ "mmds-config", F_UNSUPPORTED, false },
	};
	json_t *root = load(json, len, "config file", err, errlen);
	int r;

	if (!root)
		return -EINVAL;
	r = check_fields(root, "config file", f, ARRAY_SIZE(f), err, errlen);
	for (size_t i = 0; !r && i < ARRAY_SIZE(order); i++) {
		const json_t *v = get(root, section_names[order[i]]);

		if (!v)
			continue;
		if (order[i] == FC_DRIVE || order[i] == FC_NET)
			r = apply_array(fc, order[i], v, err, errlen);
		else
			r = apply_json(fc, order[i], NULL, v, err, errlen);
	}
	json_decref(root);
	return r;
}
