/* SPDX-License-Identifier: MIT */
/*
 * The API's paths, methods and bodies, as Firecracker's: 204 with no body
 * for a change, 200 with JSON for a GET, 400 {"fault_message": "..."}
 * naming what was wrong. Configuration is only changed before the VM
 * starts (the server thread is the only writer then; the VM's owner reads
 * it during InstanceStart, while this thread waits for the answer).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api/internal.h"

#define API_ID "anonymous-instance"

static void fault(struct api_response *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fault(struct api_response *r, int status, const char *fmt, ...)
{
	char msg[API_FAULT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s}", "fault_message", msg);

	r->status = status;
	r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	/* (a message cut inside a UTF-8 sequence is not a JSON string) */
	if (!r->body)
		r->body = strdup("{\"fault_message\":\"bad request\"}");
}

static void json_body(struct api_response *r, char *body)
{
	if (!body)
		return fault(r, 500, "out of memory");
	r->status = 200;
	r->body = body;
}

static const char *state_name(enum api_state s)
{
	return s == API_NOT_STARTED ? "Not started" : s == API_PAUSED ? "Paused" : "Running";
}

static void get_instance(struct api_server *s, struct api_response *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id",
			      s->fc->instance_id ? s->fc->instance_id : API_ID, "state",
			      state_name(api_get_state(s)), "vmm_version", VIBEVMM_VERSION,
			      "app_name", "vibevmm");

	json_body(r, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
}

static void get_version(struct api_response *r)
{
	json_t *o = json_pack("{s:s}", "firecracker_version", VIBEVMM_VERSION);

	json_body(r, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
}

/* A pre-boot section: refused once the VM runs. */
static void put_section(struct api_server *s, const struct http_request *req,
			enum fc_section sec, const char *id, struct api_response *r)
{
	char err[API_FAULT_MAX];

	if (api_get_state(s) != API_NOT_STARTED)
		return fault(r, 400, "%s cannot be changed after the VM started", req->path);
	if (fc_apply(s->fc, sec, id, req->body, req->body_len, err, sizeof(err)))
		return fault(r, 400, "%s", err);
	r->status = 204;
}

static int action_of(const char *name, enum api_action *a)
{
	static const struct { const char *name; enum api_action a; } actions[] = {
		{ "InstanceStart", API_INSTANCE_START }, { "SendCtrlAltDel", API_CTRL_ALT_DEL },
		{ "FlushMetrics", API_FLUSH_METRICS },
	};

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(name, actions[i].name))
			return *a = actions[i].a, 0;
	return -1;
}

/* The one string field `key` of a body with nothing else in it. */
static int single_string(const struct http_request *req, const char *key, const char **out,
			 json_t **root, char *err, size_t len)
{
	json_error_t je;
	const char *k;
	json_t *v;

	*root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!*root)
		return snprintf(err, len, "bad JSON: %s", je.text), -1;
	if (!json_is_object(*root))
		return snprintf(err, len, "want a JSON object"), -1;
	json_object_foreach(*root, k, v)
		if (strcmp(k, key))
			return snprintf(err, len, "unknown field '%s'", k), -1;
	v = json_object_get(*root, key);
	if (!v)
		return snprintf(err, len, "missing field '%s'", key), -1;
	if (!json_is_string(v))
		return snprintf(err, len, "%s: want a string", key), -1;
	*out = json_string_value(v);
	return 0;
}

static void run_action(struct api_server *s, enum api_action a, const struct api_args *args,
		       struct api_response *r)
{
	char err[API_FAULT_MAX] = "";

	if (api_call(s, a, args, err, sizeof(err)))
		return fault(r, 400, "%s", *err ? err : "failed");
	r->status = 204;
}

static void put_actions(struct api_server *s, const struct http_request *req,
			struct api_response *r)
{
	char err[API_FAULT_MAX];
	const char *name;
	enum api_action a;
	json_t *root;

	if (single_string(req, "action_type", &name, &root, err, sizeof(err))) {
		json_decref(root);
		return fault(r, 400, "actions: %s", err);
	}
	if (action_of(name, &a)) {
		fault(r, 400, "actions: action_type: unknown '%.64s' (want InstanceStart, SendCtrlAltDel or FlushMetrics)",
		      name);
		json_decref(root);
		return;
	}
	json_decref(root);
	if (a == API_INSTANCE_START && api_get_state(s) != API_NOT_STARTED)
		return fault(r, 400, "actions: InstanceStart: the VM was started already");
	if (a == API_CTRL_ALT_DEL && api_get_state(s) == API_NOT_STARTED)
		return fault(r, 400, "actions: SendCtrlAltDel: the VM is not running");
	if (a == API_FLUSH_METRICS && !s->fc->metrics_path)
		return fault(r, 400, "actions: FlushMetrics: no metrics configured (PUT /metrics first)");
	run_action(s, a, NULL, r);
}

