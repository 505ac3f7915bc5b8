/**
 * Shared benchmark report writer: every bench/<name>/run.ts ends with one call to writeReport,
 * which writes bench/results/<name>.json (the figures plus the machine they were measured on)
 * and bench/results/<name>.svg (grouped horizontal bar charts). Hand-written SVG, no deps, so
 * that the charts render on GitHub and in any browser without a build step.
 *
 * A chart is a set of categories (rows, e.g. "1,000 rules") and series (one bar per row, e.g.
 * "portcullis", "cedar-wasm"); a value of null means "not measured" (a skipped peer) and is
 * drawn as a labelled gap so that a missing bar is never mistaken for a zero.
 *
 *   import { writeReport } from '../lib/report.js';
 *   writeReport('pdp', { results, ratios }, [{
 *     title: 'Decisions per second over the socket (higher is better)', unit: 'req/s',
 *     categories: ['1 connection', '8 connections'],
 *     series: [{ name: 'portcullis', values: [52_000, 180_000] }, { name: 'cerbos', values: [9_000, null] }],
 *     note: 'cerbos at 8 connections: not measured (…why…)',
 *   }]);
 *
 * Figures belong in `data` as measured; put the ratios to the same run's baseline there too
 * (peers measured in another run are not comparable on a shared machine).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, platform, arch, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Series {
  name: string;
  /** One value per category, in the chart's unit; null = not measured (say why in `note`). */
  values: (number | null)[];
}

export interface Chart {
  /** Shown above the chart; put the unit in it too, e.g. "decision latency, median (µs)". */
  title: string;
  /** The unit printed after each value label, e.g. "µs", "ms", "req/s". */
  unit: string;
  categories: string[];
  series: Series[];
  /** Log-scale axis: use when values span orders of magnitude (peers 1000× apart). */
  log?: boolean;
  /** A footnote under the chart (e.g. "cedar-wasm skipped at 100k rules: > 60 s to load"). */
  note?: string;
}

export interface MachineInfo {
  node: string;
  v8: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  date: string;
}

export interface WriteReportOptions {
  /** Directory for the JSON and SVG files; defaults to bench/results. */
  dir?: string;
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()} ${arch()}`,
    date: new Date().toISOString(),
  };
}

/** Writes <dir>/<name>.json and <dir>/<name>.svg; returns their paths. */
export function writeReport(
  name: string,
  data: object,
  charts: Chart[],
  options: WriteReportOptions = {},
): { json: string; svg: string } {
  if (!/^[A-Za-z0-9_.-]+$/.test(name))
    throw new Error(`writeReport: name ${JSON.stringify(name)} must be a plain file name`);
  for (const c of charts) validateChart(c);
  const dir = options.dir ?? resultsDir;
  mkdirSync(dir, { recursive: true });
  const machine = machineInfo();
  const json = join(dir, `${name}.json`);
  const svg = join(dir, `${name}.svg`);
  writeFileSync(json, JSON.stringify({ name, machine, data, charts }, null, 2) + '\n');
  writeFileSync(svg, renderSvg(name, machine, charts));
  return { json, svg };
}

function validateChart(c: Chart): void {
  for (const s of c.series) {
    if (s.values.length !== c.categories.length) {
      throw new Error(
        `writeReport: chart "${c.title}", series "${s.name}" has ${s.values.length} values for ` +
          `${c.categories.length} categories`,
      );
    }
    for (const v of s.values) {
      if (v !== null && !(Number.isFinite(v) && v >= 0))
        throw new Error(`writeReport: chart "${c.title}", series "${s.name}": ${v} is not a non-negative number`);
    }
  }
}

// Layout constants (px). Bars are thin so a 4-series × 5-category chart stays readable.
const WIDTH = 900;
const LABEL_W = 150;
const VALUE_W = 110;
const PLOT_W = WIDTH - LABEL_W - VALUE_W - 20;
const BAR_H = 14;
const BAR_GAP = 3;
const GROUP_GAP = 12;
const PALETTE = ['#2b6cb0', '#dd6b20', '#38a169', '#805ad5', '#d53f8c', '#718096', '#b7791f', '#319795'];

export function renderSvg(name: string, machine: MachineInfo, charts: Chart[]): string {
  const parts: string[] = [];
  let y = 28;
  parts.push(
    text(
      10,
      y,
      `${name} — ${machine.date.slice(0, 10)}, node ${machine.node}, ${machine.cpu} (${machine.cores} cores)`,
      { size: 13, weight: 'bold' },
    ),
  );
  y += 16;
  // One colour per series name across the whole report, so "portcullis" looks the same in every chart.
  const colours = new Map<string, string>();
  for (const c of charts)
    for (const s of c.series) if (!colours.has(s.name)) colours.set(s.name, PALETTE[colours.size % PALETTE.length]!);
  for (const chart of charts) {
    const { svg, height } = renderChart(chart, y, colours);
    parts.push(svg);
    y += height;
  }
  const height = y + 10;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ` +
    `${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">\n<rect ` +
    `width="100%" height="100%" fill="#ffffff"/>\n${parts.join('\n')}\n</svg>\n`
  );
}

