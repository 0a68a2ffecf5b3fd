
/*
 * A pool for harnesses that run nginx module code (ngx_fuzz_shim.c).
 */

#ifndef _NGX_FUZZ_SHIM_H_INCLUDED_
#define _NGX_FUZZ_SHIM_H_INCLUDED_


ngx_pool_t *ngx_fuzz_pool(void);
void ngx_fuzz_pool_free(ngx_pool_t *pool);


#endif /* _NGX_FUZZ_SHIM_H_INCLUDED_ */
