
/*
 * Checks of a join body; see game_mm_join.h.
 */

#include <string.h>

#include "game_mm_join.h"


int
game_mm_pick_region(json_t *regions, const game_mm_name_t *served, size_t n,
    double max_latency, const char **err)
{
    int          best;
    size_t       i, k;
    double       lat, best_lat;
    json_t      *item, *name, *ms;

    if (!json_is_array(regions) || json_array_size(regions) == 0
        || json_array_size(regions) > GAME_MM_JOIN_REGIONS_MAX)
    {
        *err = "\"regions\" must be a list of 1 to 64 "
               "{\"region\", \"latency_ms\"} objects";
        return -1;
    }

    best = -1;
    best_lat = 0;

    json_array_foreach(regions, i, item) {
        name = json_object_get(item, "region");
        ms = json_object_get(item, "latency_ms");

        if (!json_is_string(name) || !json_is_number(ms)
            || json_number_value(ms) < 0)
        {
            *err = "each region needs a \"region\" name and a "
                   "non-negative \"latency_ms\"";
            return -1;
        }

        lat = json_number_value(ms);

        if (lat > max_latency) {
            continue;
        }

        for (k = 0; k < n; k++) {
            if (served[k].len == json_string_length(name)
                && memcmp(served[k].data, json_string_value(name),
                          served[k].len) == 0
                && (best == -1 || lat < best_lat))
            {
                best = (int) k;
                best_lat = lat;
            }
        }
    }

    if (best == -1) {
        *err = "none of these regions serves this mode within its "
               "maximum latency";
    }

    return best;
}
