"""Netcode on a bad network: game-bot's --loss and --latency, its
prediction and reconciliation, the server's input-time checks and its
delta snapshots.  Real game-server and game-bot on loopback; the bad
network is simulated inside game-bot (PROTOCOL.md, "game-bot").
"""

from test_gameserver import env, keys, wait_for  # noqa: F401


def _result(env, match):
    wait_for(lambda: any(r["match_id"] == match for r in env.results()), 5)
    return next(r for r in env.results() if r["match_id"] == match)


def test_honest_bots_under_loss_and_latency_finish_unflagged(env):
    """5 % of inputs and snapshots lost, 100 ms added to the round trip:
    honest bots play the match out, nobody is flagged, and the bots'
    predictions agree with the server (the few corrections are inputs
    lost while the bot turned)."""
    env.server(match_seconds=6, score_limit=0)
    rc, out, err = env.direct(players=4, match="m-lossy", duration=25,
                              loss=5, latency=100)
    assert rc == 0, (out, err)
    for b in out["bots"]:
        assert b["ok"] and b["match_end"] == {"reason": "time"}, b
        pr = b["prediction"]
        assert pr["checks"] > 50, b
        assert pr["corrections"] * 5 < pr["checks"], b
        assert pr["snapshots_undecodable"] * 20 < b["snapshots"], b

    r = _result(env, "m-lossy")
    assert r["reason"] == "time"
    assert r["violations"] == {"speed": 0, "fire_rate": 0, "input_rate": 0,
                               "out_of_bounds": 0}, r
    assert r["flagged_players"] == 0
    assert all(not pl["flagged"] for pl in r["players"])
    # shots were traced where the shooters saw their targets, 100 ms back
    assert sum(pl["rewound_shots"] for pl in r["players"]) > 0, r


def test_delta_snapshots_send_less_than_whole_ones(env):
    """The same four bots against a server sending whole snapshots and one
    sending deltas: the deltas cost fewer bytes per player and second, and
    every bot decodes them."""
    sent = {}
    for mode in ("full", "delta"):
        # one match each, so the allocator cannot pick the other one
        env.server(match_seconds=4, score_limit=0, snapshots=mode,
                   max_matches=1)
        match = "m-snap-" + mode
        rc, out, err = env.direct(players=4, match=match, duration=20)
        assert rc == 0, (out, err)
        assert all(b["ok"] and b["prediction"]["snapshots_undecodable"] == 0
                   for b in out["bots"]), out
        sent[mode] = _result(env, match)["bytes_per_s_per_player"]["out"]
    assert sent["delta"] < sent["full"], sent
