const { chromium } = require('playwright-core');
const check = (p) => p.evaluate(() => new Promise((ok) => {
  let n = 0; const t0 = performance.now();
  const tick = () => { n++; if (performance.now() - t0 < 300) requestAnimationFrame(tick); else ok({ n, vis: document.visibilityState, focus: document.hasFocus() }); };
  requestAnimationFrame(tick);
  setTimeout(() => ok({ n, vis: document.visibilityState, focus: document.hasFocus(), timeout: true }), 2000);
}));
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
  const pages = [];
  for (let i = 0; i < 3; i++) {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.setContent('<button onclick="this.textContent++">0</button>');
    pages.push(p);
  }
  const t0 = Date.now();
  while (Date.now() - t0 < Number(process.argv[2] || 30000)) { await pages[1].click('button'); await new Promise((r) => setTimeout(r, 200)); }
  for (const [i, p] of pages.entries()) console.log(i, JSON.stringify(await check(p)));
  await browser.close();
})();
