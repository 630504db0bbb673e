/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import css from "./style.css?raw";

// The palettes as the stylesheet declares them: the light one in the first `:root`, the dark one
// in the `prefers-color-scheme: dark` block.
function palette(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [, name, value] of block.matchAll(/--([\w-]+):\s*([^;]+);/g)) out[name] = value.trim();
  return out;
}

const lightBlock = css.match(/^:root\s*\{([^}]*)\}/m)?.[1] ?? "";
const darkBlock = css.match(/@media \(prefers-color-scheme: dark\)\s*\{\s*:root\s*\{([^}]*)\}\s*\}/)?.[1] ?? "";
const THEMES = { light: palette(lightBlock), dark: palette(darkBlock) };

function luminance(hex: string): number {
  const m = hex.match(/^#([0-9a-f]{6})$/i);
  if (!m) throw new Error(`not a #rrggbb colour: ${hex}`);
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(m[1].slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2 contrast ratio of two colours. */
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// Every text colour on every background the stylesheet puts it on. Sizes here are all normal
// text (the smallest is 11 px bold), so AA asks 4.5:1.
const TEXT: [string, string][] = [
  ...["bg", "panel", "panel-2", "sunken", "hover", "selected", "risk-bg"].map((bg): [string, string] => ["ink", bg]),
  ...["bg", "panel", "panel-2", "sunken", "hover", "selected"].map((bg): [string, string] => ["muted", bg]),
  ["brand", "panel"], ["brand", "bg"],
  ["on-brand", "brand"], ["on-brand", "brand-hover"],
  ["risk", "risk-bg"], ["risk", "panel"], ["risk", "hover"], ["risk", "selected"],
  ["on-risk", "risk-strong"], ["on-risk", "risk-hover"],
  ["wait", "wait-bg"], ["on-wait", "wait-strong"],
  ["ok", "ok-bg"],
  ["preset", "preset-bg"],
  ["demo", "demo-bg"],
  ["on-paused", "paused-bg"],
];
// Parts of controls a user must see (WCAG 1.4.11 asks 3:1): the focus ring, field borders, the
// selected tab's and preset's edge.
const NON_TEXT: [string, string][] = [
  ...["bg", "panel", "panel-2", "sunken", "selected"].map((bg): [string, string] => ["focus", bg]),
  ["field-line", "panel"], ["field-line", "panel-2"],
  ["brand", "panel"], ["brand", "panel-2"],
];

describe.each(Object.entries(THEMES))("%s theme", (_, colours) => {
  const ratio = (fg: string, bg: string) => contrast(colours[fg], colours[bg]);

  it("declares every colour the checks need", () => {
    for (const [fg, bg] of [...TEXT, ...NON_TEXT]) {
      expect(colours[fg], fg).toMatch(/^#[0-9a-f]{6}$/i);
      expect(colours[bg], bg).toMatch(/^#[0-9a-f]{6}$/i);
    }
  });

  it("gives all text at least 4.5:1 (WCAG AA)", () => {
    const failing = TEXT.filter(([fg, bg]) => ratio(fg, bg) < 4.5).map(([fg, bg]) => `${fg} on ${bg}: ${ratio(fg, bg).toFixed(2)}`);
    expect(failing).toEqual([]);
  });

  it("gives focus rings and control edges at least 3:1", () => {
    const failing = NON_TEXT.filter(([fg, bg]) => ratio(fg, bg) < 3).map(([fg, bg]) => `${fg} on ${bg}: ${ratio(fg, bg).toFixed(2)}`);
    expect(failing).toEqual([]);
  });

  it("makes paused louder than active", () => {
    // Against the header both sit on: the paused pill stands out far more than the active one.
    expect(ratio("paused-bg", "panel")).toBeGreaterThan(3 * ratio("ok-bg", "panel"));
  });
});

describe("the stylesheet", () => {
  it("has a dark palette for every colour of the light one", () => {
    expect(Object.keys(THEMES.dark).sort()).toEqual(Object.keys(THEMES.light).sort());
  });

  it("sets colours only through the palettes, so both themes cover everything", () => {
    const rest = css.replace(lightBlock, "").replace(darkBlock, "");
    expect(rest.match(/(?<![\w-])#[0-9a-f]{3,8}(?![\w-])/gi) ?? []).toEqual([]);
    expect(rest.match(/\b(rgba?|hsla?)\(/gi) ?? []).toEqual([]);
  });
});
