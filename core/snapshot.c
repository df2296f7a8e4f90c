/* SPDX-License-Identifier: MIT */
/*
 * vm_snapshot / vm_restore (include/snapshot.h): the state file's sections
 * and the memory file. The container is core/snapfile.c's; the payloads
 * are the backend's (snapstate.c) and the devices' (struct device save and
 * load). Sections:
 *
 *   LAYOUT   u32 vCPUs, u32 RAM slots, then per slot u64 gpa, size, and
 *            offset in the memory file
 *   APP      the embedding program's description, as given
 *   VM       vm_state_save's payload (interrupt controller, timer, clock)
 *   VCPU i   vcpu_state_save's payload for vCPU i
 *   DEVICE i registered device i: u16 name length, the name, u64 base,
 *            u64 size, u8 stateless, then (unless stateless) its save
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/snapfile.h"
#include "devices.h"
#include "snapshot.h"
#include "utils.h"

enum { SEC_LAYOUT = 1, SEC_APP, SEC_VM, SEC_VCPU, SEC_DEVICE };

#define PAGE 4096u
#define NAME_MAX_LEN 64

/* ---- saving ---- */

/* Devices 0..*n-1 quiesced; on failure they are let go again. */
static int quiesce_devices(struct vm *vm, char *why, size_t len)
{
	for (int i = 0; i < vm->num_devices; i++) {
		struct device *d = vm->devices[i];
		int err = d->quiesce ? d->quiesce(d) : 0;

		if (err) {
			while (i-- > 0)
				if (vm->devices[i]->unquiesce)
					vm->devices[i]->unquiesce(vm->devices[i]);
			return fail_why(-err, why, len, "%s: cannot quiesce it: %s", d->name,
					strerror(-err));
		}
	}
	return 0;
}

static void unquiesce_devices(struct vm *vm)
{
	for (int i = 0; i < vm->num_devices; i++)
		if (vm->devices[i]->unquiesce)
			vm->devices[i]->unquiesce(vm->devices[i]);
}

static void add_buf(struct snap_writer *w, uint32_t tag, uint32_t instance, struct snap_buf *b)
{
	snap_add(w, tag, instance, b->data, b->len);
	if (b->failed)
		w->body.failed = true;
	snap_buf_free(b);
}

static void add_layout(struct snap_writer *w, struct vm *vm)
{
	struct snap_buf b = { 0 };
	uint64_t offset = 0;

	snap_put_u32(&b, (uint32_t)vm->num_vcpus);
	snap_put_u32(&b, (uint32_t)vm->mem_map->nr_slots);
	for (int i = 0; i < vm->mem_map->nr_slots; i++) {
		const struct mem_slot *s = &vm->mem_map->slots[i];

		snap_put_u64(&b, s->gpa);
		snap_put_u64(&b, s->size);
		snap_put_u64(&b, offset);
		offset += s->size;
	}
	add_buf(w, SEC_LAYOUT, 0, &b);
}

static int add_cpu_state(struct snap_writer *w, struct vm *vm, char *why, size_t len)
{
	struct snap_buf b = { 0 };
	int err = vm_state_save(vm, &b);

	if (err) {
		snap_buf_free(&b);
		return fail_why(-err, why, len,
				"the VM's interrupt and clock state: %s", strerror(-err));
	}
	add_buf(w, SEC_VM, 0, &b);
	for (int i = 0; i < VM_MAX_VCPUS; i++) {
		if (!vm->vcpus[i])
			continue;
		err = vcpu_state_save(vm->vcpus[i], &b);
		if (err) {
			snap_buf_free(&b);
			return fail_why(-err, why, len, "vCPU %d: %s", i, strerror(-err));
		}
		add_buf(w, SEC_VCPU, (uint32_t)i, &b);
	}
	return 0;
}

static int add_device(struct snap_writer *w, struct device *d, int i, char *why, size_t len)
{
	struct snap_buf b = { 0 };
	size_t name_len = strnlen(d->name, NAME_MAX_LEN);
	int err = 0;

	if (!d->stateless && !d->save)
		return fail_why(EOPNOTSUPP, why, len, "%s: this device cannot be snapshotted",
				d->name);
	snap_put_u16(&b, (uint16_t)name_len);
	snap_put_bytes(&b, d->name, name_len);
	snap_put_u64(&b, d->base);
	snap_put_u64(&b, d->size);
	snap_put_u8(&b, d->stateless);
	if (!d->stateless)
		err = d->save(d, &b);
	if (err) {
		snap_buf_free(&b);
		return fail_why(-err, why, len, "%s: %s", d->name, err == -EOPNOTSUPP ?
				"cannot be snapshotted in this configuration" : strerror(-err));
	}
	add_buf(w, SEC_DEVICE, (uint32_t)i, &b);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t zero[PAGE];

	return !memcmp(p, zero, n);
}

