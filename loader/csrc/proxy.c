/*
 * The agent side of Fluent Bit's external-plugin ("Go proxy") ABI, as the agent does it
 * (src/flb_plugin_proxy.c, src/proxy/go/go.c of Fluent Bit 5.1): the same structs, symbols,
 * checks and call order, written in C so that the plugin under test meets the C layout, not a
 * Rust re-declaration of it.
 *
 * What the agent's core does around these calls (config, routing, retries, logging) is done by
 * the Rust side of the loader through the loader_* callbacks below.
 */
#define _GNU_SOURCE /* RTLD_NOLOAD, dlinfo */
#include <dlfcn.h>
#include <link.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loader_agent.h"

#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG 11

/* Fluent Bit 5.1.1's layout; older agents allocate a prefix of it (loader_agent_layout). */
struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;     /* 4.2.3 on */
    void *config_map;   /* 5.1.1 on */
};

struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};

struct flb_plugin_proxy_context {
    void *remote_context;
    void *proxy;
};

struct flbgo_output_plugin {
    char *name;
    void *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
    int (*cb_init)(struct flbgo_output_plugin *);
    int (*cb_flush)(const void *, size_t, const char *);
    int (*cb_flush_ctx)(void *, const void *, size_t, char *);
    int (*cb_exit)(void);
    int (*cb_exit_ctx)(void *);
};

/* Implemented by the Rust side. */
extern const char *loader_get_property(void *o_ins, const char *key);
extern int loader_log_check(void *o_ins, int level);
extern void loader_log(int level, const char *message);

static const char *api_output_get_property(const char *key, void *o_ins)
{
    return loader_get_property(o_ins, key);
}

static const char *api_input_get_property(const char *key, void *i_ins)
{
    (void) key;
    (void) i_ins;
    return NULL;
}

/* Like flb_output_get_cmt_instance: the instance's context (NULL when the loader plays an
 * agent without metrics). */
static void *api_output_get_cmt_instance(void *ins)
{
    return ((struct loader_output_instance *) ins)->cmt;
}

static void *api_input_get_cmt_instance(void *ins)
{
    (void) ins;
    return NULL;
}

/* Like flb_log_print: file and line are ignored, the message is formatted with vsnprintf. */
static void api_log_print(int level, const char *file, int line, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;

    (void) file;
    (void) line;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    loader_log(level, buf);
}

static int api_input_log_check(void *i_ins, int level)
{
    (void) i_ins;
    return level <= 3;
}

static int api_output_log_check(void *o_ins, int level)
{
    return loader_log_check(o_ins, level);
}

/* One table for the process, like the agent's flb_api. */
static struct flb_api api = {
    .output_get_property = api_output_get_property,
    .input_get_property = api_input_get_property,
    .output_get_cmt_instance = api_output_get_cmt_instance,
    .input_get_cmt_instance = api_input_get_cmt_instance,
    .log_print = api_log_print,
    .input_log_check = api_input_log_check,
    .output_log_check = api_output_log_check,
    .custom_get_property = api_output_get_property,
    .custom_log_check = api_output_log_check,
};

/*
 * `size` bytes (at most a page) that end where an inaccessible page begins: the agent's structs
 * are allocated this way so that a plugin writing past the end of one faults on that write.
 */
static void *guarded_alloc(size_t size)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    char *base;

    if (size == 0 || size > page) {
        return NULL;
    }
    base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        return NULL;
    }
    if (mprotect(base + page, page, PROT_NONE) != 0) {
        munmap(base, 2 * page);
        return NULL;
    }
    /* Every size here is a multiple of 8, so the struct keeps its alignment. */
    return base + page - size;
}

static void guarded_free(void *ptr)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);

    if (ptr) {
        munmap((void *) ((uintptr_t) ptr & ~(uintptr_t) (page - 1)), 2 * page);
    }
}

struct loader_plugin {
    void *handle;
    struct flb_plugin_proxy_def *def;
    size_t def_size;
    /* The agent's API table, of the played agent's length. */
    struct flb_api *api;
    /* One per .so, rewritten for every instance, as in go.c. */
    struct flbgo_output_plugin *go;
    int (*pre_exit)(int);
    void (*unregister)(struct flb_plugin_proxy_def *);
};

struct loader_instance {
    struct loader_plugin *plugin;
    struct flb_plugin_proxy_context *context;
    int (*cb_flush)(const void *, size_t, const char *);
    int (*cb_flush_ctx)(void *, const void *, size_t, char *);
    int (*cb_exit)(void);
    int (*cb_exit_ctx)(void *);
};

