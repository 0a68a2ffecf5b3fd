/*
 * argon2_rate: raw Argon2id hashes per second with given parameters on N
 * threads, for `make bench` to compare login/s against (the auth module
 * hashes in an nginx thread pool of the same size).
 *
 *   argon2_rate THREADS SECONDS MEMORY_KIB ITERATIONS PARALLELISM
 */

#include <argon2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static unsigned  m_kib, t_cost, lanes;
static double    seconds;


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void *
hasher(void *arg)
{
    char            out[160];
    long           *count = arg;
    double          end = now() + seconds;
    unsigned char   salt[16];

    memset(salt, 0x5a, sizeof(salt));

    while (now() < end) {
        if (argon2id_hash_encoded(t_cost, m_kib, lanes, "bench password",
                                  14, salt, sizeof(salt), 32, out,
                                  sizeof(out)) != ARGON2_OK)
        {
            fprintf(stderr, "argon2_rate: hashing failed\n");
            exit(1);
        }
        (*count)++;
    }

    return NULL;
}


int
main(int argc, char **argv)
{
    int         i, n;
    long        total, *counts;
    pthread_t  *threads;

    if (argc != 6) {
        fprintf(stderr, "usage: argon2_rate THREADS SECONDS MEMORY_KIB "
                        "ITERATIONS PARALLELISM\n");
        return 2;
    }

    n = atoi(argv[1]);
    seconds = atof(argv[2]);
    m_kib = (unsigned) atoi(argv[3]);
    t_cost = (unsigned) atoi(argv[4]);
    lanes = (unsigned) atoi(argv[5]);

    if (n < 1 || seconds <= 0) {
        return 2;
    }

    threads = calloc(n, sizeof(pthread_t));
    counts = calloc(n, sizeof(long));
    if (threads == NULL || counts == NULL) {
        return 1;
    }

    for (i = 0; i < n; i++) {
        pthread_create(&threads[i], NULL, hasher, &counts[i]);
    }

    total = 0;
    for (i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        total += counts[i];
    }

    printf("%.1f\n", total / seconds);

    return 0;
}
