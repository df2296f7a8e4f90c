/* SPDX-License-Identifier: MIT */
/*
 * The Firecracker-compatible API socket: a Unix socket served on its own
 * thread, one request at a time. Configuration requests change the server's
 * struct fc_config; actions (InstanceStart, SendCtrlAltDel, FlushMetrics,
 * pause and resume, a drive's new image) are handed to the thread that owns the VM (cli/main.c),
 * which runs them between its other work (api_run_pending) and answers.
 */
#ifndef VIBEVMM_CLI_API_API_H
#define VIBEVMM_CLI_API_API_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/api/fc_config.h"

enum api_state { API_NOT_STARTED, API_RUNNING, API_PAUSED };

enum api_action {
	API_INSTANCE_START, API_CTRL_ALT_DEL, API_FLUSH_METRICS, API_PAUSE, API_RESUME,
	API_PATCH_DRIVE, API_SNAPSHOT_CREATE, API_SNAPSHOT_LOAD,
};

/* What an action is about: PATCH /drives' drive (its index in
 * fc->drives) and its new image; a snapshot's state and memory files and
 * whether a loaded one runs at once. Valid while the action runs. */
struct api_args {
	int drive;
	const char *path;
	const char *mem_path;
	bool resume;
	const struct snap_override *overrides; /* snapshot/load's network_overrides */
	int nr_overrides;
};

/* What the VM's owner does for the API, on its own thread. */
struct api_ops {
	/* 0, or -errno with the fault message in err. The API thread waits
	 * meanwhile: the action may change the server's struct fc_config. */
	int (*action)(void *opaque, enum api_action a, const struct api_args *args, char *err,
		      size_t errlen);
	/* After a successful InstanceStart, on the API thread: confine it
	 * (the VM's sandbox). 0 or -errno: then the server ends. */
	int (*confine)(void *opaque);
	void *opaque;
};

struct api_server;

/*
 * Bind `path` (0600; an existing socket file is replaced, anything else is
 * refused) and start serving. fc is the configuration the requests edit:
 * owned by the caller, not touched by the server outside requests (and
 * read-only once the VM runs). 0, or -errno with a one-line reason in why.
 */
int api_server_start(struct api_server **out, const char *path, struct fc_config *fc,
		     const struct api_ops *ops, char *why, size_t why_len);

/* Readable when an action waits for api_run_pending(); -1 without a server. */
int api_server_fd(const struct api_server *s);

/* Run the waiting action, if any, through ops->action, and answer it. */
void api_run_pending(struct api_server *s);

/* What GET / says (the owner sets it as the VM starts, pauses, resumes). */
void api_set_state(struct api_server *s, enum api_state state);

/* Stop serving: actions still waiting fail, the thread ends, the socket
 * file is removed. NULL is fine. */
void api_server_stop(struct api_server *s);

#endif
