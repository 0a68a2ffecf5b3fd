
/*
 * Passwords: the policy (length, the common-password list) and Argon2id,
 * which runs in an nginx thread pool because one hash takes tens of
 * milliseconds of CPU and the event loop must never wait.
 */

#include <argon2.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <openssl/rand.h>

#include "ngx_game_auth.h"


#define NGX_GAME_AUTH_SALT_LEN  16
#define NGX_GAME_AUTH_HASH_LEN  32


/*
 * What a hashing thread works on.  It has a pool of its own, freed by the
 * completion handler on the event loop, never by the request: a request
 * can be terminated while its password is being hashed (a worker that
 * reaches worker_shutdown_timeout closes every connection), and the thread
 * must not write into freed memory.  The request is held meanwhile as
 * nginx holds it for its own thread tasks (r->main->blocked, r->aio), and
 * a timer that is not cancelable keeps an exiting worker until the thread
 * is done.
 */

typedef struct {
    ngx_pool_t                 *pool;
    ngx_http_request_t         *request;
    ngx_game_auth_ctx_t        *ctx;
    ngx_game_auth_main_conf_t  *amcf;
    ngx_event_t                 guard;

    /* in: copies */
    ngx_str_t                   password;
    char                       *stored;         /* NULL: a new hash */

    /* out */
    char                        hash[NGX_GAME_AUTH_ARGON2_MAX];
    unsigned                    ok:1;
    unsigned                    rehashed:1;
    unsigned                    failed:1;
} ngx_game_auth_task_t;


#define NGX_GAME_AUTH_HASH_GUARD   60000


static void ngx_game_auth_hash_thread(void *data, ngx_log_t *log);
static void ngx_game_auth_hash_event(ngx_event_t *ev);
static void ngx_game_auth_hash_guard(ngx_event_t *ev);
static void ngx_game_auth_task_free(ngx_game_auth_task_t *t);
static int ngx_game_auth_argon2_new(ngx_game_auth_main_conf_t *amcf,
    const char *pwd, size_t len, char *out, size_t size);
static int ngx_game_auth_cmp_str(const void *one, const void *two);


/*
 * The list is matched case-insensitively: "Password123" is as weak as
 * "password123".  Kept sorted for a binary search.
 */