static void patch_vm(struct api_server *s, const struct http_request *req,
		     struct api_response *r)
{
	char err[API_FAULT_MAX];
	const char *state;
	json_t *root;
	enum api_action a;

	if (single_string(req, "state", &state, &root, err, sizeof(err))) {
		json_decref(root);
		return fault(r, 400, "vm: %s", err);
	}
	a = !strcmp(state, "Paused") ? API_PAUSE : API_RESUME;
	if (strcmp(state, "Paused") && strcmp(state, "Resumed")) {
		json_decref(root);
		return fault(r, 400, "vm: state: want \"Paused\" or \"Resumed\"");
	}
	json_decref(root);
	if (api_get_state(s) == API_NOT_STARTED)
		return fault(r, 400, "vm: state: the VM is not running (PUT /actions InstanceStart first)");
	run_action(s, a, NULL, r);
}

/* Some of machine-config's fields, before the start. */
static void patch_machine_config(struct api_server *s, const struct http_request *req,
				 struct api_response *r)
{
	char err[API_FAULT_MAX];

	if (api_get_state(s) != API_NOT_STARTED)
		return fault(r, 400, "%s cannot be changed after the VM started", req->path);
	if (fc_patch_machine_config(s->fc, req->body, req->body_len, err, sizeof(err)))
		return fault(r, 400, "%s", err);
	r->status = 204;
}

/* A paused VM to two files (the VMM's sandbox lets it create them). */
static void snapshot_create(struct api_server *s, const struct http_request *req,
			    struct api_response *r)
{
	char err[API_FAULT_MAX];
	struct api_args args = { 0 };
	char *state, *mem;

	if (api_get_state(s) != API_PAUSED)
		return fault(r, 400, "snapshot/create: the VM must be paused (PATCH /vm {\"state\": \"Paused\"})");
	if (fc_snapshot_create(req->body, req->body_len, &state, &mem, err, sizeof(err)))
		return fault(r, 400, "%s", err);
	args.path = state;
	args.mem_path = mem;
	run_action(s, API_SNAPSHOT_CREATE, &args, r);
	free(state);
	free(mem);
}

/* Instead of InstanceStart: the VM a snapshot saved, paused unless
 * resume_vm. */
static void snapshot_load(struct api_server *s, const struct http_request *req,
			  struct api_response *r)
{
	char err[API_FAULT_MAX];
	struct fc_snapshot_load l;
	struct api_args args;

	if (api_get_state(s) != API_NOT_STARTED)
		return fault(r, 400, "snapshot/load: a VM runs already (load into a fresh vibevmm)");
	if (fc_snapshot_load(req->body, req->body_len, &l, err, sizeof(err)))
		return fault(r, 400, "%s", err);
	args = (struct api_args){ .path = l.state_path, .mem_path = l.mem_path,
				  .resume = l.resume, .overrides = l.overrides,
				  .nr_overrides = l.nr_overrides };
	run_action(s, API_SNAPSHOT_LOAD, &args, r);
	fc_snapshot_load_free(&l);
}

/* A running VM's drive gets a new image (before the start, PUT it). */
static void patch_drive(struct api_server *s, const struct http_request *req, const char *id,
			struct api_response *r)
{
	char err[API_FAULT_MAX];
	struct api_args args = { 0 };
	char *path;

	if (api_get_state(s) == API_NOT_STARTED)
		return fault(r, 400, "drives: PATCH changes a running VM's drive; before InstanceStart, PUT /drives/%.64s",
			     id);
	if (fc_patch_drive(s->fc, id, req->body, req->body_len, &args.drive, &path, err,
			   sizeof(err)))
		return fault(r, 400, "%s", err);
	if (!path) {
		r->status = 204; /* nothing to change */
		return;
	}
	args.path = path;
	run_action(s, API_PATCH_DRIVE, &args, r);
	free(path);
}

