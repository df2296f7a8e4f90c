/* SPDX-License-Identifier: MIT */
/* Shared by cli/api/server.c (socket, thread, hand-over) and routes.c. */
#ifndef VIBEVMM_CLI_API_INTERNAL_H
#define VIBEVMM_CLI_API_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "cli/api/api.h"
#include "cli/api/http.h"

#define API_FAULT_MAX 512

/* An action handed to the VM's owner and its answer. */
struct api_mailbox {
	pthread_mutex_t lock;
	pthread_cond_t answered;
	bool pending, done, closing;
	enum api_action action;
	struct api_args args;
	int result;
	char fault[API_FAULT_MAX];
	enum api_state state;
};

struct api_server {
	struct fc_config *fc;
	struct api_ops ops;
	struct api_mailbox box;
	int wake_fd;      /* eventfd: an action waits (the owner polls it) */
	int stop_fd;      /* eventfd: the server should end */
	int listen_fd;
	char *path;
	pthread_t thread;
	bool confined;    /* the API thread keeps to the VM's sandbox */
};

struct api_response {
	int status;
	char *body; /* JSON, malloc'ed, or NULL */
};

/* Answer one request (routes.c). */
void api_route(struct api_server *s, const struct http_request *req, struct api_response *resp);

/* Hand an action to the owner and wait for its answer (server.c). */
int api_call(struct api_server *s, enum api_action a, const struct api_args *args, char *fault,
	     size_t len);
enum api_state api_get_state(struct api_server *s);

#endif
