/*
 * gs_defaults.h: game-server defaults that the fleet manager must agree
 * with.
 *
 * A drained server lets its match finish: its grace defaults to one whole
 * match (the join timeout, the match, and slack for the result and the
 * goodbye).  The fleet manager computes the same figure from the options it
 * passes, to keep its own SIGKILL deadline beyond it.
 */
#ifndef GS_DEFAULTS_H
#define GS_DEFAULTS_H

#define GS_DEFAULT_JOIN_TIMEOUT_S  10
#define GS_DEFAULT_MATCH_SECONDS   120
#define GS_DRAIN_SLACK_S           10

static inline int
gs_drain_grace_default(int join_timeout_s, int match_seconds)
{
    return join_timeout_s + match_seconds + GS_DRAIN_SLACK_S;
}

#endif /* GS_DEFAULTS_H */
