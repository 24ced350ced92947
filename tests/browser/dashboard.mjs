// The operator dashboard in a browser: a wrong token is refused, the right one opens a session
// whose cookie scripts cannot read, the figures move after traffic, and the replay button
// replays the dead letter the suite created (its id in DEAD_LETTER). Screenshots: light, dark,
// and a phone's width.

import { check, edge, required, run, screenshot } from "./browser.mjs";

const token = required("ADMIN_TOKEN");
const deadLetter = required("DEAD_LETTER");
const WAIT = { timeout: 20_000 };

/** The dashboard's total of answers, all outcomes summed. */
const answered = (page) =>
  page.$$eval("#outcomes tbody tr", (rows) =>
    rows.reduce((sum, row) => sum + Number(row.cells[2].textContent), 0));

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${edge}/_breakwater/`);
  await page.waitForSelector("#login:not([hidden])", WAIT);

  await page.fill("#token", "not-the-admin-token");
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#login-error:not([hidden])", WAIT);
  const refusal = await page.textContent("#login-error");
  check(/unauthorized/i.test(refusal), `a wrong token said: ${refusal}`);
  check(await page.isHidden("#board"), "a wrong token showed the board");

  await page.fill("#token", token);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#board:not([hidden])", WAIT);
  await page.waitForFunction(() => document.querySelectorAll("#outcomes tbody tr").length > 0, null, WAIT);

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "__Secure-breakwater-admin");
  check(session, `no session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
  check(session.httpOnly && session.secure && session.sameSite === "Strict",
    `session cookie attributes: ${JSON.stringify(session)}`);
  check(!(await page.evaluate(() => document.cookie)).includes("breakwater-admin"),
    "the page's script can read the session cookie");

  const before = await answered(page);
  for (let i = 0; i < 25; i++) {
    const response = await fetch(`${edge}/api/products/${1 + (i % 5)}`);
    check(response.ok, `product read: ${response.status}`);
  }
  await page.waitForFunction(
    (min) => [...document.querySelectorAll("#outcomes tbody tr")]
      .reduce((sum, row) => sum + Number(row.cells[2].textContent), 0) >= min,
    before + 25, WAIT);
  const after = await answered(page);
  await page.waitForFunction(() => document.querySelector("#rps").textContent !== "–", null, WAIT);

  const row = page.locator("#dead tbody tr", { hasText: deadLetter });
  await row.waitFor(WAIT);
  await screenshot(page, "dashboard-light");
  await row.getByRole("button", { name: "Replay" }).click();
  await page.waitForSelector('#dead-title[data-replayed="1"]', WAIT);

  await page.emulateMedia({ colorScheme: "dark" });
  await screenshot(page, "dashboard-dark");
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, "dashboard-phone");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page is ${overflow}px wider than a phone's screen`);

  await page.click("#sign-out");
  await page.waitForSelector("#login:not([hidden])", WAIT);
  const left = (await context.cookies()).find((c) => c.name === "__Secure-breakwater-admin");
  check(!left, "signing out left the session cookie");
  return { answered_before: before, answered_after: after };
});
