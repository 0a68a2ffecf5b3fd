
/*
 * hiredis's RESP reader for the harnesses that read Redis replies.
 */

#ifndef _FUZZ_RESP_H_INCLUDED_
#define _FUZZ_RESP_H_INCLUDED_


#include <hiredis/hiredis.h>


/* a reader that refuses arrays larger than any reply of ours */
redisReader *fuzz_resp_reader(void);


#endif /* _FUZZ_RESP_H_INCLUDED_ */
