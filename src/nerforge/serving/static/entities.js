// Pure helpers of the nerforge page (no DOM): entity offsets, distinct-entity tables, CSV text.
//
// Offsets: the API counts characters in Unicode code points (Python's str indices), JavaScript strings count
// UTF-16 units, so a text with an emoji (two units, one code point) is sliced by code points here, never with
// String.slice on API offsets.
"use strict";

window.NerforgeEntities = (() => {
  // [{text, entity}] pieces of `text` in order; `entity` is null between entities. Entities that overlap an
  // earlier one, run past the end or are empty are left out (the API never sends them).
  function segments(text, entities) {
    const chars = Array.from(text);
    const pieces = [];
    let at = 0;
    const sorted = [...entities].sort((a, b) => a.start - b.start || b.end - a.end);
    for (const entity of sorted) {
      if (entity.start < at || entity.end > chars.length || entity.end <= entity.start) continue;
      if (entity.start > at) pieces.push({ text: chars.slice(at, entity.start).join(""), entity: null });
      pieces.push({ text: chars.slice(entity.start, entity.end).join(""), entity });
      at = entity.end;
    }
    if (at < chars.length) pieces.push({ text: chars.slice(at).join(""), entity: null });
    return pieces;
  }

  // Nested entities of one layer (a span head's): each entity's depth, how many of the others hold it (of two on the
  // same characters, the later in start/longest-first order is the inner one). Flat entities all have depth 0.
  function depths(entities) {
    const order = [...entities].sort((a, b) => a.start - b.start || b.end - a.end);
    return order.map((e, i) => ({
      entity: e,
      depth: order.filter((o, j) => j !== i && o.start <= e.start && e.end <= o.end
        && (o.start !== e.start || o.end !== e.end || j < i)).length,
    }));
  }

  function codePointLength(text) {
    let n = 0;
    for (const _ of text) n += 1; // eslint-disable-line no-unused-vars
    return n;
  }

  // Each distinct (text, label) among the entities `keep` accepts, with its count and mean score.
  function distinct(blocks, keep) {
    const groups = new Map();
    for (const block of blocks) {
      for (const e of block.entities) {
        if (keep && !keep(e)) continue;
        const key = JSON.stringify([e.text, e.label]);
        const group = groups.get(key) || { text: e.text, label: e.label, count: 0, total: 0 };
        group.count += 1;
        group.total += Number(e.score) || 0;
        groups.set(key, group);
      }
    }
    return [...groups.values()].map((g) => ({ text: g.text, label: g.label, count: g.count, mean: g.total / g.count }));
  }

  function sortDistinct(rows, key, direction) {
    const sign = direction === "ascending" ? 1 : -1;
    const compare = {
      text: (a, b) => a.text.localeCompare(b.text),
      label: (a, b) => a.label.localeCompare(b.label),
      count: (a, b) => a.count - b.count,
      mean: (a, b) => a.mean - b.mean,
    }[key];
    return [...rows].sort((a, b) => sign * compare(a, b) || b.count - a.count || a.text.localeCompare(b.text));
  }

  // The same spreadsheet-safe escaping as the server's csvio.escape_cell.
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

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
    if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
    const minutes = Math.floor(seconds / 60);
    return `${minutes} min ${Math.round(seconds - 60 * minutes)} s`;
  }

  return { segments, depths, codePointLength, distinct, sortDistinct, escapeCell, csvText, duration };
})();