static int write_all(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* One slot at `off`: runs of pages with data written, zero pages skipped
 * (holes: the file was truncated to nothing first). */
static int write_slot(int fd, const struct mem_slot *s, off_t off)
{
	uint64_t run = 0, start = 0;

	for (uint64_t p = 0; p <= s->size; p += PAGE) {
		bool data = p < s->size && !all_zero(s->hva + p, MIN(PAGE, s->size - p));

		if (data) {
			start = run ? start : p;
			run += MIN(PAGE, s->size - p);
			continue;
		}
		if (run) {
			int err = write_all(fd, s->hva + start, (size_t)run, off + (off_t)start);

			if (err)
				return err;
		}
		run = 0;
	}
	return 0;
}

/* Into mem_fd, from nothing: slot after slot, holes where RAM is zero. */
static int write_memory(struct vm *vm, int fd)
{
	off_t off = 0;
	int err = ftruncate(fd, 0) ? -errno : 0;

	for (int i = 0; !err && i < vm->mem_map->nr_slots; i++) {
		err = write_slot(fd, &vm->mem_map->slots[i], off);
		off += (off_t)vm->mem_map->slots[i].size;
	}
	if (!err && ftruncate(fd, off))
		err = -errno;
	if (!err && fsync(fd))
		err = -errno;
	return err;
}

static int write_state_fd(int fd, const uint8_t *bytes, size_t n)
{
	int err = ftruncate(fd, 0) ? -errno : 0;

	if (!err)
		err = write_all(fd, bytes, n, 0);
	if (!err && fsync(fd))
		err = -errno;
	return err;
}

static int collect(struct snap_writer *w, struct vm *vm, const void *app, size_t app_len,
		   char *why, size_t len)
{
	int err;

	add_layout(w, vm);
	snap_add(w, SEC_APP, 0, app, app_len);
	err = add_cpu_state(w, vm, why, len);
	for (int i = 0; !err && i < vm->num_devices; i++)
		err = add_device(w, vm->devices[i], i, why, len);
	return err;
}

/* The state file's bytes, the devices quiesced meanwhile. */
static int state_bytes(struct vm *vm, const void *app, size_t app_len, uint8_t **bytes,
		       size_t *n, char *why, size_t len)
{
	struct snap_writer w;
	int err;

	if (vm_run_state(vm) != VM_RUN_PAUSED)
		return fail_why(EBUSY, why, len, "the VM is not paused");
	err = quiesce_devices(vm, why, len);
	if (err)
		return err;
	snap_writer_init(&w, arch_snapshot_id());
	err = collect(&w, vm, app, app_len, why, len);
	if (!err && (err = snap_file_bytes(&w, bytes, n)))
		fail_why(-err, why, len, "the state: %s", strerror(-err));
	snap_writer_free(&w);
	return err;
}

int vm_snapshot_fds(struct vm *vm, int state_fd, int mem_fd, const void *app, size_t app_len,
		    char *why, size_t why_len)
{
	uint8_t *bytes = NULL;
	size_t n = 0;
	int err;

	if (!vm || state_fd < 0 || mem_fd < 0 || (app_len && !app))
		return fail_why(EINVAL, why, why_len, "bad arguments");
	err = state_bytes(vm, app, app_len, &bytes, &n, why, why_len);
	if (err)
		return err;
	err = write_memory(vm, mem_fd);
	if (err)
		fail_why(-err, why, why_len, "the memory file: %s", strerror(-err));
	else if ((err = write_state_fd(state_fd, bytes, n)))
		fail_why(-err, why, why_len, "the state file: %s", strerror(-err));
	free(bytes);
	unquiesce_devices(vm);
	return err;
}

/* The state file whole or not at all: written beside it, renamed. */
int vm_snapshot(struct vm *vm, const char *state_path, const char *mem_path, const void *app,
		size_t app_len, char *why, size_t why_len)
{
	char *tmp = NULL;
	int state_fd = -1, mem_fd = -1, err = 0;

	if (!vm || !state_path || !mem_path)
		return fail_why(EINVAL, why, why_len, "bad arguments");
	if (asprintf(&tmp, "%s.tmp", state_path) < 0)
		return fail_why(ENOMEM, why, why_len, "out of memory");
	state_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (state_fd < 0)
		err = fail_why(errno, why, why_len, "%s: %s", state_path, strerror(errno));
	mem_fd = err ? -1 : open(mem_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (!err && mem_fd < 0)
		err = fail_why(errno, why, why_len, "%s: %s", mem_path, strerror(errno));
	if (!err)
		err = vm_snapshot_fds(vm, state_fd, mem_fd, app, app_len, why, why_len);
	if (!err && rename(tmp, state_path))
		err = fail_why(errno, why, why_len, "%s: %s", state_path, strerror(errno));
	if (mem_fd >= 0)
		close(mem_fd);
	if (state_fd >= 0)
		close(state_fd);
	if (err)
		unlink(tmp);
	free(tmp);
	return err;
}

/* ---- reading ---- */

/* The whole state file, bounded by the format's own limit. */
static int read_state_file(const char *path, uint8_t **out, size_t *out_len, char *why,
			   size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = SNAP_HEADER_LEN + SNAP_MAX_BODY + 1, n = 0;
	uint8_t *buf;
	struct stat st;

	if (fd < 0)
		return fail_why(errno, why, len, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < cap)
		cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	while (buf && n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!buf)
		return fail_why(ENOMEM, why, len, "out of memory");
	if (n > SNAP_HEADER_LEN + SNAP_MAX_BODY) {
		free(buf);
		return fail_why(EFBIG, why, len, "%s: too big for a snapshot state file", path);
	}
	*out = buf;
	*out_len = n;
	return 0;
}

/* Read and check the state file: *buf holds it, *f its sections. */
static int open_state(const char *path, uint8_t **buf, struct snap_file *f, char *why,
		      size_t len)
{
	char reason[256];
	size_t n = 0;
	int err = read_state_file(path, buf, &n, why, len);

	if (err)
		return err;
	err = snap_parse(*buf, n, arch_snapshot_id(), f, reason, sizeof(reason));
	if (err) {
		free(*buf);
		*buf = NULL;
		return fail_why(-err, why, len, "%s: %s", path, reason);
	}
	return 0;
}

int vm_snapshot_app_data(const char *state_path, void **app, size_t *app_len, char *why,
			 size_t why_len)
{
	const struct snap_section *s;
	struct snap_file f;
	uint8_t *buf;
	int err = open_state(state_path, &buf, &f, why, why_len);

	if (err)
		return err;
	*app = NULL;
	*app_len = 0;
	s = snap_find(&f, SEC_APP, 0);
	if (s && s->len && !(*app = malloc((size_t)s->len)))
		err = fail_why(ENOMEM, why, why_len, "out of memory");
	if (s && *app) {
		memcpy(*app, s->payload, (size_t)s->len);
		*app_len = (size_t)s->len;
	}
	snap_file_free(&f);
	free(buf);
	return err;
}

/* ---- restoring ---- */

struct layout {
	uint32_t vcpus, slots;
	struct { uint64_t gpa, size, offset; } slot[MM_MAX_SLOTS];
	uint64_t total;
};

static int parse_layout(const struct snap_file *f, struct layout *l, char *why, size_t len)
{
	const struct snap_section *s = snap_find(f, SEC_LAYOUT, 0);
	struct snap_cursor c;

	if (!s)
		return fail_why(EINVAL, why, len, "the snapshot has no RAM layout");
	c = snap_cursor_of(s);
	*l = (struct layout){ .vcpus = snap_get_u32(&c), .slots = snap_get_u32(&c) };
	if (l->vcpus < 1 || l->vcpus > VM_MAX_VCPUS || l->slots < 1 || l->slots > MM_MAX_SLOTS)
		return fail_why(EINVAL, why, len, "the snapshot's layout is malformed");
	for (uint32_t i = 0; i < l->slots; i++) {
		l->slot[i].gpa = snap_get_u64(&c);
		l->slot[i].size = snap_get_u64(&c);
		l->slot[i].offset = snap_get_u64(&c);
		if (l->slot[i].offset != l->total || l->slot[i].size > UINT64_MAX - l->total)
			return fail_why(EINVAL, why, len, "the snapshot's layout is malformed");
		l->total += l->slot[i].size;
	}
	if (!snap_cursor_done(&c))
		return fail_why(EINVAL, why, len, "the snapshot's layout is malformed");
	return 0;
}

/* The VM was built with the same RAM as the saved one. */
static int check_ram(const struct vm *vm, const struct layout *l, char *why, size_t len)
{
	const struct mem_map *mm = vm->mem_map;

	if ((uint32_t)mm->nr_slots != l->slots)
		return fail_why(EINVAL, why, len, "the VM has %d RAM slots, the snapshot %u",
				mm->nr_slots, l->slots);
	for (uint32_t i = 0; i < l->slots; i++)
		if (mm->slots[i].gpa != l->slot[i].gpa || mm->slots[i].size != l->slot[i].size)
			return fail_why(EINVAL, why, len,
					"RAM slot %u: the VM has %llu bytes at 0x%llx, the snapshot %llu at 0x%llx",
					i, (unsigned long long)mm->slots[i].size,
					(unsigned long long)mm->slots[i].gpa,
					(unsigned long long)l->slot[i].size,
					(unsigned long long)l->slot[i].gpa);
	return 0;
}

struct dev_header {
	char name[NAME_MAX_LEN + 1];
	uint64_t base, size;
	bool stateless;
	struct snap_cursor payload;
};

static int parse_dev_header(const struct snap_section *s, struct dev_header *h)
{
	struct snap_cursor c = snap_cursor_of(s);
	uint16_t n = snap_get_u16(&c);

	if (n > NAME_MAX_LEN)
		return -EINVAL;
	memset(h->name, 0, sizeof(h->name));
	snap_get_bytes(&c, h->name, n);
	h->base = snap_get_u64(&c);
	h->size = snap_get_u64(&c);
	h->stateless = snap_get_u8(&c) != 0;
	h->payload = c;
	return c.bad || (h->stateless && c.left) || memchr(h->name, 0, n) ? -EINVAL : 0;
}

static unsigned count_tag(const struct snap_file *f, uint32_t tag)
{
	unsigned n = 0;

	for (unsigned i = 0; i < f->nr; i++)
		n += f->sections[i].tag == tag;
	return n;
}

/* The VM has the saved devices, in the saved order, and each can load. */
static int check_devices(const struct snap_file *f, const struct vm *vm, char *why, size_t len)
{
	if (count_tag(f, SEC_DEVICE) != (unsigned)vm->num_devices)
		return fail_why(EINVAL, why, len, "the VM has %d devices, the snapshot %u",
				vm->num_devices, count_tag(f, SEC_DEVICE));
	for (int i = 0; i < vm->num_devices; i++) {
		const struct snap_section *s = snap_find(f, SEC_DEVICE, (uint32_t)i);
		const struct device *d = vm->devices[i];
		struct dev_header h;

		if (!s || parse_dev_header(s, &h))
			return fail_why(EINVAL, why, len,
					"the snapshot's device %d is malformed", i);
		if (strcmp(h.name, d->name) || h.base != d->base || h.size != d->size ||
		    h.stateless != d->stateless)
			return fail_why(EINVAL, why, len,
					"device %d: the VM has %s at 0x%llx, the snapshot %s at 0x%llx", i,
					d->name, (unsigned long long)d->base, h.name,
					(unsigned long long)h.base);
		if (!d->stateless && !d->load)
			return fail_why(EOPNOTSUPP, why, len, "%s: cannot be restored", d->name);
	}
	return 0;
}

static int check_vcpus(const struct snap_file *f, const struct layout *l, char *why, size_t len)
{
	if (!snap_find(f, SEC_VM, 0) || count_tag(f, SEC_VCPU) != l->vcpus)
		return fail_why(EINVAL, why, len, "the snapshot's CPU state is incomplete");
	for (uint32_t i = 0; i < l->vcpus; i++)
		if (!snap_find(f, SEC_VCPU, i))
			return fail_why(EINVAL, why, len,
					"the snapshot has no state for vCPU %u", i);
	return 0;
}

static int read_all_at(int fd, uint8_t *p, uint64_t n, off_t off)
{
	while (n) {
		ssize_t r = pread(fd, p, (size_t)MIN(n, 1ULL << 30), off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		n -= (uint64_t)r;
		off += r;
	}
	return 0;
}

/* Guest RAM from the file: mapped copy-on-write over the library's own
 * RAM (the memory slots keep their addresses, so the hypervisor follows),
 * or read into it (asked for, or RAM the program supplied). */
static int load_memory(struct vm *vm, const char *path, const struct layout *l, bool read_in,
		       char *why, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
	struct stat st;

	if (fd < 0)
		return fail_why(errno, why, len, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st))
		err = fail_why(errno, why, len, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != l->total)
		err = fail_why(EINVAL, why, len,
			       "%s: not the snapshot's memory file (%llu bytes, want %llu)",
			       path, (unsigned long long)st.st_size, (unsigned long long)l->total);
	for (uint32_t i = 0; !err && i < l->slots; i++) {
		struct mem_slot *s = &vm->mem_map->slots[i];

		if (read_in || !s->owned)
			err = read_all_at(fd, s->hva, s->size, (off_t)l->slot[i].offset);
		else if (mmap(s->hva, s->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
			      (off_t)l->slot[i].offset) == MAP_FAILED)
			err = -errno;
		if (err)
			fail_why(-err, why, len, "%s: %s", path, strerror(-err));
	}
	close(fd);
	return err;
}

static int load_cpus(const struct snap_file *f, struct vm *vm, const struct layout *l,
		     char *why, size_t len)
{
	struct snap_cursor c;
	int err;

	for (uint32_t i = 0; i < l->vcpus; i++)
		if (!vm_create_vcpu(vm, (int)i))
			return fail_why(errno, why, len,
					"cannot create vCPU %u: %s", i, strerror(errno));
	c = snap_cursor_of(snap_find(f, SEC_VM, 0));
	err = vm_state_load(vm, &c);
	if (err)
		return fail_why(-err, why, len,
				"the VM's interrupt and clock state: %s", strerror(-err));
	for (uint32_t i = 0; i < l->vcpus; i++) {
		c = snap_cursor_of(snap_find(f, SEC_VCPU, i));
		err = vcpu_state_load(vm->vcpus[i], &c);
		if (err)
			return fail_why(-err, why, len, "vCPU %u: %s", i, strerror(-err));
	}
	return 0;
}

static int load_devices(const struct snap_file *f, struct vm *vm, char *why, size_t len)
{
	for (int i = 0; i < vm->num_devices; i++) {
		struct device *d = vm->devices[i];
		struct dev_header h;
		int err;

		if (d->stateless)
			continue;
		parse_dev_header(snap_find(f, SEC_DEVICE, (uint32_t)i), &h);
		err = d->load(d, &h.payload);
		if (err)
			return fail_why(-err, why, len, "%s: %s", d->name, err == -EINVAL ?
					"its saved state is malformed" : strerror(-err));
	}
	return 0;
}

int vm_restore(struct vm *vm, const char *state_path, const char *mem_path,
	       const struct vm_restore_options *o, char *why, size_t why_len)
{
	struct snap_file f = { 0 };
	struct layout l = { 0 };
	uint8_t *buf = NULL;
	int err;

	if (!vm || !state_path || !mem_path)
		return fail_why(EINVAL, why, why_len, "bad arguments");
	if (vm_run_state(vm) != VM_RUN_CREATED || vm->num_vcpus)
		return fail_why(EBUSY, why, why_len, "the VM must be built but have no vCPU yet");
	if (!vm->ops->vcpu_state_load || !vm->ops->vm_state_load)
		return fail_why(EOPNOTSUPP, why, why_len, "snapshots are not supported on %s",
				vm->ops->name);
	err = open_state(state_path, &buf, &f, why, why_len);
	/* Everything checked before anything changes. */
	if (!err)
		err = parse_layout(&f, &l, why, why_len);
	if (!err)
		err = check_ram(vm, &l, why, why_len);
	if (!err)
		err = check_vcpus(&f, &l, why, why_len);
	if (!err)
		err = check_devices(&f, vm, why, why_len);
	if (!err)
		err = load_memory(vm, mem_path, &l, o && o->read_memory, why, why_len);
	if (!err)
		err = load_cpus(&f, vm, &l, why, why_len);
	if (!err)
		err = load_devices(&f, vm, why, why_len);
	snap_file_free(&f);
	free(buf);
	return err;
}
