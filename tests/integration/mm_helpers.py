"""Helpers shared by the matchmaking tests: real guest players (device
sign-in through the auth module), the matchmaking endpoints, and a fake
allocator entry standing in for a game server."""

import json
import os
import subprocess
import time
import uuid

import requests

from auth_helpers import bearer


def device_player(s):
    r = requests.post(s.url("/auth/device"), timeout=10,
                      json={"device_id": "dev-" + uuid.uuid4().hex})
    assert r.status_code in (200, 201), r.text
    body = r.json()
    return body["player_id"], bearer(body["access_token"])


def join(s, auth, mode="duel", regions=None, **extra):
    body = {"game_mode": mode,
            "regions": regions if regions is not None
            else [{"region": "local", "latency_ms": 12}]}
    body.update(extra)
    return requests.post(s.url("/matchmaking/join"), json=body, headers=auth,
                         timeout=10)


def status(s, auth):
    return requests.get(s.url("/matchmaking/status"), headers=auth, timeout=10)


def cancel(s, auth):
    return requests.delete(s.url("/matchmaking/ticket"), headers=auth,
                           timeout=10)


def error_code(r):
    return r.json()["error"]["code"]


ALLOCATE = os.path.join(os.path.dirname(__file__), "..", "..", "gameserver",
                        "build", "game-allocate")


class FakeServer:
    """A registered, heart-beating server entry in the allocator, standing
    in for a game server (the game server tests cover the real one)."""

    def __init__(self, stack, port, mode="duel"):
        self.id = "mmtest-%d-%s" % (port, uuid.uuid4().hex[:6])
        self.token = uuid.uuid4().hex
        self.port = port
        base = [ALLOCATE, "--redis", "127.0.0.1:%d" % stack.redis_port]
        subprocess.run(base + ["register", "--id", self.id, "--addr",
                               "127.0.0.1", "--port", str(port), "--region",
                               "local", "--mode", mode, "--state", "Ready",
                               "--token", self.token, "--ttl", "3000"],
                       check=True, capture_output=True)
        self.hb = subprocess.Popen(
            base + ["heartbeat", "--id", self.id, "--token", self.token,
                    "--repeat", "120", "--interval", "500"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        """No more heartbeats: to the allocator, the server died."""
        self.hb.kill()
        self.hb.wait()

    def publish(self, rds, match_id, reason="time", players=(), winner=None,
                server_id=None):
        """A result on game:results, as a game server publishes it (one
        per match id, guarded by SET NX)."""
        return publish_result(rds, match_id, server_id or self.id, reason,
                              players, winner)


def publish_result(rds, match_id, server_id, reason="time", players=(),
                   winner=None):
    result = {"match_id": match_id, "server_id": server_id, "mode": "dm",
              "reason": reason, "winner": winner, "started_at_ms":
              int(time.time() * 1000) - 5000, "duration_ms": 5000,
              "expected_players": len(players),
              "players": [{"id": p, "slot": i, "kills": 1, "deaths": 0,
                           "shots": 1, "hits": 1, "violations": {},
                           "flagged": False, "connected": True}
                          for i, p in enumerate(players)],
              "violations": {}, "flagged_players": 0}
    rds.set("game:result:" + match_id, server_id, nx=True, ex=3600)
    return rds.xadd("game:results", {"match_id": match_id,
                                     "server_id": server_id,
                                     "result": json.dumps(result)})


def wait_status(s, auth, want, timeout=8.0):
    """Poll the player's status until it says "want"; the last answer."""
    end = time.monotonic() + timeout
    while True:
        st = status(s, auth).json()
        if st.get("status") == want:
            return st
        if time.monotonic() > end:
            raise AssertionError("status %r, wanted %r" % (st, want))
        time.sleep(0.2)


SERVER_BIN = os.path.join(os.path.dirname(__file__), "..", "..", "gameserver",
                          "build", "game-server")
BOT_BIN = os.path.join(os.path.dirname(__file__), "..", "..", "gameserver",
                       "build", "game-bot")


def party_create(s, auth):
    return requests.post(s.url("/party"), headers=auth, timeout=10)


def party_join(s, auth, party):
    return requests.post(s.url("/party/%s/join" % party), headers=auth,
                         timeout=10)


