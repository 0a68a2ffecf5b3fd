/*
 * test_gs_log.c: the game server's log ring (gameserver/server/gs_log.c)
 * with its stderr a pipe: JSON lines written directly before the writer
 * starts; and with the pipe full and nobody reading, callers that never
 * wait, lines dropped and counted, and the count told as a line of its
 * own (event log_lines_lost) once the pipe is read again.
 *
 * gs_log keeps one process-wide ring that starts and stops once, so the
 * tests run in this order.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gs_log.h"


#define RING        512             /* gs_log.c's GS_LOG_RING */
#define LINES       1000
#define CAPTURE     (4 << 20)


typedef struct {
    int      fd;
    char    *buf;
    size_t   len;
} capture_t;


/* stderr into a fresh pipe; the saved stderr, and the read end in *rd */
static int
stderr_to_pipe(int *rd)
{
    int  p[2], saved;

    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(pipe(p), 0);
    assert_true(dup2(p[1], STDERR_FILENO) >= 0);
    close(p[1]);
    *rd = p[0];
    return saved;
}


static void
stderr_back(int saved)
{
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
}


static void *
capture_main(void *arg)
{
    capture_t  *c = arg;
    ssize_t     n;

    for ( ;; ) {
        n = read(c->fd, c->buf + c->len, CAPTURE - 1 - c->len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        c->len += (size_t) n;
    }
    c->buf[c->len] = '\0';
    return NULL;
}


/* each complete line, parsed; fails on one that is not a JSON object */
static json_t *
parse_lines(const char *text)
{
    json_t        *all = json_array(), *o;
    json_error_t   err;
    const char    *nl;

    while ((nl = strchr(text, '\n')) != NULL) {
        o = json_loadb(text, (size_t) (nl - text), JSON_REJECT_DUPLICATES,
                       &err);
        if (!json_is_object(o)) {
            fail_msg("not a JSON object (%s): %.*s", err.text,
                     (int) (nl - text), text);
        }
        json_array_append_new(all, o);
        text = nl + 1;
    }
    assert_string_equal(text, "");          /* nothing half written */
    return all;
}


static const char *
str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}


static void
test_lines_before_the_writer_starts_are_written_directly(void **state)
{
    char      buf[65536], *big;
    ssize_t   n;
    json_t   *lines, *l;
    int       rd, saved;

    gs_log_init("unit \"srv\"");
    saved = stderr_to_pipe(&rd);

    gs_log("info", "plain %d", 1);
    gs_log_event("warn", "tick_overrun",
                 json_pack("{s:i, s:s}", "took_us", 40000, "phase", "idle"),
                 "a \"quoted\" \x01 message");
    big = malloc(5001);
    memset(big, 'y', 5000);
    big[5000] = '\0';
    gs_log("error", "%s", big);
    free(big);

    stderr_back(saved);
    n = read(rd, buf, sizeof(buf) - 1);
    close(rd);
    assert_true(n > 0);
    buf[n] = '\0';

    lines = parse_lines(buf);
    assert_int_equal(json_array_size(lines), 3);

    l = json_array_get(lines, 0);
    assert_string_equal(str(l, "service"), "game-server");
    assert_string_equal(str(l, "server"), "unit \"srv\"");
    assert_int_equal(json_integer_value(json_object_get(l, "pid")), getpid());
    assert_string_equal(str(l, "level"), "info");
    assert_string_equal(str(l, "msg"), "plain 1");
    assert_null(json_object_get(l, "event"));

    l = json_array_get(lines, 1);
    assert_string_equal(str(l, "event"), "tick_overrun");
    assert_string_equal(str(l, "msg"), "a \"quoted\" \x01 message");
    assert_int_equal(json_integer_value(json_object_get(l, "took_us")),
                     40000);

    /* longer than a ring slot: cut, and said so */
    l = json_array_get(lines, 2);
    assert_true(json_is_true(json_object_get(l, "truncated")));
    assert_true(strlen(str(l, "msg")) > 500);
    json_decref(lines);
}


static void
test_a_blocked_stderr_drops_lines_counts_them_and_tells(void **state)
{
    capture_t   c;
    pthread_t   reader;
    json_t     *lines, *l;
    uint64_t    dropped, told = 0;
    const char *text;
    size_t      i;
    int         saved, flags, next = 0, seen = 0;

    saved = stderr_to_pipe(&c.fd);

    /* fill the pipe: the writer's first write blocks, as on a stderr
     * nobody reads */
    flags = fcntl(STDERR_FILENO, F_GETFL);
    fcntl(STDERR_FILENO, F_SETFL, flags | O_NONBLOCK);
    while (write(STDERR_FILENO, "xxxxxxxxxxxxxxxx", 16) == 16) {
        /* until EAGAIN */
    }
    fcntl(STDERR_FILENO, F_SETFL, flags);

    assert_int_equal(gs_log_start(), 0);

    /* a caller that waited for stderr would never come back: SIGALRM's
     * default action then ends the test, failed */
    alarm(20);
    for (i = 0; i < LINES; i++) {
        gs_log_event("info", "seq", json_pack("{s:i}", "i", (int) i),
                     "line %d", (int) i);
    }
    alarm(0);

    /* the ring holds 512, the writer one more in its blocked write */
    dropped = gs_log_dropped();
    assert_true(dropped >= LINES - RING - 1);
    assert_true(dropped <= LINES - RING);

    c.buf = malloc(CAPTURE);
    c.len = 0;
    assert_int_equal(pthread_create(&reader, NULL, capture_main, &c), 0);
    gs_log_stop();                  /* the writer drains the ring */
    stderr_back(saved);             /* the pipe's last writer: EOF */
    pthread_join(reader, NULL);
    close(c.fd);

    text = c.buf;
    while (*text == 'x') {
        text++;
    }
    lines = parse_lines(text);

    for (i = 0; i < json_array_size(lines); i++) {
        l = json_array_get(lines, i);
        if (str(l, "event") != NULL
            && strcmp(str(l, "event"), "log_lines_lost") == 0)
        {
            assert_string_equal(str(l, "level"), "warn");
            told += (uint64_t) json_integer_value(json_object_get(l, "lost"));
            continue;
        }
        /* the lines kept come out in the order they were logged */
        assert_string_equal(str(l, "event"), "seq");
        assert_true(json_integer_value(json_object_get(l, "i")) >= next);
        next = (int) json_integer_value(json_object_get(l, "i")) + 1;
        seen++;
    }
    assert_int_equal(seen, LINES - dropped);
    assert_int_equal(told, dropped);

    json_decref(lines);
    free(c.buf);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(
            test_lines_before_the_writer_starts_are_written_directly),
        cmocka_unit_test(
            test_a_blocked_stderr_drops_lines_counts_them_and_tells),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
