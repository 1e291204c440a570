// Client-side search over the Pagefind index built next to this file; no inline script, no network beyond 'self'.
// Runs as you type (debounced); each result shows its date, authors, topics and headline number.
const form = document.getElementById("search-form");
const input = document.getElementById("search-q");
const status = document.getElementById("search-status");
const list = document.getElementById("search-results");
const siteRoot = new URL(".", import.meta.url);
const DEBOUNCE_MS = 250;
let pagefind = null;
let latest = 0;
let timer = null;

async function load() {
  if (!pagefind) {
    pagefind = await import(new URL("pagefind/pagefind.js", siteRoot).href);
    await pagefind.options({ baseUrl: siteRoot.pathname });
  }
  return pagefind;
}

function text(html) {
  return new DOMParser().parseFromString(html, "text/html").body.textContent || "";
}

function element(tag, className, content) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (content) el.textContent = content;
  return el;
}

function result(d) {
  const meta = d.meta || {};
  const li = element("li", "finding");
  const a = element("a", "", meta.title || d.url);
  a.href = d.url;
  const h = element("h2");
  h.append(a);
  li.append(h);
  const line = element("p", "meta");
  for (const value of [meta.date, meta.authors, meta.topics]) {
    if (value) line.append(element("span", "", value));
  }
  if (line.childElementCount) li.append(line);
  if (meta.headline) li.append(element("p", "headline", meta.headline));
  li.append(element("p", "one-line", text(d.excerpt)));
  return li;
}

async function run(query) {
  const mine = ++latest;
  if (!query.trim()) { list.replaceChildren(); status.textContent = ""; return; }
  status.textContent = "Searching…";
  let pf;
  try { pf = await load(); } catch (err) { status.textContent = "Search index not built (run digest build)."; return; }
  const found = await pf.search(query);
  const data = await Promise.all(found.results.slice(0, 30).map((r) => r.data()));
  if (mine !== latest) return; // a newer query was typed meanwhile
  status.textContent = `${found.results.length} result${found.results.length === 1 ? "" : "s"} for “${query}”`;
  list.replaceChildren(...data.map(result));
}

function remember(query) {
  history.replaceState(null, "", query ? `?q=${encodeURIComponent(query)}` : location.pathname);
}

input.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(() => { remember(input.value); run(input.value); }, DEBOUNCE_MS);
});
form.addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(timer); remember(input.value); run(input.value); });
const initial = new URLSearchParams(location.search).get("q") || "";
input.value = initial;
run(initial);
