
/*
 * Prometheus metrics, kept in one shared memory zone and served as text by
 * the location that says "game_metrics".
 *
 * Modules declare their metric families at configuration time: a name, a
 * help line, a type, and at most two labels whose values are all known
 * then (endpoints are locations, pools are declared, modes are declared),
 * so a scrape never meets a label set that configuration did not bound.
 *
 * Each worker owns one slot, a row of 64-bit cells that only it writes,
 * without locks or atomics; a scrape sums the rows.  Counters of a worker
 * that is gone stay in the sum (a counter never goes back), its gauges do
 * not.  A slot is taken at worker start under the zone's mutex: a free one
 * first, else one whose process is dead (kill -9), whose counters the new
 * owner goes on adding to.
 *
 * The zone's name carries a hash of the layout (families, label values,
 * buckets).  A reload with the same layout finds the zone of the previous
 * cycle and goes on counting in it; one that changes the layout gets a
 * new zone, which Prometheus sees as counters reset, while old workers
 * finish writing into the old one they still map.
 *
 * Gauges that are states rather than events (connections up, queries
 * waiting) are sampled: samplers run every second in each worker, and in
 * the scraping worker right before it answers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_core_internal.h"


#define NGX_GAME_METRICS_SLOTS      64      /* workers at once, old and new */
#define NGX_GAME_METRICS_MAX_VALUES 512     /* values of one label */
#define NGX_GAME_METRICS_SAMPLE     1000    /* ms between gauge samples */


struct ngx_game_metric_s {
    ngx_str_t                   name;
    ngx_str_t                   help;
    ngx_uint_t                  type;
    ngx_str_t                   label[2];   /* empty: no such label */
    ngx_array_t                 values[2];  /* ngx_str_t */
    const double               *buckets;    /* histograms, seconds */
    const char                **le;         /* the same, as text */
    ngx_uint_t                  nbuckets;
    ngx_uint_t                  offset;     /* first cell in a slot */
    ngx_game_metrics_conf_t    *conf;
};


typedef struct {
    ngx_pid_t                   pid;        /* 0: free */
    ngx_uint_t                  used;       /* has counted something */
} ngx_game_metrics_slot_t;


typedef struct {
    ngx_uint_t                  ncells;
    ngx_game_metrics_slot_t     slots[NGX_GAME_METRICS_SLOTS];
    int64_t                    *cells;      /* [slot][ncells] */
} ngx_game_metrics_sh_t;


typedef struct {
    ngx_game_metrics_sampler_pt handler;
    void                       *data;
} ngx_game_metrics_sampler_t;


typedef struct {
    ngx_game_metrics_collector_pt  handler;
    void                          *data;
} ngx_game_metrics_collector_t;


/* a scrape in progress: the shared memory's text, then each collector's */
struct ngx_game_metrics_scrape_s {
    ngx_http_request_t         *request;
    ngx_chain_t                *out;
    ngx_chain_t               **last;
    ngx_uint_t                  pending;
    unsigned                    waiting:1;  /* the handler returned */
};


struct ngx_game_metrics_conf_s {
    ngx_array_t                 families;   /* ngx_game_metric_t * */
    ngx_array_t                 samplers;   /* ngx_game_metrics_sampler_t */
    ngx_array_t                 collectors; /* ngx_game_metrics_collector_t */
    ngx_shm_zone_t             *zone;
    u_char                     *zone_name;
    ngx_uint_t                  ncells;
    ngx_game_metric_t          *requests;   /* game_http_requests_total */
    ngx_game_metric_t          *durations;  /* ..._duration_seconds */
};


static ngx_int_t ngx_game_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static void ngx_game_metrics_layout(ngx_game_metrics_conf_t *mc);
static ngx_game_metrics_conf_t *ngx_game_metrics_conf(ngx_conf_t *cf);
static ngx_game_metric_t *ngx_game_metrics_family(ngx_conf_t *cf,
    ngx_game_metrics_conf_t *mc, ngx_uint_t type, const char *name,
    const char *help, const char *label1, const char *label2,
    const char **values2);
static void ngx_game_metrics_sample(ngx_event_t *ev);
static void ngx_game_metrics_run_samplers(void);
static ngx_int_t ngx_game_metrics_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_game_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_game_metrics_send(ngx_game_metrics_scrape_t *s);
static u_char *ngx_game_metrics_render(u_char *p, u_char *last,
    ngx_game_metric_t *m);
