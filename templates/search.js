// Client-side search over the Pagefind index built next to this file; no inline script, no network beyond 'self'.
const form = document.getElementById("search-form");
const input = document.getElementById("search-q");
const status = document.getElementById("search-status");
const list = document.getElementById("search-results");
const siteRoot = new URL(".", import.meta.url);
let pagefind = null;

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

async function run(query) {
  list.replaceChildren();
  if (!query.trim()) { status.textContent = ""; return; }
  status.textContent = "Searching…";
  let pf;
  try { pf = await load(); } catch (err) { status.textContent = "Search index not built (run digest build)."; return; }
  const found = await pf.search(query);
  const data = await Promise.all(found.results.slice(0, 30).map((r) => r.data()));
  status.textContent = `${found.results.length} result${found.results.length === 1 ? "" : "s"} for “${query}”`;
  for (const d of data) {
    const li = document.createElement("li");
    li.className = "finding";
    const a = document.createElement("a");
    a.href = d.url;
    a.textContent = (d.meta && d.meta.title) || d.url;
    const h = document.createElement("h3");
    h.append(a);
    const p = document.createElement("p");
    p.className = "one-line";
    p.textContent = text(d.excerpt);
    li.append(h, p);
    list.append(li);
  }
}

form.addEventListener("submit", (e) => { e.preventDefault(); history.replaceState(null, "", `?q=${encodeURIComponent(input.value)}`); run(input.value); });
const initial = new URLSearchParams(location.search).get("q") || "";
input.value = initial;
run(initial);
