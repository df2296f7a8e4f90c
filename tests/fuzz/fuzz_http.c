/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the API socket's input: the HTTP request parser
 * (cli/api/http.c) on the whole input, as a client could send it in one or
 * many reads, and every complete request's body through the Firecracker
 * JSON mapping (cli/api/fc_config.c) of each section and as a config file.
 * Checks the parser's promises: a request never claims more bytes than it
 * was given, its body lies inside them, its path is NUL-terminated.
 *
 * FUZZ_SRCS: cli/api/http.c cli/api/fc_config.c cli/api/fc_export.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api/fc_config.h"
#include "cli/api/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *buf, size_t len, long n, const struct http_request *r)
{
	if (n > (long)len)
		abort();
	if (n > 0 && (r->body < buf || r->body + r->body_len > buf + n))
		abort();
	if (memchr(r->path, '\0', sizeof(r->path)) == NULL)
		abort();
}

/* The body as PATCH /drives/rootfs, /network-interfaces/eth0 and
 * /machine-config of a VM with a root drive, drive "rootfs" and interface
 * "eth0". */
static void patch_body(const char *body, size_t len)
{
	static const char root[] = "{\"drive_id\":\"root\",\"path_on_host\":\"/r\","
				   "\"is_root_device\":true}";
	static const char data[] = "{\"drive_id\":\"rootfs\",\"path_on_host\":\"/d\","
				   "\"is_root_device\":false}";
	static const char net[] = "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}";
	struct fc_config fc;
	char err[512], *path = NULL;
	int drive = -1;

	fc_config_init(&fc);
	if (fc_apply(&fc, FC_DRIVE, "root", root, sizeof(root) - 1, err, sizeof(err)) ||
	    fc_apply(&fc, FC_DRIVE, "rootfs", data, sizeof(data) - 1, err, sizeof(err)) ||
	    fc_apply(&fc, FC_NET, "eth0", net, sizeof(net) - 1, err, sizeof(err)))
		abort();
	if (!fc_patch_drive(&fc, "rootfs", body, len, &drive, &path, err, sizeof(err)) && path) {
		if (drive != 1 || fc_drive_disk(&fc, drive) != 1)
			abort();
		fc_take_drive_path(&fc, drive, path);
	}
	fc_patch_net(&fc, "eth0", body, len, err, sizeof(err));
	fc_patch_machine_config(&fc, body, len, err, sizeof(err));
	if (fc.vcpus < 1 || fc.mem_mib < 1)
		abort();
	fc_config_free(&fc);
}

/* The body as PUT /snapshot/create and /snapshot/load. */
static void snapshot_bodies(const char *body, size_t len)
{
	char err[512], *state, *mem;
	struct fc_snapshot_load l;

	if (!fc_snapshot_create(body, len, &state, &mem, err, sizeof(err)) && (!state || !mem))
		abort();
	free(state);
	free(mem);
	if (!fc_snapshot_load(body, len, &l, err, sizeof(err))) {
		if (!l.state_path || !l.mem_path)
			abort();
		for (int i = 0; i < l.nr_overrides; i++)
			if (!l.overrides[i].key || strlen(l.overrides[i].to) >= 16)
				abort();
	}
	fc_snapshot_load_free(&l);
}

/* The body through every section, then the whole-file form and PATCH. */
static void map_body(const char *body, size_t len)
{
	struct fc_config fc;
	char err[512];
	struct vmm_config cfg = { 0 };

	fc_config_init(&fc);
	for (int s = FC_BOOT_SOURCE; s <= FC_VSOCK; s++)
		fc_apply(&fc, (enum fc_section)s, s == FC_DRIVE ? "rootfs" : s == FC_NET ? "eth0" : NULL,
			 body, len, err, sizeof(err));
	fc_apply_file(&fc, body, len, err, sizeof(err));
	snapshot_bodies(body, len);
	fc_to_vmm_config(&fc, &cfg, err, sizeof(err));
	free(fc_vm_config_json(&fc));
	free(fc_machine_config_json(&fc));
	fc_config_free(&fc);
	patch_body(body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, exactly `size` long: ASan sees any read past it. */
	char *buf = malloc(size ? size : 1);
	struct http_request req;
	size_t off = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* Requests back to back, as on a kept-alive connection. */
	while (off < size) {
		long n = http_parse_request(buf + off, size - off, &req);

		check(buf + off, size - off, n, &req);
		if (n <= 0)
			break;
		map_body(req.body, req.body_len);
		off += (size_t)n;
	}
	/* Every prefix a read could end at must give "more" or the same answer. */
	for (size_t cut = 0; cut < size && cut < 64; cut++)
		check(buf, cut, http_parse_request(buf, cut, &req), &req);
	free(buf);
	return 0;
}