static size_t ngx_game_metrics_size(ngx_game_metric_t *m);
static int64_t ngx_game_metrics_sum(ngx_game_metric_t *m, ngx_uint_t cell);
static u_char *ngx_game_metrics_labels(u_char *p, u_char *last,
    ngx_game_metric_t *m, ngx_uint_t i, ngx_uint_t j, const char *le);


/* latencies from a cache hit to a slow dependency, in seconds */
static const double  ngx_game_metrics_latency[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

/* the same, as the "le" label spells them */
static const char  *ngx_game_metrics_latency_le[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5", "1", "2.5", "5", "10"
};

static const char  *ngx_game_metrics_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", NULL
};


/* this process' row of cells, and where writes go without a slot */
static int64_t               *ngx_game_metrics_row;
static int64_t                ngx_game_metrics_nowhere[1];
static ngx_uint_t             ngx_game_metrics_slot = NGX_GAME_METRICS_SLOTS;
static ngx_game_metrics_conf_t *ngx_game_metrics_running;
static ngx_event_t            ngx_game_metrics_timer;


/* configuration */

static ngx_game_metrics_conf_t *
ngx_game_metrics_conf(ngx_conf_t *cf)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    return cmcf->metrics;
}


ngx_int_t
ngx_game_metrics_create(ngx_conf_t *cf, ngx_game_core_main_conf_t *cmcf)
{
    ngx_str_t                 name;
    ngx_game_metrics_conf_t  *mc;

    mc = ngx_pcalloc(cf->pool, sizeof(ngx_game_metrics_conf_t));
    if (mc == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&mc->families, cf->pool, 16, sizeof(void *))
        != NGX_OK
        || ngx_array_init(&mc->samplers, cf->pool, 4,
                          sizeof(ngx_game_metrics_sampler_t))
           != NGX_OK
        || ngx_array_init(&mc->collectors, cf->pool, 4,
                          sizeof(ngx_game_metrics_collector_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* "game_metrics." and 16 hex digits of the layout's hash, rewritten
     * in place as families are declared (ngx_game_metrics_layout): the
     * zone is looked up by name only after the whole configuration */
    mc->zone_name = ngx_pnalloc(cf->pool, sizeof("game_metrics.") - 1 + 16);
    if (mc->zone_name == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(mc->zone_name, "game_metrics.0000000000000000",
               sizeof("game_metrics.") - 1 + 16);
    name.data = mc->zone_name;
    name.len = sizeof("game_metrics.") - 1 + 16;

    mc->zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                     &ngx_game_core_module);
    if (mc->zone == NULL) {
        return NGX_ERROR;
    }

    mc->zone->init = ngx_game_metrics_init_zone;
    mc->zone->data = mc;
    cmcf->metrics = mc;

    /* ngx_game_metric_add() cannot find this configuration yet: it is
     * being created */
    mc->requests = ngx_game_metrics_family(cf, mc, NGX_GAME_METRIC_COUNTER,
                       "game_http_requests_total",
                       "HTTP requests answered, by location and status class",
                       "endpoint", "code", ngx_game_metrics_classes);
    mc->durations = ngx_game_metrics_family(cf, mc,
                        NGX_GAME_METRIC_HISTOGRAM,
                        "game_http_request_duration_seconds",
                        "Time from the first byte read to the log phase, "
                        "by location", "endpoint", NULL, NULL);

    if (mc->requests == NULL || mc->durations == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A family.  "label2" takes its values from a NULL-terminated list now;
 * "label1" takes them one by one with ngx_game_metric_value() (pools,
 * endpoints, modes).  Either label may be NULL.
 */

ngx_game_metric_t *
ngx_game_metric_add(ngx_conf_t *cf, ngx_uint_t type, const char *name,
    const char *help, const char *label1, const char *label2,
    const char **values2)
{
    return ngx_game_metrics_family(cf, ngx_game_metrics_conf(cf), type, name,
                                   help, label1, label2, values2);
}


static ngx_game_metric_t *
ngx_game_metrics_family(ngx_conf_t *cf, ngx_game_metrics_conf_t *mc,
    ngx_uint_t type, const char *name, const char *help, const char *label1,
    const char *label2, const char **values2)
{
    ngx_str_t           v;
    ngx_game_metric_t  *m, **mp;

    m = ngx_pcalloc(cf->pool, sizeof(ngx_game_metric_t));
    if (m == NULL) {
        return NULL;
    }

    m->conf = mc;
    m->type = type;
    m->name.data = (u_char *) name;
    m->name.len = ngx_strlen(name);
    m->help.data = (u_char *) help;
    m->help.len = ngx_strlen(help);

    if (label1) {
        m->label[0].data = (u_char *) label1;
        m->label[0].len = ngx_strlen(label1);
    }

    if (label2) {
        m->label[1].data = (u_char *) label2;
        m->label[1].len = ngx_strlen(label2);
    }

    if (ngx_array_init(&m->values[0], cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&m->values[1], cf->pool, 4, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NULL;
    }

    for ( /* void */ ; values2 && *values2; values2++) {
        v.data = (u_char *) *values2;
        v.len = ngx_strlen(*values2);

        if (ngx_game_metric_value(cf, m, 1, &v) == NGX_ERROR) {
            return NULL;
        }
    }

    if (type == NGX_GAME_METRIC_HISTOGRAM) {
        m->buckets = ngx_game_metrics_latency;
        m->le = ngx_game_metrics_latency_le;
        m->nbuckets = sizeof(ngx_game_metrics_latency) / sizeof(double);
    }

    mp = ngx_array_push(&mc->families);
    if (mp == NULL) {
        return NULL;
    }

    *mp = m;
    ngx_game_metrics_layout(mc);

    return m;
}


/*
 * The index of a label's value, added if new.  Labels are bounded by the
 * configuration; past NGX_GAME_METRICS_MAX_VALUES the last value, "other",
 * takes the rest, so a configuration with thousands of locations cannot
 * grow the zone without end.
 */

ngx_int_t
ngx_game_metric_value(ngx_conf_t *cf, ngx_game_metric_t *m, ngx_uint_t label,
    ngx_str_t *name)
{
    ngx_uint_t   i;
    ngx_str_t   *v, other, *value;

    value = name;

    v = m->values[label].elts;

    for (i = 0; i < m->values[label].nelts; i++) {
        if (v[i].len == value->len
            && ngx_strncmp(v[i].data, value->data, value->len) == 0)
        {
            return i;
        }
    }

    if (m->values[label].nelts == NGX_GAME_METRICS_MAX_VALUES - 1) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "game: metric \"%V\" has more than %d values of "
                           "\"%V\"; the rest count as \"other\"",
                           &m->name, NGX_GAME_METRICS_MAX_VALUES - 1,
                           &m->label[label]);
    }

    if (m->values[label].nelts >= NGX_GAME_METRICS_MAX_VALUES - 1) {
        ngx_str_set(&other, "other");
        value = &other;
        for (i = 0; i < m->values[label].nelts; i++) {
            if (v[i].len == 5 && ngx_strncmp(v[i].data, "other", 5) == 0) {
                return i;
            }
        }
    }

    v = ngx_array_push(&m->values[label]);
    if (v == NULL) {
        return NGX_ERROR;
    }

    v->data = ngx_pstrdup(cf->pool, value);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = value->len;

    ngx_game_metrics_layout(m->conf);

    return m->values[label].nelts - 1;
}


/*
 * One value of the first label, added to several families that share it
 * (a pool's name in each of the pool's families): its index, the same in
 * every family, or NGX_ERROR (also when a family could not be made).
 */

ngx_int_t
ngx_game_metric_values(ngx_conf_t *cf, ngx_game_metric_t **families,
    ngx_uint_t n, ngx_str_t *value)
{
    ngx_int_t   v, first;
    ngx_uint_t  i;

    first = NGX_ERROR;

    for (i = 0; i < n; i++) {
        if (families[i] == NULL) {
            return NGX_ERROR;
        }

        v = ngx_game_metric_value(cf, families[i], 0, value);
        if (v == NGX_ERROR || (i > 0 && v != first)) {
            return NGX_ERROR;
        }

        first = v;
    }

    return first;
}


ngx_int_t
ngx_game_metrics_sampler_add(ngx_conf_t *cf,
    ngx_game_metrics_sampler_pt handler, void *data)
{
    ngx_game_metrics_sampler_t  *s;

    s = ngx_array_push(&ngx_game_metrics_conf(cf)->samplers);
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->handler = handler;
    s->data = data;

    return NGX_OK;
}


ngx_int_t
ngx_game_metrics_collector_add(ngx_conf_t *cf,
    ngx_game_metrics_collector_pt handler, void *data)
{
    ngx_game_metrics_collector_t  *c;

    c = ngx_array_push(&ngx_game_metrics_conf(cf)->collectors);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->handler = handler;
    c->data = data;

    return NGX_OK;
}


static ngx_uint_t
ngx_game_metric_cells(ngx_game_metric_t *m)
{
    ngx_uint_t  n;

    n = ngx_max(m->values[0].nelts, 1) * ngx_max(m->values[1].nelts, 1);

    /* a histogram's series: one count per bucket, +Inf, and the sum */
    return m->type == NGX_GAME_METRIC_HISTOGRAM ? n * (m->nbuckets + 2) : n;
}


/* offsets, the zone's size, and its name from a hash of all that */

static void
ngx_game_metrics_layout(ngx_game_metrics_conf_t *mc)
{
    uint32_t            h1, h2;
    ngx_str_t          *v;
    ngx_uint_t          i, l, k;
    ngx_game_metric_t **m;

    h1 = 0;
    h2 = 0x9e3779b9;
    mc->ncells = 0;
    m = mc->families.elts;

    for (i = 0; i < mc->families.nelts; i++) {
        m[i]->offset = mc->ncells;
        mc->ncells += ngx_game_metric_cells(m[i]);

        h1 = ngx_murmur_hash2(m[i]->name.data, m[i]->name.len) ^ (h1 * 31);
        h2 = (h2 * 33) ^ (uint32_t) (m[i]->type + 8 * m[i]->nbuckets);

        for (l = 0; l < 2; l++) {
            v = m[i]->values[l].elts;
            for (k = 0; k < m[i]->values[l].nelts; k++) {
                h2 = (h2 * 33) ^ ngx_murmur_hash2(v[k].data, v[k].len);
            }
            h2 = (h2 * 33) ^ (uint32_t) m[i]->values[l].nelts;
        }
    }

    ngx_sprintf(mc->zone_name + sizeof("game_metrics.") - 1, "%08xD%08xD",
                h1, h2);

    mc->zone->shm.size = 8 * ngx_pagesize
                         + sizeof(ngx_game_metrics_sh_t)
                         + NGX_GAME_METRICS_SLOTS * mc->ncells
                           * sizeof(int64_t);
}


static ngx_int_t
ngx_game_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t          *shpool;
    ngx_game_metrics_sh_t    *sh;
    ngx_game_metrics_conf_t  *mc = zone->data;

    if (data) {
        /* a reload with the same layout: go on counting where the
         * previous cycle's workers counted */
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    sh = ngx_slab_calloc(shpool, sizeof(ngx_game_metrics_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->ncells = mc->ncells;
    sh->cells = ngx_slab_calloc(shpool, NGX_GAME_METRICS_SLOTS * mc->ncells
                                        * sizeof(int64_t) + 1);
    if (sh->cells == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    zone->data = sh;

    return NGX_OK;
}


/* worker start and exit */

ngx_int_t
ngx_game_metrics_start(ngx_cycle_t *cycle, ngx_game_core_main_conf_t *cmcf)
{
    ngx_uint_t                i, k, taken;
    ngx_slab_pool_t          *shpool;
    ngx_game_metric_t       **m;
    ngx_game_metrics_sh_t    *sh;
    ngx_game_metrics_conf_t  *mc = cmcf->metrics;

    ngx_game_metrics_running = mc;
    ngx_game_metrics_row = ngx_game_metrics_nowhere;
    ngx_game_metrics_slot = NGX_GAME_METRICS_SLOTS;

    sh = mc->zone->data;
    shpool = (ngx_slab_pool_t *) mc->zone->shm.addr;
    taken = NGX_GAME_METRICS_SLOTS;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_GAME_METRICS_SLOTS; i++) {
        if (sh->slots[i].pid == 0) {
            taken = i;
            break;
        }
    }

    if (taken == NGX_GAME_METRICS_SLOTS) {
        for (i = 0; i < NGX_GAME_METRICS_SLOTS; i++) {
            if (kill(sh->slots[i].pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
                taken = i;
                break;
            }
        }
    }

    if (taken < NGX_GAME_METRICS_SLOTS) {
        sh->slots[taken].pid = ngx_pid;
        sh->slots[taken].used = 1;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (taken == NGX_GAME_METRICS_SLOTS) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "game: %d workers already count metrics; this one's "
                      "are not counted", NGX_GAME_METRICS_SLOTS);

    } else {
        ngx_game_metrics_slot = taken;
        ngx_game_metrics_row = sh->cells + taken * sh->ncells;

        /* the gauges of a dead owner say nothing about this process */
        m = mc->families.elts;
        for (i = 0; i < mc->families.nelts; i++) {
            if (m[i]->type == NGX_GAME_METRIC_GAUGE) {
                for (k = 0; k < ngx_game_metric_cells(m[i]); k++) {
                    ngx_game_metrics_row[m[i]->offset + k] = 0;
                }
            }
        }
    }

    if (mc->samplers.nelts) {
        ngx_game_metrics_timer.handler = ngx_game_metrics_sample;
        ngx_game_metrics_timer.log = cycle->log;
        ngx_game_metrics_timer.data = mc;
        ngx_game_metrics_timer.cancelable = 1;
        ngx_add_timer(&ngx_game_metrics_timer, NGX_GAME_METRICS_SAMPLE);
    }

    return NGX_OK;
}


void
ngx_game_metrics_stop(ngx_game_core_main_conf_t *cmcf)
{
    ngx_uint_t                i, k;
    ngx_slab_pool_t          *shpool;
    ngx_game_metric_t       **m;
    ngx_game_metrics_sh_t    *sh;
    ngx_game_metrics_conf_t  *mc = cmcf->metrics;

    if (ngx_game_metrics_timer.timer_set) {
        ngx_del_timer(&ngx_game_metrics_timer);
    }

    if (ngx_game_metrics_slot == NGX_GAME_METRICS_SLOTS) {
        return;
    }

    m = mc->families.elts;
    for (i = 0; i < mc->families.nelts; i++) {
        if (m[i]->type == NGX_GAME_METRIC_GAUGE) {
            for (k = 0; k < ngx_game_metric_cells(m[i]); k++) {
                ngx_game_metrics_row[m[i]->offset + k] = 0;
            }
        }
    }

    sh = mc->zone->data;
    shpool = (ngx_slab_pool_t *) mc->zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);
    sh->slots[ngx_game_metrics_slot].pid = 0;
    ngx_shmtx_unlock(&shpool->mutex);

    ngx_game_metrics_row = ngx_game_metrics_nowhere;
    ngx_game_metrics_slot = NGX_GAME_METRICS_SLOTS;
}


/* counting: only this process writes its row */

static ngx_inline int64_t *
ngx_game_metric_cell(ngx_game_metric_t *m, ngx_uint_t i, ngx_uint_t j)
{
    ngx_uint_t  n2;

    if (m == NULL || ngx_game_metrics_row == ngx_game_metrics_nowhere) {
        return ngx_game_metrics_nowhere;
    }

    n2 = ngx_max(m->values[1].nelts, 1);

    if (m->type == NGX_GAME_METRIC_HISTOGRAM) {
        return &ngx_game_metrics_row[m->offset
                                     + (i * n2 + j) * (m->nbuckets + 2)];
    }

    return &ngx_game_metrics_row[m->offset + i * n2 + j];
}


void
ngx_game_metric_inc(ngx_game_metric_t *m, ngx_uint_t i, ngx_uint_t j,
    int64_t delta)
{
    *ngx_game_metric_cell(m, i, j) += delta;
}


void
ngx_game_metric_set(ngx_game_metric_t *m, ngx_uint_t i, ngx_uint_t j,
    int64_t value)
{
    *ngx_game_metric_cell(m, i, j) = value;
}


/* a histogram's observation, in milliseconds */

void
ngx_game_metric_observe(ngx_game_metric_t *m, ngx_uint_t i, ngx_uint_t j,
    ngx_msec_t ms)
{
    int64_t     *c;
    ngx_uint_t   b;

    c = ngx_game_metric_cell(m, i, j);
    if (c == ngx_game_metrics_nowhere) {
        return;
    }

    for (b = 0; b < m->nbuckets; b++) {
        if ((double) ms <= m->buckets[b] * 1000) {
            break;
        }
    }

    c[b]++;                         /* b == nbuckets: +Inf */
    c[m->nbuckets + 1] += ms;       /* the sum, in ms */
}


static void
ngx_game_metrics_sample(ngx_event_t *ev)
{
    ngx_game_metrics_run_samplers();

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_GAME_METRICS_SAMPLE);
    }
}


static void
ngx_game_metrics_run_samplers(void)
{
    ngx_uint_t                   i;
    ngx_game_metrics_sampler_t  *s;

    if (ngx_game_metrics_running == NULL) {
        return;
    }

    s = ngx_game_metrics_running->samplers.elts;
    for (i = 0; i < ngx_game_metrics_running->samplers.nelts; i++) {
        s[i].handler(s[i].data);
    }
}


/* every request: its location's counters, in the log phase */

ngx_int_t
ngx_game_metrics_endpoint(ngx_conf_t *cf, ngx_str_t *location)
{
    ngx_str_t                 name;
    ngx_game_metric_t        *families[2];
    ngx_game_metrics_conf_t  *mc;

    mc = ngx_game_metrics_conf(cf);

    name = *location;
    if (name.len == 0) {
        ngx_str_set(&name, "none");
    }

    /* the histogram has the same endpoints in the same order */
    families[0] = mc->requests;
    families[1] = mc->durations;

    return ngx_game_metric_values(cf, families, 2, &name);
}


ngx_int_t
ngx_game_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_game_metrics_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_game_metrics_log_handler(ngx_http_request_t *r)
{
    ngx_int_t                  ms;
    ngx_uint_t                 status, class;
    ngx_time_t                *tp;
    ngx_game_core_loc_conf_t  *clcf;

    if (ngx_game_metrics_running == NULL || r != r->main) {
        return NGX_OK;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_game_core_module);
    if (clcf->endpoint == NGX_CONF_UNSET_UINT) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    /* 0: nothing was answered because the client went away first (a
     * client timeout during a slow login, say), which nginx logs as 000
     * or 499: counted with the 4xx, like 499, so that impatient clients
     * do not page anyone as server errors */
    class = (status >= 100 && status < 600) ? status / 100 - 1 : 3;

    tp = ngx_timeofday();
    ms = (ngx_int_t) ((tp->sec - r->start_sec) * 1000
                      + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    ngx_game_metric_inc(ngx_game_metrics_running->requests, clcf->endpoint,
                        class, 1);
    ngx_game_metric_observe(ngx_game_metrics_running->durations,
                            clcf->endpoint, 0, (ngx_msec_t) ms);

    return NGX_OK;
}


/*
 * $game_endpoint: the location a request was counted under, the same
 * name as the metrics' "endpoint" label, for access logs that are grouped
 * like the metrics are.
 */

static ngx_int_t
ngx_game_metrics_endpoint_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 *names;
    ngx_game_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_game_core_module);

    if (ngx_game_metrics_running == NULL
        || clcf->endpoint == NGX_CONF_UNSET_UINT
        || clcf->endpoint >= ngx_game_metrics_running->requests
                                 ->values[0].nelts)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    names = ngx_game_metrics_running->requests->values[0].elts;

    v->data = names[clcf->endpoint].data;
    v->len = names[clcf->endpoint].len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


ngx_int_t
ngx_game_metrics_variables(ngx_conf_t *cf)
{
    ngx_str_t             name = ngx_string("game_endpoint");
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_game_metrics_endpoint_variable;

    return NGX_OK;
}


/* the scrape: GET /metrics */

char *
ngx_game_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_game_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_game_metrics_handler(ngx_http_request_t *r)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     i;
    ngx_chain_t                   *cl;
    ngx_game_metric_t            **m;
    ngx_game_metrics_conf_t       *mc;
    ngx_game_metrics_scrape_t     *s;
    ngx_game_metrics_collector_t  *c;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "metrics are read with GET");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mc = ngx_game_metrics_running;
    if (mc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* this worker's gauges as of now; the others' are at most a second
     * old */
    ngx_game_metrics_run_samplers();

    m = mc->families.elts;
    size = 0;
    for (i = 0; i < mc->families.nelts; i++) {
        size += ngx_game_metrics_size(m[i]);
    }

    b = ngx_create_temp_buf(r->pool, size);
    s = ngx_pcalloc(r->pool, sizeof(ngx_game_metrics_scrape_t));
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || s == NULL || cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < mc->families.nelts; i++) {
        b->last = ngx_game_metrics_render(b->last, b->end, m[i]);
    }

    cl->buf = b;
    cl->next = NULL;
    s->request = r;
    s->out = cl;
    s->last = &cl->next;

    /* what lives elsewhere (Redis): each collector asks, and answers
     * with ngx_game_metrics_collected(), now or later */
    c = mc->collectors.elts;
    for (i = 0; i < mc->collectors.nelts; i++) {
        s->pending++;
        if (c[i].handler(s, c[i].data) == NGX_ERROR) {
            s->pending--;
        }
    }

    if (s->pending == 0) {
        return ngx_game_metrics_send(s);
    }

    s->waiting = 1;
    r->main->count++;

    return NGX_DONE;
}


