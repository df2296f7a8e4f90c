/* SPDX-License-Identifier: MIT */
/*
 * The metrics file (Firecracker's PUT /metrics, --config-file "metrics",
 * --metrics-path): one JSON line per flush, on FlushMetrics, every
 * METRICS_PERIOD_MS while the VM runs, and once at the end. As Firecracker's,
 * each line counts what happened since the line before: vm_format_metrics'
 * totals less those of the last line written.
 */
#ifndef VIBEVMM_CLI_METRICS_OUT_H
#define VIBEVMM_CLI_METRICS_OUT_H

#include <stddef.h>

#include "vm.h"

#define METRICS_PERIOD_MS 60000

struct json_t;

struct metrics_out {
	int fd;          /* -1: no metrics configured */
	unsigned lost;   /* lines the reader was too slow for */
	struct json_t *written; /* the totals the last line written counted up to */
};

/* Open path for appending (a regular file, created 0600, or a FIFO with a
 * reader), never blocking. 0 or -errno. */
int metrics_out_open(struct metrics_out *m, const char *path);

/* Write the VM's metrics as one line. 0, -EAGAIN (the reader is full:
 * the line is dropped and counted) or another -errno. */
int metrics_out_flush(struct metrics_out *m, struct vm *vm);

void metrics_out_close(struct metrics_out *m);

#endif
