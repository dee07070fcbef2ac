// An operator's walk through the web UI in Debian's Chromium, clicking as a
// person would; tests/e2e/ui.rs prepares the server and checks the outcome.
//
//   node operator.mjs BASE_URL SCREENSHOT_DIR '{"stuck": RUN, "fixed": N, "sleeper": RUN, "big": RUN}'
//
// Prints one JSON object (what it measured) and exits 0, or prints why it
// stopped and exits 1.
import { chromium } from "playwright-core";

const [base, shots, given] = process.argv.slice(2);
const ids = JSON.parse(given);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const measured = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20_000);
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // The runs list: first paint of its rows, timed from navigation.
  const t0 = Date.now();
  await page.goto(base + "/");
  await page.locator("tr.run").first().waitFor();
  measured.runs_list_first_rows_ms = Date.now() - t0;
  measured.runs_listed = await page.locator("tr.run").count();
  await shot("runs");

  // A 2,002-event run's page: first paint of its whole event history,
  // timed from navigation.
  const t1 = Date.now();
  await page.goto(`${base}/#run=${ids.big}`);
  await page.locator("table.events tr").nth(2002).waitFor();
  measured.big_run_page_ms = Date.now() - t1;
  measured.big_run_events_shown = (await page.locator("table.events tr").count()) - 1;
  await page.goto(base + "/");
  await page.locator("tr.run").first().waitFor();

  // A list query over the run's fields, and a start time: runs started
  // since an hour ago match, none started since an hour ahead.
  const utc = (ms) => new Date(ms).toISOString().slice(0, 16);
  await page.locator("#f-q").fill("workflow = 'versioned'");
  await page.locator("#f-since").fill(utc(Date.now() - 3_600_000));
  await page.locator("#apply").click();
  await page.getByText("2 run(s)").waitFor();
  await page.locator("#f-since").fill(utc(Date.now() + 3_600_000));
  await page.locator("#apply").click();
  await page.getByText("0 run(s)").waitFor();
  await page.locator("#f-q").fill("");
  await page.locator("#f-since").fill("");

  // Filter by workflow from the keyboard: type, Enter.
  await page.locator("#f-workflow").fill("sleeper");
  await page.locator("#f-workflow").press("Enter");
  await page.waitForURL(/workflow=sleeper/);
  await page.getByText("1 run(s)").waitFor();
  measured.filtered_rows = await page.locator("tr.run").count();

  // Signal the sleeping run from its page: dismissing the confirmation
  // sends nothing; accepting it sends the signal, which shows as waiting.
  await page.locator(`a[href="#run=${ids.sleeper}"]`).click();
  await page.locator("#actions").waitFor();
  await page.locator("#signal-name").fill("nudge");
  await page.locator("#signal-payload").fill('{"by": "ui"}');
  page.once("dialog", (d) => d.dismiss());
  await page.locator("#signal").click();
  await page.waitForTimeout(300);
  if (await page.getByText("signals waiting").count()) throw new Error("a dismissed signal was sent");
  page.once("dialog", (d) => d.accept());
  await page.locator("#signal").click();
  await page.getByText("signals waiting: nudge").waitFor();
  await shot("run-signalled");

  // Workflows and versions: open runs per version, and a version's check
  // against the open runs.
  await page.locator('header a[href="#workflows"]').click();
  await page.locator(".workflow").first().waitFor();
  const row = page.locator(`tr.version:has(button[data-name="versioned"][data-version="${ids.fixed}"])`);
  await row.locator("button.check").click();
  await row.locator(".report").getByText("1 of 1 open run(s)").waitFor();
  await shot("versions");

  // The stuck run: its divergence, the versions it could move to with the
  // check's verdict, and the upgrade, confirmed.
  await page.goto(`${base}/#run=${ids.stuck}`);
  await page.locator("#stuck-box").waitFor();
  const upgrade = page.locator(`#stuck-box button.upgrade-to[data-version="${ids.fixed}"]`);
  await upgrade.waitFor();
  await shot("stuck-run");
  page.once("dialog", (d) => d.accept());
  await upgrade.click();
  await page.locator("h2 .status.running").waitFor();
  await page.getByText(`versioned v${ids.fixed}`).waitFor();

  // Cancel it from the same page, confirmed.
  page.once("dialog", (d) => d.accept());
  await page.locator("#cancel").click();
  // The run ends once its await answers: read the page again until then.
  for (let i = 0; !(await page.locator("h2 .status.cancelled").count()); i++) {
    if (i === 60) throw new Error("the run did not end cancelled");
    await page.waitForTimeout(500);
    await page.reload();
    await page.locator("h2").waitFor();
  }
  measured.ok = true;
  console.log(JSON.stringify(measured));
} catch (e) {
  console.log(JSON.stringify({ ...measured, ok: false, error: String(e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