ngx_pool_t *
ngx_game_metrics_scrape_pool(ngx_game_metrics_scrape_t *s)
{
    return s->request->pool;
}


/*
 * A collector's text, in the exposition format, or NULL when it has
 * nothing (its dependency is down: the scrape still answers, without it,
 * and game_metrics_collector_up says so where the collector reports it).
 */

void
ngx_game_metrics_collected(ngx_game_metrics_scrape_t *s, ngx_str_t *text)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (text && text->len) {
        b = ngx_calloc_buf(s->request->pool);
        cl = ngx_alloc_chain_link(s->request->pool);

        if (b && cl) {
            b->pos = text->data;
            b->last = text->data + text->len;
            b->memory = 1;
            cl->buf = b;
            cl->next = NULL;
            *s->last = cl;
            s->last = &cl->next;
        }
    }

    if (--s->pending || !s->waiting) {
        return;
    }

    ngx_http_finalize_request(s->request, ngx_game_metrics_send(s));
}


static ngx_int_t
ngx_game_metrics_send(ngx_game_metrics_scrape_t *s)
{
    off_t                size;
    ngx_int_t            rc;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r = s->request;

    size = 0;
    for (cl = s->out; cl; cl = cl->next) {
        size += cl->buf->last - cl->buf->pos;
        cl->buf->last_buf = 0;
        cl->buf->last_in_chain = 0;
    }

    for (cl = s->out; cl->next; cl = cl->next) { /* void */ }

    cl->buf->last_buf = (r == r->main);
    cl->buf->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = size;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, s->out);
}


