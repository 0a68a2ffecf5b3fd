// Drives the operator page in headless Chromium (Debian's, through
// playwright-core) and reports what a person would see, as JSON on stdout:
//   node page_check.js URL USER PASSWORD SCREENSHOT.png [SECONDS]
// The page must load without console errors, take at least three samples
// of /admin/metrics, and draw every chart with data.
"use strict";

const { chromium } = require("playwright-core");

async function main() {
    const [url, user, password, shot, seconds] = process.argv.slice(2);
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        args: ["--no-sandbox", "--disable-dev-shm-usage"]
    });
    const out = { console: [], pageErrors: [], failed: [] };

    try {
        const context = await browser.newContext({
            httpCredentials: { username: user, password: password },
            viewport: { width: 1400, height: 1000 }
        });
        const page = await context.newPage();
        page.on("console", m => {
            if (m.type() === "error" || m.type() === "warning") {
                out.console.push(m.type() + ": " + m.text());
            }
        });
        page.on("pageerror", e => out.pageErrors.push(String(e)));
        page.on("requestfailed", r => out.failed.push(r.url()));

        const r = await page.goto(url, { waitUntil: "load" });
        out.status = r.status();

        await page.waitForFunction(() => window.gameAdmin
            && window.gameAdmin.samples >= 3, null,
            { timeout: 1000 * Number(seconds || 30) });

        out.state = await page.evaluate(() => ({
            samples: window.gameAdmin.samples,
            errors: window.gameAdmin.errors,
            charts: Object.keys(window.gameAdmin.charts).length,
            canvases: document.querySelectorAll(".uplot canvas").length,
            series: Object.fromEntries(Object.entries(window.gameAdmin.series)
                .map(([k, v]) => [k, v.filter(x => x !== null).length])),
            tiles: Object.fromEntries([...document.querySelectorAll(".tile")]
                .map(t => [t.querySelector("h2").textContent,
                           t.querySelector("b").textContent])),
            fleetRows: document.querySelectorAll("#fleet tbody tr").length,
            poolRows: document.querySelectorAll("#pools tbody tr").length,
            busRows: document.querySelectorAll("#bus tbody tr").length,
            status: document.getElementById("status").textContent
        }));
        await page.screenshot({ path: shot, fullPage: true });
    } finally {
        await browser.close();
    }
    process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch(e => {
    process.stdout.write(JSON.stringify({ fatal: String(e) }) + "\n");
    process.exit(1);
});
