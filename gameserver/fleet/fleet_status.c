/*
 * fleet_status.c: the status file, one JSON object per server per line.
 *
 * It is the fleet's memory too: what it spawned (id, pid, port, region,
 * spawn time), read back by a restarted fleet to adopt the servers that
 * still run (fleet_adopt.c).  Written to a temporary name and renamed, so
 * that `game-fleet status` and a restarted fleet never read half a file.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fleet.h"


int
fleet_status_write(const char *path, const fleet_conf_t *c,
    const fleet_server_t *s, int n)
{
    char     tmp[FLEET_PATH_MAX + 8];
    FILE    *f;
    json_t  *j;
    int      i;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        j = json_pack("{s:s, s:i, s:i, s:s, s:s, s:b, s:b, s:I}",
                      "id", s[i].id, "pid", (int) s[i].pid,
                      "port", s[i].port,
                      "region", c->regions[s[i].region].name,
                      "state", s[i].seen ? game_alloc_state_name(s[i].state)
                                         : "Starting",
                      "retiring", s[i].retiring, "adopted", s[i].adopted,
                      "spawned_at_ms", (json_int_t) s[i].spawned_at_ms);
        if (j != NULL) {
            json_dumpf(j, f, JSON_COMPACT);
            fputc('\n', f);
            json_decref(j);
        }
    }
    if (fclose(f) != 0) {
        return -1;
    }
    return rename(tmp, path);
}


int
fleet_status_print(const char *path)
{
    FILE     *f;
    char      line[1024];
    json_t   *j;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "game-fleet: no status at %s (is the fleet running?)\n",
                path);
        return 1;
    }
    printf("%-28s %8s %6s %-12s %s\n", "ID", "PID", "PORT", "REGION",
           "STATE");
    while (fgets(line, sizeof(line), f) != NULL) {
        j = json_loads(line, 0, NULL);
        if (j == NULL) {
            continue;
        }
        printf("%-28s %8d %6d %-12s %s%s%s\n",
               json_string_value(json_object_get(j, "id")),
               (int) json_integer_value(json_object_get(j, "pid")),
               (int) json_integer_value(json_object_get(j, "port")),
               json_string_value(json_object_get(j, "region")),
               json_string_value(json_object_get(j, "state")),
               json_is_true(json_object_get(j, "retiring"))
               ? " (retiring)" : "",
               json_is_true(json_object_get(j, "adopted"))
               ? " (adopted)" : "");
        json_decref(j);
    }
    fclose(f);
    return 0;
}


int
fleet_status_load(const char *path, const fleet_conf_t *c,
    fleet_server_t *s, int max, int *n,
    char regions[][GAME_ALLOC_NAME_MAX + 1])
{
    FILE        *f;
    char         line[1024];
    json_t      *j;
    const char  *id, *region;
    int          r, pid, port;
    json_int_t   at;

    *n = 0;
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }

    while (*n < max && fgets(line, sizeof(line), f) != NULL) {
        at = 0;
        j = json_loads(line, 0, NULL);
        if (j == NULL
            || json_unpack(j, "{s:s, s:i, s:i, s:s, s?I}", "id", &id,
                           "pid", &pid, "port", &port, "region", &region,
                           "spawned_at_ms", &at) != 0
            || strlen(id) > GAME_ALLOC_NAME_MAX
            || strlen(region) > GAME_ALLOC_NAME_MAX || pid <= 1)
        {
            json_decref(j);
            continue;
        }
        memset(&s[*n], 0, sizeof(s[*n]));
        strcpy(s[*n].id, id);
        strcpy(regions[*n], region);
        s[*n].pid = (pid_t) pid;
        s[*n].port = port;
        s[*n].spawned_at_ms = at;
        s[*n].region = -1;
        for (r = 0; r < c->nregions; r++) {
            if (strcmp(c->regions[r].name, region) == 0) {
                s[*n].region = r;
            }
        }
        (*n)++;
        json_decref(j);
    }

    fclose(f);
    return 0;
}