/* an upper bound of a family's text */

static size_t
ngx_game_metrics_size(ngx_game_metric_t *m)
{
    size_t       labels, series;
    ngx_str_t   *v;
    ngx_uint_t   l, k, longest[2];

    for (l = 0; l < 2; l++) {
        longest[l] = 0;
        v = m->values[l].elts;
        for (k = 0; k < m->values[l].nelts; k++) {
            /* every byte may need a backslash */
            longest[l] = ngx_max(longest[l], 2 * v[k].len);
        }
    }

    labels = m->label[0].len + longest[0] + m->label[1].len + longest[1]
             + sizeof("{=\"\",=\"\",le=\"+Inf\"}") + 32;
    series = ngx_game_metric_cells(m) + ngx_max(m->values[0].nelts, 1) * 2;

    return sizeof("# HELP \n# TYPE  histogram\n") + 2 * m->name.len
           + m->help.len
           + series * (m->name.len + sizeof("_bucket") + labels
                       + NGX_INT64_LEN + 2);
}


static u_char *
ngx_game_metrics_render(u_char *p, u_char *last, ngx_game_metric_t *m)
{
    int64_t      n, cumulative;
    ngx_uint_t   i, j, b, n1, n2, cell;

    static const char  *types[] = { "counter", "gauge", "histogram" };

    p = ngx_slprintf(p, last, "# HELP %V %V\n# TYPE %V %s\n",
                     &m->name, &m->help, &m->name, types[m->type]);

    n1 = ngx_max(m->values[0].nelts, 1);
    n2 = ngx_max(m->values[1].nelts, 1);

    for (i = 0; i < n1; i++) {
        for (j = 0; j < n2; j++) {

            if (m->type != NGX_GAME_METRIC_HISTOGRAM) {
                cell = m->offset + i * n2 + j;
                n = ngx_game_metrics_sum(m, cell);

                p = ngx_slprintf(p, last, "%V", &m->name);
                p = ngx_game_metrics_labels(p, last, m, i, j, NULL);
                p = ngx_slprintf(p, last, " %L\n", n);
                continue;
            }

            cell = m->offset + (i * n2 + j) * (m->nbuckets + 2);
            cumulative = 0;

            for (b = 0; b <= m->nbuckets; b++) {
                cumulative += ngx_game_metrics_sum(m, cell + b);

                p = ngx_slprintf(p, last, "%V_bucket", &m->name);
                p = ngx_game_metrics_labels(p, last, m, i, j,
                                            b < m->nbuckets ? m->le[b]
                                                            : "+Inf");
                p = ngx_slprintf(p, last, " %L\n", cumulative);
            }

            n = ngx_game_metrics_sum(m, cell + m->nbuckets + 1);

            p = ngx_slprintf(p, last, "%V_sum", &m->name);
            p = ngx_game_metrics_labels(p, last, m, i, j, NULL);
            p = ngx_slprintf(p, last, " %L.%03L\n", n / 1000, n % 1000);

            p = ngx_slprintf(p, last, "%V_count", &m->name);
            p = ngx_game_metrics_labels(p, last, m, i, j, NULL);
            p = ngx_slprintf(p, last, " %L\n", cumulative);
        }
    }

    return p;
}


