// The nerforge web page: plain HTML, CSS and JavaScript served by the API itself.
//
// Why plain JS and not Gradio (or a framework with a build step)? Gradio would be one more heavy Python dependency
// with its own server and front-end assets; a build step would need Node at install time. This page needs nothing
// but a browser, works offline (it loads nothing from outside the machine, which the Content-Security-Policy also
// enforces), and we control exactly what is rendered. User and page text is only ever put into the page with
// textContent / createTextNode, never innerHTML, so it cannot inject markup.
//
// Each tab (Text, URL, CSV) keeps its own result, status and run: a run belongs to the tab that started it, a new
// run in a tab cancels that tab's previous one, and a result is shown only while its own tab is selected. Large
// CSV files run as server-side jobs (/v1/jobs): the page polls the job, shows its progress and the rows done so
// far, and remembers the job's id so a reload picks it up again.
"use strict";

(() => {
  const E = window.NerforgeEntities;
  const PALETTE = [
    "#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe",
    "#fed7aa", "#a5f3fc", "#f5d0fe", "#d9f99d", "#e7e5e4",
  ];
  const MAX_ROWS_SHOWN = 200;
  const COLLAPSE_CHARS = 1500;
  const POLL_MS = 400;
  const JOB_KEY = "nerforge.csvJob";
  const TABS = ["text", "url", "csv"];

  const state = {
    labels: [],
    limits: null,
    tab: "text",
    results: { text: null, url: null, csv: null }, // {blocks, meta, downloadName, job}
    status: { text: null, url: null, csv: null }, // {text, kind}
    runs: { text: null, url: null, csv: null }, // {controller, started, jobId}
    hidden: new Set(),
    minScore: 0,
    sort: { key: "count", direction: "descending" },
  };

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

  async function api(path, options) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error("The server could not be reached; is nerforge serve still running?");
    }
    if (!response.ok) {
      let message = `The server answered HTTP ${response.status}.`;
      let code = "";
      if ((response.headers.get("content-type") || "").includes("application/json")) {
        try {
          const body = await response.json();
          if (body && body.message) message = body.message;
          code = (body && body.error) || "";
        } catch (_) { /* keep the generic message */ }
      }
      const error = new Error(message);
      error.status = response.status;
      error.code = code;
      throw error;
    }
    return response;
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

  // ---- status, busy indicator, progress (per tab; only the selected tab's are shown) -------------------------
  function setStatus(tab, text, kind) {
    state.status[tab] = text ? { text, kind: kind || "" } : null;
    if (tab === state.tab) showStatus();
  }

  function showStatus() {
    const status = state.status[state.tab];
    $("status").textContent = status ? status.text : "";
    $("status").className = status ? status.kind : "";
  }

  function showBusy() {
    const run = state.runs[state.tab];
    $("busy").hidden = !run;
    if (run) $("busy-text").textContent = `Working… ${E.duration((performance.now() - run.started) / 1000)}`;
    for (const tab of TABS) $(`${tab}-run`).disabled = Boolean(state.runs[tab]) || (tab === "text" && overLimit());
  }

  function showProgress(job) {
    const box = $("progress");
    if (!job) { box.hidden = true; return; }
    box.hidden = false;
    $("progress-bar").max = Math.max(job.rows_total, 1);
    $("progress-bar").value = job.rows_done;
    let text = `${job.rows_done} of ${job.rows_total} rows`;
    if (job.status === "queued") text += job.queue_position ? ` — waiting for ${job.queue_position} job(s) ahead` : " — starting";
    if (job.status === "running" && job.eta_s !== null) text += ` — about ${E.duration(job.eta_s)} left`;
    if (job.status === "done") text += ` — done in ${E.duration(job.elapsed_s)}`;
    if (job.status === "cancelled") text += " — cancelled";
    if (job.status === "failed") text += " — failed";
    $("progress-text").textContent = text;
  }

  setInterval(() => { if (state.runs[state.tab]) showBusy(); }, 200);

  // ---- rendering ------------------------------------------------------------------------------------------
  const visible = (e) => !state.hidden.has(e.label) && Number(e.score) >= state.minScore;

  // A layered model's entities overlap across layers: the text once per layer, each row named by its layer, so
  // that an entity inside another (a knowledge term inside a skill) is as legible as the one around it.
  // Entities nested in one another without layers (a span head's) are drawn the same way, one row per depth:
  // "outer", then "inner" (and "inner 2", ... when deeper).
  function highlight(text, entities) {
    const layers = [...new Set(entities.filter((e) => e.layer).map((e) => e.layer))];
    if (!layers.length) {
      const levels = E.depths(entities);
      const deepest = Math.max(0, ...levels.map((l) => l.depth));
      if (!deepest) return highlightRow(text, entities);
      const fragment = document.createDocumentFragment();
      for (let depth = 0; depth <= deepest; depth += 1) {
        const name = depth === 0 ? "outer" : depth === 1 ? "inner" : `inner ${depth}`;
        const row = el("div", "layer-row");
        row.dataset.depth = String(depth);
        row.appendChild(el("span", "layer-name", name));
        row.appendChild(highlightRow(text, levels.filter((l) => l.depth === depth).map((l) => l.entity)));
        fragment.appendChild(row);
      }
      return fragment;
    }
    const fragment = document.createDocumentFragment();
    for (const layer of layers) {
      const row = el("div", "layer-row");
      row.dataset.layer = layer;
      row.appendChild(el("span", "layer-name", layer));
      row.appendChild(highlightRow(text, entities.filter((e) => e.layer === layer)));
      fragment.appendChild(row);
    }
    return fragment;
  }

  function highlightRow(text, entities) {
    const fragment = document.createDocumentFragment();
    for (const piece of E.segments(text, entities)) {
      if (!piece.entity) {
        fragment.appendChild(document.createTextNode(piece.text));
        continue;
      }
      const entity = piece.entity;
      const score = Number(entity.score).toFixed(2);
      const mark = el("mark", "entity");
      mark.dataset.label = entity.label;
      mark.dataset.score = String(entity.score);
      if (entity.layer) mark.dataset.layer = entity.layer;
      mark.tabIndex = 0;
      mark.style.setProperty("--entity-colour", colourOf(entity.label));
      mark.setAttribute("aria-label", `${piece.text}: ${entity.label}, score ${score}`);
      mark.title = `${entity.label} (score ${score})`;
      mark.appendChild(document.createTextNode(piece.text));
      mark.appendChild(el("span", "entity-label", entity.label));
      mark.appendChild(el("span", "entity-score", score));
      if (!visible(entity)) mark.classList.add("off");
      fragment.appendChild(mark);
    }
    return fragment;
  }

  function renderLegend(result) {
    const legend = $("legend");
    legend.replaceChildren();
    const seen = new Set(result.blocks.flatMap((b) => b.entities.map((e) => e.label)));
    for (const label of [...new Set([...state.labels, ...seen])]) {
      const item = el("li", seen.has(label) ? "" : "unused");
      const button = el("button", "type-toggle");
      button.type = "button";
      button.dataset.label = label;
      button.setAttribute("aria-pressed", String(!state.hidden.has(label)));
      const swatch = el("span", "swatch");
      swatch.style.backgroundColor = colourOf(label);
      button.append(swatch, document.createTextNode(label));
      button.addEventListener("click", () => {
        if (state.hidden.has(label)) state.hidden.delete(label); else state.hidden.add(label);
        applyFilters();
      });
      item.appendChild(button);
      legend.appendChild(item);
    }
  }

  function renderDistinct(result) {
    const body = $("distinct").querySelector("tbody");
    body.replaceChildren();
    const rows = E.sortDistinct(E.distinct(result.blocks, visible), state.sort.key, state.sort.direction);
    for (const d of rows) {
      const row = el("tr");
      const name = el("td");
      const chip = el("mark", "entity", d.text);
      chip.dir = "auto";
      chip.style.setProperty("--entity-colour", colourOf(d.label));
      name.appendChild(chip);
      row.append(name, el("td", "", d.label), el("td", "number", d.count), el("td", "number", d.mean.toFixed(2)));
      body.appendChild(row);
    }
    if (!rows.length) {
      const row = el("tr");
      const cell = el("td", "muted", "No entities found.");
      cell.colSpan = 4;
      row.appendChild(cell);
      body.appendChild(row);
    }
    for (const th of $("distinct").querySelectorAll("th")) {
      const key = th.querySelector("button").dataset.sort;
      th.setAttribute("aria-sort", key === state.sort.key ? state.sort.direction : "none");
    }
    return rows;
  }

  function blockNode(block) {
    const box = el("div", "block");
    if (block.caption) box.appendChild(el("div", "caption", block.caption));
    const body = el("div", "text");
    body.dir = "auto";
    body.appendChild(highlight(block.text, block.entities));
    box.appendChild(body);
    const length = E.codePointLength(block.text);
    if (length > COLLAPSE_CHARS) {
      body.classList.add("collapsed");
      const toggle = el("button", "expand", `Show all (${length} characters)`);
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", "false");
      toggle.addEventListener("click", () => {
        const open = body.classList.toggle("collapsed") === false;
        toggle.setAttribute("aria-expanded", String(open));
        toggle.textContent = open ? "Show less" : `Show all (${length} characters)`;
      });
      box.appendChild(toggle);
    }
    return box;
  }

  function render() {
    const result = state.results[state.tab];
    const section = $("results");
    if (!result) { section.hidden = true; return; }
    section.hidden = false;
    section.classList.toggle("stale", Boolean(state.runs[state.tab]) && !result.partial);
    const container = $("highlighted");
    container.replaceChildren(...result.blocks.slice(0, MAX_ROWS_SHOWN).map(blockNode));
    if (result.blocks.length > MAX_ROWS_SHOWN) {
      container.appendChild(el("p", "muted",
        `Showing ${MAX_ROWS_SHOWN} of ${result.blocks.length} rows; the table and the downloads have all of them.`));
    }
    renderLegend(result);
    renderDistinct(result);
    const meta = $("page-meta");
    meta.hidden = !result.meta;
    meta.textContent = result.meta || "";
    $("results-download").disabled = Boolean(state.runs[state.tab]);
    $("csv-download").disabled = !(state.results.csv && state.results.csv.jobDone && !state.runs.csv);
  }

  // Type toggles, the score slider and the score switch restyle the marks and rebuild the table.
  function applyFilters() {
    for (const mark of document.querySelectorAll("#highlighted mark.entity")) {
      mark.classList.toggle("off", !visible({ label: mark.dataset.label, score: mark.dataset.score }));
    }
    for (const button of document.querySelectorAll("#legend .type-toggle")) {
      button.setAttribute("aria-pressed", String(!state.hidden.has(button.dataset.label)));
    }
    const result = state.results[state.tab];
    if (result) summarise(state.tab, renderDistinct(result));
  }

  function summarise(tab, distinctRows) {
    const result = state.results[tab];
    const all = result.blocks.reduce((sum, b) => sum + b.entities.length, 0);
    const shown = result.blocks.reduce((sum, b) => sum + b.entities.filter(visible).length, 0);
    const rows = distinctRows || E.distinct(result.blocks, visible);
    let text = `${all} ${all === 1 ? "entity" : "entities"} found`;
    text += shown === all ? ` (${rows.length} distinct).` : `; ${shown} shown (${rows.length} distinct).`;
    if (result.partial) text = `${text} More rows are on their way…`;
    setStatus(tab, text, result.partial ? "busy" : "ok");
  }

  function setResult(tab, result) {
    state.results[tab] = result;
    if (tab === state.tab) render();
    if (result) summarise(tab);
  }

  // ---- runs -----------------------------------------------------------------------------------------------
  // Starts `work(signal, run)` for `tab`, cancelling the tab's previous run; the previous result is dimmed while
  // it works and cleared if it fails or is cancelled.
  async function start(tab, work) {
    cancel(tab, true);
    const run = { controller: new AbortController(), started: performance.now() };
    state.runs[tab] = run;
    setStatus(tab, "", "");
    if (tab === state.tab) { render(); showBusy(); }
    try {
      const result = await work(run.controller.signal, run);
      if (state.runs[tab] !== run) return; // replaced or cancelled meanwhile
      state.runs[tab] = null;
      setResult(tab, result);
    } catch (error) {
      if (state.runs[tab] !== run) return;
      state.runs[tab] = null;
      state.results[tab] = null;
      if (error.name === "AbortError") setStatus(tab, "Cancelled.", "");
      else setStatus(tab, error.message || String(error), "error");
    } finally {
      if (tab === state.tab) { render(); showBusy(); }
    }
  }

  function cancel(tab, quietly) {
    const run = state.runs[tab];
    if (!run) return;
    state.runs[tab] = null;
    run.controller.abort();
    if (run.jobId) {
      fetch(`/v1/jobs/${encodeURIComponent(run.jobId)}`, { method: "DELETE" }).catch(() => {});
      forgetJob();
    }
    if (!quietly) {
      state.results[tab] = tab === "csv" && state.results.csv && state.results.csv.partial ? state.results.csv : null;
      if (state.results[tab]) state.results[tab].partial = false;
      setStatus(tab, "Cancelled.", "");
      if (tab === "csv") $("progress-text").textContent += " — cancelled";
      if (tab === state.tab) { render(); showBusy(); }
    }
  }

  const jsonPost = (body, signal) => ({
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  });

  async function runText(signal) {
    const text = $("text-input").value;
    if (!text.trim()) throw new Error("Type or paste a text first.");
    const data = await (await api("/v1/entities", jsonPost({ text }, signal))).json();
    return { blocks: [{ text, entities: data.entities }], meta: "", downloadName: "entities.csv" };
  }

  async function runUrl(signal) {
    const url = $("url-input").value.trim();
    if (!url) throw new Error("Enter the address of a web page first.");
    const data = await (await api("/v1/entities/url", jsonPost({ url }, signal))).json();
    let meta = `${data.title ? data.title + " — " : ""}${data.url}`;
    if (data.truncated) meta += " (text cut to the server's length limit)";
    return { blocks: [{ text: data.text, entities: data.entities }], meta, downloadName: "page-entities.csv" };
  }

  // ---- CSV jobs -------------------------------------------------------------------------------------------
  function rememberJob(id, name) {
    try { localStorage.setItem(JOB_KEY, JSON.stringify({ id, name })); } catch (_) { /* private mode */ }
  }

  function forgetJob() {
    try { localStorage.removeItem(JOB_KEY); } catch (_) { /* private mode */ }
  }

  function rememberedJob() {
    try { return JSON.parse(localStorage.getItem(JOB_KEY) || "null"); } catch (_) { return null; }
  }

  const sleep = (ms, signal) => new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); reject(new DOMException("cancelled", "AbortError")); });
  });

  // Polls job `id` until it ends, appending the rows done to the tab's result as they come.
  async function followJob(id, name, signal, run) {
    run.jobId = id;
    const result = { blocks: [], meta: `${name}: working…`, downloadName: name.replace(/\.csv$/i, "") + ".entity-list.csv",
                     partial: true, jobId: id, jobDone: false };
    for (;;) {
      const job = await (await api(`/v1/jobs/${encodeURIComponent(id)}`, { signal })).json();
      while (result.blocks.length < job.rows_done) {
        const query = `start=${result.blocks.length}&limit=1000`;
        const page = await (await api(`/v1/jobs/${encodeURIComponent(id)}/rows?${query}`, { signal })).json();
        if (!page.rows.length) break;
        for (const r of page.rows) result.blocks.push({ caption: `Row ${r.row}`, row: r.row, text: r.text, entities: r.entities });
      }
      if (state.runs.csv !== run) throw new DOMException("replaced", "AbortError");
      if (state.tab === "csv") showProgress(job);
      state.results.csv = result;
      result.meta = `${name}: ${result.blocks.length} of ${job.rows_total} rows`;
      if (state.tab === "csv") render();
      if (result.blocks.length || job.status === "done") summarise("csv");
      else if (job.status === "queued") setStatus("csv", `Queued behind ${job.queue_position} job(s) of other uploads…`, "busy");
      else setStatus("csv", "Tagging the first rows…", "busy");
      if (job.status === "done") {
        forgetJob();
        result.partial = false;
        result.jobDone = true;
        return result;
      }
      if (job.status === "failed" || job.status === "cancelled") {
        forgetJob();
        throw new Error(job.status === "failed" ? `The job failed: ${job.error || "see the server log"}` : "The job was cancelled.");
      }
      await sleep(POLL_MS, signal);
    }
  }

  async function runCsv(signal, run) {
    const file = $("csv-input").files[0];
    if (!file) throw new Error("Choose a CSV file first.");
    const form = new FormData();
    form.append("file", file, file.name);
    showProgress(null);
    const job = await (await api("/v1/jobs", { method: "POST", body: form, signal })).json();
    rememberJob(job.id, file.name);
    return followJob(job.id, file.name, signal, run);
  }

  async function resumeJob() {
    const saved = rememberedJob();
    if (!saved || !saved.id) return;
    try {
      await api(`/v1/jobs/${encodeURIComponent(saved.id)}`);
    } catch (error) {
      if (error.status === 404) forgetJob();
      return;
    }
    selectTab($("tab-csv"));
    setStatus("csv", `Picking up the job for ${saved.name}…`, "busy");
    start("csv", (signal, run) => followJob(saved.id, saved.name, signal, run));
  }

  async function downloadCsv() {
    const result = state.results.csv;
    if (!result || !result.jobDone) return;
    try {
      const response = await api(`/v1/jobs/${encodeURIComponent(result.jobId)}/download?format=csv`);
      const match = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
      saveBlob(await response.blob(), match ? match[1] : "entities.csv");
      setStatus("csv", "Downloaded the CSV with an entities column.", "ok");
    } catch (error) {
      setStatus("csv", error.message || String(error), "error");
    }
  }

  function downloadEntities() {
    const result = state.results[state.tab];
    if (!result) return;
    const withRow = result.blocks.some((b) => b.row !== undefined);
    const header = withRow ? ["row", "text", "label", "start", "end", "score"] : ["text", "label", "start", "end", "score"];
    const rows = result.blocks.flatMap((b) => b.entities.map((e) => {
      const cells = [e.text, e.label, e.start, e.end, e.score];
      return withRow ? [b.row, ...cells] : cells;
    }));
    saveBlob(new Blob([E.csvText(header, rows)], { type: "text/csv" }), result.downloadName);
  }

  // ---- tabs, counter, model ---------------------------------------------------------------------------------
  function selectTab(tab) {
    for (const other of document.querySelectorAll('[role="tab"]')) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    state.tab = tab.dataset.tab;
    showStatus();
    showBusy();
    render();
  }

  function overLimit() {
    return Boolean(state.limits) && E.codePointLength($("text-input").value) > state.limits.max_text_chars;
  }

  function updateCount() {
    const n = E.codePointLength($("text-input").value);
    const counter = $("text-count");
    if (!state.limits) {
      counter.textContent = `${n} characters`;
      return;
    }
    const over = n > state.limits.max_text_chars;
    counter.textContent = `${n} / ${state.limits.max_text_chars} characters${over ? " — over the limit, shorten the text" : ""}`;
    counter.classList.toggle("over", over);
    $("text-input").setAttribute("aria-invalid", String(over));
    showBusy();
  }

  // With `serve --learn`: what the learning job is doing and what it decided last (from /v1/health), polled while
  // a job runs so a person sees the swap happen.
  function learningText(l) {
    const served = `serving ${l.served_version} (${l.versions} version${l.versions === 1 ? "" : "s"})`;
    if (l.status === "running") return `Learning from Label Studio: ${l.step || "working"} ${l.version || ""}…; ${served}.`;
    if (l.status === "failed") return `Learning from Label Studio failed: ${l.message}; ${served}.`;
    if (l.status === "done") return `Learning from Label Studio: ${l.last_version} ${l.decision}; ${served}.`;
    const every = l.learn_every ? `, or after ${l.learn_every} new annotations (${l.new_annotations} so far)` : "";
    return `Learning from Label Studio: waiting for Start training${every}; ${served}.`;
  }

  async function loadLearning() {
    try {
      const health = await (await api("/v1/health")).json();
      const line = $("learning-line");
      if (!health.learning) { line.hidden = true; return; }
      line.textContent = learningText(health.learning);
      line.hidden = false;
      setTimeout(loadLearning, health.learning.status === "running" ? 3000 : 15000);
    } catch (error) {
      setTimeout(loadLearning, 15000);
    }
  }

  async function loadModel() {
    try {
      const info = await (await api("/v1/model")).json();
      state.limits = info.limits;
      info.labels.forEach(colourOf);
      const layers = (info.layers || []).map((l) => `${l.name}: ${l.labels.join(", ")}`).join("; ");
      $("model-line").textContent = layers
        ? `Model: ${info.name}, ${info.labels.length} entity types in ${info.layers.length} layers (${layers}).`
        : `Model: ${info.name}, ${info.labels.length} entity types (${info.labels.join(", ")}).`;
      updateCount();
    } catch (error) {
      $("model-line").textContent = `Model information unavailable: ${error.message}`;
    }
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
    $("text-run").addEventListener("click", () => start("text", runText));
    $("url-run").addEventListener("click", () => start("url", runUrl));
    $("url-input").addEventListener("keydown", (e) => { if (e.key === "Enter") $("url-run").click(); });
    $("csv-run").addEventListener("click", () => start("csv", runCsv));
    $("csv-download").addEventListener("click", downloadCsv);
    $("cancel").addEventListener("click", () => cancel(state.tab, false));
    $("results-download").addEventListener("click", downloadEntities);
    $("min-score").addEventListener("input", (e) => {
      state.minScore = Number(e.target.value);
      $("min-score-value").textContent = state.minScore.toFixed(2);
      applyFilters();
    });
    $("show-scores").addEventListener("change", (e) => { $("results").classList.toggle("show-scores", e.target.checked); });
    for (const button of document.querySelectorAll("#distinct th button")) {
      button.addEventListener("click", () => {
        const key = button.dataset.sort;
        const same = state.sort.key === key;
        const direction = same ? (state.sort.direction === "descending" ? "ascending" : "descending")
          : (key === "text" || key === "label" ? "ascending" : "descending");
        state.sort = { key, direction };
        const result = state.results[state.tab];
        if (result) renderDistinct(result);
      });
    }
    loadModel().then(resumeJob);
    loadLearning();
  });
})();
