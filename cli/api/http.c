/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 requests as the Firecracker API's clients send them (curl, Go's
 * net/http, python's http.client): a request line, headers, and a body of
 * Content-Length bytes. Strict where leniency would only hide bugs or open
 * smuggling games: CRLF line ends, no folded headers, no chunked bodies,
 * one Content-Length (repeats must agree), no control bytes.
 */
#include <string.h>
#include <strings.h>

#include "cli/api/http.h"

#define MAX_METHOD 10

/* A view of bytes inside the request buffer. */
struct span {
	const char *p;
	size_t n;
};

static bool is_tchar(char c)
{
	/* RFC 9110 token characters */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool span_is(struct span s, const char *word)
{
	return s.n == strlen(word) && !strncasecmp(s.p, word, s.n);
}

/* Cut the next CRLF-ended line off *rest; false when there is none or a
 * bare CR or LF sits inside it. */
static bool next_line(struct span *rest, struct span *line)
{
	const char *crlf = memmem(rest->p, rest->n, "\r\n", 2);
	size_t n;

	if (!crlf)
		return false;
	n = (size_t)(crlf - rest->p);
	if (memchr(rest->p, '\r', n) || memchr(rest->p, '\n', n))
		return false;
	*line = (struct span){ rest->p, n };
	rest->p += n + 2;
	rest->n -= n + 2;
	return true;
}

static enum http_method method_of(struct span m)
{
	if (m.n == 3 && !memcmp(m.p, "GET", 3))
		return HTTP_GET;
	if (m.n == 3 && !memcmp(m.p, "PUT", 3))
		return HTTP_PUT;
	if (m.n == 5 && !memcmp(m.p, "PATCH", 5))
		return HTTP_PATCH;
	return HTTP_OTHER;
}

/* "METHOD /path[?query] HTTP/1.x" */
static long parse_request_line(struct span line, struct http_request *req, bool *http10)
{
	const char *sp1 = memchr(line.p, ' ', line.n), *sp2, *end = line.p + line.n;
	struct span method, target, version;
	size_t path_len;

	if (!sp1 || sp1 == line.p || (size_t)(sp1 - line.p) > MAX_METHOD)
		return -400;
	method = (struct span){ line.p, (size_t)(sp1 - line.p) };
	for (size_t i = 0; i < method.n; i++)
		if (!is_tchar(method.p[i]))
			return -400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -400;
	target = (struct span){ sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	version = (struct span){ sp2 + 1, (size_t)(end - sp2 - 1) };
	if (version.n != 8 || memcmp(version.p, "HTTP/", 5))
		return -400;
	if (memcmp(version.p + 5, "1.1", 3) && memcmp(version.p + 5, "1.0", 3))
		return -505;
	*http10 = version.p[7] == '0';
	if (target.p[0] != '/')
		return -400;
	for (size_t i = 0; i < target.n; i++)
		if ((unsigned char)target.p[i] <= ' ' || (unsigned char)target.p[i] >= 0x7f)
			return -400;
	path_len = target.n;
	if (memchr(target.p, '?', target.n))
		path_len = (size_t)((const char *)memchr(target.p, '?', target.n) - target.p);
	if (path_len >= HTTP_MAX_PATH)
		return -414;
	memcpy(req->path, target.p, path_len);
	req->path[path_len] = '\0';
	req->method = method_of(method);
	memcpy(req->method_name, method.p, method.n);
	req->method_name[method.n] = '\0';
	return 0;
}

/* Content-Length: digits only, at most HTTP_MAX_REQUEST. */
static long parse_length(struct span v, size_t *out)
{
	size_t n = 0;

	if (!v.n)
		return -400;
	for (size_t i = 0; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -400;
		n = n * 10 + (size_t)(v.p[i] - '0');
		if (n > HTTP_MAX_REQUEST)
			return -413;
	}
	*out = n;
	return 0;
}

struct headers {
	bool have_length, close, keep_alive;
	size_t length;
};

/* One "Name: value" line; the headers the server acts on are noted. */
static long parse_header(struct span line, struct headers *h, struct http_request *req)
{
	const char *colon = memchr(line.p, ':', line.n);
	struct span name, value;
	size_t len;
	long err;

	if (!colon || colon == line.p)
		return -400; /* also a folded line: it starts with a space */
	name = (struct span){ line.p, (size_t)(colon - line.p) };
	for (size_t i = 0; i < name.n; i++)
		if (!is_tchar(name.p[i]))
			return -400;
	value = (struct span){ colon + 1, (size_t)(line.p + line.n - colon - 1) };
	for (size_t i = 0; i < value.n; i++)
		if (((unsigned char)value.p[i] < ' ' && value.p[i] != '\t') || value.p[i] == 0x7f)
			return -400;
	while (value.n && (value.p[0] == ' ' || value.p[0] == '\t'))
		value.p++, value.n--;
	while (value.n && (value.p[value.n - 1] == ' ' || value.p[value.n - 1] == '\t'))
		value.n--;
	if (span_is(name, "Transfer-Encoding"))
		return -411;
	if (span_is(name, "Content-Length")) {
		err = parse_length(value, &len);
		if (err)
			return err;
		if (h->have_length && h->length != len)
			return -400;
		h->have_length = true;
		h->length = len;
	} else if (span_is(name, "Connection")) {
		h->close |= span_is(value, "close");
		h->keep_alive |= span_is(value, "keep-alive");
	} else if (span_is(name, "Expect")) {
		if (!span_is(value, "100-continue"))
			return -400; /* 417 in theory; no client sends another */
		req->expect_continue = true;
	}
	return 0;
}

long http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	size_t window = len < HTTP_MAX_REQUEST ? len : HTTP_MAX_REQUEST;
	const char *end = memmem(buf, window, "\r\n\r\n", 4);
	struct span rest, line;
	struct headers h = { 0 };
	bool http10 = false;
	size_t head_len;
	long err;

	*req = (struct http_request){ .method = HTTP_OTHER };
	if (!end) {
		/* A bare LF ends no line here: say so now, not at the timeout. */
		const char *lf = memchr(buf, '\n', window);

		if (lf && (lf == buf || lf[-1] != '\r'))
			return -400;
		return len >= HTTP_MAX_REQUEST ? -413 : 0;
	}
	head_len = (size_t)(end - buf) + 4;
	rest = (struct span){ buf, head_len - 2 }; /* every line with its CRLF */
	if (!next_line(&rest, &line))
		return -400;
	err = parse_request_line(line, req, &http10);
	if (err)
		return err;
	while (rest.n) {
		if (!next_line(&rest, &line))
			return -400;
		err = parse_header(line, &h, req);
		if (err)
			return err;
	}
	req->keep_alive = http10 ? h.keep_alive && !h.close : !h.close;
	req->headers_done = true;
	if (h.length > HTTP_MAX_REQUEST - head_len)
		return -413;
	req->body = buf + head_len;
	req->body_len = h.length;
	if (len < head_len + h.length)
		return 0;
	return (long)(head_len + h.length);
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 500: return "Internal Server Error";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}
