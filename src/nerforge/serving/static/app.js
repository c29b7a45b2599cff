// The nerforge web page: plain HTML, CSS and JavaScript served by the API itself.
//
// Why plain JS and not Gradio (or a framework with a build step)? Gradio would be one more heavy Python dependency
// with its own server and front-end assets; a build step would need Node at install time. This page needs nothing
// but a browser, works offline (it loads nothing from outside the machine, which the Content-Security-Policy also
// enforces), and we control exactly what is rendered. User and page text is only ever put into the page with
// textContent / createTextNode, never innerHTML, so it cannot inject markup.
"use strict";

(() => {
  const PALETTE = [
    "#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe",
    "#fed7aa", "#a5f3fc", "#f5d0fe", "#d9f99d", "#e7e5e4",
  ];
  const MAX_ROWS_SHOWN = 200;
  const state = { labels: [], limits: null, download: null, csvFile: null };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function colourOf(label) {
    let i = state.labels.indexOf(label);
    if (i < 0) {
      state.labels.push(label);
      i = state.labels.length - 1;
    }
    return PALETTE[i % PALETTE.length];
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text || "";
    status.className = kind || "";
  }

  async function api(path, options) {
    const response = await fetch(path, options);
    if (!response.ok) {
      let message = `The server answered HTTP ${response.status}.`;
      if ((response.headers.get("content-type") || "").includes("application/json")) {
        try {
          const body = await response.json();
          if (body && body.message) message = body.message;
        } catch (_) { /* keep the generic message */ }
      }
      throw new Error(message);
    }
    return response;
  }

  // ---- CSV (the same spreadsheet-safe escaping as the server's csvio.escape_cell) ----------------------------
  function escapeCell(value) {
    const text = String(value);
    return /^[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]/.test(text) ? "'" + text : text;
  }

  function csvText(header, rows) {
    const line = (cells) => cells.map((cell) => {
      const text = escapeCell(cell);
      return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
    }).join(",");
    return [header, ...rows].map(line).join("\r\n") + "\r\n";
  }

  function saveBlob(blob, filename) {
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  // ---- rendering ------------------------------------------------------------------------------------------
  function highlight(text, entities) {
    const fragment = document.createDocumentFragment();
    let at = 0;
    const sorted = [...entities].sort((a, b) => a.start - b.start || b.end - a.end);
    for (const entity of sorted) {
      if (entity.start < at || entity.end > text.length || entity.end <= entity.start) continue;
      fragment.appendChild(document.createTextNode(text.slice(at, entity.start)));
      const mark = el("mark", "entity");
      mark.dataset.label = entity.label;
      mark.style.backgroundColor = colourOf(entity.label);
      mark.title = `${entity.label} (score ${Number(entity.score).toFixed(2)})`;
      mark.appendChild(document.createTextNode(text.slice(entity.start, entity.end)));
      mark.appendChild(el("span", "entity-label", entity.label));
      fragment.appendChild(mark);
      at = entity.end;
    }
    fragment.appendChild(document.createTextNode(text.slice(at)));
    return fragment;
  }

  function renderLegend(seen) {
    const legend = $("legend");
    legend.replaceChildren();
    const labels = [...new Set([...state.labels, ...seen])];
    for (const label of labels) {
      const item = el("li", seen.has(label) ? "" : "unused");
      const swatch = el("span", "swatch");
      swatch.style.backgroundColor = colourOf(label);
      item.append(swatch, document.createTextNode(label));
      legend.appendChild(item);
    }
  }

  function distinctOf(blocks) {
    const counts = new Map();
    for (const block of blocks) {
      for (const e of block.entities) {
        const key = JSON.stringify([e.text, e.label]);
        counts.set(key, (counts.get(key) || 0) + 1);
      }
    }
    return [...counts.entries()]
      .map(([key, count]) => { const [text, label] = JSON.parse(key); return { text, label, count }; })
      .sort((a, b) => b.count - a.count || a.label.localeCompare(b.label) || a.text.localeCompare(b.text));
  }

  function renderDistinct(distinct) {
    const body = $("distinct").querySelector("tbody");
    body.replaceChildren();
    for (const d of distinct) {
      const row = el("tr");
      const name = el("td");
      const chip = el("mark", "entity", d.text);
      chip.style.backgroundColor = colourOf(d.label);
      name.appendChild(chip);
      row.append(name, el("td", "", d.label), el("td", "count", d.count));
      body.appendChild(row);
    }
    if (!distinct.length) {
      const row = el("tr");
      const cell = el("td", "muted", "No entities found.");
      cell.colSpan = 3;
      row.appendChild(cell);
      body.appendChild(row);
    }
  }

  // blocks: [{caption, text, entities, row}]; meta: optional line above the text.
  function showResults(blocks, meta, downloadName) {
    const container = $("highlighted");
    container.replaceChildren();
    const seen = new Set(blocks.flatMap((b) => b.entities.map((e) => e.label)));
    blocks.slice(0, MAX_ROWS_SHOWN).forEach((block) => {
      const box = el("div", "block");
      if (block.caption) box.appendChild(el("div", "caption", block.caption));
      const body = el("div", "text");
      body.appendChild(highlight(block.text, block.entities));
      box.appendChild(body);
      container.appendChild(box);
    });
    if (blocks.length > MAX_ROWS_SHOWN) {
      container.appendChild(el("p", "muted", `Showing ${MAX_ROWS_SHOWN} of ${blocks.length} rows; the download has all.`));
    }
    renderLegend(seen);
    const distinct = distinctOf(blocks);
    renderDistinct(distinct);
    const metaLine = $("page-meta");
    metaLine.hidden = !meta;
    metaLine.textContent = meta || "";
    const withRow = blocks.some((b) => b.row !== undefined);
    const header = withRow ? ["row", "text", "label", "start", "end", "score"] : ["text", "label", "start", "end", "score"];
    const rows = blocks.flatMap((b) => b.entities.map((e) => {
      const cells = [e.text, e.label, e.start, e.end, e.score];
      return withRow ? [b.row, ...cells] : cells;
    }));
    state.download = { name: downloadName, text: csvText(header, rows) };
    $("results").hidden = false;
    const n = blocks.reduce((sum, b) => sum + b.entities.length, 0);
    setStatus(`${n} ${n === 1 ? "entity" : "entities"} found (${distinct.length} distinct).`, "ok");
  }

  // ---- actions --------------------------------------------------------------------------------------------
  async function busy(button, work) {
    button.disabled = true;
    setStatus("Working…", "busy");
    try {
      await work();
    } catch (error) {
      setStatus(error.message || String(error), "error");
    } finally {
      button.disabled = false;
    }
  }

  const jsonPost = (body) => ({
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });

  async function runText() {
    const text = $("text-input").value;
    if (!text.trim()) { setStatus("Type or paste a text first.", "error"); return; }
    const data = await (await api("/v1/entities", jsonPost({ text }))).json();
    showResults([{ text, entities: data.entities }], "", "entities.csv");
  }

  async function runUrl() {
    const url = $("url-input").value.trim();
    if (!url) { setStatus("Enter the address of a web page first.", "error"); return; }
    const data = await (await api("/v1/entities/url", jsonPost({ url }))).json();
    let meta = `${data.title ? data.title + " — " : ""}${data.url}`;
    if (data.truncated) meta += " (text cut to the server's length limit)";
    showResults([{ text: data.text, entities: data.entities }], meta, "page-entities.csv");
  }

  function csvForm() {
    const file = $("csv-input").files[0];
    if (!file) throw new Error("Choose a CSV file first.");
    const form = new FormData();
    form.append("file", file, file.name);
    return { form, file };
  }

  async function runCsv() {
    const { form, file } = csvForm();
    const data = await (await api("/v1/entities/csv?format=json", { method: "POST", body: form })).json();
    state.csvFile = file;
    $("csv-download").disabled = false;
    const blocks = data.rows.map((r) => ({ caption: `Row ${r.row}`, row: r.row, text: r.text, entities: r.entities }));
    showResults(blocks, `${file.name}: ${data.rows.length} rows`, file.name.replace(/\.csv$/i, "") + ".entity-list.csv");
  }

  async function downloadCsv() {
    const { form, file } = csvForm();
    const response = await api("/v1/entities/csv?format=csv", { method: "POST", body: form });
    const disposition = response.headers.get("content-disposition") || "";
    const match = /filename="([^"]+)"/.exec(disposition);
    saveBlob(await response.blob(), match ? match[1] : file.name.replace(/\.csv$/i, "") + ".entities.csv");
    setStatus("Downloaded the CSV with an entities column.", "ok");
  }

  function selectTab(tab) {
    for (const other of document.querySelectorAll('[role="tab"]')) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
  }

  async function loadModel() {
    try {
      const info = await (await api("/v1/model")).json();
      state.limits = info.limits;
      info.labels.forEach(colourOf);
      $("model-line").textContent =
        `Model ${info.name}: ${info.labels.length} entity types (${info.labels.join(", ")}).`;
      updateCount();
    } catch (error) {
      $("model-line").textContent = `Model information unavailable: ${error.message}`;
    }
  }

  function updateCount() {
    const n = $("text-input").value.length;
    const limit = state.limits ? ` / ${state.limits.max_text_chars}` : "";
    $("text-count").textContent = `${n}${limit} characters`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const tabs = [...document.querySelectorAll('[role="tab"]')];
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", () => selectTab(tab));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(i + step + tabs.length) % tabs.length];
        selectTab(next);
        next.focus();
      });
    });
    $("text-input").addEventListener("input", updateCount);
    $("text-run").addEventListener("click", (e) => busy(e.currentTarget, runText));
    $("url-run").addEventListener("click", (e) => busy(e.currentTarget, runUrl));
    $("url-input").addEventListener("keydown", (e) => { if (e.key === "Enter") $("url-run").click(); });
    $("csv-run").addEventListener("click", (e) => busy(e.currentTarget, runCsv));
    $("csv-download").addEventListener("click", (e) => busy(e.currentTarget, downloadCsv));
    $("csv-input").addEventListener("change", () => { $("csv-download").disabled = true; });
    $("results-download").addEventListener("click", () => {
      if (!state.download) return;
      saveBlob(new Blob([state.download.text], { type: "text/csv" }), state.download.name);
    });
    loadModel();
  });
})();