function renderChart(chart: Chart, top: number, colours: Map<string, string>): { svg: string; height: number } {
  const parts: string[] = [];
  const grid: string[] = []; // drawn first, so that bars and labels sit on top of the gridlines
  let y = top + 22;
  parts.push(text(10, y, `${chart.title}${chart.log ? ' — log scale' : ''}`, { size: 14, weight: 'bold' }));
  y += 8;
  // Legend.
  let lx = LABEL_W;
  y += 14;
  chart.series.forEach((s) => {
    parts.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${colours.get(s.name)}"/>`);
    parts.push(text(lx + 16, y, s.name, { size: 12 }));
    lx += 16 + Math.max(60, s.name.length * 7 + 18);
  });
  y += 10;
  const values = chart.series.flatMap((s) => s.values).filter((v): v is number => v !== null);
  const scale = makeScale(values, chart.log === true);
  const plotTop = y;
  for (const [ci, category] of chart.categories.entries()) {
    const groupH = chart.series.length * (BAR_H + BAR_GAP);
    parts.push(text(LABEL_W - 8, y + groupH / 2 + 4, category, { size: 12, anchor: 'end' }));
    for (const [si, s] of chart.series.entries()) {
      const v = s.values[ci] ?? null;
      const by = y + si * (BAR_H + BAR_GAP);
      if (v === null) {
        parts.push(
          text(LABEL_W + 4, by + BAR_H - 3, `${s.name}: not measured`, { size: 11, fill: '#718096', italic: true }),
        );
      } else {
        const w = Math.max(1, scale.px(v));
        const title = esc(`${s.name} · ${category}: ${formatValue(v)} ${chart.unit}`);
        parts.push(
          `<rect x="${LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" ` +
            `fill="${colours.get(s.name)}"><title>${title}</title></rect>`,
        );
        parts.push(text(LABEL_W + w + 5, by + BAR_H - 3, `${formatValue(v)} ${chart.unit}`, { size: 11 }));
      }
    }
    y += groupH + GROUP_GAP;
  }
  // Axis with ticks, under the plot.
  const axisY = y - GROUP_GAP + 4;
  parts.push(`<line x1="${LABEL_W}" y1="${plotTop - 4}" x2="${LABEL_W}" y2="${axisY}" stroke="#4a5568"/>`);
  parts.push(`<line x1="${LABEL_W}" y1="${axisY}" x2="${LABEL_W + PLOT_W}" y2="${axisY}" stroke="#4a5568"/>`);
  for (const t of scale.ticks) {
    const x = LABEL_W + scale.px(t);
    grid.push(`<line x1="${x.toFixed(1)}" y1="${plotTop - 4}" x2="${x.toFixed(1)}" y2="${axisY}" stroke="#e2e8f0"/>`);
    parts.push(text(x, axisY + 14, formatValue(t), { size: 10, anchor: 'middle', fill: '#4a5568' }));
  }
  y = axisY + 36;
  parts.push(text(LABEL_W + PLOT_W / 2, axisY + 28, chart.unit, { size: 11, anchor: 'middle', fill: '#4a5568' }));
  if (chart.note) {
    y += 6;
    for (const line of wrap(chart.note, 130)) {
      parts.push(text(10, y, line, { size: 11, fill: '#4a5568', italic: true }));
      y += 14;
    }
  }
  return { svg: [...grid, ...parts].join('\n'), height: y - top + 8 };
}

interface Scale {
  px(v: number): number;
  ticks: number[];
}

function makeScale(values: number[], log: boolean): Scale {
  const max = values.length > 0 ? Math.max(...values) : 1;
  if (log) {
    const positive = values.filter((v) => v > 0);
    const lo = Math.floor(Math.log10(positive.length > 0 ? Math.min(...positive) : 1));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(max, 10 ** lo))));
    const ticks: number[] = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
    // Zero cannot sit on a log axis; it is drawn as a 1 px stub at the origin.
    return { px: (v) => (v <= 0 ? 0 : ((Math.log10(v) - lo) / (hi - lo)) * PLOT_W), ticks };
  }
  const step = niceStep(max / 5 || 1);
  const top = Math.ceil(max / step) * step || step;
  const ticks: number[] = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { px: (v) => (v / top) * PLOT_W, ticks };
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** 3 significant digits, thousands separators, no exponent for everyday magnitudes. */
export function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 0.001) return Number(v.toPrecision(3)).toString();
  return v.toExponential(2);
}

function wrap(s: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of s.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

function text(
  x: number,
  y: number,
  s: string,
  o: { size: number; weight?: string; anchor?: string; fill?: string; italic?: boolean },
): string {
  const attrs = [`x="${x.toFixed(1)}"`, `y="${y.toFixed(1)}"`, `font-size="${o.size}"`];
  if (o.weight) attrs.push(`font-weight="${o.weight}"`);
  if (o.anchor) attrs.push(`text-anchor="${o.anchor}"`);
  if (o.italic) attrs.push('font-style="italic"');
  attrs.push(`fill="${o.fill ?? '#1a202c'}"`);
  return `<text ${attrs.join(' ')}>${esc(s)}</text>`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
