/*
 * fleet_status.c: the status file, one JSON object per server per line.
 *
 * Written to a temporary name and renamed, so that `game-fleet status`
 * (another process) never reads half a file.
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
    char     tmp[1100];
    FILE    *f;
    json_t  *j;
    int      i;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        j = json_pack("{s:s, s:i, s:i, s:s, s:s, s:b}", "id", s[i].id,
                      "pid", (int) s[i].pid, "port", s[i].port,
                      "region", c->regions[s[i].region].name,
                      "state", s[i].seen ? game_alloc_state_name(s[i].state)
                                         : "Starting",
                      "retiring", s[i].retiring);
        json_dumpf(j, f, JSON_COMPACT);
        fputc('\n', f);
        json_decref(j);
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
        printf("%-28s %8d %6d %-12s %s%s\n",
               json_string_value(json_object_get(j, "id")),
               (int) json_integer_value(json_object_get(j, "pid")),
               (int) json_integer_value(json_object_get(j, "port")),
               json_string_value(json_object_get(j, "region")),
               json_string_value(json_object_get(j, "state")),
               json_is_true(json_object_get(j, "retiring"))
               ? " (retiring)" : "");
        json_decref(j);
    }
    fclose(f);
    return 0;
}