/*
 * dlopen(RTLD_LAZY), optional FLBPluginPreRegister, required FLBPluginRegister, and the
 * agent's checks of the definition. Returns NULL with a reason in err on failure.
 * With `legacy` set the loader acts as an agent that predates FlushCtx/ExitCtx and only looks
 * up FLBPluginFlush and FLBPluginExit.
 */
struct loader_plugin *loader_plugin_open(const char *path, int hot_reloading, int legacy,
                                         const struct loader_agent_layout *layout,
                                         char *err, size_t errlen)
{
    struct loader_plugin *p;
    int (*pre_register)(int);
    int (*cb_register)(struct flb_plugin_proxy_def *);
    size_t api_size = (size_t) layout->api_entries * sizeof(void (*)(void));
    int ret;

    if (layout->def_size < offsetof(struct flb_plugin_proxy_def, event_type) ||
        layout->def_size > sizeof(struct flb_plugin_proxy_def) || api_size > sizeof(api)) {
        snprintf(err, errlen, "no agent has a %zu-byte definition and %d API entries",
                 layout->def_size, layout->api_entries);
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->def_size = layout->def_size;
    p->api = guarded_alloc(api_size);
    p->go = guarded_alloc(sizeof(*p->go));
    p->def = guarded_alloc(layout->def_size);
    if (!p->api || !p->go || !p->def) {
        snprintf(err, errlen, "failed to map the agent's structs");
        goto fail_mapped;
    }
    memcpy(p->api, &api, api_size);
    memset(p->go, 0, sizeof(*p->go));
    /* flb_malloc before 4.2.3: what Register does not set is whatever the heap held. */
    memset(p->def, layout->def_zeroed ? 0 : 0xa5, layout->def_size);
    p->handle = dlopen(path, RTLD_LAZY);
    if (!p->handle) {
        snprintf(err, errlen, "dlopen failed: %s", dlerror());
        goto fail_mapped;
    }
    pre_register = (int (*)(int)) dlsym(p->handle, "FLBPluginPreRegister");
    if (pre_register && pre_register(hot_reloading) == -1) {
        snprintf(err, errlen, "FLBPluginPreRegister returned -1");
        goto fail;
    }
    cb_register = (int (*)(struct flb_plugin_proxy_def *)) dlsym(p->handle, "FLBPluginRegister");
    if (!cb_register) {
        snprintf(err, errlen, "no FLBPluginRegister symbol");
        goto fail;
    }
    ret = cb_register(p->def);
    if (ret == -1) {
        snprintf(err, errlen, "FLBPluginRegister returned -1");
        goto fail;
    }
    if (p->def->proxy != FLB_PROXY_GOLANG) {
        snprintf(err, errlen, "unsupported proxy type %i", p->def->proxy);
        goto fail;
    }
    if (p->def->type != FLB_PROXY_OUTPUT_PLUGIN) {
        snprintf(err, errlen, "the loader drives output plugins only, got type %i", p->def->type);
        goto fail;
    }
    if (!p->def->name) {
        snprintf(err, errlen, "FLBPluginRegister set no name");
        goto fail;
    }
    p->go->cb_init = (int (*)(struct flbgo_output_plugin *)) dlsym(p->handle, "FLBPluginInit");
    if (!p->go->cb_init) {
        snprintf(err, errlen, "no FLBPluginInit symbol");
        goto fail;
    }
    p->go->cb_flush = (int (*)(const void *, size_t, const char *)) dlsym(p->handle, "FLBPluginFlush");
    p->go->cb_exit = (int (*)(void)) dlsym(p->handle, "FLBPluginExit");
    if (!legacy) {
        p->go->cb_flush_ctx = (int (*)(void *, const void *, size_t, char *)) dlsym(p->handle, "FLBPluginFlushCtx");
        p->go->cb_exit_ctx = (int (*)(void *)) dlsym(p->handle, "FLBPluginExitCtx");
    }
    p->pre_exit = (int (*)(int)) dlsym(p->handle, "FLBPluginOutputPreExit");
    p->unregister = (void (*)(struct flb_plugin_proxy_def *)) dlsym(p->handle, "FLBPluginUnregister");
    return p;

fail:
    dlclose(p->handle);
fail_mapped:
    guarded_free(p->def);
    guarded_free(p->go);
    guarded_free(p->api);
    free(p);
    return NULL;
}

const char *loader_plugin_name(struct loader_plugin *p)
{
    return p->def->name;
}

const char *loader_plugin_description(struct loader_plugin *p)
{
    return p->def->description;
}

/* The definition's event types, or -1 for an agent whose definition has none (logs only). */
int loader_plugin_event_type(struct loader_plugin *p)
{
    if (p->def_size < offsetof(struct flb_plugin_proxy_def, event_type) + sizeof(int)) {
        return -1;
    }
    return p->def->event_type;
}

int loader_plugin_flags(struct loader_plugin *p)
{
    return p->def->flags;
}

/* FLBPluginInit for one instance: the shared plugin struct is rewritten, as in go.c. */
int loader_instance_init(struct loader_plugin *p, void *o_ins, struct loader_instance **out)
{
    struct loader_instance *ins;
    int ret;

    *out = NULL;
    ins = calloc(1, sizeof(*ins));
    ins->plugin = p;
    ins->context = guarded_alloc(sizeof(*ins->context));
    memset(ins->context, 0, sizeof(*ins->context));
    p->go->name = p->def->name;
    p->go->api = p->api;
    p->go->o_ins = o_ins;
    p->go->context = ins->context;
    ret = p->go->cb_init(p->go);
    if (ret <= 0) {
        guarded_free(ins->context);
        free(ins);
        return ret;
    }
    ins->cb_flush = p->go->cb_flush;
    ins->cb_flush_ctx = p->go->cb_flush_ctx;
    ins->cb_exit = p->go->cb_exit;
    ins->cb_exit_ctx = p->go->cb_exit_ctx;
    *out = ins;
    return ret;
}

/* A flush: FLBPluginFlushCtx if exported, else FLBPluginFlush; the tag is a fresh copy. */
int loader_instance_flush(struct loader_instance *ins, const void *data, size_t size, const char *tag)
{
    char *buf;
    int ret;

    buf = strdup(tag);
    if (ins->cb_flush_ctx) {
        ret = ins->cb_flush_ctx(ins->context->remote_context, data, size, buf);
    }
    else {
        ret = ins->cb_flush(data, size, buf);
    }
    free(buf);
    return ret;
}

/* FLBPluginOutputPreExit, then FLBPluginExitCtx if exported, else FLBPluginExit. */
int loader_instance_exit(struct loader_instance *ins, int hot_reloading)
{
    int ret = 0;

    if (ins->plugin->pre_exit) {
        ins->plugin->pre_exit(hot_reloading);
    }
    if (ins->cb_exit_ctx) {
        ret = ins->cb_exit_ctx(ins->context->remote_context);
    }
    else if (ins->cb_exit) {
        ret = ins->cb_exit();
    }
    guarded_free(ins->context);
    free(ins);
    return ret;
}

/* FLBPluginUnregister, free the definition, dlclose. */
void loader_plugin_close(struct loader_plugin *p)
{
    if (p->unregister) {
        p->unregister(p->def);
    }
    guarded_free(p->def);
    guarded_free(p->go);
    guarded_free(p->api);
    dlclose(p->handle);
    free(p);
}

/*
 * Plays an agent that exports flb_output_name and cmetrics (Fluent Bit is linked with
 * --export-dynamic): loads the agent-symbols library with global scope, so the plugin's
 * dlsym(RTLD_DEFAULT, ...) finds them, and connects it to the loader's sink.
 */
int loader_agent_symbols_load(const char *path, loader_cmt_sink sink, char *err, size_t errlen)
{
    void *handle;
    void (*set_sink)(loader_cmt_sink);

    handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        snprintf(err, errlen, "dlopen failed: %s", dlerror());
        return -1;
    }
    set_sink = (void (*)(loader_cmt_sink)) dlsym(handle, "loader_agent_set_sink");
    if (!set_sink) {
        snprintf(err, errlen, "no loader_agent_set_sink in %s", path);
        return -1;
    }
    set_sink(sink);
    /* Never closed: the plugin keeps the addresses it looked up. */
    return 0;
}

/*
 * After the last dlclose() of `path`: whether the library is still mapped (dlopen with
 * RTLD_NOLOAD finds it; the reference that takes is given back at once) and, if so, whether
 * its dynamic section marks it non-unloadable (DF_1_NODELETE, what `-z nodelete` sets), which
 * tells that flag apart from other reasons a library stays (a thread-local destructor of a
 * live thread also pins it). Returns 1 and sets *nodelete if mapped, 0 if unmapped.
 */
int loader_still_loaded(const char *path, int *nodelete)
{
    void *handle;
    struct link_map *map = NULL;
    const ElfW(Dyn) *dyn;

    handle = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) {
        return 0;
    }
    *nodelete = 0;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map) {
        for (dyn = map->l_ld; dyn->d_tag != DT_NULL; dyn++) {
            if (dyn->d_tag == DT_FLAGS_1 && (dyn->d_un.d_val & DF_1_NODELETE)) {
                *nodelete = 1;
            }
        }
    }
    dlclose(handle);
    return 1;
}
