/*
 * bot_progress.c: what game-bot is doing, told on stderr as it happens.
 *
 * A player's run takes minutes (the queue, then the match); a tool that
 * says nothing for that long looks hung.  Each step is one line on stderr
 * ("game-bot: bot 0 (player ...): matched on 127.0.0.1:7777"), so that
 * stdout keeps exactly one thing, the JSON summary, for scripts.  --quiet
 * silences it.  With many bots only the first few are told one by one.
 */

#include <stdarg.h>
#include <stdio.h>

#include "bot.h"


#define BOT_PROGRESS_BOTS   4       /* bots told one by one */

static int  bot_progress_on = 1;


void
bot_progress_quiet(int quiet)
{
    bot_progress_on = !quiet;
}


void
bot_progress(const bot_t *b, int index, const char *fmt, ...)
{
    char     line[512];
    va_list  ap;

    if (!bot_progress_on || index >= BOT_PROGRESS_BOTS) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "game-bot: bot %d%s%s%s: %s\n", index,
            b->player[0] ? " (" : "", b->player, b->player[0] ? ")" : "",
            line);
    fflush(stderr);
}