static void patch_net(struct api_server *s, const struct http_request *req, const char *id,
		      struct api_response *r)
{
	char err[API_FAULT_MAX];

	if (api_get_state(s) == API_NOT_STARTED)
		return fault(r, 400, "network-interfaces: PATCH changes a running VM's interface; before InstanceStart, PUT /network-interfaces/%.64s",
			     id);
	if (fc_patch_net(s->fc, id, req->body, req->body_len, err, sizeof(err)))
		return fault(r, 400, "%s", err);
	r->status = 204;
}

/* "/drives/ID" -> ID (not empty, no further '/'), else NULL. */
static const char *id_in(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(path, prefix, n) || !path[n] || strchr(path + n, '/'))
		return NULL;
	return path + n;
}

struct route {
	const char *path;   /* exact, or a prefix ending in '/' for {id} */
	unsigned methods;   /* 1 << enum http_method */
};

#define M(m) (1u << (m))
static const struct route routes[] = {
	{ "/", M(HTTP_GET) }, { "/version", M(HTTP_GET) }, { "/vm/config", M(HTTP_GET) },
	{ "/machine-config", M(HTTP_GET) | M(HTTP_PUT) | M(HTTP_PATCH) },
	{ "/boot-source", M(HTTP_PUT) },
	{ "/drives/", M(HTTP_PUT) | M(HTTP_PATCH) },
	{ "/network-interfaces/", M(HTTP_PUT) | M(HTTP_PATCH) },
	{ "/logger", M(HTTP_PUT) }, { "/metrics", M(HTTP_PUT) }, { "/entropy", M(HTTP_PUT) },
	{ "/vsock", M(HTTP_PUT) }, { "/actions", M(HTTP_PUT) }, { "/vm", M(HTTP_PATCH) },
	{ "/snapshot/create", M(HTTP_PUT) }, { "/snapshot/load", M(HTTP_PUT) },
};

static const struct route *find_route(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *p = routes[i].path;
		size_t n = strlen(p);

		if (n > 1 && p[n - 1] == '/' ? id_in(path, p) != NULL : !strcmp(path, p))
			return &routes[i];
	}
	return NULL;
}

static void dispatch(struct api_server *s, const struct http_request *req,
		     struct api_response *r)
{
	const char *p = req->path, *id;

	if (!strcmp(p, "/"))
		return get_instance(s, r);
	if (!strcmp(p, "/version"))
		return get_version(r);
	if (!strcmp(p, "/vm/config"))
		return json_body(r, fc_vm_config_json(s->fc));
	if (!strcmp(p, "/machine-config") && req->method == HTTP_GET)
		return json_body(r, fc_machine_config_json(s->fc));
	if (!strcmp(p, "/machine-config") && req->method == HTTP_PATCH)
		return patch_machine_config(s, req, r);
	if (!strcmp(p, "/actions"))
		return put_actions(s, req, r);
	if (!strcmp(p, "/vm"))
		return patch_vm(s, req, r);
	if (!strcmp(p, "/snapshot/create"))
		return snapshot_create(s, req, r);
	if (!strcmp(p, "/snapshot/load"))
		return snapshot_load(s, req, r);
	if ((id = id_in(p, "/drives/")))
		return req->method == HTTP_PATCH ? patch_drive(s, req, id, r) :
		       put_section(s, req, FC_DRIVE, id, r);
	if ((id = id_in(p, "/network-interfaces/")))
		return req->method == HTTP_PATCH ? patch_net(s, req, id, r) :
		       put_section(s, req, FC_NET, id, r);
	put_section(s, req, !strcmp(p, "/machine-config") ? FC_MACHINE_CONFIG :
		    !strcmp(p, "/boot-source") ? FC_BOOT_SOURCE : !strcmp(p, "/logger") ? FC_LOGGER :
		    !strcmp(p, "/metrics") ? FC_METRICS : !strcmp(p, "/entropy") ? FC_ENTROPY :
		    FC_VSOCK, NULL, r);
}

void api_route(struct api_server *s, const struct http_request *req, struct api_response *r)
{
	const struct route *route = find_route(req->path);

	*r = (struct api_response){ 0 };
	if (!route)
		return fault(r, 400, "Invalid request method and/or path: %s %.200s",
			     req->method_name, req->path);
	if (!(route->methods & M(req->method)))
		return fault(r, 405, "%s is not allowed on %.200s", req->method_name,
			     req->path);
	dispatch(s, req, r);
}
