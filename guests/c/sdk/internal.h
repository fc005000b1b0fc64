/*
 * What the SDK's files share and guests do not see.
 */
#ifndef OUT_WASM_GUEST_INTERNAL_H
#define OUT_WASM_GUEST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "http_output_plugin.h"

/* When the host stops the call running now (a flush, idle or exit), in monotonic-clock
 * nanoseconds; has_deadline is false outside those calls and with `wasm_deadlines off`. */
struct owg_call {
    bool has_deadline;
    uint64_t deadline;
};
extern struct owg_call owg_current_call;

/* A malloc'd, NUL-terminated copy of a WIT string. */
char *owg_string_dup(const http_output_plugin_string_t *s);

#endif
