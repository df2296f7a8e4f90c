/* SPDX-License-Identifier: MIT */
/*
 * A small HTTP/1.1 request parser for the API socket: one request from the
 * start of a buffer, its body sized by Content-Length. Pure (no I/O, no
 * allocation): fuzzed by tests/fuzz/fuzz_http.c.
 */
#ifndef VIBEVMM_CLI_API_HTTP_H
#define VIBEVMM_CLI_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* Request line, headers and body together: a client cannot make the
 * server hold more than this per connection. */
#define HTTP_MAX_REQUEST (64 * 1024)
#define HTTP_MAX_PATH 256

enum http_method { HTTP_GET, HTTP_PUT, HTTP_PATCH, HTTP_OTHER };

struct http_request {
	enum http_method method;
	char method_name[11];          /* as sent, for messages */
	char path[HTTP_MAX_PATH];      /* NUL-terminated, the query cut off */
	const char *body;              /* inside the parsed buffer */
	size_t body_len;
	bool keep_alive;               /* HTTP/1.1 without "Connection: close" */
	bool headers_done;             /* set even when the body is still due */
	bool expect_continue;          /* "Expect: 100-continue" */
};

/*
 * Parse one request from buf[0..len). Returns the bytes it took (request
 * complete), 0 when more bytes are needed (and the limit not yet hit), or
 * the negated HTTP status to answer with, the connection then closed:
 * -400 malformed, -411 no usable length (Transfer-Encoding), -413 over
 * HTTP_MAX_REQUEST, -414 path too long, -505 not HTTP/1.x.
 */
long http_parse_request(const char *buf, size_t len, struct http_request *req);

/* The reason phrase of a status code ("Bad Request"); "" if unknown. */
const char *http_reason(int status);

#endif
