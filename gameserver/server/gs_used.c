/* gs_used.c: the tickets a server has seated (see gs_used.h). */

#include <stdio.h>
#include <string.h>

#include "gs_used.h"


void
gs_used_init(gs_used_t *u)
{
    u->n = 0;
    u->next = 0;
}


int
gs_used_has(const gs_used_t *u, const char *key)
{
    int  i;

    if (key == NULL || key[0] == '\0') {
        return 0;
    }
    for (i = 0; i < u->n; i++) {
        if (strcmp(u->keys[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}


void
gs_used_add(gs_used_t *u, const char *key)
{
    snprintf(u->keys[u->next], sizeof(u->keys[0]), "%s", key);
    u->next = (u->next + 1) % GS_USED_MAX;
    if (u->n < GS_USED_MAX) {
        u->n++;
    }
}
