/* gs_used.h: the tickets a server has seated, by signature and by jti. */

#ifndef GS_USED_H
#define GS_USED_H

#define GS_USED_MAX   4096          /* keys remembered */
#define GS_USED_KEY   96            /* a key's room, with its NUL */

/*
 * A ring, never reset: a ticket seated in one match stays spent through
 * every later allocation of the server (the server once emptied it on
 * allocation, forgetting tickets presented before).  Past GS_USED_MAX
 * keys (2048 players, a signature and a jti each) the oldest go; a
 * ticket's short exp has long run out by then.
 */
typedef struct {
    char  keys[GS_USED_MAX][GS_USED_KEY];
    int   n, next;
} gs_used_t;

void gs_used_init(gs_used_t *u);
int  gs_used_has(const gs_used_t *u, const char *key);
void gs_used_add(gs_used_t *u, const char *key);

#endif
