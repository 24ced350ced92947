// Shared by the browser scenarios: headless Chromium (Debian's package, or BREAKWATER_CHROMIUM)
// through playwright-core, with the flags this machine needs; screenshots under SCREENSHOTS.
// A scenario is run by the end-to-end suite (tests/e2e/browser.rs), which starts the edge and
// passes its address in EDGE_URL; it exits non-zero with a message when a check fails.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const edge = required("EDGE_URL");
const screenshots = process.env.SCREENSHOTS ?? "target/browser";

export function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is not set (the end-to-end suite sets it; see tests/e2e/browser.rs)`);
  return value;
}

export function fail(message) {
  console.error(`browser: ${message}`);
  process.exit(1);
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Runs `scenario(browser)` in a fresh headless Chromium, closing it whatever happens. */
export async function run(scenario) {
  const browser = await chromium.launch({
    executablePath: required("BREAKWATER_CHROMIUM"),
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const summary = await scenario(browser);
    console.log(JSON.stringify(summary ?? {}));
  } catch (e) {
    fail(e.stack ?? String(e));
  } finally {
    await browser.close();
  }
}

/** Saves a full-page screenshot as `name`.png for review. */
export async function screenshot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  const path = join(screenshots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
