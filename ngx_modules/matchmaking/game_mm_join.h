
/*
 * What a join body asks the matchmaker, checked without nginx: the handler
 * (ngx_game_mm_api.c) answers what these functions say, and the unit tests
 * (tests/unit/test_mm_join.c) and the JSON fuzz harness run the very same
 * checks.
 */

#ifndef _GAME_MM_JOIN_H_INCLUDED_
#define _GAME_MM_JOIN_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


#define GAME_MM_JOIN_REGIONS_MAX  64    /* entries of "regions" */


typedef struct {
    const char  *data;
    size_t       len;
} game_mm_name_t;


/*
 * The lowest-latency region of "regions" ([{"region": "eu", "latency_ms":
 * 35}, ...]) among the n regions "served", within "max_latency"
 * milliseconds: its index in "served", or -1 with the client's message in
 * "err" (a static string).
 */
int game_mm_pick_region(json_t *regions, const game_mm_name_t *served,
    size_t n, double max_latency, const char **err);


#endif /* _GAME_MM_JOIN_H_INCLUDED_ */