char *
ngx_game_auth_passwords_load(ngx_conf_t *cf, ngx_game_auth_main_conf_t *amcf)
{
    u_char           *p, *end, *start;
    ssize_t           n;
    ngx_str_t        *s, file;
    ngx_file_t        f;
    ngx_file_info_t   fi;

    if (ngx_array_init(&amcf->common_passwords, cf->pool, 1024,
                       sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (amcf->common_passwords_file.len == 0) {
        return NGX_CONF_OK;
    }

    file = amcf->common_passwords_file;
    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));
    f.name = file;
    f.log = cf->log;
    f.fd = ngx_open_file(file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (f.fd == NGX_INVALID_FILE || ngx_fd_info(f.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 16 * 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read \"%V\" in "
                           "\"game_auth_common_passwords\" directive", &file);
        if (f.fd != NGX_INVALID_FILE) {
            ngx_close_file(f.fd);
        }
        return NGX_CONF_ERROR;
    }

    start = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (start == NULL) {
        ngx_close_file(f.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&f, start, ngx_file_size(&fi), 0);
    ngx_close_file(f.fd);

    if (n != ngx_file_size(&fi)) {
        return NGX_CONF_ERROR;
    }

    end = start + n;

    for (p = start; p < end; p = start) {
        start = ngx_strlchr(p, end, '\n');
        if (start == NULL) {
            start = end;
        }

        n = start - p;
        start++;

        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }

        if (n == 0 || p[0] == '#') {
            continue;
        }

        s = ngx_array_push(&amcf->common_passwords);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->data = p;
        s->len = n;
        ngx_strlow(p, p, n);
    }

    ngx_qsort(amcf->common_passwords.elts, amcf->common_passwords.nelts,
              sizeof(ngx_str_t), ngx_game_auth_cmp_str);

    return NGX_CONF_OK;
}


static int
ngx_game_auth_cmp_str(const void *one, const void *two)
{
    ngx_int_t         rc;
    const ngx_str_t  *a = one, *b = two;

    rc = ngx_memcmp(a->data, b->data, ngx_min(a->len, b->len));
    if (rc) {
        return rc;
    }

    return (a->len > b->len) - (a->len < b->len);
}


/*
 * A stand-in hash with the current parameters: a login for an unknown
 * account is verified against it, so that it costs the same Argon2id run
 * as a wrong password for a real one (no account enumeration).  Salt and
 * tag are random, so no password matches it.  It is made up rather than
 * computed: a real hash would cost the master a full Argon2id run on
 * every reload, while the old workers are still serving.
 */

char *
ngx_game_auth_dummy_hash(ngx_conf_t *cf, ngx_game_auth_main_conf_t *amcf)
{
    u_char     *p, raw[NGX_GAME_AUTH_SALT_LEN + NGX_GAME_AUTH_HASH_LEN];
    ngx_str_t   src, dst;

    amcf->dummy_hash = ngx_pnalloc(cf->pool, NGX_GAME_AUTH_ARGON2_MAX);
    if (amcf->dummy_hash == NULL) {
        return NGX_CONF_ERROR;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf((u_char *) amcf->dummy_hash,
                    "$argon2id$v=19$m=%uz,t=%ui,p=%ui$",
                    amcf->argon2_memory / 1024, amcf->argon2_iterations,
                    amcf->argon2_parallelism);

    /* PHC strings use unpadded standard base64 */
    src.data = raw;
    src.len = NGX_GAME_AUTH_SALT_LEN;
    dst.data = p;
    ngx_encode_base64(&dst, &src);
    while (dst.data[dst.len - 1] == '=') {
        dst.len--;
    }
    p += dst.len;
    *p++ = '$';

    src.data = raw + NGX_GAME_AUTH_SALT_LEN;
    src.len = NGX_GAME_AUTH_HASH_LEN;
    dst.data = p;
    ngx_encode_base64(&dst, &src);
    while (dst.data[dst.len - 1] == '=') {
        dst.len--;
    }
    p[dst.len] = '\0';

    return NGX_CONF_OK;
}


/* NULL when acceptable, or why not */

const char *
ngx_game_auth_password_weak(ngx_game_auth_main_conf_t *amcf,
    ngx_str_t *password)
{
    u_char      low[128];
    ngx_str_t   key, *found;

    if (game_utf8_chars((char *) password->data, password->len) < 10) {
        return "the password must be at least 10 characters long";
    }

    if (password->len > sizeof(low)) {
        return NULL;                /* no listed password is that long */
    }

    ngx_strlow(low, password->data, password->len);
    key.data = low;
    key.len = password->len;

    found = bsearch(&key, amcf->common_passwords.elts,
                    amcf->common_passwords.nelts, sizeof(ngx_str_t),
                    ngx_game_auth_cmp_str);

    return found ? "this password is too common" : NULL;
}


/*
 * Hash ctx->password into ctx->hash, or, when ctx->stored_hash is set,
 * verify against it (and rehash when its parameters are out of date).
 * "done" runs on the event loop when the thread has finished.
 */

ngx_int_t
ngx_game_auth_hash(ngx_game_auth_ctx_t *ctx, ngx_game_auth_step_pt done)
{
    size_t                 n;
    ngx_pool_t            *pool;
    ngx_thread_task_t     *task;
    ngx_http_request_t    *r = ctx->request;
    ngx_game_auth_task_t  *t;

    pool = ngx_create_pool(1024, r->connection->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    task = ngx_thread_task_alloc(pool, sizeof(ngx_game_auth_task_t));
    if (task == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    t = task->ctx;
    t->pool = pool;
    t->request = r;
    t->ctx = ctx;
    t->amcf = ctx->amcf;

    t->password.len = ctx->password.len;
    t->password.data = ngx_pnalloc(pool, ctx->password.len);
    if (t->password.data == NULL) {
        ngx_game_auth_task_free(t);
        return NGX_ERROR;
    }

    ngx_memcpy(t->password.data, ctx->password.data, ctx->password.len);

    if (ctx->stored_hash) {
        n = ngx_strlen(ctx->stored_hash) + 1;
        t->stored = ngx_pnalloc(pool, n);
        if (t->stored == NULL) {
            ngx_game_auth_task_free(t);
            return NGX_ERROR;
        }

        ngx_memcpy(t->stored, ctx->stored_hash, n);
    }

    task->handler = ngx_game_auth_hash_thread;
    task->event.handler = ngx_game_auth_hash_event;
    task->event.data = t;

    /* a full queue means overload: the caller answers 503 */
    if (ngx_thread_task_post(ctx->amcf->thread_pool, task) != NGX_OK) {
        ngx_game_auth_task_free(t);
        return NGX_ERROR;
    }

    ctx->hash_done = done;
    ngx_game_metric_inc(ctx->amcf->hashes, 0, 0, 1);

    r->main->blocked++;
    r->aio = 1;

    t->guard.handler = ngx_game_auth_hash_guard;
    t->guard.data = t;
    t->guard.log = r->connection->log;
    ngx_add_timer(&t->guard, NGX_GAME_AUTH_HASH_GUARD);

    return NGX_OK;
}


static void
ngx_game_auth_hash_thread(void *data, ngx_log_t *log)
{
    ngx_game_auth_task_t  *t = data;

    int                         rc;
    unsigned                    m, it, par;
    ngx_game_auth_main_conf_t  *amcf = t->amcf;

    static __thread unsigned    niced;

    /*
     * Hashing threads yield to the event loops: on a busy machine a login
     * may take longer, but every other request keeps its latency.  Once
     * per thread (Linux nices threads one by one).
     */
    if (!niced) {
        niced = 1;
        (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 10);
    }

    if (t->stored == NULL) {
        rc = ngx_game_auth_argon2_new(amcf, (char *) t->password.data,
                                      t->password.len, t->hash,
                                      sizeof(t->hash));
        t->failed = (rc != ARGON2_OK);
        return;
    }

    rc = argon2id_verify(t->stored, t->password.data, t->password.len);
    t->ok = (rc == ARGON2_OK);

    if (!t->ok) {
        return;
    }

    /* upgrade a hash made with older parameters while we know the
     * password: this is the only moment we do */
    if (sscanf(t->stored, "$argon2id$v=19$m=%u,t=%u,p=%u$", &m, &it, &par)
        == 3
        && m == amcf->argon2_memory / 1024 && it == amcf->argon2_iterations
        && par == amcf->argon2_parallelism)
    {
        return;
    }

    rc = ngx_game_auth_argon2_new(amcf, (char *) t->password.data,
                                  t->password.len, t->hash, sizeof(t->hash));
    t->rehashed = (rc == ARGON2_OK);
}


static void
ngx_game_auth_hash_event(ngx_event_t *ev)
{
    ngx_game_auth_task_t  *t = ev->data;

    ngx_connection_t     *c;
    ngx_http_request_t   *r;
    ngx_game_auth_ctx_t  *ctx;

    r = t->request;
    c = r->connection;
    ctx = t->ctx;

    if (t->guard.timer_set) {
        ngx_del_timer(&t->guard);
    }

    r->main->blocked--;
    r->aio = 0;

    ngx_game_metric_inc(ctx->amcf->hashes, 0, 0, -1);

    ngx_memcpy(ctx->hash, t->hash, sizeof(ctx->hash));
    ctx->hash_ok = t->ok;
    ctx->rehashed = t->rehashed;
    ctx->hash_failed = t->failed;

    ngx_game_auth_task_free(t);

    if (c->error) {
        /* terminated while the thread ran: nginx's finalizer ends it */
        r->write_event_handler(r);

    } else {
        ctx->hash_done(ctx);
    }

    ngx_http_run_posted_requests(c);
}


/* Argon2id does not take a minute; should it, the worker still waits */

static void
ngx_game_auth_hash_guard(ngx_event_t *ev)
{
    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "game auth: a password hash runs for over %M ms",
                  (ngx_msec_t) NGX_GAME_AUTH_HASH_GUARD);

    ngx_add_timer(ev, NGX_GAME_AUTH_HASH_GUARD);
}


static void
ngx_game_auth_task_free(ngx_game_auth_task_t *t)
{
    if (t->password.data) {
        ngx_explicit_memzero(t->password.data, t->password.len);
    }

    ngx_explicit_memzero(t->hash, sizeof(t->hash));
    ngx_destroy_pool(t->pool);
}


static int
ngx_game_auth_argon2_new(ngx_game_auth_main_conf_t *amcf, const char *pwd,
    size_t len, char *out, size_t size)
{
    u_char  salt[NGX_GAME_AUTH_SALT_LEN];

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return ARGON2_MISSING_ARGS;
    }

    return argon2id_hash_encoded(amcf->argon2_iterations,
                                 amcf->argon2_memory / 1024,
                                 amcf->argon2_parallelism, pwd, len,
                                 salt, sizeof(salt), NGX_GAME_AUTH_HASH_LEN,
                                 out, size);
}
