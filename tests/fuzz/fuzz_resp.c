
/*
 * hiredis (0.14) believes an array header of any size and allocates for it
 * before one element arrives: Redis is trusted with that, and the
 * harnesses are after our parsers, not hiredis's allocations, so arrays
 * larger than any reply of ours are refused as the reader refuses on out
 * of memory.  (The first input found: corpus/alloc_reply/oom-huge-array.)
 */

#include <stddef.h>

#include "fuzz_resp.h"


#define FUZZ_RESP_ARRAY_MAX  1024


static redisReplyObjectFunctions  *fuzz_resp_default;


static void *
fuzz_resp_array(const redisReadTask *task, int elements)
{
    return elements > FUZZ_RESP_ARRAY_MAX
           ? NULL : fuzz_resp_default->createArray(task, elements);
}


static void *
fuzz_resp_string(const redisReadTask *task, char *str, size_t len)
{
    return fuzz_resp_default->createString(task, str, len);
}


static void *
fuzz_resp_integer(const redisReadTask *task, long long value)
{
    return fuzz_resp_default->createInteger(task, value);
}


static void *
fuzz_resp_nil(const redisReadTask *task)
{
    return fuzz_resp_default->createNil(task);
}


static void
fuzz_resp_free(void *reply)
{
    fuzz_resp_default->freeObject(reply);
}


static redisReplyObjectFunctions  fuzz_resp_functions = {
    fuzz_resp_string, fuzz_resp_array, fuzz_resp_integer, fuzz_resp_nil,
    fuzz_resp_free
};


redisReader *
fuzz_resp_reader(void)
{
    redisReader  *reader;

    reader = redisReaderCreate();
    if (reader == NULL) {
        return NULL;
    }

    fuzz_resp_default = reader->fn;
    reader->fn = &fuzz_resp_functions;

    return reader;
}
