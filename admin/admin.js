/*
 * The operator page: reads /admin/metrics (the same text Prometheus
 * scrapes) every two seconds, keeps the last ten minutes in memory, and
 * plots them with uPlot.  Rates come from the difference of two scrapes;
 * a counter that goes back (a new shared memory zone after a reload that
 * changed the layout) starts its rate again instead of plotting a spike.
 */
"use strict";

(function () {
    const EVERY_MS = 2000;
    const KEEP = 300;                   /* samples: ten minutes */
    const STATES = ["Ready", "Allocated", "Playing", "Starting", "Finished",
                    "Lost", "Shutdown"];
    const COLORS = ["#2e7d32", "#1565c0", "#6a1b9a", "#ef6c00", "#00838f",
                    "#c62828", "#757575", "#ad1457", "#558b2f", "#4527a0"];

    const state = {
        samples: 0,
        errors: 0,
        time: [],
        series: {},                     /* name -> array aligned on time */
        previous: null,
        charts: {}
    };
    window.gameAdmin = state;           /* for the page's test */

    /* -- the text format ------------------------------------------------ */

    const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)$/;
    const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

    function parse(text) {
        const out = [];
        for (const line of text.split("\n")) {
            if (line === "" || line[0] === "#") {
                continue;
            }
            const m = LINE.exec(line);
            if (!m) {
                continue;
            }
            const labels = {};
            for (const l of (m[2] || "").matchAll(LABEL)) {
                labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) =>
                                            c === "n" ? "\n" : c);
            }
            out.push({ name: m[1], labels: labels, value: Number(m[3]) });
        }
        return out;
    }

    function sum(samples, name, where) {
        let total = 0;
        for (const s of samples) {
            if (s.name === name && (!where || where(s.labels))) {
                total += s.value;
            }
        }
        return total;
    }

    /* the value at quantile q of a histogram's bucket increments */
    function quantile(q, buckets) {
        const les = Object.keys(buckets).sort((a, b) =>
            (a === "+Inf" ? Infinity : Number(a))
            - (b === "+Inf" ? Infinity : Number(b)));
        const total = buckets["+Inf"] || 0;
        if (total <= 0) {
            return null;
        }
        let prevLe = 0, prevCount = 0;
        for (const le of les) {
            const count = buckets[le];
            if (count >= q * total) {
                if (le === "+Inf") {
                    return prevLe;
                }
                const upper = Number(le);
                const inBucket = count - prevCount;
                return inBucket > 0
                    ? prevLe + (upper - prevLe) * (q * total - prevCount)
                                                / inBucket
                    : upper;
            }
            prevLe = le === "+Inf" ? prevLe : Number(le);
            prevCount = count;
        }
        return prevLe;
    }

    /* -- one scrape ----------------------------------------------------- */

    function push(name, value) {
        let s = state.series[name];
        if (!s) {
            s = state.series[name] = new Array(state.time.length - 1)
                                         .fill(null);
        }
        s.push(value);
    }

    function rate(now, before, seconds) {
        if (before === undefined || now < before || seconds <= 0) {
            return null;
        }
        return (now - before) / seconds;
    }

    function record(samples, at) {
        const prev = state.previous;
        const dt = prev ? (at - prev.at) / 1000 : 0;
        const counters = {
            all: sum(samples, "game_http_requests_total"),
            c4xx: sum(samples, "game_http_requests_total",
                      l => l.code === "4xx"),
            c5xx: sum(samples, "game_http_requests_total",
                      l => l.code === "5xx"),
            matches: sum(samples, "game_mm_matches_total"),
            wait: {}
        };
        for (const s of samples) {
            if (s.name === "game_mm_time_to_match_seconds_bucket") {
                counters.wait[s.labels.le] =
                    (counters.wait[s.labels.le] || 0) + s.value;
            }
        }

        state.time.push(at / 1000);

        push("rps", prev ? rate(counters.all, prev.c.all, dt) : null);
        push("4xx", prev ? rate(counters.c4xx, prev.c.c4xx, dt) : null);
        push("5xx", prev ? rate(counters.c5xx, prev.c.c5xx, dt) : null);

        /* time to match over the last minute or so of scrapes */
        const old = state.history && state.history.length >= 30
                    ? state.history[state.history.length - 30] : null;
        const since = {};
        const base = old ? old.wait : (prev ? prev.c.wait : {});
        for (const le in counters.wait) {
            since[le] = counters.wait[le] - (base[le] || 0);
        }
        push("p50", quantile(0.5, since));
        push("p95", quantile(0.95, since));

        for (const s of samples) {
            if (s.name === "game_mm_tickets_queued") {
                state.queues = state.queues || new Set();
                state.queues.add(s.labels.queue);
            }
        }
        for (const q of state.queues || []) {
            push("queue:" + q, sum(samples, "game_mm_tickets_queued",
                                   l => l.queue === q));
        }
        for (const st of STATES) {
            push("fleet:" + st, sum(samples, "game_fleet_servers",
                                    l => l.state === st));
        }
        push("ccu", sum(samples, "game_fleet_players_seated"));

        state.history = state.history || [];
        state.history.push({ at: at, wait: counters.wait });
        if (state.history.length > 31) {
            state.history.shift();
        }

        if (state.time.length > KEEP) {
            state.time.shift();
            for (const k in state.series) {
                state.series[k].shift();
            }
        }

        tiles(samples, counters, prev, dt);
        tables(samples);
        state.previous = { at: at, c: counters };
        state.samples++;
    }

    /* -- what is shown -------------------------------------------------- */

    function fmt(v, digits) {
        return v === null || v === undefined || Number.isNaN(v)
            ? "–" : v.toFixed(digits);
    }

    function tiles(samples, c, prev, dt) {
        document.getElementById("ccu").textContent =
            fmt(sum(samples, "game_fleet_players_seated"), 0);
        document.getElementById("rps").textContent =
            fmt(prev ? rate(c.all, prev.c.all, dt) : null, 1);
        document.getElementById("errors").textContent =
            fmt(prev ? rate(c.c5xx, prev.c.c5xx, dt) : null, 2);
        document.getElementById("queued").textContent =
            fmt(sum(samples, "game_mm_tickets_queued"), 0);
        document.getElementById("matches").textContent =
            fmt(prev ? 60 * rate(c.matches, prev.c.matches, dt) : null, 1);
    }

    function row(tbody, cells) {
        const tr = document.createElement("tr");
        for (const c of cells) {
            const td = document.createElement("td");
            td.textContent = c;
            tr.appendChild(td);
        }
        tbody.appendChild(tr);
    }

    function tables(samples) {
        /* fleet: a row per region, a column per state */
        const fleet = document.getElementById("fleet");
        const head = fleet.tHead.rows[0];
        while (head.cells.length > 1) {
            head.deleteCell(1);
        }
        for (const st of STATES) {
            const th = document.createElement("th");
            th.textContent = st;
            head.appendChild(th);
        }
        const regions = new Set(samples.filter(s =>
            s.name === "game_fleet_servers").map(s => s.labels.region));
        let body = fleet.tBodies[0];
        body.replaceChildren();
        for (const r of [...regions].sort()) {
            row(body, [r].concat(STATES.map(st =>
                sum(samples, "game_fleet_servers",
                    l => l.region === r && l.state === st))));
        }

        const pools = [];
        for (const kind of ["pg", "redis"]) {
            const names = new Set(samples.filter(s =>
                s.name === "game_" + kind + "_pool_connections")
                .map(s => s.labels.pool));
            for (const p of names) {
                const v = n => sum(samples, "game_" + kind + "_pool_" + n,
                                   l => l.pool === p);
                pools.push([kind + ":" + p, v("connections"),
                            v(kind === "pg" ? "queries_in_flight"
                                            : "commands_in_flight"),
                            kind === "pg" ? v("queries_queued") : "–",
                            v("timeouts_total"), v("rejected_total")]);
            }
        }
        body = document.getElementById("pools").tBodies[0];
        body.replaceChildren();
        pools.forEach(p => row(body, p));

        const consumers = new Set(samples.filter(s =>
            s.name === "game_bus_acked_total").map(s => s.labels.consumer));
        body = document.getElementById("bus").tBodies[0];
        body.replaceChildren();
        for (const c of [...consumers].sort()) {
            const v = n => sum(samples, n, l => l.consumer === c);
            row(body, [c, v("game_bus_lag"), v("game_bus_pending"),
                       v("game_bus_dead_lettered_total")]);
        }
    }

    function chart(id, names, labels) {
        const el = document.getElementById(id);
        const series = [{}].concat(names.map((n, i) => ({
            label: labels ? labels[i] : n,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            spanGaps: true
        })));
        const data = [state.time].concat(names.map(n =>
            state.series[n] || new Array(state.time.length).fill(null)));
        const width = Math.max(el.clientWidth, 400);

        let c = state.charts[id];
        if (c && c.series.length !== series.length) {
            c.destroy();
            c = null;
        }
        if (!c) {
            c = state.charts[id] = new uPlot({
                width: width, height: 200, series: series,
                axes: [{}, { size: 50 }], scales: { x: { time: true } }
            }, data, el);
        } else {
            c.setData(data);
        }
    }

    function draw() {
        chart("chart-requests", ["rps", "4xx", "5xx"], ["all", "4xx", "5xx"]);
        const queues = [...(state.queues || [])].sort();
        chart("chart-queues", queues.map(q => "queue:" + q), queues);
        chart("chart-wait", ["p50", "p95"]);
        chart("chart-fleet", STATES.map(s => "fleet:" + s), STATES);
        chart("chart-ccu", ["ccu"], ["players seated"]);
    }

    async function tick() {
        const status = document.getElementById("status");
        try {
            const r = await fetch("metrics", { cache: "no-store" });
            if (!r.ok) {
                throw new Error("HTTP " + r.status);
            }
            record(parse(await r.text()), Date.now());
            draw();
            status.textContent = "live, every " + EVERY_MS / 1000 + " s";
            status.classList.remove("down");
        } catch (e) {
            state.errors++;
            status.textContent = "metrics unavailable: " + e.message;
            status.classList.add("down");
        }
        setTimeout(tick, EVERY_MS);
    }

    tick();
})();