/*
 * A cell summed over the slots: counters of every slot that ever counted,
 * gauges of the slots whose process is alive.
 */

static int64_t
ngx_game_metrics_sum(ngx_game_metric_t *m, ngx_uint_t cell)
{
    int64_t                  n;
    ngx_uint_t               s;
    ngx_game_metrics_sh_t   *sh;

    sh = ngx_game_metrics_running->zone->data;
    n = 0;

    for (s = 0; s < NGX_GAME_METRICS_SLOTS; s++) {

        if (!sh->slots[s].used) {
            continue;
        }

        if (m->type == NGX_GAME_METRIC_GAUGE
            && (sh->slots[s].pid == 0
                || (kill(sh->slots[s].pid, 0) == -1
                    && ngx_errno == NGX_ESRCH)))
        {
            continue;
        }

        n += sh->cells[s * sh->ncells + cell];
    }

    return n;
}


static u_char *
ngx_game_metrics_labels(u_char *p, u_char *last, ngx_game_metric_t *m,
    ngx_uint_t i, ngx_uint_t j, const char *le)
{
    ngx_str_t   *v;
    ngx_uint_t   l, k, idx[2], sep;

    idx[0] = i;
    idx[1] = j;
    sep = 0;

    if (m->values[0].nelts == 0 && m->values[1].nelts == 0 && le == NULL) {
        return p;
    }

    if (p < last) {
        *p++ = '{';
    }

    for (l = 0; l < 2; l++) {
        if (m->label[l].len == 0 || m->values[l].nelts == 0) {
            continue;
        }

        v = m->values[l].elts;
        p = ngx_slprintf(p, last, "%s%V=\"", sep ? "," : "", &m->label[l]);
        sep = 1;

        /* the text format escapes backslash, double quote and newline */
        for (k = 0; k < v[idx[l]].len && p + 2 < last; k++) {
            switch (v[idx[l]].data[k]) {
            case '\\': *p++ = '\\'; *p++ = '\\'; break;
            case '"':  *p++ = '\\'; *p++ = '"';  break;
            case '\n': *p++ = '\\'; *p++ = 'n';  break;
            default:   *p++ = v[idx[l]].data[k];
            }
        }

        p = ngx_slprintf(p, last, "\"");
    }

    if (le) {
        p = ngx_slprintf(p, last, "%sle=\"%s\"", sep ? "," : "", le);
    }

    return ngx_slprintf(p, last, "}");
}
